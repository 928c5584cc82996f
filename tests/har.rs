//! `shadowtap pairs --format har`: the bundled captures (pcaps/, made on
//! loopback with real clients and servers) as HAR 1.2. The document must
//! have every field HAR 1.2 requires, with the right types (checked here
//! field by field, after the spec's "log", "creator", "entries", "request",
//! "response", "content", "timings" objects), hold the same exchanges as
//! the golden JSON Lines of `pairs`, with the same bodies byte for byte
//! (text or base64), the capture's timings, and no secret header value.
//! `report --har` writes the report's examples (from outcome lines) as
//! HAR 1.2 too: checked the same way, and against the lines.

#[path = "common/demo_service.rs"]
mod demo_service;
#[path = "common/needs.rs"]
mod needs;
#[path = "common/outcomes.rs"]
mod outcomes;
#[path = "common/tcpdump.rs"]
mod tcpdump;
#[path = "common/wait.rs"]
mod wait;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_shadowtap");

fn pcap(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps").join(name)
}

fn har_of(file: &Path) -> Value {
    let out = Command::new(BIN).arg("pairs").arg(file).args(["--format", "har"]).output().unwrap();
    assert!(out.status.success(), "{}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{}: not JSON: {e}", file.display()))
}

/// Fails with the path of the first field HAR 1.2 requires that is
/// missing or of the wrong type.
fn check_har_1_2(har: &Value) {
    fn need<'a>(v: &'a Value, at: &str, key: &str, ok: fn(&Value) -> bool) -> &'a Value {
        let field = &v[key];
        assert!(ok(field), "{at}.{key}: missing or wrong type: {field}");
        field
    }
    let (string, number, array, object) = (
        Value::is_string as fn(&Value) -> bool,
        Value::is_number as fn(&Value) -> bool,
        Value::is_array as fn(&Value) -> bool,
        Value::is_object as fn(&Value) -> bool,
    );
    let log = need(har, "", "log", object);
    assert_eq!(need(log, "log", "version", string), "1.2");
    let creator = need(log, "log", "creator", object);
    need(creator, "log.creator", "name", string);
    need(creator, "log.creator", "version", string);
    let entries = need(log, "log", "entries", array).as_array().unwrap();
    for (i, e) in entries.iter().enumerate() {
        let at = format!("log.entries[{i}]");
        let started = need(e, &at, "startedDateTime", string).as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(started).is_ok(), "{at}.startedDateTime: {started}");
        assert!(need(e, &at, "time", number).as_f64().unwrap() >= 0.0);
        need(e, &at, "cache", object);
        let request = need(e, &at, "request", object);
        let rat = format!("{at}.request");
        for key in ["method", "url", "httpVersion"] {
            need(request, &rat, key, string);
        }
        assert!(request["url"].as_str().unwrap().starts_with("http"), "{rat}.url is absolute");
        for key in ["cookies", "headers", "queryString"] {
            need(request, &rat, key, array);
        }
        for key in ["headersSize", "bodySize"] {
            need(request, &rat, key, number);
        }
        for (list, at) in
            [(&request["headers"], format!("{rat}.headers")), (&request["queryString"], format!("{rat}.queryString"))]
        {
            for pair in list.as_array().unwrap() {
                need(pair, &at, "name", string);
                need(pair, &at, "value", string);
            }
        }
        if let Some(post) = request.get("postData") {
            need(post, &format!("{rat}.postData"), "mimeType", string);
        }
        let response = need(e, &at, "response", object);
        let sat = format!("{at}.response");
        need(response, &sat, "status", number);
        for key in ["statusText", "httpVersion", "redirectURL"] {
            need(response, &sat, key, string);
        }
        for key in ["cookies", "headers"] {
            need(response, &sat, key, array);
        }
        for key in ["headersSize", "bodySize"] {
            need(response, &sat, key, number);
        }
        let content = need(response, &sat, "content", object);
        need(content, &format!("{sat}.content"), "size", number);
        need(content, &format!("{sat}.content"), "mimeType", string);
        let timings = need(e, &at, "timings", object);
        for key in ["send", "wait", "receive"] {
            assert!(need(timings, &format!("{at}.timings"), key, number).as_f64().unwrap() >= 0.0);
        }
    }
}

/// A body from HAR text (base64 when `encoding` says so).
fn har_body(text: &Value, encoding: &Value) -> Vec<u8> {
    let text = text.as_str().unwrap_or_default();
    if encoding == "base64" {
        base64::engine::general_purpose::STANDARD.decode(text).unwrap()
    } else {
        text.as_bytes().to_vec()
    }
}

/// A body from a `pairs` JSON line.
fn pairs_body(message: &Value) -> Vec<u8> {
    match message["body_base64"].as_str() {
        Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).unwrap(),
        None => message["body"].as_str().unwrap_or_default().as_bytes().to_vec(),
    }
}

#[test]
fn bundled_captures_are_valid_har_1_2_with_their_bodies_and_timings() {
    let mut binary_bodies = 0;
    let mut request_bodies = 0;
    for name in ["gzip", "post-and-methods", "chunked", "pipelined", "demo", "status-nobody"] {
        let har = har_of(&pcap(&format!("{name}.pcap")));
        check_har_1_2(&har);
        let golden: Vec<Value> = std::fs::read_to_string(pcap(&format!("{name}.jsonl")))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let entries = har["log"]["entries"].as_array().unwrap();
        assert_eq!(entries.len(), golden.len(), "{name}: one entry per exchange");
        for (i, (entry, line)) in entries.iter().zip(&golden).enumerate() {
            let (request, response) = (&entry["request"], &entry["response"]);
            assert_eq!(request["method"], line["request"]["method"], "{name}[{i}]");
            assert!(
                request["url"].as_str().unwrap().ends_with(line["request"]["uri"].as_str().unwrap()),
                "{name}[{i}]"
            );
            let sent = pairs_body(&line["request"]);
            if !sent.is_empty() {
                request_bodies += 1;
                let post = &request["postData"];
                assert_eq!(har_body(&post["text"], &post["_encoding"]), sent, "{name}[{i}]: request body");
            }
            if line["response"].is_null() {
                assert_eq!(response["status"], 0, "{name}[{i}]: unanswered");
                continue;
            }
            assert_eq!(response["status"], line["response"]["status"], "{name}[{i}]");
            let content = &response["content"];
            if content["encoding"] == "base64" {
                binary_bodies += 1;
            }
            assert_eq!(
                har_body(&content["text"], &content["encoding"]),
                pairs_body(&line["response"]),
                "{name}[{i}]: response body"
            );
            let latency_ms = line["latency_us"].as_f64().unwrap() / 1000.0;
            let wait = entry["timings"]["wait"].as_f64().unwrap();
            assert!((wait - latency_ms).abs() < 0.002, "{name}[{i}]: wait {wait} ms vs captured {latency_ms} ms");
            assert_eq!(entry["time"], entry["timings"]["wait"]);
        }
    }
    assert!(binary_bodies > 0, "gzip bodies are carried as base64");
    assert!(request_bodies > 0, "request bodies are carried");
}

#[test]
fn credentials_and_cookies_never_reach_the_har() {
    if needs::met("credentials_and_cookies_never_reach_the_har", needs::live_capture()).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let legacy = demo_service::service(shadowtap::demo::Flavor::Legacy);
    let file = dir.path().join("secrets.pcap");
    let mut tcpdump = tcpdump::Tcpdump::start(legacy.port(), &file);
    let mut stream = std::net::TcpStream::connect(legacy).unwrap();
    stream
        .write_all(
            b"GET /health HTTP/1.1\r\nHost: legacy\r\nAuthorization: Bearer s3cret-token\r\n\
              Cookie: session=s3cret-cookie\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    tcpdump.finish(1);
    let har = har_of(&file);
    check_har_1_2(&har);
    let text = har.to_string();
    assert!(!text.contains("s3cret"), "a secret reached the HAR: {text}");
    let headers = har["log"]["entries"][0]["request"]["headers"].as_array().unwrap();
    let value = |name: &str| {
        headers.iter().find(|h| h["name"].as_str().unwrap().eq_ignore_ascii_case(name)).unwrap()["value"].clone()
    };
    let redacted = |v: Value| v.as_str().is_some_and(|s| s.starts_with("[redacted:"));
    assert!(redacted(value("authorization")) && redacted(value("cookie")), "{headers:?}");
    assert_eq!(value("host"), "legacy", "other headers are kept");
}

/// The demo capture replayed to the demo's candidate (planted diffs), an
/// outcome line with a differing Set-Cookie added; `report --outcomes
/// --har` of it.
fn report_examples_har(dir: &Path) -> (Vec<Value>, Value, Value) {
    let candidate = format!("http://{}", demo_service::service(shadowtap::demo::Flavor::Candidate));
    let replay = outcomes::replay(dir, "demo", &pcap("demo.pcap"), &candidate, &[]);
    let lines_path = dir.join("demo.jsonl");
    let first_diff = replay.lines.iter().find(|l| l["outcome"] == "diff").expect("a diff line").clone();
    let mut secret = first_diff.clone();
    secret["ts"] = "2026-11-25T21:59:28.000001Z".into();
    secret["differences"] = serde_json::json!([{"path": "header:set-cookie", "kind": "changed",
        "recorded": "sid=legacy-s3cret", "candidate": "sid=cand-s3cret"}]);
    let mut report = replay.report.clone();
    let endpoint = secret["endpoint"].as_str().unwrap();
    let e = report["endpoints"].as_array_mut().unwrap().iter_mut().find(|e| e["endpoint"] == endpoint).unwrap();
    e["field_counts"]
        .as_array_mut()
        .unwrap()
        .insert(0, serde_json::json!({"path": "header:set-cookie", "count": 1_000_000}));
    std::fs::write(&replay.report_path, report.to_string()).unwrap();
    let mut text = std::fs::read_to_string(&lines_path).unwrap();
    text += &format!("{secret}\n");
    std::fs::write(&lines_path, text).unwrap();
    let har_path = dir.join("examples.har");
    let out = Command::new(BIN)
        .arg("report")
        .arg(&replay.report_path)
        .arg("--outcomes")
        .arg(&lines_path)
        .arg("--har")
        .arg(&har_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "report --har: {}", String::from_utf8_lossy(&out.stderr));
    let har = serde_json::from_str(&std::fs::read_to_string(&har_path).unwrap()).unwrap();
    let mut lines = replay.lines;
    lines.push(secret);
    (lines, report, har)
}

#[test]
fn report_examples_are_valid_har_1_2_true_to_their_outcome_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (lines, report, har) = report_examples_har(dir.path());
    check_har_1_2(&har);
    let entries = har["log"]["entries"].as_array().unwrap();
    assert!(!entries.is_empty() && entries.len() % 2 == 0, "{} entries", entries.len());
    let mut examples_of = std::collections::BTreeSet::new();
    for pair in entries.chunks(2) {
        let (recorded, candidate) = (&pair[0], &pair[1]);
        let url = |e: &Value| e["request"]["url"].as_str().unwrap().to_string();
        let uri = url(recorded).strip_prefix("http://legacy").expect("recorded answer first").to_string();
        assert_eq!(url(candidate), format!("http://candidate{uri}"));
        let line = lines
            .iter()
            .find(|l| l["uri"] == uri.as_str() && l["ts"] == recorded["startedDateTime"])
            .unwrap_or_else(|| panic!("no outcome line for {uri} at {}", recorded["startedDateTime"]));
        let tag = &recorded["_shadowtap"];
        assert_eq!((&tag["endpoint"], &tag["outcome"]), (&line["endpoint"], &line["outcome"]));
        examples_of.insert((tag["endpoint"].as_str().unwrap().to_string(), tag["field"].as_str().unwrap().to_string()));
        for (entry, side) in [(recorded, "recorded"), (candidate, "candidate")] {
            assert_eq!(entry["request"]["method"], line["method"]);
            assert_eq!(entry["response"]["status"], line[format!("{side}_status")].as_u64().unwrap_or(0));
            let latency_ms = line[format!("{side}_latency_us")].as_f64().map_or(0.0, |us| us / 1000.0);
            assert!((entry["time"].as_f64().unwrap() - latency_ms).abs() < 1e-9, "{side} time of {uri}");
            // Every differing body value, this side's, round-trips.
            let body: Value = serde_json::from_str(entry["response"]["content"]["text"].as_str().unwrap()).unwrap();
            for d in
                line["differences"].as_array().unwrap().iter().filter(|d| d["path"].as_str().unwrap().starts_with('/'))
            {
                assert_eq!(body[d["path"].as_str().unwrap()], d[side], "{side} value at {} of {uri}", d["path"]);
            }
        }
    }
    // An example of each top differing field of every endpoint with diffs.
    for e in report["endpoints"].as_array().unwrap().iter().filter(|e| e["diff"].as_u64().unwrap() > 0) {
        for f in e["top_fields"].as_array().unwrap() {
            let field = f["path"].as_str().unwrap();
            let folded =
                field.split('/').map(|s| if s.parse::<u64>().is_ok() { "*" } else { s }).collect::<Vec<_>>().join("/");
            let endpoint = e["endpoint"].as_str().unwrap().to_string();
            assert!(
                examples_of.contains(&(endpoint.clone(), field.to_string()))
                    || examples_of.contains(&(endpoint.clone(), folded)),
                "no example of {field} on {endpoint}: {examples_of:?}"
            );
        }
    }
    // The differing Set-Cookie is shown, its values never.
    let text = har.to_string();
    assert!(text.contains("header:set-cookie") && text.contains("[redacted:"), "the cookie example is there");
    assert!(!text.contains("s3cret"), "a secret reached the HAR");
}
