//! tcpdump writing a pcap of one port's traffic on `lo`, for tests that
//! capture real traffic and replay it. Needs root or CAP_NET_RAW (CI runs
//! as root): a capture that cannot start is a failure, never a skip.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_shadowtap");
/// Generous: the tests run in parallel on a small, busy machine.
const DEADLINE: Duration = Duration::from_secs(30);

fn wait_for<T>(what: &str, check: impl FnMut() -> Result<T, String>) -> T {
    super::wait::wait_for_within(DEADLINE, what, check)
}

/// tcpdump writing a pcap of `tcp port PORT` on `lo`; killed on drop.
pub struct Tcpdump {
    child: Child,
    pcap: PathBuf,
    port: u16,
    stderr: Option<JoinHandle<String>>,
}

impl Tcpdump {
    /// Starts tcpdump and waits until it says it is listening.
    pub fn start(port: u16, pcap: &Path) -> Tcpdump {
        // Immediate mode hands every packet over at once and -U writes it to
        // the file at once (so the file can be polled); 64 MB of kernel
        // buffer so a busy machine does not drop loopback frames.
        let mut child = Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-U", "--immediate-mode", "-B", "65536", "-w"])
            .arg(pcap)
            .arg(format!("tcp port {port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump (installed by .ci/run)");
        let (line_tx, line_rx) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = line_tx.send(line.clone());
                all += &line;
                all.push('\n');
            }
            all
        });
        let mut tcpdump = Tcpdump { child, pcap: pcap.to_path_buf(), port, stderr: Some(reader) };
        tcpdump.wait_listening(&line_rx);
        tcpdump
    }

    fn wait_listening(&mut self, lines: &Receiver<String>) {
        let start = Instant::now();
        loop {
            match lines.recv_timeout(DEADLINE.saturating_sub(start.elapsed())) {
                Ok(line) if line.contains("listening on") => return,
                Ok(_) => {}
                Err(e) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let said = self.stderr.take().map(|r| r.join().unwrap()).unwrap_or_default();
                    panic!("tcpdump never said it was listening ({e}): {said}");
                }
            }
        }
    }

    /// Waits until the capture file holds `answered` exchanges with their
    /// responses (read back with `shadowtap pairs`), then stops tcpdump
    /// (SIGINT) and checks it dropped nothing.
    pub fn finish(&mut self, answered: usize) {
        wait_for(&format!("{answered} answered exchanges in {}", self.pcap.display()), || {
            // The file is still being written: a cut last record is fine here.
            let out = Command::new(BIN)
                .arg("pairs")
                .arg(&self.pcap)
                .args(["--port", &self.port.to_string()])
                .stderr(Stdio::null())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let got = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|e| !e["response"].is_null())
                .count();
            if got >= answered { Ok(()) } else { Err(format!("{got} so far")) }
        });
        // SAFETY: kill(2) on our own child, not reaped yet.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        assert_eq!(rc, 0, "kill tcpdump: {}", std::io::Error::last_os_error());
        let status = super::wait::wait_exit_within(DEADLINE, &mut self.child, "tcpdump after SIGINT");
        let said = self.stderr.take().map(|r| r.join().unwrap()).unwrap_or_default();
        assert!(status.success(), "tcpdump: {status}\n{said}");
        assert!(said.lines().any(|l| l.trim() == "0 packets dropped by kernel"), "incomplete capture: {said}");
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
