//! The fleet tests' world on loopback: a tiny JSON service (legacy, or a
//! candidate with planted regressions), `shadowtap run` taps capturing on
//! `lo`, and a real Prometheus server scraping them every second.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[path = "wait.rs"]
mod wait;
pub use wait::{wait_exit_within, wait_for_within};

pub const DEADLINE: Duration = Duration::from_secs(30);

/// How the candidate differs from production.
#[derive(Clone, Copy, PartialEq)]
pub enum Flavor {
    Legacy,
    /// `/b` answers another `kind`; `/slow` answers 30 ms late.
    Regressed,
}

/// `GET /{route}?n=N`: `{"route", "n", "kind"}` (keep-alive, Content-Length).
fn answer(target: &str, flavor: Flavor) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let n: u64 = query.strip_prefix("n=").and_then(|n| n.parse().ok()).unwrap_or(0);
    let kind = if flavor == Flavor::Regressed && path == "/b" { "new" } else { "old" };
    if flavor == Flavor::Regressed && path == "/slow" {
        std::thread::sleep(Duration::from_millis(30));
    }
    let body = format!("{{\"route\":\"{path}\",\"n\":{n},\"kind\":\"{kind}\"}}");
    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

/// Starts the service on 127.0.0.1 (any free port), one thread per connection.
pub fn service(flavor: Flavor) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream, flavor));
        }
    });
    addr
}

fn serve(stream: TcpStream, flavor: Flavor) {
    let Ok(clone) = stream.try_clone() else { return };
    let (mut reader, mut writer) = (BufReader::new(clone), stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line.split(' ').nth(1).unwrap_or("/").to_string();
        let mut close = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            close |= header.to_ascii_lowercase().starts_with("connection: close");
        }
        if writer.write_all(answer(&target, flavor).as_bytes()).is_err() || close {
            return;
        }
    }
}

/// One GET with `Connection: close`: status line to body, as text.
pub fn get(addr: SocketAddr, target: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    // HTTP/1.0: one body, never chunked (Prometheus chunks long answers).
    write!(stream, "GET {target} HTTP/1.0\r\nHost: test\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

/// The body of a 200 answer.
pub fn body(addr: SocketAddr, target: &str) -> Result<String, String> {
    let text = get(addr, target).map_err(|e| e.to_string())?;
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") => {
            Ok(body.to_string())
        }
        _ => Err(text.lines().next().unwrap_or("").to_string()),
    }
}

/// A free loopback port's address (bound, then released).
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A child process, killed if the test fails before stopping it.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Guard {
    /// SIGTERM, then waits for a clean exit.
    pub fn stop(&mut self, what: &str) {
        // SAFETY: kill(2) on our child, not reaped yet.
        assert_eq!(unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) }, 0);
        let status = wait_exit_within(DEADLINE, &mut self.0, what);
        assert!(status.success(), "{what}: {status}");
    }
}

/// A `shadowtap run` tap on `lo` in front of `legacy`, replaying to `candidate`.
pub struct Tap {
    pub process: Guard,
    pub metrics: SocketAddr,
    pub report: PathBuf,
    pub out: PathBuf,
    pub stderr: PathBuf,
}

impl Tap {
    pub fn start(dir: &Path, name: &str, config: &Path, legacy: SocketAddr, candidate: SocketAddr) -> Tap {
        let metrics = free_addr();
        let (report, out) = (dir.join(format!("{name}.json")), dir.join(format!("{name}.jsonl")));
        let stderr_path = dir.join(format!("{name}.stderr"));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let process = Guard(
            Command::new(env!("CARGO_BIN_EXE_shadowtap"))
                .args(["run", "--config", config.to_str().unwrap(), "--interface", "lo"])
                .args(["--port", &legacy.port().to_string(), "--candidate", &format!("http://{candidate}")])
                .args(["--out", out.to_str().unwrap(), "--report", report.to_str().unwrap()])
                .args(["--metrics", &metrics.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap(),
        );
        wait_for_within(DEADLINE, "a tap's /healthz", || body(metrics, "/healthz"));
        Tap { process, metrics, report, out, stderr: stderr_path }
    }

    /// The end of its log, to say why a wait failed.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    /// The sum of a counter family on this tap's /metrics.
    pub fn counter_sum(&self, family: &str) -> u64 {
        let text = body(self.metrics, "/metrics").unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(family) && l[family.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

/// A Prometheus server on loopback scraping `targets` every second, with
/// `rules` loaded when given.
pub struct Prometheus {
    pub process: Guard,
    pub addr: SocketAddr,
}

impl Prometheus {
    pub fn start(binary: &Path, dir: &Path, targets: &[SocketAddr], rules: Option<&Path>) -> Prometheus {
        let addr = free_addr();
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let rule_files = rules.map_or(String::new(), |r| format!("rule_files: [\"{}\"]\n", r.display()));
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{rule_files}scrape_configs:\n  - job_name: shadowtap\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .unwrap();
        let stderr = std::fs::File::create(dir.join("prometheus.stderr")).unwrap();
        let process = Guard(
            Command::new(binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap(),
        );
        wait_for_within(DEADLINE, "Prometheus ready", || body(addr, "/-/ready"));
        Prometheus { process, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An instant query's result (the `data.result` JSON).
    pub fn query(&self, promql: &str) -> serde_json::Value {
        let text = body(self.addr, &format!("/api/v1/query?query={}", encode(promql))).unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        json["data"]["result"].clone()
    }

    /// Each scrape target's health and last error, to say why a wait failed.
    pub fn target_errors(&self) -> String {
        let text = body(self.addr, "/api/v1/targets").unwrap_or_else(|e| e);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let targets = json["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
        let said: Vec<String> =
            targets.iter().map(|t| format!("{} {} {}", t["scrapeUrl"], t["health"], t["lastError"])).collect();
        if said.is_empty() { text } else { said.join("; ") }
    }

    /// A query's `status` (`success`, or `error` for invalid PromQL).
    pub fn status(&self, promql: &str) -> String {
        let text = body(self.addr, &format!("/api/v1/query?query={}", encode(promql))).unwrap_or_else(|e| e);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        json["status"].as_str().map_or(text, str::to_string)
    }

    /// A query's single value, if it has one.
    pub fn scalar(&self, promql: &str) -> Option<f64> {
        self.query(promql).get(0)?["value"][1].as_str()?.parse().ok()
    }
}

/// A query string value, percent-encoded.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}
