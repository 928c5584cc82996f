#!/usr/bin/env python3
"""The table of bench/ebpf.sh, from its "key value" results file.

    ebpf_table.py RESULTS RATE STEADY CONNS STRICT(0|1)

Exit 1 when STRICT is 1 and a target of issue 11 is missed.
"""
import statistics
import sys

res, rate, steady, conns, strict = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
r = {}
for line in open(res):
    k, _, v = line.rstrip("\n").partition(" ")
    r[k] = v


def num(k, default=0.0):
    try:
        return float(r.get(k, ""))
    except ValueError:
        return default


tck, ncpu, rounds = num("clk_tck"), int(num("ncpu")), int(num("rounds", 1))


def sfx(k):
    return "" if k == 1 else f".{k}"


def pct(p, what):  # % of one core over the phase's wall time
    w = num(f"{p}_wall")
    return num(f"{p}_cpu_{what}") / tck / w * 100 if w else 0.0


def ours(p):
    return sum(pct(p, w) for w in ("wrk", "nginx_a", "nginx_b", "extra"))


def other(p):
    return max(pct(p, "machine") - ours(p), 0.0)


def eff(p):  # requests per CPU-second of wrk + nginx A + nginx B + shadowtap + softirq
    cpu = sum(num(f"{p}_cpu_{w}") for w in ("wrk", "nginx_a", "nginx_b", "extra", "softirq")) / tck
    return num(f"{p}_requests") / cpu if cpu else 0.0


def drops(p):  # what the capture lost: kernel drops (pcap), ring buffer drops and cut chunks (eBPF)
    if r.get(f"{p}_source") == "ebpf":
        return int(num(f"{p}_ebpf_ring_buffer_drops") + num(f"{p}_ebpf_chunks_cut") + num(f"{p}_shard_batch_drops"))
    return int(num(f"{p}_kernel_drops") + num(f"{p}_interface_drops") + num(f"{p}_shard_batch_drops"))


def outcomes_by(p, name):
    for kv in r.get(f"{p}_outcomes_by", "").split(","):
        if kv.startswith(name + "="):
            return int(kv.split("=")[1])
    return 0


names = {"h0": "H0 HTTP, bare", "h1": "H1 HTTP, pcap tap", "h2": "H2 HTTP, eBPF tap",
         "s0": "S0 HTTPS, bare", "s2": "S2 HTTPS, eBPF tap",
         "c1": "C1 HTTP, pcap, sample 100", "c2": "C2 HTTP, eBPF, sample 100", "c3": "C3 HTTPS, eBPF, sample 100",
         "p2": "P2 HTTP paced, eBPF", "p3": "P3 HTTPS paced, eBPF"}
base_of = {"h": "h0", "s": "s0", "c1": "h0", "c2": "h0", "c3": "s0"}

print()
print(f"shadowtap eBPF bench: {ncpu} cores, kernel {r['kernel']}, nginx A worker_processes {r['workers']}, "
      f"nginx B 1, x.json {r['body_bytes']} bytes, wrk -t2 -c50 -d{r['duration']}s, ports {r['ports']}")
print(f"load average (1, 5, 15 min): start {r['load_start']}, end {r['load_end']} "
      f"(other sessions share this machine: see the other column)")
print()
hdr = (f"{'phase':<28} {'req/s':>8} {'x bare':>6} {'requests':>9} {'req/CPU-s':>9} {'norm.':>6}  "
       f"{'CPU % of one core: wrk|client, nginx A, nginx B, shadowtap, softirq, other, idle':<64} {'load 1/5/15'}")
print(hdr)
print("-" * len(hdr))


def phase_row(p, label, base):
    rps, reqs = num(f"{p}_rps"), num(f"{p}_requests")
    paced = p.startswith("p")
    ratio = f"{rps / num(base + '_rps'):.3f}" if base and num(base + "_rps") and not paced else ""
    norm = f"{eff(p) / eff(base):.3f}" if base and eff(base) and not paced else ""
    tap = "-" if p[:2] in ("h0", "s0") else f"{pct(p, 'extra'):.0f}"
    cpus = (f"{pct(p, 'wrk'):.0f}, {pct(p, 'nginx_a'):.0f}, {pct(p, 'nginx_b'):.0f}, {tap}, "
            f"{pct(p, 'softirq'):.0f}, {other(p):.0f}, {pct(p, 'idle'):.0f}")
    effs = "" if paced else f"{eff(p):.0f}"
    print(f"{label:<28} {rps:>8.0f} {ratio:>6} {int(reqs):>9} {effs:>9} {norm:>6}  {cpus:<64} {r.get(p + '_load', '')}")
    if f"{p}_wrk_errors" in r:
        print(f"{'':<28} wrk errors: {r[p + '_wrk_errors'].replace('_', ' ')}")


for k in range(1, rounds + 1):
    for p in ("h0", "h1", "h2", "s0", "s2"):
        base = None if p.endswith("0") else p[0] + "0" + sfx(k)
        phase_row(p + sfx(k), names[p] + (f" #{k}" if rounds > 1 else ""), base)
for p in ("c1", "c2", "c3"):
    phase_row(p, names[p], base_of[p])
for p in ("p2", "p3"):
    phase_row(p, names[p], None)
print("  x bare and norm.: against the bare phase of the same round and protocol (C1-C3: round 1);")
print("  norm. = ratio of req/CPU-s (requests per CPU-second of wrk, nginx A and B, shadowtap and softirq);")
print("  the eBPF program runs in nginx's own system calls: its cost is in nginx A's CPU, not shadowtap's;")
print("  other = busy CPU minus the bench's processes: other sessions' work")
print()
cols = [p + sfx(1) for p in ("h1", "h2", "s2")] + ["c1", "c2", "c3", "p2", "p3"]
labels = {"h1": "H1 pcap", "h2": "H2 eBPF", "s2": "S2 eBPF tls", "c1": "C1 pcap", "c2": "C2 eBPF",
          "c3": "C3 eBPF tls", "p2": "P2 eBPF", "p3": "P3 eBPF tls"}
print(f"{'shadowtap (round 1)':<28}" + "".join(f"{labels[c]:>12}" for c in cols))


def row(label, f):
    print(f"{label:<28}" + "".join(f"{f(p):>12}" for p in cols))


row("CPU, % of one core", lambda p: f"{pct(p, 'extra'):.1f}")
row("reader wake-ups / request", lambda p: f"{num(p + '_reader_switches') / num(p + '_requests'):.2f}"
    if num(p + "_requests") else "-")
row("VmHWM, MiB", lambda p: f"{num(p + '_vmhwm_kib') / 1024:.1f}")
row("packets | eBPF events", lambda p: f"{int(num(p + '_ebpf_events') or num(p + '_packets_captured'))}")
row("capture drops", lambda p: f"{drops(p)}")
row("  kernel (pcap)", lambda p: f"{int(num(p + '_kernel_drops'))}" if r.get(p + "_source") == "pcap" else "-")
row("  ring buffer (eBPF)", lambda p: f"{int(num(p + '_ebpf_ring_buffer_drops'))}" if r.get(p + "_source") == "ebpf" else "-")
row("  chunks cut (eBPF)", lambda p: f"{int(num(p + '_ebpf_chunks_cut'))}" if r.get(p + "_source") == "ebpf" else "-")
row("  bytes skipped (eBPF)", lambda p: f"{int(num(p + '_ebpf_skipped_bytes'))}" if r.get(p + "_source") == "ebpf" else "-")
row("TLS not decrypted", lambda p: f"{int(num(p + '_ebpf_tls_not_decrypted'))}" if r.get(p + "_source") == "ebpf" else "-")
row("requests (nginx A count)", lambda p: f"{int(num(p + '_nginx_requests'))}" if p + "_nginx_requests" in r else "-")
row("requests (wrk | client)", lambda p: f"{int(num(p + '_requests'))}")
row("exchanges rebuilt", lambda p: f"{int(num(p + '_exchanges'))}")
row("replay queue drops", lambda p: f"{int(num(p + '_replay_queue_drops'))}")
row("outcomes", lambda p: f"{int(num(p + '_outcomes'))}")
row("  match", lambda p: f"{outcomes_by(p, 'match')}")
row("exit code after SIGTERM", lambda p: r.get(p + "_exit", "?"))
for p in cols:
    other_outcomes = {kv for kv in r.get(p + "_outcomes_by", "").split(",") if kv and not kv.startswith("match=")}
    if other_outcomes:
        print(f"outcomes {labels[p]} other than match: {', '.join(sorted(other_outcomes))}")
print()


def completeness(p):
    n = num(p + "_nginx_requests")
    return num(p + "_exchanges") / n * 100 if n else 0.0


for p in ("c1", "c2", "c3"):
    ex, n, w = num(p + "_exchanges"), num(p + "_nginx_requests"), num(p + "_requests")
    print(f"completeness {names[p]}: {int(ex)} exchanges / {int(n)} requests nginx A answered = "
          f"{completeness(p):.3f} % (wrk counted {int(w)}: {ex / w * 100 if w else 0:.3f} %); "
          f"{int(num(p + '_replay_queue_drops'))} not replayed (queue drops, expected at full speed)")
for p in ("p2", "p3"):
    print(f"steady {names[p]}: target {rate}/s x {steady} s over {conns} connections; sent {int(num(p + '_sent'))} "
          f"({int(num(p + '_ok'))} answered 200, nginx A counted {int(num(p + '_nginx_requests'))}) in "
          f"{num(p + '_client_wall'):.2f} s = {num(p + '_rps'):.0f}/s; late sends {int(num(p + '_late'))} "
          f"(p99 {num(p + '_late_p99_ms'):.1f} ms); exchanges {int(num(p + '_exchanges'))}, outcomes "
          f"{int(num(p + '_outcomes'))} (match {outcomes_by(p, 'match')}), capture drops {drops(p)}, "
          f"queue drops {int(num(p + '_replay_queue_drops'))}")
print()
ks = range(1, rounds + 1)


def med_ratio(p, base, f):
    xs = [f(p + sfx(k)) / f(base + sfx(k)) for k in ks if f(base + sfx(k))]
    return statistics.median(xs) if xs else 0.0


def rps(p):
    return num(p + "_rps")


tag = f"median of {rounds}, " if rounds > 1 else ""
h1, h2, s2 = med_ratio("h1", "h0", rps), med_ratio("h2", "h0", rps), med_ratio("s2", "s0", rps)
n1, n2, ns2 = med_ratio("h1", "h0", eff), med_ratio("h2", "h0", eff), med_ratio("s2", "s0", eff)
rate_drops = sum(drops(p + sfx(k)) for p in ("h1", "h2", "s2") for k in ks)


def steady_ok(p):
    sent = num(p + "_sent")
    return (sent > 0 and num(p + "_exchanges") >= sent and outcomes_by(p, "match") >= sent
            and drops(p) == 0 and num(p + "_replay_queue_drops") == 0)


checks = [
    (f"H2/H0 eBPF = {h2:.3f} ({tag}normalised {n2:.3f})", ">= 0.9", h2 >= 0.9),
    (f"H1/H0 pcap = {h1:.3f} ({tag}normalised {n1:.3f})", "below eBPF", h2 > h1),
    (f"S2/S0 eBPF over HTTPS = {s2:.3f} ({tag}normalised {ns2:.3f})", ">= 0.9", s2 >= 0.9),
    (f"capture drops in the rate phases = {rate_drops}", "0", rate_drops == 0),
    (f"completeness C1 / C2 / C3 = {completeness('c1'):.3f} / {completeness('c2'):.3f} / "
     f"{completeness('c3'):.3f} %", ">= 99.9 %", min(completeness(p) for p in ("c1", "c2", "c3")) >= 99.9),
    (f"steady HTTP: {int(num('p2_outcomes'))} / {int(num('p2_sent'))} matched, drops "
     f"{drops('p2') + int(num('p2_replay_queue_drops'))}", "100 %, 0 drops", steady_ok("p2")),
    (f"steady HTTPS: {int(num('p3_outcomes'))} / {int(num('p3_sent'))} matched, drops "
     f"{drops('p3') + int(num('p3_replay_queue_drops'))}", "100 %, 0 drops", steady_ok("p3")),
    (f"steady client rate = {num('p2_rps'):.0f} / {num('p3_rps'):.0f} per s", f"~{rate}/s (>= 97 %)",
     min(num("p2_rps"), num("p3_rps")) >= 0.97 * rate),
]
missed = 0
print(f"{'figure':<66} {'target':<16} result")
for what, target, ok in checks:
    missed += not ok
    print(f"{what:<66} {target:<16} {'ok' if ok else 'MISSED'}")
print("\nlogs, metrics, outcomes and reports of this run: bench/work/ebpf-last/")
sys.exit(1 if strict and missed else 0)
