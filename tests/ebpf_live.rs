//! The eBPF source (`shadowtap run --source ebpf`) against real services:
//! a pre-fork python HTTP/1.1 service (tests/common/ebpf_service.py) on a
//! TCP port or a unix socket, nginx over HTTPS and in front of the unix
//! socket, curl and python clients. The daemon runs as a child process; its
//! outcome lines and metrics are checked. Root and a kernel with BTF are
//! needed: without them each test says in one line what it skipped, except
//! under CI, where they must run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

#[path = "common/needs.rs"]
mod needs;
#[path = "common/wait.rs"]
mod wait;

const BIN: &str = env!("CARGO_BIN_EXE_shadowtap");
const SERVICE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/ebpf_service.py");
const DEADLINE: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn wait_for<T>(what: &str, check: impl FnMut() -> Result<T, String>) -> T {
    wait::wait_for_within(DEADLINE, what, check)
}

/// A child process killed (with its process group) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.0.id() as i32;
        // SAFETY: signalling our own child's process group.
        unsafe { libc::kill(-pid, libc::SIGTERM) };
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn spawn(mut command: Command) -> Proc {
    use std::os::unix::process::CommandExt;
    command.stdin(Stdio::null()).stdout(Stdio::null()).process_group(0);
    Proc(command.spawn().unwrap_or_else(|e| panic!("cannot start {command:?}: {e}")))
}

/// The python service on a TCP port: (process, address). `name`
/// "candidate" starts the threaded candidate flavour.
fn tcp_service(dir: &Path, name: &str) -> (Proc, SocketAddr) {
    let port_file = dir.join(format!("{name}.port"));
    let mut command = Command::new("python3");
    command.args([SERVICE, if name == "candidate" { "candidate" } else { "tcp" }, s(&port_file)]);
    let proc = spawn(command);
    (proc, SocketAddr::from(([127, 0, 0, 1], written_port(&port_file))))
}

/// The port the service writes to `port_file` once it listens.
fn written_port(port_file: &Path) -> u16 {
    wait_for("the service's port", || {
        std::fs::read_to_string(port_file).map_err(|e| e.to_string())?.trim().parse().map_err(|e| format!("{e}"))
    })
}

/// The eBPF tap watching `--pid pid --port port`, replaying to
/// `candidate`, with `extra` flags first.
fn ebpf_tap(dir: &Path, pid: u32, port: u16, candidate: SocketAddr, extra: &[&str]) -> Tap {
    let (pid, port, candidate) = (pid.to_string(), port.to_string(), format!("http://{candidate}"));
    let mut args = extra.to_vec();
    args.extend(["--source", "ebpf", "--pid", &pid, "--port", &port, "--candidate", &candidate]);
    Tap::start(dir, "ebpf", &args)
}

/// One request per connection; (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: legacy\r\nConnection: close\r\n\r\n").unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP head");
    let status = String::from_utf8_lossy(&bytes[9..12]).parse().unwrap();
    (status, bytes[split + 4..].to_vec())
}

/// `paths` on one connection, written at once (pipelined), the last
/// closing it; the bytes of all the answers.
fn pipelined(addr: SocketAddr, paths: &[&str]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut requests = String::new();
    for (i, path) in paths.iter().enumerate() {
        let close = if i + 1 == paths.len() { "Connection: close\r\n" } else { "" };
        requests.push_str(&format!("GET {path} HTTP/1.1\r\nHost: legacy\r\n{close}\r\n"));
    }
    stream.write_all(requests.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    bytes
}

/// `shadowtap run`, its outcome file and metrics address.
struct Tap {
    proc: Proc,
    out: PathBuf,
    metrics: SocketAddr,
    stderr: PathBuf,
}

impl Tap {
    fn start(dir: &Path, name: &str, args: &[&str]) -> Tap {
        let out = dir.join(format!("{name}.jsonl"));
        let stderr = dir.join(format!("{name}.stderr"));
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut command = Command::new(BIN);
        command.arg("run").args(args).args(["--out", s(&out), "--metrics", &metrics.to_string()]);
        command.env("SHADOWTAP_LOG", "info").stderr(std::fs::File::create(&stderr).unwrap());
        let mut tap = Tap { proc: spawn(command), out, metrics, stderr };
        wait_for("the tap's /healthz", || {
            if let Some(status) = tap.proc.0.try_wait().unwrap() {
                panic!("the tap exited ({status}):\n{}", tap.stderr_text());
            }
            match http_text(tap.metrics, "/healthz") {
                Some(body) if body.trim() == "ok" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        tap
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The sum of a metric's samples.
    fn metric(&self, name: &str) -> f64 {
        let text = http_text(self.metrics, "/metrics").unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits until `n` outcome lines are written, stops the tap, returns them.
    fn outcomes(mut self, n: usize) -> Vec<Value> {
        wait_for(&format!("{n} outcome lines in {}", self.out.display()), || {
            let lines = read_outcomes(&self.out);
            if lines.len() >= n {
                Ok(())
            } else {
                Err(format!("{} lines; stderr:\n{}", lines.len(), self.stderr_text()))
            }
        });
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.proc.0.id() as i32, libc::SIGTERM) };
        let status = self.proc.0.wait().unwrap();
        assert!(status.success(), "the tap stopped with {status}:\n{}", self.stderr_text());
        read_outcomes(&self.out)
    }
}

fn http_text(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text.split_once("\r\n\r\n")?.1.to_string())
}

fn read_outcomes(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

/// What must agree between two sources: per request, what happened.
fn summary(lines: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = lines
        .iter()
        .map(|l| {
            format!("{} {} {} {} {}", l["method"], l["uri"], l["outcome"], l["recorded_status"], l["candidate_status"])
        })
        .collect();
    out.sort();
    out
}

fn uris_with(lines: &[Value], outcome: &str) -> Vec<String> {
    let mut out: Vec<String> =
        lines.iter().filter(|l| l["outcome"] == outcome).map(|l| l["uri"].as_str().unwrap_or("").to_string()).collect();
    out.sort();
    out
}

// ---- plaintext: the same exchanges as the packet tap ----------------------

#[test]
fn plaintext_traffic_gives_the_same_exchanges_as_the_pcap_source() {
    let name = "plaintext_traffic_gives_the_same_exchanges_as_the_pcap_source";
    if needs::met(name, needs::ebpf()).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (legacy, legacy_addr) = tcp_service(dir.path(), "legacy");
    let (_candidate, candidate_addr) = tcp_service(dir.path(), "candidate");
    let candidate = format!("http://{candidate_addr}");
    let port = legacy_addr.port().to_string();
    let pcap = Tap::start(dir.path(), "pcap", &["--interface", "lo", "--port", &port, "--candidate", &candidate]);
    let ebpf = ebpf_tap(dir.path(), legacy.0.id(), legacy_addr.port(), candidate_addr, &[]);

    let (status, small) = get(legacy_addr, "/small");
    assert_eq!((status, small.as_slice()), (200, &b"{\"kind\":\"small\",\"items\":[1,2,3]}"[..]));
    let (_, before) = get(legacy_addr, "/pid");
    // Keep-alive and pipelining: four requests written at once, a 1 MiB
    // answer and a chunked one among them.
    let answers = pipelined(legacy_addr, &["/small", "/big", "/chunked", "/small"]);
    assert!(answers.len() > 1 << 20, "the pipelined answers: {} bytes", answers.len());
    // The worker leaves; the master forks a new one, after the tap started.
    get(legacy_addr, "/respawn");
    let (_, after) = get(legacy_addr, "/pid");
    assert_ne!(before, after, "a new worker answers after /respawn");
    get(legacy_addr, "/big");

    let expected = 9;
    let ebpf_lines = ebpf.outcomes(expected);
    let pcap_lines = pcap.outcomes(expected);
    assert_eq!(ebpf_lines.len(), expected, "{ebpf_lines:#?}");
    assert_eq!(summary(&ebpf_lines), summary(&pcap_lines));
    // /pid differs between legacy and candidate (other processes); every
    // other answer, the 1 MiB ones included, was seen whole and matches.
    let matched = uris_with(&ebpf_lines, "match");
    assert_eq!(
        matched,
        ["/big", "/big", "/chunked", "/respawn", "/small", "/small", "/small"],
        "{:#?}",
        summary(&ebpf_lines)
    );
}

// ---- HTTPS: plaintext through libssl --------------------------------------

/// nginx with a self-signed certificate on `tls_port` and the same answers
/// in clear on `plain_port` (the candidate).
fn nginx_tls(dir: &Path, tls_port: u16, plain_port: u16) -> (Proc, u32) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("big.bin"), vec![b'x'; 1 << 20]).unwrap();
    let d = s(dir);
    let locations = format!(
        "location = /small {{ default_type application/json; return 200 '{{\"tls\":true}}'; }}\n\
         location = /big.bin {{ root {d}; }}"
    );
    let config = format!(
        "daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/nginx.err;\n\
         events {{}}\n\
         http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};\n\
           fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
           server {{ listen 127.0.0.1:{tls_port} ssl; ssl_certificate {d}/cert.pem;\n\
             ssl_certificate_key {d}/key.pem; {locations} }}\n\
           server {{ listen 127.0.0.1:{plain_port}; {locations} }} }}\n"
    );
    std::fs::write(dir.join("nginx.conf"), config).unwrap();
    let mut command = Command::new(needs::program("nginx").unwrap());
    command.args(["-c", &format!("{d}/nginx.conf"), "-p", d]);
    let proc = spawn(command);
    wait_for("nginx listening", || TcpStream::connect(("127.0.0.1", tls_port)).map(|_| ()).map_err(|e| e.to_string()));
    let pid = proc.0.id();
    (proc, pid)
}

#[test]
fn https_is_read_as_plaintext_for_curl_and_python_clients_where_packets_show_nothing() {
    let name = "https_is_read_as_plaintext_for_curl_and_python_clients_where_packets_show_nothing";
    let Some(()) = needs::met(name, needs::ebpf()) else { return };
    let Some(_) = needs::met(name, needs::program("nginx")) else { return };
    let Some(_) = needs::met(name, needs::program("curl")) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (tls_port, plain_port) = (free_port(), free_port());
    let (_nginx, master) = nginx_tls(dir.path(), tls_port, plain_port);
    let candidate = format!("http://127.0.0.1:{plain_port}");
    let port = tls_port.to_string();
    let pcap = Tap::start(dir.path(), "pcap", &["--interface", "lo", "--port", &port, "--candidate", &candidate]);
    let ebpf = Tap::start(
        dir.path(),
        "ebpf",
        &["--source", "ebpf", "--pid", &master.to_string(), "--port", &port, "--candidate", &candidate],
    );
    let url = |path: &str| format!("https://127.0.0.1:{tls_port}{path}");
    // curl: two requests on one kept-alive connection, then the 1 MiB file.
    let curl = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-o", "/dev/null", &url("/small"), &url("/small?again=1")])
        .status()
        .unwrap();
    assert!(curl.success());
    let curl = Command::new("curl").args(["-sk", "-o", "/dev/null", &url("/big.bin")]).status().unwrap();
    assert!(curl.success());
    let python = Command::new("python3")
        .args([
            "-c",
            "import ssl,sys,urllib.request as u; c=ssl._create_unverified_context(); \
             b=u.urlopen(sys.argv[1],context=c).read(); assert b==b'{\"tls\":true}', b",
            &url("/small?from=python"),
        ])
        .status()
        .unwrap();
    assert!(python.success());

    let lines = ebpf.outcomes(4);
    assert_eq!(
        uris_with(&lines, "match"),
        ["/big.bin", "/small", "/small?again=1", "/small?from=python"],
        "{lines:#?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pcap.metric("shadowtap_exchanges_total"), 0.0, "packets of HTTPS show no exchange");
    assert!(read_outcomes(&pcap.out).is_empty());
}

/// The pre-fork python service over TLS (python's ssl: libssl), with a
/// self-signed certificate; its port.
fn tls_service(dir: &Path) -> (Proc, u16) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let port_file = dir.join("legacy.port");
    let mut command = Command::new("python3");
    command.args([SERVICE, "tls", s(&port_file)]).env("CERT", &cert_file).env("KEY", &key_file);
    let legacy = spawn(command);
    (legacy, written_port(&port_file))
}

/// curl over HTTPS, one connection: the body.
fn curl_https(port: u16, path: &str) -> String {
    let out = Command::new("curl").args(["-sk", &format!("https://127.0.0.1:{port}{path}")]).output().unwrap();
    assert!(out.status.success(), "curl {path}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The uprobes are per watched process (other users of libssl never
/// trap): a worker forked after the tap started is probed within a
/// refresh, and each of its TLS connections before that is counted as
/// not decrypted, so every connection is either rebuilt or counted.
#[test]
fn https_of_a_worker_forked_later_is_read_and_none_is_lost_silently() {
    let name = "https_of_a_worker_forked_later_is_read_and_none_is_lost_silently";
    let Some(()) = needs::met(name, needs::ebpf()) else { return };
    let Some(_) = needs::met(name, needs::program("curl")) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (legacy, port) = tls_service(dir.path());
    let (_candidate, candidate_addr) = tcp_service(dir.path(), "candidate");
    let tap = ebpf_tap(dir.path(), legacy.0.id(), port, candidate_addr, &[]);
    let pid_of = |body: &str| body.trim_start_matches("{\"pid\":").trim_end_matches('}').to_string();
    let before = pid_of(&curl_https(port, "/pid?n=0"));
    curl_https(port, "/respawn");
    let mut sent = 2;
    // Until a request is answered by the new worker (perhaps before its
    // probes are attached).
    for n in 1..=50 {
        sent += 1;
        if pid_of(&curl_https(port, &format!("/pid?n={n}"))) != before {
            break;
        }
        assert!(n < 50, "no new worker answered");
    }
    // The new worker is probed within a refresh (100 ms, longer on a busy
    // machine: each attach reads libssl's symbols): of connections spread
    // over 3 s, the first may be missed (counted), then every one is read.
    let last = 10;
    for j in 1..=last {
        curl_https(port, &format!("/small?j={j}"));
        std::thread::sleep(Duration::from_millis(300));
    }
    sent += last;
    wait_for("every connection rebuilt or counted", || {
        let rebuilt = read_outcomes(&tap.out).len() as f64;
        let not_decrypted = tap.metric("shadowtap_ebpf_tls_not_decrypted_total");
        if rebuilt + not_decrypted == sent as f64 {
            Ok(())
        } else {
            Err(format!("{rebuilt} rebuilt + {not_decrypted} not decrypted of {sent}"))
        }
    });
    assert_eq!(tap.metric("shadowtap_ebpf_tls_probed_processes"), 2.0, "the master and the new worker");
    let lines = tap.outcomes(0);
    let mut read: Vec<u32> =
        uris_with(&lines, "match").iter().filter_map(|u| u.strip_prefix("/small?j=")?.parse().ok()).collect();
    read.sort_unstable();
    let first = *read.first().expect("the new worker's HTTPS was read");
    assert!(first < last, "read only from {first} of {last}: {:#?}", summary(&lines));
    assert_eq!(read, (first..=last).collect::<Vec<_>>(), "once probed, every connection is read");
}

#[test]
fn with_tls_off_https_connections_are_counted_not_decrypted_and_never_taken_for_http() {
    let name = "with_tls_off_https_connections_are_counted_not_decrypted_and_never_taken_for_http";
    let Some(()) = needs::met(name, needs::ebpf()) else { return };
    let Some(_) = needs::met(name, needs::program("curl")) else { return };
    let dir = tempfile::tempdir().unwrap();
    let legacy = tls_service(dir.path());
    let (_candidate, candidate_addr) = tcp_service(dir.path(), "candidate");
    let tap = ebpf_tap(dir.path(), legacy.0.0.id(), legacy.1, candidate_addr, &["--tls", "off"]);
    for n in 0..3 {
        curl_https(legacy.1, &format!("/small?n={n}"));
    }
    wait_for("three TLS connections counted", || match tap.metric("shadowtap_ebpf_tls_not_decrypted_total") {
        3.0 => Ok(()),
        other => Err(format!("{other}")),
    });
    assert_eq!(tap.metric("shadowtap_ebpf_tls_probed_processes"), 0.0);
    assert_eq!(tap.metric("shadowtap_exchanges_total"), 0.0, "TLS records are not taken for HTTP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(tap.outcomes(0).is_empty());
}

// ---- a unix socket behind nginx ------------------------------------------

#[test]
fn a_service_on_a_unix_socket_behind_nginx_is_seen_on_its_socket() {
    let name = "a_service_on_a_unix_socket_behind_nginx_is_seen_on_its_socket";
    let Some(()) = needs::met(name, needs::ebpf()) else { return };
    let Some(nginx) = needs::met(name, needs::program("nginx")) else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = s(dir.path());
    let socket = dir.path().join("app.sock");
    let mut command = Command::new("python3");
    command.args([SERVICE, "unix", s(&socket)]);
    let app = spawn(command);
    wait_for("the unix socket", || if socket.exists() { Ok(()) } else { Err("not yet".into()) });
    let front = free_port();
    // user root: nginx's workers must reach the socket in this test's
    // private directory (the tests run as root).
    let config = format!(
        "daemon off; user root; worker_processes 1; pid {d}/nginx.pid; error_log {d}/nginx.err;\n\
         events {{}}\n\
         http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};\n\
           fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
           upstream app {{ server unix:{sock}; keepalive 4; }}\n\
           server {{ listen 127.0.0.1:{front}; location / {{ proxy_pass http://app;\n\
             proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }} }}\n",
        sock = s(&socket)
    );
    std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
    let mut command = Command::new(nginx);
    command.args(["-c", &format!("{d}/nginx.conf"), "-p", d]);
    let _nginx = spawn(command);
    let front_addr = SocketAddr::from(([127, 0, 0, 1], front));
    wait_for("nginx listening", || TcpStream::connect(front_addr).map(|_| ()).map_err(|e| e.to_string()));
    let (_candidate, candidate_addr) = tcp_service(dir.path(), "candidate");
    let tap = Tap::start(
        dir.path(),
        "ebpf",
        &[
            "--source",
            "ebpf",
            "--pid",
            &app.0.id().to_string(),
            "--unix",
            s(&socket),
            "--candidate",
            &format!("http://{candidate_addr}"),
        ],
    );
    for path in ["/small", "/big", "/chunked"] {
        let (status, _) = get(front_addr, path);
        assert_eq!(status, 200, "{path} through nginx");
    }
    let lines = tap.outcomes(3);
    assert_eq!(uris_with(&lines, "match"), ["/big", "/chunked", "/small"], "{lines:#?}");
}

// ---- a systemd unit's cgroup: workers started later -----------------------

/// A cgroup named like a unit, removed when dropped.
struct UnitCgroup(PathBuf);

impl Drop for UnitCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_units_workers_are_followed_through_its_cgroup_also_when_started_later() {
    let name = "a_units_workers_are_followed_through_its_cgroup_also_when_started_later";
    let Some(()) = needs::met(name, needs::ebpf()) else { return };
    let Some(root) = needs::met(name, shadowtap::ebpf::targets::cgroup2_root().map_err(|e| e.to_string())) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let unit = format!("shadowtap-test-{}.service", std::process::id());
    let cgroup = UnitCgroup(root.join(&unit));
    std::fs::create_dir_all(&cgroup.0).unwrap();
    // The shell moves itself into the unit's cgroup, then becomes the
    // service: the master and every worker it forks are in it.
    let port_file = dir.path().join("legacy.port");
    let mut command = Command::new("sh");
    command.args([
        "-c",
        &format!("echo $$ > {}/cgroup.procs && exec python3 {SERVICE} tcp {}", s(&cgroup.0), s(&port_file)),
    ]);
    let _legacy = spawn(command);
    let port = written_port(&port_file);
    let legacy_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (_candidate, candidate_addr) = tcp_service(dir.path(), "candidate");
    let tap = Tap::start(
        dir.path(),
        "ebpf",
        &[
            "--source",
            "ebpf",
            "--unit",
            &unit,
            "--port",
            &port.to_string(),
            "--candidate",
            &format!("http://{candidate_addr}"),
        ],
    );
    let (_, before) = get(legacy_addr, "/pid");
    get(legacy_addr, "/respawn");
    let (_, after) = get(legacy_addr, "/pid");
    assert_ne!(before, after);
    get(legacy_addr, "/small");
    get(legacy_addr, "/chunked");
    let lines = tap.outcomes(5);
    let mut uris: Vec<&str> = lines.iter().filter_map(|l| l["uri"].as_str()).collect();
    uris.sort();
    assert_eq!(uris, ["/chunked", "/pid", "/pid", "/respawn", "/small"], "{:#?}", summary(&lines));
    assert_eq!(uris_with(&lines, "match"), ["/chunked", "/respawn", "/small"]);
}

// ---- a full ring buffer: counted and marked, never joined -----------------

#[test]
fn a_full_ring_buffer_is_counted_and_its_exchanges_marked_gap() {
    let name = "a_full_ring_buffer_is_counted_and_its_exchanges_marked_gap";
    let Some(()) = needs::met(name, needs::ebpf()) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (legacy, legacy_addr) = tcp_service(dir.path(), "legacy");
    let (_candidate, candidate_addr) = tcp_service(dir.path(), "candidate");
    let config = dir.path().join("small-ring.toml");
    std::fs::write(&config, "[ebpf]\nring_buffer_mb = 1\n").unwrap();
    let tap = ebpf_tap(dir.path(), legacy.0.id(), legacy_addr.port(), candidate_addr, &["--config", s(&config)]);
    // Eight 1 MiB answers written as fast as the worker can: a 1 MiB ring
    // cannot hold them before the reader drains it.
    let answers = pipelined(legacy_addr, &["/big"; 8]);
    assert!(answers.len() > 8 << 20);
    wait_for("ring buffer drops counted", || {
        let drops = tap.metric("shadowtap_ebpf_ring_buffer_drops_total");
        if drops > 0.0 { Ok(()) } else { Err(format!("{drops} drops")) }
    });
    let lines = tap.outcomes(8);
    let reasons: Vec<&str> = lines.iter().filter_map(|l| l["reason"].as_str()).collect();
    let gaps = reasons.iter().filter(|r| r.contains("capture gap")).count();
    assert!(gaps > 0, "an answer that lost chunks is marked gap: {reasons:?} {:#?}", summary(&lines));
    for line in &lines {
        assert!(
            line["outcome"] == "match" || line["outcome"] == "skipped",
            "never a wrong diff from lost bytes: {line}"
        );
    }
}

// ---- --sample: decided in the kernel --------------------------------------

#[test]
fn sampled_out_connections_are_never_followed_and_are_counted() {
    let name = "sampled_out_connections_are_never_followed_and_are_counted";
    let Some(()) = needs::met(name, needs::ebpf()) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (legacy, legacy_addr) = tcp_service(dir.path(), "legacy");
    let (_candidate, candidate_addr) = tcp_service(dir.path(), "candidate");
    let tap = ebpf_tap(dir.path(), legacy.0.id(), legacy_addr.port(), candidate_addr, &["--sample", "0"]);
    for _ in 0..5 {
        assert_eq!(get(legacy_addr, "/small").0, 200);
    }
    wait_for("5 connections sampled out", || {
        let out = tap.metric("shadowtap_ebpf_connections_sampled_out_total");
        if out >= 5.0 { Ok(()) } else { Err(format!("{out}")) }
    });
    assert_eq!(tap.metric("shadowtap_ebpf_events_total"), 0.0, "nothing of theirs reaches the ring buffer");
    assert_eq!(tap.metric("shadowtap_exchanges_total"), 0.0);
}
