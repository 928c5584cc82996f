//! The libssl uprobes (HTTPS plaintext), attached per watched process.
//!
//! A uprobe is a breakpoint written into every process that maps the
//! library: attached host-wide, every other user of libssl on the host (a
//! load generator, a backup agent, the candidate's own client) would trap
//! into the kernel on each SSL call and pay for a tap that does not watch
//! it. So each watched process gets its own links (uprobe_multi with its
//! pid), and the set is refreshed every [`REFRESH`]: a worker forked or
//! started later is probed within that time; a TLS connection it served
//! entirely before is counted as not decrypted (at its close, by the
//! kernel half: no plaintext came), never silently missed.
//!
//! In: the watched processes (the kernel's `traced_tgids`, which follows
//! forks, and the units' cgroups). Out: links.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use libbpf_rs::{Link, Object};

use super::EbpfError;
use super::targets;

/// How often the watched processes are listed again.
pub const REFRESH: Duration = Duration::from_millis(100);

/// The libssl functions and the entry program of each; every one also
/// gets the shared return program but SSL_set_fd.
const SSL_PROBES: [(&str, &str); 6] = [
    ("SSL_read", "ssl_read_enter"),
    ("SSL_read_ex", "ssl_read_ex_enter"),
    ("SSL_write", "ssl_write_enter"),
    ("SSL_write_ex", "ssl_write_ex_enter"),
    ("SSL_do_handshake", "ssl_handshake_enter"),
    ("SSL_set_fd", "ssl_set_fd_enter"),
];

/// The links of the probed processes.
#[derive(Default)]
pub struct SslProbes {
    /// Links per process, and the libssl files they are on.
    attached: BTreeMap<u32, (BTreeSet<PathBuf>, Vec<Link>)>,
    /// Processes whose probing failed, not retried (logged once).
    failed: BTreeSet<u32>,
}

impl SslProbes {
    /// Processes probed now.
    pub fn probed(&self) -> usize {
        self.attached.len()
    }

    /// Probes the processes of `watched` that map a libssl and are not
    /// probed yet; forgets those gone. With `strict` (at start), a failure
    /// is an error; later it is logged, and that process left unprobed
    /// (its TLS connections are counted as not decrypted).
    pub fn refresh(&mut self, object: &mut Object, watched: &BTreeSet<u32>, strict: bool) -> Result<(), EbpfError> {
        let gone: Vec<u32> = self.attached.keys().filter(|t| !watched.contains(t)).copied().collect();
        for tgid in gone {
            self.attached.remove(&tgid);
        }
        self.failed.retain(|t| watched.contains(t));
        for &tgid in watched {
            if self.failed.contains(&tgid) {
                continue;
            }
            let libs = same_files_once(targets::libssl_paths(&[tgid]));
            let known = self.attached.get(&tgid).map(|(l, _)| l);
            if libs.is_empty() || known == Some(&libs) {
                continue;
            }
            match attach_process(object, tgid, &libs) {
                Ok(links) => {
                    self.attached.insert(tgid, (libs, links));
                    tracing::debug!(tgid, "libssl uprobes attached");
                }
                // The process exited between the listing and the attach.
                Err(_) if !Path::new(&format!("/proc/{tgid}")).exists() => {}
                Err(e) if strict => return Err(e),
                Err(e) => {
                    tracing::warn!("process {tgid}: {e}; its HTTPS is counted as not decrypted");
                    self.failed.insert(tgid);
                }
            }
        }
        Ok(())
    }
}

/// One path per file, however many lead to it (/proc/PID/root/...).
pub fn same_files_once(mut paths: BTreeSet<PathBuf>) -> BTreeSet<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| std::fs::metadata(p).map(|m| seen.insert((m.dev(), m.ino()))).unwrap_or(false));
    paths
}

fn attach_process(object: &mut Object, tgid: u32, libs: &BTreeSet<PathBuf>) -> Result<Vec<Link>, EbpfError> {
    let mut links = Vec::new();
    for lib in libs {
        for (function, entry) in SSL_PROBES {
            for prog in object.progs_mut() {
                let name = prog.name().to_string_lossy();
                let retprobe = name == "ssl_return_probe";
                if name != entry && !(retprobe && function != "SSL_set_fd") {
                    continue;
                }
                // uprobe_multi links (Linux 6.6+): CAP_BPF and CAP_PERFMON
                // are enough, where a perf-event uprobe needs CAP_SYS_ADMIN.
                match prog.attach_uprobe_multi(tgid as i32, lib, function, retprobe, false) {
                    Ok(link) => links.push(link),
                    // An older libssl without the _ex forms: the others do.
                    Err(e) if function.ends_with("_ex") => {
                        tracing::debug!(lib = %lib.display(), function, error = %e, "no uprobe")
                    }
                    Err(e) => return Err(uprobe_error(function, lib, e)),
                }
            }
        }
    }
    Ok(links)
}

fn uprobe_error(function: &str, lib: &Path, e: libbpf_rs::Error) -> EbpfError {
    EbpfError::Load(format!(
        "attaching the HTTPS uprobe {function} in {}: {e} (it needs Linux 6.6 or later for uprobe_multi links, \
         and CAP_BPF + CAP_PERFMON; or run with --tls off)",
        lib.display()
    ))
}
