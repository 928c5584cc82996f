//! Endpoints learned by the live daemon (`shadowtap run` capturing on
//! `lo`, as root like tests/live.rs): Reddit-shaped reads to a legacy
//! service on loopback, replayed to an identical candidate. Outcomes wait
//! until the names have settled, so every outcome line, the report and the
//! metrics carry the learned names; the report counts raw paths.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

#[path = "common/shapes.rs"]
mod shapes;
#[path = "common/wait.rs"]
mod wait;
use shapes::{Rng, identical_service, reddit};

const DEADLINE: Duration = Duration::from_secs(30);

/// The daemon, killed if the test fails before stopping it.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn get(addr: SocketAddr, target: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {target} HTTP/1.1\r\nHost: legacy\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n').filter(|l| l.ends_with('\n')).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_daemon_learns_names_and_every_output_carries_them() {
    let (legacy, candidate) = (identical_service(), identical_service());
    let dir = tempfile::tempdir().unwrap();
    let (out, report, config) =
        (dir.path().join("out.jsonl"), dir.path().join("report.json"), dir.path().join("shadowtap.toml"));
    std::fs::write(&config, "[naming]\nsettle_exchanges = 600\nsettle_s = 120\n").unwrap();
    let metrics = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let mut daemon = Guard(
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
    wait::wait_for_within(DEADLINE, "the daemon's /healthz", || match get(metrics, "/healthz") {
        Ok(text) if text.ends_with("ok\n") => Ok(()),
        other => Err(format!("{other:?}")),
    });
    std::thread::sleep(Duration::from_millis(300));

    let mut rng = Rng(0x11fe);
    let targets: Vec<String> = (0..800).map(|i| reddit(&mut rng, i)).collect();
    for (i, target) in targets.iter().enumerate() {
        get(legacy, target).unwrap();
        if i == 500 {
            // Not settled yet (600 needed): nothing may have gone out.
            std::thread::sleep(Duration::from_millis(500));
            assert!(lines(&out).is_empty(), "outcomes went out before the names settled");
        }
    }
    let seen = wait::wait_for_within(DEADLINE, "800 outcomes", || {
        let seen = lines(&out);
        if seen.len() >= targets.len() { Ok(seen) } else { Err(format!("{} so far", seen.len())) }
    });
    let expected = set(&[
        "GET /api/info",
        "GET /r/{name}/comments/{id}/{slug}/",
        "GET /r/{name}/hot.json",
        "GET /r/{name}/new.json",
        "GET /r/{name}/top.json",
        "GET /user/{name}/about.json",
    ]);
    let named: BTreeSet<String> = seen.iter().map(|l| l["endpoint"].as_str().unwrap().to_string()).collect();
    assert_eq!(named, expected, "outcome lines");
    let (_, scrape) =
        get(metrics, "/metrics").unwrap().split_once("\r\n\r\n").map(|(h, b)| (h.to_string(), b.to_string())).unwrap();
    let labelled: BTreeSet<String> = scrape
        .lines()
        .filter(|l| l.starts_with("shadowtap_outcomes_total{"))
        .filter_map(|l| l.split("endpoint=\"").nth(1)?.split('"').next().map(str::to_string))
        .collect();
    assert_eq!(labelled, expected, "metric labels");
    // The same report as a page, live, on the metrics address.
    let page = get(metrics, "/report").unwrap();
    let (head, html) = page.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200") && head.contains("text/html"), "{head}");
    for name in &expected {
        assert!(html.contains(&format!("data-endpoint=\"{name}\"")), "{name} has no plot on /report");
    }
    assert_eq!(html.matches("class=\"latency-plot\"").count(), expected.len(), "one plot per endpoint");

    // SAFETY: kill(2) on our child, not reaped yet.
    assert_eq!(unsafe { libc::kill(daemon.0.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let status = wait::wait_exit_within(DEADLINE, &mut daemon.0, "the daemon after SIGTERM");
    assert!(status.success());
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let endpoints = report["endpoints"].as_array().unwrap();
    let reported: BTreeSet<String> = endpoints.iter().map(|e| e["endpoint"].as_str().unwrap().to_string()).collect();
    assert_eq!(reported, expected, "report");
    for e in endpoints {
        let name = e["endpoint"].as_str().unwrap();
        let distinct: BTreeSet<&str> = seen
            .iter()
            .filter(|l| l["endpoint"] == name)
            .map(|l| l["uri"].as_str().unwrap().split('?').next().unwrap())
            .collect();
        assert_eq!(e["raw_paths"], distinct.len() as u64, "{name}");
    }
    let posts = endpoints.iter().find(|e| e["endpoint"] == "GET /r/{name}/comments/{id}/{slug}/").unwrap();
    assert_eq!((&posts["count"], &posts["match"]), (&200.into(), &200.into()), "{posts}");
}
