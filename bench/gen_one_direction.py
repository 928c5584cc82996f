#!/usr/bin/env python3
"""Generate a pcap that sees one direction only: clients' requests, no answers.

What a mirror port with one leg (or an asymmetric route) shows: each client
connection's SYN, its ACK and its data segments to the server 10.0.0.1:80,
and nothing the server sent. Every connection is HTTP/1.1 keep-alive and
pipelines small GET requests (`GET /items/<n> HTTP/1.1`, n counting from 0
in each connection), packed into full segments, so a request may straddle two.
Connections are interleaved packet by packet, timestamps strictly
increasing; the client closes with a FIN at the end.

Defaults (20 connections x 50,000 requests) give a capture of about 40 MB,
the one-direction case of issue 13. Writes FILE.expected.json with the
request count (every request must come out of `pairs`, unanswered).

Python 3 standard library only; deterministic.
"""

import argparse
import json
import struct

MSS = 1448
SERVER = (bytes([10, 0, 0, 1]), 80)
BASE_US = 1_700_000_000 * 1_000_000
SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(src, dst, seq, ack, flags, payload):
    """Ethernet + IPv4 + TCP (no options) around `payload`."""
    (sip, sport), (dip, dport) = src, dst
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0, sip, dip)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    eth = bytes([2, 0, 10, 0, 0, 1, 2, 0, 10, 1, 0, 0]) + b"\x08\x00"
    return eth + ip + tcp + payload


def client_stream(conn, requests):
    parts = []
    for i in range(requests):
        parts.append(f"GET /items/{i} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    return b"".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--connections", type=int, default=20)
    ap.add_argument("--requests", type=int, default=50_000, help="per connection")
    args = ap.parse_args()

    conns = []
    for c in range(args.connections):
        src = (bytes([10, 1, c >> 8 & 0xFF, c & 0xFF]), 40000 + c)
        isn = (0x10000000 * (c + 1) + 12345) & 0xFFFFFFFF
        data = client_stream(c, args.requests)
        packets = [(isn, 0, SYN, b""), ((isn + 1) & 0xFFFFFFFF, 1, ACK, b"")]
        for off in range(0, len(data), MSS):
            packets.append(((isn + 1 + off) & 0xFFFFFFFF, 1, ACK | PSH, data[off : off + MSS]))
        packets.append(((isn + 1 + len(data)) & 0xFFFFFFFF, 1, ACK | FIN, b""))
        conns.append((src, packets))

    t = BASE_US
    with open(args.out, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        longest = max(len(p) for _, p in conns)
        for i in range(longest):
            for src, packets in conns:
                if i >= len(packets):
                    continue
                seq, ack, flags, payload = packets[i]
                f = frame(src, SERVER, seq, ack, flags, payload)
                out.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(f), len(f)))
                out.write(f)
                t += 10
    expected = {"connections": args.connections, "requests": args.connections * args.requests}
    with open(args.out + ".expected.json", "w") as f:
        json.dump(expected, f)
        f.write("\n")


if __name__ == "__main__":
    main()
