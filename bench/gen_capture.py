#!/usr/bin/env python3
"""Generate a large synthetic pcap of HTTP/1.1 keep-alive traffic for benchmarks.

Output: classic pcap (magic a1b2c3d4, microsecond timestamps, LINKTYPE_ETHERNET)
of IPv4/TCP traffic between clients 10.1.x.y:<ephemeral> and the server
10.0.0.1:80. Every connection does a full SYN / SYN-ACK / ACK handshake, then
one or more HTTP/1.1 request/response exchanges (no pipelining), then a FIN
close. Connections overlap in time and their packets are interleaved, ordered
by a strictly increasing timestamp.

Traffic properties:
  * segments carry at most 1448 bytes of TCP payload, seq/ack numbers are
    exact, the receiver sends a pure ACK every two data segments (and after
    the last segment of a message), ~2% of connections have an initial
    sequence number just below 2**32 so their sequence space wraps;
  * requests: GET with query strings (most), POST/PUT with small JSON bodies
    (Content-Length), DELETE; each carries a unique X-Request-Id;
  * responses: ASCII JSON bodies from 0 bytes up to --max-body, framed with
    Content-Length or Transfer-Encoding: chunked (several chunks); the
    response echoes the request's X-Request-Id;
  * ~30% of connections send `Connection: close` on their last request and
    the server closes first; the others are closed by the client.

Besides FILE it writes FILE.expected.json with the exchange/request/connection
counts, and with --manifest M one JSON line per exchange (roughly in capture order).

Python 3 standard library only; deterministic for a given --seed and options.
"""

import argparse
import bisect
import heapq
import json
import random
import struct
import sys
import time

MSS = 1448
SERVER_IP = bytes([10, 0, 0, 1])
SERVER_PORT = 80
SERVER_MAC = bytes([0x02, 0x00, 0x0A, 0x00, 0x00, 0x01])
BASE_TIME_US = 1_700_000_000 * 1_000_000  # 2023-11-14T22:13:20Z

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
C2S, S2C = 0, 1

REC_HDR = struct.Struct("<IIII")
# IPv4 header (20 bytes) + TCP header without options (20 bytes)
IP_TCP = struct.Struct("!BBHHHBBH4s4sHHIIBBHHH")
MSS_OPT = struct.pack("!BBH", 2, 4, 1460)
WINDOW = 64240

WORDS = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi "
    "omicron pi rho sigma tau upsilon phi chi psi omega lorem ipsum dolor sit "
    "amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua quick brown fox jumps over lazy dog"
).split()

RESOURCES = ["users", "orders", "items", "products", "carts", "sessions",
             "invoices", "reviews", "search", "inventory", "accounts", "events"]

REASONS = {200: "OK", 201: "Created", 404: "Not Found", 500: "Internal Server Error"}

DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
          "Nov", "Dec"]


def http_date(us):
    t = time.gmtime(us // 1_000_000)
    return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        DAYS[t.tm_wday], t.tm_mday, MONTHS[t.tm_mon - 1], t.tm_year,
        t.tm_hour, t.tm_min, t.tm_sec)


class Bodies:
    """Builds ASCII JSON bodies of an exact length from precomputed text."""

    def __init__(self, rng, max_body):
        items = []
        total = 0
        i = 0
        need = max(2 * max_body, 4096) + 65536
        while total < need:
            item = ('{"id":%d,"name":"%s_%s","email":"%s%d@example.test",'
                    '"score":%d.%02d,"active":%s,"tags":["%s","%s"]}') % (
                rng.randrange(1, 10_000_000), rng.choice(WORDS), rng.choice(WORDS),
                rng.choice(WORDS), rng.randrange(1000), rng.randrange(100),
                rng.randrange(100), rng.choice(("true", "false")),
                rng.choice(WORDS), rng.choice(WORDS))
            items.append(item)
            total += len(item) + 1
            i += 1
        self.blob = ",".join(items)
        self.starts = []
        self.ends = []
        off = 0
        for item in items:
            self.starts.append(off)
            off += len(item)
            self.ends.append(off)
            off += 1
        words = []
        n = 0
        while n < max_body + 1024:
            w = rng.choice(WORDS)
            words.append(w)
            n += len(w) + 1
        self.pad = " ".join(words)
        self.rng = rng

    def make(self, length, rid):
        """Return an ASCII JSON document of exactly `length` bytes."""
        if length <= 0:
            return ""
        if length == 1:
            return "0"
        prefix = '{"request_id":"%s","items":[' % rid
        mid = '],"pad":"'
        end = '"}'
        budget = length - len(prefix) - len(mid) - len(end)
        if budget < 0:
            return '"' + self.pad[:length - 2] + '"'
        nitems = len(self.starts)
        i = self.rng.randrange(nitems // 2)
        s = self.starts[i]
        j = bisect.bisect_right(self.ends, s + budget)  # items i..j-1 fit
        items = self.blob[s:self.ends[j - 1]] if j > i else ""
        padlen = budget - len(items)
        po = self.rng.randrange(len(self.pad) - padlen + 1)
        return prefix + items + mid + self.pad[po:po + padlen] + end


def body_len(rng, max_body):
    r = rng.random()
    if r < 0.02:
        return 0
    if r < 0.40:
        return rng.randrange(1, min(2000, max_body) + 1)
    if r < 0.78:
        return rng.randrange(min(2000, max_body), min(16000, max_body) + 1)
    if r < 0.99:
        return rng.randrange(min(16000, max_body), max_body + 1)
    return max_body


def chunk_encode(rng, body):
    n = len(body)
    if n == 0:
        return "0\r\n\r\n"
    nchunks = min(n, rng.randrange(2, 9))
    cuts = sorted(rng.sample(range(1, n), nchunks - 1)) if nchunks > 1 else []
    parts = []
    prev = 0
    upper = rng.random() < 0.3
    for c in cuts + [n]:
        size = ("%X" if upper else "%x") % (c - prev)
        parts.append(size + "\r\n" + body[prev:c] + "\r\n")
        prev = c
    parts.append("0\r\n\r\n")
    return "".join(parts)


def make_request(rng, bodies, conn_id, ex_no, rid, client_ua, last_close):
    r = rng.random()
    res = rng.choice(RESOURCES)
    if r < 0.76:
        method = "GET"
        if rng.random() < 0.85:
            q = ["page=%d" % rng.randrange(1, 200), "limit=%d" % rng.choice((10, 20, 50, 100))]
            if rng.random() < 0.6:
                q.append("q=%s+%s" % (rng.choice(WORDS), rng.choice(WORDS)))
            if rng.random() < 0.4:
                q.append("sort=%s" % rng.choice(("asc", "desc", "-created_at")))
            if rng.random() < 0.3:
                q.append("filter%%5Bstatus%%5D=%s" % rng.choice(("open", "closed")))
            uri = "/api/v1/%s?%s" % (res, "&".join(q))
        else:
            uri = "/api/v1/%s/%d" % (res, rng.randrange(1, 1_000_000))
        body = ""
    elif r < 0.92:
        method = "POST"
        uri = "/api/v1/%s" % res
        body = None
    elif r < 0.96:
        method = "PUT"
        uri = "/api/v1/%s/%d" % (res, rng.randrange(1, 1_000_000))
        body = None
    else:
        method = "DELETE"
        uri = "/api/v1/%s/%d" % (res, rng.randrange(1, 1_000_000))
        body = ""
    if body is None:
        fields = ['"%s":"%s"' % (rng.choice(WORDS), rng.choice(WORDS))
                  for _ in range(rng.randrange(1, 12))]
        fields.append('"qty":%d' % rng.randrange(1, 100))
        body = "{" + ",".join(fields) + "}"
    lines = ["%s %s HTTP/1.1" % (method, uri),
             "Host: api.bench.test",
             "User-Agent: %s" % client_ua,
             "Accept: application/json",
             "X-Request-Id: %s" % rid]
    if rng.random() < 0.3:
        lines.append("Cookie: session=%016x; theme=%s" % (rng.getrandbits(64), rng.choice(WORDS)))
    if method in ("POST", "PUT"):
        lines.append("Content-Type: application/json")
        lines.append("Content-Length: %d" % len(body))
    if last_close:
        lines.append("Connection: close")
    return method, uri, body, "\r\n".join(lines) + "\r\n\r\n" + body


def make_response(rng, bodies, method, rid, date, max_body, last_close):
    r = rng.random()
    if r < 0.03:
        status = 404
        blen = rng.randrange(20, 120)
    elif r < 0.04:
        status = 500
        blen = rng.randrange(20, 300)
    else:
        status = 201 if method == "POST" else 200
        blen = body_len(rng, max_body) if method == "GET" else min(max_body, rng.randrange(0, 400))
    body = bodies.make(blen, rid)
    chunked = rng.random() < 0.35
    lines = ["HTTP/1.1 %d %s" % (status, REASONS[status]),
             "Date: %s" % date,
             "Server: bench-origin/1.0",
             "Content-Type: application/json",
             "X-Request-Id: %s" % rid]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        payload = chunk_encode(rng, body)
    else:
        lines.append("Content-Length: %d" % blen)
        payload = body
    lines.append("Connection: close" if last_close else "Connection: keep-alive")
    if rng.random() < 0.5:
        lines.append("Cache-Control: no-store")
    return status, blen, chunked, "\r\n".join(lines) + "\r\n\r\n" + payload


def conn_events(rng, bodies, conn_id, start_us, n_ex, max_body, manifest, client_desc):
    """Yields (time_us, direction, flags, payload_bytes) for one connection.

    seq/ack are filled in by the writer: every packet acks everything the other
    side sent before it, which matches the sequential order yielded here.
    """
    t = start_us
    ua = "bench-client/%d.%d (conn %d)" % (rng.randrange(1, 4), rng.randrange(10), conn_id)
    server_closes = rng.random() < 0.30
    yield t, C2S, SYN, b""
    t += rng.randrange(60, 400)
    yield t, S2C, SYN | ACK, b""
    t += rng.randrange(60, 400)
    yield t, C2S, ACK, b""
    t += rng.randrange(20, 200)
    for ex in range(n_ex):
        if ex:
            t += rng.randrange(2_000, 80_000)  # think time between exchanges
        last_close = server_closes and ex == n_ex - 1
        rid = "c%05d-e%03d" % (conn_id, ex)
        method, uri, req_body, req = make_request(rng, bodies, conn_id, ex, rid, ua, last_close)
        req = req.encode("ascii")
        n = len(req)
        segs = range(0, n, MSS)
        for k, off in enumerate(segs):
            lastseg = off + MSS >= n
            yield t, C2S, (ACK | PSH) if lastseg else ACK, req[off:off + MSS]
            t += rng.randrange(10, 30)
            if k % 2 == 1 and not lastseg:
                yield t, S2C, ACK, b""
                t += rng.randrange(10, 30)
        t += rng.randrange(200, 900)  # server think time
        status, blen, chunked, resp = make_response(
            rng, bodies, method, rid, http_date(BASE_TIME_US + t), max_body, last_close)
        resp = resp.encode("ascii")
        if manifest is not None:
            manifest.append({"conn": conn_id, "client": client_desc, "request_id": rid,
                             "method": method, "uri": uri, "req_body_len": len(req_body),
                             "req_wire_len": len(req), "status": status,
                             "resp_body_len": blen, "chunked": chunked,
                             "resp_wire_len": len(resp)})
        n = len(resp)
        k = 0
        for off in range(0, n, MSS):
            lastseg = off + MSS >= n
            yield t, S2C, (ACK | PSH) if lastseg else ACK, resp[off:off + MSS]
            t += rng.randrange(8, 30)
            if k % 2 == 1 or lastseg:
                t += rng.randrange(10, 60)
                yield t, C2S, ACK, b""
                t += rng.randrange(5, 20)
            k += 1
    if server_closes:
        t += rng.randrange(20, 200)
        yield t, S2C, FIN | ACK, b""
        t += rng.randrange(60, 400)
        yield t, C2S, FIN | ACK, b""
        t += rng.randrange(60, 400)
        yield t, S2C, ACK, b""
    else:
        t += rng.randrange(1_000, 50_000)
        yield t, C2S, FIN | ACK, b""
        t += rng.randrange(60, 400)
        yield t, S2C, FIN | ACK, b""
        t += rng.randrange(60, 400)
        yield t, C2S, ACK, b""


class Conn:
    __slots__ = ("gen", "eth", "ipaddr", "port", "seq", "ipid", "csum_part")


def ip_words(b):
    return (b[0] << 8 | b[1]) + (b[2] << 8 | b[3])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output pcap file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--connections", type=int, default=2500)
    ap.add_argument("--exchanges", type=int, default=24000, help="total exchanges")
    ap.add_argument("--max-body", type=int, default=70000, help="max response body bytes")
    ap.add_argument("--start-span", type=float, default=None,
                    help="seconds over which connections open (default: scales with size)")
    ap.add_argument("--manifest", help="also write one JSON line per exchange here")
    args = ap.parse_args()
    if args.connections < 1 or args.exchanges < args.connections:
        ap.error("need 1 <= connections <= exchanges")
    if args.max_body < 0:
        ap.error("--max-body must be >= 0")

    t0 = time.time()
    rng = random.Random(args.seed)
    bodies = Bodies(random.Random(rng.getrandbits(64)), args.max_body)

    C = args.connections
    # exchanges per connection: at least one each, rest skewed by a lognormal weight
    counts = [1] * C
    weights = [rng.lognormvariate(0.0, 0.8) for _ in range(C)]
    for ci in rng.choices(range(C), weights=weights, k=args.exchanges - C):
        counts[ci] += 1

    span_s = args.start_span if args.start_span is not None else max(0.5, 4.0 * C / 2500)
    span_us = int(span_s * 1_000_000)

    # client endpoints: a pool of 10.1.x.y addresses, unique (ip, port) per connection
    n_ips = max(1, min(4000, C // 3 + 1))
    ip_pool = []
    seen = set()
    while len(ip_pool) < n_ips:
        a = (rng.randrange(256), rng.randrange(1, 255))
        if a not in seen:
            seen.add(a)
            ip_pool.append(a)
    next_port = {}

    manifest = [] if args.manifest else None
    conns = []
    heap = []
    server_sum = ip_words(SERVER_IP) + 0x4500 + 0x4000 + 0x4006  # ver/ihl/tos, DF, ttl/proto
    for ci in range(C):
        x, y = ip_pool[rng.randrange(n_ips)]
        port = next_port.get((x, y))
        if port is None:
            port = rng.randrange(20000, 60000)
        else:
            port += rng.randrange(1, 8)
            if port > 65535:
                port = 1024 + port - 65536
        next_port[(x, y)] = port
        ipaddr = bytes([10, 1, x, y])
        mac = bytes([0x02, 0x00, 0x0A, 0x01, x, y])
        c = Conn()
        c.ipaddr = ipaddr
        c.port = port
        c.eth = (SERVER_MAC + mac + b"\x08\x00", mac + SERVER_MAC + b"\x08\x00")
        if rng.random() < 0.02:
            c.seq = [(2**32 - rng.randrange(1, 20000)), rng.getrandbits(32)]
        elif rng.random() < 0.02:
            c.seq = [rng.getrandbits(32), (2**32 - rng.randrange(1, 20000))]
        else:
            c.seq = [rng.getrandbits(32), rng.getrandbits(32)]
        c.ipid = [rng.getrandbits(16), rng.getrandbits(16)]
        c.csum_part = server_sum + ip_words(ipaddr)
        start = rng.randrange(span_us)
        c.gen = conn_events(random.Random(rng.getrandbits(64)), bodies, ci, start, counts[ci],
                            args.max_body, manifest, "10.1.%d.%d:%d" % (x, y, port))
        conns.append(c)
        ev = next(c.gen)
        heap.append((ev[0], ci, ev))
    heapq.heapify(heap)

    out = open(args.out, "wb")
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    buf = []
    buf_bytes = 0
    FLUSH = 8 << 20
    packets = 0
    total = 24
    last_ts = BASE_TIME_US - 1
    open_now = 0
    max_open = 0
    pack_iptcp = IP_TCP.pack
    pack_rec = REC_HDR.pack
    heappop, heappush = heapq.heappop, heapq.heappush
    M32 = 0xFFFFFFFF

    while heap:
        tdes, ci, ev = heappop(heap)
        c = conns[ci]
        _, d, flags, payload = ev
        ts = BASE_TIME_US + tdes
        if ts <= last_ts:
            ts = last_ts + 1
        last_ts = ts
        seq = c.seq
        o = 1 - d
        plen = len(payload)
        if flags & SYN:
            opts = MSS_OPT
            doff = 0x60
            open_now += d == C2S
            if open_now > max_open:
                max_open = open_now
        else:
            opts = b""
            doff = 0x50
        tot_len = 40 + len(opts) + plen
        ipid = c.ipid[d]
        c.ipid[d] = (ipid + 1) & 0xFFFF
        s = c.csum_part + tot_len + ipid
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        csum = ~s & 0xFFFF
        if d == C2S:
            hdr = pack_iptcp(0x45, 0, tot_len, ipid, 0x4000, 64, 6, csum, c.ipaddr, SERVER_IP,
                             c.port, SERVER_PORT, seq[d], seq[o] if flags & ACK else 0,
                             doff, flags, WINDOW, 0, 0)
        else:
            hdr = pack_iptcp(0x45, 0, tot_len, ipid, 0x4000, 64, 6, csum, SERVER_IP, c.ipaddr,
                             SERVER_PORT, c.port, seq[d], seq[o] if flags & ACK else 0,
                             doff, flags, WINDOW, 0, 0)
        caplen = 14 + tot_len
        buf.append(pack_rec(ts // 1_000_000, ts % 1_000_000, caplen, caplen))
        buf.append(c.eth[d])
        buf.append(hdr)
        if opts:
            buf.append(opts)
        if plen:
            buf.append(payload)
        seq[d] = (seq[d] + plen + (1 if flags & (SYN | FIN) else 0)) & M32
        packets += 1
        buf_bytes += 16 + caplen
        if buf_bytes >= FLUSH:
            out.write(b"".join(buf))
            total += buf_bytes
            buf = []
            buf_bytes = 0
        nxt = next(c.gen, None)
        if nxt is None:
            open_now -= 1
            c.gen = None
        else:
            heappush(heap, (nxt[0], ci, nxt))
    out.write(b"".join(buf))
    total += buf_bytes
    out.close()

    n_ex = args.exchanges
    expected = {"exchanges": n_ex, "requests": n_ex, "responses": n_ex, "connections": C,
                "packets": packets, "bytes": total, "seed": args.seed,
                "max_body": args.max_body}
    with open(args.out + ".expected.json", "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    if manifest is not None:
        with open(args.manifest, "w") as f:
            for m in manifest:
                f.write(json.dumps(m, separators=(",", ":")) + "\n")
    dur = (last_ts - BASE_TIME_US) / 1e6
    el = time.time() - t0
    print("gen_capture: %s: %d packets, %d bytes (%.1f MB), %d connections "
          "(max %d open at once), %d exchanges, capture spans %.2f s; generated in %.1f s"
          % (args.out, packets, total, total / 1e6, C, max_open, n_ex, dur, el),
          file=sys.stderr)


if __name__ == "__main__":
    main()
