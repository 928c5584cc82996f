//! The report's examples as HAR 1.2 (`shadowtap report --outcomes FILE
//! --har OUT.har`): the examples the HTML page shows (a few exchanges per
//! endpoint and top differing field, read from outcome lines) in, one HAR
//! document out, two entries per example: the recorded answer (host
//! `legacy`) and the candidate's (host `candidate`), one after the other.
//!
//! Outcome lines carry the request line, statuses, latencies and the
//! differing values, not whole messages: each entry's response holds the
//! differing header values in `headers` and the differing body values as
//! a JSON object (pointer -> this side's value) in `content.text`, said in
//! `content.comment`; the full difference list, what was set aside and
//! the equivalences that applied go in the entry's `_shadowtap`. Secret
//! values arrive redacted (the examples are read that way).

use serde_json::{Map, Value, json};

use crate::html::examples::{Evidence, Example};

/// Which answer an entry shows.
#[derive(Clone, Copy)]
enum Side {
    Recorded,
    Candidate,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Recorded => "recorded",
            Side::Candidate => "candidate",
        }
    }

    /// The URL's host: which service answered.
    fn host(self) -> &'static str {
        match self {
            Side::Recorded => "legacy",
            Side::Candidate => "candidate",
        }
    }
}

/// The examples of `evidence` as one HAR document, by endpoint and field.
pub fn examples_har(evidence: &Evidence) -> Value {
    let mut keys: Vec<&(String, String)> = evidence.examples.keys().collect();
    keys.sort();
    let mut entries = Vec::new();
    for key in keys {
        let (endpoint, field) = key;
        for example in &evidence.examples[key] {
            for side in [Side::Recorded, Side::Candidate] {
                entries.push(entry(endpoint, field, example, side));
            }
        }
    }
    json!({"log": {
        "version": "1.2",
        "creator": {"name": "shadowtap", "version": env!("CARGO_PKG_VERSION")},
        "pages": [],
        "entries": entries,
        "comment": "shadowtap report examples: for each, the recorded answer (legacy) then the candidate's",
    }})
}

fn entry(endpoint: &str, field: &str, e: &Example, side: Side) -> Value {
    let (status, latency_us) = match side {
        Side::Recorded => (e.recorded_status, e.recorded_latency_us),
        Side::Candidate => (e.candidate_status, e.candidate_latency_us),
    };
    let wait_ms = latency_us.map_or(0.0, |us| us as f64 / 1000.0);
    let value = |d: &(String, String, Value, Value)| match side {
        Side::Recorded => d.2.clone(),
        Side::Candidate => d.3.clone(),
    };
    let headers: Vec<Value> = e
        .differences
        .iter()
        .filter_map(|d| {
            let name = d.0.strip_prefix("header:")?;
            let shown = match value(d) {
                Value::Null => return None,
                Value::String(s) => s,
                other => other.to_string(),
            };
            Some(json!({"name": name, "value": shown}))
        })
        .collect();
    let body: Map<String, Value> =
        e.differences.iter().filter(|d| d.0.starts_with('/')).map(|d| (d.0.clone(), value(d))).collect();
    let text = serde_json::to_string(&body).unwrap_or_default();
    json!({
        "startedDateTime": started(&e.ts),
        "time": wait_ms,
        "request": {
            "method": e.method,
            "url": format!("http://{}{}", side.host(), e.uri),
            "httpVersion": "",
            "cookies": [],
            "headers": [],
            "queryString": super::query_string(&e.uri),
            "headersSize": -1,
            "bodySize": -1,
        },
        "response": {
            "status": status.unwrap_or(0),
            "statusText": "",
            "httpVersion": "",
            "cookies": [],
            "headers": headers,
            "content": {
                "size": text.len(),
                "mimeType": "application/json",
                "text": text,
                "comment": "the differing body values only (JSON pointer -> value); outcome lines carry no whole bodies",
            },
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        },
        "cache": {},
        "timings": {"send": 0, "wait": wait_ms, "receive": 0},
        "comment": format!("{endpoint}: {} answer, example of {field} ({})", side.name(), e.outcome),
        "_shadowtap": {
            "endpoint": endpoint,
            "field": field,
            "side": side.name(),
            "outcome": e.outcome,
            "differences": e.differences.iter().map(|d| json!({"path": d.0, "kind": d.1, "recorded": d.2, "candidate": d.3})).collect::<Vec<_>>(),
            "explained": e.explained.iter().map(|(path, by)| json!({"path": path, "by": by})).collect::<Vec<_>>(),
            "equivalences": e.equivalences.iter().map(|(rule, n)| (rule.clone(), Value::from(*n))).collect::<Map<_, _>>(),
        },
    })
}

/// HAR wants a date; an outcome line without one (or an older one) gets
/// the epoch rather than an invalid entry.
fn started(ts: &str) -> String {
    if chrono::DateTime::parse_from_rfc3339(ts).is_ok() { ts.to_string() } else { "1970-01-01T00:00:00Z".into() }
}
