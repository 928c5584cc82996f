#!/usr/bin/env python3
"""Paced HTTP/1.1 client of bench/live.sh and bench/ebpf.sh (wrk2 is not
packaged here): GET /x.json at a fixed rate over keep-alive connections.

    paced_client.py PORT RATE SECONDS CONNS [--tls] [--user-agent UA]

Open-loop pacing: request i is due at t0 + i/rate; connection k sends the
requests i = k, k+N, ... (late ones go at once, none is skipped). --tls
speaks HTTPS (certificate not checked: the benches use a self-signed one).
Prints one line: sent, ok (200), bad, wall seconds, achieved rate, late
sends and their p99 and max in ms.
"""
import asyncio
import ssl
import sys
import time


def parse_args(argv):
    args = [a for a in argv if not a.startswith("--")]
    port, rate, secs, conns = (int(a) for a in args[:4])
    ua = "shadowtap-bench/1"
    if "--user-agent" in argv:
        ua = argv[argv.index("--user-agent") + 1]
    return port, rate, secs, conns, "--tls" in argv, ua


def client_tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def run(port, rate, secs, conns, tls, ua):
    total = rate * secs
    req = (f"GET /x.json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {ua}\r\n"
           "Accept: application/json\r\n\r\n").encode()
    counts = {"sent": 0, "ok": 0, "bad": 0}
    late = []
    ctx = client_tls() if tls else None

    async def worker(k, t0, r, w):
        loop = asyncio.get_running_loop()
        for i in range(k, total, conns):
            delay = t0 + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                late.append(-delay)
            w.write(req)
            counts["sent"] += 1
            head = await r.readuntil(b"\r\n\r\n")
            n = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    n = int(line[15:])
            if n:
                await r.readexactly(n)
            counts["ok" if head[9:12] == b"200" else "bad"] += 1
        w.close()
        await w.wait_closed()

    # Connect (and shake hands) before the clock starts, so TLS handshakes
    # do not make the first requests late.
    streams = [await asyncio.open_connection("127.0.0.1", port, ssl=ctx) for _ in range(conns)]
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.2
    start = time.monotonic() + 0.2
    await asyncio.gather(*(worker(k, t0, r, w) for k, (r, w) in enumerate(streams)))
    wall = time.monotonic() - start
    late.sort()
    p99 = late[int(len(late) * 0.99)] if late else 0.0
    print(f"sent {counts['sent']} ok {counts['ok']} bad {counts['bad']} wall {wall:.3f} "
          f"rate {counts['ok'] / wall:.0f} late {len(late)} late_p99_ms {p99 * 1000:.1f} "
          f"late_max_ms {(late[-1] if late else 0) * 1000:.1f}")


if __name__ == "__main__":
    asyncio.run(run(*parse_args(sys.argv[1:])))
