//! The daemon keeps its evidence across restarts (`--state-dir`): the
//! binary runs as a child process capturing on `lo` against services on
//! loopback; it is stopped (SIGTERM) or killed (SIGKILL) and started again
//! with the same state directory, and its report must go on as if it had
//! never stopped. Damaged and other-version state files are checked too.
//! Live capture needs root or CAP_NET_RAW (else each test says it skipped).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::Value;

#[path = "common/items.rs"]
mod items;
#[path = "common/needs.rs"]
mod needs;
#[path = "common/wait.rs"]
mod wait;

const BIN: &str = env!("CARGO_BIN_EXE_shadowtap");
const DEADLINE: Duration = Duration::from_secs(20);

/// A JSON service on loopback: `{"id": <n in the query>, "ts": <a value
/// that differs on every answer>}`, one request per connection. `base`
/// keeps the `ts` of different services apart.
fn json_service(base: u64) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = Arc::new(AtomicU64::new(base));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = counter.clone();
            std::thread::spawn(move || answer(stream, &counter));
        }
    });
    addr
}

fn answer(stream: TcpStream, counter: &AtomicU64) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    let id: u64 = first.split("n=").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    let ts = counter.fetch_add(1, Ordering::Relaxed);
    let body = format!("{{\"id\":{id},\"ts\":{ts}}}");
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// `n` GETs to `target`, ids from `first`, one connection each.
fn traffic(target: SocketAddr, first: u64, n: u64) {
    for id in first..first + n {
        let mut stream = TcpStream::connect(target).unwrap();
        write!(stream, "GET /things?n={id} HTTP/1.1\r\nHost: legacy\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other("not HTTP"))?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, body.to_string()))
}

/// One test's world: services, a directory, the daemon's arguments.
struct World {
    dir: tempfile::TempDir,
    legacy: SocketAddr,
    candidate: String,
    /// A second legacy instance (noise is learned against it).
    secondary: SocketAddr,
}

impl World {
    fn new(config: &str) -> World {
        World::with(config, json_service(1_000_000), format!("http://{}", json_service(2_000_000)))
    }

    fn with(config: &str, legacy: SocketAddr, candidate: String) -> World {
        let world = World { dir: tempfile::tempdir().unwrap(), legacy, candidate, secondary: json_service(3_000_000) };
        std::fs::write(world.path("shadowtap.toml"), config).unwrap();
        world
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state(&self) -> PathBuf {
        self.path("state")
    }

    /// `shadowtap run` on `lo` with the state directory, plus `extra`.
    fn args(&self, metrics: SocketAddr, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec!["run".into(), "--config".into(), s(&self.path("shadowtap.toml"))];
        let candidate = self.candidate.clone();
        for (flag, value) in [
            ("--interface", "lo".to_string()),
            ("--port", self.legacy.port().to_string()),
            ("--candidate", candidate),
            ("--out", s(&self.path("out.jsonl"))),
            ("--report", s(&self.path("report.json"))),
            ("--metrics", metrics.to_string()),
            ("--state-dir", s(&self.state())),
        ] {
            args.extend([flag.to_string(), value]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    fn start(&self, extra: &[&str]) -> Daemon {
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let stderr = self.path(&format!("daemon-{}.stderr", free_port()));
        let child = Command::new(BIN)
            .args(self.args(metrics, extra))
            .env("SHADOWTAP_LOG", "info")
            .env_remove("STATE_DIRECTORY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut daemon = Daemon { child, metrics, stderr };
        wait::wait_for_within(DEADLINE, "the daemon's /healthz", || {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("the daemon exited ({status}) before being ready:\n{}", daemon.stderr_text());
            }
            match http_get(daemon.metrics, "/healthz") {
                Ok((200, _)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        daemon
    }

    /// The complete outcome lines so far.
    fn outcomes(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.path("out.jsonl")).unwrap_or_default();
        text.split_inclusive('\n').filter(|l| l.ends_with('\n')).map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    fn wait_outcomes(&self, n: usize, daemon: &Daemon) {
        wait::wait_for_within(DEADLINE, &format!("{n} outcomes"), || {
            let have = self.outcomes().len();
            if have >= n { Ok(()) } else { Err(format!("{have} so far; stderr:\n{}", daemon.stderr_text())) }
        });
    }

    fn report(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path("report.json")).unwrap()).unwrap()
    }

    fn state_cli(&self, action: &str) -> (i32, String) {
        let output = Command::new(BIN).args(["state", action, "--state-dir", &s(&self.state())]).output().unwrap();
        (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

fn s(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

struct Daemon {
    child: Child,
    metrics: SocketAddr,
    stderr: PathBuf,
}

impl Daemon {
    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn kill_with(&mut self, signal: i32) -> ExitStatus {
        // SAFETY: kill(2) on our child, not reaped yet.
        assert_eq!(unsafe { libc::kill(self.child.id() as libc::pid_t, signal) }, 0);
        wait::wait_exit_within(DEADLINE, &mut self.child, "the daemon")
    }

    fn stop(&mut self) {
        let status = self.kill_with(libc::SIGTERM);
        assert!(status.success(), "exit {status}:\n{}", self.stderr_text());
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

/// Noise is learned against the secondary only (each request is new), and
/// diffs are judged at once: what explains after a restart was kept.
const CONFIG: &str = "[noise]\nfrom_repeats = false\nwarmup_samples = 0\n";

fn count(report: &Value, key: &str) -> u64 {
    report["totals"][key].as_u64().unwrap_or_else(|| panic!("totals.{key}: {}", report["totals"]))
}

/// The histogram of one side's latencies over all endpoints of a report.
fn report_histogram(report: &Value, side: &str) -> Histogram<u64> {
    let mut all: Histogram<u64> = Histogram::new(3).unwrap();
    for e in report["endpoints"].as_array().unwrap() {
        if let Some(text) = e[format!("{side}_histogram")].as_str() {
            all.add(shadowtap::report::hdr::decode(text).unwrap()).unwrap();
        }
    }
    all
}

/// The histogram of one side's latencies of the outcome lines that were
/// compared, as one run over all of them would have recorded it.
fn lines_histogram(lines: &[Value], side: &str) -> Histogram<u64> {
    let mut h: Histogram<u64> = Histogram::new(3).unwrap();
    for line in lines {
        if ["match", "diff", "noise", "race"].contains(&line["outcome"].as_str().unwrap_or(""))
            && let Some(us) = line[format!("{side}_latency_us")].as_u64()
        {
            h.record(us.max(1)).unwrap();
        }
    }
    h
}

fn outcome_count(lines: &[Value], outcome: &str) -> u64 {
    lines.iter().filter(|l| l["outcome"] == outcome).count() as u64
}

#[test]
fn a_restart_goes_on_from_the_kept_counts_histograms_and_noise() {
    let Some(()) = needs::met("state::a_restart_goes_on", needs::live_capture()) else { return };
    let world = World::new(CONFIG);
    let secondary = format!("http://{}", world.secondary);

    let mut first = world.start(&["--secondary", &secondary]);
    traffic(world.legacy, 0, 30);
    world.wait_outcomes(30, &first);
    first.stop();
    let before = world.report();
    assert_eq!(count(&before, "count"), 30);
    assert_eq!(before["restarts"], 0);
    let since = before["since"].as_str().expect("since").to_string();
    let (code, shown) = world.state_cli("show");
    assert_eq!(code, 0);
    assert!(shown.contains("restarts:   0") && shown.contains("exchanges:  30"), "{shown}");
    assert!(shown.contains(&since), "{shown}");

    // No secondary now: only the kept noise can explain the `ts` diffs.
    let mut second = world.start(&[]);
    traffic(world.legacy, 100, 20);
    world.wait_outcomes(50, &second);
    let (_, page) = http_get(second.metrics, "/report").unwrap();
    assert!(page.contains(&format!("since <time>{since}</time>, across 1 restart.")), "the HTML report says so");
    // Prometheus counters start at zero with the process; the report does not.
    let (_, scrape) = http_get(second.metrics, "/metrics").unwrap();
    let total = |name: &str| -> u64 {
        scrape
            .lines()
            .filter(|l| l.split(['{', ' ']).next() == Some(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    assert_eq!(total("shadowtap_outcomes_total"), 20, "{scrape}");
    assert_eq!(total("shadowtap_load_samples_total"), 20, "{scrape}");
    let reset = Command::new(BIN).args(["state", "reset", "--state-dir", &s(&world.state())]).output().unwrap();
    let said = String::from_utf8_lossy(&reset.stderr);
    assert_eq!(reset.status.code(), Some(2), "no reset under a running daemon: {said}");
    assert!(said.contains("in use") && world.state().join("state").exists(), "{said}");
    second.stop();
    let lines = world.outcomes();
    assert_eq!(lines.len(), 50);
    let after_restart = &lines[30..];
    let said: Vec<&str> = after_restart.iter().map(|l| l["outcome"].as_str().unwrap_or("?")).collect();
    assert_eq!(outcome_count(after_restart, "noise"), 20, "kept noise explains: {said:?}");

    let report = world.report();
    assert_eq!(report["restarts"], 1);
    assert_eq!(report["since"].as_str(), Some(since.as_str()));
    assert_eq!(count(&report, "count"), 50, "as one run over the same traffic");
    for outcome in ["match", "diff", "noise", "error", "skipped"] {
        assert_eq!(count(&report, outcome), outcome_count(&lines, outcome), "{outcome}");
    }
    for side in ["recorded", "candidate"] {
        let (kept, one_run) = (report_histogram(&report, side), lines_histogram(&lines, side));
        assert_eq!(kept.len(), one_run.len(), "{side}");
        for q in [0.5, 0.9, 0.99, 1.0] {
            assert_eq!(kept.value_at_quantile(q), one_run.value_at_quantile(q), "{side} q{q}");
        }
    }
    let noisy = &report["endpoints"][0]["noisy_fields"];
    assert!(
        noisy.as_array().unwrap().iter().any(|f| f["path"] == "/ts" && f["samples"].as_u64() >= Some(30)),
        "{noisy}"
    );

    // --fresh starts over; `state reset` discards.
    let mut fresh = world.start(&["--fresh"]);
    traffic(world.legacy, 200, 5);
    world.wait_outcomes(55, &fresh);
    fresh.stop();
    let report = world.report();
    assert_eq!((count(&report, "count"), report["restarts"].as_u64()), (5, Some(0)));
    assert!(fresh.stderr_text().contains("--fresh"), "{}", fresh.stderr_text());
    assert_eq!(world.state_cli("reset").0, 0);
    let (_, shown) = world.state_cli("show");
    assert!(shown.contains("no state kept"), "{shown}");
}

/// Writes replayed before a restart generated ids and times on the
/// candidate; reads of them after the restart are still sent with the
/// candidate's id and compared through the kept mappings.
#[test]
fn ids_mapped_before_a_restart_still_map_after_it() {
    let Some(()) = needs::met("state::ids_mapped_before_a_restart", needs::live_capture()) else { return };
    use items::{CANDIDATE_FIRST_ID, LEGACY_FIRST_ID, Stamps};
    let legacy = items::Service::start(items::seeded(LEGACY_FIRST_ID, 1..=2), false);
    let stamps = Stamps { clock_offset_s: 1, ..Stamps::CANDIDATE };
    let candidate = items::Service::start_stamped(items::seeded(CANDIDATE_FIRST_ID, 1..=2), false, stamps);
    let config = "[replay]\nallow_writes = [\"POST /items\"]\n[noise]\nwarmup_samples = 0\n\
                  [compare]\nignore_paths = [\"/request_id\", \"/served_at\"]\n";
    let world = World::with(config, legacy.addr, candidate.url.clone());
    let mut first = world.start(&[]);
    let mut client = items::Client::connect(legacy.addr);
    for k in 0..2u64 {
        let body = serde_json::json!({"name": format!("n{k}"), "price": k});
        assert_eq!(client.request("POST", "/items", Some(&body)).0, 201);
    }
    world.wait_outcomes(2, &first);
    first.stop();
    drop(client);

    let mut second = world.start(&[]);
    let mut client = items::Client::connect(legacy.addr);
    for k in 0..2u64 {
        assert_eq!(client.get(&format!("/items/{}", LEGACY_FIRST_ID + k)).0, 200);
    }
    world.wait_outcomes(4, &second);
    second.stop();
    for line in &world.outcomes()[2..] {
        assert_eq!(line["outcome"], "match", "{line}");
        let by: Vec<&str> = line["explained"].as_array().unwrap().iter().filter_map(|e| e["by"].as_str()).collect();
        assert!(by.contains(&"id_mapping") && by.contains(&"value_mapping"), "{line}");
    }
    let asked = candidate.seen().iter().filter(|r| r.starts_with("GET /items/10000")).count();
    assert_eq!(asked, 2, "reads sent with the candidate's ids: {:?}", candidate.seen());
}

#[test]
fn a_kill_loses_at_most_one_report_interval() {
    let Some(()) = needs::met("state::a_kill_loses_at_most_one_interval", needs::live_capture()) else { return };
    let world = World::new(&format!("{CONFIG}[output]\nreport_interval_s = 1\n"));
    let mut first = world.start(&[]);
    traffic(world.legacy, 0, 25);
    world.wait_outcomes(25, &first);
    // More than one interval after the last outcome: it was saved.
    std::thread::sleep(Duration::from_millis(2_500));
    first.kill_with(libc::SIGKILL);

    let mut second = world.start(&[]);
    traffic(world.legacy, 100, 10);
    world.wait_outcomes(35, &second);
    second.stop();
    let report = world.report();
    assert_eq!(count(&report, "count"), 35, "nothing saved an interval before the kill is lost");
    assert_eq!(report["restarts"], 1);
}

#[test]
fn a_damaged_state_file_is_set_aside_and_the_daemon_starts_fresh() {
    let Some(()) = needs::met("state::a_damaged_state_file", needs::live_capture()) else { return };
    let world = World::new(CONFIG);
    let mut daemon = world.start(&[]);
    traffic(world.legacy, 0, 5);
    world.wait_outcomes(5, &daemon);
    daemon.stop();
    let file = world.state().join("state");
    let good = std::fs::read(&file).unwrap();
    let truncated = good[..good.len() - 7].to_vec();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    for (what, bytes) in [("truncated", truncated), ("bit-flipped", flipped)] {
        std::fs::write(&file, &bytes).unwrap();
        let mut daemon = world.start(&[]);
        daemon.stop();
        let log = daemon.stderr_text();
        let warned: Vec<&str> = log.lines().filter(|l| l.contains("damaged")).collect();
        assert_eq!(warned.len(), 1, "{what}: one line:\n{log}");
        assert!(!log.contains("panicked"), "{log}");
        let report = world.report();
        assert_eq!((count(&report, "count"), report["restarts"].as_u64()), (0, Some(0)), "{what}: fresh");
        let aside = std::fs::read_dir(world.state())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("state.corrupt-"))
            .count();
        assert!(aside >= 1, "{what}: set aside");
        // The fresh start was kept, readable.
        assert_eq!(world.state_cli("show").0, 0);
    }
}

#[test]
fn a_state_file_of_another_version_is_refused_in_one_line() {
    // Refused before the capture opens: needs no privileges.
    let world = World::new(CONFIG);
    std::fs::create_dir_all(world.state()).unwrap();
    let file = world.state().join("state");
    std::fs::write(
        &file,
        b"shadowtap-state v2 len=2 sha256=44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\n{}",
    )
    .unwrap();
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let output = Command::new(BIN)
        .args(world.args(metrics, &[]))
        .env("SHADOWTAP_LOG", "warn")
        .env_remove("STATE_DIRECTORY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("state version 2") && stderr.contains("--fresh"), "{stderr}");
    assert!(file.exists(), "left as it was");
    let (code, _) = world.state_cli("show");
    assert_ne!(code, 0);
}
