//! The live daemon says when it loses something or stops working: our own
//! replays captured again (a loop through a candidate that calls the
//! tapped service) are counted; outcome lines that cannot be written are
//! counted and make `/healthz` unhealthy; a replay dispatcher that ended
//! makes `/healthz` unhealthy and stops the systemd watchdog pings. Real
//! capture on `lo`: they need root or CAP_NET_RAW (see `live.rs`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use shadowtap::demo::{Flavor, send_traffic};

#[path = "common/demo_service.rs"]
mod demo_service;
#[path = "common/needs.rs"]
mod needs;
#[path = "common/wait.rs"]
mod wait;
use demo_service::service;

const DEADLINE: Duration = Duration::from_secs(20);

fn demo_traffic(target: SocketAddr, n: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(send_traffic(target, n));
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
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

/// A Prometheus counter's value in a scrape (0 when absent).
fn counter(scrape: &str, name: &str) -> u64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap_or_else(|_| panic!("{name}: {v}")) as u64)
}

/// `shadowtap run` on `lo`, killed when the test ends.
struct Daemon {
    child: Child,
    metrics: SocketAddr,
    stderr: PathBuf,
}

impl Daemon {
    /// Starts `run --interface lo --metrics ADDR ARGS` (with `env`) and
    /// returns once /healthz answers.
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let metrics = free_addr();
        let stderr = dir.join("daemon.stderr");
        let mut command = Command::new(env!("CARGO_BIN_EXE_shadowtap"));
        command.args(["run", "--interface", "lo", "--metrics", &metrics.to_string()]).args(args);
        command.env("SHADOWTAP_LOG", "info").envs(env.iter().copied());
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(&stderr).unwrap());
        let child = command.spawn().unwrap();
        let mut daemon = Daemon { child, metrics, stderr };
        wait::wait_for_within(DEADLINE, "the daemon's /healthz", || {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("the daemon exited ({status}) before being ready:\n{}", daemon.stderr_text());
            }
            daemon.get("/healthz").map(|_| ()).map_err(|e| e.to_string())
        });
        // /healthz answers once the capture is open; give the reader a moment.
        std::thread::sleep(Duration::from_millis(300));
        daemon
    }

    fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.metrics, path)
    }

    fn scrape(&self) -> String {
        self.get("/metrics").unwrap().1
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM; the exit code.
    fn stop(&mut self) -> Option<i32> {
        // SAFETY: kill(2) on our child, not reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        wait::wait_exit_within(DEADLINE, &mut self.child, "the daemon after SIGTERM").code()
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

/// A candidate that is a plain TCP forwarder to `upstream`: what it is
/// sent reaches `upstream` unchanged, our marker header included (a
/// candidate calling the tapped service: the loop the marker catches).
fn forwarder_to(upstream: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(upstream) else { continue };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut client, mut server) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut s2);
                let _ = s2.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut client);
                let _ = client.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

/// The candidate forwards to the legacy service the daemon taps: every
/// replay is captured again with the marker. Each is counted once as a
/// loop (report and metric), none is replayed again, and the production
/// requests all have their outcomes.
#[test]
fn replays_captured_again_are_counted_as_loops() {
    let Some(()) = needs::met("live_health::replays_captured_again_are_counted_as_loops", needs::live_capture()) else {
        return;
    };
    let legacy = service(Flavor::Legacy);
    let candidate = forwarder_to(legacy);
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = (dir.path().join("out.jsonl"), dir.path().join("report.json"));
    let port = legacy.port().to_string();
    let candidate_url = format!("http://{candidate}");
    let args = ["--port", &port, "--candidate", &candidate_url, "--out", out.to_str().unwrap()];
    let mut daemon = Daemon::start(dir.path(), &[&args[..], &["--report", report.to_str().unwrap()]].concat(), &[]);
    let n = 50;
    let replayed = (n - n / 10) as u64; // the demo's POSTs are not replayed
    demo_traffic(legacy, n);
    let scrape = wait::wait_for_within(DEADLINE, "every replay seen again", || {
        let scrape = daemon.scrape();
        if counter(&scrape, "shadowtap_replay_loops_total") >= replayed { Ok(scrape) } else { Err(scrape) }
    });
    // Anything replayed twice would have shown up by now.
    std::thread::sleep(Duration::from_millis(500));
    let scrape_later = daemon.scrape();
    assert_eq!(counter(&scrape_later, "shadowtap_replay_loops_total"), replayed, "{scrape}");
    assert_eq!(counter(&scrape_later, "shadowtap_exchanges_total"), n as u64 + replayed, "{scrape_later}");
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.stderr_text());
    let lines = std::fs::read_to_string(&out).unwrap().lines().count() as u64;
    assert_eq!(lines, n as u64, "an outcome per production exchange, none for the loops");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["totals"]["replay_loops"], replayed, "{}", report["totals"]);
}

/// `--out /dev/full`: every outcome line fails to be written (ENOSPC).
/// Each is counted (`shadowtap_outcome_write_errors_total`), `/healthz`
/// answers 503 with the reason, the report still has every outcome, and
/// the daemon exits 2 at SIGTERM, naming the lost lines.
#[test]
fn outcome_lines_that_cannot_be_written_are_counted_and_unhealthy() {
    let Some(()) = needs::met(
        "live_health::outcome_lines_that_cannot_be_written_are_counted_and_unhealthy",
        needs::live_capture(),
    ) else {
        return;
    };
    let legacy = service(Flavor::Legacy);
    let candidate = service(Flavor::Legacy);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let (port, candidate_url) = (legacy.port().to_string(), format!("http://{candidate}"));
    let args =
        ["--port", &port, "--candidate", &candidate_url, "--out", "/dev/full", "--report", report.to_str().unwrap()];
    let mut daemon = Daemon::start(dir.path(), &args, &[]);
    assert_eq!(daemon.get("/healthz").unwrap(), (200, "ok\n".to_string()));
    let n = 30;
    demo_traffic(legacy, n);
    let scrape = wait::wait_for_within(DEADLINE, "every outcome line counted as lost", || {
        let scrape = daemon.scrape();
        if counter(&scrape, "shadowtap_outcome_write_errors_total") >= n as u64 { Ok(scrape) } else { Err(scrape) }
    });
    assert_eq!(counter(&scrape, "shadowtap_outcome_write_errors_total"), n as u64, "{scrape}");
    let (status, body) = daemon.get("/healthz").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("outcome lines cannot be written") && body.contains("No space left"), "{body}");
    assert!(body.contains(&format!("{n} lines lost")), "{body}");
    assert_eq!(daemon.stop(), Some(2), "lost lines are a failed run:\n{}", daemon.stderr_text());
    assert!(
        daemon.stderr_text().contains(&format!("{n} outcome lines could not be written")),
        "{}",
        daemon.stderr_text()
    );
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["totals"]["count"], n as u64, "the report still has every outcome");
}

/// The watchdog's side of systemd: a datagram socket as NOTIFY_SOCKET.
struct Notifications(std::os::unix::net::UnixDatagram);

impl Notifications {
    fn bind(path: &Path) -> Notifications {
        let socket = std::os::unix::net::UnixDatagram::bind(path).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        Notifications(socket)
    }

    /// WATCHDOG=1 pings received within `window`.
    fn watchdog_pings(&self, window: Duration) -> usize {
        let start = std::time::Instant::now();
        let (mut pings, mut buf) = (0, [0u8; 512]);
        while start.elapsed() < window {
            if let Ok(n) = self.0.recv(&mut buf) {
                pings += String::from_utf8_lossy(&buf[..n]).lines().filter(|l| *l == "WATCHDOG=1").count();
            }
        }
        pings
    }
}

/// A replay dispatcher that ended (the test-only hook ends it after 5
/// exchanges): `/healthz` answers 503 naming it, the watchdog pings stop
/// (they came every 100 ms before), exchanges after it are counted as
/// drops, and the daemon exits 2 at SIGTERM.
#[test]
fn a_dead_dispatcher_is_unhealthy_and_stops_the_watchdog() {
    let Some(()) =
        needs::met("live_health::a_dead_dispatcher_is_unhealthy_and_stops_the_watchdog", needs::live_capture())
    else {
        return;
    };
    let legacy = service(Flavor::Legacy);
    let candidate = service(Flavor::Legacy);
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notifications = Notifications::bind(&notify_path);
    let out = dir.path().join("out.jsonl");
    let (port, candidate_url) = (legacy.port().to_string(), format!("http://{candidate}"));
    let args = ["--port", &port, "--candidate", &candidate_url, "--out", out.to_str().unwrap()];
    let env = [
        ("NOTIFY_SOCKET", notify_path.to_str().unwrap()),
        ("WATCHDOG_USEC", "200000"),
        ("SHADOWTAP_TEST_KILL_DISPATCHER_AFTER", "5"),
    ];
    let mut daemon = Daemon::start(dir.path(), &args, &env);
    assert!(notifications.watchdog_pings(Duration::from_millis(500)) >= 2, "pinged while healthy");
    assert_eq!(daemon.get("/healthz").unwrap().0, 200);
    // As many as the hook lets through: one more could reach the queue
    // after the dispatcher ended and be counted as a drop too.
    let before = 5;
    demo_traffic(legacy, before);
    let body = wait::wait_for_within(DEADLINE, "/healthz unhealthy", || match daemon.get("/healthz") {
        Ok((503, body)) => Ok(body),
        other => Err(format!("{other:?}")),
    });
    assert!(body.contains("the replay dispatcher ended"), "{body}");
    notifications.watchdog_pings(Duration::from_millis(150)); // one already in flight
    assert_eq!(notifications.watchdog_pings(Duration::from_millis(800)), 0, "no ping once replay is dead");
    let after = 30;
    demo_traffic(legacy, after);
    let scrape = wait::wait_for_within(DEADLINE, "every exchange rebuilt", || {
        let scrape = daemon.scrape();
        let rebuilt = counter(&scrape, "shadowtap_exchanges_total") >= (before + after) as u64;
        if rebuilt && counter(&scrape, "shadowtap_replay_queue_drops_total") >= after as u64 {
            Ok(scrape)
        } else {
            Err(scrape)
        }
    });
    let drops = counter(&scrape, "shadowtap_replay_queue_drops_total");
    assert_eq!(drops, after as u64, "exchanges after the dispatcher's end are counted as drops:\n{scrape}");
    assert_eq!(daemon.stop(), Some(2), "{}", daemon.stderr_text());
    assert!(daemon.stderr_text().contains("the replay dispatcher ended"), "{}", daemon.stderr_text());
}
