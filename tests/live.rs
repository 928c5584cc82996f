//! The live daemon (`shadowtap run`) with real capture: the binary runs as a
//! child process capturing on `lo` (or on a veth pair between two network
//! namespaces), the legacy and candidate services run here (the demo's
//! hyper services, a slow std::net one, python's http.server in a
//! namespace), and what the daemon says (outcome file, metrics, logs, exit
//! status) is checked. They need root or CAP_NET_RAW (namespaces: root):
//! without it each says in one line what it skipped and why, except under
//! CI (`CI=true`, run as root), where they must run and a capture that
//! cannot start is a failure.
//!
//! Every test uses its own ports (bound to 0 and read back) and waits by
//! polling with a deadline; child processes and namespaces are removed by
//! Drop guards, also when an assertion fails.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use shadowtap::demo::{Flavor, send_traffic};

#[path = "common/demo_service.rs"]
mod demo_service;
#[path = "common/items.rs"]
mod items;
#[path = "common/needs.rs"]
mod needs;
#[path = "common/wait.rs"]
mod wait;
use demo_service::service;

const BIN: &str = env!("CARGO_BIN_EXE_shadowtap");
/// Generous: the tests run in parallel on a small, busy machine.
const DEADLINE: Duration = Duration::from_secs(20);

// ---- helpers ------------------------------------------------------------

/// The demo's request mix, `n` requests over a few keep-alive connections.
fn demo_traffic(target: SocketAddr, n: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(send_traffic(target, n));
}

/// A port nobody listens on right now (for the metrics listener, or a
/// candidate that is down).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One GET on its own connection; (status, body).
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
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

fn wait_for<T>(what: &str, check: impl FnMut() -> Result<T, String>) -> T {
    wait::wait_for_within(DEADLINE, what, check)
}

/// The complete lines of an outcome file (a line still being written is
/// left out); each must be JSON.
fn outcomes(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{}: bad line {line:?}: {e}", path.display())))
        .collect()
}

/// After the daemon exited: the file ends with a newline and every line is
/// a complete JSON outcome.
fn final_outcomes(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.is_empty() || text.ends_with('\n'), "{}: last line incomplete: {text:?}", path.display());
    text.lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("incomplete line {line:?}: {e}"));
            assert!(value["outcome"].is_string(), "not an outcome: {line}");
            value
        })
        .collect()
}

fn count_by_outcome(lines: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in lines {
        *counts.entry(line["outcome"].as_str().unwrap_or("?").to_string()).or_default() += 1;
    }
    counts
}

fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a child of ours that has not been reaped yet.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}): {}", std::io::Error::last_os_error());
}

fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    wait::wait_exit_within(DEADLINE, child, what)
}

/// A child process killed when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs `f` on a thread that has entered the network namespace `ns`
/// (`ip netns add` name): its sockets live there.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::os::fd::AsRawFd;
    let path = format!("/run/netns/{ns}");
    let thread = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: a valid namespace descriptor; only this thread moves.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    });
    thread.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// A Prometheus scrape.
struct Scrape(String);

impl Scrape {
    /// Sum of the samples of `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let mut found = false;
        let mut total = 0.0;
        for line in self.0.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else { continue };
            let (metric, label_text) = series.split_once('{').unwrap_or((series, ""));
            if metric != name || !labels.iter().all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\""))) {
                continue;
            }
            found = true;
            total += value.parse::<f64>().unwrap_or_else(|_| panic!("bad sample {line:?}"));
        }
        assert!(found || !labels.is_empty(), "no metric {name} in the scrape:\n{}", self.0);
        total as u64
    }

    fn get(&self, name: &str) -> u64 {
        self.sum(name, &[])
    }
}

/// The daemon under test.
struct Daemon {
    child: Child,
    metrics: SocketAddr,
    stderr: PathBuf,
    /// Network namespace the daemon (and so its metrics listener) lives in.
    netns: Option<String>,
}

impl Daemon {
    /// `shadowtap run` on `lo` for the legacy service's port, replaying to
    /// `candidate` (else the config's), outcomes to `out`, metrics on
    /// `metrics`, plus `extra`.
    fn on_lo(
        dir: &Path,
        config: &Path,
        legacy: SocketAddr,
        candidate: Option<&str>,
        out: &Path,
        metrics: SocketAddr,
        extra: &[&str],
    ) -> Daemon {
        let (port, metrics_text) = (legacy.port().to_string(), metrics.to_string());
        let mut args = vec!["--config", s(config), "--interface", "lo", "--port", &port];
        if let Some(candidate) = candidate {
            args.extend(["--candidate", candidate]);
        }
        args.extend(["--out", s(out), "--metrics", &metrics_text]);
        args.extend_from_slice(extra);
        Daemon::start(dir, &args, metrics)
    }

    /// Starts `shadowtap run ARGS` and returns once /healthz answers and the
    /// capture had time to become active.
    fn start(dir: &Path, args: &[&str], metrics: SocketAddr) -> Daemon {
        let mut command = Command::new(BIN);
        command.arg("run").args(args);
        Daemon::start_command(dir, command, metrics, None)
    }

    fn start_command(dir: &Path, mut command: Command, metrics: SocketAddr, netns: Option<String>) -> Daemon {
        let stderr = dir.join("daemon.stderr");
        let file = std::fs::File::create(&stderr).unwrap();
        command.env("SHADOWTAP_LOG", "info").stdin(Stdio::null()).stdout(Stdio::null()).stderr(file);
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let mut daemon = Daemon { child, metrics, stderr, netns };
        wait_for("the daemon's /healthz", || {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("the daemon exited ({status}) before being ready:\n{}", daemon.stderr_text());
            }
            match daemon.get("/healthz") {
                Ok((200, body)) if body.trim() == "ok" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
        // /healthz answers once the capture is open; give the reader a moment.
        std::thread::sleep(Duration::from_millis(300));
        daemon
    }

    fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        let (addr, path) = (self.metrics, path.to_string());
        match &self.netns {
            None => http_get(addr, &path),
            Some(ns) => in_netns(ns, move || http_get(addr, &path)),
        }
    }

    fn healthy(&self) -> bool {
        matches!(self.get("/healthz"), Ok((200, body)) if body.trim() == "ok")
    }

    fn scrape(&self) -> Scrape {
        match self.get("/metrics") {
            Ok((200, body)) => Scrape(body),
            other => panic!("GET /metrics: {other:?}\n{}", self.stderr_text()),
        }
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn signal(&self, sig: i32) {
        signal(self.child.id(), sig);
    }

    /// SIGTERM, then the exit status.
    fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        wait_exit(&mut self.child, "the daemon after SIGTERM")
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until the outcome file holds `n` complete lines.
fn wait_outcomes(path: &Path, n: usize, daemon: &Daemon) -> Vec<Value> {
    wait_for(&format!("{n} outcomes in {}", path.display()), || {
        let lines = outcomes(path);
        if lines.len() >= n {
            return Ok(lines);
        }
        let scrape = daemon.get("/metrics").map(|(_, body)| body).unwrap_or_default();
        let interesting: Vec<&str> = scrape
            .lines()
            .filter(|l| !l.starts_with('#') && !l.contains("latency_seconds") && !l.contains("bytes"))
            .collect();
        Err(format!("{} so far; metrics:\n{}\nstderr:\n{}", lines.len(), interesting.join("\n"), daemon.stderr_text()))
    })
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `(method, uri, outcome, difference paths)`: what must be equal between
/// a live and an offline replay of the same traffic.
type Key = (String, String, String, Vec<String>);

fn outcome_key(line: &Value) -> Key {
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut paths: Vec<String> =
        line["differences"].as_array().map(|d| d.iter().map(|d| text(&d["path"])).collect()).unwrap_or_default();
    paths.sort();
    (text(&line["method"]), text(&line["uri"]), text(&line["outcome"]), paths)
}

// ---- tests --------------------------------------------------------------

#[test]
fn live_outcomes_equal_an_offline_replay_of_the_same_packets() {
    let Some(()) = needs::met("live::live_outcomes_equal_an_offline_replay_of_the_same_packets", needs::live_capture())
    else {
        return;
    };
    let legacy = service(Flavor::Legacy);
    let candidate = service(Flavor::Candidate);
    let dir = tempfile::tempdir().unwrap();
    let (out, report, pcap, offline) = (
        dir.path().join("out.jsonl"),
        dir.path().join("report.json"),
        dir.path().join("live.pcap"),
        dir.path().join("offline.jsonl"),
    );
    let config = write_config(dir.path(), "shadowtap.toml", "");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let candidate_url = format!("http://{candidate}");
    let port = legacy.port().to_string();

    // tcpdump beside the daemon, on the same packets. Immediate mode gives
    // it a ring of fixed-size frames: a 2 MB default buffer holds only a few
    // dozen loopback-sized frames and drops under load, so 64 MB.
    let mut tcpdump = Guard(
        Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-U", "--immediate-mode", "-B", "65536", "-w", s(&pcap)])
            .arg(format!("tcp port {port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump (installed by .ci/run)"),
    );
    let (line_tx, line_rx) = std::sync::mpsc::channel::<String>();
    let tcpdump_stderr = tcpdump.0.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(tcpdump_stderr).lines().map_while(Result::ok) {
            let _ = line_tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let start = Instant::now();
    loop {
        let line = line_rx
            .recv_timeout(DEADLINE.saturating_sub(start.elapsed()))
            .unwrap_or_else(|e| panic!("tcpdump never said it was listening: {e}"));
        if line.contains("listening on") {
            break;
        }
    }

    let mut daemon = Daemon::start(
        dir.path(),
        &[
            "--config",
            s(&config),
            "--interface",
            "lo",
            "--port",
            &port,
            "--candidate",
            &candidate_url,
            "--out",
            s(&out),
            "--report",
            s(&report),
            "--metrics",
            &metrics.to_string(),
        ],
        metrics,
    );
    let requests = 200;
    demo_traffic(legacy, requests);
    wait_outcomes(&out, requests, &daemon);
    let status = daemon.stop();
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", daemon.stderr_text());
    signal(tcpdump.0.id(), libc::SIGINT);
    let tcpdump_status = wait_exit(&mut tcpdump.0, "tcpdump after SIGINT");
    let tcpdump_said = reader.join().unwrap();
    assert!(tcpdump_status.success(), "tcpdump: {tcpdump_status}\n{tcpdump_said}");
    assert!(
        tcpdump_said.lines().any(|l| l.trim() == "0 packets dropped by kernel"),
        "the reference capture is incomplete: {tcpdump_said}"
    );

    let live = final_outcomes(&out);
    assert_eq!(live.len(), requests, "one outcome per exchange, nothing more after the drain");
    let counts = count_by_outcome(&live);
    assert_eq!(counts.get("skipped"), Some(&(requests / 10)), "the POSTs: {counts:?}");
    assert!(counts.get("diff").is_some_and(|&n| n > 0), "the candidate's planted regressions: {counts:?}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["totals"]["count"], requests, "the report written at shutdown: {}", report["totals"]);

    let result = Command::new(BIN)
        .args(["replay", s(&pcap), "--candidate", &candidate_url, "--out", s(&offline)])
        .output()
        .unwrap();
    assert!(result.status.success(), "offline replay: {}", String::from_utf8_lossy(&result.stderr));
    let mut live_keys: Vec<_> = live.iter().map(outcome_key).collect();
    let mut offline_keys: Vec<_> = final_outcomes(&offline).iter().map(outcome_key).collect();
    live_keys.sort();
    offline_keys.sort();
    if live_keys != offline_keys {
        let multiset = |keys: &[Key]| {
            let mut counts: BTreeMap<Key, i64> = BTreeMap::new();
            for key in keys {
                *counts.entry(key.clone()).or_default() += 1;
            }
            counts
        };
        let (live_counts, offline_counts) = (multiset(&live_keys), multiset(&offline_keys));
        let surplus = |a: &BTreeMap<Key, i64>, b: &BTreeMap<Key, i64>| -> Vec<(Key, i64)> {
            a.iter()
                .map(|(k, n)| (k.clone(), n - b.get(k).copied().unwrap_or(0)))
                .filter(|(_, extra)| *extra > 0)
                .collect()
        };
        let (only_live, only_offline) =
            (surplus(&live_counts, &offline_counts), surplus(&offline_counts, &live_counts));
        panic!(
            "live ({}) and offline ({}) outcomes differ\nonly live: {only_live:#?}\nonly offline: {only_offline:#?}\ntcpdump: {tcpdump_said}",
            live_keys.len(),
            offline_keys.len()
        );
    }
}

#[test]
fn sighup_reloads_the_candidate_refuses_a_bad_config_and_reopens_the_out_file() {
    let Some(()) = needs::met(
        "live::sighup_reloads_the_candidate_refuses_a_bad_config_and_reopens_the_out_file",
        needs::live_capture(),
    ) else {
        return;
    };
    let legacy = service(Flavor::Legacy);
    let candidate = service(Flavor::Candidate);
    let twin = service(Flavor::Legacy);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let rotated = dir.path().join("out.jsonl.1");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    // The candidate comes from the file (a --candidate flag would win over it at reload too).
    let config = write_config(dir.path(), "shadowtap.toml", &format!("[candidate]\nurl = \"http://{candidate}\"\n"));
    let mut daemon = Daemon::on_lo(dir.path(), &config, legacy, None, &out, metrics, &[]);

    // Before: the candidate with regressions.
    let n = 100;
    demo_traffic(legacy, n);
    let before = wait_outcomes(&out, n, &daemon);
    let counts = count_by_outcome(&before);
    assert!(counts.get("diff").is_some_and(|&d| d >= 10), "diffs before the reload: {counts:?}");

    // logrotate-style: move the file away, then SIGHUP with a new candidate.
    std::fs::rename(&out, &rotated).unwrap();
    std::fs::write(&config, format!("[candidate]\nurl = \"http://{twin}\"\n")).unwrap();
    daemon.signal(libc::SIGHUP);
    wait_for("the reload to be logged", || {
        let text = daemon.stderr_text();
        if text.contains("configuration reloaded") { Ok(()) } else { Err(text) }
    });
    demo_traffic(legacy, n);
    let after = wait_outcomes(&out, n, &daemon);
    let counts = count_by_outcome(&after);
    assert_eq!(counts.get("match"), Some(&(n - n / 10)), "after the reload the twin matches every GET: {counts:?}");
    assert_eq!(counts.get("skipped"), Some(&(n / 10)), "{counts:?}");
    assert_eq!(after.len(), n, "{counts:?}");
    for endpoint in ["GET /api/users/{id}", "GET /api/orders/{id}", "GET /api/products"] {
        assert!(
            after.iter().any(|l| l["endpoint"] == endpoint),
            "{endpoint} (which had diffs) must be replayed after the reload"
        );
    }
    assert_eq!(outcomes(&rotated).len(), n, "the rotated file keeps only what came before the SIGHUP");

    // An invalid file is refused; the twin stays in force.
    std::fs::write(&config, format!("[candidate]\nurl = \"http://{candidate}\"\ntimeout_ms = \"x\"\n")).unwrap();
    daemon.signal(libc::SIGHUP);
    let refusal = wait_for("the refusal to be logged", || {
        let text = daemon.stderr_text();
        match text.lines().find(|l| l.contains("reload refused")) {
            Some(line) => Ok(line.to_string()),
            None => Err(text),
        }
    });
    assert!(refusal.contains(&format!("{}:3:", config.display())), "the refusal names file and line: {refusal}");
    assert!(daemon.healthy(), "still healthy after a refused reload");
    demo_traffic(legacy, n);
    let all = wait_outcomes(&out, 2 * n, &daemon);
    let counts = count_by_outcome(&all[n..]);
    assert_eq!(counts.get("match"), Some(&(n - n / 10)), "still the twin after the refused reload: {counts:?}");

    let status = daemon.stop();
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", daemon.stderr_text());
    assert_eq!(final_outcomes(&out).len(), 2 * n);
    assert_eq!(final_outcomes(&rotated).len(), n);
}

/// Writes replayed live: the daemon sends each create to the candidate's
/// sister store as it happens, so both stamp nearly the same time; the
/// candidate's clock is set a second ahead (as another host's may be,
/// within the tolerance) so that there is something to map. A clock an
/// hour off is a bug.
#[test]
fn live_writes_map_generated_ids_and_times_and_a_wrong_clock_is_a_diff() {
    let Some(()) =
        needs::met("live::live_writes_map_generated_ids_and_times_and_a_wrong_clock_is_a_diff", needs::live_capture())
    else {
        return;
    };
    use items::{CANDIDATE_FIRST_ID, LEGACY_FIRST_ID, Stamps};
    for (name, offset_s, want) in [("skewed", 1, "match"), ("hour-off", 3600, "diff")] {
        let legacy = items::Service::start(items::seeded(LEGACY_FIRST_ID, 1..=2), false);
        let stamps = Stamps { clock_offset_s: offset_s, ..Stamps::CANDIDATE };
        let candidate = items::Service::start_stamped(items::seeded(CANDIDATE_FIRST_ID, 1..=2), false, stamps);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = write_config(
            dir.path(),
            "shadowtap.toml",
            "[replay]\nallow_writes = [\"POST /items\"]\n[noise]\nwarmup_samples = 0\n\
             [compare]\nignore_paths = [\"/request_id\", \"/served_at\"]\n",
        );
        let mut daemon = Daemon::on_lo(dir.path(), &config, legacy.addr, Some(&candidate.url), &out, metrics, &[]);
        let mut client = items::Client::connect(legacy.addr);
        for k in 0..3u64 {
            let (status, _) =
                client.request("POST", "/items", Some(&serde_json::json!({"name": format!("n{k}"), "price": k})));
            assert_eq!(status, 201);
            // The write is replayed (and mapped) before the read of it.
            wait_outcomes(&out, 2 * k as usize + 1, &daemon);
            assert_eq!(client.get(&format!("/items/{}", LEGACY_FIRST_ID + k)).0, 200);
            wait_outcomes(&out, 2 * k as usize + 2, &daemon);
        }
        let lines = final_outcomes_after_stop(&mut daemon, &out);
        assert_eq!(lines.len(), 6, "{name}: {lines:?}");
        for line in &lines {
            assert_eq!(line["outcome"], want, "{name}: {line}");
            let explained: Vec<(&str, &str)> = line["explained"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["path"].as_str().unwrap(), e["by"].as_str().unwrap()))
                .collect();
            let id_by = if line["method"] == "POST" { "generated_id" } else { "id_mapping" };
            assert!(explained.contains(&("/id", id_by)), "{name}: {line}");
            let time_by = if line["method"] == "POST" { "generated_time" } else { "value_mapping" };
            let time_explained = explained.contains(&("/created_at", time_by));
            assert_eq!(time_explained, want == "match", "{name}: {line}");
        }
        assert_eq!(candidate.seen().iter().filter(|r| r.starts_with("GET /items/10000")).count(), 3, "{name}");
    }
}

/// Stops the daemon (SIGTERM) and reads every outcome it wrote.
fn final_outcomes_after_stop(daemon: &mut Daemon, out: &Path) -> Vec<Value> {
    let status = daemon.stop();
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", daemon.stderr_text());
    final_outcomes(out)
}

#[test]
fn a_candidate_that_is_down_gives_errors_and_the_daemon_stays_up() {
    let Some(()) =
        needs::met("live::a_candidate_that_is_down_gives_errors_and_the_daemon_stays_up", needs::live_capture())
    else {
        return;
    };
    let legacy = service(Flavor::Legacy);
    let closed = free_port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = write_config(dir.path(), "shadowtap.toml", "[candidate]\ntimeout_ms = 3000\n");
    let mut daemon =
        Daemon::on_lo(dir.path(), &config, legacy, Some(&format!("http://127.0.0.1:{closed}")), &out, metrics, &[]);
    let n = 50;
    demo_traffic(legacy, n);
    let lines = wait_outcomes(&out, n, &daemon);
    let counts = count_by_outcome(&lines);
    assert_eq!(counts.get("error"), Some(&(n - n / 10)), "every GET is an error: {counts:?}");
    assert_eq!(counts.get("skipped"), Some(&(n / 10)), "{counts:?}");
    for line in lines.iter().filter(|l| l["outcome"] == "error") {
        assert!(line["error"].as_str().is_some_and(|e| e.contains("refused")), "{line}");
    }
    let scrape = daemon.scrape();
    assert_eq!(scrape.sum("shadowtap_outcomes_total", &[("outcome", "error")]), (n - n / 10) as u64, "{}", scrape.0);
    assert_eq!(scrape.get("shadowtap_exchanges_total"), n as u64, "{}", scrape.0);
    assert_eq!(scrape.get("shadowtap_replay_queue_depth"), 0, "nothing waits once all is replayed:\n{}", scrape.0);
    assert!(daemon.healthy(), "healthy with the candidate down");
    let status = daemon.stop();
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", daemon.stderr_text());
    assert_eq!(final_outcomes(&out).len(), n);
}

/// A candidate that takes `delay` per answer (a thread per connection).
fn slow_candidate(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let (mut head, mut buf) = (Vec::new(), [0u8; 4096]);
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                std::thread::sleep(delay);
                let body = r#"{"slow":true}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

#[test]
fn a_full_replay_queue_drops_replays_but_not_capture() {
    let Some(()) = needs::met("live::a_full_replay_queue_drops_replays_but_not_capture", needs::live_capture()) else {
        return;
    };
    let legacy = service(Flavor::Legacy);
    let candidate = slow_candidate(Duration::from_millis(200));
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = (dir.path().join("out.jsonl"), dir.path().join("report.json"));
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = write_config(dir.path(), "shadowtap.toml", "[daemon]\nqueue = 1\n[candidate]\nconcurrency = 1\n");
    let mut daemon = Daemon::on_lo(
        dir.path(),
        &config,
        legacy,
        Some(&format!("http://{candidate}")),
        &out,
        metrics,
        &["--report", s(&report)],
    );
    let n = 200;
    demo_traffic(legacy, n);
    let scrape = wait_for("every exchange rebuilt", || {
        let scrape = daemon.scrape();
        if scrape.get("shadowtap_exchanges_total") >= n as u64 { Ok(scrape) } else { Err(scrape.0) }
    });
    assert_eq!(scrape.get("shadowtap_exchanges_total"), n as u64, "capture rebuilt every exchange:\n{}", scrape.0);
    assert_eq!(scrape.get("shadowtap_kernel_drops_total"), 0, "{}", scrape.0);
    assert_eq!(scrape.get("shadowtap_shard_batch_drops_total"), 0, "{}", scrape.0);
    assert!(scrape.get("shadowtap_replay_queue_drops_total") > 0, "a queue of 1 must overflow:\n{}", scrape.0);
    assert!(scrape.get("shadowtap_replay_queue_depth") <= 1, "the queue holds 1:\n{}", scrape.0);
    assert!(daemon.healthy());
    // SIGTERM at once, replays still queued or in flight (200 ms each):
    // the drain finishes them, and every exchange is either replayed (an
    // outcome) or dropped (counted in the report written at shutdown).
    let status = daemon.stop();
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", daemon.stderr_text());
    let lines = final_outcomes(&out).len() as u64;
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let drops = report["totals"]["replay_queue_drops"].as_u64().unwrap();
    eprintln!("queue full: {n} exchanges, {lines} replayed, {drops} dropped at the queue");
    assert_eq!(lines + drops, n as u64, "{lines} outcomes + {drops} queue drops: {}", report["totals"]);
    assert_eq!(report["totals"]["count"], lines, "{}", report["totals"]);
    // Per endpoint too: the drops are evidence missing behind each one,
    // and beyond [verdict] max_lost_percent (1 %) it is not ready.
    let endpoints = report["endpoints"].as_array().unwrap();
    let dropped = |e: &Value| e["health"]["queue_drops"].as_u64().unwrap();
    assert_eq!(endpoints.iter().map(dropped).sum::<u64>(), drops, "{report:#}");
    let thin: Vec<&Value> =
        endpoints.iter().filter(|e| dropped(e) * 100 > e["count"].as_u64().unwrap() + dropped(e)).collect();
    assert!(!thin.is_empty(), "a queue of 1 drops far more than 1 %: {report:#}");
    for e in thin {
        assert_eq!(e["ready"], false, "{e:#}");
        assert!(e["why"].as_str().unwrap().contains("queue drops"), "{e:#}");
    }
}

#[test]
fn sampling_keeps_about_the_given_share_of_connections() {
    let Some(()) = needs::met("live::sampling_keeps_about_the_given_share_of_connections", needs::live_capture())
    else {
        return;
    };
    let legacy = service(Flavor::Legacy);
    let twin = service(Flavor::Legacy);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = write_config(dir.path(), "shadowtap.toml", "");
    let mut daemon =
        Daemon::on_lo(dir.path(), &config, legacy, Some(&format!("http://{twin}")), &out, metrics, &["--sample", "50"]);
    let connections = 200;
    for i in 0..connections {
        let (status, _) = http_get(legacy, &format!("/api/users/{i}")).unwrap();
        assert_eq!(status, 200);
    }
    // Quiet: the capture has read everything and every rebuilt exchange has its outcome.
    let mut last = (u64::MAX, 0, 0);
    let mut quiet_polls = 0;
    let exchanges = wait_for("the capture to catch up", || {
        std::thread::sleep(Duration::from_millis(200));
        let scrape = daemon.scrape();
        let now = (
            scrape.get("shadowtap_packets_captured_total"),
            scrape.get("shadowtap_exchanges_total"),
            outcomes(&out).len() as u64,
        );
        quiet_polls = if now == last && now.1 == now.2 { quiet_polls + 1 } else { 0 };
        last = now;
        if quiet_polls >= 3 { Ok(now.1) } else { Err(format!("(packets, exchanges, outcomes) = {now:?}")) }
    });
    let scrape = daemon.scrape();
    assert_eq!(scrape.get("shadowtap_replay_queue_depth"), 0, "nothing waits once all is replayed:\n{}", scrape.0);
    let status = daemon.stop();
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", daemon.stderr_text());
    let lines = final_outcomes(&out);
    assert_eq!(lines.len() as u64, exchanges, "every sampled exchange replayed");
    let kept = lines.len();
    eprintln!("sampling: {kept} of {connections} connections kept");
    assert!(
        (connections / 4..=connections * 3 / 4).contains(&kept),
        "--sample 50 kept {kept} of {connections} connections"
    );
    // Whole connections: each kept one gives its request and its answer.
    let mut uris: Vec<&str> = lines.iter().map(|l| l["uri"].as_str().unwrap()).collect();
    uris.sort();
    uris.dedup();
    assert_eq!(uris.len(), kept, "each connection at most once");
    for line in &lines {
        assert_eq!(line["outcome"], "match", "{line}");
        assert_eq!(line["recorded_status"], 200, "{line}");
    }
}

fn raise_fd_limit(want: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain getrlimit/setrlimit on a valid struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if limit.rlim_cur >= want {
        return;
    }
    limit.rlim_cur = want;
    limit.rlim_max = limit.rlim_max.max(want);
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0, "cannot raise the open files limit to {want}: {}", std::io::Error::last_os_error());
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_flood_of_unfinished_requests_keeps_memory_bounded_and_capture_going() {
    let Some(()) = needs::met(
        "live::a_flood_of_unfinished_requests_keeps_memory_bounded_and_capture_going",
        needs::live_capture(),
    ) else {
        return;
    };
    let connections = 2000;
    raise_fd_limit(3 * connections as u64 + 1024);
    let legacy = service(Flavor::Legacy);
    let twin = service(Flavor::Legacy);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = write_config(dir.path(), "shadowtap.toml", "");
    let mut daemon = Daemon::on_lo(dir.path(), &config, legacy, Some(&format!("http://{twin}")), &out, metrics, &[]);
    let mut abandoned = Vec::with_capacity(connections);
    for i in 0..connections {
        let mut stream = TcpStream::connect(legacy).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        stream.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n").unwrap();
        abandoned.push(stream);
    }
    let tracked = wait_for("the unfinished connections to be tracked", || {
        let flows = daemon.scrape().get("shadowtap_active_flows");
        if flows >= connections as u64 * 9 / 10 { Ok(flows) } else { Err(format!("{flows} active flows")) }
    });
    assert!(tracked <= connections as u64 + 10, "{tracked} flows for {connections} connections");
    let rss_mb = status_kb(daemon.pid(), "VmRSS:") / 1024;
    let peak_mb = status_kb(daemon.pid(), "VmHWM:") / 1024;
    eprintln!("flood: {tracked} flows tracked, RSS {rss_mb} MB, peak {peak_mb} MB");
    assert!(peak_mb < 200, "RSS {rss_mb} MB, peak {peak_mb} MB with {connections} unfinished requests");

    // Still capturing and replaying.
    let (status, _) = http_get(legacy, "/api/users/3").unwrap();
    assert_eq!(status, 200);
    let lines = wait_outcomes(&out, 1, &daemon);
    assert_eq!(lines.len(), 1, "only the finished request is an exchange: {lines:?}");
    assert_eq!(lines[0]["uri"], "/api/users/3");
    assert_eq!(lines[0]["outcome"], "match", "{}", lines[0]);

    // Closed connections are forgotten.
    drop(abandoned);
    wait_for("the closed connections to be forgotten", || {
        let flows = daemon.scrape().get("shadowtap_active_flows");
        if flows < 100 { Ok(()) } else { Err(format!("{flows} active flows")) }
    });
    assert!(daemon.healthy());
    let status = daemon.stop();
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", daemon.stderr_text());
    assert_eq!(final_outcomes(&out).len(), 1);
}

/// The daemon binary where user nobody can run it: in place when every
/// directory above it is searchable by others, else a 0755 copy.
fn binary_for_nobody(dir: &Path) -> PathBuf {
    let bin = Path::new(BIN);
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode()).unwrap_or(0);
    let reachable = bin.ancestors().skip(1).all(|p| p.as_os_str().is_empty() || mode(p) & 0o001 != 0);
    if reachable && mode(bin) & 0o005 == 0o005 {
        return bin.to_path_buf();
    }
    let copy = dir.join("shadowtap");
    std::fs::copy(bin, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

#[test]
fn an_unprivileged_user_with_cap_net_raw_captures_and_without_it_fails_clearly() {
    let Some(()) =
        needs::met("live::an_unprivileged_user_with_cap_net_raw_captures_and_without_it_fails_clearly", needs::root())
    else {
        return;
    };
    let legacy = service(Flavor::Legacy);
    let twin = service(Flavor::Legacy);
    let dir = tempfile::tempdir().unwrap();
    // nobody writes the outcomes and reads the config here.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let bin = binary_for_nobody(dir.path());
    let out = dir.path().join("out.jsonl");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = write_config(dir.path(), "shadowtap.toml", "");
    let port = legacy.port().to_string();
    let (candidate_url, metrics_text) = (format!("http://{twin}"), metrics.to_string());
    let args = [
        "run",
        "--config",
        s(&config),
        "--interface",
        "lo",
        "--port",
        &port,
        "--candidate",
        &candidate_url,
        "--out",
        s(&out),
        "--metrics",
        &metrics_text,
    ];
    let as_nobody = ["--reuid=nobody", "--regid=nogroup", "--init-groups"];

    // Without the capability: one clear line, non-zero exit.
    let result = Command::new("setpriv")
        .args(as_nobody)
        .args(["--inh-caps=-all", "--bounding-set=-all"])
        .arg(&bin)
        .args(args)
        .env("SHADOWTAP_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success(), "capture without CAP_NET_RAW must fail: {stderr}");
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].starts_with("shadowtap: interface lo: ") && lines[0].contains("Operation not permitted"),
        "a clear error naming the interface and the refusal: {stderr}"
    );
    assert!(std::fs::read(&out).unwrap_or_default().is_empty(), "no outcome on failure");

    // With CAP_NET_RAW only (ambient, so it survives exec as nobody).
    let mut command = Command::new("setpriv");
    command.args(as_nobody).args(["--inh-caps=+net_raw", "--ambient-caps=+net_raw"]).arg(&bin).args(args);
    let mut daemon = Daemon::start_command(dir.path(), command, metrics, None);
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).unwrap_or("").to_string();
    assert!(field("Uid:").split_whitespace().skip(1).all(|id| id == "65534"), "runs as nobody: {}", field("Uid:"));
    let effective = u64::from_str_radix(field("CapEff:").split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(effective, 1 << 13, "CAP_NET_RAW (13) and nothing else: {}", field("CapEff:"));
    let n = 20;
    demo_traffic(legacy, n);
    let lines = wait_outcomes(&out, n, &daemon);
    let counts = count_by_outcome(&lines);
    assert_eq!(counts.get("match"), Some(&(n - n / 10)), "{counts:?}");
    let status = daemon.stop();
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", daemon.stderr_text());
}

/// Two network namespaces joined by a veth pair; removed on drop.
struct Namespaces {
    names: Vec<String>,
    veth: String,
    children: Vec<Guard>,
}

fn ip(args: &[&str]) {
    let result = Command::new("ip").args(args).output().expect("ip (iproute2)");
    assert!(result.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&result.stderr));
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Processes first: a namespace with processes in it outlives its name.
        self.children.clear();
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
        // If the pair never left the root namespace.
        let _ = Command::new("ip").args(["link", "del", &self.veth]).stderr(Stdio::null()).output();
    }
}

#[test]
fn capture_on_a_veth_between_network_namespaces() {
    let Some(()) = needs::met("live::capture_on_a_veth_between_network_namespaces", needs::network_namespaces()) else {
        return;
    };
    let pid = std::process::id();
    let (ns1, ns2) = (format!("stap{pid}a"), format!("stap{pid}b"));
    let (va, vb) = (format!("stva{pid}"), format!("stvb{pid}"));
    let mut namespaces = Namespaces { names: Vec::new(), veth: va.clone(), children: Vec::new() };
    for ns in [&ns1, &ns2] {
        ip(&["netns", "add", ns]);
        namespaces.names.push(ns.clone());
    }
    ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb]);
    ip(&["link", "set", &va, "netns", &ns1]);
    ip(&["link", "set", &vb, "netns", &ns2]);
    ip(&["-n", &ns1, "addr", "add", "10.231.0.1/24", "dev", &va]);
    ip(&["-n", &ns2, "addr", "add", "10.231.0.2/24", "dev", &vb]);
    for (ns, dev) in [(&ns1, &va), (&ns2, &vb)] {
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
    }

    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    for k in 0..5 {
        std::fs::write(www.join(format!("item{k}.json")), format!("{{\"item\":{k},\"tags\":[\"a\",\"b\"]}}\n"))
            .unwrap();
    }
    let (legacy_port, candidate_port, metrics_port) = (8080u16, 8081u16, 9090u16);
    let http_server = |bind: &str, port: u16| {
        let child = Command::new("ip")
            .args(["netns", "exec", &ns1, "python3", "-m", "http.server", &port.to_string(), "--bind", bind])
            .arg("--directory")
            .arg(&www)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 (installed by .ci/run)");
        Guard(child)
    };
    namespaces.children.push(http_server("10.231.0.1", legacy_port));
    namespaces.children.push(http_server("127.0.0.1", candidate_port));
    let legacy = SocketAddr::from(([10, 231, 0, 1], legacy_port));
    let candidate = SocketAddr::from(([127, 0, 0, 1], candidate_port));
    wait_for("the http.servers in the namespace", || {
        in_netns(&ns1, move || {
            for addr in [legacy, candidate] {
                TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| format!("{addr}: {e}"))?;
            }
            Ok(())
        })
    });

    let out = dir.path().join("out.jsonl");
    let config = write_config(dir.path(), "shadowtap.toml", "");
    let mut command = Command::new("ip");
    command.args(["netns", "exec", &ns1, BIN, "run", "--config", s(&config), "--interface", &va]).args([
        "--port",
        &legacy_port.to_string(),
        "--candidate",
        &format!("http://{candidate}"),
        "--out",
        s(&out),
        "--metrics",
        &format!("127.0.0.1:{metrics_port}"),
    ]);
    let metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    let mut daemon = Daemon::start_command(dir.path(), command, metrics, Some(ns1.clone()));

    // Clients in the other namespace: the traffic crosses the veth.
    let n = 30;
    let statuses = in_netns(&ns2, move || {
        (0..n).map(|i| http_get(legacy, &format!("/item{}.json?i={i}", i % 5)).map(|r| r.0)).collect::<Vec<_>>()
    });
    assert!(statuses.iter().all(|s| matches!(s, Ok(200))), "{statuses:?}");
    let lines = wait_outcomes(&out, n, &daemon);
    assert_eq!(lines.len(), n, "one outcome per request");
    for line in &lines {
        assert_eq!(line["outcome"], "match", "{line}");
    }
    let status = daemon.stop();
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", daemon.stderr_text());
    assert_eq!(final_outcomes(&out).len(), n);
    drop(daemon);
    drop(namespaces);
    assert!(!Path::new(&format!("/run/netns/{ns1}")).exists(), "namespace {ns1} removed");
}

/// The flow table bound: with `[capture] max_flows` small, a flood of
/// unfinished connections fills the table and no further, the refusals
/// are counted, and once the flood goes away new connections are tracked
/// and replayed again.
#[test]
fn the_flow_table_bound_caps_a_flood_and_counts_what_it_refuses() {
    let Some(()) =
        needs::met("live::the_flow_table_bound_caps_a_flood_and_counts_what_it_refuses", needs::live_capture())
    else {
        return;
    };
    let connections = 600;
    let bound = 200;
    raise_fd_limit(3 * connections as u64 + 1024);
    let legacy = service(Flavor::Legacy);
    let twin = service(Flavor::Legacy);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = write_config(dir.path(), "shadowtap.toml", &format!("[capture]\nmax_flows = {bound}\n"));
    let mut daemon = Daemon::on_lo(dir.path(), &config, legacy, Some(&format!("http://{twin}")), &out, metrics, &[]);
    let mut abandoned = Vec::with_capacity(connections);
    for i in 0..connections {
        let mut stream = TcpStream::connect(legacy).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        stream.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n").unwrap();
        abandoned.push(stream);
    }
    let refused = wait_for("connections beyond the bound to be refused", || {
        let m = daemon.scrape();
        let refused = m.get("shadowtap_flows_refused_total");
        if refused >= (connections - bound) as u64 / 2 { Ok(refused) } else { Err(format!("{refused} refused")) }
    });
    let flows = daemon.scrape().get("shadowtap_active_flows");
    // The bound is split between the shards, so the total is at most it.
    assert!(flows <= bound as u64, "{flows} flows tracked with max_flows = {bound}");
    assert!(refused > 0);
    drop(abandoned);
    wait_for("the flood to be forgotten", || {
        let flows = daemon.scrape().get("shadowtap_active_flows");
        if flows < 20 { Ok(()) } else { Err(format!("{flows} active flows")) }
    });
    let (status, _) = http_get(legacy, "/api/users/4").unwrap();
    assert_eq!(status, 200);
    let lines = wait_outcomes(&out, 1, &daemon);
    assert_eq!(lines[0]["uri"], "/api/users/4");
    assert_eq!(lines[0]["outcome"], "match", "{}", lines[0]);
    let status = daemon.stop();
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", daemon.stderr_text());
}
