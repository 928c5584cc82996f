//! Request paths shaped like real APIs (Reddit, GitHub, dated archives,
//! e-mail addressed resources, base62 short links), generated from a
//! seed; a service that answers each the same way every time; and a pcap
//! writer for captures of such traffic (one connection per request).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;

/// A small deterministic generator (xorshift), so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    pub fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len).map(|_| alphabet[self.below(alphabet.len())] as char).collect()
    }
    /// Skewed towards the first items (popular subreddits).
    pub fn zipf<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let (a, b) = (self.below(items.len()), self.below(items.len()));
        items[a.min(b)]
    }
}

const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const BASE62: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const SUBS: &[&str] = &["golang", "rust", "python", "programming", "linux", "netsec", "devops", "sre"];
const WORDS: &[&str] = &["python", "latency", "go", "why", "we", "moved", "to", "rust", "is", "fast", "the", "pcap"];
const SYLLABLES: &[&str] = &["ka", "lo", "mi", "ze", "ro", "ta", "ne", "vi", "su", "do"];

pub fn user_name(rng: &mut Rng) -> String {
    let mut name: String = (0..2 + rng.below(3)).map(|_| rng.pick(SYLLABLES)).collect();
    if rng.below(3) == 0 {
        name.push_str(&rng.below(100).to_string());
    }
    name
}

/// Request targets: the four Reddit shapes, in turns.
pub fn reddit(rng: &mut Rng, i: usize) -> String {
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
pub fn others(rng: &mut Rng, i: usize) -> String {
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
pub fn answer(target: &str) -> String {
    let body = format!("{{\"target\":{target:?},\"ok\":true}}");
    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

/// A classic pcap (Ethernet) of one connection per request: handshake,
/// request, response, both FINs; 1 ms apart, in the order given.
pub fn write_pcap(path: &Path, targets: &[String]) {
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
pub fn identical_service() -> SocketAddr {
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
                    let (mut length, mut close) = (0, false);
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        if header == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                            close |= name.eq_ignore_ascii_case("connection") && value.trim() == "close";
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err()
                        || writer.write_all(answer(&target).as_bytes()).is_err()
                        || close
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}
