//! Golden-file tests: every `pcaps/NAME.pcap` made on loopback with real
//! clients and servers (see pcaps/README.md) is run through `shadowtap
//! pairs` and must print exactly `pcaps/NAME.jsonl`. Set SHADOWTAP_BLESS=1
//! to rewrite the golden files after a deliberate change (then review the
//! diff). Independently of the golden files, the exchanges must agree with
//! `pcaps/summary.txt`, written by a separate Python reader of the same
//! captures when they were made.

use std::path::{Path, PathBuf};
use std::process::Command;

fn pcaps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps")
}

fn captures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(pcaps_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "expected the bundled captures in pcaps/");
    files
}

fn pairs(file: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_shadowtap")).arg("pairs").arg(file).output().unwrap();
    assert!(out.status.success(), "{}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_bundled_capture_matches_its_golden_jsonl() {
    let bless = std::env::var_os("SHADOWTAP_BLESS").is_some();
    let mut failures = Vec::new();
    for pcap in captures() {
        let golden = pcap.with_extension("jsonl");
        let got = pairs(&pcap);
        if bless {
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_else(|_| panic!("missing {}", golden.display()));
        if got != want {
            let first = got.lines().zip(want.lines()).position(|(g, w)| g != w);
            failures.push(format!(
                "{}: differs (first differing line {:?}; got {} lines, want {})",
                pcap.display(),
                first.map(|i| i + 1),
                got.lines().count(),
                want.lines().count()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One exchange as the Python reader summarised it.
#[derive(Debug, PartialEq)]
struct Summary {
    method: String,
    uri: String,
    request_body: u64,
    status: u16,
    response_body: u64,
}

/// Parses lines like
/// `GET /a HTTP/1.1 (0 body bytes, none) -> HTTP/1.1 200 (33 body bytes, length)`
/// grouped under `NAME.pcap: ...` headings.
fn summaries() -> Vec<(String, Vec<Summary>)> {
    let text = std::fs::read_to_string(pcaps_dir().join("summary.txt")).unwrap();
    let mut out: Vec<(String, Vec<Summary>)> = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') && line.contains(".pcap:") {
            out.push((line.split(':').next().unwrap().to_string(), Vec::new()));
        } else if let Some((request, response)) =
            line.trim().split_once(" -> ").filter(|_| !line.trim().starts_with("connection"))
        {
            // Interim answers are listed first: "-> HTTP/1.1 100 (...) then HTTP/1.1 200 (...)".
            let response = response.rsplit(" then ").next().unwrap();
            let words: Vec<&str> = request.split(' ').collect();
            let request_body = request.split('(').nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
            let rwords: Vec<&str> = response.split(' ').collect();
            let response_body = response.split('(').nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
            out.last_mut().unwrap().1.push(Summary {
                method: words[0].to_string(),
                uri: words[1].to_string(),
                request_body,
                status: rwords[1].parse().unwrap(),
                response_body,
            });
        }
    }
    out
}

#[test]
fn exchanges_agree_with_an_independent_reader() {
    let expected = summaries();
    assert!(expected.len() >= 8);
    for (name, want) in expected {
        let got: Vec<Summary> = pairs(&pcaps_dir().join(&name))
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let r = &v["response"];
                Summary {
                    method: v["request"]["method"].as_str().unwrap().to_string(),
                    uri: v["request"]["uri"].as_str().unwrap().to_string(),
                    request_body: v["request"]["body_len"].as_u64().unwrap(),
                    status: r["status"].as_u64().unwrap() as u16,
                    response_body: r["body_len"].as_u64().unwrap(),
                }
            })
            .collect();
        // The summary lists exchanges per connection; ours are ordered by
        // request time. Compare as multisets.
        let mut got_sorted: Vec<String> = got.iter().map(|s| format!("{s:?}")).collect();
        let mut want_sorted: Vec<String> = want.iter().map(|s| format!("{s:?}")).collect();
        got_sorted.sort();
        want_sorted.sort();
        assert_eq!(got_sorted, want_sorted, "{name}");
    }
}
