#!/usr/bin/env bash
# Benchmark the live daemon (`shadowtap run`): what it costs the service it
# watches, and how much of the traffic it rebuilds and replays.
#
#   bench/live.sh [--duration S] [--rounds N] [--rate N] [--steady S] [--conns N]
#                 [--workers W] [--config FILE] [--no-build] [--strict]
#
#   --duration S  seconds of each wrk run (default $DURATION or 10)
#   --rounds N    run R0, R1, R2 N times, interleaved, and judge the median
#                 ratios (default 1; other work on the machine moves single
#                 runs a lot)
#   --rate N      requests/s of the paced steady phase (default 5000)
#   --steady S    seconds of the steady phase (default 10)
#   --conns N     keep-alive connections of the paced client (default 16)
#   --workers W   nginx A worker_processes, a number or auto (default 2, the
#                 best wrk rate here: see the comment at the nginx config)
#   --config FILE passed to every `shadowtap run` as --config (to try e.g.
#                 [candidate] rate or [daemon] queue; flags still override)
#   --no-build    do not run `cargo build --release`
#   --strict      exit 1 when a target is missed (default: report only)
#
# Environment: SHADOWTAP=/path/to/binary overrides the binary (implies
# --no-build). Root (or CAP_NET_RAW) is needed: tcpdump and shadowtap
# capture on lo. Network: loopback only.
#
# One run, all on 127.0.0.1 with free ports:
#  0. nginx A (the legacy service, PORT_A) and nginx B (the candidate,
#     PORT_B), private configs in a temp dir, access_log off,
#     keepalive_requests 1000000, both serving the same small static
#     x.json (fixed mtime: same ETag and Last-Modified); nginx A also
#     serves stub_status on a third port, outside the capture filter,
#     giving the exact number of requests it answered.
#  1. R0: wrk -t2 -c50 -dS http://127.0.0.1:PORT_A/x.json, no capture.
#  2. R1: the same with `tcpdump -i lo -w /dev/null 'tcp port PORT_A'`
#     running (drops from its exit message), the reference cost of a
#     plain libpcap capture.
#  3. R2: the same with `shadowtap run --interface lo --port PORT_A
#     --candidate http://127.0.0.1:PORT_B --sample 1 --metrics ...` running:
#     its CPU over the wrk window (utime+stime from /proc/PID/stat, % of
#     one core, also per thread), VmHWM before SIGTERM, and at the end
#     /metrics: packets captured, kernel drops, exchanges, replay queue
#     drops, outcomes. wrk's 50 connections are 50 flows, so 1% sampling
#     keeps 0 or 1 of them (whole connections are sampled): this phase
#     measures the cost of watching the traffic, not completeness.
#  4. Completeness: the same with --sample 100 (every connection) at full
#     wrk speed: shadowtap_exchanges_total against the requests nginx A
#     answered (stub_status delta) and against wrk's "N requests"
#     (wrk does not count the up to 50 requests in flight when it stops,
#     nginx does and so does the wire). Exchanges whose replay was
#     dropped at the queue still count as rebuilt; queue drops are
#     expected here (the candidate shares the 2 cores) and reported.
#  5. Steady: a paced Python client (asyncio, --conns keep-alive
#     connections, request i sent at t0 + i/rate) at --rate for --steady
#     seconds against nginx A, shadowtap with --sample 100 replaying
#     everything to nginx B: requests sent, exchanges, outcomes (match),
#     replay queue drops and kernel drops; the client's achieved rate is
#     checked (a rate under 97% of the target is reported as such).
#  Then a table of all figures, R1/R0 and R2/R0, and each target:
#  R2/R0 >= 0.85 (tcpdump is about 0.9), 0 kernel drops, completeness
#  >= 99.9 %, steady phase 100 % replayed with 0 queue drops.
# Load average and, per wrk window, the CPU of wrk, nginx A and B, the
# capture (tcpdump or shadowtap), softirq, everything else on the machine
# ("other", from /proc/stat) and idle are shown: other sessions' work moves
# the raw rates a lot. So the table also gives each phase's requests per
# CPU-second of wrk + nginx A + nginx B + capture + softirq ("req/CPU-s")
# and the ratios of those ("normalised"): close to what the ratio would be
# on a machine with nothing else running, as long as the phase keeps both
# cores busy (idle near 0). The kernel's copy of each packet to a capture
# ring runs in the sender's syscall (sys time of wrk/nginx) or in softirq,
# so it is in both figures.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
WORK=$HERE/work

DURATION=${DURATION:-10}
RATE=5000
STEADY=10
CONNS=16
ROUNDS=1
WORKERS=2
ST_CONFIG=
BUILD=1
STRICT=0

die() { echo "live.sh: $*" >&2; exit 2; }
say() { echo "live.sh: $*" >&2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=${2:?}; shift 2 ;;
        --duration=*) DURATION=${1#*=}; shift ;;
        --rate) RATE=${2:?}; shift 2 ;;
        --rate=*) RATE=${1#*=}; shift ;;
        --steady) STEADY=${2:?}; shift 2 ;;
        --steady=*) STEADY=${1#*=}; shift ;;
        --conns) CONNS=${2:?}; shift 2 ;;
        --conns=*) CONNS=${1#*=}; shift ;;
        --rounds) ROUNDS=${2:?}; shift 2 ;;
        --rounds=*) ROUNDS=${1#*=}; shift ;;
        --config) ST_CONFIG=${2:?}; shift 2 ;;
        --config=*) ST_CONFIG=${1#*=}; shift ;;
        --workers) WORKERS=${2:?}; shift 2 ;;
        --workers=*) WORKERS=${1#*=}; shift ;;
        --no-build) BUILD=0; shift ;;
        --strict) STRICT=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "live.sh: unknown argument: $1" >&2; usage 2 ;;
    esac
done
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive integer"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[ -z "$ST_CONFIG" ] || [ -r "$ST_CONFIG" ] || die "--config $ST_CONFIG: not readable"
[ -z "$ST_CONFIG" ] || ST_CONFIG=$(cd "$(dirname "$ST_CONFIG")" && pwd)/$(basename "$ST_CONFIG")
[[ "$RATE" =~ ^[1-9][0-9]*$ ]] || die "--rate must be a positive integer"
[[ "$STEADY" =~ ^[1-9][0-9]*$ ]] || die "--steady must be a positive integer"
[[ "$CONNS" =~ ^[1-9][0-9]*$ ]] || die "--conns must be a positive integer"
[[ "$WORKERS" =~ ^([1-9][0-9]*|auto)$ ]] || die "--workers must be a number or auto"
[ "$(id -u)" = 0 ] || say "not root: tcpdump and shadowtap need CAP_NET_RAW to capture on lo"

# --- tools -------------------------------------------------------------------
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
need_http_bench_tools

# --- shadowtap binary --------------------------------------------------------
if [ -n "${SHADOWTAP:-}" ]; then
    BIN=$SHADOWTAP
else
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/shadowtap
    if [ "$BUILD" = 1 ]; then
        # Three tries, 30 s apart: a tree being edited by someone else may
        # not build for a moment.
        for try in 1 2 3; do
            say "cargo build --release"
            (cd "$ROOT" && cargo build --release >&2) && break
            [ "$try" = 3 ] && die "cargo build --release failed"
            say "build failed, trying again in 30 s"
            sleep 30
        done
    fi
fi
[ -x "$BIN" ] || die "shadowtap binary not found: $BIN"

mkdir -p "$WORK"
TMP=$(mktemp -d "$WORK/live-run.XXXXXX")
chmod 755 "$TMP"   # nginx workers run as nobody and serve $TMP/www
RES=$TMP/results          # "key value" lines, read by the table at the end
: > "$RES"
NGINX_A_PID=
NGINX_B_PID=
TCPDUMP_PID=
ST_PID=
cleanup() {
    local rc=$?
    set +e
    if [ -n "$TCPDUMP_PID" ]; then kill -INT "$TCPDUMP_PID" 2>/dev/null; wait "$TCPDUMP_PID" 2>/dev/null; fi
    if [ -n "$ST_PID" ]; then
        kill -TERM "$ST_PID" 2>/dev/null
        for _ in $(seq 150); do kill -0 "$ST_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$ST_PID" 2>/dev/null
        wait "$ST_PID" 2>/dev/null
    fi
    for pid in $NGINX_A_PID $NGINX_B_PID; do
        local workers
        workers=$(pgrep -P "$pid")
        kill -QUIT "$pid" 2>/dev/null
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" $workers 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    # Keep the last run's logs, outputs and metrics for a look afterwards.
    rm -rf "$WORK/live-last"
    rm -rf "$TMP/www" "$TMP"/nginx-*/{body,proxy,fastcgi,uwsgi,scgi}
    mv "$TMP" "$WORK/live-last" 2>/dev/null || rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

put() { echo "$1 $2" >> "$RES"; }
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
put ncpu "$NCPU"
put clk_tck "$CLK_TCK"
put duration "$DURATION"
put workers "$WORKERS"
put rounds "$ROUNDS"
put config "${ST_CONFIG:--}"
put load_start "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"

# --- ports and content -------------------------------------------------------
# Four distinct free ports, all bound at once so they differ. Ports bound by
# a listener are never handed out to connect(), so a client port can not
# collide with PORT_B (which the capture filter excludes).
read -r PORT_A PORT_B PORT_S PORT_M < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
put ports "A=$PORT_A,B=$PORT_B,status=$PORT_S,metrics=$PORT_M"

mkdir -p "$TMP/www"
python3 - "$TMP/www/x.json" <<'EOF'
import json, os, sys
body = {"id": 42, "name": "shadowtap live bench", "active": True, "price": {"amount": "19.90", "currency": "EUR"},
        "tags": ["a", "b", "c"], "updated_at": "2024-01-01T00:00:00Z", "note": "small static file " * 4}
with open(sys.argv[1], "w") as f:
    f.write(json.dumps(body, separators=(",", ":")) + "\n")
os.utime(sys.argv[1], (1704067200, 1704067200))  # stable ETag / Last-Modified on A and B
EOF
chmod -R a+rX "$TMP/www"
put body_bytes "$(stat -c %s "$TMP/www/x.json")"

# --- nginx A and B -----------------------------------------------------------
# worker_processes for A: 2 (= auto on this 2-core machine). Measured with
# wrk -t2 -c50 -d4s on this file, 1 and 2 workers interleaved, 5 pairs:
# 2 workers won every pair, 60-94k against 38-58k requests/s. The
# requests per CPU-second of wrk + nginx were the same (~55k) either way:
# with other work on the machine, a second worker just wins nginx a larger
# share of the two cores, and with one worker nginx alone caps the rate.
# --workers to check again. B (the candidate) has 1.
write_nginx_conf() { # NAME PORT WORKERS [STATUS_PORT]
    local dir=$TMP/nginx-$1 status=
    mkdir -p "$dir"
    [ -z "${4:-}" ] || status="server { listen 127.0.0.1:$4; location = /status { stub_status; } }"
    cat > "$dir/nginx.conf" <<EOF
worker_processes $3;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 1000000;
    open_file_cache max=100 inactive=120s;
    open_file_cache_valid 120s;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    types { application/json json; }
    default_type application/json;
    server { listen 127.0.0.1:$2; root $TMP/www; }
    $status
}
EOF
    "$NGINX" -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" || { cat "$dir/error.log" >&2; die "bad nginx config $1"; }
}
start_nginx() { # NAME -> pid in $!
    local dir=$TMP/nginx-$1
    "$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' &
}
fetch() { curl -fsS --max-time 5 "$1"; }
wait_http() { # URL PID WHAT
    for _ in $(seq 100); do
        fetch "$1" >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || die "$3 did not start"
        sleep 0.1
    done
    tail -n 3 "$TMP"/nginx-*/error.log >&2
    die "$3 does not answer at $1"
}
command -v curl >/dev/null || fetch() { python3 -c '
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"; }

write_nginx_conf a "$PORT_A" "$WORKERS" "$PORT_S"
write_nginx_conf b "$PORT_B" 1
start_nginx a; NGINX_A_PID=$!
start_nginx b; NGINX_B_PID=$!
wait_http "http://127.0.0.1:$PORT_A/x.json" "$NGINX_A_PID" "nginx A"
wait_http "http://127.0.0.1:$PORT_B/x.json" "$NGINX_B_PID" "nginx B"
wait_http "http://127.0.0.1:$PORT_S/status" "$NGINX_A_PID" "nginx A status"
say "nginx $("$NGINX" -v 2>&1 | sed 's/.*\///'): A 127.0.0.1:$PORT_A (worker_processes $WORKERS), B 127.0.0.1:$PORT_B (1)"

# Requests nginx A has answered so far (stub_status; the query itself is
# one of them, and is on PORT_S, outside the capture filter).
nginx_a_requests() { fetch "http://127.0.0.1:$PORT_S/status" | awk 'NR == 3 { print $3 }'; }

# ticks_of, tree_ticks, machine_ticks, put_machine, thread_ticks: bench/lib.sh

# --- wrk ---------------------------------------------------------------------
# run_wrk PHASE [EXTRA_PID]: wrk -t2 -c50 against A; records the rate, the
# request count, the CPU of wrk, nginx A and B, EXTRA_PID and the machine
# (softirq, idle, and the busy rest: other sessions' work).
run_wrk() {
    local phase=$1 extra=${2:-} a0 b0 e0 m0 a1 b1 e1 m1 t0 t1 rps reqs
    put "${phase}_load" "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
    a0=$(tree_ticks "$NGINX_A_PID"); b0=$(tree_ticks "$NGINX_B_PID"); m0=$(machine_ticks)
    e0=0; [ -z "$extra" ] || e0=$(ticks_of "$extra")
    [ -z "$extra" ] || [ ! -d "/proc/$extra/task" ] || thread_ticks "$extra" > "$TMP/$phase.threads0"
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%U %S' -o "$TMP/$phase.wrktime" \
        wrk -t2 -c50 -d"${DURATION}s" "http://127.0.0.1:$PORT_A/x.json" > "$TMP/$phase.wrk" 2>&1 ||
        { cat "$TMP/$phase.wrk" >&2; die "wrk failed ($phase)"; }
    t1=$EPOCHREALTIME
    a1=$(tree_ticks "$NGINX_A_PID"); b1=$(tree_ticks "$NGINX_B_PID"); m1=$(machine_ticks)
    e1=0; [ -z "$extra" ] || e1=$(ticks_of "$extra")
    [ -z "$extra" ] || [ ! -d "/proc/$extra/task" ] || thread_ticks "$extra" > "$TMP/$phase.threads1"
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$TMP/$phase.wrk")
    reqs=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$TMP/$phase.wrk")
    [ -n "$rps" ] && [ -n "$reqs" ] || { cat "$TMP/$phase.wrk" >&2; die "no rate from wrk ($phase)"; }
    if grep -qE 'Socket errors|Non-2xx' "$TMP/$phase.wrk"; then
        put "${phase}_wrk_errors" "$(grep -E 'Socket errors|Non-2xx' "$TMP/$phase.wrk" | tr -s ' ' | tr ' ' _)"
    fi
    read -r wu ws < "$TMP/$phase.wrktime"
    put "${phase}_rps" "$rps"
    put "${phase}_requests" "$reqs"
    put "${phase}_wall" "$(python3 -c "print(f'{$t1 - $t0:.3f}')")"
    put "${phase}_cpu_nginx_a" "$((a1 - a0))"
    put "${phase}_cpu_nginx_b" "$((b1 - b0))"
    put "${phase}_cpu_wrk" "$(python3 -c "print(round(($wu + $ws) * $CLK_TCK))")"
    put "${phase}_cpu_extra" "$((e1 - e0))"
    put_machine "$phase" "$m0" "$m1"
    if [ -s "$TMP/$phase.threads0" ] && [ -s "$TMP/$phase.threads1" ]; then
        put "${phase}_threads" "$(python3 - "$TMP/$phase.threads0" "$TMP/$phase.threads1" <<'EOF'
import sys
a, b = (dict(kv.split("=") for kv in open(p).read().split()) for p in sys.argv[1:3])
print(",".join(f"{k}={int(v) - int(a.get(k, 0))}" for k, v in sorted(b.items(), key=lambda kv: -int(kv[1]))))
EOF
)"
    fi
    say "    wrk: $rps requests/s ($reqs requests)"
}

# --- shadowtap ---------------------------------------------------------------
# metric NAME FILE: bench/lib.sh
scrape() { fetch "http://127.0.0.1:$PORT_M/metrics" > "$1" 2>/dev/null; }

start_shadowtap() { # PHASE SAMPLE
    "$BIN" run ${ST_CONFIG:+--config "$ST_CONFIG"} --interface lo --port "$PORT_A" --candidate "http://127.0.0.1:$PORT_B" --sample "$2" \
        --metrics "127.0.0.1:$PORT_M" --out "$TMP/$1.jsonl" --report "$TMP/$1.report.json" \
        2> "$TMP/$1.shadowtap.log" &
    ST_PID=$!
    for _ in $(seq 100); do
        fetch "http://127.0.0.1:$PORT_M/healthz" >/dev/null 2>&1 && break
        kill -0 "$ST_PID" 2>/dev/null || { cat "$TMP/$1.shadowtap.log" >&2; die "shadowtap run failed to start ($1)"; }
        sleep 0.1
    done
    fetch "http://127.0.0.1:$PORT_M/healthz" >/dev/null || die "shadowtap /healthz does not answer ($1)"
    sleep 1  # let the capture and replay threads settle
}

# Waits until every exchange rebuilt so far has an outcome or a queue drop
# and nothing moves any more (at most 30 s), then keeps the last scrape.
settle_metrics() { # PHASE
    local m=$TMP/$1.metrics prev='' cur ex=0 oc=0 qd=0
    for _ in $(seq 60); do
        sleep 0.5
        scrape "$m" || continue
        ex=$(metric shadowtap_exchanges_total "$m")
        oc=$(metric shadowtap_outcomes_total "$m")
        qd=$(metric shadowtap_replay_queue_drops_total "$m")
        cur="$ex $oc $qd $(metric shadowtap_packets_captured_total "$m")"
        [ "$cur" = "$prev" ] && [ $((oc + qd)) -ge "$ex" ] && return 0
        prev=$cur
    done
    say "    metrics still moving after 30 s ($1): exchanges $ex, outcomes $oc, queue drops $qd"
}

stop_shadowtap() { # PHASE
    local p=$1 m=$TMP/$1.metrics rc=0
    settle_metrics "$p"
    put "${p}_vmhwm_kib" "$(awk '/^VmHWM:/ { print $2 }' "/proc/$ST_PID/status")"
    for k in packets_captured bytes_captured kernel_drops interface_drops shard_batch_drops \
             exchanges replay_queue_drops; do
        put "${p}_$k" "$(metric "shadowtap_${k}_total" "$m")"
    done
    put "${p}_outcomes" "$(metric shadowtap_outcomes_total "$m")"
    put "${p}_outcomes_by" "$(awk '/^shadowtap_outcomes_total\{/ {
        match($0, /outcome="[^"]*"/); o = substr($0, RSTART + 9, RLENGTH - 10); s[o] += $NF }
        END { for (o in s) printf "%s=%d,", o, s[o] }' "$m" | sed 's/,$//')"
    kill -TERM "$ST_PID"
    for _ in $(seq 200); do kill -0 "$ST_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$ST_PID" 2>/dev/null && { say "shadowtap did not stop in 20 s after SIGTERM ($p)"; kill -KILL "$ST_PID"; }
    wait "$ST_PID" || rc=$?
    ST_PID=
    put "${p}_exit" "$rc"
    [ "$rc" = 0 ] || { tail -n 20 "$TMP/$p.shadowtap.log" >&2; say "shadowtap exited $rc ($p)"; }
}

start_tcpdump() {
    "$TCPDUMP" -i lo -w /dev/null "tcp port $PORT_A" 2> "$TMP/$1.tcpdump.log" &
    TCPDUMP_PID=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$TMP/$1.tcpdump.log" && break
        kill -0 "$TCPDUMP_PID" 2>/dev/null || { cat "$TMP/$1.tcpdump.log" >&2; die "tcpdump failed"; }
        sleep 0.1
    done
    sleep 0.5
}
stop_tcpdump() {
    sleep 0.5
    kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" || true; TCPDUMP_PID=
    local log=$TMP/$1.tcpdump.log
    put "$1_tcpdump_captured" "$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured.*/\1/p' "$log")"
    put "$1_tcpdump_received" "$(sed -n 's/^\([0-9]*\) packets\{0,1\} received by filter.*/\1/p' "$log")"
    put "$1_tcpdump_drops" "$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel.*/\1/p' "$log")"
    sed -n '/captured\|received\|dropped/s/^/    tcpdump: /p' "$log" >&2
}

# --- 1-3. R0, R1, R2 (repeated --rounds times, interleaved) ----------------------
for ((round = 1; round <= ROUNDS; round++)); do
    sfx=; [ "$round" = 1 ] || sfx=".$round"
    [ "$ROUNDS" = 1 ] || say "round $round/$ROUNDS"
    say "R0: wrk -t2 -c50 -d${DURATION}s http://127.0.0.1:$PORT_A/x.json (no capture)"
    run_wrk "r0$sfx"

    say "R1: the same with tcpdump -i lo -w /dev/null 'tcp port $PORT_A'"
    start_tcpdump "r1$sfx"
    run_wrk "r1$sfx" "$TCPDUMP_PID"
    stop_tcpdump "r1$sfx"

    say "R2: the same with shadowtap run --sample 1"
    start_shadowtap "r2$sfx" 1
    run_wrk "r2$sfx" "$ST_PID"
    stop_shadowtap "r2$sfx"
done

# --- 4. completeness: shadowtap --sample 100 at full speed ---------------------
say "R3 (completeness): the same with shadowtap run --sample 100"
start_shadowtap r3 100
n0=$(nginx_a_requests)
run_wrk r3 "$ST_PID"
sleep 0.5
n1=$(nginx_a_requests)
put r3_nginx_requests "$((n1 - n0 - 1))"
stop_shadowtap r3

# --- 5. steady rate --------------------------------------------------------------
say "steady: paced client, $RATE requests/s for ${STEADY}s over $CONNS connections, shadowtap --sample 100"
start_shadowtap steady 100
n0=$(nginx_a_requests)
put steady_load "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
s0=$(ticks_of "$ST_PID"); a0=$(tree_ticks "$NGINX_A_PID"); b0=$(tree_ticks "$NGINX_B_PID"); m0=$(machine_ticks)
thread_ticks "$ST_PID" > "$TMP/steady.threads0"
t0=$EPOCHREALTIME
/usr/bin/time -f '%U %S' -o "$TMP/steady.clienttime" \
    python3 "$HERE/paced_client.py" "$PORT_A" "$RATE" "$STEADY" "$CONNS" --user-agent shadowtap-live-bench/1 \
    > "$TMP/steady.client" || die "paced client failed"
t1=$EPOCHREALTIME
s1=$(ticks_of "$ST_PID"); a1=$(tree_ticks "$NGINX_A_PID"); b1=$(tree_ticks "$NGINX_B_PID"); m1=$(machine_ticks)
thread_ticks "$ST_PID" > "$TMP/steady.threads1"
sleep 0.5
n1=$(nginx_a_requests)
read -r _ sent _ ok _ bad _ wall _ crate _ late _ latep99 _ latemax < "$TMP/steady.client"
put steady_sent "$sent"; put steady_ok "$ok"; put steady_bad "$bad"; put steady_wall "$wall"
put steady_rate "$crate"; put steady_late "$late"; put steady_late_p99_ms "$latep99"; put steady_late_max_ms "$latemax"
put steady_nginx_requests "$((n1 - n0 - 1))"
put steady_cpu_wall "$(python3 -c "print(f'{$t1 - $t0:.3f}')")"
put steady_cpu_extra "$((s1 - s0))"; put steady_cpu_nginx_a "$((a1 - a0))"; put steady_cpu_nginx_b "$((b1 - b0))"
put_machine steady "$m0" "$m1"
read -r cu cs < "$TMP/steady.clienttime"
put steady_cpu_wrk "$(python3 -c "print(round(($cu + $cs) * $CLK_TCK))")"
put steady_threads "$(python3 - "$TMP/steady.threads0" "$TMP/steady.threads1" <<'EOF'
import sys
a, b = (dict(kv.split("=") for kv in open(p).read().split()) for p in sys.argv[1:3])
print(",".join(f"{k}={int(v) - int(a.get(k, 0))}" for k, v in sorted(b.items(), key=lambda kv: -int(kv[1]))))
EOF
)"
say "    client: $(cat "$TMP/steady.client")"
stop_shadowtap steady
put load_end "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"

# --- table -----------------------------------------------------------------------
set +e
python3 - "$RES" "$RATE" "$STEADY" "$CONNS" "$STRICT" <<'EOF'
import statistics, sys
res, rate, steady, conns, strict = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
r = {}
for line in open(res):
    k, _, v = line.rstrip("\n").partition(" ")
    r[k] = v
def num(k, default=0.0):
    try:
        return float(r.get(k, ""))
    except ValueError:
        return default
tck, ncpu, rounds = num("clk_tck"), int(num("ncpu")), int(num("rounds", 1))
def wall_of(p):
    return num("steady_cpu_wall") if p == "steady" else num(f"{p}_wall")
def pct(p, what):
    w = wall_of(p)
    return num(f"{p}_cpu_{what}") / tck / w * 100 if w else 0.0
def ours(p):  # CPU % of one core of what this bench runs
    return sum(pct(p, w) for w in ("wrk", "nginx_a", "nginx_b", "extra"))
def other(p):
    return max(pct(p, "machine") - ours(p), 0.0)
def eff(p):  # requests per CPU-second of wrk + nginx A + nginx B + capture + softirq
    cpu = sum(num(f"{p}_cpu_{w}") for w in ("wrk", "nginx_a", "nginx_b", "extra", "softirq")) / tck
    return num(f"{p}_requests") / cpu if cpu else 0.0
def threads(p):
    w = wall_of(p)
    parts = [kv.split("=") for kv in r.get(f"{p}_threads", "").split(",") if "=" in kv]
    return " ".join(f"{k} {int(v) / tck / w * 100:.1f}%" for k, v in parts if int(v) > 0) if w else ""
sfx = lambda k: "" if k == 1 else f".{k}"

print()
print(f"shadowtap live bench: {ncpu} cores, nginx A worker_processes {r['workers']}, nginx B 1, "
      f"x.json {r['body_bytes']} bytes, wrk -t2 -c50 -d{r['duration']}s, ports {r['ports']}"
      + (f", shadowtap --config {r['config']}" if r.get("config", "-") != "-" else ""))
print(f"load average (1, 5, 15 min): start {r['load_start']}, end {r['load_end']} "
      f"(other sessions share this machine: see the other column)")
print()
hdr = (f"{'phase':<30} {'req/s':>8} {'x R0':>6} {'requests':>9} {'req/CPU-s':>9} {'norm.':>6}  "
       f"{'CPU % of one core: wrk|client, nginx A, nginx B, capture, softirq, other, idle':<62} {'load 1/5/15'}")
print(hdr)
print("-" * len(hdr))
names = {"r0": "R0 wrk alone", "r1": "R1 + tcpdump", "r2": "R2 + shadowtap --sample 1",
         "r3": "R3 + shadowtap --sample 100", "steady": "steady paced, --sample 100"}
def phase_row(p, name, r0p):
    rps = num("steady_rate") if p == "steady" else num(f"{p}_rps")
    reqs = num("steady_sent") if p == "steady" else num(f"{p}_requests")
    base = num(f"{r0p}_rps")
    ratio = f"{rps / base:.3f}" if base and p != "steady" else ""
    norm = f"{eff(p) / eff(r0p):.3f}" if eff(r0p) and p != "steady" else ""
    cap = "-" if p.startswith("r0") else f"{pct(p, 'extra'):.0f}"
    cpus = (f"{pct(p, 'wrk'):.0f}, {pct(p, 'nginx_a'):.0f}, {pct(p, 'nginx_b'):.0f}, {cap}, "
            f"{pct(p, 'softirq'):.0f}, {other(p):.0f}, {pct(p, 'idle'):.0f}")
    effs = f"{eff(p):.0f}" if p != "steady" else ""
    print(f"{name:<30} {rps:>8.0f} {ratio:>6} {int(reqs):>9} {effs:>9} {norm:>6}  {cpus:<62} {r.get(p + '_load', '')}")
    if f"{p}_wrk_errors" in r:
        print(f"{'':<30} wrk errors: {r[p + '_wrk_errors'].replace('_', ' ')}")
for k in range(1, rounds + 1):
    for p in ("r0", "r1", "r2"):
        phase_row(p + sfx(k), names[p] + (f" #{k}" if rounds > 1 else ""), "r0" + sfx(k))
phase_row("r3", names["r3"], "r0")
phase_row("steady", names["steady"], "r0")
print("  x R0 and norm. are against R0 of the same round (R3: R0 #1); norm. = ratio of req/CPU-s;")
print("  req/CPU-s = requests per CPU-second of wrk, nginx A and B, the capture and softirq;")
print("  softirq, other, idle from /proc/stat; other = busy CPU minus wrk, nginx, capture: other sessions' work")
print()
for k in range(1, rounds + 1):
    p = "r1" + sfx(k)
    print(f"R1 tcpdump{' #%d' % k if rounds > 1 else ''}: {int(num(p + '_tcpdump_captured'))} packets captured, "
          f"{int(num(p + '_tcpdump_received'))} received by filter, {r.get(p + '_tcpdump_drops', '?')} dropped by kernel")
print()
cols = [("r2", "R2 s=1"), ("r3", "R3 s=100"), ("steady", "steady s=100")]
print(f"{'shadowtap':<30}" + "".join(f"{c[1]:>14}" for c in cols))
def row(label, f):
    print(f"{label:<30}" + "".join(f"{f(p):>14}" for p, _ in cols))
row("CPU, % of one core", lambda p: f"{pct(p, 'extra'):.1f}")
row("VmHWM, MiB", lambda p: f"{num(p + '_vmhwm_kib') / 1024:.1f}")
row("packets captured", lambda p: f"{int(num(p + '_packets_captured'))}")
row("kernel drops", lambda p: f"{int(num(p + '_kernel_drops'))}")
row("interface drops", lambda p: f"{int(num(p + '_interface_drops'))}")
row("shard batch drops", lambda p: f"{int(num(p + '_shard_batch_drops'))}")
row("requests (nginx A count)", lambda p: f"{int(num(p + '_nginx_requests'))}" if p + "_nginx_requests" in r else "-")
row("exchanges rebuilt", lambda p: f"{int(num(p + '_exchanges'))}")
row("replay queue drops", lambda p: f"{int(num(p + '_replay_queue_drops'))}")
row("outcomes", lambda p: f"{int(num(p + '_outcomes'))}")
row("exit code after SIGTERM", lambda p: r.get(p + "_exit", "?"))
for p, label in cols:
    print(f"outcomes {label}: {r.get(p + '_outcomes_by', '') or '-'}")
for p, label in cols:
    print(f"threads {label} (% of one core over the load window): {threads(p) or '-'}")
for k in range(2, rounds + 1):
    p = "r2" + sfx(k)
    print(f"R2 #{k}: CPU {pct(p, 'extra'):.1f}%, VmHWM {num(p + '_vmhwm_kib') / 1024:.1f} MiB, "
          f"{int(num(p + '_packets_captured'))} packets, kernel drops {int(num(p + '_kernel_drops'))}, "
          f"shard batch drops {int(num(p + '_shard_batch_drops'))}, exchanges {int(num(p + '_exchanges'))}, "
          f"outcomes {r.get(p + '_outcomes_by', '') or '-'}")
print()
ex3, n3, w3 = num("r3_exchanges"), num("r3_nginx_requests"), num("r3_requests")
comp = ex3 / n3 * 100 if n3 else 0.0
print(f"completeness (R3, --sample 100, full speed): {int(ex3)} exchanges / {int(n3)} requests nginx A answered "
      f"= {comp:.3f} % (wrk counted {int(w3)}: {ex3 / w3 * 100 if w3 else 0:.3f} %);")
print(f"        {int(num('r3_replay_queue_drops'))} of them not replayed (replay queue drops, expected at full speed)")
sent, ok, ex_s, oc_s = num("steady_sent"), num("steady_ok"), num("steady_exchanges"), num("steady_outcomes")
qd_s, kd_s = num("steady_replay_queue_drops"), num("steady_kernel_drops")
match_s = 0
for kv in r.get("steady_outcomes_by", "").split(","):
    if kv.startswith("match="):
        match_s = int(kv[6:])
print(f"steady: target {rate}/s x {steady} s over {conns} connections; sent {int(sent)} ({int(ok)} answered 200, "
      f"nginx A counted {int(num('steady_nginx_requests'))}) in {num('steady_wall'):.2f} s = {num('steady_rate'):.0f}/s;")
print(f"        late sends {int(num('steady_late'))} (p99 {num('steady_late_p99_ms'):.1f} ms, max {num('steady_late_max_ms'):.1f} ms); "
      f"exchanges {int(ex_s)}, outcomes {int(oc_s)} (match {match_s}), replay queue drops {int(qd_s)}, "
      f"kernel drops {int(kd_s)}; replayed {oc_s / sent * 100 if sent else 0:.2f} %")
print()
ks = range(1, rounds + 1)
def ratios(p, f):
    return [f(p + sfx(k)) / f("r0" + sfx(k)) for k in ks if f("r0" + sfx(k))]
rps = lambda p: num(p + "_rps")
med = lambda xs: statistics.median(xs) if xs else 0.0
tag = f"median of {rounds}, " if rounds > 1 else ""
r1r0, r2r0, n1, n2 = med(ratios("r1", rps)), med(ratios("r2", rps)), med(ratios("r1", eff)), med(ratios("r2", eff))
kds = [int(num(p + "_kernel_drops")) for p in ["r2" + sfx(k) for k in ks] + ["r3", "steady"]]
checks = [
    (f"R2/R0 = {r2r0:.3f} ({tag}normalised {n2:.3f})", ">= 0.85", r2r0 >= 0.85),
    (f"R1/R0 = {r1r0:.3f} ({tag}normalised {n1:.3f}), tcpdump", "about 0.9", None),
    (f"kernel drops R2 / R3 / steady = {' / '.join(map(str, kds))}", "0", sum(kds) == 0),
    (f"completeness = {comp:.3f} %", ">= 99.9 %", comp >= 99.9),
    (f"steady replayed = {oc_s:.0f} / {sent:.0f}, queue drops {int(qd_s)}", "100 %, 0 drops",
     sent > 0 and oc_s >= sent and qd_s == 0),
    (f"steady client rate = {num('steady_rate'):.0f}/s", f"~{rate}/s (>= 97 %)", num("steady_rate") >= 0.97 * rate),
]
missed = 0
print(f"{'figure':<60} {'target':<18} result")
for what, target, ok_ in checks:
    verdict = "info" if ok_ is None else ("ok" if ok_ else "MISSED")
    missed += ok_ is False
    print(f"{what:<60} {target:<18} {verdict}")
print(f"\nlogs, metrics, outcomes and reports of this run: bench/work/live-last/")
sys.exit(1 if strict and missed else 0)
EOF
rc=$?
set -e
exit "$rc"
