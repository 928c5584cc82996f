//! What a test needs from outside the repository: the public corpus, the
//! privileges of live capture, network namespaces. On a developer's fresh
//! clone a missing need skips the test with one line saying what and why;
//! under CI (`CI=true`) it must be there, and a missing need fails.
//!
//! The skip line goes straight to the process's stderr (not through
//! `eprintln!`, which the test harness captures and hides for passing
//! tests), so `scripts/test` sees it and counts it in its closing line.

#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

/// Marker `scripts/test` counts; one line per skipped test.
pub const SKIP_MARK: &str = "shadowtap-test-skipped:";

/// Under CI every need must be met.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// What the need gave when it is met; otherwise, outside CI, prints the
/// skip line and gives `None` (the test returns at once); under CI, fails.
pub fn met<T>(test: &str, need: Result<T, String>) -> Option<T> {
    match need {
        Ok(value) => Some(value),
        Err(why) if in_ci() => panic!("{test}: {why} (CI=true: this test must run)"),
        Err(why) => {
            let line = format!("{SKIP_MARK} {test}: {why}\n");
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
            None
        }
    }
}

/// The public corpus (SHADOWTAP_CORPUS, default ../shared/corpus).
pub fn corpus() -> Result<PathBuf, String> {
    let dir = std::env::var_os("SHADOWTAP_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    if dir.join("MANIFEST.tsv").exists() {
        Ok(dir)
    } else {
        Err(format!("corpus not found at {} (set SHADOWTAP_CORPUS)", dir.display()))
    }
}

/// Effective capabilities of this process (bit n = capability n).
fn effective_capabilities() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("CapEff:").map(|v| v.trim().to_string())))
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .unwrap_or(0)
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;

fn has(cap: u32) -> bool {
    effective_capabilities() & (1 << cap) != 0
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

/// Live capture on `lo` (tcpdump or the daemon): CAP_NET_RAW and tcpdump.
pub fn live_capture() -> Result<(), String> {
    if !has(CAP_NET_RAW) {
        return Err("live capture needs root or CAP_NET_RAW".into());
    }
    if !on_path("tcpdump") {
        return Err("tcpdump is not installed (scripts/setup installs it)".into());
    }
    Ok(())
}

/// Network namespaces and veth pairs: CAP_SYS_ADMIN, CAP_NET_ADMIN and `ip`.
pub fn network_namespaces() -> Result<(), String> {
    live_capture()?;
    if !(has(CAP_SYS_ADMIN) && has(CAP_NET_ADMIN)) {
        return Err("network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN)".into());
    }
    if !on_path("ip") {
        return Err("`ip` (iproute2) is not installed".into());
    }
    Ok(())
}

/// Root itself (tests that switch users with setpriv and set capabilities).
pub fn root() -> Result<(), String> {
    live_capture()?;
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Uid:").map(|v| v.split_whitespace().nth(1).map(str::to_string)))
        })
        .flatten();
    match uid.as_deref() {
        Some("0") => Ok(()),
        _ => Err("needs root (runs the daemon as another user with chosen capabilities)".into()),
    }
}

/// A program on PATH or in /usr/sbin (nginx is there on Debian).
pub fn program(name: &str) -> Result<std::path::PathBuf, String> {
    if on_path(name) {
        return Ok(std::path::PathBuf::from(name));
    }
    let sbin = std::path::Path::new("/usr/sbin").join(name);
    if sbin.is_file() { Ok(sbin) } else { Err(format!("{name} is not installed (.ci/run installs it)")) }
}

/// What the eBPF source needs: root (CAP_BPF and CAP_PERFMON) and a kernel
/// with BTF.
pub fn ebpf() -> Result<(), String> {
    root()?;
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err("the kernel has no BTF (/sys/kernel/btf/vmlinux)".into());
    }
    Ok(())
}
