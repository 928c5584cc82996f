//! Recording what the eBPF source saw (`run --record`, `shadowtap record`)
//! with a real legacy service: python's http.server (HTTP/1.1, keep-alive)
//! on loopback, watched by pid. The recorded pcapng must replay to the
//! outcomes the daemon had live, and read without errors by `pairs` (and
//! tshark, where installed). Root (eBPF): without it each test says in one
//! line what it skipped, except under CI, where it must run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

#[path = "common/needs.rs"]
mod needs;
#[path = "common/wait.rs"]
mod wait;

const BIN: &str = env!("CARGO_BIN_EXE_shadowtap");
/// Generous: the tests run in parallel on a small, busy machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// python's file server speaking HTTP/1.1 (keep-alive), on a free port.
const PY_SERVER: &str = r#"
import http.server, os, sys
os.chdir(sys.argv[1])
class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        answer = b'{"created": %d}' % len(body)
        self.send_response(201)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// A child process killed when dropped (also when an assertion fails).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A python file server on `root`: its process and address.
fn python_server(root: &Path) -> (Guard, SocketAddr) {
    let mut child = Command::new("python3")
        .args(["-c", PY_SERVER])
        .arg(root)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (installed by .ci/run)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("python printed {line:?}, not a port"));
    (Guard(child), SocketAddr::from(([127, 0, 0, 1], port)))
}

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "first file\n").unwrap();
    std::fs::write(dir.path().join("b.json"), r#"{"items": [1, 2, 3]}"#).unwrap();
    std::fs::write(dir.path().join("big.bin"), vec![b'z'; 300_000]).unwrap();
    dir
}

/// Sends requests on one keep-alive connection, reading each answer in
/// full (by Content-Length); returns the statuses.
fn keep_alive(addr: SocketAddr, requests: &[(&str, &str, &str)]) -> Vec<u16> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut statuses = Vec::new();
    for (method, path, body) in requests {
        write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}", body.len())
            .unwrap();
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        statuses.push(status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line"));
        let mut length = 0;
        let mut closes = false;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            closes |= lower.starts_with("connection: close");
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        if closes {
            break;
        }
    }
    statuses
}

/// The complete lines of an outcome file, each JSON.
fn outcomes(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{}: bad line {line:?}: {e}", path.display())))
        .collect()
}

/// What a replay of an exchange came to, counted: method, uri, outcome,
/// recorded and candidate statuses.
fn outcome_counts(lines: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for l in lines {
        let key = format!(
            "{} {} {} {} {}",
            l["method"].as_str().unwrap_or("?"),
            l["uri"].as_str().unwrap_or("?"),
            l["outcome"].as_str().unwrap_or("?"),
            l["recorded_status"],
            l["candidate_status"]
        );
        *counts.entry(key).or_default() += 1;
    }
    counts
}

fn wait_for_log(stderr: &Path, text: &str, child: &mut Child) {
    wait::wait_for_within(DEADLINE, &format!("{text:?} in {}", stderr.display()), || {
        let log = std::fs::read_to_string(stderr).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!("shadowtap exited ({status}) before {text:?}: {log}");
        }
        if log.contains(text) { Ok(()) } else { Err(log) }
    });
}

fn interrupt(child: &Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
}

/// The traffic: two keep-alive connections (GETs, a 404, a big file, a
/// POST) and two connections of one request each.
fn traffic(legacy: SocketAddr) -> usize {
    let first = keep_alive(
        legacy,
        // python closes after an error: the 404 comes last.
        &[("GET", "/a.txt", ""), ("GET", "/b.json", ""), ("GET", "/a.txt", ""), ("GET", "/missing", "")],
    );
    assert_eq!(first, [200, 200, 200, 404]);
    let second = keep_alive(legacy, &[("GET", "/big.bin", ""), ("POST", "/a.txt", "x=1")]);
    assert_eq!(second, [200, 201]);
    for _ in 0..2 {
        assert_eq!(keep_alive(legacy, &[("GET", "/b.json", "")]), [200]);
    }
    4 + 2 + 2
}

fn run_status(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn run_with_record_replays_to_the_outcomes_seen_live() {
    let Some(()) = needs::met("run_with_record_replays_to_the_outcomes_seen_live", needs::root()) else { return };
    let site = site();
    let (legacy_proc, legacy) = python_server(site.path());
    let (_candidate_proc, candidate) = python_server(site.path());
    let dir = tempfile::tempdir().unwrap();
    let (recording, live_out, stderr) =
        (dir.path().join("seen.pcapng"), dir.path().join("live.jsonl"), dir.path().join("run.log"));
    let candidate_url = format!("http://{candidate}");
    let mut daemon = Guard(
        Command::new(BIN)
            .args(["run", "--source", "ebpf", "--pid", &legacy_proc.0.id().to_string()])
            .args(["--port", &legacy.port().to_string(), "--candidate", &candidate_url])
            .arg("--record")
            .arg(&recording)
            .arg("--out")
            .arg(&live_out)
            .env("SHADOWTAP_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for_log(&stderr, "capturing", &mut daemon.0);
    let exchanges = traffic(legacy);
    wait::wait_for_within(DEADLINE, "every exchange's outcome", || {
        let n = outcomes(&live_out).len();
        if n >= exchanges { Ok(()) } else { Err(format!("{n} of {exchanges}")) }
    });
    interrupt(&daemon.0);
    let status = wait::wait_exit_within(DEADLINE, &mut daemon.0, "the daemon after SIGINT");
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("recording closed"), "{log}");
    let live = outcomes(&live_out);
    assert_eq!(live.len(), exchanges, "{live:?}");
    assert!(live.iter().any(|l| l["outcome"] == "match"), "{live:?}");

    let replayed_out = dir.path().join("replayed.jsonl");
    let replay = Command::new(BIN)
        .arg("replay")
        .arg(&recording)
        .args(["--candidate", &candidate_url])
        .arg("--out")
        .arg(&replayed_out)
        .output()
        .unwrap();
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let replayed = outcomes(&replayed_out);
    assert_eq!(outcome_counts(&replayed), outcome_counts(&live));

    let pairs = Command::new(BIN).arg("pairs").arg(&recording).output().unwrap();
    let summary = String::from_utf8_lossy(&pairs.stderr);
    assert!(pairs.status.success(), "{summary}");
    assert!(summary.contains("malformed 0") && summary.contains("gaps 0 "), "{summary}");
    assert_eq!(String::from_utf8_lossy(&pairs.stdout).lines().count(), exchanges);
    if needs::program("tshark").is_ok() {
        let tshark = Command::new("tshark").arg("-r").arg(&recording).output().unwrap();
        let errors = String::from_utf8_lossy(&tshark.stderr);
        assert!(tshark.status.success(), "{errors}");
        let text = String::from_utf8_lossy(&tshark.stdout);
        assert_eq!(text.lines().filter(|l| l.contains("GET /a.txt HTTP/1.1")).count(), 2, "{text}");
        assert!(!text.contains("Malformed") && !text.contains("TCP Previous segment not captured"), "{text}");
    }
}

#[test]
fn the_record_command_writes_what_the_service_saw_until_interrupted() {
    let Some(()) = needs::met("the_record_command_writes_what_the_service_saw_until_interrupted", needs::root()) else {
        return;
    };
    let site = site();
    let (legacy_proc, legacy) = python_server(site.path());
    let dir = tempfile::tempdir().unwrap();
    let (recording, stderr) = (dir.path().join("seen.pcapng"), dir.path().join("record.log"));
    let mut recorder = Guard(
        Command::new(BIN)
            .args(["record", "--source", "ebpf", "--pid", &legacy_proc.0.id().to_string()])
            .args(["--port", &legacy.port().to_string()])
            .arg("--out")
            .arg(&recording)
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for_log(&stderr, "recording", &mut recorder.0);
    let exchanges = traffic(legacy);
    // What was seen reaches the file within a second of being seen.
    wait::wait_for_within(DEADLINE, "the recording's data on disk", || {
        let size = std::fs::metadata(&recording).map(|m| m.len()).unwrap_or(0);
        if size > 300_000 { Ok(()) } else { Err(format!("{size} bytes")) }
    });
    interrupt(&recorder.0);
    let status = wait::wait_exit_within(DEADLINE, &mut recorder.0, "record after SIGINT");
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(status.success(), "{status}: {log}");
    let summary = log.lines().find(|l| l.starts_with("recorded ")).unwrap_or_else(|| panic!("no summary: {log}"));
    assert!(summary.starts_with("recorded 4 connections,") && summary.contains("ring buffer drops 0"), "{summary}");

    let pairs = Command::new(BIN).arg("pairs").arg(&recording).output().unwrap();
    let pairs_summary = String::from_utf8_lossy(&pairs.stderr);
    assert!(pairs.status.success(), "{pairs_summary}");
    assert!(pairs_summary.contains("malformed 0") && pairs_summary.contains("gaps 0 "), "{pairs_summary}");
    let lines: Vec<Value> =
        String::from_utf8_lossy(&pairs.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), exchanges);
    let mut seen: Vec<(String, String, u64, bool)> = lines
        .iter()
        .map(|l| {
            let uri = l["request"]["uri"].as_str().unwrap().to_string();
            let method = l["request"]["method"].as_str().unwrap().to_string();
            (method, uri, l["response"]["status"].as_u64().unwrap(), l["gap"] == true)
        })
        .collect();
    seen.sort();
    let expect = |m: &str, u: &str, s| (m.to_string(), u.to_string(), s, false);
    assert_eq!(
        seen,
        [
            expect("GET", "/a.txt", 200),
            expect("GET", "/a.txt", 200),
            expect("GET", "/b.json", 200),
            expect("GET", "/b.json", 200),
            expect("GET", "/b.json", 200),
            expect("GET", "/big.bin", 200),
            expect("GET", "/missing", 404),
            expect("POST", "/a.txt", 201),
        ]
    );
    let big = lines.iter().find(|l| l["request"]["uri"] == "/big.bin").unwrap();
    assert_eq!(big["response"]["body_len"], 300_000, "{big}");
}

/// Flags `record` cannot take, and `--record` without the eBPF source:
/// one line, exit 2 (no privilege needed).
#[test]
fn record_refuses_what_it_cannot_do_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.pcapng");
    let out = out.to_str().unwrap();
    let (code, err) = run_status(&["record", "--source", "pcap", "--out", out]);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");
    assert!(err.contains("tcpdump -w"), "{err}");
    let (code, err) = run_status(&["record", "--source", "ebpf", "--out", out]);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");
    assert!(err.contains("--pid"), "{err}");
    let (code, err) = run_status(&["record", "--source", "ebpf", "--pid", "1", "--duration=0", "--out", out]);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");
    let (code, err) = run_status(&["record", "--source", "ebpf", "--pid", "1"]);
    assert_eq!(code, 2, "--out is required: {err}");
    let (code, err) = run_status(&[
        "run",
        "--source",
        "pcap",
        "--interface",
        "lo",
        "--candidate",
        "http://127.0.0.1:9",
        "--record",
        out,
    ]);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");
    assert!(err.contains("--record needs --source ebpf"), "{err}");
    assert!(!PathBuf::from(out).exists(), "nothing written");
}
