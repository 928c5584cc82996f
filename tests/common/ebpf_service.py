#!/usr/bin/env python3
"""The legacy service of the eBPF tests: a pre-fork HTTP/1.1 server, as
gunicorn is: the master binds, its workers accept. Keep-alive and
pipelining (the handler loops over requests on a connection).

    ebpf_service.py tcp PORT_FILE [WORKERS]   listens on 127.0.0.1:0, writes the port
    ebpf_service.py unix PATH [WORKERS]       listens on a unix socket
    ebpf_service.py tls PORT_FILE [WORKERS]   as tcp, over TLS (python's ssl, so
                                              libssl), with the certificate and
                                              key in $CERT and $KEY
    ebpf_service.py candidate PORT_FILE       the same answers from one
                                              threaded process (/respawn
                                              only answers): the candidate

(A query string is ignored.)
GET /small    a small JSON answer
GET /big      1 MiB, Content-Length
GET /chunked  chunked transfer coding, three chunks
GET /pid      the worker's pid
GET /respawn  answers, then the worker exits and the master forks a new one
              (a worker started after the tap was)
"""
import http.server
import os
import signal
import socket
import socketserver
import sys

BIG = bytes((i * 7 + 3) % 251 for i in range(1 << 20))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def address_string(self):
        return "client"

    def answer(self, body, kind="application/json"):
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/small":
            self.answer(b'{"kind":"small","items":[1,2,3]}')
        elif path == "/big":
            self.answer(BIG, "application/octet-stream")
        elif path == "/pid":
            self.answer(('{"pid":%d}' % os.getpid()).encode())
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"first,", b"second,", b"third"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/respawn":
            self.close_connection = True
            body = b'{"respawn":true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.server.leaving = True
        else:
            self.send_error(404)


class Tcp(socketserver.TCPServer):
    allow_reuse_address = True
    leaving = False


class Tls(Tcp):
    """Each accepted connection is wrapped (and its handshake made) in the
    worker that accepted it."""

    context = None

    def get_request(self):
        sock, addr = super().get_request()
        return self.context.wrap_socket(sock, server_side=True), addr


class Unix(socketserver.UnixStreamServer):
    leaving = False


class Threaded(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True
    leaving = False


def work(server):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while not server.leaving:
        server.handle_request()
    os._exit(0)


def main():
    mode, where = sys.argv[1], sys.argv[2]
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    if mode in ("tcp", "tls", "candidate"):
        server = {"tcp": Tcp, "tls": Tls, "candidate": Threaded}[mode](("127.0.0.1", 0), Handler)
        if mode == "tls":
            import ssl

            server.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            server.context.load_cert_chain(os.environ["CERT"], os.environ["KEY"])
        with open(where + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        os.rename(where + ".tmp", where)
    else:
        if os.path.exists(where):
            os.unlink(where)
        server = Unix(where, Handler)
    if mode == "candidate":
        server.serve_forever()
    children = set()

    def spawn():
        pid = os.fork()
        if pid == 0:
            work(server)
        children.add(pid)

    def stop(*_):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    for _ in range(workers):
        spawn()
    while True:
        pid, _ = os.wait()
        children.discard(pid)
        spawn()


main()
