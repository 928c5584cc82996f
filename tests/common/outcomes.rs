//! `shadowtap replay` run by a test, and reading what it said: outcome
//! lines in capture order, the report, and the parts of a line tests look at.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_shadowtap");

/// What one replay wrote.
pub struct Replay {
    /// Outcome lines sorted by request time (capture order).
    pub lines: Vec<Value>,
    pub report: Value,
    pub report_path: PathBuf,
}

impl Replay {
    /// The report's entry for endpoint `name`.
    pub fn endpoint(&self, name: &str) -> &Value {
        self.report["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["endpoint"] == name)
            .unwrap_or_else(|| panic!("no {name} in the report: {:#}", self.report))
    }

    /// The noisy field `path` of endpoint `name` in the report.
    pub fn noisy_field(&self, name: &str, path: &str) -> &Value {
        let e = self.endpoint(name);
        e["noisy_fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("{path} is not a noisy field of {name}: {:#}", e["noisy_fields"]))
    }

    /// The outcome lines of requests for `uri`, in capture order.
    pub fn by_uri(&self, uri: &str) -> Vec<&Value> {
        self.lines.iter().filter(|l| l["uri"] == uri).collect()
    }
}

/// `shadowtap replay PCAP --candidate URL ARGS...` writing its outcomes and
/// report into `dir` under `name`; it must succeed.
pub fn replay(dir: &Path, name: &str, pcap: &Path, candidate_url: &str, args: &[&str]) -> Replay {
    let (out, report) = (dir.join(format!("{name}.jsonl")), dir.join(format!("{name}.report.json")));
    let result = Command::new(BIN)
        .arg("replay")
        .arg(pcap)
        .args(["--candidate", candidate_url, "--out"])
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .args(args)
        .output()
        .unwrap();
    assert!(result.status.success(), "replay {name}: {}", String::from_utf8_lossy(&result.stderr));
    let mut lines: Vec<Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Outcomes come in completion order; `ts` (RFC 3339, µs, UTC, fixed
    // width) sorts as the capture does. The sort is stable for equal ts.
    lines.sort_by(|a, b| a["ts"].as_str().cmp(&b["ts"].as_str()));
    let report_json = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    Replay { lines, report: report_json, report_path: report }
}

/// The paths of a line's real differences, in order.
pub fn difference_paths(line: &Value) -> Vec<&str> {
    line["differences"].as_array().unwrap().iter().map(|d| d["path"].as_str().unwrap()).collect()
}

/// `(path, by)` of what was set aside, sorted.
pub fn explained(line: &Value) -> Vec<(&str, &str)> {
    let mut v: Vec<(&str, &str)> = line["explained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap(), e["by"].as_str().unwrap()))
        .collect();
    v.sort();
    v
}
