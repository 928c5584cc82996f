//! The shipped systemd units (systemd/): how `systemd-analyze security`
//! scores their hardening (the figures systemd/INSTALL.md states), and that
//! the eBPF unit's capabilities are enough for the eBPF source as an
//! unprivileged user while fewer are refused clearly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[path = "common/needs.rs"]
mod needs;
#[path = "common/wait.rs"]
mod wait;

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `systemd-analyze security --offline=true UNIT_FILE`: its whole report.
fn security_report(analyzer: &Path, unit: &str) -> String {
    let out = Command::new(analyzer)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(repo_file(&format!("systemd/{unit}")))
        .output()
        .expect("systemd-analyze runs");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// "→ Overall exposure level for NAME: 1.6 OK 🙂" gives "1.6 OK".
fn overall_exposure(report: &str, unit: &str) -> String {
    let prefix = format!("Overall exposure level for {unit}: ");
    let line = report.lines().find_map(|l| l.split_once(&prefix).map(|(_, rest)| rest.to_string()));
    let line = line.unwrap_or_else(|| panic!("no overall exposure for {unit} in:\n{report}"));
    line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// Whether the report marks `setting` as exposed (✗) or hardened (✓).
fn marked(report: &str, mark: char, setting: &str) -> bool {
    report.lines().any(|l| l.trim_start().starts_with(mark) && l.contains(setting))
}

#[test]
fn each_unit_scores_what_install_md_says() {
    let Some(analyzer) =
        needs::met("systemd_units::each_unit_scores_what_install_md_says", needs::program("systemd-analyze"))
    else {
        return;
    };
    let install = std::fs::read_to_string(repo_file("systemd/INSTALL.md")).unwrap();
    for (unit, name) in [("shadowtap.service", "shadowtap"), ("shadowtap-ebpf.service", "shadowtap-ebpf")] {
        let report = security_report(&analyzer, unit);
        let score = overall_exposure(&report, unit);
        let (number, word) = score.split_once(' ').unwrap();
        let value: f64 = number.parse().unwrap_or_else(|_| panic!("{unit}: score {score:?}"));
        assert!(value <= 2.0 && word == "OK", "{unit} must stay hardened (at most 2.0 OK), scores {score}:\n{report}");
        let stated = format!("`systemd-analyze security {name}` rates the unit **{score}**");
        assert!(install.contains(&stated), "systemd/INSTALL.md must say: {stated}");
    }
}

#[test]
fn the_ebpf_unit_grants_cap_bpf_and_cap_perfmon_and_no_other_capability() {
    let Some(analyzer) = needs::met(
        "systemd_units::the_ebpf_unit_grants_cap_bpf_and_cap_perfmon_and_no_other_capability",
        needs::program("systemd-analyze"),
    ) else {
        return;
    };
    let report = security_report(&analyzer, "shadowtap-ebpf.service");
    // The analyzer rates each capability (or group) it knows; CAP_PERFMON
    // has no line of its own. Exposed: CAP_BPF and nothing else.
    let exposed: Vec<&str> = report
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('✗') && l.contains("CapabilityBoundingSet=~"))
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert_eq!(exposed, ["CapabilityBoundingSet=~CAP_BPF"], "granted capabilities:\n{report}");
    let rated = report.lines().filter(|l| l.contains("CapabilityBoundingSet=~")).count();
    assert!(rated > 20, "the analyzer rated {rated} capability lines:\n{report}");
    assert!(marked(&report, '✓', "RestrictAddressFamilies=~AF_PACKET"), "no packet sockets:\n{report}");
    assert!(marked(&report, '✓', "NoNewPrivileges="), "no new privileges:\n{report}");
    assert!(marked(&report, '✓', "User=/DynamicUser="), "not root:\n{report}");
}

/// The capabilities the unit file grants (AmbientCapabilities=), in
/// setpriv's spelling: "+bpf,+perfmon".
fn unit_capabilities_for_setpriv(unit: &str) -> String {
    let text = std::fs::read_to_string(repo_file(&format!("systemd/{unit}"))).unwrap();
    let caps: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("AmbientCapabilities="))
        .flat_map(|v| v.split_whitespace().map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase())))
        .collect();
    assert!(!caps.is_empty(), "{unit} grants no ambient capability");
    caps.join(",")
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `python3 -m http.server` on loopback serving `dir` (one connection per
/// request, read with recv and answered with send: plain socket calls).
fn http_server(dir: &Path) -> (Killed, u16) {
    let port = free_port();
    let child = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
        .arg(dir)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let server = Killed(child);
    wait::wait_for_within(Duration::from_secs(10), "the python server", || {
        TcpStream::connect(("127.0.0.1", port)).map(|_| ()).map_err(|e| e.to_string())
    });
    (server, port)
}

fn get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    Ok(answer)
}

fn binary_for_nobody(dir: &Path) -> PathBuf {
    let copy = dir.join("shadowtap");
    std::fs::copy(env!("CARGO_BIN_EXE_shadowtap"), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

fn ebpf_ready() -> Result<(), String> {
    needs::root()?;
    needs::program("python3")?;
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err("the eBPF source needs a kernel with BTF (/sys/kernel/btf/vmlinux)".into());
    }
    Ok(())
}

#[test]
fn the_ebpf_units_capabilities_suffice_as_nobody_and_fewer_fail_in_one_line() {
    let test = "systemd_units::the_ebpf_units_capabilities_suffice_as_nobody_and_fewer_fail_in_one_line";
    let Some(()) = needs::met(test, ebpf_ready()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("x.json"), "{\"id\": 42, \"name\": \"unit test\"}\n").unwrap();
    let (legacy, legacy_port) = http_server(&www);
    let (_candidate, candidate_port) = http_server(&www);
    let bin = binary_for_nobody(dir.path());
    let out = dir.path().join("out.jsonl");
    let log = dir.path().join("daemon.log");
    let metrics = format!("127.0.0.1:{}", free_port());
    let (pid, port, candidate) =
        (legacy.0.id().to_string(), legacy_port.to_string(), format!("http://127.0.0.1:{candidate_port}"));
    // TLS on (the default): the libssl uprobes attach as uprobe_multi
    // links, which these two capabilities allow.
    let args = [
        "run",
        "--source",
        "ebpf",
        "--pid",
        &pid,
        "--port",
        &port,
        "--candidate",
        &candidate,
        "--out",
        out.to_str().unwrap(),
        "--metrics",
        &metrics,
    ];
    let as_nobody = ["--reuid=nobody", "--regid=nogroup", "--init-groups"];
    let caps = unit_capabilities_for_setpriv("shadowtap-ebpf.service");
    assert_eq!(caps, "+bpf,+perfmon");

    // One capability fewer (CAP_BPF without CAP_PERFMON): exit 2, one line
    // of shadowtap's naming what is missing.
    let result = Command::new("setpriv")
        .args(as_nobody)
        .args(["--inh-caps=+bpf", "--ambient-caps=+bpf"])
        .arg(&bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "without CAP_PERFMON: {stderr}");
    // libbpf's own diagnostics go to the log, not to stderr: one line.
    let ours: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(ours.len(), 1, "one line: {stderr}");
    assert!(
        ours[0].starts_with("shadowtap: the eBPF source needs") && ours[0].contains("CAP_PERFMON"),
        "a clear error naming the capability: {stderr}"
    );

    // Exactly the unit's capabilities, as nobody: the exchanges are rebuilt
    // and replayed.
    let daemon = Command::new("setpriv")
        .args(as_nobody)
        .arg(format!("--inh-caps={caps}"))
        .arg(format!("--ambient-caps={caps}"))
        .arg(&bin)
        .args(args)
        .env("SHADOWTAP_LOG", "info")
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("setpriv (util-linux)");
    let mut daemon = Killed(daemon);
    let daemon_pid = daemon.0.id();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait::wait_for_within(Duration::from_secs(20), "the eBPF source to attach", || {
        if let Ok(Some(status)) = daemon.0.try_wait() {
            panic!("the daemon exited ({status}) with the unit's capabilities: {}", log_text());
        }
        if log_text().contains("capturing") { Ok(()) } else { Err(log_text()) }
    });
    let status = std::fs::read_to_string(format!("/proc/{daemon_pid}/status")).unwrap();
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).unwrap_or("").to_string();
    assert!(field("Uid:").split_whitespace().skip(1).all(|id| id == "65534"), "runs as nobody: {}", field("Uid:"));
    let effective = u64::from_str_radix(field("CapEff:").split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(effective, (1 << 38) | (1 << 39), "CAP_PERFMON (38) and CAP_BPF (39) only: {}", field("CapEff:"));

    let n = 10;
    let legacy_addr: SocketAddr = format!("127.0.0.1:{legacy_port}").parse().unwrap();
    for _ in 0..n {
        let answer = get(legacy_addr, "/x.json").unwrap();
        assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    }
    let lines = wait::wait_for_within(Duration::from_secs(20), "an outcome per request", || {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n { Ok(lines) } else { Err(format!("{} outcomes; log: {}", lines.len(), log_text())) }
    });
    assert_eq!(lines.len(), n, "{lines:?}");
    assert!(lines.iter().all(|l| l.contains("\"outcome\":\"match\"")), "{lines:#?}");
    unsafe { libc::kill(daemon_pid as i32, libc::SIGTERM) };
    let exit = wait::wait_exit_within(Duration::from_secs(30), &mut daemon.0, "the daemon after SIGTERM");
    assert!(exit.success(), "exit after SIGTERM: {exit}\n{}", log_text());
}
