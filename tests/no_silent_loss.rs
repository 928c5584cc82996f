//! Nothing is dropped without being counted: requests that carry the
//! replay marker (our own replays captured again: a loop) are counted in
//! the report, and compressed captures (`.pcap.gz`, `.pcapng.gz`) read
//! exactly as their uncompressed originals, a truncated one being a
//! one-line error. (The live side, a loop through a forwarding candidate,
//! unwritable outcome lines and a dead dispatcher: `live_health.rs`.)

use std::path::Path;
use std::process::{Command, Output};

fn shadowtap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shadowtap")).args(args).output().unwrap()
}

fn demo_pcap() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/demo.pcap")
}

fn lines_of(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The marker header is configurable; naming one that the 30 POSTs of the
/// demo capture carry (Content-Length) makes them look like our replays:
/// each is counted as a loop in the report's totals and the table, none is
/// replayed, and every other exchange has its outcome.
#[test]
fn requests_carrying_the_marker_are_counted_as_loops_not_dropped_silently() {
    let dir = tempfile::tempdir().unwrap();
    let (config, out, report) =
        (dir.path().join("c.toml"), dir.path().join("out.jsonl"), dir.path().join("report.json"));
    std::fs::write(&config, "[candidate]\nmarker_header = \"Content-Length\"\ntimeout_ms = 2000\n").unwrap();
    let pairs = shadowtap(&["pairs", demo_pcap()]);
    let carrying = String::from_utf8_lossy(&pairs.stdout)
        .lines()
        .filter(|l| l.contains("[\"content-length\",") && l.find("[\"content-length\",") < l.find("\"response\""))
        .count();
    assert_eq!(carrying, 30, "the demo capture's POSTs carry a body");
    let run = shadowtap(&[
        "replay",
        demo_pcap(),
        "--candidate",
        "http://127.0.0.1:1",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let lines = lines_of(&out);
    assert_eq!(lines.len(), 300 - carrying, "every exchange but the loops has an outcome");
    assert!(lines.iter().all(|l| l["method"] != "POST"), "no loop was replayed");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["totals"]["replay_loops"], carrying as u64, "{}", report["totals"]);
    assert!(stdout.contains(&format!("captured again: a loop), not replayed: {carrying}")), "{stdout}");
    // Merged reports add the loops up.
    let merged = dir.path().join("merged.json");
    let report_path = dir.path().join("report.json");
    let merge = shadowtap(&[
        "report",
        report_path.to_str().unwrap(),
        report_path.to_str().unwrap(),
        "--json",
        merged.to_str().unwrap(),
    ]);
    assert!(merge.status.success(), "{}", String::from_utf8_lossy(&merge.stderr));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(json["totals"]["replay_loops"], 2 * carrying as u64, "{}", json["totals"]);
}
