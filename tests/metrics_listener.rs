//! The metrics listener of `shadowtap run` (`/metrics`, `/healthz`,
//! `/report`) under idle connections: 200 connections that send nothing do
//! not stop `/healthz` from answering at once; past its bound (64) the
//! oldest are closed at once, and the rest after the idle timeout (10 s).

#[path = "common/needs.rs"]
mod needs;
#[path = "common/wait.rs"]
mod wait;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_shadowtap");
const IDLE: usize = 200;
const BOUND: usize = 64;
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Has the server closed `stream` (EOF or reset) within `wait`?
fn closed_within(mut stream: &TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait.max(Duration::from_millis(1)))).unwrap();
    match stream.read(&mut [0u8; 16]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn idle_connections_are_bounded_and_timed_out_and_healthz_still_answers() {
    if needs::met("idle_connections_are_bounded_and_timed_out_and_healthz_still_answers", needs::live_capture())
        .is_none()
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("shadowtap.toml");
    std::fs::write(&config, "").unwrap();
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (port, candidate) = (free_port().to_string(), format!("http://127.0.0.1:{}", free_port()));
    let out = dir.path().join("out.jsonl");
    let mut daemon = Daemon(
        Command::new(BIN)
            .args(["run", "--config", config.to_str().unwrap(), "--interface", "lo", "--port", &port])
            .args(["--candidate", &candidate, "--metrics", &metrics.to_string(), "--out", out.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait::wait_for_within(Duration::from_secs(30), "the daemon's /healthz", || {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            panic!("the daemon exited ({status})");
        }
        http_get(metrics, "/healthz").map_err(|e| e.to_string())
    });

    let opened = Instant::now();
    let idle: Vec<TcpStream> = (0..IDLE).map(|_| TcpStream::connect(metrics).unwrap()).collect();
    let asked = Instant::now();
    let answer = http_get(metrics, "/healthz").unwrap();
    assert_eq!(answer, (200, "ok\n".to_string()));
    assert!(asked.elapsed() < Duration::from_secs(2), "/healthz took {:?} behind idle connections", asked.elapsed());

    // Past the bound the oldest went at once (the /healthz connection
    // counts too); the newest stay open until the idle timeout.
    std::thread::sleep(Duration::from_millis(300));
    let at_once = idle.iter().filter(|s| closed_within(s, Duration::ZERO)).count();
    assert!(at_once > IDLE - BOUND, "only {at_once} of {IDLE} idle connections closed past the bound");
    assert!(opened.elapsed() < IDLE_TIMEOUT / 2, "the check ran too late to tell eviction from the timeout");
    let newest_open = idle.iter().rev().take(BOUND / 2).filter(|s| !closed_within(s, Duration::ZERO)).count();
    assert_eq!(newest_open, BOUND / 2, "the newest idle connections stay open until their timeout");
    for (i, stream) in idle.iter().enumerate() {
        let left = (IDLE_TIMEOUT + Duration::from_secs(5)).saturating_sub(opened.elapsed());
        assert!(closed_within(stream, left), "idle connection {i} still open {:?} after it opened", opened.elapsed());
    }
    assert!(opened.elapsed() >= IDLE_TIMEOUT - Duration::from_secs(1), "closed before the idle timeout");
    assert_eq!(http_get(metrics, "/healthz").unwrap().0, 200);
}
