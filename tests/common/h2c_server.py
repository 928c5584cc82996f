"""A small HTTP/2 cleartext server for tests: HTTP/1.1 `Upgrade: h2c`
(answered with 101, the upgrading request answered on stream 1) and prior
knowledge alike. Every request is answered with `METHOD PATH` and the
request body's length as its body, status 404 for paths under /missing,
a trailer `x-served: yes` on /trailers, and a 600-byte header
`x-echo-PATH` of the path repeated. Prints its port, then serves
until killed. Needs the `h2` package (PyPI)."""

import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def answer(conn, sock, stream_id, headers, body):
    h = dict(headers)
    method, path = h.get(":method", ""), h.get(":path", "")
    status = "404" if path.startswith("/missing") else "200"
    payload = f"{method} {path} {len(body)}".encode()
    trailers = path.startswith("/trailers")
    # A large header of its own per answer (its own name too, so that HPACK
    # sends the name as a literal rather than by reference to the last
    # such entry): it is indexed, so older entries of the server's table
    # get evicted as a real server's would.
    echo = (path + " ") * (600 // (len(path) + 1) + 1)
    name = "x-echo" + path.replace("/", "-")
    head = [(":status", status), ("content-type", "text/plain"), ("content-length", str(len(payload))), (name, echo[:600])]
    conn.send_headers(stream_id, head)
    conn.send_data(stream_id, payload, end_stream=not trailers)
    if trailers:
        conn.send_headers(stream_id, [("x-served", "yes")], end_stream=True)
    sock.sendall(conn.data_to_send())


def read_http1_head(sock, first):
    buf = first
    while b"\r\n\r\n" not in buf:
        more = sock.recv(65536)
        if not more:
            return None, b""
        buf += more
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def serve(sock):
    config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
    conn = h2.connection.H2Connection(config=config)
    first = sock.recv(65536)
    if first.startswith(PREFACE[: len(first)]) and len(first) > 0:
        conn.initiate_connection()
        rest = first
    else:
        head, rest = read_http1_head(sock, first)
        if head is None:
            return
        lines = head.split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        fields = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        conn.initiate_upgrade_connection(fields.get("http2-settings", ""))
        sock.sendall(conn.data_to_send())
        answer(conn, sock, 1, [(":method", method), (":path", path)], b"")
    bodies = {}
    headers = {}
    data = rest
    while True:
        if data:
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    headers[event.stream_id] = event.headers
                    bodies[event.stream_id] = b""
                elif isinstance(event, h2.events.DataReceived):
                    bodies[event.stream_id] += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if getattr(event, "stream_ended", None) is not None or isinstance(event, h2.events.StreamEnded):
                    sid = event.stream_id
                    if sid in headers:
                        answer(conn, sock, sid, headers.pop(sid), bodies.pop(sid))
            sock.sendall(conn.data_to_send())
        data = sock.recv(65536)
        if not data:
            return


def main():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=lambda s=sock: (serve(s), s.close()), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
