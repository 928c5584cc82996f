#!/usr/bin/env python3
"""Make a mirror-port capture out of a loopback one: reorder across directions.

Usage: reorder_pcap.py IN.pcap OUT.pcap

On a mirror port (SPAN) the two directions of a connection reach the
capture through different paths, so a packet can be captured after the
peer's ACK of it. This rewrites a classic pcap (Ethernet or raw IP, IPv4
TCP) that way: each server data segment followed by another server data
segment of the same connection is moved to just after the first client
packet that acknowledges that next segment. The moved segment takes that
packet's time; only moves of at most 10 ms are made (well inside the
50 ms reordering window), so timestamps still never decrease. Nothing else
changes: every packet is kept, byte for byte.
"""
import struct
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import http_summary  # noqa: E402  (the independent reader's pcap parsing)


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\xd4\xc3\xb2\xa1":
        raise SystemExit("%s: expected a little-endian microsecond pcap" % path)
    linktype = struct.unpack("<I", data[20:24])[0]
    off, pkts = 24, []
    while off + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[off:off + 16])
        pkts.append([sec * 1_000_000 + usec, orig, data[off + 16:off + 16 + incl]])
        off += 16 + incl
    return data[:24], linktype, pkts


def tcp_of(linktype, frame):
    r = http_summary.ip_payload(linktype, frame)
    if r is None:
        return None
    src, dst, tcp = r
    sport, dport, seq, ack = struct.unpack(">HHII", tcp[:12])
    payload = tcp[(tcp[12] >> 4) * 4:]
    return (src, sport), (dst, dport), seq, ack, tcp[13], len(payload)


def reorder(linktype, pkts):
    info = [tcp_of(linktype, p[2]) for p in pkts]
    servers = {}  # connection -> server endpoint, from the SYN
    for t in info:
        if t and t[4] & 0x12 == 0x02:
            servers[frozenset((t[0], t[1]))] = t[1]
    moves = {}  # index of a delayed segment -> index of the packet it follows
    for i, t in enumerate(info):
        if not t or t[5] == 0 or servers.get(frozenset((t[0], t[1]))) != t[0]:
            continue
        later = [j for j in range(i + 1, len(info)) if info[j] and info[j][0] == t[0] and info[j][1] == t[1]]
        nxt = next((j for j in later if info[j][5] > 0), None)
        if nxt is None or nxt in moves or i in moves.values():
            continue
        end = (info[nxt][2] + info[nxt][5]) & 0xFFFFFFFF
        acker = next((j for j in range(nxt + 1, len(info)) if info[j] and info[j][0] == t[1]
                      and info[j][4] & 0x10 and ((info[j][3] - end) & 0xFFFFFFFF) < 1 << 31), None)
        # Only a short delay (10 ms), as a mirror port adds: well inside
        # the reordering window.
        short = acker is not None and pkts[acker][0] - pkts[i][0] <= 10_000
        if short and i not in moves and acker not in moves:
            moves[i] = acker
    out = []
    for i, p in enumerate(pkts):
        if i in moves:
            continue
        out.append(p)
        for moved, after in sorted(moves.items()):
            if after == i:
                out.append([p[0], pkts[moved][1], pkts[moved][2]])
    return out, len(moves)


def main():
    header, linktype, pkts = read(sys.argv[1])
    out, moved = reorder(linktype, pkts)
    with open(sys.argv[2], "wb") as f:
        f.write(header)
        for ts, orig, frame in out:
            f.write(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(frame), orig) + frame)
    sys.stderr.write("%s: %d packets, %d moved after the ACK of the next one\n" % (sys.argv[2], len(out), moved))


if __name__ == "__main__":
    main()
