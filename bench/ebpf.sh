#!/usr/bin/env bash
# Benchmark the eBPF capture source (`shadowtap run --source ebpf`) against
# the pcap source and against nothing: what each costs the service it
# watches, over HTTP and HTTPS, and how much of the traffic it rebuilds.
#
#   bench/ebpf.sh [--duration S] [--rounds N] [--rate N] [--steady S] [--conns N]
#                 [--workers W] [--config FILE] [--no-build] [--strict]
#
#   --duration S  seconds of each wrk run (default $DURATION or 10)
#   --rounds N    run the rate phases N times, interleaved, and judge the
#                 median ratios (default 1)
#   --rate N      requests/s of the paced steady phases (default 5000)
#   --steady S    seconds of each steady phase (default 10)
#   --conns N     keep-alive connections of the paced client (default 16)
#   --workers W   nginx A worker_processes, a number or auto (default 2)
#   --config FILE passed to every `shadowtap run` as --config
#   --no-build    do not run `cargo build --release`
#   --strict      exit 1 when a target is missed (default: report only)
#
# Environment: SHADOWTAP=/path/to/binary overrides the binary (implies
# --no-build). Root is needed (CAP_NET_RAW for the pcap source, CAP_BPF,
# CAP_PERFMON and, for the libssl uprobes, CAP_SYS_ADMIN for the eBPF one).
# Network: loopback only.
#
# One run, all on 127.0.0.1 with free ports:
#  0. nginx A (the legacy service: HTTP on PORT_A, HTTPS on PORT_T with a
#     self-signed certificate made here by openssl, stub_status on PORT_S)
#     and nginx B (the candidate, HTTP on PORT_B), as in bench/live.sh:
#     same small static x.json, access_log off, keep-alive, and
#     sendfile off (a body sent by sendfile(2) never passes through nginx,
#     so the eBPF source would mark every exchange a capture gap).
#  1. Rate phases, each `wrk -t2 -c50 -dS` against nginx A, repeated
#     --rounds times, interleaved:
#       H0  HTTP, nothing watching
#       H1  HTTP, `shadowtap run --source pcap --interface lo --port PORT_A`
#       H2  HTTP, `shadowtap run --source ebpf --pid NGINX_A --port PORT_A`
#       S0  HTTPS, nothing watching
#       S2  HTTPS, `shadowtap run --source ebpf --pid NGINX_A --port PORT_T`
#     every shadowtap with --sample 1 and replaying to nginx B: as R2 of
#     bench/live.sh, these measure the cost of watching (every packet or
#     every socket call still reaches shadowtap; 1 % of the connections
#     go on to HTTP parsing and replay). Per phase: nginx A's rate and its
#     ratio to the bare phase of the same round, shadowtap's CPU
#     (/proc/PID/stat), and drops: kernel drops for pcap, ring-buffer
#     drops and chunks cut for eBPF. The eBPF program itself runs inside
#     nginx's system calls, so its cost is in nginx's CPU and in the rate,
#     not in shadowtap's CPU. Also the context switches of shadowtap's
#     `reader` thread per request: how often the kernel wakes it.
#  2. Completeness, once each, wrk at full speed with --sample 100:
#     C1 pcap HTTP, C2 eBPF HTTP, C3 eBPF HTTPS; shadowtap_exchanges_total
#     against the requests nginx A answered (stub_status delta) and
#     against wrk's count. Replay queue drops are expected here (the
#     candidate shares the 2 cores) and are reported, not counted as lost.
#  3. Steady, the paced client (bench/paced_client.py) at --rate for
#     --steady seconds, --sample 100, everything replayed: P2 eBPF HTTP,
#     P3 eBPF HTTPS. Must be 0 drops of any kind, every request rebuilt,
#     replayed and matched.
#  Then a table and the targets of issue 11: H2/H0 >= 0.9 and above
#  H1/H0; S2/S0 >= 0.9; 0 drops and 100 % at the steady rate.
# As in bench/live.sh, CPU of wrk, nginx A and B, shadowtap, softirq, the
# rest of the machine ("other": other sessions) and idle are shown per
# phase, and req/CPU-s with its ratio ("norm.") as a figure less moved by
# other work on the machine.
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

die() { echo "ebpf.sh: $*" >&2; exit 2; }
say() { echo "ebpf.sh: $*" >&2; }
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
        *) echo "ebpf.sh: unknown argument: $1" >&2; usage 2 ;;
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
[ "$(id -u)" = 0 ] || die "run as root: the eBPF source needs CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN (uprobes)"
[ -r /sys/kernel/btf/vmlinux ] || die "this kernel has no BTF (/sys/kernel/btf/vmlinux): the eBPF source can not run"

# --- tools -------------------------------------------------------------------
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
need_http_bench_tools
command -v openssl >/dev/null || die "openssl is required (the HTTPS phases' certificate)"
wrk -v 2>&1 | grep -qi openssl || say "wrk may lack TLS support: $(wrk -v 2>&1 | head -1)"

# --- shadowtap binary --------------------------------------------------------
if [ -n "${SHADOWTAP:-}" ]; then
    BIN=$SHADOWTAP
else
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/shadowtap
    if [ "$BUILD" = 1 ]; then
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
TMP=$(mktemp -d "$WORK/ebpf-run.XXXXXX")
chmod 755 "$TMP"   # nginx workers run as nobody and serve $TMP/www
RES=$TMP/results          # "key value" lines, read by the table at the end
: > "$RES"
NGINX_A_PID=
NGINX_B_PID=
ST_PID=
cleanup() {
    local rc=$?
    set +e
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
    rm -rf "$WORK/ebpf-last"
    rm -rf "$TMP/www" "$TMP"/nginx-*/{body,proxy,fastcgi,uwsgi,scgi} "$TMP/tls"
    mv "$TMP" "$WORK/ebpf-last" 2>/dev/null || rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

put() { echo "$1 $2" >> "$RES"; }
CLK_TCK=$(getconf CLK_TCK)
put ncpu "$(nproc)"
put clk_tck "$CLK_TCK"
put duration "$DURATION"
put workers "$WORKERS"
put rounds "$ROUNDS"
put kernel "$(uname -r)"
put load_start "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"

# --- ports, content, certificate -----------------------------------------------
# Five distinct free ports, all bound at once so they differ.
read -r PORT_A PORT_T PORT_B PORT_S PORT_M < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
put ports "A=$PORT_A,A-https=$PORT_T,B=$PORT_B,status=$PORT_S,metrics=$PORT_M"

mkdir -p "$TMP/www" "$TMP/tls"
python3 - "$TMP/www/x.json" <<'EOF'
import json, os, sys
body = {"id": 42, "name": "shadowtap ebpf bench", "active": True, "price": {"amount": "19.90", "currency": "EUR"},
        "tags": ["a", "b", "c"], "updated_at": "2024-01-01T00:00:00Z", "note": "small static file " * 4}
with open(sys.argv[1], "w") as f:
    f.write(json.dumps(body, separators=(",", ":")) + "\n")
os.utime(sys.argv[1], (1704067200, 1704067200))  # stable ETag / Last-Modified on A and B
EOF
chmod -R a+rX "$TMP/www"
put body_bytes "$(stat -c %s "$TMP/www/x.json")"
# ECDSA P-256: the handshake costs little next to RSA, and wrk's 50
# connections shake hands once each (keep-alive).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -keyout "$TMP/tls/key.pem" -out "$TMP/tls/cert.pem" 2>/dev/null ||
    die "openssl could not make the self-signed certificate"

# --- nginx A and B -------------------------------------------------------------
write_nginx_conf() { # NAME PORT WORKERS [HTTPS_PORT STATUS_PORT]
    local dir=$TMP/nginx-$1 extra=
    mkdir -p "$dir"
    [ -z "${4:-}" ] || extra="server { listen 127.0.0.1:$4 ssl; root $TMP/www;
        ssl_certificate $TMP/tls/cert.pem; ssl_certificate_key $TMP/tls/key.pem; }
    server { listen 127.0.0.1:$5; location = /status { stub_status; } }"
    cat > "$dir/nginx.conf" <<EOF
worker_processes $3;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    # sendfile off: the eBPF source sees what a process reads and writes,
    # and a body sent with sendfile(2) goes from the page cache to the
    # socket without passing through nginx: shadowtap counts those bytes
    # (shadowtap_ebpf_skipped_bytes_total) and marks the exchange a capture
    # gap, so nothing would be replayed. Off in every phase, bare included.
    sendfile off;
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
    $extra
}
EOF
    "$NGINX" -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" || { cat "$dir/error.log" >&2; die "bad nginx config $1"; }
}
start_nginx() { # NAME -> pid in $!
    local dir=$TMP/nginx-$1
    "$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' &
}
fetch() { curl -fsSk --max-time 5 "$1"; }
wait_http() { # URL PID WHAT
    for _ in $(seq 100); do
        fetch "$1" >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || die "$3 did not start"
        sleep 0.1
    done
    tail -n 3 "$TMP"/nginx-*/error.log >&2
    die "$3 does not answer at $1"
}
command -v curl >/dev/null || die "curl is required"

write_nginx_conf a "$PORT_A" "$WORKERS" "$PORT_T" "$PORT_S"
write_nginx_conf b "$PORT_B" 1
start_nginx a; NGINX_A_PID=$!
start_nginx b; NGINX_B_PID=$!
wait_http "http://127.0.0.1:$PORT_A/x.json" "$NGINX_A_PID" "nginx A"
wait_http "https://127.0.0.1:$PORT_T/x.json" "$NGINX_A_PID" "nginx A (https)"
wait_http "http://127.0.0.1:$PORT_B/x.json" "$NGINX_B_PID" "nginx B"
wait_http "http://127.0.0.1:$PORT_S/status" "$NGINX_A_PID" "nginx A status"
say "nginx $("$NGINX" -v 2>&1 | sed 's/.*\///'): A 127.0.0.1:$PORT_A and https $PORT_T (worker_processes $WORKERS), B 127.0.0.1:$PORT_B (1)"

# Requests nginx A has answered so far (stub_status, outside the watched ports).
nginx_a_requests() { fetch "http://127.0.0.1:$PORT_S/status" | awk 'NR == 3 { print $3 }'; }

# Context switches of the thread named `reader` of PID (the capture
# reader: each is a wake-up by the kernel, one per ring-buffer event or
# per libpcap block).
reader_switches() { # PID
    local t total=0
    for t in /proc/"$1"/task/*; do
        [ "$(cat "$t/comm" 2>/dev/null)" = reader ] || continue
        total=$((total + $(awk '/ctxt_switches/ { s += $2 } END { print s + 0 }' "$t/status" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

# --- wrk -----------------------------------------------------------------------
# run_wrk PHASE URL [EXTRA_PID]: wrk -t2 -c50 against URL; records the rate,
# the request count, the CPU of wrk, nginx A and B, EXTRA_PID and the machine.
run_wrk() {
    local phase=$1 url=$2 extra=${3:-} a0 b0 e0 m0 w0 a1 b1 e1 m1 w1 t0 t1 rps reqs wu ws
    put "${phase}_load" "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
    a0=$(tree_ticks "$NGINX_A_PID"); b0=$(tree_ticks "$NGINX_B_PID"); m0=$(machine_ticks)
    e0=0; [ -z "$extra" ] || e0=$(ticks_of "$extra")
    w0=0; [ -z "$extra" ] || w0=$(reader_switches "$extra")
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%U %S' -o "$TMP/$phase.wrktime" \
        wrk -t2 -c50 -d"${DURATION}s" "$url" > "$TMP/$phase.wrk" 2>&1 ||
        { cat "$TMP/$phase.wrk" >&2; die "wrk failed ($phase)"; }
    t1=$EPOCHREALTIME
    a1=$(tree_ticks "$NGINX_A_PID"); b1=$(tree_ticks "$NGINX_B_PID"); m1=$(machine_ticks)
    e1=0; [ -z "$extra" ] || e1=$(ticks_of "$extra")
    w1=0; [ -z "$extra" ] || w1=$(reader_switches "$extra")
    put "${phase}_reader_switches" "$((w1 - w0))"
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
    say "    wrk: $rps requests/s ($reqs requests)"
}

# --- shadowtap -------------------------------------------------------------------
scrape() { fetch "http://127.0.0.1:$PORT_M/metrics" > "$1" 2>/dev/null; }

start_shadowtap() { # PHASE SAMPLE pcap|ebpf PORT
    local source_args
    if [ "$3" = pcap ]; then
        source_args=(--source pcap --interface lo)
    else
        source_args=(--source ebpf --pid "$NGINX_A_PID")
    fi
    "$BIN" run ${ST_CONFIG:+--config "$ST_CONFIG"} "${source_args[@]}" --port "$4" \
        --candidate "http://127.0.0.1:$PORT_B" --sample "$2" \
        --metrics "127.0.0.1:$PORT_M" --out "$TMP/$1.jsonl" --report "$TMP/$1.report.json" \
        2> "$TMP/$1.shadowtap.log" &
    ST_PID=$!
    put "$1_source" "$3"
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
        cur="$ex $oc $qd $(metric shadowtap_packets_captured_total "$m") $(metric shadowtap_ebpf_events_total "$m")"
        [ "$cur" = "$prev" ] && [ $((oc + qd)) -ge "$ex" ] && return 0
        prev=$cur
    done
    say "    metrics still moving after 30 s ($1): exchanges $ex, outcomes $oc, queue drops $qd"
}

stop_shadowtap() { # PHASE
    local p=$1 m=$TMP/$1.metrics rc=0 k
    settle_metrics "$p"
    put "${p}_vmhwm_kib" "$(awk '/^VmHWM:/ { print $2 }' "/proc/$ST_PID/status")"
    for k in packets_captured kernel_drops interface_drops shard_batch_drops exchanges replay_queue_drops \
             ebpf_events ebpf_bytes ebpf_ring_buffer_drops ebpf_chunks_cut ebpf_skipped_bytes ebpf_connections_opened \
             ebpf_connections_refused ebpf_tls_not_decrypted ebpf_tls_unmatched; do
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

HTTP_URL=http://127.0.0.1:$PORT_A/x.json
HTTPS_URL=https://127.0.0.1:$PORT_T/x.json

# --- 1. rate phases (repeated --rounds times, interleaved) ------------------------
for ((round = 1; round <= ROUNDS; round++)); do
    sfx=; [ "$round" = 1 ] || sfx=".$round"
    [ "$ROUNDS" = 1 ] || say "round $round/$ROUNDS"
    say "H0: wrk -t2 -c50 -d${DURATION}s $HTTP_URL (nothing watching)"
    run_wrk "h0$sfx" "$HTTP_URL"
    say "H1: the same under shadowtap run --source pcap --sample 1"
    start_shadowtap "h1$sfx" 1 pcap "$PORT_A"
    run_wrk "h1$sfx" "$HTTP_URL" "$ST_PID"
    stop_shadowtap "h1$sfx"
    say "H2: the same under shadowtap run --source ebpf --sample 1"
    start_shadowtap "h2$sfx" 1 ebpf "$PORT_A"
    run_wrk "h2$sfx" "$HTTP_URL" "$ST_PID"
    stop_shadowtap "h2$sfx"
    say "S0: wrk -t2 -c50 -d${DURATION}s $HTTPS_URL (nothing watching)"
    run_wrk "s0$sfx" "$HTTPS_URL"
    say "S2: the same under shadowtap run --source ebpf --sample 1"
    start_shadowtap "s2$sfx" 1 ebpf "$PORT_T"
    run_wrk "s2$sfx" "$HTTPS_URL" "$ST_PID"
    stop_shadowtap "s2$sfx"
done

# --- 2. completeness: --sample 100 at full speed -----------------------------------
completeness() { # PHASE SOURCE PORT URL
    start_shadowtap "$1" 100 "$2" "$3"
    local n0 n1
    n0=$(nginx_a_requests)
    run_wrk "$1" "$4" "$ST_PID"
    sleep 0.5
    n1=$(nginx_a_requests)
    put "$1_nginx_requests" "$((n1 - n0 - 1))"
    stop_shadowtap "$1"
}
say "C1 (completeness): HTTP, shadowtap --source pcap --sample 100"
completeness c1 pcap "$PORT_A" "$HTTP_URL"
say "C2 (completeness): HTTP, shadowtap --source ebpf --sample 100"
completeness c2 ebpf "$PORT_A" "$HTTP_URL"
say "C3 (completeness): HTTPS, shadowtap --source ebpf --sample 100"
completeness c3 ebpf "$PORT_T" "$HTTPS_URL"

# --- 3. steady rate ------------------------------------------------------------------
steady() { # PHASE PORT [--tls]
    local p=$1 n0 n1 s0 s1 a0 a1 b0 b1 m0 m1 w0 t0 t1 cu cs
    start_shadowtap "$p" 100 ebpf "$2"
    n0=$(nginx_a_requests)
    put "${p}_load" "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
    s0=$(ticks_of "$ST_PID"); a0=$(tree_ticks "$NGINX_A_PID"); b0=$(tree_ticks "$NGINX_B_PID"); m0=$(machine_ticks)
    w0=$(reader_switches "$ST_PID")
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%U %S' -o "$TMP/$p.clienttime" \
        python3 "$HERE/paced_client.py" "$2" "$RATE" "$STEADY" "$CONNS" ${3:-} --user-agent shadowtap-ebpf-bench/1 \
        > "$TMP/$p.client" || die "paced client failed ($p)"
    t1=$EPOCHREALTIME
    s1=$(ticks_of "$ST_PID"); a1=$(tree_ticks "$NGINX_A_PID"); b1=$(tree_ticks "$NGINX_B_PID"); m1=$(machine_ticks)
    put "${p}_reader_switches" "$(($(reader_switches "$ST_PID") - w0))"
    sleep 0.5
    n1=$(nginx_a_requests)
    local _ sent ok bad wall crate late latep99 latemax
    read -r _ sent _ ok _ bad _ wall _ crate _ late _ latep99 _ latemax < "$TMP/$p.client"
    put "${p}_sent" "$sent"; put "${p}_ok" "$ok"; put "${p}_bad" "$bad"; put "${p}_client_wall" "$wall"
    put "${p}_rps" "$crate"; put "${p}_late" "$late"; put "${p}_late_p99_ms" "$latep99"; put "${p}_late_max_ms" "$latemax"
    put "${p}_requests" "$sent"
    put "${p}_nginx_requests" "$((n1 - n0 - 1))"
    put "${p}_wall" "$(python3 -c "print(f'{$t1 - $t0:.3f}')")"
    put "${p}_cpu_extra" "$((s1 - s0))"; put "${p}_cpu_nginx_a" "$((a1 - a0))"; put "${p}_cpu_nginx_b" "$((b1 - b0))"
    put_machine "$p" "$m0" "$m1"
    read -r cu cs < "$TMP/$p.clienttime"
    put "${p}_cpu_wrk" "$(python3 -c "print(round(($cu + $cs) * $CLK_TCK))")"
    say "    client: $(cat "$TMP/$p.client")"
    stop_shadowtap "$p"
}
say "P2 (steady): paced client, $RATE requests/s for ${STEADY}s over $CONNS connections, HTTP, eBPF --sample 100"
steady p2 "$PORT_A"
say "P3 (steady): the same over HTTPS"
steady p3 "$PORT_T" --tls
put load_end "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"

# --- table -----------------------------------------------------------------------------
set +e
python3 "$HERE/ebpf_table.py" "$RES" "$RATE" "$STEADY" "$CONNS" "$STRICT"
rc=$?
set -e
exit "$rc"
