//! HTTP/2 over cleartext captured with tcpdump on loopback from real
//! clients and servers, read back with `shadowtap pairs`:
//! - nghttpd (nghttp2) answering `nghttp` (many streams on one connection)
//!   and a curl prior-knowledge POST: every stream one exchange, right
//!   methods, paths, statuses and bodies;
//! - curl `--http2` upgrading from HTTP/1.1 (`Upgrade: h2c`, 101) to a small
//!   Python h2 server (tests/common/h2c_server.py): the upgrading request is
//!   stream 1's, answered over HTTP/2, with trailers;
//! - the same server, a Python h2 client sending requests whose large
//!   header values evict older HPACK entries, and the capture cut after its
//!   first packets (joined mid-connection): early exchanges are marked
//!   `headers_incomplete`, never wrong, later ones come out whole.
//!
//! Needs tcpdump's privileges, nghttp2-server and nghttp2-client (apt), and
//! Python's `h2` (PyPI): without them each test says in one line that it
//! skipped and why, except under CI (`CI=true`).

#[path = "common/needs.rs"]
mod needs;
#[path = "common/tcpdump.rs"]
mod tcpdump;
#[path = "common/wait.rs"]
mod wait;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tcpdump::Tcpdump;

const BIN: &str = env!("CARGO_BIN_EXE_shadowtap");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn common(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common").join(file)
}

/// A child process killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python_h2() -> Result<(), String> {
    let ok =
        Command::new("python3").args(["-c", "import h2"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if ok { Ok(()) } else { Err("Python's h2 package is not installed (.ci/run installs it)".into()) }
}

fn wait_listening(port: u16) {
    wait::wait_for_within(Duration::from_secs(20), &format!("a server on port {port}"), || {
        TcpStream::connect(("127.0.0.1", port)).map(|_| ()).map_err(|e| e.to_string())
    });
}

/// tests/common/h2c_server.py, started; its port.
fn h2c_server() -> (Server, u16) {
    let mut child =
        Command::new("python3").arg(common("h2c_server.py")).stdout(Stdio::piped()).spawn().expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let port = line.trim().parse().expect("the server prints its port");
    (Server(child), port)
}

fn pairs(pcap: &Path, port: u16) -> Vec<Value> {
    let out = Command::new(BIN).arg("pairs").arg(pcap).args(["--port", &port.to_string()]).output().unwrap();
    assert!(out.status.success(), "pairs: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn run(program: &str, args: &[String]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn request_line(e: &Value) -> String {
    format!("{} {}", e["request"]["method"].as_str().unwrap(), e["request"]["uri"].as_str().unwrap())
}

#[test]
fn h2c_prior_knowledge_many_streams_per_connection() {
    let test = "h2c_prior_knowledge_many_streams_per_connection";
    let Some(()) = needs::met(test, needs::live_capture()) else { return };
    let Some(nghttpd) = needs::met(test, needs::program("nghttpd")) else { return };
    let Some(nghttp) = needs::met(test, needs::program("nghttp")) else { return };
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    let files: Vec<(String, String)> =
        (0..10).map(|i| (format!("f{i}.txt"), format!("file {i}\n").repeat(i * 300 + 1))).collect();
    for (name, body) in &files {
        std::fs::write(docs.join(name), body).unwrap();
    }
    let port = free_port();
    let _server = Server(
        Command::new(&nghttpd)
            .args(["--no-tls", "-d"])
            .arg(&docs)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(port);
    let pcap = dir.path().join("h2c.pcap");
    let mut tcpdump = Tcpdump::start(port, &pcap);
    let base = format!("http://127.0.0.1:{port}");
    let mut uris: Vec<String> = files.iter().map(|(name, _)| format!("{base}/{name}")).collect();
    uris.push(format!("{base}/missing"));
    let mut args = vec!["-n".to_string()];
    args.extend(uris);
    run(nghttp.to_str().unwrap(), &args);
    let post = ["-s", "-o", "/dev/null", "--http2-prior-knowledge", "-d", "posted=yes"].map(String::from);
    run("curl", &[&post[..], &[format!("{base}/f1.txt")]].concat());
    tcpdump.finish(12);

    let exchanges = pairs(&pcap, port);
    assert_eq!(exchanges.len(), 12, "{exchanges:#?}");
    let streamed: Vec<&Value> = exchanges.iter().filter(|e| e["request"]["method"] == "GET").collect();
    assert_eq!(streamed.len(), 11);
    let client = &streamed[0]["client"];
    assert!(streamed.iter().all(|e| e["client"] == *client), "nghttp uses one connection");
    let mut ids: Vec<u64> = streamed.iter().map(|e| e["stream_id"].as_u64().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 11, "one stream each");
    for (name, body) in &files {
        let e =
            streamed.iter().find(|e| e["request"]["uri"] == format!("/{name}")).unwrap_or_else(|| panic!("/{name}"));
        assert_eq!(e["request"]["version"], "HTTP/2");
        assert_eq!(e["response"]["status"], 200, "{name}");
        assert_eq!(e["response"]["body"].as_str().unwrap(), body, "{name}");
        assert_eq!(e["request"]["headers"][0], serde_json::json!(["host", format!("127.0.0.1:{port}")]));
        assert!(e.get("headers_incomplete").is_none());
    }
    let missing = streamed.iter().find(|e| e["request"]["uri"] == "/missing").unwrap();
    assert_eq!(missing["response"]["status"], 404);
    let post = exchanges.iter().find(|e| e["request"]["method"] == "POST").unwrap();
    assert_eq!(request_line(post), "POST /f1.txt");
    assert_eq!(post["request"]["body"], "posted=yes");
    assert_eq!(post["stream_id"], 1);
    assert_eq!(post["response"]["body"].as_str().unwrap(), files[1].1);
}

#[test]
fn h2c_upgrade_from_http1() {
    let test = "h2c_upgrade_from_http1";
    let Some(()) = needs::met(test, needs::live_capture()) else { return };
    let Some(()) = needs::met(test, python_h2()) else { return };
    let (_server, port) = h2c_server();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("upgrade.pcap");
    let mut tcpdump = Tcpdump::start(port, &pcap);
    for path in ["/up/1", "/trailers"] {
        let got = run("curl", &["-s".into(), "--http2".into(), format!("http://127.0.0.1:{port}{path}")]);
        assert_eq!(got, format!("GET {path} 0"));
    }
    tcpdump.finish(2);
    let exchanges = pairs(&pcap, port);
    assert_eq!(exchanges.len(), 2, "{exchanges:#?}");
    for (e, path) in exchanges.iter().zip(["/up/1", "/trailers"]) {
        assert_eq!(request_line(e), format!("GET {path}"));
        assert_eq!(e["stream_id"], 1, "the upgrading request is stream 1's");
        assert_eq!(e["request"]["version"], "HTTP/2");
        assert_eq!(e["response"]["version"], "HTTP/2");
        assert_eq!(e["response"]["status"], 200);
        assert_eq!(e["response"]["body"], format!("GET {path} 0"));
        let names: Vec<&str> =
            e["request"]["headers"].as_array().unwrap().iter().map(|h| h[0].as_str().unwrap()).collect();
        assert_eq!(names, ["Host", "User-Agent", "Accept"], "HTTP/1's connection headers are not stream 1's");
    }
    assert!(exchanges[0]["response"].get("trailers").is_none());
    assert_eq!(exchanges[1]["response"]["trailers"], serde_json::json!([["x-served", "yes"]]));
}

/// Writes `pcap` without its first `skip` packets that carry TCP payload
/// from the client (and every packet before the last of them).
fn cut_after_client_packets(pcap: &Path, out: &Path, server_port: u16, skip: usize) {
    use pcap_file::pcap::{PcapReader, PcapWriter};
    let mut reader = PcapReader::new(std::fs::File::open(pcap).unwrap()).unwrap();
    let mut writer = PcapWriter::with_header(std::fs::File::create(out).unwrap(), reader.header()).unwrap();
    let mut seen = 0;
    while let Some(packet) = reader.next_packet() {
        let packet = packet.unwrap();
        if seen < skip {
            let sliced = etherparse::SlicedPacket::from_ethernet(&packet.data).unwrap();
            if let Some(etherparse::TransportSlice::Tcp(tcp)) = sliced.transport
                && tcp.destination_port() == server_port
                && !tcp.payload().is_empty()
            {
                seen += 1;
            }
            continue;
        }
        writer.write_packet(&packet).unwrap();
    }
}

#[test]
fn joined_mid_connection_marks_incomplete_then_recovers() {
    let test = "joined_mid_connection_marks_incomplete_then_recovers";
    let Some(()) = needs::met(test, needs::live_capture()) else { return };
    let Some(()) = needs::met(test, python_h2()) else { return };
    let (_server, port) = h2c_server();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("long.pcap");
    let mut tcpdump = Tcpdump::start(port, &pcap);
    let count = 16;
    let statuses =
        run("python3", &[common("h2c_client.py").display().to_string(), port.to_string(), count.to_string()]);
    assert_eq!(statuses.lines().count(), count);
    tcpdump.finish(count);
    let whole = pairs(&pcap, port);
    assert_eq!(whole.len(), count);
    assert!(whole.iter().all(|e| e.get("headers_incomplete").is_none()));

    // Drop the preface, SETTINGS and the first requests.
    let cut = dir.path().join("cut.pcap");
    cut_after_client_packets(&pcap, &cut, port, 4);
    let joined = pairs(&cut, port);
    assert!(joined.len() >= count - 4 && joined.len() < count, "{} exchanges", joined.len());
    let incomplete = joined.iter().filter(|e| e["headers_incomplete"] == true).count();
    assert!(incomplete >= 1, "the first requests seen refer to entries made before the cut");
    for e in &joined {
        let original =
            whole.iter().find(|w| w["request"]["uri"] == e["request"]["uri"]).expect("an exchange of the capture");
        if e["headers_incomplete"] == true {
            // Whatever is shown is right: every shown header was sent.
            for header in e["request"]["headers"].as_array().unwrap() {
                assert!(original["request"]["headers"].as_array().unwrap().contains(header), "{header} was not sent");
            }
        } else {
            assert_eq!(e["request"], original["request"], "a whole exchange is exactly right");
            assert_eq!(e["response"]["body"], original["response"]["body"]);
        }
    }
    // Replay never sends what is not known whole: skipped, with the reason.
    let outcomes = dir.path().join("outcomes.jsonl");
    let replay = Command::new(BIN)
        .arg("replay")
        .arg(&cut)
        .args(["--port", &port.to_string(), "--candidate", "http://127.0.0.1:1", "--out"])
        .arg(&outcomes)
        .output()
        .unwrap();
    assert!(replay.status.success(), "replay: {}", String::from_utf8_lossy(&replay.stderr));
    let lines: Vec<Value> =
        std::fs::read_to_string(&outcomes).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), joined.len());
    for e in joined.iter().filter(|e| e["headers_incomplete"] == true) {
        let line = lines.iter().find(|l| l["uri"] == e["request"]["uri"]).unwrap();
        assert_eq!(line["outcome"], "skipped", "{line}");
        assert!(line["reason"].as_str().unwrap().contains("headers incomplete"), "{line}");
    }
    let sent = lines.iter().filter(|l| l["outcome"] != "skipped").count();
    assert_eq!(sent, joined.len() - incomplete, "the whole ones are tried");

    let last = joined.last().unwrap();
    assert!(last.get("headers_incomplete").is_none(), "entries made after the cut replaced the unknown ones: {last}");
    assert_eq!(last["request"], whole.last().unwrap()["request"]);
}
