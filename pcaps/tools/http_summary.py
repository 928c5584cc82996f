#!/usr/bin/env python3
"""Independent check of a capture: list every HTTP/1.x exchange in a pcap.

Usage: http_summary.py FILE.pcap [--counts]

Stdlib only. Reads classic pcap (Ethernet, Linux SLL v1/v2, raw IP),
IPv4/IPv6 + TCP, reassembles each direction of each connection by sequence
number, then splits the bytes into HTTP messages using the message-length
rules of RFC 9112 section 6.3: HEAD, 1xx, 204 and 304 responses have no
body; then Transfer-Encoding: chunked, then Content-Length, else (responses
only) the body runs to the connection close.

Unlike `tshark -Y http.request | wc -l`, which counts frames, this counts
messages, so several pipelined requests in one segment count separately,
and a HEAD response inside a pipeline does not swallow the next response.
"""
import struct
import sys

LINKTYPES = {1: "EN10MB", 101: "RAW", 113: "LINUX_SLL", 276: "LINUX_SLL2"}


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise SystemExit("%s: not a classic pcap file" % path)
    linktype = struct.unpack(end + "I", data[20:24])[0]
    off, pkts = 24, []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        pkts.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return linktype, pkts


def ip_payload(linktype, frame):
    if linktype == 1:
        etype, off = struct.unpack(">H", frame[12:14])[0], 14
        while etype in (0x8100, 0x88a8):
            etype, off = struct.unpack(">H", frame[off + 2:off + 4])[0], off + 4
    elif linktype == 113:
        etype, off = struct.unpack(">H", frame[14:16])[0], 16
    elif linktype == 276:
        etype, off = struct.unpack(">H", frame[0:2])[0], 20
    elif linktype == 101:
        etype, off = (0x86DD if frame[0] >> 4 == 6 else 0x0800), 0
    else:
        raise SystemExit("unsupported linktype %d" % linktype)
    ip = frame[off:]
    if etype == 0x0800:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if ip[9] != 6:
            return None
        return ip[12:16], ip[16:20], ip[ihl:total]
    if etype == 0x86DD:
        plen = struct.unpack(">H", ip[4:6])[0]
        if ip[6] != 6:
            return None
        return ip[8:24], ip[24:40], ip[40:40 + plen]
    return None


def connections(linktype, pkts):
    """Return a list of (client, server, client_bytes, server_bytes)."""
    conns, order = {}, []
    for frame in pkts:
        r = ip_payload(linktype, frame)
        if r is None:
            continue
        src, dst, tcp = r
        sport, dport, seq = struct.unpack(">HHI", tcp[:8])
        flags = tcp[13]
        payload = tcp[(tcp[12] >> 4) * 4:]
        a, b = (src, sport), (dst, dport)
        key = frozenset((a, b))
        syn, ack = flags & 2, flags & 16
        if syn and not ack:                       # new connection
            conns[key] = {"client": a, "server": b, "isn": {a: seq}, "segs": {a: [], b: []}}
            order.append(conns[key])
        c = conns.get(key)
        if c is None:
            continue                              # started before the capture
        if syn:
            c["isn"][a] = seq
            continue
        if payload and a in c["isn"]:
            c["segs"][a].append(((seq - c["isn"][a] - 1) & 0xFFFFFFFF, payload))
    out = []
    for c in order:
        streams = []
        for side in (c["client"], c["server"]):
            buf = bytearray()
            for rel, p in sorted(c["segs"][side], key=lambda s: s[0]):
                if rel > len(buf):
                    buf += b"\0" * (rel - len(buf))   # gap: lost segment
                buf[rel:rel + len(p)] = p
            streams.append(bytes(buf))
        out.append((c["client"], c["server"], streams[0], streams[1]))
    return out


class Incomplete(Exception):
    pass


def parse_head(buf, pos):
    end = buf.find(b"\r\n\r\n", pos)
    if end < 0:
        raise Incomplete
    lines = buf[pos:end].decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    return lines[0], hdrs, end + 4


def parse_body(buf, pos, hdrs, to_close):
    """Return (body_bytes, new_pos, framing)."""
    te = ",".join(hdrs.get("transfer-encoding", [])).lower()
    if "chunked" in te:
        body, trailers = b"", 0
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                raise Incomplete
            size = int(buf[pos:eol].split(b";")[0].strip(), 16)
            pos = eol + 2
            if size == 0:
                break
            if len(buf) < pos + size + 2:
                raise Incomplete
            body += buf[pos:pos + size]
            pos += size + 2
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                raise Incomplete
            if eol == pos:
                return body, eol + 2, "chunked" + (" +%d trailer" % trailers if trailers else "")
            trailers += 1
            pos = eol + 2
    if "content-length" in hdrs:
        n = int(hdrs["content-length"][0])
        if len(buf) < pos + n:
            raise Incomplete
        return buf[pos:pos + n], pos + n, "length"
    if to_close:
        return buf[pos:], len(buf), "close"
    return b"", pos, "none"


def exchanges(cbytes, sbytes):
    reqs, pos = [], 0
    while pos < len(cbytes):
        try:
            line, hdrs, p = parse_head(cbytes, pos)
            body, pos, framing = parse_body(cbytes, p, hdrs, False)
        except Incomplete:
            reqs.append(("INCOMPLETE", "", 0, ""))
            break
        method, target = line.split(" ")[0], line.split(" ")[1]
        reqs.append((method, target, len(body), framing, line.split(" ")[-1]))
    resps, pos, i = [], 0, 0
    while pos < len(sbytes):
        try:
            line, hdrs, p = parse_head(sbytes, pos)
        except Incomplete:
            resps.append(("INCOMPLETE", 0, ""))
            break
        status = int(line.split(" ")[1])
        method = reqs[i][0] if i < len(reqs) else "?"
        if 100 <= status < 200 or status in (204, 304) or method == "HEAD":
            body, pos, framing = b"", p, "no body"
        else:
            try:
                body, pos, framing = parse_body(sbytes, p, hdrs, True)
            except Incomplete:
                resps.append(("INCOMPLETE", 0, ""))
                break
        resps.append((status, len(body), framing, line.split(" ")[0]))
        if status >= 200 or status == 101:
            i += 1
    return reqs, resps


def main():
    path = sys.argv[1]
    linktype, pkts = read_pcap(path)
    nreq = nresp = ninterim = 0
    lines = ["%s: %s, %d packets" % (path, LINKTYPES.get(linktype, linktype), len(pkts))]
    for n, (cl, sv, cb, sb) in enumerate(connections(linktype, pkts)):
        lines.append("  connection %d: client port %d -> server port %d" % (n, cl[1], sv[1]))
        reqs, resps = exchanges(cb, sb)
        finals = [r for r in resps if not (isinstance(r[0], int) and 100 <= r[0] < 200)]
        interim = [r for r in resps if isinstance(r[0], int) and 100 <= r[0] < 200]
        nreq += len(reqs)
        nresp += len(finals)
        ninterim += len(interim)
        ri = iter(resps)
        for q in reqs:
            parts = []
            for r in ri:
                parts.append("%s %s (%d body bytes, %s)" % (r[3], r[0], r[1], r[2]) if r[0] != "INCOMPLETE" else "INCOMPLETE")
                if not (isinstance(r[0], int) and 100 <= r[0] < 200):
                    break
            if q[0] == "INCOMPLETE":
                lines.append("    INCOMPLETE request")
                continue
            lines.append("    %s %s %s (%d body bytes, %s) -> %s" % (
                q[0], q[1], q[4], q[2], q[3], " then ".join(parts) or "NO RESPONSE"))
    lines.append("  total: %d requests, %d final responses, %d interim (1xx)" % (nreq, nresp, ninterim))
    if "--counts" in sys.argv:
        print("%d %d %d" % (nreq, nresp, ninterim))
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
