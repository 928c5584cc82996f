//! Prometheus metrics of the live daemon (`shadowtap_*`), kept with
//! `prometheus-client`. Pipeline counters live in the pipeline's atomics and
//! are copied in at each scrape; outcomes and latencies are observed as
//! replay finishes them; per-endpoint evidence the verdict needs besides
//! (load, health, differing fields) is copied from the report at each
//! scrape ([`evidence`]).

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::capture::LiveCounters;
use crate::pipeline::Progress;
use crate::replay::Outcome;

pub mod evidence;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MapLabels {
    map: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    endpoint: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    endpoint: String,
    /// `recorded` (seen on the wire) or `candidate` (measured at replay).
    side: String,
}

type HistogramFamily = Family<LatencyLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// The latency buckets' upper bounds, in seconds, the same on every tap (a
/// fleet's buckets are summed): 1 ms steps up to 10 ms, then 10% steps up
/// to about 20 s. A quantile read from them (`histogram_quantile`) lies in
/// the bucket of the true value, so it is off by less than 1 ms below
/// 10 ms and by less than 10% from 10 ms to 20 s: fine enough for the
/// p99 margin (20% and 5 ms by default), where doubling buckets were off
/// by up to half the value.
pub fn latency_buckets() -> Vec<f64> {
    let mut bounds: Vec<f64> = (1..=10).map(|ms| f64::from(ms) / 1000.0).collect();
    let mut bound = 0.010_f64;
    while bound < 20.0 {
        bound *= 1.1;
        // Whole microseconds: readable `le` labels, the same on every tap.
        bounds.push((bound * 1e6).round() / 1e6);
    }
    bounds
}

/// Endpoints beyond this many share the label "other", so a service with
/// unbounded paths cannot blow up the metric cardinality.
const MAX_ENDPOINT_LABELS: usize = 500;

pub struct Metrics {
    registry: Registry,
    packets: Counter,
    bytes: Counter,
    kernel_drops: Counter,
    interface_drops: Counter,
    shard_drops: Counter,
    active_flows: Gauge,
    reassembly_bytes: Gauge,
    flows_refused: Counter,
    bound_dropped_bytes: Counter,
    requests_waiting: Gauge,
    requests_sent_out: Counter,
    exchanges: Counter,
    queue_depth: Gauge,
    queue_drops: Counter,
    replay_loops: Counter,
    outcome_write_errors: Counter,
    evicted: Family<MapLabels, Counter>,
    outcomes: Family<OutcomeLabels, Counter>,
    latency: HistogramFamily,
    evidence: evidence::Evidence,
    endpoints_seen: std::sync::Mutex<std::collections::HashSet<String>>,
    ebpf: Option<ebpf::EbpfMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("shadowtap");
        let m = Metrics {
            packets: Counter::default(),
            bytes: Counter::default(),
            kernel_drops: Counter::default(),
            interface_drops: Counter::default(),
            shard_drops: Counter::default(),
            active_flows: Gauge::default(),
            reassembly_bytes: Gauge::default(),
            flows_refused: Counter::default(),
            bound_dropped_bytes: Counter::default(),
            requests_waiting: Gauge::default(),
            requests_sent_out: Counter::default(),
            exchanges: Counter::default(),
            queue_depth: Gauge::default(),
            queue_drops: Counter::default(),
            replay_loops: Counter::default(),
            outcome_write_errors: Counter::default(),
            evicted: Family::default(),
            outcomes: Family::default(),
            latency: HistogramFamily::new_with_constructor(latency_histogram),
            evidence: Default::default(),
            endpoints_seen: Default::default(),
            ebpf: None,
            registry: Registry::default(),
        };
        registry.register("packets_captured", "Packets read from the capture", m.packets.clone());
        registry.register("bytes_captured", "Bytes of packets read from the capture", m.bytes.clone());
        registry.register("kernel_drops", "Packets the kernel dropped (libpcap ps_drop)", m.kernel_drops.clone());
        registry.register(
            "interface_drops",
            "Packets the interface dropped (libpcap ps_ifdrop)",
            m.interface_drops.clone(),
        );
        registry.register(
            "shard_batch_drops",
            "Packet batches dropped because reassembly fell behind",
            m.shard_drops.clone(),
        );
        registry.register("active_flows", "TCP connections being reassembled", m.active_flows.clone());
        registry.register(
            "reassembly_buffered_bytes",
            "Out-of-order bytes held by reassembly",
            m.reassembly_bytes.clone(),
        );
        registry.register(
            "flows_refused",
            "Connections not tracked because the flow table was full (refused, or half-open and let go)",
            m.flows_refused.clone(),
        );
        registry.register(
            "reassembly_dropped_bytes",
            "Bytes thrown away by memory bounds (reassembly, messages still arriving)",
            m.bound_dropped_bytes.clone(),
        );
        registry.register("requests_waiting", "Requests waiting for their answers", m.requests_waiting.clone());
        registry.register(
            "requests_sent_out_unanswered",
            "Requests sent out unanswered by the bound on requests waiting for answers",
            m.requests_sent_out.clone(),
        );
        registry.register("exchanges", "HTTP exchanges rebuilt from the capture", m.exchanges.clone());
        registry.register("replay_queue_depth", "Exchanges waiting for replay", m.queue_depth.clone());
        registry.register("replay_queue_drops", "Exchanges dropped because replay fell behind", m.queue_drops.clone());
        registry.register(
            "replay_loops",
            "Requests carrying the replay marker (our replays captured again: a loop), not replayed",
            m.replay_loops.clone(),
        );
        registry.register(
            "outcome_write_errors",
            "Outcome lines that could not be written to --out (disk full, a read-only file)",
            m.outcome_write_errors.clone(),
        );
        registry.register(
            "evicted",
            "Entries evicted from a bounded map (report, noise, repeats, ids) to stay within its bound",
            m.evicted.clone(),
        );
        for map in crate::bounded::MAP_NAMES {
            // Every map shows, zero until it evicts.
            let _ = m.evicted.get_or_create(&MapLabels { map: map.into() });
        }
        registry.register("outcomes", "Replay outcomes by endpoint and outcome", m.outcomes.clone());
        registry.register("latency_seconds", "Latency by endpoint, recorded vs candidate", m.latency.clone());
        m.evidence.register(&mut registry);
        Metrics { registry, ..m }
    }

    /// Adds the `shadowtap_ebpf_*` metrics (the eBPF source runs).
    pub fn with_ebpf(mut self) -> Metrics {
        self.ebpf = Some(ebpf::EbpfMetrics::register(&mut self.registry));
        self
    }

    /// Copies the eBPF source's counters in.
    pub fn refresh_ebpf(&self, counters: &crate::ebpf::EbpfCounters, progress: &Progress) {
        if let Some(m) = &self.ebpf {
            m.refresh(counters, Progress::total(&progress.active_flows));
        }
    }

    fn endpoint_label(&self, endpoint: &str) -> String {
        let mut seen = self.endpoints_seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(endpoint) || seen.len() < MAX_ENDPOINT_LABELS {
            seen.insert(endpoint.to_string());
            endpoint.to_string()
        } else {
            "other".to_string()
        }
    }

    /// One replay outcome (called per exchange, not per packet).
    pub fn observe(&self, outcome: &Outcome) {
        let endpoint = self.endpoint_label(&outcome.endpoint);
        self.outcomes
            .get_or_create(&OutcomeLabels { endpoint: endpoint.clone(), outcome: outcome.outcome.as_str().into() })
            .inc();
        if !outcome.outcome.was_compared() {
            return;
        }
        for (side, us) in [("recorded", outcome.recorded_latency_us), ("candidate", outcome.candidate_latency_us)] {
            if let Some(us) = us {
                self.latency
                    .get_or_create(&LatencyLabels { endpoint: endpoint.clone(), side: side.into() })
                    .observe(us as f64 / 1e6);
            }
        }
    }

    /// Copies the pipeline's and libpcap's counters in.
    pub fn refresh(&self, progress: &Progress, live: &LiveCounters, queue_depth: i64, queue_drops: u64) {
        let set = |c: &Counter, v: u64| c.inner().store(v, Ordering::Relaxed);
        set(&self.packets, progress.packets.load(Ordering::Relaxed));
        set(&self.bytes, progress.bytes.load(Ordering::Relaxed));
        set(&self.exchanges, progress.exchanges.load(Ordering::Relaxed));
        set(&self.shard_drops, progress.shard_drops.load(Ordering::Relaxed));
        set(&self.kernel_drops, live.kernel_dropped.load(Ordering::Relaxed));
        set(&self.interface_drops, live.interface_dropped.load(Ordering::Relaxed));
        set(&self.queue_drops, queue_drops);
        set(&self.flows_refused, Progress::total(&progress.flows_refused));
        set(&self.bound_dropped_bytes, Progress::total(&progress.bound_dropped_bytes));
        set(&self.requests_sent_out, Progress::total(&progress.sent_out_unanswered));
        self.requests_waiting.set(Progress::total(&progress.waiting_requests) as i64);
        self.active_flows.set(Progress::total(&progress.active_flows) as i64);
        self.reassembly_bytes.set(Progress::total(&progress.buffered_bytes) as i64);
        self.queue_depth.set(queue_depth);
    }

    /// What the daemon counted and did not replay or write.
    pub fn refresh_losses(&self, replay_loops: u64, outcome_write_errors: u64) {
        self.replay_loops.inner().store(replay_loops, Ordering::Relaxed);
        self.outcome_write_errors.inner().store(outcome_write_errors, Ordering::Relaxed);
    }

    /// Copies the bounded maps' eviction counts in.
    pub fn refresh_evictions(&self, evicted: &crate::bounded::Evicted) {
        for (map, n) in evicted {
            self.evicted.get_or_create(&MapLabels { map: map.to_string() }).inner().store(*n, Ordering::Relaxed);
        }
    }

    /// Copies the report's per-endpoint evidence and criteria in.
    pub fn refresh_evidence(&self, report: &crate::report::Report, criteria: &crate::report::Criteria) {
        let figures = report.figures(&criteria.verdict, evidence::FIELDS_EXPORTED);
        self.refresh_evidence_figures(&figures, criteria);
    }

    /// The same from figures already taken (the daemon's, less what was
    /// kept from before a restart: counters start at zero with the process).
    pub fn refresh_evidence_figures(
        &self,
        figures: &[crate::report::figures::EndpointFigures],
        criteria: &crate::report::Criteria,
    ) {
        self.evidence.copy(figures, criteria, |endpoint| self.endpoint_label(endpoint));
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

mod ebpf;

/// A counter shared between threads without the metrics machinery.
pub type SharedCount = std::sync::Arc<AtomicU64>;
