//! Noise must never hide a real bug, and form must never make one: real
//! servers on loopback whose answers differ in form only (validators, the
//! JSON charset parameter, links built from the Host), with real
//! regressions planted (a file missing, a 500), captured with tcpdump and
//! replayed.
//!
//! - Two nginx serve the same JSON files with other file times (so their
//!   ETag and Last-Modified differ, as between any two implementations);
//!   the candidate lacks one file and says `charset=utf-8`. Clients fetch
//!   each file, again with `If-None-Match` and `If-Modified-Since`
//!   (production answers 304), with a `Range`, and plainly again.
//! - A JSON API (tests/common/links_service.py) builds links and redirects
//!   from the Host, answers per user (Authorization, cookie), with
//!   content-hash ETags; the candidate answers 500 for one item.
//!
//! Needs tcpdump's privileges and nginx: without them each test says in one
//! line that it skipped and why, except under CI (`CI=true`).

#[path = "common/needs.rs"]
mod needs;
#[path = "common/outcomes.rs"]
mod outcomes;
#[path = "common/tcpdump.rs"]
mod tcpdump;
#[path = "common/wait.rs"]
mod wait;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use outcomes::{difference_paths, explained, replay};
use serde_json::Value;
use tcpdump::Tcpdump;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn wait_listening(self) -> Server {
        wait::wait_for_within(Duration::from_secs(20), "the server to listen", || {
            TcpStream::connect(self.addr).map(|_| ()).map_err(|e| e.to_string())
        });
        self
    }
}

/// nginx serving `root` on a free port; `extra` goes in its server block.
fn nginx(program: &Path, dir: &Path, name: &str, root: &Path, extra: &str) -> Server {
    let prefix = dir.join(name);
    std::fs::create_dir_all(&prefix).unwrap();
    let port = free_port();
    let p = prefix.display();
    let conf = format!(
        "worker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log warn;\nevents {{ worker_connections 64; }}\n\
         http {{\n access_log off;\n client_body_temp_path {p}/body;\n proxy_temp_path {p}/proxy;\n\
         fastcgi_temp_path {p}/fastcgi;\n uwsgi_temp_path {p}/uwsgi;\n scgi_temp_path {p}/scgi;\n\
         types {{ application/json json; }}\n server {{\n  listen 127.0.0.1:{port};\n  root {};\n  {extra}\n }}\n}}\n",
        root.display()
    );
    std::fs::write(prefix.join("nginx.conf"), conf).unwrap();
    let child = Command::new(program)
        .arg("-p")
        .arg(&prefix)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .arg("-c")
        .arg(prefix.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx");
    Server { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) }.wait_listening()
}

/// tests/common/links_service.py, as legacy or candidate.
fn links_service(candidate: bool) -> Server {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/links_service.py");
    let mut command = Command::new("python3");
    command.arg(script);
    if candidate {
        command.arg("--candidate");
    }
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("links_service.py said {line:?}"));
    Server { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) }.wait_listening()
}

/// One keep-alive HTTP/1.1 connection; answers framed by Content-Length
/// (every server here sends it, 304s and 301s without a body).
struct Conn {
    reader: BufReader<TcpStream>,
    host: String,
}

type Answer = (u16, Vec<(String, String)>, Vec<u8>);

impl Conn {
    fn open(addr: SocketAddr, host: &str) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Conn { reader: BufReader::new(stream), host: host.to_string() }
    }

    fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: form-test\r\n", self.host);
        for (name, value) in headers {
            head += &format!("{name}: {value}\r\n");
        }
        self.reader.get_mut().write_all(format!("{head}\r\n").as_bytes()).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
        let mut answer_headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let Some((name, value)) = line.trim_end().split_once(':') else { break };
            answer_headers.push((name.to_string(), value.trim().to_string()));
        }
        let length = header(&answer_headers, "content-length").map_or(0, |v| v.parse().unwrap());
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        (status, answer_headers, body)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Captures `traffic` to `server`; returns the pcap once it holds every answer.
fn capture(dir: &Path, name: &str, server: &Server, traffic: impl FnOnce() -> usize) -> PathBuf {
    let pcap = dir.join(format!("{name}.pcap"));
    let mut tcpdump = Tcpdump::start(server.addr.port(), &pcap);
    let answered = traffic();
    tcpdump.finish(answered);
    pcap
}

/// The planted regression is a diff at `status`, and `status` is never
/// explained away, whatever production's own answers taught.
fn assert_status_regression(line: &Value) {
    assert_eq!(line["outcome"], "diff", "{line}");
    assert!(difference_paths(line).contains(&"status"), "{line}");
    assert!(!explained(line).iter().any(|(path, _)| *path == "status" || path.is_empty()), "{line}");
}

fn write_files(root: &Path, names: &[&str], mtime: SystemTime) {
    std::fs::create_dir_all(root).unwrap();
    for name in names {
        let path = root.join(name);
        let body = format!(r#"{{"file":"{name}","items":[1,2,3],"note":"the same bytes on both servers"}}"#);
        std::fs::write(&path, body).unwrap();
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
    }
}

#[test]
fn two_nginx_with_other_validators_match_and_a_missing_file_stays_a_diff() {
    let Some(()) = needs::met(
        "form::two_nginx_with_other_validators_match_and_a_missing_file_stays_a_diff",
        needs::live_capture(),
    ) else {
        return;
    };
    let Some(program) = needs::met(
        "form::two_nginx_with_other_validators_match_and_a_missing_file_stays_a_diff",
        needs::program("nginx"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let day = Duration::from_secs(86_400);
    let (legacy_root, candidate_root) = (dir.path().join("legacy-www"), dir.path().join("candidate-www"));
    write_files(&legacy_root, &["a.json", "b.json", "c.json"], SystemTime::UNIX_EPOCH + 19_723 * day);
    write_files(&candidate_root, &["a.json", "b.json"], SystemTime::UNIX_EPOCH + 20_240 * day);
    let legacy = nginx(&program, dir.path(), "legacy", &legacy_root, "");
    let charset = "charset utf-8; charset_types application/json;";
    let candidate = nginx(&program, dir.path(), "candidate", &candidate_root, charset);

    let files = ["/a.json", "/b.json", "/c.json"];
    let pcap = capture(dir.path(), "files", &legacy, || {
        let mut conn = Conn::open(legacy.addr, "files.example");
        for file in files {
            let (status, headers, _) = conn.get(file, &[]);
            assert_eq!(status, 200);
            let etag = header(&headers, "etag").unwrap().to_string();
            let modified = header(&headers, "last-modified").unwrap().to_string();
            assert_eq!(conn.get(file, &[("If-None-Match", &etag)]).0, 304);
            assert_eq!(conn.get(file, &[("If-Modified-Since", &modified)]).0, 304);
            assert_eq!(conn.get(file, &[("Range", "bytes=0-9")]).0, 206);
            assert_eq!(conn.get(file, &[]).0, 200);
        }
        5 * files.len()
    });
    let candidate_url = candidate.url();
    // One at a time: a conditional request can only be sent with the
    // candidate's validator once the plain one before it was compared.
    let run = replay(dir.path(), "files", &pcap, &candidate_url, &["--concurrency", "1"]);
    assert_eq!(run.lines.len(), 15);
    for file in &files[..2] {
        let lines = run.by_uri(file);
        for line in &lines {
            assert_eq!(line["outcome"], "match", "{line}");
            assert!(line["differences"].as_array().unwrap().is_empty(), "{line}");
        }
        let statuses: Vec<(&Value, &Value)> =
            lines.iter().map(|l| (&l["recorded_status"], &l["candidate_status"])).collect();
        let want = [(200, 200), (304, 304), (304, 304), (206, 206), (200, 200)];
        assert_eq!(statuses.len(), want.len(), "{file}");
        for (got, (rec, cand)) in statuses.iter().zip(want) {
            assert_eq!(
                (got.0, got.1),
                (&Value::from(rec), &Value::from(cand)),
                "{file}: conditional requests met with the candidate's validators"
            );
        }
        // The plain answers: the validators set aside, not reported.
        assert_eq!(
            explained(lines[0]),
            [("header:etag", "validator"), ("header:last-modified", "validator")],
            "{}",
            lines[0]
        );
        assert_eq!(lines[0]["equivalences"]["media_type_params"], 1, "{}", lines[0]);
    }
    for line in run.by_uri("/c.json") {
        assert_status_regression(line);
        assert_eq!(line["candidate_status"], 404, "{line}");
    }
    let equivalences = &run.report["equivalences"];
    assert!(equivalences["media_type_params"].as_u64().unwrap() >= 4, "{equivalences}");
    // Nothing about the endpoint's status was learned as noise.
    for e in run.report["endpoints"].as_array().unwrap() {
        let noisy: Vec<&Value> =
            e["noisy_fields"].as_array().unwrap().iter().filter(|f| f["path"] == "status").collect();
        assert!(noisy.is_empty(), "{e}");
    }
}

#[test]
fn links_built_from_the_host_match_per_user_answers_match_and_a_planted_500_stays_a_diff() {
    let test = "form::links_built_from_the_host_match_per_user_answers_match_and_a_planted_500_stays_a_diff";
    let Some(()) = needs::met(test, needs::live_capture()) else { return };
    let legacy = links_service(false);
    let secondary = links_service(false);
    let candidate = links_service(true);
    let dir = tempfile::tempdir().unwrap();
    let users: [&[(&str, &str)]; 3] =
        [&[("Authorization", "Bearer alice")], &[("Cookie", "theme=dark; user=bob")], &[]];
    let pcap = capture(dir.path(), "links", &legacy, || {
        let mut conn = Conn::open(legacy.addr, "api.example.com");
        let mut answered = 0;
        for n in 1..=8 {
            let path = format!("/api/items/{n}");
            for user in users {
                let (status, headers, body) = conn.get(&path, user);
                assert_eq!(status, 200);
                let item: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(item["self"], format!("http://api.example.com{path}"));
                let etag = header(&headers, "etag").unwrap().to_string();
                let mut conditional = user.to_vec();
                conditional.push(("If-None-Match", &etag));
                assert_eq!(conn.get(&path, &conditional).0, 304);
                answered += 2;
            }
            let (status, headers, _) = conn.get(&format!("/old/{n}"), &[]);
            assert_eq!(
                (status, header(&headers, "location")),
                (301, Some(format!("http://api.example.com{path}").as_str()))
            );
            answered += 1;
        }
        answered
    });
    for (name, extra) in [("plain", vec![]), ("secondary", vec!["--secondary", secondary.url().leak() as &str])] {
        let mut args = vec!["--concurrency", "1"];
        args.extend(extra);
        let run = replay(dir.path(), &format!("links-{name}"), &pcap, &candidate.url(), &args);
        assert_eq!(run.lines.len(), 8 * 7, "{name}");
        let mut outcomes = BTreeMap::new();
        for line in &run.lines {
            let uri = line["uri"].as_str().unwrap();
            if uri == "/api/items/7" {
                assert_status_regression(line);
                continue;
            }
            assert_eq!(line["outcome"], "match", "{name}: {line}");
            *outcomes.entry(line["recorded_status"].to_string()).or_insert(0) += 1;
        }
        assert_eq!(outcomes, BTreeMap::from([("200".into(), 21), ("301".into(), 8), ("304".into(), 21)]), "{name}");
        let rewrites = run.report["equivalences"]["host_rewrite"].as_u64().unwrap_or(0);
        assert!(rewrites >= 21 + 8, "{name}: every self link and every redirect: {}", run.report["equivalences"]);
    }
}
