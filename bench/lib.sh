# Shared by bench/replay.sh, bench/live.sh and bench/ebpf.sh (sourced; they
# define `say`, `die` and, for put_machine, `put` first).

# Installs nginx, wrk, tcpdump and GNU time when missing (apt-get, as
# root; otherwise says what to run), and sets NGINX and TCPDUMP.
need_http_bench_tools() {
    local missing=()
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v tcpdump >/dev/null || [ -x /usr/sbin/tcpdump ] || missing+=(tcpdump)
    [ -x /usr/bin/time ] || missing+=(time)
    command -v python3 >/dev/null || die "python3 is required"
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            say "installing ${missing[*]}"
            DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2 ||
                { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2; }
        else
            die "missing tools: ${missing[*]} (apt-get install -y ${missing[*]})"
        fi
    fi
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
    TCPDUMP=$(command -v tcpdump || echo /usr/sbin/tcpdump)
}

# --- CPU accounting (bench/live.sh, bench/ebpf.sh) --------------------------

# CPU ticks (utime+stime, all threads) of a process and its children.
ticks_of() { # PID...
    local total=0 p f
    for p in "$@"; do
        f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f12,13) || continue
        [ -n "$f" ] && total=$((total + ${f% *} + ${f#* }))
    done
    echo "$total"
}
tree_ticks() { # PID: the process and its children (nginx master and workers)
    local kids
    mapfile -t kids < <(pgrep -P "$1" || true)
    ticks_of "$1" "${kids[@]}"
}
# Ticks of the whole machine (all CPUs): "busy softirq idle", busy being
# everything but softirq, idle and iowait. Softirq is its own column: this
# kernel accounts it apart (IRQ time accounting), not to the process it
# interrupted, and on lo it is mostly our own traffic's receive path
# (including the copy of each packet to a capture ring).
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $9, $8, $5 + $6 }' /proc/stat; }
put_machine() { # PHASE "busy0 soft0 idle0" "busy1 soft1 idle1"
    local a b
    read -r -a a <<< "$2"
    read -r -a b <<< "$3"
    put "$1_cpu_machine" "$((b[0] - a[0]))"
    put "$1_cpu_softirq" "$((b[1] - a[1]))"
    put "$1_cpu_idle" "$((b[2] - a[2]))"
}
# Per-thread ticks of a process, summed by thread name: "name=ticks ...".
thread_ticks() { # PID
    local t comm f
    for t in /proc/"$1"/task/*; do
        comm=$(cat "$t/comm" 2>/dev/null) || continue
        f=$(sed 's/^.*) //' "$t/stat" 2>/dev/null | cut -d' ' -f12,13) || continue
        echo "${comm// /_} $(( ${f% *} + ${f#* } ))"
    done | awk '{ s[$1] += $2 } END { for (k in s) printf "%s=%d ", k, s[k] }'
}

# Sum of the samples of a Prometheus metric in FILE (labels ignored).
metric() { # NAME FILE: sum of the samples of a metric (labels ignored)
    awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%d\n", s }' "$2"
}
