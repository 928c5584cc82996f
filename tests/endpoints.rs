//! Endpoints learned from the traffic, end to end: a capture of generated
//! traffic shaped like Reddit's URLs (posts, fullname lookups, users,
//! listings) and like other real APIs (GitHub issues, dated archives,
//! e-mail addressed resources, base62 short links) is written as a pcap
//! here, then `shadowtap endpoints` must print the templates a person
//! would write, the same from either half of the capture and on every
//! run, and `shadowtap replay` to an identical service on loopback must
//! report a handful of endpoints with enough comparisons for a verdict.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Output};

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len).map(|_| alphabet[self.below(alphabet.len())] as char).collect()
    }
    /// Skewed towards the first items (popular subreddits).
    fn zipf<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let (a, b) = (self.below(items.len()), self.below(items.len()));
        items[a.min(b)]
    }
}

const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const BASE62: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const SUBS: &[&str] = &["golang", "rust", "python", "programming", "linux", "netsec", "devops", "sre"];
const WORDS: &[&str] = &["python", "latency", "go", "why", "we", "moved", "to", "rust", "is", "fast", "the", "pcap"];
const SYLLABLES: &[&str] = &["ka", "lo", "mi", "ze", "ro", "ta", "ne", "vi", "su", "do"];

fn user_name(rng: &mut Rng) -> String {
    let mut name: String = (0..2 + rng.below(3)).map(|_| rng.pick(SYLLABLES)).collect();
    if rng.below(3) == 0 {
        name.push_str(&rng.below(100).to_string());
    }
    name
}

/// Request targets: the four Reddit shapes, in turns.
fn reddit(rng: &mut Rng, i: usize) -> String {
    match i % 4 {
        0 => {
            let slug: Vec<&str> = (0..3 + rng.below(4)).map(|_| rng.pick(WORDS)).collect();
            format!("/r/{}/comments/{}/{}/", rng.zipf(SUBS), rng.chars(BASE36, 6), slug.join("_"))
        }
        1 => format!("/api/info?id=t3_{}", rng.chars(BASE36, 6)),
        2 => format!("/user/{}/about.json", user_name(rng)),
        _ => format!("/r/{}/{}.json", rng.zipf(SUBS), rng.pick(&["hot", "new", "top"])),
    }
}

/// Request targets shaped like other real APIs.
fn others(rng: &mut Rng, i: usize) -> String {
    let owners = ["rust-lang", "golang", "torvalds", "nginx", "python", "tokio-rs"];
    match i % 4 {
        0 => format!(
            "/repos/{}/{}/issues/{}",
            rng.pick(&owners),
            rng.pick(&["core", "cli", "docs", "web"]),
            rng.below(9999)
        ),
        1 => format!("/archive/{}/{:02}/{:02}", 2015 + rng.below(10), 1 + rng.below(12), 1 + rng.below(28)),
        2 => format!("/users/{}@example.com/prefs", user_name(rng)),
        _ => format!("/s/{}", rng.chars(BASE62, 8)),
    }
}

/// What both the recorded service and the candidate answer.
fn answer(target: &str) -> String {
    let body = format!("{{\"target\":{target:?},\"ok\":true}}");
    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

/// A classic pcap (Ethernet) of one connection per request: handshake,
/// request, response, both FINs; 1 ms apart, in the order given.
fn write_pcap(path: &Path, targets: &[String]) {
    let mut out = Vec::new();
    out.extend_from_slice(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut ts_us: u64 = 1_700_000_000_000_000;
    let mut packet = |out: &mut Vec<u8>, from_client: bool, port: u16, seq: u32, ack: u32, flags: u8, data: &[u8]| {
        let (client, server) = ([10, 1, 0, 7], [10, 0, 0, 1]);
        let (src, dst, sport, dport) =
            if from_client { (client, server, port, 80) } else { (server, client, 80, port) };
        let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        let total = (20 + 20 + data.len()) as u16;
        frame.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 6, 0, 0]);
        frame.extend_from_slice(&src);
        frame.extend_from_slice(&dst);
        frame.extend_from_slice(&sport.to_be_bytes());
        frame.extend_from_slice(&dport.to_be_bytes());
        frame.extend_from_slice(&seq.to_be_bytes());
        frame.extend_from_slice(&ack.to_be_bytes());
        frame.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        frame.extend_from_slice(data);
        ts_us += 100;
        out.extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    };
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const PSH_ACK: u8 = 0x18;
    const FIN_ACK: u8 = 0x11;
    for (i, target) in targets.iter().enumerate() {
        let port = 10_000 + (i % 50_000) as u16;
        let request = format!("GET {target} HTTP/1.1\r\nHost: reddit.example\r\nUser-Agent: t\r\n\r\n");
        let response = answer(target);
        let (c, s) = (1000u32, 5000u32);
        let (rq, rs) = (request.len() as u32, response.len() as u32);
        packet(&mut out, true, port, c, 0, SYN, b"");
        packet(&mut out, false, port, s, c + 1, SYN | ACK, b"");
        packet(&mut out, true, port, c + 1, s + 1, ACK, b"");
        packet(&mut out, true, port, c + 1, s + 1, PSH_ACK, request.as_bytes());
        packet(&mut out, false, port, s + 1, c + 1 + rq, PSH_ACK, response.as_bytes());
        packet(&mut out, true, port, c + 1 + rq, s + 1 + rs, FIN_ACK, b"");
        packet(&mut out, false, port, s + 1 + rs, c + 2 + rq, FIN_ACK, b"");
        packet(&mut out, true, port, c + 2 + rq, s + 2 + rs, ACK, b"");
    }
    std::fs::write(path, out).unwrap();
}

/// The candidate: answers every GET exactly like the recorded service
/// (keep-alive, one thread per connection), on a free loopback port.
fn identical_service() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let target = line.split(' ').nth(1).unwrap_or("/").to_string();
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        if header == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() || writer.write_all(answer(&target).as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn shadowtap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shadowtap")).args(args).output().unwrap()
}

/// The `template = "..."` lines of `shadowtap endpoints` output.
fn templates(toml: &str) -> BTreeSet<String> {
    toml.lines().filter_map(|l| l.strip_prefix("template = ")).map(|t| t.trim_matches('"').to_string()).collect()
}

fn endpoints_of(pcap: &Path) -> String {
    let out = shadowtap(&["endpoints", pcap.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// 800 requests in each family, interleaved as traffic would be.
fn traffic() -> Vec<String> {
    let (mut a, mut b) = (Rng(0x5eed), Rng(0xfeed));
    (0..800).flat_map(|i| [reddit(&mut a, i), others(&mut b, i)]).collect()
}

const EXPECTED: &[&str] = &[
    "GET /api/info",
    "GET /archive/{year}/{month}/{day}",
    "GET /r/{name}/comments/{id}/{slug}/",
    "GET /r/{name}/hot.json",
    "GET /r/{name}/new.json",
    "GET /r/{name}/top.json",
    "GET /repos/{name}/{name}/issues/{id}",
    "GET /s/{id}",
    "GET /user/{name}/about.json",
    "GET /users/{email}/prefs",
];

#[test]
fn learned_templates_are_what_a_person_would_write_and_stable_across_halves_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let targets = traffic();
    let (whole, first, second) =
        (dir.path().join("whole.pcap"), dir.path().join("first.pcap"), dir.path().join("second.pcap"));
    write_pcap(&whole, &targets);
    write_pcap(&first, &targets[..targets.len() / 2]);
    write_pcap(&second, &targets[targets.len() / 2..]);

    let printed = endpoints_of(&whole);
    assert_eq!(templates(&printed), set(EXPECTED), "{printed}");
    assert!(printed.contains("# 200 requests, 200 distinct paths, e.g. /archive/"), "{printed}");
    assert_eq!(endpoints_of(&whole), printed, "a second run printed something else");
    assert_eq!(templates(&endpoints_of(&first)), set(EXPECTED), "first half");
    assert_eq!(templates(&endpoints_of(&second)), set(EXPECTED), "second half");
}

#[test]
fn replay_reports_few_endpoints_with_enough_comparisons_and_pinned_templates_agree() {
    let dir = tempfile::tempdir().unwrap();
    let targets = traffic();
    let pcap = dir.path().join("capture.pcap");
    write_pcap(&pcap, &targets);
    let candidate = format!("http://{}", identical_service());
    let run = |extra: &[&str], name: &str| -> (Vec<serde_json::Value>, serde_json::Value) {
        let (out, report) = (dir.path().join(format!("{name}.jsonl")), dir.path().join(format!("{name}.json")));
        let mut args = vec!["replay", pcap.to_str().unwrap(), "--candidate", &candidate];
        let (out_s, report_s) = (out.to_str().unwrap().to_string(), report.to_str().unwrap().to_string());
        args.extend(["--out", &out_s, "--report", &report_s]);
        args.extend(extra);
        let result = shadowtap(&args);
        assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
        let lines = std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (lines, serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap())
    };
    let (lines, report) = run(&[], "learned");
    assert_eq!(lines.len(), targets.len());
    let named: BTreeSet<String> = lines.iter().map(|l| l["endpoint"].as_str().unwrap().to_string()).collect();
    assert_eq!(named, set(EXPECTED), "outcome lines carry the learned names");
    let endpoints = report["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), EXPECTED.len());
    for e in endpoints {
        let name = e["endpoint"].as_str().unwrap();
        assert_eq!(e["diff"], 0, "{e}");
        let distinct: BTreeSet<&str> = lines
            .iter()
            .filter(|l| l["endpoint"] == name)
            .map(|l| l["uri"].as_str().unwrap().split('?').next().unwrap())
            .collect();
        assert_eq!(e["raw_paths"], distinct.len() as u64, "{name}");
        if !name.starts_with("GET /r/{name}/") || name.contains("comments") {
            // 200 requests each, all compared: enough for a verdict (whether
            // it is ready also depends on this loaded machine's latency).
            assert_eq!((&e["count"], &e["match"]), (&200.into(), &200.into()), "{e}");
            assert!(!e["why"].as_str().unwrap().contains("needed"), "{e}");
        }
    }
    // Pinned: the printed templates as the only configuration, learning off.
    let pinned = dir.path().join("templates.toml");
    let out = shadowtap(&["endpoints", pcap.to_str().unwrap(), "--out", pinned.to_str().unwrap()]);
    assert!(out.status.success() && out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[naming]\nlearn = false\ninclude = [\"templates.toml\"]\n").unwrap();
    let (pinned_lines, _) = run(&["--config", config.to_str().unwrap()], "pinned");
    let by_uri = |lines: &[serde_json::Value]| -> std::collections::BTreeMap<String, String> {
        lines.iter().map(|l| (l["uri"].as_str().unwrap().into(), l["endpoint"].as_str().unwrap().into())).collect()
    };
    assert_eq!(by_uri(&pinned_lines), by_uri(&lines));
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let out = shadowtap(&["endpoints", "/nonexistent/capture.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/capture.pcap"), "{stderr}");
}
