#!/usr/bin/env python3
"""A small JSON API for the form tests: links built from the Host it is
asked for, content-hash ETags, answers per user, a planted 500.

    links_service.py [--candidate]

Prints its port on the first line of stdout, then serves until killed.

- GET /api/items/N: {"id", "name", "owner", "self"}; `self` is an absolute
  URL built from the request's Host; `owner` is the user from
  `Authorization: Bearer NAME` or the cookie `user=NAME` ("anonymous"
  without). ETag: a hash of the body (the same on every instance for the same
  content), and `If-None-Match` naming it gets 304.
- GET /old/N: 301 to the absolute URL of /api/items/N, built from the Host.
- With --candidate: /api/items/7 answers 500 (the planted regression), and
  Content-Type carries `; charset=utf-8` (as most Go frameworks send it).
"""
import hashlib
import http.server
import json
import re
import sys

CANDIDATE = "--candidate" in sys.argv


def user_of(headers):
    auth = headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[len("Bearer "):]
    for part in headers.get("Cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "user":
            return value
    return "anonymous"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        host = self.headers.get("Host", "localhost")
        json_type = "application/json; charset=utf-8" if CANDIDATE else "application/json"
        m = re.fullmatch(r"/api/items/(\d+)", self.path)
        if m:
            n = int(m.group(1))
            if CANDIDATE and n == 7:
                self.send(500, b'{"error":"internal"}', [("Content-Type", json_type)])
                return
            item = {"id": n, "name": f"item {n}", "owner": user_of(self.headers),
                    "self": f"http://{host}/api/items/{n}"}
            body = json.dumps(item).encode()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send(304, headers=[("ETag", etag)])
                return
            self.send(200, body, [("Content-Type", json_type), ("ETag", etag)])
            return
        m = re.fullmatch(r"/old/(\d+)", self.path)
        if m:
            self.send(301, headers=[("Location", f"http://{host}/api/items/{m.group(1)}")])
            return
        self.send(404, b'{"error":"not found"}', [("Content-Type", json_type)])


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
