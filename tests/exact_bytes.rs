//! Header bytes reach the candidate exactly as production received them:
//! a Latin-1 value (`X-Name: caf\xe9`, not UTF-8) captured with tcpdump on
//! `lo` is replayed to a candidate that records the raw bytes it is sent;
//! `pairs` shows the value escaped losslessly (U+0000 then one char per
//! byte).

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
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};

const BIN: &str = env!("CARGO_BIN_EXE_shadowtap");

/// A candidate that keeps every byte it is sent and answers each head
/// with an empty 200.
fn recording_candidate() -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let record = record.clone();
            std::thread::spawn(move || answer_recording(stream, &record));
        }
    });
    (addr, seen)
}

fn answer_recording(mut stream: TcpStream, record: &Mutex<Vec<u8>>) {
    let mut pending = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut chunk) {
        record.lock().unwrap().extend_from_slice(&chunk[..n]);
        pending.extend_from_slice(&chunk[..n]);
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            pending.drain(..end + 4);
            if stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").is_err() {
                return;
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_latin1_header_value_reaches_the_candidate_byte_identical() {
    if needs::met("a_latin1_header_value_reaches_the_candidate_byte_identical", needs::live_capture()).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let legacy = demo_service::service(shadowtap::demo::Flavor::Legacy);
    let pcap = dir.path().join("latin1.pcap");
    let mut tcpdump = tcpdump::Tcpdump::start(legacy.port(), &pcap);
    let mut stream = TcpStream::connect(legacy).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: legacy\r\nX-Name: caf\xe9\r\nX-Utf8: caf\xc3\xa9\r\nConnection: close\r\n\r\n")
        .unwrap();
    stream.read_to_end(&mut Vec::new()).unwrap();
    tcpdump.finish(1);

    // pairs: the Latin-1 value escaped, the UTF-8 one as it is.
    let pairs = Command::new(BIN).arg("pairs").arg(&pcap).output().unwrap();
    assert!(pairs.status.success(), "{}", String::from_utf8_lossy(&pairs.stderr));
    let line: serde_json::Value = serde_json::from_slice(&pairs.stdout).unwrap();
    let headers = line["request"]["headers"].as_array().unwrap();
    let value = |name: &str| headers.iter().find(|h| h[0] == name).unwrap()[1].as_str().unwrap().to_string();
    assert_eq!(value("X-Name"), "\u{0}caf\u{e9}", "{line}");
    assert_eq!(value("X-Utf8"), "café", "{line}");

    let (candidate, seen) = recording_candidate();
    let run = outcomes::replay(dir.path(), "latin1", &pcap, &format!("http://{candidate}"), &[]);
    assert_eq!(run.lines.len(), 1, "{:?}", run.lines);
    let seen = seen.lock().unwrap().clone();
    assert!(contains(&seen, b"\r\nX-Name: caf\xe9\r\n"), "the candidate got {:?}", String::from_utf8_lossy(&seen));
    assert!(contains(&seen, b"\r\nX-Utf8: caf\xc3\xa9\r\n"), "the candidate got {:?}", String::from_utf8_lossy(&seen));
}
