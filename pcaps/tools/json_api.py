#!/usr/bin/env python3
"""Tiny JSON API on the stdlib ThreadingHTTPServer (HTTP/1.1, keep-alive).

Usage: json_api.py [--host 127.0.0.1] [--port 18080]

Routes
  GET|HEAD /api/users            -> 200 list of users
  GET|HEAD /api/users/<id>       -> 200 {"id":..,"name":..} (404 if unknown id)
  GET|HEAD /api/health           -> 200 {"status":"ok"}
  POST     /api/users            -> 201 echo of the JSON body + id, Location header
  POST     /api/upload           -> 200 {"received_bytes": n} (used with Expect: 100-continue)
  PUT      /api/users/<id>       -> 200 echo of the JSON body
  DELETE   /api/users/<id>       -> 204 (no body)
  OPTIONS  any path              -> 204 with Allow header
  anything else                  -> 404 JSON error
Every body has a Content-Length. A request with "Connection: close" gets
"Connection: close" back and the server closes the connection.
Expect: 100-continue is answered with "100 Continue" by BaseHTTPRequestHandler.
"""
import argparse
import json
import re
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USERS = {
    1: "Ada Lovelace",
    2: "Alan Turing",
    7: "Grace Hopper",
    42: "Douglas Adams",
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "shadowtap-test/1.0"

    def version_string(self):
        return self.server_version  # no "Python/3.x" suffix

    def log_message(self, fmt, *args):
        sys.stderr.write("json_api: %s - %s\n" % (self.address_string(), fmt % args))

    # ---- helpers -------------------------------------------------------
    def _send(self, status, obj=None, extra=(), body_allowed=True):
        body = b"" if obj is None else (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        if self.headers.get("Connection", "").lower() == "close":
            self.send_header("Connection", "close")
        elif self.request_version == "HTTP/1.0" and not self.close_connection:
            self.send_header("Connection", "keep-alive")
        self.end_headers()
        if body and body_allowed and self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _route_get(self):
        path = self.path.split("?", 1)[0]
        if path == "/api/health":
            return 200, {"status": "ok"}
        if path == "/api/users":
            return 200, [{"id": i, "name": n} for i, n in sorted(USERS.items())]
        m = re.fullmatch(r"/api/users/(\d+)", path)
        if m and int(m.group(1)) in USERS:
            uid = int(m.group(1))
            return 200, {"id": uid, "name": USERS[uid]}
        return 404, {"error": "not found", "path": path}

    # ---- methods -------------------------------------------------------
    def do_GET(self):
        status, obj = self._route_get()
        self._send(status, obj)

    def do_HEAD(self):
        status, obj = self._route_get()
        self._send(status, obj)

    def do_POST(self):
        body = self._read_body()
        path = self.path.split("?", 1)[0]
        if path == "/api/users":
            try:
                obj = json.loads(body or b"{}")
            except ValueError:
                return self._send(400, {"error": "bad json"})
            obj["id"] = 100
            return self._send(201, obj, extra=[("Location", "/api/users/100")])
        if path == "/api/upload":
            return self._send(200, {"received_bytes": len(body)})
        self._send(404, {"error": "not found", "path": path})

    def do_PUT(self):
        body = self._read_body()
        m = re.fullmatch(r"/api/users/(\d+)", self.path)
        if not m:
            return self._send(404, {"error": "not found", "path": self.path})
        try:
            obj = json.loads(body or b"{}")
        except ValueError:
            return self._send(400, {"error": "bad json"})
        obj["id"] = int(m.group(1))
        self._send(200, obj)

    def do_DELETE(self):
        self._read_body()
        if re.fullmatch(r"/api/users/(\d+)", self.path):
            return self._send(204)
        self._send(404, {"error": "not found", "path": self.path})

    def do_OPTIONS(self):
        self._read_body()
        self._send(204, extra=[("Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS")])


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18080)
    a = ap.parse_args()
    Server.address_family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    srv = Server((a.host, a.port), Handler)
    sys.stderr.write("json_api listening on %s:%d\n" % (a.host, a.port))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
