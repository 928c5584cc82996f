#!/usr/bin/env bash
# Regenerate every test capture in this directory (see README.md).
#
# Real clients (curl, wrk, tools/raw_client.py) talk to real servers (nginx,
# tools/*.py) on loopback only, while tcpdump records one scenario per file.
# Must run as root (tcpdump). Needs: tcpdump, curl, wrk, nginx, python3, ss;
# tshark is only used for the summary at the end.
#
#   sudo ./capture.sh            # rewrite all *.pcap here
#   sudo ./capture.sh gzip ipv6  # rewrite only the named captures
#
# Timestamps, ephemeral client ports, TCP sequence numbers and Date headers
# differ from run to run; the HTTP exchanges themselves are the same.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOOLS=$HERE/tools
PY=${PYTHON:-python3}
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in tools/

# Ports (all on loopback)
P_API=18080        # tools/json_api.py on 127.0.0.1
P_CHUNKED=18081    # tools/chunked_server.py
P_HTTP10=18082     # tools/http10_server.py
P_NGINX=18083      # nginx: static files, used by wrk and pipelining
P_GZIP=18084       # nginx: gzip on + gzip_static
P_STATUS=18085     # nginx: 204 / 304
P_API6=18086       # tools/json_api.py on ::1
P_BROKEN=18087     # tools/broken_server.py: broken framing, early answers

WORK=$(mktemp -d /tmp/shadowtap-capture.XXXXXX)
chmod 755 "$WORK"          # nginx workers (unprivileged) read files below it
PIDS=()
TCPDUMP_PID=

log() { printf '== %s\n' "$*" >&2; }

cleanup() {
    if [[ -n $TCPDUMP_PID ]]; then kill -INT "$TCPDUMP_PID" 2>/dev/null || true; fi
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- helpers --

# start_bg NAME CMD...: run a server in the background, log to $WORK/NAME.log
start_bg() {
    local name=$1; shift
    "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
}

# wait_listen PORT: wait until something listens on PORT (checked with ss,
# so no probe connection is made)
wait_listen() {
    local i
    for i in $(seq 100); do
        [[ -n $(ss -Hltn "sport = :$1") ]] && return 0
        sleep 0.05
    done
    echo "nothing listening on port $1" >&2; ls "$WORK"; cat "$WORK"/*.log >&2; exit 1
}

# start_capture FILE TCPDUMP-ARGS...: start tcpdump writing FILE, wait until ready
start_capture() {
    local out=$HERE/$1; shift
    rm -f "$out"
    : >"$WORK/tcpdump.log"
    # --immediate-mode: hand each packet over at once (otherwise packets sit in
    #   the kernel ring for up to 1 s and are lost when tcpdump is stopped);
    # -B: 32 MB kernel buffer (with the default 2 MB and 256 KB snaplen the
    #   ring has ~8 slots and "-i any" drops packets in bursts);
    # -U: flush the file per packet; -Z root: keep privileges to write FILE
    tcpdump --immediate-mode -B 32768 -U -n -Z root "$@" -w "$out" 2>"$WORK/tcpdump.log" &
    TCPDUMP_PID=$!
    local i
    for i in $(seq 100); do
        grep -q 'listening on' "$WORK/tcpdump.log" && break
        sleep 0.05
    done
    grep -q 'listening on' "$WORK/tcpdump.log" || { cat "$WORK/tcpdump.log" >&2; exit 1; }
    sleep 0.5   # tcpdump is attached; a little margin before the first SYN
}

# stop_capture: let the last FIN/ACKs arrive, then stop tcpdump with SIGINT
stop_capture() {
    sleep 1
    kill -INT "$TCPDUMP_PID"
    wait "$TCPDUMP_PID" || true
    TCPDUMP_PID=
    grep -E 'packets (captured|received|dropped)' "$WORK/tcpdump.log" | paste -sd' ' >&2 || true
    if ! grep -q '^0 packets dropped by kernel' "$WORK/tcpdump.log"; then
        echo "tcpdump dropped packets; capture is incomplete" >&2; exit 1
    fi
}

# c ARGS...: curl with the options every scenario uses. Output goes to a log
# (-o covers only the first URL, later bodies land in the log too).
c() {
    curl -sS --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code} %{method} %{url_effective}\n' "$@" >>"$WORK/curl.log"
}

# ---------------------------------------------------------------- servers --

setup_www() {
    local www=$WORK/www
    mkdir -p "$www/static"
    # ~1.5 KB of repetitive JSON so gzip has something to do
    {
        printf '{"service":"shadowtap-fixture","items":['
        for i in $(seq 1 20); do
            [[ $i -gt 1 ]] && printf ','
            printf '{"id":%d,"name":"item-%02d","tags":["alpha","beta"],"price":%d.99}' "$i" "$i" "$i"
        done
        printf ']}\n'
    } >"$www/data.json"
    cp "$www/data.json" "$www/static/data.json"
    gzip -9 -n -c "$www/data.json" >"$www/static/data.json.gz"
    printf 'hello from nginx\n' >"$www/small.txt"
    # fixed mtimes -> fixed ETag / Last-Modified
    find "$www" -type f -exec touch -d '2024-01-01 00:00:00 UTC' {} +
    chmod -R a+rX "$www"
}

start_nginx() {
    mkdir -p "$WORK/nginx-tmp"
    cat >"$WORK/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    server_tokens off;
    types { application/json json; text/plain txt; text/html html; }
    default_type application/octet-stream;
    client_body_temp_path $WORK/nginx-tmp/body;
    proxy_temp_path $WORK/nginx-tmp/proxy;
    fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
    scgi_temp_path $WORK/nginx-tmp/scgi;
    keepalive_requests 1000;

    server {   # static files: wrk and pipelining
        listen 127.0.0.1:$P_NGINX;
        root $WORK/www;
    }
    server {   # gzip: dynamic (chunked) and gzip_static (Content-Length)
        listen 127.0.0.1:$P_GZIP;
        root $WORK/www;
        gzip on;
        gzip_min_length 1;
        gzip_types application/json;
        gzip_vary on;
        location /static/ { gzip_static on; }
    }
    server {   # bodiless statuses: 204 and 304
        listen 127.0.0.1:$P_STATUS;
        root $WORK/www;
        location = /empty { return 204; }
    }
}
EOF
    start_bg nginx nginx -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf"
}

start_servers() {
    setup_www
    start_nginx
    start_bg json_api  "$PY" "$TOOLS/json_api.py" --host 127.0.0.1 --port $P_API
    start_bg json_api6 "$PY" "$TOOLS/json_api.py" --host ::1 --port $P_API6
    start_bg chunked   "$PY" "$TOOLS/chunked_server.py" --port $P_CHUNKED
    start_bg http10    "$PY" "$TOOLS/http10_server.py" --port $P_HTTP10
    start_bg broken    "$PY" "$TOOLS/broken_server.py" --port $P_BROKEN
    local p
    for p in $P_API $P_API6 $P_CHUNKED $P_HTTP10 $P_NGINX $P_GZIP $P_STATUS $P_BROKEN; do
        wait_listen "$p"
    done
}

# -------------------------------------------------------------- scenarios --
# Each cap_NAME function writes NAME.pcap.

API=http://127.0.0.1:$P_API

cap_curl-get() {
    start_capture curl-get.pcap -i lo "tcp port $P_API"
    c "$API/api/users/42"
    c "$API/api/health"
    c "$API/api/users/1" "$API/api/users/7" "$API/api/users"   # one keep-alive connection
    c "$API/api/users/999"                                     # 404
    c "$API/no/such/thing"                                     # 404
    c -I "$API/api/users/42"                                   # HEAD
    stop_capture
}

cap_mirror-reordered() {
    # Not recorded: curl-get.pcap with packets reordered across directions
    # as a mirror port shows them (an ACK captured before the data it
    # acknowledges, by at most 10 ms).
    "$PY" "$TOOLS/reorder_pcap.py" "$HERE/curl-get.pcap" "$HERE/mirror-reordered.pcap"
}

cap_pipelined() {
    start_capture pipelined.pcap -i lo "tcp port $P_API or tcp port $P_NGINX"
    "$PY" "$TOOLS/raw_client.py" pipeline-api 127.0.0.1 $P_API >>"$WORK/raw.log"
    "$PY" "$TOOLS/raw_client.py" pipeline-nginx 127.0.0.1 $P_NGINX >>"$WORK/raw.log"
    stop_capture
}

cap_chunked() {
    local u=http://127.0.0.1:$P_CHUNKED
    head -c 3000 /dev/zero | tr '\0' 'x' >"$WORK/upload.txt"
    start_capture chunked.pcap -i lo "tcp port $P_CHUNKED"
    c "$u/chunked" "$u/trailer" "$u/ext" "$u/empty" "$u/split"   # one connection
    c -I "$u/chunked"                      # HEAD: Transfer-Encoding: chunked, no body
    # curl sends the body chunked (and adds Expect: 100-continue)
    c -H 'Transfer-Encoding: chunked' -H 'Content-Type: text/plain' \
        --data-binary "@$WORK/upload.txt" "$u/upload"
    # chunked request body in several segments with a trailer, then GET /trailer
    "$PY" "$TOOLS/raw_client.py" chunked-upload 127.0.0.1 $P_CHUNKED >>"$WORK/raw.log"
    stop_capture
}

any_requests() {
    c "$API/api/users/42"
    c "$API/api/health" "$API/api/users"
}

cap_any-interface() {
    start_capture any-interface.pcap -i any "tcp port $P_API"   # LINUX_SLL2
    any_requests
    stop_capture
}

cap_any-sll1() {
    start_capture any-sll1.pcap -i any -y LINUX_SLL "tcp port $P_API"
    any_requests
    stop_capture
}

cap_wrk-nginx() {
    # wrk.lua alternates /data.json (200) and /missing.json (404) and stops
    # the thread after 20 responses.
    start_capture wrk-nginx.pcap -i lo "tcp port $P_NGINX"
    wrk -t1 -c2 -d1s -s "$TOOLS/wrk.lua" "http://127.0.0.1:$P_NGINX/" >>"$WORK/wrk.log"
    stop_capture
}

cap_post-and-methods() {
    local json='Content-Type: application/json'
    head -c 2048 /dev/zero | tr '\0' 'a' >"$WORK/2k.txt"
    start_capture post-and-methods.pcap -i lo "tcp port $P_API"
    c -H "$json" -d '{"name":"New User","email":"new@example.test"}' "$API/api/users"
    c -X PUT -H "$json" -d '{"name":"Douglas N. Adams"}' "$API/api/users/42"
    c -X DELETE "$API/api/users/42"          # 204
    c -I "$API/api/users/42"                 # HEAD
    c -X OPTIONS "$API/api/users"            # 204 + Allow
    c -X POST -d '' "$API/api/upload"        # Content-Length: 0
    # 100 Continue, then the final response
    c -H 'Expect: 100-continue' -H 'Content-Type: text/plain' \
        --data-binary "@$WORK/2k.txt" "$API/api/upload"
    # POST then GET on the same keep-alive connection
    c -H "$json" -d '{"name":"Kept Alive"}' "$API/api/users" --next \
        -sS --noproxy '*' -o /dev/null "$API/api/users/7"
    stop_capture
}

cap_http10-close() {
    local u=http://127.0.0.1:$P_HTTP10
    start_capture http10-close.pcap -i lo "tcp port $P_HTTP10 or tcp port $P_API"
    c --http1.0 "$u/stream"                  # HTTP/1.0, body ends at close
    c --http1.0 "$u/nope"                    # 404, body ends at close
    c --http1.0 -d 'hello=world' "$u/submit" # POST 1.0 with Content-Length
    c "$u/stream"                            # HTTP/1.1 + Connection: close, no length
    c --http1.0 -H 'Connection: keep-alive' "$u/keepalive" "$u/keepalive?n=2"  # 1.0 keep-alive
    c -H 'Connection: close' "$API/api/users/42"  # 1.1 client asks to close
    c --http1.0 "$API/api/users/1"           # python answers HTTP/1.1 + CL, then closes
    stop_capture
}

cap_ipv6() {
    local u="http://[::1]:$P_API6"
    start_capture ipv6.pcap -i lo "tcp port $P_API6"
    c -g "$u/api/users/42"
    c -g "$u/api/users/1" "$u/api/health"
    c -g -H 'Content-Type: application/json' -d '{"name":"Six"}' "$u/api/users"
    stop_capture
}

cap_gzip() {
    local u=http://127.0.0.1:$P_GZIP
    start_capture gzip.pcap -i lo "tcp port $P_GZIP"
    c --compressed "$u/data.json"            # gzip, chunked (compressed on the fly)
    c --compressed "$u/static/data.json"     # gzip_static: gzip + Content-Length
    c "$u/data.json"                         # no Accept-Encoding: identity
    c --compressed "$u/data.json" "$u/small.txt"  # text/plain is not gzipped
    stop_capture
}

cap_status-nobody() {
    local u=http://127.0.0.1:$P_STATUS f=$WORK/www/data.json etag
    etag=$(printf '"%x-%x"' "$(stat -c %Y "$f")" "$(stat -c %s "$f")")
    local o=(-sS --noproxy '*' -o /dev/null)
    # one curl process, one keep-alive connection, 6 exchanges
    start_capture status-nobody.pcap -i lo "tcp port $P_STATUS"
    c "$u/data.json" \
        --next "${o[@]}" -H "If-None-Match: $etag" "$u/data.json" \
        --next "${o[@]}" "$u/empty" \
        --next "${o[@]}" -I "$u/data.json" \
        --next "${o[@]}" -H 'If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT' "$u/data.json" \
        --next "${o[@]}" "$u/small.txt"
    stop_capture
}

cap_broken-framing() {
    # One keep-alive connection: each answer breaks framing another way.
    start_capture broken-framing.pcap -i lo "tcp port $P_BROKEN"
    "$PY" "$TOOLS/broken_server.py" --client broken --port $P_BROKEN
    stop_capture
}

cap_early-answer() {
    # Answers sent while the client is still uploading: 413 and close, 401
    # on a connection that goes on with a GET, and 431 while the client is
    # still sending the request head.
    start_capture early-answer.pcap -i lo "tcp port $P_BROKEN"
    "$PY" "$TOOLS/broken_server.py" --client early-413 --port $P_BROKEN
    "$PY" "$TOOLS/broken_server.py" --client early-401 --port $P_BROKEN
    "$PY" "$TOOLS/broken_server.py" --client early-431 --port $P_BROKEN
    stop_capture
}

ALL=(curl-get mirror-reordered pipelined chunked any-interface any-sll1 wrk-nginx
     post-and-methods http10-close ipv6 gzip status-nobody broken-framing early-answer)

# ------------------------------------------------------------------- main --

[[ $(id -u) -eq 0 ]] || { echo "run as root (tcpdump needs it)" >&2; exit 1; }
want=("$@")
[[ ${#want[@]} -gt 0 ]] || want=("${ALL[@]}")

start_servers
for name in "${want[@]}"; do
    log "$name.pcap"
    "cap_$name"
done

if [[ -n ${KEEP_LOGS:-} ]]; then cp -r "$WORK" "$KEEP_LOGS"; fi

# Per-exchange listing of every capture (tools/http_summary.py, no tshark)
# (not the broken-framing captures: that reader applies the strict RFC 9112
# rules, and cannot tell which bytes came before an early answer)
for f in "$HERE"/*.pcap; do
    case ${f##*/} in broken-framing.pcap|early-answer.pcap) continue ;; esac
    "$PY" "$TOOLS/http_summary.py" "$f"
done \
    | sed "s|$HERE/||" >"$HERE/summary.txt"

# Counts: messages (http_summary.py) and frames (tshark, if installed)
printf '\n%-22s %7s %5s %6s %8s %13s %14s\n' \
    file bytes reqs finals interim tshark-req-fr tshark-resp-fr
for name in "${want[@]}"; do
    f=$HERE/$name.pcap
    read -r nreq nresp nint < <("$PY" "$TOOLS/http_summary.py" "$f" --counts)
    treq=- tresp=-
    if command -v tshark >/dev/null; then
        treq=$(tshark -r "$f" -Y http.request 2>/dev/null | wc -l)
        tresp=$(tshark -r "$f" -Y http.response 2>/dev/null | wc -l)
    fi
    printf '%-22s %7s %5s %6s %8s %13s %14s\n' "$name.pcap" "$(stat -c %s "$f")" \
        "$nreq" "$nresp" "$nint" "$treq" "$tresp"
done
