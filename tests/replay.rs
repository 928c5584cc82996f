//! Replay against real HTTP services on loopback: the bundled capture of
//! the demo's legacy service (pcaps/demo.pcap, captured with tcpdump here) is
//! replayed to a candidate started by the test, with planted regressions
//! and form-only differences, through the `shadowtap replay` binary.
//! https candidates are served over TLS by the test itself, with a
//! certificate from a CA made for the run (trusted through `ca_file`).

use std::collections::BTreeMap;
use std::process::{Command, Output};

use shadowtap::demo::Flavor;

#[path = "common/demo_service.rs"]
mod demo_service;
use demo_service::service;

#[path = "common/tls_service.rs"]
mod tls_service;
use tls_service::tls_service;

fn demo_pcap() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/demo.pcap").to_string()
}

fn replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shadowtap")).arg("replay").args(args).output().unwrap()
}

fn outcomes(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn planted_regressions_are_diffs_and_form_differences_are_equivalences() {
    let candidate = service(Flavor::Candidate);
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = (dir.path().join("out.jsonl"), dir.path().join("report.json"));
    let result = replay(&[
        &demo_pcap(),
        "--candidate",
        &format!("http://{candidate}"),
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let lines = outcomes(&out);
    assert_eq!(lines.len(), 300, "one outcome per captured exchange");
    let mut by_outcome: BTreeMap<String, usize> = BTreeMap::new();
    for l in &lines {
        *by_outcome.entry(l["outcome"].as_str().unwrap().to_string()).or_default() += 1;
    }
    assert_eq!(by_outcome.get("skipped"), Some(&30), "POSTs are not replayed: {by_outcome:?}");
    assert_eq!(by_outcome.get("error"), None);
    // Every 7th user's email is wrong: a diff at /email and nowhere else.
    for l in lines.iter().filter(|l| l["endpoint"] == "GET /api/users/{id}") {
        let id: u64 = l["uri"].as_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();
        let paths: Vec<&str> =
            l["differences"].as_array().unwrap().iter().map(|d| d["path"].as_str().unwrap()).collect();
        if id.is_multiple_of(7) {
            assert_eq!(l["outcome"], "diff");
            assert_eq!(paths, vec!["/email"]);
        } else {
            assert_eq!(l["outcome"], "match", "{l}");
        }
    }
    // Orders ending in 5 fail with 500 on the candidate.
    for l in lines.iter().filter(|l| l["endpoint"] == "GET /api/orders/{id}") {
        let id: u64 = l["uri"].as_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();
        let want_status = if id % 10 == 5 { 500 } else { 200 };
        assert_eq!(l["candidate_status"], want_status);
        assert_eq!(l["recorded_status"], 200);
    }
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let eq = &report["equivalences"];
    for rule in ["key_order", "number_format", "timestamp_instant"] {
        assert!(eq[rule].as_u64().unwrap() > 0, "{rule} explained nothing: {eq}");
    }
    let products =
        report["endpoints"].as_array().unwrap().iter().find(|e| e["endpoint"] == "GET /api/products").unwrap();
    assert_eq!(products["diff"], 30);
    assert!(products["top_fields"][0]["path"].as_str().unwrap().ends_with("/currency"));
    let search = report["endpoints"].as_array().unwrap().iter().find(|e| e["endpoint"] == "GET /api/search").unwrap();
    assert_eq!(search["latency_regression"], true, "the candidate sleeps 40 ms on search");
    assert!(search["candidate_p50_us"].as_u64().unwrap() >= 40_000);
}

#[test]
fn the_same_service_as_candidate_matches_everything_with_either_http_client() {
    let legacy_twin = service(Flavor::Legacy);
    let dir = tempfile::tempdir().unwrap();
    for client in ["shadowtap", "hyper"] {
        let out = dir.path().join(format!("{client}.jsonl"));
        let config = dir.path().join(format!("{client}.toml"));
        std::fs::write(&config, format!("[candidate]\nhttp_client = \"{client}\"\n")).unwrap();
        let twin = format!("http://{legacy_twin}");
        let result = replay(&[
            &demo_pcap(),
            "--candidate",
            &twin,
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(result.status.success(), "{client}: {}", String::from_utf8_lossy(&result.stderr));
        let lines = outcomes(&out);
        assert!(
            lines.iter().all(|l| l["outcome"] == "match" || l["outcome"] == "skipped"),
            "a twin must match ({client})"
        );
        assert_eq!(lines.iter().filter(|l| l["outcome"] == "match").count(), 270, "{client}");
    }
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[candidate]\n\nhttp_client = \"curl\"\n").unwrap();
    let result = replay(&[&demo_pcap(), "--candidate", "http://127.0.0.1:1", "--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.toml:3") && stderr.contains("curl"), "{stderr}");
}

#[test]
fn a_candidate_that_is_down_gives_errors_and_replay_goes_on() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let result =
        replay(&[&demo_pcap(), "--candidate", &format!("http://127.0.0.1:{port}"), "--out", out.to_str().unwrap()]);
    assert!(result.status.success());
    let lines = outcomes(&out);
    assert_eq!(lines.len(), 300);
    let errors: Vec<_> = lines.iter().filter(|l| l["outcome"] == "error").collect();
    assert_eq!(errors.len(), 270);
    assert!(errors[0]["error"].as_str().unwrap().contains("refused"), "{}", errors[0]);
}

/// `[capture]` of `--config` means for `replay` what it means for `run`
/// (one table of flags to keys): its body limit applies, and
/// `--body-limit` given on the command line wins over it. (Before,
/// `replay` ignored the section.)
#[test]
fn capture_keys_of_the_config_apply_to_replay_and_flags_win() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, format!("[candidate]\nurl = \"http://127.0.0.1:{port}\"\n[capture]\nbody_limit = 10\n"))
        .unwrap();
    let out = dir.path().join("out.jsonl");
    let (config, out_arg) = (config.to_str().unwrap(), out.to_str().unwrap());
    let over_the_limit = |lines: &[serde_json::Value]| {
        lines.iter().filter(|l| l["reason"].as_str().is_some_and(|r| r.contains("--body-limit"))).count()
    };
    let result = replay(&[&demo_pcap(), "--config", config, "--out", out_arg]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let lines = outcomes(&out);
    assert_eq!(lines.len(), 300);
    assert!(over_the_limit(&lines) > 200, "JSON answers are longer than 10 bytes: {}", over_the_limit(&lines));
    let result = replay(&[&demo_pcap(), "--config", config, "--body-limit", "1048576", "--out", out_arg]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    assert_eq!(over_the_limit(&outcomes(&out)), 0, "the flag wins over the file");
}

#[test]
fn bad_config_and_bad_url_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[candidate]\nurl = \"http://127.0.0.1:1\"\ntimeout_ms = \"soon\"\n").unwrap();
    let result = replay(&[&demo_pcap(), "--config", config.to_str().unwrap()]);
    assert_eq!(result.status.code(), Some(2));
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(err.trim().starts_with(&format!("shadowtap: {}:3: ", config.display())), "{err}");
    let result = replay(&[&demo_pcap(), "--candidate", "ftp://x"]);
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("bad candidate URL"));
}

fn count(lines: &[serde_json::Value]) -> BTreeMap<String, usize> {
    let mut by_outcome = BTreeMap::new();
    for l in lines {
        *by_outcome.entry(l["outcome"].as_str().unwrap().to_string()).or_default() += 1;
    }
    by_outcome
}

fn write_config(dir: &std::path::Path, ca_file: Option<&std::path::Path>) -> std::path::PathBuf {
    let config = dir.join("shadowtap.toml");
    let mut text = "[candidate]\ntimeout_ms = 5000\n".to_string();
    if let Some(ca) = ca_file {
        text.push_str(&format!("ca_file = {:?}\n", ca.to_str().unwrap()));
    }
    std::fs::write(&config, text).unwrap();
    config
}

fn replay_to(candidate: &str, config: &std::path::Path, out: &std::path::Path) -> Output {
    replay(&[
        &demo_pcap(),
        "--config",
        config.to_str().unwrap(),
        "--candidate",
        candidate,
        "--out",
        out.to_str().unwrap(),
    ])
}

/// (uri, outcome, candidate status) of each exchange, sorted: replay
/// writes outcomes in the order answers come back.
fn summary(lines: &[serde_json::Value]) -> Vec<(String, String, String)> {
    let mut all: Vec<_> = lines
        .iter()
        .map(|l| (l["uri"].to_string(), l["outcome"].to_string(), l["candidate_status"].to_string()))
        .collect();
    all.sort();
    all
}

#[test]
fn an_https_candidate_signed_by_the_ca_file_is_replayed_over_tls() {
    let candidate = tls_service(Flavor::Candidate);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &candidate.ca_pem).unwrap();
    let config = write_config(dir.path(), Some(&ca));
    let out = dir.path().join("out.jsonl");
    let result = replay_to(&format!("https://127.0.0.1:{}", candidate.addr.port()), &config, &out);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let lines = outcomes(&out);
    let by_outcome = count(&lines);
    assert_eq!(by_outcome.get("error"), None, "{:?}", lines.iter().find(|l| l["outcome"] == "error"));
    assert_eq!((by_outcome["match"], by_outcome["diff"], by_outcome["skipped"]), (192, 78, 30), "{by_outcome:?}");
    assert_eq!(candidate.answered(), 270, "every replayed request reached the TLS server");
    // The planted 500s can only have come from the TLS server.
    for l in lines.iter().filter(|l| l["endpoint"] == "GET /api/orders/{id}") {
        let id: u64 = l["uri"].as_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();
        assert_eq!(l["candidate_status"], if id % 10 == 5 { 500 } else { 200 }, "{l}");
    }
    // Same answers over TLS as over plain http, exchange by exchange.
    let plain = service(Flavor::Candidate);
    let plain_out = dir.path().join("plain.jsonl");
    let result = replay_to(&format!("http://{plain}"), &config, &plain_out);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    assert_eq!(summary(&lines), summary(&outcomes(&plain_out)));
}

#[test]
fn an_https_candidate_without_its_ca_gives_unknown_issuer_errors() {
    let candidate = tls_service(Flavor::Candidate);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), None);
    let out = dir.path().join("out.jsonl");
    let result = replay_to(&format!("https://127.0.0.1:{}", candidate.addr.port()), &config, &out);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let lines = outcomes(&out);
    let by_outcome = count(&lines);
    assert_eq!((by_outcome["error"], by_outcome["skipped"], by_outcome.len()), (270, 30, 2), "{by_outcome:?}");
    for l in lines.iter().filter(|l| l["outcome"] == "error") {
        let error = l["error"].as_str().unwrap();
        assert!(error.contains("invalid peer certificate: UnknownIssuer"), "{l}");
        assert_eq!(l["candidate_status"], serde_json::Value::Null);
    }
    assert_eq!(candidate.answered(), 0, "no request got past the handshake");
}

#[test]
fn a_bad_ca_file_is_one_line_naming_it_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let pem = |body: &str| format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n");
    let cases = [
        ("missing.pem", None, "cannot read: No such file or directory"),
        ("empty.pem", Some(String::new()), "no PEM certificate in it"),
        (
            "key-only.pem",
            Some("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into()),
            "no PEM certificate in it",
        ),
        (
            "truncated.pem",
            Some("-----BEGIN CERTIFICATE-----\nMIIB\n".into()),
            "bad PEM: no \"-----END CERTIFICATE-----\" line",
        ),
        ("not-base64.pem", Some(pem("not base64!")), "bad PEM: base64 decode error"),
        ("not-der.pem", Some(pem("aGVsbG8gd29ybGQ=")), "certificate 1 is not a usable CA: BadEncoding"),
    ];
    for (name, content, reason) in cases {
        let ca = dir.path().join(name);
        if let Some(content) = content {
            std::fs::write(&ca, content).unwrap();
        }
        let config = write_config(dir.path(), Some(&ca));
        let out = dir.path().join("out.jsonl");
        let result = replay_to("https://127.0.0.1:1", &config, &out);
        let err = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        let want = format!("shadowtap: [candidate] ca_file {}: {reason}", ca.display());
        assert!(err.starts_with(&want), "{name}: {err}");
        assert!(!out.exists(), "{name}: nothing replayed");
    }
}

/// A candidate written by hand that answers in every framing HTTP/1.1
/// allows, in turns: Content-Length, chunked in odd pieces with a trailer,
/// a 100 Continue first, HTTP/1.0 read until close, and a keep-alive
/// answer after which it closes the connection anyway (the next request
/// sent there finds it closed and must go again on a new one). Each body
/// names the request's target, so reading it wrong shows.
fn framing_zoo() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let served = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let served = counter.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let target = line.split(' ').nth(1).unwrap_or("").to_string();
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                            break;
                        }
                    }
                    let turn = served.fetch_add(1, Ordering::SeqCst) % 5;
                    let body = format!("{{\"path\":{}}}", serde_json::Value::from(target));
                    let ok = match turn {
                        0 => write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()),
                        1 => {
                            let (a, b) = body.split_at(3);
                            write!(
                                stream,
                                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x};x=y\r\n{b}\r\n0\r\nX-Trailer: 1\r\n\r\n",
                                a.len(),
                                b.len()
                            )
                        }
                        2 => write!(
                            stream,
                            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        ),
                        3 => {
                            let _ = write!(stream, "HTTP/1.0 200 OK\r\n\r\n{body}");
                            return;
                        }
                        _ => {
                            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                            return;
                        }
                    };
                    if ok.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, served)
}

#[test]
fn answers_in_every_framing_are_read_whole_and_closed_connections_are_not_errors() {
    let (addr, served) = framing_zoo();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let result = replay(&[&demo_pcap(), "--candidate", &format!("http://{addr}"), "--out", out.to_str().unwrap()]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let lines = outcomes(&out);
    let replayed: Vec<_> = lines.iter().filter(|l| l["outcome"] != "skipped").collect();
    assert_eq!(replayed.len(), 270);
    for line in &replayed {
        assert_eq!(
            (&line["outcome"], &line["candidate_status"]),
            (&serde_json::json!("diff"), &serde_json::json!(200))
        );
        // JSON answers differ at /path; text ones (/health) as a whole.
        let differences = line["differences"].as_array().unwrap();
        let at = |path: &str| differences.iter().find(|d| d["path"] == path).map(|d| d["candidate"].clone());
        let whole = format!("{{\"path\":{}}}", line["uri"]);
        let read_whole = at("/path").as_ref() == Some(&line["uri"])
            || at("").and_then(|c| c.as_str().map(|t| t.contains(&whole))).unwrap_or(false);
        assert!(read_whole, "the body was read whole: {line}");
    }
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 270, "each request answered once, none lost");
}

/// Runs a replay of the demo capture to a twin of the legacy service and
/// returns (seconds it took, outcome counts).
fn timed_replay_to_twin(extra: &[&str]) -> (f64, BTreeMap<String, usize>) {
    let twin = service(Flavor::Legacy);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let mut args = vec![demo_pcap(), "--candidate".into(), format!("http://{twin}"), "--out".into()];
    args.push(out.to_str().unwrap().into());
    args.extend(extra.iter().map(|a| a.to_string()));
    let started = std::time::Instant::now();
    let result = replay(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let seconds = started.elapsed().as_secs_f64();
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    (seconds, count(&outcomes(&out)))
}

#[test]
fn rate_and_pace_hold_replay_back_and_lose_nothing() {
    let want: BTreeMap<String, usize> = [("match".to_string(), 270), ("skipped".to_string(), 30)].into();
    // 270 replayed exchanges at 300 per second: 269 gaps of 1/300 s.
    let (seconds, counts) = timed_replay_to_twin(&["--rate", "300"]);
    assert_eq!(counts, want);
    assert!(seconds >= 0.85, "--rate 300 replayed 270 exchanges in {seconds:.2} s");
    // The capture spans 9.4 ms; at a hundredth of its pace, 0.94 s.
    let (seconds, counts) = timed_replay_to_twin(&["--pace", "0.01", "--lanes", "2"]);
    assert_eq!(counts, want);
    assert!(seconds >= 0.85, "--pace 0.01 replayed a 9.4 ms capture in {seconds:.2} s");
}

#[test]
fn a_candidate_that_never_answers_times_out_per_request_and_replay_ends() {
    // Accepts connections and reads requests, never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let (config, out) = (dir.path().join("c.toml"), dir.path().join("out.jsonl"));
    std::fs::write(&config, "[candidate]\ntimeout_ms = 200\n").unwrap();
    let started = std::time::Instant::now();
    let result = replay(&[
        &demo_pcap(),
        "--candidate",
        &format!("http://{addr}"),
        "--config",
        config.to_str().unwrap(),
        "--concurrency",
        "90",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let lines = outcomes(&out);
    let errors: Vec<_> = lines.iter().filter(|l| l["outcome"] == "error").collect();
    assert_eq!(errors.len(), 270);
    assert!(errors.iter().all(|l| l["error"] == "timed out after 200 ms"), "{}", errors[0]);
    // 270 requests, 90 at a time, 0.2 s each: three rounds.
    let seconds = started.elapsed().as_secs_f64();
    assert!((0.55..10.0).contains(&seconds), "{seconds:.2} s");
}

#[test]
fn an_answer_longer_than_the_body_limit_is_a_body_difference_not_kept_whole() {
    use std::io::{BufRead, BufReader, Write};
    // Answers every request with 100 KB of JSON, keep-alive.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                let body = format!("[{}0]", "0,".repeat(50_000));
                loop {
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap_or(0) > 0 && !line.ends_with("\r\n\r\n") {}
                    if line.is_empty() {
                        return;
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body.as_bytes())).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let result = replay(&[
        &demo_pcap(),
        "--candidate",
        &format!("http://{addr}"),
        "--body-limit",
        "4096",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let lines = outcomes(&out);
    let compared: Vec<_> = lines.iter().filter(|l| l["outcome"] == "diff").collect();
    assert!(compared.len() > 200, "{:?}", count(&lines));
    assert_eq!(count(&lines).get("error"), None, "{:?}", count(&lines));
    for line in compared {
        let body = line["differences"].as_array().unwrap().iter().find(|d| d["path"] == "").expect("a body difference");
        assert_eq!(body["candidate"], "more than 4096 bytes (the body limit)", "{line}");
    }
}
