//! Hostile traffic against the live daemon: a SYN flood of half-open
//! connections from spoofed sources (raw sockets) and a slowloris (many
//! connections sending one header byte a second), with legitimate requests
//! mixed in. Two network namespaces joined by a veth pair: the legacy
//! service (python's http.server with a deep listen backlog), its twin as the candidate and
//! `shadowtap run --interface <veth>` in one, the attackers and the
//! legitimate client in the other. Checked while it lasts: tracked flows
//! stay under `[capture] max_flows`, RSS under a bound, refusals and kernel
//! drops are counted and reported; and every legitimate request is still
//! rebuilt and compared (a match each).
//!
//! Needs root (namespaces, raw sockets): without it the test says in one
//! line what it skipped, except under CI, where it must run.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "common/needs.rs"]
mod needs;
#[path = "common/netns.rs"]
mod netns;
#[path = "common/wait.rs"]
mod wait;
use netns::{Guard, Pair, in_netns};

const BIN: &str = env!("CARGO_BIN_EXE_shadowtap");
const FLOOD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/flood.py");
const DEADLINE: Duration = Duration::from_secs(25);

/// The bounds under test, as the config gives them to the daemon.
const MAX_FLOWS: u64 = 1000;
const CONFIG: &str = "[capture]\nmax_flows = 1000\nidle_timeout_s = 2\nmax_buffer_mb = 8\nmax_flow_buffer_kb = 64\n\
                      buffer_mb = 16\nmax_waiting_mb = 8\nmax_reading_mb = 2\n";
/// Peak RSS allowed: the kernel ring (16 MiB, mapped into the process),
/// the reassembly buffers (8 MiB), waiting requests (8 MiB) and messages
/// still arriving (2 MiB) at their bounds, on top of what the idle daemon
/// takes; and margin.
const RSS_MARGIN_MB: u64 = 16 + 8 + 8 + 2 + 30;

fn wait_for<T>(what: &str, check: impl FnMut() -> Result<T, String>) -> T {
    wait::wait_for_within(DEADLINE, what, check)
}

/// One GET on its own connection; (status, body).
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let bad = || std::io::Error::other(format!("not an HTTP response: {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    Ok((status, body.to_string()))
}

/// The daemon's /metrics, reached from inside its namespace: metric name
/// (labels summed) to value.
fn scrape(ns: &str, metrics: SocketAddr) -> BTreeMap<String, f64> {
    let body = match in_netns(ns, move || http_get(metrics, "/metrics")) {
        Ok((200, body)) => body,
        other => panic!("GET /metrics: {other:?}"),
    };
    let mut values = BTreeMap::new();
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let name = series.split('{').next().unwrap_or(series).to_string();
        *values.entry(name).or_default() += value.parse::<f64>().unwrap_or_else(|_| panic!("bad sample {line:?}"));
    }
    values
}

fn metric(values: &BTreeMap<String, f64>, name: &str) -> u64 {
    *values.get(name).unwrap_or_else(|| panic!("no {name} in /metrics: {values:?}")) as u64
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The complete JSON lines of an outcome file so far.
fn outcomes(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("bad outcome line {line:?}: {e}")))
        .collect()
}

/// python3 tests/common/flood.py ARGS in namespace `ns`, its output piped.
fn attacker(ns: &str, args: &[&str]) -> Guard {
    let mut command = Pair::exec(ns, "python3");
    command.arg(FLOOD).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    Guard(command.spawn().expect("python3"))
}

/// What an attacker printed (one JSON line) once it finished.
fn attacker_result(mut guard: Guard, what: &str) -> Value {
    let status = wait::wait_exit_within(DEADLINE, &mut guard.0, what);
    let (mut out, mut err) = (String::new(), String::new());
    guard.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    guard.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{what}: {status}\n{err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{what} printed {out:?}: {e}\n{err}"))
}

/// Highest figures seen while sampling the daemon.
#[derive(Debug, Default)]
struct Peaks {
    active_flows: u64,
    rss_mb: u64,
    samples: usize,
}

#[test]
fn a_syn_flood_and_a_slowloris_stay_bounded_and_legitimate_requests_are_still_compared() {
    let name = "flood::a_syn_flood_and_a_slowloris_stay_bounded_and_legitimate_requests_are_still_compared";
    let Some(()) = needs::met(name, needs::network_namespaces()) else {
        return;
    };
    let mut pair = Pair::new("stfl", 233);
    let spoofed = "10.234.0.0/16";
    pair.route_to_client(spoofed);
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    for k in 0..5 {
        std::fs::write(www.join(format!("item{k}.json")), format!("{{\"item\":{k},\"tags\":[\"a\",\"b\"]}}\n"))
            .unwrap();
    }
    let (legacy_port, candidate_port, metrics_port) = (8080u16, 8081u16, 9090u16);
    for (bind, port) in [(pair.server_ip.to_string(), legacy_port), ("127.0.0.1".to_string(), candidate_port)] {
        let mut command = Pair::exec(&pair.server, "python3");
        command.args([FLOOD, "serve", "--port", &port.to_string(), "--bind", &bind, "--directory"]).arg(&www);
        command.stdout(Stdio::null()).stderr(Stdio::null());
        pair.children.push(Guard(command.spawn().expect("python3")));
    }
    let legacy = SocketAddr::from((pair.server_ip, legacy_port));
    let candidate = SocketAddr::from(([127, 0, 0, 1], candidate_port));
    let metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    wait_for("the http.servers", || {
        in_netns(&pair.server, move || {
            for addr in [legacy, candidate] {
                TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| format!("{addr}: {e}"))?;
            }
            Ok(())
        })
    });

    let out = dir.path().join("out.jsonl");
    let config = dir.path().join("shadowtap.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let stderr = dir.path().join("daemon.stderr");
    let mut command = Pair::exec(&pair.server, BIN);
    command.args(["run", "--config"]).arg(&config).args(["--interface", &pair.server_dev, "--port"]);
    command.arg(legacy_port.to_string()).args(["--candidate", &format!("http://{candidate}"), "--out"]).arg(&out);
    command.args(["--metrics", &metrics.to_string()]).env("SHADOWTAP_LOG", "info");
    command.stdout(Stdio::null()).stderr(std::fs::File::create(&stderr).unwrap());
    let mut daemon = Guard(command.spawn().expect("shadowtap"));
    // `ip netns exec` execs the program: the child is the daemon itself.
    let pid = daemon.0.id();
    let log = || std::fs::read_to_string(&stderr).unwrap_or_default();
    let server_ns = pair.server.clone();
    wait_for("the daemon's /healthz", || {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            panic!("the daemon exited ({status}):\n{}", log());
        }
        let ns = server_ns.clone();
        match in_netns(&ns, move || http_get(metrics, "/healthz")) {
            Ok((200, body)) if body.trim() == "ok" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss_mb = status_kb(pid, "VmRSS:") / 1024;

    // The slowloris first, so its connections hold flows when the flood
    // comes; they send 60 KB of their heads at once (300 x 60 KB is 18 MB
    // held without the `max_reading_mb` bound), then a byte a second.
    let slow_conns = 300;
    let (dst, port) = (pair.server_ip.to_string(), legacy_port.to_string());
    let slow_args = ["slowloris", "--dst", &dst, "--port", &port, "--conns", &slow_conns.to_string()];
    let slowloris = attacker(&pair.client, &[&slow_args[..], &["--duration", "9", "--fat", "60000"]].concat());
    wait_for("the slowloris connections to be tracked", || {
        let flows = metric(&scrape(&server_ns, metrics), "shadowtap_active_flows");
        if flows >= slow_conns * 9 / 10 { Ok(()) } else { Err(format!("{flows} active flows")) }
    });
    let syn_args = ["syn", "--dst", &dst, "--port", &port, "--src-net", spoofed, "--rate", "5000", "--duration", "5"];
    let flood = attacker(&pair.client, &syn_args);

    // Legitimate requests throughout the flood, each on its own connection.
    let requests = 30;
    let client = pair.client.clone();
    let legitimate = std::thread::spawn(move || {
        in_netns(&client, move || {
            (0..requests)
                .map(|i| {
                    std::thread::sleep(Duration::from_millis(120));
                    let path = format!("/item{}.json?legit={i}", i % 5);
                    (path.clone(), http_get(legacy, &path).map(|r| r.0).map_err(|e| e.to_string()))
                })
                .collect::<Vec<_>>()
        })
    });
    let mut peaks = Peaks::default();
    let started = Instant::now();
    while !legitimate.is_finished() || started.elapsed() < Duration::from_secs(5) {
        let values = scrape(&server_ns, metrics);
        peaks.active_flows = peaks.active_flows.max(metric(&values, "shadowtap_active_flows"));
        peaks.rss_mb = peaks.rss_mb.max(status_kb(pid, "VmRSS:") / 1024);
        peaks.samples += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let sent = legitimate.join().unwrap();
    let flood = attacker_result(flood, "the SYN flood");
    let slowloris = attacker_result(slowloris, "the slowloris");
    let values = scrape(&server_ns, metrics);
    let peak_mb = status_kb(pid, "VmHWM:") / 1024;
    eprintln!("flood: {flood}\nslowloris: {slowloris}\npeaks: {peaks:?}, idle RSS {idle_rss_mb} MB, peak {peak_mb} MB");
    let names = ["packets_captured", "kernel_drops", "flows_refused", "reassembly_dropped_bytes"];
    for name in names.map(|n| format!("shadowtap_{n}_total")) {
        eprintln!("{name} {}", metric(&values, &name));
    }

    // The attack happened as meant.
    assert!(flood["syn_sent"].as_u64().unwrap() >= 10_000, "{flood}");
    assert!(slowloris["slowloris_connections"].as_u64().unwrap() >= slow_conns * 9 / 10, "{slowloris}");
    assert!(sent.iter().all(|(_, status)| status == &Ok(200)), "the service answered: {sent:?}");
    // Bounded, and what the bounds turned away is counted.
    assert!(peaks.samples >= 10, "sampled the daemon {} times", peaks.samples);
    assert!(peaks.active_flows <= MAX_FLOWS, "{} flows tracked with max_flows = {MAX_FLOWS}", peaks.active_flows);
    assert!(peaks.active_flows >= MAX_FLOWS / 2, "the flood filled the table: {peaks:?}");
    assert!(peak_mb <= idle_rss_mb + RSS_MARGIN_MB, "peak RSS {peak_mb} MB, idle {idle_rss_mb} MB");
    let refused = metric(&values, "shadowtap_flows_refused_total");
    assert!(refused >= 10_000 - MAX_FLOWS, "{refused} connections refused of a flood of {flood}");
    assert!(values.contains_key("shadowtap_kernel_drops_total"), "kernel drops are reported");
    let cut = metric(&values, "shadowtap_reassembly_dropped_bytes_total");
    assert!(cut >= 10 << 20, "heads held past max_reading_mb are cut and counted: {cut} bytes");
    assert!(metric(&values, "shadowtap_packets_captured_total") >= 10_000, "the flood was captured");

    // Every legitimate request rebuilt and compared.
    let lines = wait_for("an outcome for every legitimate request", || {
        let lines = outcomes(&out);
        let legit: Vec<Value> =
            lines.into_iter().filter(|l| l["uri"].as_str().is_some_and(|u| u.contains("legit="))).collect();
        if legit.len() >= requests { Ok(legit) } else { Err(format!("{} of {requests}\n{}", legit.len(), log())) }
    });
    let mut uris: Vec<&str> = lines.iter().map(|l| l["uri"].as_str().unwrap()).collect();
    uris.sort();
    let mut expected: Vec<&str> = sent.iter().map(|(path, _)| path.as_str()).collect();
    expected.sort();
    assert_eq!(uris, expected, "one outcome per legitimate request");
    for line in &lines {
        assert_eq!(line["outcome"], "match", "{line}");
    }
    // SIGTERM: a clean exit.
    // SAFETY: kill(2) on our child, not reaped yet.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) }, 0);
    let status = wait::wait_exit_within(DEADLINE, &mut daemon.0, "the daemon after SIGTERM");
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", log());
}
