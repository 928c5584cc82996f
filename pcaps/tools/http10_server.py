#!/usr/bin/env python3
"""Hand-written server for HTTP/1.0 and close-delimited responses.

Usage: http10_server.py [--host 127.0.0.1] [--port 18082]

  GET /keepalive   Content-Length body; keeps the connection open when the
                   client asked for it (HTTP/1.0 "Connection: keep-alive")
  POST <any>       echoes the request body, close-delimited
  anything else    body with NO Content-Length and NO Transfer-Encoding, written
                   in 3 segments; the end of the body is the server closing
                   the connection. Status line is HTTP/1.0 for 1.0 requests,
                   HTTP/1.1 + "Connection: close" for 1.1 requests.
"""
import argparse
import time

import rawhttp


def handle_conn(conn):
    while True:
        req = rawhttp.read_request(conn)
        if req is None:
            return
        ver = "HTTP/1.0" if req.version == "HTTP/1.0" else "HTTP/1.1"
        path = req.target.split("?", 1)[0]

        if path == "/keepalive":
            body = b"kept alive: %s %s\n" % (req.method.encode(), req.target.encode())
            keep = not req.wants_close()
            hdr = "%s 200 OK\r\nServer: shadowtap-http10/1.0\r\nContent-Type: text/plain\r\n" \
                  "Content-Length: %d\r\nConnection: %s\r\n\r\n" % (
                      ver, len(body), "keep-alive" if keep else "close")
            conn.send(hdr.encode() + (b"" if req.method == "HEAD" else body))
            if keep:
                continue
            return

        if req.method == "POST":
            status, pieces = "200 OK", [b"echo: ", req.body, b"\n"]
        elif path in ("/", "/stream"):
            status, pieces = "200 OK", [b"line one of a body with no length\n",
                                        b"line two arrives in another segment\n",
                                        b"line three, then the server closes\n"]
        else:
            status, pieces = "404 Not Found", [b"no such page: ", req.target.encode(), b"\n"]
        hdr = "%s %s\r\nServer: shadowtap-http10/1.0\r\nContent-Type: text/plain\r\n" % (ver, status)
        if ver == "HTTP/1.1":
            hdr += "Connection: close\r\n"
        conn.send((hdr + "\r\n").encode())
        if req.method != "HEAD":
            for p in pieces:
                time.sleep(0.02)
                conn.send(p)
        return  # closing the socket ends the body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18082)
    a = ap.parse_args()
    rawhttp.serve("http10_server", a.host, a.port, handle_conn)


if __name__ == "__main__":
    main()
