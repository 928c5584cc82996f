#!/usr/bin/env python3
"""Cross-check a gen_capture.py pcap against its --manifest using tshark.

  python3 bench/verify_capture.py FILE.pcap MANIFEST.jsonl

tshark dissects FILE (TCP reassembly + HTTP, chunked bodies de-chunked); every
request and response it finds is matched by its X-Request-Id against the
manifest: client address, method, URI, request body length, status, response
body length (after de-chunking), and that every response body is valid JSON.
Also checks IPv4 header checksums and that tshark flags no TCP anomalies.
Exits non-zero on any mismatch. Meant for small/medium files (tshark output is
held in memory).
"""

import json
import subprocess
import sys


def tshark(args):
    return subprocess.run(["tshark"] + args, check=True, capture_output=True,
                          text=True, encoding="ascii", errors="replace").stdout


def header(lines, name):
    name = name.lower() + ":"
    for h in lines.split("|"):
        if h.lower().startswith(name):
            v = h[len(name):].strip()
            return v[:-4] if v.endswith("\\r\\n") else v
    return None


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    pcap, manifest_path = sys.argv[1], sys.argv[2]
    manifest = {}
    with open(manifest_path) as f:
        for line in f:
            m = json.loads(line)
            manifest[m["request_id"]] = m
    errors = []

    def err(msg):
        if len(errors) < 20:
            print("MISMATCH:", msg, file=sys.stderr)
        errors.append(msg)

    out = tshark(["-r", pcap, "-Y", "http", "-T", "fields", "-E", "separator=/t",
                  "-E", "aggregator=|", "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst",
                  "-e", "tcp.dstport", "-e", "http.request.method", "-e", "http.request.uri",
                  "-e", "http.response.code", "-e", "http.request.line",
                  "-e", "http.response.line", "-e", "http.file_data"])
    seen_req, seen_resp = set(), set()
    for row in out.split("\n"):
        if not row:
            continue
        f = row.split("\t")
        f += [""] * (10 - len(f))
        src, sport, dst, dport, method, uri, code, reql, respl, data = f[:10]
        if method:
            rid = header(reql, "X-Request-Id")
            m = manifest.get(rid)
            if m is None:
                err("request with unknown id %r" % rid)
                continue
            if rid in seen_req:
                err("request %s seen twice" % rid)
            seen_req.add(rid)
            if m["client"] != "%s:%s" % (src, sport):
                err("%s client %s:%s != %s" % (rid, src, sport, m["client"]))
            if method != m["method"] or uri != m["uri"]:
                err("%s %s %s != %s %s" % (rid, method, uri, m["method"], m["uri"]))
            if len(data) != m["req_body_len"]:
                err("%s request body %d != %d" % (rid, len(data), m["req_body_len"]))
        elif code:
            rid = header(respl, "X-Request-Id")
            m = manifest.get(rid)
            if m is None:
                err("response with unknown id %r" % rid)
                continue
            if rid in seen_resp:
                err("response %s seen twice" % rid)
            seen_resp.add(rid)
            if m["client"] != "%s:%s" % (dst, dport):
                err("%s response to %s:%s != %s" % (rid, dst, dport, m["client"]))
            if int(code) != m["status"]:
                err("%s status %s != %d" % (rid, code, m["status"]))
            if len(data) != m["resp_body_len"]:
                err("%s response body %d != %d" % (rid, len(data), m["resp_body_len"]))
            chunked = (header(respl, "Transfer-Encoding") or "").lower() == "chunked"
            if chunked != m["chunked"]:
                err("%s chunked %s != %s" % (rid, chunked, m["chunked"]))
            if data:
                try:
                    json.loads(data)
                except ValueError as e:
                    err("%s body is not JSON: %s" % (rid, e))
    # Known tshark (4.0) limitation: a chunked message whose last TCP segment is
    # the single final "\n" of the "0\r\n\r\n" terminator is reported as a
    # malformed packet and the response is lost. The capture is correct there.
    tshark_quirk = 0
    for rid, m in manifest.items():
        if rid not in seen_req:
            err("request %s not found by tshark" % rid)
        if rid not in seen_resp:
            if m["chunked"] and m.get("resp_wire_len", 0) % 1448 == 1:
                tshark_quirk += 1
            else:
                err("response %s not found by tshark" % rid)

    bad = tshark(["-r", pcap, "-o", "ip.check_checksum:TRUE", "-Y",
                  "ip.checksum.status==0 || (tcp.analysis.flags && !tcp.analysis.window_update)"
                  " || _ws.expert.severity >= \"Warning\" || _ws.malformed",
                  "-T", "fields", "-e", "frame.number"]).split()
    if len(bad) > tshark_quirk:
        err("%d frames with bad IP checksum / TCP analysis warnings / malformed, "
            "first frames: %s" % (len(bad), " ".join(bad[:10])))

    print("verify_capture: %d manifest exchanges, tshark found %d requests and %d responses; "
          "%d mismatches (%d responses lost to the known tshark split-CRLF quirk)"
          % (len(manifest), len(seen_req), len(seen_resp), len(errors), tshark_quirk),
          file=sys.stderr)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
