#!/usr/bin/env python3
"""Raw-socket HTTP client for scenarios curl cannot produce.

Usage: raw_client.py SCENARIO HOST PORT

Opens ONE TCP connection, sends the scenario's byte pieces (pausing between
pieces where the scenario says so), then reads until the server closes (the
last request of every scenario carries "Connection: close"). The raw
response bytes are written to stdout.

Scenarios
  pipeline-api    5 requests to json_api.py written in a single send() before
                  reading anything (GET, GET, HEAD, POST with body, GET 404)
  pipeline-nginx  4 requests to nginx in a single send() (GET, GET 404, HEAD, GET)
  chunked-upload  POST with a chunked request body sent in several segments,
                  with a trailer field; then (after the answer) GET /trailer
"""
import socket
import sys
import time


def req(method, target, host, extra=(), body=b""):
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: %s" % host,
             "User-Agent: shadowtap-raw-client/1.0", "Accept: */*"]
    lines += ["%s: %s" % kv for kv in extra]
    if body:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def scenario(name, host):
    close = [("Connection", "close")]
    if name == "pipeline-api":
        new_user = b'{"name":"Pipelined Pete","email":"pete@example.test"}'
        return [(0, b"".join([
            req("GET", "/api/users/1", host),
            req("GET", "/api/users/42", host),
            req("HEAD", "/api/users/7", host),
            req("POST", "/api/users", host, [("Content-Type", "application/json")], new_user),
            req("GET", "/api/users/999", host, close),
        ]))]
    if name == "pipeline-nginx":
        return [(0, b"".join([
            req("GET", "/data.json", host),
            req("GET", "/missing.json", host),
            req("HEAD", "/data.json", host),
            req("GET", "/small.txt", host, close),
        ]))]
    if name == "chunked-upload":
        head = ("POST /upload HTTP/1.1\r\nHost: %s\r\nUser-Agent: shadowtap-raw-client/1.0\r\n"
                "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                "Trailer: X-Upload-Note\r\n\r\n" % host).encode()
        return [
            (0, head),
            (0.02, b"6\r\nfirst \r\n"),
            (0.02, b"7\r\nsecond \r\n"),
            (0.02, b"5;ext=1\r\nthird\r\n"),
            (0.02, b"0\r\nX-Upload-Note: sent-by-raw-client\r\n\r\n"),
            (0.2, req("GET", "/trailer", host, close)),
        ]
    raise SystemExit("unknown scenario %r" % name)


def main():
    name, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    hosthdr = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(10)
    s.connect((host, port))
    for delay, data in scenario(name, hosthdr):
        if delay:
            time.sleep(delay)
        s.sendall(data)
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    sys.stdout.buffer.write(out)


if __name__ == "__main__":
    main()
