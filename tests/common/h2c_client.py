"""A small HTTP/2 prior-knowledge client for tests: sends N GETs one after
another on one connection, each with its own large header (`x-fill-I`,
its own name so that HPACK sends the name as a literal; indexed, so that
older table entries get evicted), and prints each
answer's status. Usage: h2c_client.py PORT N. Needs `h2` (PyPI)."""

import socket
import sys

import h2.config
import h2.connection
import h2.events


def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    sock = socket.create_connection(("127.0.0.1", port))
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    for i in range(count):
        stream_id = conn.get_next_available_stream_id()
        fill = (f"{i:04d}-" * 120)[:600]
        conn.send_headers(
            stream_id,
            [(":method", "GET"), (":scheme", "http"), (":authority", f"127.0.0.1:{port}"), (":path", f"/seq/{i}"),
             ("user-agent", "h2c-client"), (f"x-fill-{i}", fill)],
            end_stream=True,
        )
        sock.sendall(conn.data_to_send())
        done = False
        while not done:
            data = sock.recv(65536)
            if not data:
                raise SystemExit("closed early")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    print(dict(event.headers)[":status"], flush=True)
                if isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                    done = True
                if isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            sock.sendall(conn.data_to_send())
    conn.close_connection()
    sock.sendall(conn.data_to_send())
    sock.close()


if __name__ == "__main__":
    main()
