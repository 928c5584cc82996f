# Shared by bench/replay.sh and bench/live.sh (sourced; they define `say`
# and `die` first).

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
