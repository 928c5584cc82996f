#!/usr/bin/env bash
# Benchmark the live daemon under hostile traffic: a SYN flood of half-open
# connections from spoofed sources and a slowloris, with legitimate
# requests mixed in. What it shows: peak RSS and tracked flows against
# their bounds, what the bounds refused, kernel drops, and how much of the
# legitimate traffic was still rebuilt and compared during the attack.
#
#   bench/flood.sh [--duration S] [--rate N] [--slow N] [--legit N]
#                  [--max-flows N] [--no-build]
#
#   --duration S   seconds of the SYN flood and the legitimate traffic
#                  (default 10); the slowloris lasts 4 s longer
#   --rate N       SYN/s of the flood; 0 = as fast as one python process
#                  sends from a raw socket (default 0)
#   --slow N       slowloris connections (default 2000)
#   --legit N      legitimate requests/s, each on a new connection, so each
#                  opens a flow in the middle of the flood (default 100)
#   --max-flows N  [capture] max_flows of the daemon (default 10000)
#   --no-build     do not run `cargo build --release`
#
# Environment: SHADOWTAP=/path/to/binary overrides the binary (implies
# --no-build). Needs root: two network namespaces joined by a veth pair,
# raw sockets. Nothing leaves the namespaces.
#
# One run:
#  0. Namespaces S (server) and C (client), veth S:10.235.0.1 -
#     C:10.235.0.2; S routes 10.236.0.0/16 (the spoofed sources) to C,
#     which drops the SYN-ACKs (as a flood's replies go nowhere). In S:
#     the legacy service (tests/common/flood.py serve: python's threaded
#     http.server, deep backlog) on 10.235.0.1:8080, its twin (the
#     candidate) on 127.0.0.1:8081, and `shadowtap run --interface <veth>
#     --port 8080` with `[capture] max_flows`, idle_timeout_s = 10 and the
#     other bounds at their defaults.
#  1. The slowloris (flood.py slowloris, one header byte a second on each
#     connection) connects; once its flows are tracked, the SYN flood
#     (flood.py syn, 200,000 distinct spoofed 4-tuples sent round and round)
#     and the legitimate client (flood.py legit) start together, for S
#     seconds. /metrics and /proc/PID/status are sampled every 0.5 s.
#  2. The outcome lines of the legitimate requests (?legit=i) are awaited
#     (up to 30 s after the attack), then SIGTERM.
#  Table: what was sent, peak tracked flows (bound), idle and peak RSS
#  (VmHWM), flows refused, kernel and interface drops, packets captured,
#  and completeness: legitimate requests with an outcome line (and a
#  match) of those answered 200.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
WORK=$HERE/work
FLOOD=$ROOT/tests/common/flood.py

DURATION=10
RATE=0
SLOW=2000
LEGIT=100
MAX_FLOWS=10000
BUILD=1

die() { echo "flood.sh: $*" >&2; exit 2; }
say() { echo "flood.sh: $*" >&2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=${2:?}; shift 2 ;;
        --duration=*) DURATION=${1#*=}; shift ;;
        --rate) RATE=${2:?}; shift 2 ;;
        --rate=*) RATE=${1#*=}; shift ;;
        --slow) SLOW=${2:?}; shift 2 ;;
        --slow=*) SLOW=${1#*=}; shift ;;
        --legit) LEGIT=${2:?}; shift 2 ;;
        --legit=*) LEGIT=${1#*=}; shift ;;
        --max-flows) MAX_FLOWS=${2:?}; shift 2 ;;
        --max-flows=*) MAX_FLOWS=${1#*=}; shift ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "flood.sh: unknown argument: $1" >&2; usage 2 ;;
    esac
done
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive integer"
[[ "$RATE" =~ ^[0-9]+$ ]] || die "--rate must be a non-negative integer"
[[ "$SLOW" =~ ^[0-9]+$ ]] || die "--slow must be a non-negative integer"
[[ "$LEGIT" =~ ^[1-9][0-9]*$ ]] || die "--legit must be a positive integer"
[[ "$MAX_FLOWS" =~ ^[1-9][0-9]*$ ]] || die "--max-flows must be a positive integer"
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, raw sockets)"
for tool in ip python3 curl; do command -v "$tool" >/dev/null || die "$tool is required"; done

if [ -n "${SHADOWTAP:-}" ]; then
    BIN=$SHADOWTAP
else
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/shadowtap
    if [ "$BUILD" = 1 ]; then
        say "cargo build --release"
        (cd "$ROOT" && cargo build --release >&2) || die "cargo build --release failed"
    fi
fi
[ -x "$BIN" ] || die "shadowtap binary not found: $BIN"

# Sockets: the slowloris and the services' threads each take one.
ulimit -n "$(ulimit -Hn)"
mkdir -p "$WORK"
TMP=$(mktemp -d "$WORK/flood-run.XXXXXX")
NS_S=stfb$$s
NS_C=stfb$$c
DEV_S=stfb$$vs
DEV_C=stfb$$vc
PIDS=()
ST_PID=
cleanup() {
    local rc=$?
    set +e
    if [ -n "$ST_PID" ]; then kill -TERM "$ST_PID" 2>/dev/null; wait "$ST_PID" 2>/dev/null; fi
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    ip netns del "$NS_S" 2>/dev/null
    ip netns del "$NS_C" 2>/dev/null
    ip link del "$DEV_S" 2>/dev/null
    rm -rf "$WORK/flood-last"
    mv "$TMP" "$WORK/flood-last" 2>/dev/null || rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- namespaces ----------------------------------------------------------------
ip netns add "$NS_S"
ip netns add "$NS_C"
ip link add "$DEV_S" type veth peer name "$DEV_C"
ip link set "$DEV_S" netns "$NS_S"
ip link set "$DEV_C" netns "$NS_C"
ip -n "$NS_S" addr add 10.235.0.1/24 dev "$DEV_S"
ip -n "$NS_C" addr add 10.235.0.2/24 dev "$DEV_C"
for pair in "$NS_S $DEV_S" "$NS_C $DEV_C"; do
    set -- $pair
    ip -n "$1" link set lo up
    ip -n "$1" link set "$2" up
done
ip -n "$NS_S" route add 10.236.0.0/16 via 10.235.0.2
in_s() { ip netns exec "$NS_S" "$@"; }

# --- services and the daemon -------------------------------------------------
mkdir -p "$TMP/www"
for k in 0 1 2 3 4; do echo "{\"item\":$k,\"tags\":[\"a\",\"b\"]}" > "$TMP/www/item$k.json"; done
# Background jobs start `ip netns exec` itself (not a shell function, which
# would fork a subshell): ip execs the program, so $! is its pid.
ip netns exec "$NS_S" python3 "$FLOOD" serve --bind 10.235.0.1 --port 8080 --directory "$TMP/www" \
    > /dev/null 2> "$TMP/legacy.log" & PIDS+=($!)
ip netns exec "$NS_S" python3 "$FLOOD" serve --bind 127.0.0.1 --port 8081 --directory "$TMP/www" \
    > /dev/null 2> "$TMP/candidate.log" & PIDS+=($!)
cat > "$TMP/shadowtap.toml" <<EOF
[capture]
max_flows = $MAX_FLOWS
idle_timeout_s = 10
EOF
METRICS=http://127.0.0.1:9090
scrape() { in_s curl -fsS --max-time 5 "$METRICS/metrics"; }
metric() { awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%d\n", s }' "$2"; }
for _ in $(seq 50); do in_s curl -fsS -o /dev/null http://10.235.0.1:8080/item0.json 2>/dev/null && break; sleep 0.1; done
SHADOWTAP_LOG=info ip netns exec "$NS_S" "$BIN" run --config "$TMP/shadowtap.toml" --interface "$DEV_S" --port 8080 \
    --candidate http://127.0.0.1:8081 --out "$TMP/out.jsonl" --metrics 127.0.0.1:9090 > /dev/null 2> "$TMP/daemon.log" &
ST_PID=$!
for _ in $(seq 100); do
    [ "$(in_s curl -fsS --max-time 1 "$METRICS/healthz" 2>/dev/null)" = ok ] && break
    kill -0 "$ST_PID" 2>/dev/null || { cat "$TMP/daemon.log" >&2; die "the daemon exited"; }
    sleep 0.1
done
sleep 0.5
status_mb() { awk -v f="$1:" '$1 == f { printf "%d\n", $2 / 1024 }' "/proc/$ST_PID/status"; }
IDLE_RSS=$(status_mb VmRSS)
say "daemon up (RSS $IDLE_RSS MB); slowloris of $SLOW connections"

# --- the attack --------------------------------------------------------------
ip netns exec "$NS_C" python3 "$FLOOD" slowloris --dst 10.235.0.1 --port 8080 --conns "$SLOW" --duration $((DURATION + 4)) \
    > "$TMP/slowloris.json" & SLOW_PID=$!; PIDS+=($SLOW_PID)
for _ in $(seq 300); do
    scrape > "$TMP/m" && [ "$(metric shadowtap_active_flows "$TMP/m")" -ge $((SLOW * 9 / 10)) ] && break
    sleep 0.1
done
say "slowloris tracked ($(metric shadowtap_active_flows "$TMP/m") flows); SYN flood at $([ "$RATE" = 0 ] && echo "top speed" || echo "$RATE/s") and $LEGIT legitimate requests/s for $DURATION s"
ip netns exec "$NS_C" python3 "$FLOOD" syn --dst 10.235.0.1 --port 8080 --src-net 10.236.0.0/16 --rate "$RATE" \
    --duration "$DURATION" --pool 200000 > "$TMP/syn.json" & SYN_PID=$!; PIDS+=($SYN_PID)
ip netns exec "$NS_C" python3 "$FLOOD" legit --dst 10.235.0.1 --port 8080 --rate "$LEGIT" --duration "$DURATION" \
    > "$TMP/legit.json" & LEGIT_PID=$!; PIDS+=($LEGIT_PID)
PEAK_FLOWS=0
PEAK_RSS=0
while kill -0 "$SYN_PID" 2>/dev/null || kill -0 "$LEGIT_PID" 2>/dev/null; do
    if scrape > "$TMP/m"; then
        f=$(metric shadowtap_active_flows "$TMP/m")
        [ "$f" -gt "$PEAK_FLOWS" ] && PEAK_FLOWS=$f
    fi
    r=$(status_mb VmRSS)
    [ "$r" -gt "$PEAK_RSS" ] && PEAK_RSS=$r
    sleep 0.5
done
wait "$SYN_PID" "$LEGIT_PID" "$SLOW_PID"

# --- completeness ------------------------------------------------------------
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
LEGIT_OK=$(field "$TMP/legit.json" legit_ok)
# Outcome lines of legitimate requests: all of them, or those that match.
legit_lines() {
    python3 - "$TMP/out.jsonl" "${1:-}" <<'PY'
import json, os, sys
path, want = sys.argv[1], sys.argv[2]
# Complete lines only: the daemon may be writing the last one.
lines = open(path).read().split("\n")[:-1] if os.path.exists(path) else []
outcomes = [json.loads(line) for line in lines]
print(sum("legit=" in (o.get("uri") or "") and (not want or o.get("outcome") == want) for o in outcomes))
PY
}
for _ in $(seq 300); do [ "$(legit_lines)" -ge "$LEGIT_OK" ] && break; sleep 0.1; done
scrape > "$TMP/metrics.final"
PEAK_HWM=$(status_mb VmHWM)
kill -TERM "$ST_PID"; wait "$ST_PID" || say "the daemon exited with $?"; ST_PID=
LINES=$(legit_lines)
MATCHES=$(legit_lines match)
m() { metric "$1" "$TMP/metrics.final"; }
pct() { python3 -c "import sys; a, b = int(sys.argv[1]), int(sys.argv[2]); print(f'{100 * a / b:.2f} %' if b else '-')" "$1" "$2"; }
cat <<EOF

flood.sh: $DURATION s of attack, max_flows $MAX_FLOWS, binary $BIN
  SYN flood             $(field "$TMP/syn.json" syn_sent) SYNs sent, $(field "$TMP/syn.json" rate)/s, $(field "$TMP/syn.json" distinct) distinct spoofed 4-tuples
  slowloris             $(field "$TMP/slowloris.json" slowloris_connections) connections, $(field "$TMP/slowloris.json" bytes_sent) bytes
  legitimate            $(field "$TMP/legit.json" legit_sent) requests on new connections, $LEGIT_OK answered 200
  tracked flows (peak)  $PEAK_FLOWS of max_flows $MAX_FLOWS
  RSS                   idle $IDLE_RSS MB, peak sampled $PEAK_RSS MB, VmHWM $PEAK_HWM MB
  flows refused         $(m shadowtap_flows_refused_total)
  packets captured      $(m shadowtap_packets_captured_total)
  kernel drops          $(m shadowtap_kernel_drops_total)
  interface drops       $(m shadowtap_interface_drops_total)
  reassembly dropped    $(m shadowtap_reassembly_dropped_bytes_total) bytes
  legitimate compared   $LINES outcome lines of $LEGIT_OK ($(pct "$LINES" "$LEGIT_OK")), $MATCHES match
EOF
