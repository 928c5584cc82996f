#!/usr/bin/env python3
"""Hand-written HTTP/1.1 server whose responses use Transfer-Encoding: chunked.

Raw sockets so the exact chunk boundaries, extensions and trailers are under
our control. Keep-alive; "Connection: close" closes after the response.
Pieces are sent with TCP_NODELAY and short pauses so they land in separate
TCP segments.

Usage: chunked_server.py [--host 127.0.0.1] [--port 18081]

  GET  /chunked  3 data chunks, each in its own segment
  HEAD /chunked  same headers (Transfer-Encoding: chunked) but no body at all
  GET  /trailer  "Trailer:" header, 3 chunks, then trailer fields X-Checksum, X-Row-Count
  GET  /ext      chunk extensions (";name=value") and upper-case hex sizes, one segment
  GET  /empty    chunked body with only the last-chunk (zero bytes of data)
  GET  /split    chunk-size line and chunk CRLF split across TCP segments
  POST /upload   reads a chunked (or Content-Length) body, answers a chunked JSON
                 summary: bytes, number of chunks, trailers received
  other          404 with Content-Length
"""
import argparse
import hashlib
import json
import time

import rawhttp

PAUSE = 0.02


def head(status, fields, close):
    lines = ["HTTP/1.1 %s" % status, "Server: shadowtap-chunked/1.0"]
    lines += ["%s: %s" % kv for kv in fields]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data, ext=""):
    return b"%x%s\r\n%s\r\n" % (len(data), ext.encode(), data)


def send_pieces(conn, pieces):
    for i, p in enumerate(pieces):
        if i:
            time.sleep(PAUSE)
        conn.send(p)


def respond(conn, req):
    close = req.wants_close()
    path = req.target.split("?", 1)[0]
    te = [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")]

    if path == "/chunked" and req.method == "HEAD":
        conn.send(head("200 OK", te, close))
    elif path == "/chunked":
        send_pieces(conn, [head("200 OK", te, close),
                           chunk(b"Hello, "), chunk(b"chunked "), chunk(b"world!\n"),
                           b"0\r\n\r\n"])
    elif path == "/trailer":
        rows = [b'{"row":1,"v":"alpha"}\n', b'{"row":2,"v":"beta"}\n', b'{"row":3,"v":"gamma"}\n']
        digest = hashlib.sha256(b"".join(rows)).hexdigest()
        fields = [("Content-Type", "application/x-ndjson"),
                  ("Transfer-Encoding", "chunked"),
                  ("Trailer", "X-Checksum, X-Row-Count")]
        send_pieces(conn, [head("200 OK", fields, close)] + [chunk(r) for r in rows] +
                    [("0\r\nX-Checksum: sha256=%s\r\nX-Row-Count: 3\r\n\r\n" % digest).encode()])
    elif path == "/ext":
        body = (chunk(b"abcde", ";name=value") +
                b"1A\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n" +      # upper-case hex size 0x1A = 26
                chunk(b"0123456789", ';quoted="a b";flag') +
                b"0;last=yes\r\n\r\n")
        conn.send(head("200 OK", te, close) + body)
    elif path == "/empty":
        conn.send(head("200 OK", te, close) + b"0\r\n\r\n")
    elif path == "/split":
        # "10\r\n" + 16 bytes + "\r\n" + "0\r\n\r\n", cut at awkward places
        send_pieces(conn, [head("200 OK", te, close) + b"1",
                           b"0\r\n0123456789abc",
                           b"def\r",
                           b"\n0\r\n",
                           b"\r\n"])
    elif path == "/upload" and req.method == "POST":
        summary = {"received_bytes": len(req.body), "chunks": req.chunks,
                   "trailers": dict(req.trailers),
                   "sha256": hashlib.sha256(req.body).hexdigest()}
        data = (json.dumps(summary, separators=(",", ":")) + "\n").encode()
        mid = len(data) // 2
        send_pieces(conn, [head("200 OK", [("Content-Type", "application/json"),
                                           ("Transfer-Encoding", "chunked")], close),
                           chunk(data[:mid]), chunk(data[mid:]) + b"0\r\n\r\n"])
    else:
        body = b"not found\n"
        conn.send(head("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", str(len(body)))], close) + body)
    return close


def handle_conn(conn):
    while True:
        req = rawhttp.read_request(conn)
        if req is None or respond(conn, req):
            return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18081)
    a = ap.parse_args()
    rawhttp.serve("chunked_server", a.host, a.port, handle_conn)


if __name__ == "__main__":
    main()
