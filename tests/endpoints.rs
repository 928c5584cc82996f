//! Endpoints learned from the traffic, end to end: a capture of generated
//! traffic shaped like Reddit's URLs (posts, fullname lookups, users,
//! listings) and like other real APIs (GitHub issues, dated archives,
//! e-mail addressed resources, base62 short links) is written as a pcap
//! here, then `shadowtap endpoints` must print the templates a person
//! would write, the same from either half of the capture and on every
//! run, and `shadowtap replay` to an identical service on loopback must
//! report a handful of endpoints with enough comparisons for a verdict.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

#[path = "common/shapes.rs"]
mod shapes;
use shapes::{Rng, identical_service, others, reddit, write_pcap};

fn shadowtap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shadowtap")).args(args).output().unwrap()
}

/// The `template = "..."` lines of `shadowtap endpoints` output.
fn templates(toml: &str) -> BTreeSet<String> {
    toml.lines().filter_map(|l| l.strip_prefix("template = ")).map(|t| t.trim_matches('"').to_string()).collect()
}

fn endpoints_of(pcap: &Path) -> String {
    let out = shadowtap(&["endpoints", pcap.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// 800 requests in each family, interleaved as traffic would be.
fn traffic() -> Vec<String> {
    let (mut a, mut b) = (Rng(0x5eed), Rng(0xfeed));
    (0..800).flat_map(|i| [reddit(&mut a, i), others(&mut b, i)]).collect()
}

const EXPECTED: &[&str] = &[
    "GET /api/info",
    "GET /archive/{year}/{month}/{day}",
    "GET /r/{name}/comments/{id}/{slug}/",
    "GET /r/{name}/hot.json",
    "GET /r/{name}/new.json",
    "GET /r/{name}/top.json",
    "GET /repos/{name}/{name}/issues/{id}",
    "GET /s/{id}",
    "GET /user/{name}/about.json",
    "GET /users/{email}/prefs",
];

#[test]
fn learned_templates_are_what_a_person_would_write_and_stable_across_halves_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let targets = traffic();
    let (whole, first, second) =
        (dir.path().join("whole.pcap"), dir.path().join("first.pcap"), dir.path().join("second.pcap"));
    write_pcap(&whole, &targets);
    write_pcap(&first, &targets[..targets.len() / 2]);
    write_pcap(&second, &targets[targets.len() / 2..]);

    let printed = endpoints_of(&whole);
    assert_eq!(templates(&printed), set(EXPECTED), "{printed}");
    assert!(printed.contains("# 200 requests, 200 distinct paths, e.g. /archive/"), "{printed}");
    assert_eq!(endpoints_of(&whole), printed, "a second run printed something else");
    assert_eq!(templates(&endpoints_of(&first)), set(EXPECTED), "first half");
    assert_eq!(templates(&endpoints_of(&second)), set(EXPECTED), "second half");
}

#[test]
fn replay_reports_few_endpoints_with_enough_comparisons_and_pinned_templates_agree() {
    let dir = tempfile::tempdir().unwrap();
    let targets = traffic();
    let pcap = dir.path().join("capture.pcap");
    write_pcap(&pcap, &targets);
    let candidate = format!("http://{}", identical_service());
    let run = |extra: &[&str], name: &str| -> (Vec<serde_json::Value>, serde_json::Value) {
        let (out, report) = (dir.path().join(format!("{name}.jsonl")), dir.path().join(format!("{name}.json")));
        let mut args = vec!["replay", pcap.to_str().unwrap(), "--candidate", &candidate];
        let (out_s, report_s) = (out.to_str().unwrap().to_string(), report.to_str().unwrap().to_string());
        args.extend(["--out", &out_s, "--report", &report_s]);
        args.extend(extra);
        let result = shadowtap(&args);
        assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
        let lines = std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (lines, serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap())
    };
    let (lines, report) = run(&[], "learned");
    assert_eq!(lines.len(), targets.len());
    let named: BTreeSet<String> = lines.iter().map(|l| l["endpoint"].as_str().unwrap().to_string()).collect();
    assert_eq!(named, set(EXPECTED), "outcome lines carry the learned names");
    let endpoints = report["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), EXPECTED.len());
    for e in endpoints {
        let name = e["endpoint"].as_str().unwrap();
        assert_eq!(e["diff"], 0, "{e}");
        let distinct: BTreeSet<&str> = lines
            .iter()
            .filter(|l| l["endpoint"] == name)
            .map(|l| l["uri"].as_str().unwrap().split('?').next().unwrap())
            .collect();
        assert_eq!(e["raw_paths"], distinct.len() as u64, "{name}");
        if !name.starts_with("GET /r/{name}/") || name.contains("comments") {
            // 200 requests each, all compared: enough for a verdict (whether
            // it is ready also depends on this loaded machine's latency).
            assert_eq!((&e["count"], &e["match"]), (&200.into(), &200.into()), "{e}");
            assert!(!e["why"].as_str().unwrap().contains("needed"), "{e}");
        }
    }
    // Pinned: the printed templates as the only configuration, learning off.
    let pinned = dir.path().join("templates.toml");
    let out = shadowtap(&["endpoints", pcap.to_str().unwrap(), "--out", pinned.to_str().unwrap()]);
    assert!(out.status.success() && out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[naming]\nlearn = false\ninclude = [\"templates.toml\"]\n").unwrap();
    let (pinned_lines, _) = run(&["--config", config.to_str().unwrap()], "pinned");
    let by_uri = |lines: &[serde_json::Value]| -> std::collections::BTreeMap<String, String> {
        lines.iter().map(|l| (l["uri"].as_str().unwrap().into(), l["endpoint"].as_str().unwrap().into())).collect()
    };
    assert_eq!(by_uri(&pinned_lines), by_uri(&lines));
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let out = shadowtap(&["endpoints", "/nonexistent/capture.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/capture.pcap"), "{stderr}");
}
