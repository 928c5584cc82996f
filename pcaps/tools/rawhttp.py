"""Shared helpers for the hand-written (raw socket) test servers.

Only what the test servers need: read one HTTP/1.x request (head plus a body
framed by Content-Length or chunked transfer coding, trailers included) from a
socket, and run a threaded accept loop on loopback.
"""
import socket
import sys
import threading


class Conn:
    """A socket with a read buffer, so pipelined requests are not lost."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def read_until(self, delim):
        while delim not in self.buf:
            self._fill()
        i = self.buf.index(delim) + len(delim)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, data):
        self.sock.sendall(data)


class Request:
    def __init__(self, method, target, version, headers, body, chunks, trailers):
        self.method, self.target, self.version = method, target, version
        self.headers = headers          # list of (name, value), original case
        self.body = body
        self.chunks = chunks            # number of data chunks if chunked, else None
        self.trailers = trailers        # list of (name, value)

    def header(self, name, default=""):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def wants_close(self):
        conn = self.header("Connection").lower()
        if self.version == "HTTP/1.0":
            return conn != "keep-alive"
        return conn == "close"


def parse_fields(block):
    out = []
    for line in block.split(b"\r\n"):
        if line:
            k, _, v = line.decode("latin-1").partition(":")
            out.append((k.strip(), v.strip()))
    return out


def read_request(conn):
    """Return a Request, or None if the peer closed before a new request."""
    try:
        head = conn.read_until(b"\r\n\r\n")
    except EOFError:
        return None
    first, _, rest = head[:-4].partition(b"\r\n")
    method, target, version = first.decode("latin-1").split(" ", 2)
    headers = parse_fields(rest)
    req = Request(method, target, version, headers, b"", None, [])
    if version == "HTTP/1.1" and req.header("Expect").lower() == "100-continue":
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in req.header("Transfer-Encoding").lower():
        body, n = b"", 0
        while True:
            size_line = conn.read_until(b"\r\n")[:-2]
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                break
            body += conn.read_exact(size)
            conn.read_exact(2)  # CRLF after chunk data
            n += 1
        # trailer section ends with an empty line
        trailer_block = b""
        while True:
            line = conn.read_until(b"\r\n")
            if line == b"\r\n":
                break
            trailer_block += line
        req.body, req.chunks, req.trailers = body, n, parse_fields(trailer_block)
    elif req.header("Content-Length"):
        req.body = conn.read_exact(int(req.header("Content-Length")))
    return req


def serve(name, host, port, handle_conn):
    """Accept loop: one thread per connection running handle_conn(Conn)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(16)
    sys.stderr.write("%s listening on %s:%d\n" % (name, host, port))

    def run(sock):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            handle_conn(Conn(sock))
        except (EOFError, ConnectionError) as e:
            sys.stderr.write("%s: connection ended: %r\n" % (name, e))
        finally:
            sock.close()

    try:
        while True:
            s, _ = ls.accept()
            threading.Thread(target=run, args=(s,), daemon=True).start()
    except KeyboardInterrupt:
        pass
