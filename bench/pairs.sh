#!/usr/bin/env bash
# Benchmark `shadowtap pairs` against tshark and tcpflow on the same capture.
#
#   bench/pairs.sh [--runs N] [--stat median|best] [--size full|small]
#                  [--capture FILE] [--regen] [--no-build] [--keep-going]
#
#   --runs N      timed runs per tool (default 1); runs are interleaved
#                 (shadowtap, tshark, tcpflow, shadowtap, ...)
#   --stat S      how N runs are summarised: median (default) or best
#   --size S      full: bench/gen_capture.py defaults (~270 MB, 2500 connections,
#                 24000 exchanges); small: quick smoke run (~11 MB)
#   --capture F   use an existing pcap F instead (needs F.expected.json)
#   --regen       regenerate the capture even if it exists
#   --no-build    do not run `cargo build --release`
#   --keep-going  still time tshark/tcpflow when the shadowtap binary is missing
#
# Environment: SHADOWTAP=/path/to/binary overrides the binary (implies --no-build).
#
# Captures live in bench/work/ (git-ignored). Each timed command runs with the
# page cache warmed (cat FILE > /dev/null) and is measured with
# /usr/bin/time -f '%e %M' (wall seconds, peak RSS KiB). The exchange count is
# taken from a separate, untimed `shadowtap pairs FILE | wc -l` and compared to
# FILE.expected.json; the script exits non-zero when they differ or a tool fails.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
WORK=$HERE/work

RUNS=1
STAT=median
SIZE=full
CAPTURE=
REGEN=0
BUILD=1
KEEP_GOING=0

die() { echo "pairs.sh: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=${2:?}; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --stat) STAT=${2:?}; shift 2 ;;
        --stat=*) STAT=${1#*=}; shift ;;
        --size) SIZE=${2:?}; shift 2 ;;
        --size=*) SIZE=${1#*=}; shift ;;
        --capture) CAPTURE=${2:?}; shift 2 ;;
        --capture=*) CAPTURE=${1#*=}; shift ;;
        --regen) REGEN=1; shift ;;
        --no-build) BUILD=0; shift ;;
        --keep-going) KEEP_GOING=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "pairs.sh: unknown argument: $1" >&2; usage 2 ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
case "$STAT" in median|best) ;; *) die "--stat must be median or best" ;; esac
case "$SIZE" in
    full) GEN_ARGS=() ;;
    small) GEN_ARGS=(--connections 100 --exchanges 1000) ;;
    *) die "--size must be full or small" ;;
esac

# --- tools -------------------------------------------------------------------
missing=()
command -v tshark >/dev/null || missing+=(tshark)
command -v tcpflow >/dev/null || missing+=(tcpflow)
[ -x /usr/bin/time ] || missing+=(time)
command -v python3 >/dev/null || die "python3 is required"
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "pairs.sh: installing ${missing[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2 ||
            { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2; }
    else
        die "missing tools: ${missing[*]} (apt-get install -y ${missing[*]})"
    fi
fi

mkdir -p "$WORK"

# --- capture -----------------------------------------------------------------
if [ -n "$CAPTURE" ]; then
    CAP=$CAPTURE
    [ -s "$CAP" ] || die "no such capture: $CAP"
else
    CAP=$WORK/capture-$SIZE.pcap
    if [ "$REGEN" = 1 ] || [ ! -s "$CAP" ] || [ ! -s "$CAP.expected.json" ]; then
        echo "pairs.sh: generating $CAP" >&2
        rm -f "$CAP" "$CAP.expected.json"
        python3 "$HERE/gen_capture.py" --out "$CAP.tmp" ${GEN_ARGS[@]+"${GEN_ARGS[@]}"}
        mv "$CAP.tmp.expected.json" "$CAP.expected.json"
        mv "$CAP.tmp" "$CAP"
    fi
fi
[ -s "$CAP.expected.json" ] || die "missing $CAP.expected.json (generate with bench/gen_capture.py)"
read -r EXPECTED CONNS < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["exchanges"], d["connections"])' "$CAP.expected.json")
CAP_BYTES=$(stat -c %s "$CAP")

# --- shadowtap binary --------------------------------------------------------
if [ -n "${SHADOWTAP:-}" ]; then
    BIN=$SHADOWTAP
else
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/shadowtap
    if [ "$BUILD" = 1 ]; then
        echo "pairs.sh: cargo build --release" >&2
        if ! (cd "$ROOT" && cargo build --release >&2); then
            [ "$KEEP_GOING" = 1 ] || die "cargo build --release failed"
            echo "pairs.sh: cargo build --release failed, continuing (--keep-going)" >&2
        fi
    fi
fi
HAVE_BIN=1
if [ ! -x "$BIN" ]; then
    [ "$KEEP_GOING" = 1 ] || die "shadowtap binary not found: $BIN"
    echo "pairs.sh: shadowtap binary not found: $BIN, timing the other tools only" >&2
    HAVE_BIN=0
fi

# --- timing ------------------------------------------------------------------
TMP=$(mktemp -d "$WORK/run.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
FAILED=()

# timed NAME CMD...: warm the cache, run CMD once under /usr/bin/time, append
# "seconds rss_kib" to $TMP/NAME.times. CMD's stdout goes to /dev/null, its
# stderr to $TMP/NAME.log.
timed() {
    local name=$1; shift
    cat "$CAP" > /dev/null
    if /usr/bin/time -f '%e %M' -o "$TMP/$name.one" "$@" > /dev/null 2> "$TMP/$name.log"; then
        tail -n 1 "$TMP/$name.one" >> "$TMP/$name.times"
    else
        echo "pairs.sh: $name failed:" >&2
        tail -n 20 "$TMP/$name.log" "$TMP/$name.one" >&2 || true
        FAILED+=("$name")
        return 1
    fi
}

TCPFLOW_FILES=
for ((run = 1; run <= RUNS; run++)); do
    echo "pairs.sh: run $run/$RUNS on $CAP ($CAP_BYTES bytes)" >&2
    if [ "$HAVE_BIN" = 1 ]; then
        timed shadowtap "$BIN" pairs "$CAP" || true
    fi
    timed tshark tshark -r "$CAP" -Y http.request -T fields \
        -e http.request.method -e http.request.uri || true
    FLOWDIR=$(mktemp -d "$WORK/tcpflow.XXXXXX")
    if timed tcpflow tcpflow -r "$CAP" -o "$FLOWDIR" && [ -z "$TCPFLOW_FILES" ]; then
        TCPFLOW_FILES=$(find "$FLOWDIR" -maxdepth 1 -type f ! -name report.xml | wc -l)
    fi
    rm -rf "$FLOWDIR"
done

# --- correctness (untimed) ---------------------------------------------------
FOUND=
if [ "$HAVE_BIN" = 1 ]; then
    if ! FOUND=$( set -o pipefail; "$BIN" pairs "$CAP" 2> "$TMP/count.log" | wc -l ); then
        echo "pairs.sh: shadowtap pairs (count run) failed:" >&2
        tail -n 20 "$TMP/count.log" >&2 || true
        FAILED+=("shadowtap-count")
    fi
fi

# --- report ------------------------------------------------------------------
python3 - "$TMP" "$STAT" "$CAP" "$CAP_BYTES" "$EXPECTED" "$CONNS" "${FOUND:-}" "${TCPFLOW_FILES:-}" <<'EOF'
import os, statistics, sys
tmp, stat, cap, size, expected, conns, found, flows = sys.argv[1:9]
size = int(size)
res = {}
for tool in ("shadowtap", "tshark", "tcpflow"):
    p = os.path.join(tmp, tool + ".times")
    if not os.path.exists(p):
        continue
    runs = [tuple(map(float, l.split())) for l in open(p) if l.strip()]
    if not runs:
        continue
    if stat == "best":
        secs, rss = min(runs)
    else:
        secs = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
    res[tool] = (secs, rss, len(runs))

print("capture: %s (%.1f MB, %s connections, %s expected exchanges)"
      % (cap, size / 1e6, conns, expected))
print("%-10s %9s %9s %14s %5s" % ("tool", "seconds", "MB/s", "peak RSS MiB", "runs"))
for tool in ("shadowtap", "tshark", "tcpflow"):
    if tool in res:
        secs, rss, n = res[tool]
        print("%-10s %9.2f %9.1f %14.1f %5d"
              % (tool, secs, size / 1e6 / max(secs, 0.005), rss / 1024, n))
    else:
        print("%-10s %9s %9s %14s %5s" % (tool, "-", "-", "-", "-"))
if "shadowtap" in res:
    s = max(res["shadowtap"][0], 0.005)
    for other in ("tshark", "tcpflow"):
        if other in res:
            print("throughput shadowtap/%s: %.2fx" % (other, res[other][0] / s))
if flows:
    print("tcpflow flow files: %s (expected %d = 2 per connection)" % (flows, 2 * int(conns)))
print("exchanges found %s / expected %s" % (found if found else "?", expected))
EOF

status=0
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "pairs.sh: FAILED: ${FAILED[*]}" >&2
    status=1
fi
if [ "$HAVE_BIN" = 1 ] && [ "${FOUND:-}" != "$EXPECTED" ]; then
    echo "pairs.sh: shadowtap found ${FOUND:-?} exchanges, expected $EXPECTED" >&2
    status=1
elif [ "$HAVE_BIN" = 0 ]; then
    status=1
fi
exit $status
