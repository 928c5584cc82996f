//! The public corpus (Zeek's HTTP test captures, many hostile) through
//! `shadowtap pairs`: every capture must be read without a crash or an
//! error exit, and the exchanges found must equal the reviewed counts in
//! `tests/corpus_expected.tsv`. Where those differ from tshark's counts (in
//! the corpus MANIFEST.tsv), the last column says who is right and why.
//!
//! The corpus is not in this repository: it is read from SHADOWTAP_CORPUS
//! (default ../shared/corpus). On a clone of the repository alone the test
//! says in one line that it skipped and why; in CI (`CI=true`) it must be
//! there, and a missing corpus fails the test.

#[path = "common/needs.rs"]
mod needs;

use std::process::Command;

struct Expected {
    file: String,
    requests: usize,
    responses: usize,
    gaps: usize,
    tshark: (usize, usize),
    why: String,
}

fn expected() -> Vec<Expected> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus_expected.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Expected {
                file: f[0].into(),
                requests: f[1].parse().unwrap(),
                responses: f[2].parse().unwrap(),
                gaps: f[3].parse().unwrap(),
                tshark: (f[4].parse().unwrap(), f[5].parse().unwrap()),
                why: f.get(6).unwrap_or(&"").to_string(),
            }
        })
        .collect()
}

#[test]
fn every_corpus_capture_gives_the_reviewed_exchanges() {
    let Some(dir) = needs::met("corpus::every_corpus_capture_gives_the_reviewed_exchanges", needs::corpus()) else {
        return;
    };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let listed = manifest.lines().skip(1).count();
    let expected = expected();
    assert_eq!(expected.len(), listed, "corpus_expected.tsv must cover every capture in MANIFEST.tsv");
    let mut failures = Vec::new();
    for e in &expected {
        let out = Command::new(env!("CARGO_BIN_EXE_shadowtap")).arg("pairs").arg(dir.join(&e.file)).output().unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{}: exit {:?}: {}",
                e.file,
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let stdout = String::from_utf8(out.stdout).unwrap();
        let (mut requests, mut responses, mut gaps) = (0, 0, 0);
        for line in stdout.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            requests += 1;
            responses += usize::from(!v["response"].is_null());
            gaps += usize::from(v["gap"] == true);
        }
        if (requests, responses, gaps) != (e.requests, e.responses, e.gaps) {
            failures.push(format!(
                "{}: got {requests}/{responses}/{gaps} gaps, reviewed {}/{}/{}",
                e.file, e.requests, e.responses, e.gaps
            ));
        }
        let differs_from_tshark = (e.requests, e.responses) != e.tshark;
        if differs_from_tshark && (e.why.is_empty() || e.why == "UNREVIEWED") {
            failures.push(format!("{}: differs from tshark without a reviewed reason", e.file));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
