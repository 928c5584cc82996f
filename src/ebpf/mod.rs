//! The eBPF capture source: what the watched processes themselves read
//! from and write to the sockets they accepted, HTTPS as plaintext
//! (libssl uprobes), unix sockets included.
//!
//! In: an [`EbpfConfig`] (pids, systemd units, ports, unix paths, TLS on
//! or off). Out: [`Event`]s (open, data chunks at byte offsets, skips,
//! close) in the order the kernel wrote them to one BPF ring buffer, and
//! [`EbpfCounters`]. The pipeline's reader hands the events to the shards
//! as per-connection byte streams (`crate::streams`), so no TCP
//! reassembly is involved; `record.rs` writes them as a pcapng.
//!
//! `bpf/tap.bpf.c` is the kernel half; `loader.rs` loads it (libbpf-rs,
//! CO-RE against the kernel's BTF), `targets.rs` resolves what to watch.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;

mod event;
mod loader;
pub mod record;
pub mod targets;
mod uprobes;

pub use event::{Endpoint, Event, Malformed, Side, parse, stand_in_addresses};
pub use loader::{Plan, Stat};

/// `[ebpf]`: what the eBPF source watches (`run --source ebpf`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EbpfConfig {
    /// Processes to watch, with the processes they fork.
    pub pids: Vec<u32>,
    /// systemd units to watch, by their cgroup (new workers included).
    pub units: Vec<String>,
    /// Unix socket paths the service listens on (with `[capture] ports`,
    /// the sockets kept; none of either: every accepted socket).
    pub unix: Vec<String>,
    /// "auto": HTTPS plaintext through libssl uprobes; "off": TLS
    /// connections are counted and skipped.
    pub tls: String,
    /// The ring buffer between the kernel and shadowtap, MiB (a power of two).
    pub ring_buffer_mb: u32,
    /// `run`: also write what was seen to this pcapng (`record.rs`).
    pub record: Option<PathBuf>,
}

impl Default for EbpfConfig {
    fn default() -> Self {
        EbpfConfig {
            pids: Vec::new(),
            units: Vec::new(),
            unix: Vec::new(),
            tls: "auto".into(),
            ring_buffer_mb: 64,
            record: None,
        }
    }
}

impl EbpfConfig {
    /// What is wrong with these settings, if anything (one line).
    pub fn check(&self) -> Result<(), String> {
        if self.pids.is_empty() && self.units.is_empty() {
            return Err(
                "the eBPF source needs what to watch: --pid PID or --unit NAME.service ([ebpf] pids, units)".into()
            );
        }
        if self.tls != "auto" && self.tls != "off" {
            return Err(format!("--tls {:?}: must be auto or off", self.tls));
        }
        let mb = self.ring_buffer_mb;
        if !(1..=1024).contains(&mb) || !mb.is_power_of_two() {
            return Err(format!("[ebpf] ring_buffer_mb = {mb}: must be a power of two from 1 to 1024"));
        }
        if let Some(long) = self.unix.iter().find(|p| p.is_empty() || p.len() > 107) {
            return Err(format!("--unix {long:?}: a unix socket path has 1 to 107 bytes"));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    #[error("the eBPF source needs a kernel with BTF (/sys/kernel/btf/vmlinux is missing): use --source pcap")]
    NoBtf,
    #[error("the eBPF source needs root or the capabilities CAP_BPF and CAP_PERFMON: {0}")]
    Privilege(String),
    #[error("{0}")]
    Target(String),
    #[error("eBPF: {0}")]
    Load(String),
    #[error("eBPF ring buffer: {0}")]
    Poll(String),
}

/// Counters of the eBPF source, read by metrics (`shadowtap_ebpf_*`).
#[derive(Debug, Default)]
pub struct EbpfCounters {
    pub events: AtomicU64,
    pub bytes: AtomicU64,
    pub ring_buffer_drops: AtomicU64,
    pub chunks_cut: AtomicU64,
    pub connections_opened: AtomicU64,
    pub connections_refused: AtomicU64,
    pub tls_not_decrypted: AtomicU64,
    pub tls_unmatched: AtomicU64,
    pub skipped_bytes: AtomicU64,
    /// Records that had no event's layout.
    pub malformed: AtomicU64,
    /// Connections not followed because of `--sample` (decided in the kernel).
    pub sampled_out: AtomicU64,
    /// Watched processes whose libssl is probed now (a gauge).
    pub tls_probed_processes: AtomicU64,
}

impl EbpfCounters {
    fn store(&self, stats: &[u64; loader::STATS]) {
        let set = |c: &AtomicU64, s: Stat| c.store(stats[s as usize], Ordering::Relaxed);
        set(&self.events, Stat::Events);
        set(&self.bytes, Stat::Bytes);
        set(&self.ring_buffer_drops, Stat::RingBufferDrops);
        set(&self.chunks_cut, Stat::ChunksCut);
        set(&self.connections_opened, Stat::ConnsOpened);
        self.connections_refused
            .store(stats[Stat::ConnsFull as usize] + stats[Stat::CallsFull as usize], Ordering::Relaxed);
        set(&self.tls_not_decrypted, Stat::TlsNotDecrypted);
        set(&self.tls_unmatched, Stat::TlsNoFd);
        set(&self.skipped_bytes, Stat::SkippedBytes);
        set(&self.sampled_out, Stat::SampledOut);
    }
}

/// How often the ring buffer is read when the program does not wake us:
/// the most an event waits before it reaches the pipeline.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A loaded, attached eBPF source.
pub struct EbpfCapture {
    loaded: loader::Loaded,
    stop: Arc<AtomicBool>,
    pub counters: Arc<EbpfCounters>,
    /// Where the reader also writes what was seen (`run --record`).
    pub recorder: Option<Box<record::FileRecorder>>,
    /// Added to the kernel's monotonic times to get Unix time.
    monotonic_to_unix_ns: i64,
    pub plan: Plan,
}

/// Port filter and watched processes, resolved; `sample_percent` of the
/// connections are kept.
pub fn plan(config: &EbpfConfig, ports: &[u16], sample_percent: f64) -> Result<Plan, EbpfError> {
    config.check().map_err(EbpfError::Target)?;
    let mut plan = Plan {
        sample_basis_points: (sample_percent.clamp(0.0, 100.0) * 100.0).round() as u32,
        ports: ports.to_vec(),
        unix_paths: config.unix.clone(),
        tls: config.tls == "auto",
        ring_buffer_bytes: config.ring_buffer_mb << 20,
        ..Plan::default()
    };
    for pid in &config.pids {
        for found in targets::with_descendants(*pid)? {
            if !plan.tgids.contains(&found) {
                plan.tgids.push(found);
            }
        }
    }
    let mut pids = plan.tgids.clone();
    for unit in &config.units {
        let cgroup = targets::unit_cgroup(unit)?;
        pids.extend(targets::cgroup_pids(&cgroup.path));
        plan.cgroups.push(cgroup);
    }
    if plan.tls {
        plan.libssl = uprobes::same_files_once(targets::libssl_paths(&pids));
    }
    Ok(plan)
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

impl EbpfCapture {
    /// Loads and attaches; capture stops when `stop` is set. Of the new
    /// connections, `sample_percent` are followed (the kernel decides).
    pub fn open(
        config: &EbpfConfig,
        ports: &[u16],
        sample_percent: f64,
        stop: Arc<AtomicBool>,
    ) -> Result<EbpfCapture, EbpfError> {
        let plan = plan(config, ports, sample_percent)?;
        let loaded = loader::load(&plan)?;
        let monotonic_to_unix_ns = clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC);
        tracing::info!(
            pids = ?plan.tgids,
            cgroups = ?plan.cgroups.iter().map(|c| c.path.display().to_string()).collect::<Vec<_>>(),
            libssl = ?plan.libssl,
            "eBPF source attached"
        );
        Ok(EbpfCapture { loaded, stop, counters: Arc::default(), recorder: None, monotonic_to_unix_ns, plan })
    }

    /// Unix time, ns, of a kernel monotonic time.
    pub fn unix_ns(&self, monotonic: u64) -> i64 {
        monotonic as i64 + self.monotonic_to_unix_ns
    }

    /// Changes the share of new connections followed (a reload).
    pub fn set_sample(&self, basis_points: u64) {
        if let Err(e) = self.loaded.set_sample(basis_points.min(10_000) as u32) {
            tracing::warn!("cannot change the eBPF sample: {e}");
        }
    }

    /// Copies the kernel's counters into [`EbpfCounters`].
    pub fn refresh_counters(&self) {
        self.counters.store(&self.loaded.stats());
    }

    /// Reads events until stopped: `on_event` for each record (in ring
    /// order), `on_idle` with the time now (Unix ns) after each poll, at
    /// least every 10 ms.
    pub fn run(
        &self,
        mut on_event: impl FnMut(Result<Event<'_>, Malformed>),
        mut on_idle: impl FnMut(i64),
    ) -> Result<(), EbpfError> {
        let mut builder = libbpf_rs::RingBufferBuilder::new();
        builder
            .add(&self.loaded.events, |raw: &[u8]| {
                on_event(parse(raw));
                0
            })
            .map_err(|e| EbpfError::Poll(e.to_string()))?;
        let ring = builder.build().map_err(|e| EbpfError::Poll(e.to_string()))?;
        let mut last_refresh = std::time::Instant::now();
        let mut last_uprobes = std::time::Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            // The program wakes us only when much is waiting (see
            // WAKEUP_BYTES in tap.bpf.c): a timed-out poll reads nothing,
            // so what is there is consumed after every poll.
            if let Err(e) = ring.poll(POLL_INTERVAL).and_then(|()| ring.consume())
                && e.kind() != libbpf_rs::ErrorKind::Interrupted
            {
                return Err(EbpfError::Poll(e.to_string()));
            }
            if last_uprobes.elapsed() >= uprobes::REFRESH {
                let probed = self.loaded.refresh_uprobes(false)?;
                self.counters.tls_probed_processes.store(probed as u64, Ordering::Relaxed);
                last_uprobes = std::time::Instant::now();
            }
            if last_refresh.elapsed() >= Duration::from_millis(500) {
                self.refresh_counters();
                last_refresh = std::time::Instant::now();
            }
            on_idle(clock_ns(libc::CLOCK_REALTIME));
        }
        // What the kernel wrote before the stop is still read.
        let _ = ring.consume();
        self.refresh_counters();
        on_idle(clock_ns(libc::CLOCK_REALTIME));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_with_one_line_each() {
        let mut c = EbpfConfig { pids: vec![1], ..EbpfConfig::default() };
        assert!(c.check().is_ok());
        c.ring_buffer_mb = 3;
        assert!(c.check().unwrap_err().contains("power of two"));
        c.ring_buffer_mb = 64;
        c.tls = "on".into();
        assert!(c.check().unwrap_err().contains("auto or off"));
        let none = EbpfConfig::default();
        assert!(none.check().unwrap_err().contains("--pid"));
    }
}
