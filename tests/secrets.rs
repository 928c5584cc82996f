//! Secrets never reach an output: credentials and cookies sent to
//! production, and session cookies, an API key header and a token field it
//! answered, captured with tcpdump on `lo` and replayed to a candidate that
//! answers other ones. The outcome lines, the report JSON, the HTML page
//! and the HAR hold none of the planted values, only keyed hashes (equal
//! values, equal hashes); the candidate was sent the real ones; `pairs`
//! prints the capture as it is unless `--redact` (headers and JSON body
//! fields), and its HAR is always redacted.

#[path = "common/needs.rs"]
mod needs;
#[path = "common/tcpdump.rs"]
mod tcpdump;
#[path = "common/wait.rs"]
mod wait;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_shadowtap");
/// Every planted secret contains this.
const PLANT: &str = "s3cret";

/// A keep-alive server answering each GET with a session cookie, an API
/// key header and a JSON token named by `answer(path)`; every byte it is
/// sent is kept.
fn service(answer: fn(&str) -> String) -> (TcpListener, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (accepting, record) = (listener.try_clone().unwrap(), seen.clone());
    std::thread::spawn(move || {
        for stream in accepting.incoming().flatten() {
            let record = record.clone();
            std::thread::spawn(move || serve(stream, &record, answer));
        }
    });
    (listener, seen)
}

fn serve(mut stream: TcpStream, record: &Mutex<Vec<u8>>, answer: fn(&str) -> String) {
    let mut pending = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut chunk) {
        record.lock().unwrap().extend_from_slice(&chunk[..n]);
        pending.extend_from_slice(&chunk[..n]);
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_string();
            pending.drain(..end + 4);
            let path = head.split(' ').nth(1).unwrap_or("/").to_string();
            let tag = answer(&path);
            let body = format!("{{\"name\":\"n\",\"token\":\"{PLANT}-token-{tag}\"}}");
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: session={PLANT}-cookie-{tag}\r\n\
                 X-Api-Key: {PLANT}-key-{tag}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if stream.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    }
}

/// Production gives /a and /b the same secrets.
fn production(_path: &str) -> String {
    "prod".into()
}

/// The candidate gives each path its own.
fn candidate(path: &str) -> String {
    format!("cand{}", path.trim_start_matches('/'))
}

fn run(args: &[&str]) -> Vec<u8> {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn no_plant(what: &str, text: &str) {
    assert!(!text.contains(PLANT), "a secret reached {what}: {text}");
}

/// The difference at `path` (any case) of the outcome line for `uri`.
fn difference<'a>(lines: &'a [Value], uri: &str, path: &str) -> &'a Value {
    let line = lines.iter().find(|l| l["uri"] == uri).unwrap_or_else(|| panic!("no {uri}: {lines:?}"));
    line["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"].as_str().unwrap().eq_ignore_ascii_case(path))
        .unwrap_or_else(|| panic!("no {path} difference for {uri}: {line}"))
}

fn capture(dir: &Path) -> std::path::PathBuf {
    let (legacy, _) = service(production);
    let port = legacy.local_addr().unwrap().port();
    let pcap = dir.join("secrets.pcap");
    let mut tcpdump = tcpdump::Tcpdump::start(port, &pcap);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for path in ["/a", "/b"] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: legacy\r\nAuthorization: Bearer {PLANT}-auth\r\nCookie: sid={PLANT}-sid\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
    }
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while got.windows(8).filter(|w| w == b"200 OK\r\n").count() < 2 || !got.ends_with(b"}") {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "production closed early");
        got.extend_from_slice(&chunk[..n]);
    }
    tcpdump.finish(2);
    pcap
}

#[test]
fn secrets_are_keyed_hashes_in_every_output_and_real_for_the_candidate() {
    if needs::met("secrets_are_keyed_hashes_in_every_output_and_real_for_the_candidate", needs::live_capture())
        .is_none()
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(dir.path());
    let config = dir.path().join("shadowtap.toml");
    std::fs::write(&config, "[redact]\nheaders = [\"x-api-key\"]\njson_paths = [\"/token\"]\n").unwrap();
    let (cand, sent) = service(candidate);
    let url = format!("http://{}", cand.local_addr().unwrap());
    let p = |path: &Path| path.to_str().unwrap().to_string();
    let (out, report, html, har) = (
        dir.path().join("out.jsonl"),
        dir.path().join("report.json"),
        dir.path().join("r.html"),
        dir.path().join("r.har"),
    );
    run(&[
        "replay",
        &p(&pcap),
        "--candidate",
        &url,
        "--config",
        &p(&config),
        "--out",
        &p(&out),
        "--report",
        &p(&report),
    ]);
    run(&["report", &p(&report), "--outcomes", &p(&out), "--html", &p(&html), "--har", &p(&har)]);

    let outcomes = std::fs::read_to_string(&out).unwrap();
    for (what, path) in
        [("the outcome lines", &out), ("the report", &report), ("the HTML page", &html), ("the HAR", &har)]
    {
        no_plant(what, &std::fs::read_to_string(path).unwrap());
    }
    let lines: Vec<Value> = outcomes.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for path in ["header:set-cookie", "header:x-api-key", "/token"] {
        let (a, b) = (difference(&lines, "/a", path), difference(&lines, "/b", path));
        let redacted = |v: &Value| v.as_str().is_some_and(|s| s.starts_with("[redacted:") && s.len() == 19);
        assert!(
            [&a["recorded"], &a["candidate"], &b["recorded"], &b["candidate"]].into_iter().all(redacted),
            "{a} {b}"
        );
        assert_eq!(a["recorded"], b["recorded"], "{path}: production's equal values look equal");
        assert_ne!(a["candidate"], b["candidate"], "{path}: the candidate's different values look different");
        assert_ne!(a["recorded"], a["candidate"], "{path}");
    }
    let html_text = std::fs::read_to_string(&html).unwrap();
    assert!(html_text.contains("[redacted:"), "the page shows the differing cookie, redacted");

    let sent = String::from_utf8_lossy(&sent.lock().unwrap()).to_string();
    for real in [format!("Authorization: Bearer {PLANT}-auth\r\n"), format!("Cookie: sid={PLANT}-sid\r\n")] {
        assert_eq!(sent.matches(&real).count(), 2, "the candidate gets the real {real:?}: {sent}");
    }

    let plain = String::from_utf8(run(&["pairs", &p(&pcap)])).unwrap();
    assert!(plain.contains(&format!("Bearer {PLANT}-auth")), "pairs prints the capture as it is: {plain}");
    let redacted = String::from_utf8(run(&["pairs", &p(&pcap), "--redact", "--config", &p(&config)])).unwrap();
    no_plant("pairs --redact", &redacted);
    assert!(redacted.contains("[redacted:"), "{redacted}");
    let har = String::from_utf8(run(&["pairs", &p(&pcap), "--format", "har", "--config", &p(&config)])).unwrap();
    no_plant("pairs --format har", &har);
}
