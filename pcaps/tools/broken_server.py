#!/usr/bin/env python3
"""Hand-written server whose answers have broken framing, and early answers.

Usage: broken_server.py [--host 127.0.0.1] [--port 18087]
       broken_server.py --client SCENARIO [--host H] [--port P]

Each path answers with one framing trick of the kind HTTP evasion tools
list (and buggy servers send); every answer has a body a browser shows.
Head and body go in separate segments.

  /version-1.2   status line "HTTP/1.2 200 ok", Content-Length body
  /version-1.01  status line "HTTP/1.01 200 OK", Content-Length body
  /no-colon      a header line without colon among the headers
  /bad-length    "Content-Length: 12abc" (invalid); the body, then nothing
                 until the next request
  /not-chunked   "Transfer-Encoding:  chunked" with a plain body
  /bare-cr       every line of the head ends in a bare CR
  /ok            a well-formed answer
  POST /upload-413  answers 413 + Connection: close as soon as the head is
                 read, then closes (the client is still uploading)
  GET /huge-head answers 431 + Connection: close after the request line,
                 then closes (the client is still sending the head)
  POST /upload-401  answers 401 as soon as the head is read, then reads and
                 drops the body; the connection stays open

Client scenarios (one connection each, requests one at a time):
  broken      every trick above in turn, then /ok, on one keep-alive connection
  early-413   POST /upload-413 with a 60000-byte body sent in slow pieces
  early-401   POST /upload-401 with a 20000-byte body in slow pieces, then GET /ok
  early-431   GET /huge-head whose head (16 KB of padding headers) is sent in
              slow pieces; the server answers 431 after the request line
"""
import argparse
import socket
import time

import rawhttp

BODY = b"the body a browser shows\n"


def answer(path):
    """Head and body bytes for a GET of `path`."""
    ct = "Content-Type: text/plain\r\n"
    if path == "/version-1.2":
        return ("HTTP/1.2 200 ok\r\n%sContent-Length: %d\r\n\r\n" % (ct, len(BODY))).encode(), BODY
    if path == "/version-1.01":
        return ("HTTP/1.01 200 OK\r\n%sContent-Length: %d\r\n\r\n" % (ct, len(BODY))).encode(), BODY
    if path == "/no-colon":
        head = "HTTP/1.1 200 OK\r\n%sthis header line has no colon\r\nContent-Length: %d\r\n\r\n" % (ct, len(BODY))
        return head.encode(), BODY
    if path == "/bad-length":
        return ("HTTP/1.1 200 OK\r\n%sContent-Length: 12abc\r\n\r\n" % ct).encode(), BODY
    if path == "/not-chunked":
        return ("HTTP/1.1 200 OK\r\n%sTransfer-Encoding:  chunked\r\n\r\n" % ct).encode(), BODY
    if path == "/bare-cr":
        return ("HTTP/1.1 200 OK\r%sContent-Length: %d\r\r" % (ct.replace("\r\n", "\r"), len(BODY))).encode(), BODY
    return ("HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n" % (ct, len(BODY))).encode(), BODY


def read_head(conn):
    head = conn.read_until(b"\r\n\r\n")
    first, _, rest = head[:-4].partition(b"\r\n")
    method, target, _ = first.decode("latin-1").split(" ", 2)
    return method, target, rawhttp.Request(method, target, "HTTP/1.1", rawhttp.parse_fields(rest), b"", None, [])


def handle_conn(conn):
    while True:
        try:
            first = conn.read_until(b"\r\n")
        except EOFError:
            return
        if b"/huge-head" in first:
            # Refused before the head ended: the client is still sending it.
            conn.send(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\n"
                      b"Content-Length: 16\r\nConnection: close\r\n\r\nhead too large.\n")
            time.sleep(0.2)
            return
        conn.buf = first + conn.buf
        method, target, req = read_head(conn)
        if target == "/upload-413":
            conn.send(b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain\r\n"
                      b"Content-Length: 18\r\nConnection: close\r\n\r\nupload too large.\n")
            time.sleep(0.2)
            return
        if target == "/upload-401":
            conn.send(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\n"
                      b"Content-Length: 14\r\n\r\nlog in first.\n")
            conn.read_exact(int(req.header("Content-Length", "0")))
            continue
        head, body = answer(target)
        conn.send(head)
        time.sleep(0.01)
        conn.send(body)


def client_request(method, target, body=b""):
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: 127.0.0.1",
             "User-Agent: shadowtap-broken-client/1.0"]
    if body:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def await_answer(sock, marker=BODY):
    """Reads until `marker` arrived (the answers' framing cannot be trusted)."""
    got = b""
    sock.settimeout(5)
    while marker not in got:
        data = sock.recv(65536)
        if not data:
            break
        got += data
    return got


def run_client(name, host, port):
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if name == "broken":
        for path in ("/version-1.2", "/version-1.01", "/no-colon", "/bad-length",
                     "/not-chunked", "/bare-cr", "/ok"):
            sock.sendall(client_request("GET", path))
            await_answer(sock)
            time.sleep(0.05)
    elif name == "early-431":
        sock.sendall(b"GET /huge-head HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            for i in range(8):
                time.sleep(0.03)
                sock.sendall(b"X-Padding-%d: %s\r\n" % (i, b"p" * 2000))
            sock.sendall(b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
    elif name in ("early-413", "early-401"):
        total = 60000 if name == "early-413" else 20000
        sock.sendall(client_request("POST", "/upload-" + name[-3:], b"x" * total))
        sent = 0
        try:
            while sent < total:
                piece = min(4000, total - sent)
                sock.sendall(b"x" * piece)
                sent += piece
                time.sleep(0.03)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if name == "early-401":
            await_answer(sock, b"log in first.\n")
            sock.sendall(client_request("GET", "/ok"))
            await_answer(sock)
    sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18087)
    ap.add_argument("--client")
    a = ap.parse_args()
    if a.client:
        run_client(a.client, a.host, a.port)
    else:
        rawhttp.serve("broken_server", a.host, a.port, handle_conn)


if __name__ == "__main__":
    main()
