//! `shadowtap report`: merging reports. The demo capture (pcaps/demo.pcap,
//! eight connections to the demo's legacy service) is split by connection
//! into two halves, as two hosts would each see a share of the traffic;
//! the whole and each half are replayed through the binary to the demo's
//! candidate (tests/common/demo_service.rs: planted diffs, a 500, a slow
//! endpoint) on loopback, and the halves' reports merged.
//!
//! What must hold: the merged counts are the whole's, exactly; the merged
//! recorded percentiles are the whole's (the same captured latencies),
//! the candidate's are those of every latency the halves measured (from
//! their outcome lines) within HdrHistogram's precision; noise adds up with
//! its samples; readiness is judged again on the merged figures.

#[path = "common/demo_service.rs"]
mod demo_service;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use shadowtap::demo::Flavor;

const BIN: &str = env!("CARGO_BIN_EXE_shadowtap");
const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/demo.pcap");

/// Classic little-endian pcap of Ethernet frames: the global header and
/// each record, split by TCP connection (first seen: half 0, next: half 1,
/// and so on), written as two files.
fn split_by_connection(pcap: &Path, halves: [&Path; 2]) {
    let bytes = std::fs::read(pcap).unwrap();
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 1, "Ethernet");
    let mut out = [bytes[..24].to_vec(), bytes[..24].to_vec()];
    let mut connections: Vec<(u16, u16)> = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let record = &bytes[at..at + 16 + len];
        let frame = &record[16..];
        let ip = &frame[14..];
        assert_eq!(&frame[12..14], &[0x08, 0x00], "IPv4");
        let tcp = &ip[usize::from(ip[0] & 0x0f) * 4..];
        let (a, b) = (u16::from_be_bytes([tcp[0], tcp[1]]), u16::from_be_bytes([tcp[2], tcp[3]]));
        let key = (a.min(b), a.max(b));
        let index = connections.iter().position(|k| *k == key).unwrap_or_else(|| {
            connections.push(key);
            connections.len() - 1
        });
        out[index % 2].extend_from_slice(record);
        at += 16 + len;
    }
    assert!(connections.len() >= 4, "the demo capture has several connections");
    for (path, data) in halves.iter().zip(out) {
        std::fs::write(path, data).unwrap();
    }
}

struct Replayed {
    report: Value,
    report_path: PathBuf,
    lines: Vec<Value>,
}

fn replay(dir: &Path, name: &str, pcap: &Path, candidate: &str, config: &Path) -> Replayed {
    let (out, report_path) = (dir.join(format!("{name}.jsonl")), dir.join(format!("{name}.json")));
    let run = Command::new(BIN)
        .arg("replay")
        .arg(pcap)
        .args(["--candidate", candidate, "--config"])
        .arg(config)
        .arg("--out")
        .arg(&out)
        .arg("--report")
        .arg(&report_path)
        .output()
        .unwrap();
    assert!(run.status.success(), "replay {name}: {}", String::from_utf8_lossy(&run.stderr));
    let lines = std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let report = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    Replayed { report, report_path, lines }
}

fn report_command(args: &[&Path], extra: &[&str]) -> Output {
    Command::new(BIN).arg("report").args(args).args(extra).output().unwrap()
}

fn by_endpoint(report: &Value) -> BTreeMap<String, &Value> {
    report["endpoints"].as_array().unwrap().iter().map(|e| (e["endpoint"].as_str().unwrap().to_string(), e)).collect()
}

/// The exact value at quantile `q` of `values` as HdrHistogram ranks it.
fn exact_quantile(values: &mut [u64], q: f64) -> u64 {
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).max(1);
    values[rank - 1]
}

/// The blockers of a `why` that do not depend on timing (counts only).
fn count_blockers(why: &str) -> Vec<&str> {
    why.split("; ")
        .filter(|b| {
            (b.contains(" compared, ") && b.contains("needed")) || b.contains(" diff (at ") || b.ends_with(" error")
        })
        .collect()
}

#[test]
fn two_halves_of_a_capture_merge_to_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let candidate = format!("http://{}", demo_service::service(Flavor::Candidate));
    let config = dir.path().join("shadowtap.toml");
    // Few exchanges per endpoint in the demo: judge on 10 so that some are
    // ready and some are not for reasons of their own.
    std::fs::write(&config, "[verdict]\nmin_compared = 10\n[latency]\np99_margin_ms = 30\n").unwrap();
    let halves = [dir.path().join("a.pcap"), dir.path().join("b.pcap")];
    split_by_connection(Path::new(DEMO), [&halves[0], &halves[1]]);

    let whole = replay(dir.path(), "whole", Path::new(DEMO), &candidate, &config);
    let a = replay(dir.path(), "a", &halves[0], &candidate, &config);
    let b = replay(dir.path(), "b", &halves[1], &candidate, &config);
    let merged_path = dir.path().join("merged.json");
    let run = report_command(&[&a.report_path, &b.report_path], &["--json", merged_path.to_str().unwrap()]);
    assert!(run.status.success(), "report: {}", String::from_utf8_lossy(&run.stderr));
    let table = String::from_utf8(run.stdout).unwrap();
    let merged: Value = serde_json::from_str(&std::fs::read_to_string(&merged_path).unwrap()).unwrap();

    let (whole_e, merged_e, a_e, b_e) =
        (by_endpoint(&whole.report), by_endpoint(&merged), by_endpoint(&a.report), by_endpoint(&b.report));
    assert_eq!(whole_e.keys().collect::<Vec<_>>(), merged_e.keys().collect::<Vec<_>>(), "same endpoints");
    let mut some_ready = false;
    let mut some_not = false;
    for (name, w) in &whole_e {
        let m = merged_e[name];
        for key in ["count", "match", "diff", "skipped", "error", "noise", "race", "explanations", "top_fields"] {
            assert_eq!(m[key], w[key], "{name}: {key}");
        }
        for key in ["recorded_p50_us", "recorded_p90_us", "recorded_p99_us", "recorded_max_us"] {
            assert_eq!(m[key], w[key], "{name}: {key} (the same captured latencies)");
        }
        // The candidate's latencies differ from run to run: the merged
        // percentiles are those of every latency the two halves measured.
        let mut measured: Vec<u64> = a
            .lines
            .iter()
            .chain(&b.lines)
            .filter(|l| {
                l["endpoint"] == name.as_str()
                    && ["match", "diff", "noise", "race"].contains(&l["outcome"].as_str().unwrap())
            })
            .filter_map(|l| l["candidate_latency_us"].as_u64())
            .map(|us| us.max(1))
            .collect();
        if measured.is_empty() {
            assert!(m["candidate_p99_us"].is_null(), "{name}: nothing measured");
        }
        for (q, key) in [(0.5, "candidate_p50_us"), (0.9, "candidate_p90_us"), (0.99, "candidate_p99_us")] {
            if measured.is_empty() {
                continue;
            }
            let exact = exact_quantile(&mut measured, q) as f64;
            let got = m[key].as_u64().unwrap() as f64;
            assert!((got - exact).abs() <= exact * 0.001 + 1.0, "{name}: {key} {got} vs exact {exact}");
        }
        // Noise adds up with its samples.
        let samples = |e: &BTreeMap<String, &Value>| e.get(name).map_or(0, |e| e["noise_samples"].as_u64().unwrap());
        assert_eq!(m["noise_samples"].as_u64().unwrap(), samples(&a_e) + samples(&b_e), "{name}: noise samples");
        // Judged again: the count-based blockers are the whole's.
        let why = m["why"].as_str().unwrap();
        assert_eq!(count_blockers(why), count_blockers(w["why"].as_str().unwrap()), "{name}");
        assert_eq!(m["ready"], w["ready"], "{name}: merged {why:?} vs whole {:?}", w["why"]);
        if m["ready"] == true {
            some_ready = true;
        } else {
            some_not = true;
            assert!(table.contains(&format!("not ready: {name}: {why}")), "the table says why:\n{table}");
        }
    }
    assert!(some_ready && some_not, "the demo has ready and not ready endpoints: {table}");
    for key in ["count", "match", "diff", "skipped", "error", "noise", "race", "ready_endpoints"] {
        assert_eq!(merged["totals"][key], whole.report["totals"][key], "totals: {key}");
    }
    assert_eq!(merged["equivalences"], whole.report["equivalences"]);

    // Other criteria: everything is judged again, and --verdict exits 1.
    let strict = dir.path().join("strict.toml");
    std::fs::write(&strict, "[verdict]\nmin_compared = 100000\n").unwrap();
    let run = report_command(&[&a.report_path, &b.report_path], &["--config", strict.to_str().unwrap(), "--verdict"]);
    assert_eq!(run.status.code(), Some(1), "{}", String::from_utf8_lossy(&run.stderr));
    let text = String::from_utf8(run.stdout).unwrap();
    assert!(text.contains("100000 needed") && text.contains("verdict: not ready"), "{text}");
    // The same report twice: twice the counts.
    let run = report_command(&[&whole.report_path, &whole.report_path], &["--json", merged_path.to_str().unwrap()]);
    assert!(run.status.success());
    let doubled: Value = serde_json::from_str(&std::fs::read_to_string(&merged_path).unwrap()).unwrap();
    assert_eq!(doubled["totals"]["count"].as_u64().unwrap(), 2 * whole.report["totals"]["count"].as_u64().unwrap());
}

#[test]
fn reports_that_cannot_be_merged_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // A capture given by mistake.
    let run = report_command(&[Path::new(DEMO)], &[]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(stderr.contains("not a shadowtap report") && stderr.trim().lines().count() == 1, "{stderr}");
    // A report without histograms (older shadowtap): percentiles cannot be merged.
    let old = dir.path().join("old.json");
    std::fs::write(
        &old,
        r#"{"endpoints":[{"endpoint":"GET /a","count":1,"match":1,"diff":0,"skipped":0,"error":0,"noise":0,"race":0,
        "recorded_p50_us":10,"candidate_p50_us":12,
        "load":{"recorded":{"peak_in_flight":1,"mean_in_flight":1.0},"replay":{"peak_in_flight":1,"mean_in_flight":1.0},"ratio":1.0,"latency_judged":true},
        "health":{"started_late":0,"queue_drops":0,"capture_gaps":0}}],
        "totals":{"replay_queue_drops":0},
        "load":{"recorded":{"peak_in_flight":1,"mean_in_flight":1.0},"replay":{"peak_in_flight":1,"mean_in_flight":1.0},"ratio":1.0,"max_load_ratio":2.0,"kernel_drops":0}}"#,
    )
    .unwrap();
    let run = report_command(&[&old], &[]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(stderr.contains("no latency histograms"), "{stderr}");
    // A histogram that claims a huge payload is refused, not allocated.
    let bad = std::fs::read_to_string(&old).unwrap().replace(
        r#""candidate_p50_us":12,"#,
        r#""candidate_p50_us":12,"recorded_histogram":"HISTE/////AAAAAAAAAAAwAAAAAAAAABAAAAAAAAAAI/8AAAAAAAAAI=","candidate_histogram":"HISTE/////AAAAAAAAAAAwAAAAAAAAABAAAAAAAAAAI/8AAAAAAAAAI=","#,
    );
    std::fs::write(&old, bad).unwrap();
    let run = report_command(&[&old], &[]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(stderr.contains("recorded histogram: not an HdrHistogram V2"), "{stderr}");
}
