//! What the HTML report takes from outcome lines (`--outcomes`): a few
//! example exchanges for each top differing field, and outcome counts over
//! time. In: JSON Lines files as `replay --out` / `run --out` write them;
//! out: bounded examples and time buckets. Bad or overlong lines are
//! skipped and counted; nothing grows with the size of the files except
//! the per-second buckets, which are coarsened to minutes past a bound.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;

use serde_json::Value;

use crate::replay::triage::field_of;

/// Examples kept per endpoint and field.
pub const EXAMPLES_PER_FIELD: usize = 3;
/// An outcome line longer than this is skipped.
const MAX_LINE: usize = 4 << 20;
/// Time buckets kept before seconds are coarsened to minutes.
const MAX_BUCKETS: usize = 20_000;

/// A difference's value as shown: secrets redacted (outcome lines of older
/// versions carry them in clear; newer ones come redacted and stay so).
pub fn shown(path: &str, value: &Value) -> Value {
    crate::redact::redactor().shown(path, value)
}

/// One example exchange, as its outcome line tells it.
#[derive(Clone, Debug)]
pub struct Example {
    /// Capture time of the request (RFC 3339).
    pub ts: String,
    pub method: String,
    pub uri: String,
    pub outcome: String,
    pub recorded_status: Option<u64>,
    pub candidate_status: Option<u64>,
    pub recorded_latency_us: Option<u64>,
    pub candidate_latency_us: Option<u64>,
    /// (path, kind, recorded, candidate), secrets redacted.
    pub differences: Vec<(String, String, Value, Value)>,
    /// Differences set aside: (path, by).
    pub explained: Vec<(String, String)>,
    /// Equivalence rules that applied: (rule, count).
    pub equivalences: Vec<(String, u64)>,
}

/// Examples and time buckets from outcome files.
#[derive(Default)]
pub struct Evidence {
    /// (endpoint, field) -> examples.
    pub examples: HashMap<(String, String), Vec<Example>>,
    /// Time bucket (`YYYY-MM-DDTHH:MM:SS` or `…HH:MM`) -> outcome counts.
    pub buckets: BTreeMap<String, [u64; super::OUTCOMES.len()]>,
    pub lines: u64,
    pub bad_lines: u64,
    /// Buckets are minutes rather than seconds.
    minutes: bool,
}

impl Evidence {
    /// Reads one outcome file, keeping examples of the `wanted` fields
    /// (endpoint, folded field path).
    pub fn read(&mut self, input: impl BufRead, wanted: &HashSet<(String, String)>) -> std::io::Result<()> {
        let mut input = input;
        let mut line = Vec::new();
        while let Some(complete) = read_bounded_line(&mut input, &mut line)? {
            if complete && line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.lines += 1;
            match serde_json::from_slice::<Value>(&line) {
                Ok(value) if complete && value.is_object() => self.add(&value, wanted),
                _ => self.bad_lines += 1,
            }
        }
        Ok(())
    }

    fn add(&mut self, line: &Value, wanted: &HashSet<(String, String)>) {
        let text = |key: &str| line[key].as_str().unwrap_or_default().to_string();
        let outcome = text("outcome");
        self.count_in_time(&text("ts"), &outcome);
        let endpoint = text("endpoint");
        let Some(differences) = line["differences"].as_array() else { return };
        let mut example = None;
        let mut fields_seen = HashSet::new();
        for d in differences {
            let field = field_of(d["path"].as_str().unwrap_or_default());
            let key = (endpoint.clone(), field);
            if !wanted.contains(&key) || !fields_seen.insert(key.1.clone()) {
                continue;
            }
            let kept = self.examples.entry(key).or_default();
            if kept.len() < EXAMPLES_PER_FIELD {
                kept.push(example.get_or_insert_with(|| example_of(line)).clone());
            }
        }
    }

    fn count_in_time(&mut self, ts: &str, outcome: &str) {
        let Some(kind) = super::OUTCOMES.iter().position(|o| *o == outcome) else { return };
        let width = if self.minutes { 16 } else { 19 };
        let Some(bucket) = ts.get(..width) else { return };
        self.buckets.entry(bucket.to_string()).or_default()[kind] += 1;
        if self.buckets.len() > MAX_BUCKETS && !self.minutes {
            self.minutes = true;
            let seconds = std::mem::take(&mut self.buckets);
            for (second, counts) in seconds {
                let minute = self.buckets.entry(second[..16].to_string()).or_default();
                minute.iter_mut().zip(counts).for_each(|(m, n)| *m += n);
            }
        }
    }

    /// At most `bars` buckets, consecutive ones added together.
    pub fn timeline(&self, bars: usize) -> Vec<(String, [u64; super::OUTCOMES.len()])> {
        let per_bar = self.buckets.len().div_ceil(bars.max(1)).max(1);
        let all: Vec<_> = self.buckets.iter().collect();
        all.chunks(per_bar)
            .map(|chunk| {
                let mut sum = [0; super::OUTCOMES.len()];
                for (_, counts) in chunk {
                    sum.iter_mut().zip(counts.iter()).for_each(|(s, n)| *s += n);
                }
                (chunk[0].0.clone(), sum)
            })
            .collect()
    }
}

fn example_of(line: &Value) -> Example {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let list = |key: &str| line[key].as_array().cloned().unwrap_or_default();
    Example {
        ts: text(&line["ts"]),
        method: text(&line["method"]),
        uri: text(&line["uri"]),
        outcome: text(&line["outcome"]),
        recorded_status: line["recorded_status"].as_u64(),
        candidate_status: line["candidate_status"].as_u64(),
        recorded_latency_us: line["recorded_latency_us"].as_u64(),
        candidate_latency_us: line["candidate_latency_us"].as_u64(),
        differences: list("differences")
            .iter()
            .take(20)
            .map(|d| {
                let path = text(&d["path"]);
                let (recorded, candidate) = (shown(&path, &d["recorded"]), shown(&path, &d["candidate"]));
                (path, text(&d["kind"]), recorded, candidate)
            })
            .collect(),
        explained: list("explained").iter().take(20).map(|e| (text(&e["path"]), text(&e["by"]))).collect(),
        equivalences: line["equivalences"]
            .as_object()
            .map(|m| m.iter().map(|(rule, n)| (rule.clone(), n.as_u64().unwrap_or(0))).collect())
            .unwrap_or_default(),
    }
}

/// Reads one line into `line` (without the newline), keeping at most
/// [`MAX_LINE`] bytes: `Some(false)` when it was longer (the rest is
/// skipped), `None` at the end of input.
fn read_bounded_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut complete = true;
    let mut any = false;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(any.then_some(complete));
        }
        any = true;
        let (chunk, found) = match memchr::memchr(b'\n', buf) {
            Some(at) => (&buf[..at], true),
            None => (buf, false),
        };
        if line.len() + chunk.len() <= MAX_LINE {
            line.extend_from_slice(chunk);
        } else {
            complete = false;
        }
        let used = chunk.len() + usize::from(found);
        input.consume(used);
        if found {
            return Ok(Some(complete));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_headers_are_redacted_and_others_kept() {
        let secret = Value::String("session=abc".into());
        let redacted = shown("header:Set-Cookie", &secret);
        assert!(redacted.as_str().is_some_and(crate::redact::is_redacted), "{redacted}");
        assert_eq!(shown("header:authorization", &secret), redacted, "equal values, equal redactions");
        assert_ne!(shown("header:cookie", &Value::from("session=abd")), redacted);
        assert_eq!(shown("header:etag", &secret), secret);
        assert_eq!(shown("/cookie", &secret), secret, "a body field named cookie is data");
        assert_eq!(shown("header:cookie", &Value::Null), Value::Null, "absence is shown");
    }

    #[test]
    fn bad_and_overlong_lines_are_skipped_and_counted() {
        let long = format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_LINE));
        let good = r#"{"ts":"2026-11-25T21:59:28.004571Z","endpoint":"GET /a","outcome":"diff","differences":[{"path":"/n","kind":"changed","recorded":1,"candidate":2}]}"#;
        let input = format!("not json\n{long}\n{good}\n\n");
        let mut evidence = Evidence::default();
        let wanted = HashSet::from([("GET /a".to_string(), "/n".to_string())]);
        evidence.read(input.as_bytes(), &wanted).unwrap();
        assert_eq!((evidence.lines, evidence.bad_lines), (3, 2));
        let examples = &evidence.examples[&("GET /a".to_string(), "/n".to_string())];
        assert_eq!(examples[0].differences[0].3, Value::from(2));
        assert_eq!(
            evidence.buckets["2026-11-25T21:59:28"][super::super::OUTCOMES.iter().position(|o| *o == "diff").unwrap()],
            1
        );
    }
}
