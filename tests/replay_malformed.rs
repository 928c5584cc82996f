//! Replay of answers production sent with broken framing
//! (pcaps/broken-framing.pcap, captured here from tools/broken_server.py):
//! each is replayed, status and headers are compared, and its body is one
//! `malformed_recorded` difference, never a match, whatever the candidate
//! answers.

#[path = "common/outcomes.rs"]
mod outcomes;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

const BODY: &str = "the body a browser shows\n";

/// A candidate answering every request well-formed, with the body and
/// headers production meant to send.
fn well_formed_candidate() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut head = String::new();
                    while reader.read_line(&mut head).unwrap_or(0) > 0 && !head.ends_with("\r\n\r\n") {}
                    if head.is_empty() {
                        return;
                    }
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{BODY}",
                        BODY.len()
                    );
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn answers_with_broken_framing_are_replayed_and_their_bodies_are_malformed_recorded_diffs() {
    let candidate = well_formed_candidate();
    let dir = tempfile::tempdir().unwrap();
    let pcap = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/broken-framing.pcap"));
    let run = outcomes::replay(dir.path(), "broken", pcap, &format!("http://{candidate}"), &[]);
    let (lines, report) = (&run.lines, &run.report);
    let by_uri: BTreeMap<&str, &serde_json::Value> = lines.iter().map(|l| (l["uri"].as_str().unwrap(), l)).collect();
    assert_eq!(by_uri.len(), 7, "{lines:?}");
    assert_eq!(by_uri["/ok"]["outcome"], "match", "the well-formed answer");
    let reasons = [
        ("/version-1.2", "bad status line version HTTP/1.2"),
        ("/version-1.01", "bad status line version HTTP/1.01"),
        ("/no-colon", "header line without colon"),
        ("/bad-length", "invalid Content-Length"),
        ("/not-chunked", "Transfer-Encoding chunked but body not chunked"),
        ("/bare-cr", "bare CR line ending"),
    ];
    for (uri, reason) in reasons {
        let line = by_uri[uri];
        assert_eq!(line["outcome"], "diff", "{line}");
        let body: Vec<_> = line["differences"].as_array().unwrap().iter().filter(|d| d["path"] == "").collect();
        assert_eq!(body.len(), 1, "{line}");
        assert_eq!(body[0]["kind"], "malformed_recorded");
        assert_eq!(body[0]["recorded"], reason);
        assert_eq!(body[0]["candidate"], format!("{} bytes", BODY.len()));
    }
    // The status was read from each broken status line.
    let statuses: Vec<_> = lines.iter().map(|l| l["recorded_status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, vec![200; 7]);
    let body_diffs: u64 = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["top_fields"].as_array().unwrap())
        .filter(|f| f["path"] == "")
        .map(|f| f["count"].as_u64().unwrap())
        .sum();
    assert_eq!(body_diffs, 6, "{report}");
}

/// Answers production sent before the request was all sent (a 413 or 401
/// during an upload, a 431 to a head too long) are paired with their
/// requests; such a request is not replayed, and the reason says why, not
/// that a body was over the limit.
#[test]
fn requests_answered_before_they_were_all_sent_are_skipped_with_the_reason() {
    let candidate = well_formed_candidate();
    let dir = tempfile::tempdir().unwrap();
    let pcap = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/early-answer.pcap"));
    let writes = ["--allow-writes", "POST /upload-413", "--allow-writes", "POST /upload-401"];
    let run = outcomes::replay(dir.path(), "early", pcap, &format!("http://{candidate}"), &writes);
    let lines = &run.lines;
    let by_uri: BTreeMap<&str, &serde_json::Value> = lines.iter().map(|l| (l["uri"].as_str().unwrap(), l)).collect();
    for (uri, status) in [("/upload-413", 413), ("/upload-401", 401), ("/huge-head", 431)] {
        let line = by_uri[uri];
        assert_eq!((&line["outcome"], &line["recorded_status"]), (&"skipped".into(), &status.into()), "{line}");
        let reason = line["reason"].as_str().unwrap();
        assert!(reason.contains("answered before the client had sent it all"), "{line}");
    }
    assert_eq!(by_uri["/ok"]["outcome"], "match");
}
