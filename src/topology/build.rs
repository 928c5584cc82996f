//! The builder: a validated [`Config`] in, the running parts of a command
//! out. A command chooses components (a [`SourceChoice`], a [`Consumer`]
//! of the pipeline's exchanges); what each component runs with comes from
//! the configuration, the same way for every command: the pipeline's
//! bounds from `[capture]`, the replayer and its schedule from
//! `[candidate]`, the report's options (latency margin, verdict) from
//! `[latency]` and `[verdict]`.

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::capture::{CaptureError, LiveCapture, LiveOptions};
use crate::pipeline::{self, Running, Source};
use crate::reassembly::Limits;
use crate::replay::config::{CaptureConfig, Config};
use crate::replay::{Replayer, Schedule};
use crate::report::{LatencyMargin, ReportOptions};

/// Where exchanges come from. Each source reads `[capture]`; a new one
/// (eBPF) is a new variant here and in [`SourceChoice::open`].
#[derive(Clone, Debug)]
pub enum SourceChoice {
    /// Saved captures, read in order as one stream.
    Files(Vec<PathBuf>),
    /// libpcap on an interface, with this filter (see [`capture_filter`]).
    Live { interface: String, filter: String },
    /// The sockets of the `[ebpf]` processes, on `[capture] ports`.
    Ebpf,
}

impl SourceChoice {
    /// Opens the source; a live one stops when `stop` is set.
    pub fn open(self, config: &Config, stop: Arc<AtomicBool>) -> Result<Source, CaptureError> {
        match self {
            SourceChoice::Files(files) => Ok(Source::Files(files)),
            SourceChoice::Live { interface, filter } => {
                let capture = &config.capture;
                let options = LiveOptions {
                    interface,
                    filter,
                    snaplen: capture.snaplen,
                    buffer_bytes: capture.buffer_mb.saturating_mul(1 << 20),
                    promiscuous: capture.promiscuous,
                };
                Ok(Source::Live(LiveCapture::open(&options, stop)?))
            }
            SourceChoice::Ebpf => {
                // Created first: a path that cannot be written fails before attaching.
                let recorder = match &config.ebpf.record {
                    Some(path) => {
                        Some(Box::new(crate::ebpf::record::Recorder::create(path, config.capture.max_flows)?))
                    }
                    None => None,
                };
                let mut capture = crate::ebpf::EbpfCapture::open(
                    &config.ebpf,
                    &config.capture.ports,
                    config.capture.sample_percent,
                    stop,
                )?;
                capture.recorder = recorder;
                Ok(Source::Ebpf(Box::new(capture)))
            }
        }
    }

    /// The live source `[capture] source` names.
    pub fn live(config: &Config) -> SourceChoice {
        if config.capture.source == "ebpf" {
            return SourceChoice::Ebpf;
        }
        let interface = config.capture.interface.clone().unwrap_or_default();
        SourceChoice::Live { interface, filter: capture_filter(config) }
    }

    fn is_live(&self) -> bool {
        !matches!(self, SourceChoice::Files(_))
    }
}

/// What takes the pipeline's exchanges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consumer {
    /// `pairs`: JSON Lines, as fast as the workers render.
    Print,
    /// Replay lanes (`topology::lanes`): slower than the pipeline, so
    /// small batches and short queues, and one shard unless asked.
    Lanes,
    /// The daemon's dispatcher: capture must never wait for it.
    Dispatch,
}

/// The pipeline's configuration for this source and consumer. `shards`:
/// the `--shards` flag, if given.
pub fn pipeline_config(
    config: &Config,
    source: &SourceChoice,
    consumer: Consumer,
    shards: Option<usize>,
) -> pipeline::Config {
    let mut p = pipeline::Config::default();
    if consumer == Consumer::Lanes {
        p = p.with_short_queues();
    }
    // Live traffic is replayed as it completes; ordering would only wait.
    p.ordered = !source.is_live();
    p.block_when_full = consumer != Consumer::Dispatch;
    p.shards = match (shards, consumer) {
        (Some(n), _) => n.max(1),
        // One shard reassembles ~4x faster than replay goes: more would
        // only take CPU from replay and the candidate.
        (None, Consumer::Lanes) => 1,
        (None, _) => p.shards,
    };
    p.http.ports = config.capture.ports.clone();
    p.http.body_limit = config.capture.body_limit;
    // Totals, shared out over the shards like the reassembly bounds.
    p.http.max_waiting_per_conn = config.capture.max_waiting_per_connection.max(1);
    p.http.max_waiting_bytes = config.capture.max_waiting_mb.max(1).saturating_mul(1 << 20) / p.shards.max(1);
    p.http.max_reading_bytes = config.capture.max_reading_mb.max(1).saturating_mul(1 << 20) / p.shards.max(1);
    p.sample_percent = config.capture.sample_percent;
    p.limits = limits_of(&config.capture, p.shards);
    if let SourceChoice::Files(files) = source
        && !files.is_empty()
        && files.iter().all(|f| crate::ebpf::record::is_recording(f))
    {
        // Synthesised in order: nothing arrives late, a hole is final at once.
        p.limits.reorder_window_ns = 0;
    }
    p
}

/// `[capture]`'s bounds, which are totals, shared out over the shards.
fn limits_of(capture: &CaptureConfig, shards: usize) -> Limits {
    let shards = shards.max(1);
    Limits {
        per_flow_ooo_bytes: capture.max_flow_buffer_kb << 10,
        shard_ooo_bytes: (capture.max_buffer_mb << 20) / shards,
        max_flows: (capture.max_flows / shards).max(1),
        idle_timeout_ns: capture.idle_timeout_s as i64 * 1_000_000_000,
        reorder_window_ns: capture.reorder_window_ms as i64 * 1_000_000,
    }
}

/// Opens the source and starts the pipeline on it.
pub fn start_pipeline(
    config: &Config,
    source: SourceChoice,
    consumer: Consumer,
    shards: Option<usize>,
    stop: Arc<AtomicBool>,
) -> Result<Running, CaptureError> {
    let pipeline = pipeline_config(config, &source, consumer, shards);
    Ok(pipeline::start(source.open(config, stop)?, pipeline))
}

/// The replayer for `[candidate] url` (which must be set).
pub fn replayer(config: &Config) -> anyhow::Result<Replayer> {
    let Some(url) = config.candidate.url.clone() else {
        anyhow::bail!("no candidate: give --candidate URL or [candidate] url in the config");
    };
    Ok(Replayer::new(config.clone(), &url)?)
}

/// How fast and how much at once replay goes; `lanes`: `--lanes` (0: the
/// default share of the cores).
pub fn schedule(config: &Config, lanes: usize) -> Schedule {
    let c = &config.candidate;
    Schedule { concurrency: c.concurrency, rate: c.rate, pace: c.pace, lanes }
}

/// The report's options: the latency margin and the verdict's rules.
pub fn report_options(config: &Config) -> ReportOptions {
    let margin = LatencyMargin { percent: config.latency.p99_margin_percent, ms: config.latency.p99_margin_ms };
    ReportOptions::new(margin, config.verdict.clone())
}

/// The BPF filter: as given, or built from the ports; in both cases minus
/// the candidate's own address and port, so that our replays are never
/// captured and replayed again (the marker header catches what this misses).
/// Resolves the candidate's name: call it off the async workers.
pub fn capture_filter(config: &Config) -> String {
    let base = if !config.capture.filter.trim().is_empty() {
        config.capture.filter.trim().to_string()
    } else if config.capture.ports.is_empty() {
        "tcp".to_string()
    } else {
        let ports: Vec<String> = config.capture.ports.iter().map(|p| format!("port {p}")).collect();
        format!("tcp and ({})", ports.join(" or "))
    };
    let exclusions: Vec<String> = candidate_addresses(config)
        .into_iter()
        .map(|addr| format!("not (host {} and tcp port {})", addr.ip(), addr.port()))
        .collect();
    if exclusions.is_empty() { base } else { format!("({base}) and {}", exclusions.join(" and ")) }
}

fn candidate_addresses(config: &Config) -> Vec<std::net::SocketAddr> {
    let Some(url) = &config.candidate.url else { return Vec::new() };
    let Ok(uri) = url.parse::<hyper::http::Uri>() else { return Vec::new() };
    let Some(host) = uri.host() else { return Vec::new() };
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut addrs: Vec<_> = (host, port).to_socket_addrs().map(|a| a.collect()).unwrap_or_default();
    addrs.sort();
    addrs.dedup();
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(candidate: &str, ports: &[u16], filter: &str) -> Config {
        let mut c = Config::default();
        c.candidate.url = Some(candidate.into());
        c.capture.ports = ports.to_vec();
        c.capture.filter = filter.into();
        c
    }

    #[test]
    fn the_filter_is_built_from_ports_and_excludes_the_candidate() {
        let c = config_with("http://127.0.0.1:8080", &[80, 8080], "");
        assert_eq!(capture_filter(&c), "(tcp and (port 80 or port 8080)) and not (host 127.0.0.1 and tcp port 8080)");
        let c = config_with("http://127.0.0.2:9000/base", &[], "tcp port 80");
        assert_eq!(capture_filter(&c), "(tcp port 80) and not (host 127.0.0.2 and tcp port 9000)");
    }

    #[test]
    fn every_command_gets_the_same_bounds_from_capture() {
        let mut c = Config::default();
        c.capture.max_flows = 1000;
        c.capture.ports = vec![8080];
        let files = SourceChoice::Files(vec![]);
        let live = SourceChoice::Live { interface: "lo".into(), filter: String::new() };
        let replay = pipeline_config(&c, &files, Consumer::Lanes, None);
        assert_eq!((replay.shards, replay.limits.max_flows, replay.ordered), (1, 1000, true));
        let run = pipeline_config(&c, &live, Consumer::Dispatch, Some(4));
        assert_eq!((run.limits.max_flows, run.ordered, run.block_when_full), (250, false, false));
        let pairs = pipeline_config(&c, &files, Consumer::Print, Some(2));
        assert_eq!((pairs.limits.max_flows, pairs.http.ports.as_slice()), (500, &[8080][..]));
        // Requests waiting for answers: per connection as given, the bytes
        // shared out over the shards, in `run` too.
        c.capture.max_waiting_per_connection = 7;
        c.capture.max_waiting_mb = 8;
        let run = pipeline_config(&c, &live, Consumer::Dispatch, Some(4));
        assert_eq!((run.http.max_waiting_per_conn, run.http.max_waiting_bytes), (7, 2 << 20));
    }
}
