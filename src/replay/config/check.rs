//! Range checks of every numeric key, one function per section. In: a
//! parsed [`Config`]; out: the first key out of range. Called by
//! [`Config::parse`] (the error then names the file's line) and again once
//! the flags are applied (`topology::flags`, the error then names the
//! flag), so a file and a flag are held to the same bounds.
//!
//! The bounds keep every value away from what would panic or wrap
//! (`Duration::from_secs_f64` of a huge or NaN number, seconds times 10^9
//! in an `i64`, a channel or a thread pool sized by a typo) and away from
//! values that would make a verdict meaningless (`min_compared = 0`: an
//! endpoint with nothing compared would be ready).

use std::fmt::{Debug, Display};
use std::ops::RangeInclusive;

use super::{
    CandidateConfig, CaptureConfig, Config, DaemonConfig, LatencyConfig, NamingConfig, NoiseConfig, OutputConfig,
    ReplayConfig, VerdictConfig,
};

/// A key whose value is out of its range.
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfRange {
    pub section: &'static str,
    pub key: &'static str,
    /// The value as given (floats as Rust writes them: `1e-20`, `NaN`).
    pub value: String,
    /// What is allowed, e.g. "must be from 1 to 3600".
    pub want: String,
}

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {} = {}: {}", self.section, self.key, self.value, self.want)
    }
}

type Checked = Result<(), OutOfRange>;

const HOUR_S: u64 = 3600;
const DAY_S: u64 = 24 * HOUR_S;
const HOUR_MS: u64 = HOUR_S * 1000;

impl Config {
    /// The first numeric key out of its range, section by section.
    pub fn check(&self) -> Checked {
        self.candidate.check()?;
        self.replay.check()?;
        self.latency.check()?;
        self.naming.check()?;
        self.noise.check()?;
        self.verdict.check()?;
        self.capture.check()?;
        self.output.check()?;
        self.daemon.check()?;
        check_ebpf(&self.ebpf)
    }
}

impl CandidateConfig {
    fn check(&self) -> Checked {
        let s = "candidate";
        within(s, "timeout_ms", self.timeout_ms, 1..=HOUR_MS)?;
        // Each unit of concurrency is a worker task and a connection.
        within(s, "concurrency", self.concurrency, 0..=10_000)?;
        // 1/rate and offset/pace become Durations: tiny values overflow them.
        zero_or_within(s, "rate", self.rate, 0.001..=1e9, "no limit")?;
        zero_or_within(s, "pace", self.pace, 0.001..=1000.0, "as fast as allowed")
    }
}

impl ReplayConfig {
    fn check(&self) -> Checked {
        within("replay", "generated_time_tolerance_ms", self.generated_time_tolerance_ms, 0..=DAY_S * 1000)?;
        // Each value is a map entry of up to a few hundred bytes.
        within("replay", "max_mapped_values", self.max_mapped_values, 1..=10_000_000)
    }
}

impl LatencyConfig {
    fn check(&self) -> Checked {
        within_f64("latency", "p99_margin_percent", self.p99_margin_percent, 0.0..=10_000.0)?;
        within_f64("latency", "p99_margin_ms", self.p99_margin_ms, 0.0..=HOUR_MS as f64)
    }
}

impl NamingConfig {
    fn check(&self) -> Checked {
        within("naming", "settle_exchanges", self.settle_exchanges, 0..=100_000_000)?;
        within("naming", "settle_s", self.settle_s, 0..=DAY_S)
    }
}

impl NoiseConfig {
    fn check(&self) -> Checked {
        let s = "noise";
        // Seconds times 10^9 in an i64 (repeats.rs).
        within(s, "repeat_window_s", self.repeat_window_s, 0..=DAY_S)?;
        within_f64(s, "relative_percent", self.relative_percent, 0.0..=10_000.0)?;
        within_f64(s, "absolute_percent", self.absolute_percent, 0.0..=100.0)?;
        // 0 would let a field be noise without production ever disagreeing there.
        within(s, "min_samples", self.min_samples, 1..=u64::MAX)?;
        within(s, "warmup_samples", self.warmup_samples, 0..=1_000_000)?;
        within(s, "warmup_max_s", self.warmup_max_s, 0..=DAY_S)
    }
}

impl VerdictConfig {
    fn check(&self) -> Checked {
        let s = "verdict";
        // 0 would call an endpoint with nothing compared ready.
        within(s, "min_compared", self.min_compared, 1..=u64::MAX)?;
        // Below 1, a replay as loaded as production would go unjudged.
        within_f64(s, "max_load_ratio", self.max_load_ratio, 1.0..=1000.0)?;
        // Milliseconds times 10^6 in an i64 (daemon.rs).
        within(s, "late_start_ms", self.late_start_ms, 1..=HOUR_MS)?;
        within_f64(s, "max_late_percent", self.max_late_percent, 0.0..=100.0)?;
        within_f64(s, "max_lost_percent", self.max_lost_percent, 0.0..=100.0)
    }
}

impl CaptureConfig {
    fn check(&self) -> Checked {
        let s = "capture";
        if let Some(port) = self.ports.iter().find(|p| **p == 0) {
            return Err(out_of_range(s, "ports", port, "a server port is from 1 to 65535".into()));
        }
        // Below 256 bytes even the TCP/IP headers of a frame can be cut.
        within(s, "snaplen", self.snaplen, 256..=262_144)?;
        within(s, "buffer_mb", self.buffer_mb, 1..=2047)?;
        within_f64(s, "sample_percent", self.sample_percent, 0.0..=100.0)?;
        within(s, "body_limit", self.body_limit, 0..=1 << 30)?;
        within(s, "max_flows", self.max_flows, 1..=100_000_000)?;
        // Seconds times 10^9 in an i64 (topology/build.rs).
        within(s, "idle_timeout_s", self.idle_timeout_s, 1..=7 * DAY_S)?;
        // Shifted into bytes (<< 10, << 20): larger would wrap.
        within(s, "max_flow_buffer_kb", self.max_flow_buffer_kb, 0..=1 << 20)?;
        within(s, "max_buffer_mb", self.max_buffer_mb, 0..=1 << 16)?;
        // Requests waiting for an answer (one-direction captures): at least
        // one may wait, or nothing could ever be answered.
        within(s, "max_waiting_per_connection", self.max_waiting_per_connection, 1..=10_000_000)?;
        within(s, "max_waiting_mb", self.max_waiting_mb, 1..=1 << 16)?;
        within(s, "max_reading_mb", self.max_reading_mb, 1..=1 << 16)?;
        within(s, "reorder_window_ms", self.reorder_window_ms, 0..=60_000)
    }
}

impl OutputConfig {
    fn check(&self) -> Checked {
        // Added to an Instant by the report timer: huge values panic.
        within("output", "report_interval_s", self.report_interval_s, 1..=DAY_S)?;
        // At least a few, or "(other)" would hold everything; at most what
        // fits in memory (a few KiB per endpoint, fields each a few hundred bytes).
        within("output", "max_endpoints", self.max_endpoints, 4..=1_000_000)?;
        within("output", "max_fields", self.max_fields, 4..=100_000)
    }
}

impl DaemonConfig {
    fn check(&self) -> Checked {
        // The queue is allocated up front (a channel of this capacity).
        within("daemon", "queue", self.queue, 1..=10_000_000)?;
        within("daemon", "drain_timeout_s", self.drain_timeout_s, 0..=HOUR_S)
    }
}

/// `[ebpf]`'s numbers (the rest is checked with the source, `EbpfConfig::check`).
fn check_ebpf(ebpf: &crate::ebpf::EbpfConfig) -> Checked {
    if let Some(pid) = ebpf.pids.iter().find(|p| **p == 0) {
        return Err(out_of_range("ebpf", "pids", pid, "a process id is from 1 up".into()));
    }
    let mb = ebpf.ring_buffer_mb;
    if !(1..=1024).contains(&mb) || !mb.is_power_of_two() {
        return Err(out_of_range("ebpf", "ring_buffer_mb", mb, "must be a power of two from 1 to 1024".into()));
    }
    Ok(())
}

fn out_of_range(section: &'static str, key: &'static str, value: impl Debug, want: String) -> OutOfRange {
    OutOfRange { section, key, value: format!("{value:?}"), want }
}

fn within<T: PartialOrd + Copy + Debug + Display>(
    section: &'static str,
    key: &'static str,
    value: T,
    range: RangeInclusive<T>,
) -> Checked {
    if range.contains(&value) {
        return Ok(());
    }
    Err(out_of_range(section, key, value, format!("must be from {} to {}", range.start(), range.end())))
}

/// NaN and the infinities are never within (`contains` is false for NaN).
fn within_f64(section: &'static str, key: &'static str, value: f64, range: RangeInclusive<f64>) -> Checked {
    within(section, key, value, range)
}

fn zero_or_within(
    section: &'static str,
    key: &'static str,
    value: f64,
    range: RangeInclusive<f64>,
    zero_means: &str,
) -> Checked {
    if value == 0.0 || range.contains(&value) {
        return Ok(());
    }
    let want = format!("must be from {} to {} (or 0 in the config: {zero_means})", range.start(), range.end());
    Err(out_of_range(section, key, value, want))
}

/// The line of `key` in `[section]` of a config text (1 when not found:
/// the value came from a default, which cannot be out of range).
pub(super) fn key_line(text: &str, section: &str, key: &str) -> usize {
    let header = format!("[{section}]");
    let is_key = |line: &str, key: &str| {
        let line = line.trim_start();
        line.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    let mut in_section = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_section = trimmed.split('#').next().is_some_and(|h| h.trim() == header);
        } else if in_section && is_key(line, key) {
            return i + 1;
        }
        // A dotted key at the top: `candidate.rate = ...`.
        if is_key(line, &format!("{section}.{key}")) {
            return i + 1;
        }
    }
    1
}
