//! A capture that sees one direction only (a mirror port with one leg):
//! keep-alive connections pipelining requests that are never answered.
//! `pairs` keeps a bounded number waiting and still prints every request,
//! unanswered. The capture is made here by bench/gen_one_direction.py, the
//! script of the benchmark, at a small size.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const CONNECTIONS: usize = 5;
const REQUESTS: usize = 2000;
/// `[capture] max_waiting_per_connection`'s default.
const PER_CONNECTION: usize = 1000;

fn one_direction_capture(dir: &Path) -> std::path::PathBuf {
    let pcap = dir.join("one-direction.pcap");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/gen_one_direction.py");
    let status = Command::new("python3")
        .arg(script)
        .args(["--connections", &CONNECTIONS.to_string(), "--requests", &REQUESTS.to_string()])
        .arg("--out")
        .arg(&pcap)
        .status()
        .expect("python3 runs");
    assert!(status.success());
    pcap
}

/// The number before `what` in the summary line that has it.
fn summary_figure(stderr: &str, what: &str) -> u64 {
    let line = stderr.lines().find(|l| l.contains(what)).unwrap_or_else(|| panic!("no `{what}` in {stderr}"));
    let before = &line[..line.find(what).unwrap()];
    let number = before.trim_end().rsplit(' ').next().unwrap();
    number.parse().unwrap_or_else(|_| panic!("no number before `{what}` in {line}"))
}

#[test]
fn requests_never_answered_are_bounded_and_every_one_comes_out_unanswered() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = one_direction_capture(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_shadowtap")).arg("pairs").arg(&pcap).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let mut seen = BTreeSet::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let exchange: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(exchange["response"].is_null(), "{line}");
        let client = exchange["client"].as_str().unwrap().to_string();
        let uri = exchange["request"]["uri"].as_str().unwrap().to_string();
        assert!(seen.insert((client, uri)), "printed twice: {line}");
    }
    let clients: BTreeSet<_> = seen.iter().map(|(c, _)| c.clone()).collect();
    assert_eq!((clients.len(), seen.len()), (CONNECTIONS, CONNECTIONS * REQUESTS));
    for client in &clients {
        for i in 0..REQUESTS {
            assert!(seen.contains(&(client.clone(), format!("/items/{i}"))), "{client} /items/{i} missing");
        }
    }
    let unanswered = stderr.split("unanswered requests ").nth(1).and_then(|rest| rest.split(',').next());
    assert_eq!(unanswered, Some("10000"), "{stderr}");
    let waiting = summary_figure(&stderr, "at once");
    assert!(waiting <= (CONNECTIONS * PER_CONNECTION) as u64, "{waiting} waited at once: {stderr}");
    let sent_out = summary_figure(&stderr, "sent out unanswered by the bound");
    assert_eq!(sent_out, (CONNECTIONS * (REQUESTS - PER_CONNECTION)) as u64, "{stderr}");
}
