//! Load like for like. In: each captured exchange as replay takes it
//! (request and response capture times) and each replayed request as it is
//! sent. Out: how many requests production had in flight when each captured
//! request started (by default the limit on replay's own in flight), how
//! many replay had in flight when it sent each one, both per endpoint and
//! in all, the replayer's own health (late starts, queue drops, capture
//! gaps), and whether the two loads are close enough for the candidate's
//! latency to be judged.
//!
//! Why in flight and not the rate: a service queues (and its latency grows)
//! when more requests are open at once than it serves at once; replaying
//! the same requests with no more open at each point than production had
//! asks of the candidate what production asked of the legacy service. The
//! rate at equal in flight is only higher because replay has no think
//! time between requests; it is reported, not judged.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::config::VerdictConfig;
use crate::exchange::{Exchange, Nanos};

/// In flight at most when replay follows the recording (no `--concurrency`):
/// whatever production had, replay never opens more than this at once.
pub const AS_RECORDED_MAX: usize = 64;

/// Production's requests still open, by end time, bounded: beyond this many
/// the earliest ends are forgotten (in-flight counts are then low, never high).
const MAX_OPEN: usize = 1 << 16;

/// Live: exchanges kept to count against later arrivals, at most this many
/// and no older than [`LIVE_HORIZON_NS`] behind the newest start.
const LIVE_WINDOW: usize = 4096;
const LIVE_HORIZON_NS: Nanos = 10_000_000_000;

/// Production's in-flight count at each captured request's start.
///
/// Saved captures come in request-time order and the count is exact: the
/// exchanges open at a request's start are those that started earlier and
/// answered later. Live, exchanges come as they complete, from several
/// shards in any order; then it counts, among those seen so far (recent
/// ones), the ones that had started and not yet answered when this one
/// started. It may miss one still to come (a lower limit, never a higher).
pub enum RecordedLoad {
    Ordered { ends: BinaryHeap<Reverse<Nanos>> },
    Unordered { recent: VecDeque<(Nanos, Nanos)>, newest: Nanos },
}

impl RecordedLoad {
    /// For exchanges in request-time order (saved captures).
    pub fn ordered() -> RecordedLoad {
        RecordedLoad::Ordered { ends: BinaryHeap::new() }
    }

    /// For exchanges as they complete (live).
    pub fn unordered() -> RecordedLoad {
        RecordedLoad::Unordered { recent: VecDeque::new(), newest: Nanos::MIN }
    }

    /// Requests open in production when `exchange` started, itself included.
    pub fn in_flight_at(&mut self, exchange: &Exchange) -> u32 {
        let start = exchange.request.ts;
        // Without an answer the end is unknown; such an exchange is not
        // replayed, and counting it open forever would only lift the limit.
        let end = exchange.response.as_ref().map(|r| r.ts).filter(|end| *end > start);
        match self {
            RecordedLoad::Ordered { ends } => {
                while ends.peek().is_some_and(|Reverse(end)| *end <= start) {
                    ends.pop();
                }
                let open = ends.len() as u32 + 1;
                if let Some(end) = end {
                    if ends.len() >= MAX_OPEN {
                        ends.pop();
                    }
                    ends.push(Reverse(end));
                }
                open
            }
            RecordedLoad::Unordered { recent, newest } => {
                let open = 1 + recent.iter().filter(|(s, e)| *s <= start && start < *e).count() as u32;
                *newest = (*newest).max(start);
                while recent.front().is_some_and(|(_, e)| *e < newest.saturating_sub(LIVE_HORIZON_NS))
                    || recent.len() >= LIVE_WINDOW
                {
                    recent.pop_front();
                }
                if let Some(end) = end {
                    recent.push_back((start, end));
                }
                open
            }
        }
    }
}

/// One replayed request's load figures.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Production's requests in flight when it started (itself included).
    pub recorded_in_flight: u32,
    /// Replay's requests in flight to the candidate when it was sent.
    pub replay_in_flight: u32,
    /// Capture time of the request.
    pub recorded_ts: Nanos,
    /// When replay sent it and when its answer (or error) came.
    pub sent: Instant,
    pub done: Instant,
    /// Started later than `[verdict] late_start_ms` after it was due.
    pub late: bool,
}

/// Per endpoint (and in all): sums and peaks of both in-flight counts,
/// and the replayer's health.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    samples: u64,
    recorded_sum: u64,
    recorded_peak: u32,
    replay_sum: u64,
    replay_peak: u32,
    late: u64,
    queue_drops: u64,
    capture_gaps: u64,
}

impl Counts {
    fn add(&mut self, s: &Sample) {
        self.samples += 1;
        self.recorded_sum += u64::from(s.recorded_in_flight);
        self.recorded_peak = self.recorded_peak.max(s.recorded_in_flight);
        self.replay_sum += u64::from(s.replay_in_flight);
        self.replay_peak = self.replay_peak.max(s.replay_in_flight);
        self.late += u64::from(s.late);
    }

    fn merge(&mut self, o: &Counts) {
        self.samples += o.samples;
        self.recorded_sum += o.recorded_sum;
        self.recorded_peak = self.recorded_peak.max(o.recorded_peak);
        self.replay_sum += o.replay_sum;
        self.replay_peak = self.replay_peak.max(o.replay_peak);
        self.late += o.late;
        self.queue_drops += o.queue_drops;
        self.capture_gaps += o.capture_gaps;
    }

    fn mean(sum: u64, samples: u64) -> f64 {
        if samples == 0 { 0.0 } else { sum as f64 / samples as f64 }
    }

    /// How much heavier replay's load was than production's: the larger
    /// of the peak and the mean in-flight ratios (1.0 when nothing was
    /// replayed).
    fn ratio(&self) -> f64 {
        if self.samples == 0 || self.recorded_peak == 0 {
            return 1.0;
        }
        let peak = f64::from(self.replay_peak) / f64::from(self.recorded_peak);
        let mean = self.replay_sum as f64 / self.recorded_sum.max(1) as f64;
        peak.max(mean)
    }
}

/// Load and health of a whole replay, folded as requests are replayed.
#[derive(Clone, Debug, Default)]
pub struct Load {
    endpoints: BTreeMap<String, Counts>,
    total: Counts,
    recorded_span: Option<(Nanos, Nanos)>,
    replay_span: Option<(Instant, Instant)>,
    /// Packets the kernel dropped before capture saw them (live only).
    pub kernel_drops: u64,
    pub packets: u64,
    /// Share of connections replayed (live `--sample`); the others were
    /// never seen by replay, so counts are of this share.
    pub sample_percent: Option<f64>,
}

/// One side's load in the report.
#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
pub struct SideLoad {
    pub peak_in_flight: u32,
    pub mean_in_flight: f64,
    /// Replayed requests per second (over the capture's span for the
    /// recorded side, over replay's wall time for the replay side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_s: Option<f64>,
}

/// An endpoint's load: production's against replay's, and whether its
/// latency could be judged.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct EndpointLoad {
    pub recorded: SideLoad,
    pub replay: SideLoad,
    /// Replay's in flight over production's (the larger of the peak and
    /// the mean ratio).
    pub ratio: f64,
    /// The ratio was within `[verdict] max_load_ratio`: the candidate's
    /// latency is judged; otherwise only reported.
    pub latency_judged: bool,
    /// Replayed requests behind these figures, and the sums of both
    /// in-flight counts over them (so merged reports get exact means).
    #[serde(default)]
    pub samples: u64,
    #[serde(default)]
    pub recorded_in_flight_sum: u64,
    #[serde(default)]
    pub replay_in_flight_sum: u64,
}

/// The replayer's own health behind an endpoint's evidence.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default)]
pub struct Health {
    /// Requests sent later than `[verdict] late_start_ms` after they were due.
    pub started_late: u64,
    /// Exchanges the live daemon dropped because replay fell behind.
    pub queue_drops: u64,
    /// Exchanges not replayed because a capture gap touched them.
    pub capture_gaps: u64,
}

/// The whole replay's load, for the report's top level.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct LoadSummary {
    pub recorded: SideLoad,
    pub replay: SideLoad,
    pub ratio: f64,
    pub max_load_ratio: f64,
    pub kernel_drops: u64,
    /// Packets captured (live), against which kernel drops are judged.
    #[serde(default)]
    pub packets: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_percent: Option<f64>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Load {
    pub fn add(&mut self, endpoint: &str, s: &Sample) {
        self.counts(endpoint).add(s);
        self.total.add(s);
        let (first, last) = self.recorded_span.get_or_insert((s.recorded_ts, s.recorded_ts));
        (*first, *last) = ((*first).min(s.recorded_ts), (*last).max(s.recorded_ts));
        let (first, last) = self.replay_span.get_or_insert((s.sent, s.done));
        (*first, *last) = ((*first).min(s.sent), (*last).max(s.done));
    }

    pub fn add_queue_drop(&mut self, endpoint: &str) {
        self.counts(endpoint).queue_drops += 1;
        self.total.queue_drops += 1;
    }

    /// A request taken up late, counted where the lag arose (live: as it
    /// left the pipeline).
    pub fn add_late(&mut self, endpoint: &str) {
        self.counts(endpoint).late += 1;
        self.total.late += 1;
    }

    pub fn add_capture_gap(&mut self, endpoint: &str) {
        self.counts(endpoint).capture_gaps += 1;
        self.total.capture_gaps += 1;
    }

    fn counts(&mut self, endpoint: &str) -> &mut Counts {
        if !self.endpoints.contains_key(endpoint) {
            self.endpoints.insert(endpoint.to_string(), Counts::default());
        }
        self.endpoints.get_mut(endpoint).expect("just inserted")
    }

    /// An endpoint's counts go to another (the report evicted it).
    pub fn fold(&mut self, from: &str, into: &str) {
        if let Some(counts) = self.endpoints.remove(from) {
            self.counts(into).merge(&counts);
        }
    }

    /// Folds in the load of another replay lane.
    /// Endpoint names became more general: their counts follow.
    pub fn rename(&mut self, new_name: impl Fn(&str) -> String) {
        for (name, counts) in std::mem::take(&mut self.endpoints) {
            self.counts(&new_name(&name)).merge(&counts);
        }
    }

    pub fn merge(&mut self, other: Load) {
        for (name, theirs) in &other.endpoints {
            self.counts(name).merge(theirs);
        }
        self.total.merge(&other.total);
        if let Some((a, b)) = other.recorded_span {
            let span = self.recorded_span.get_or_insert((a, b));
            *span = (span.0.min(a), span.1.max(b));
        }
        if let Some((a, b)) = other.replay_span {
            let span = self.replay_span.get_or_insert((a, b));
            *span = (span.0.min(a), span.1.max(b));
        }
        self.kernel_drops += other.kernel_drops;
        self.packets += other.packets;
        self.sample_percent = self.sample_percent.or(other.sample_percent);
    }

    fn sides(c: &Counts) -> (SideLoad, SideLoad) {
        let side = |peak, sum| SideLoad {
            peak_in_flight: peak,
            mean_in_flight: round2(Counts::mean(sum, c.samples)),
            requests_per_s: None,
        };
        (side(c.recorded_peak, c.recorded_sum), side(c.replay_peak, c.replay_sum))
    }

    pub fn endpoint(&self, endpoint: &str, verdict: &VerdictConfig) -> (EndpointLoad, Health) {
        let c = self.endpoints.get(endpoint).copied().unwrap_or_default();
        let (recorded, replay) = Load::sides(&c);
        let ratio = c.ratio();
        let load = EndpointLoad {
            recorded,
            replay,
            ratio: round2(ratio),
            latency_judged: ratio <= verdict.max_load_ratio,
            samples: c.samples,
            recorded_in_flight_sum: c.recorded_sum,
            replay_in_flight_sum: c.replay_sum,
        };
        let health = Health { started_late: c.late, queue_drops: c.queue_drops, capture_gaps: c.capture_gaps };
        (load, health)
    }

    pub fn summary(&self, verdict: &VerdictConfig) -> LoadSummary {
        let (mut recorded, mut replay) = Load::sides(&self.total);
        let n = self.total.samples as f64;
        recorded.requests_per_s =
            self.recorded_span.map(|(a, b)| (b - a) as f64 / 1e9).filter(|s| *s > 0.0).map(|s| round2(n / s));
        replay.requests_per_s =
            self.replay_span.map(|(a, b)| (b - a).as_secs_f64()).filter(|s| *s > 0.0).map(|s| round2(n / s));
        LoadSummary {
            recorded,
            replay,
            ratio: round2(self.total.ratio()),
            max_load_ratio: verdict.max_load_ratio,
            kernel_drops: self.kernel_drops,
            packets: self.packets,
            sample_percent: self.sample_percent,
        }
    }

    /// Folds in one endpoint's figures read back from a report (merging
    /// reports). The total's peaks are the largest endpoint peaks: each
    /// sample's in-flight count is of all requests, whatever their endpoint.
    pub fn absorb_endpoint(&mut self, endpoint: &str, load: &EndpointLoad, health: &Health) {
        let c = Counts {
            samples: load.samples,
            recorded_sum: load.recorded_in_flight_sum,
            recorded_peak: load.recorded.peak_in_flight,
            replay_sum: load.replay_in_flight_sum,
            replay_peak: load.replay.peak_in_flight,
            late: health.started_late,
            queue_drops: health.queue_drops,
            capture_gaps: health.capture_gaps,
        };
        self.counts(endpoint).merge(&c);
        self.total.merge(&c);
    }
}

/// Why an endpoint's load or health does not allow readiness, if so.
/// `compared_or_tried`: the endpoint's exchanges (replayed or skipped).
pub fn blockers(load: &EndpointLoad, health: &Health, count: u64, v: &VerdictConfig) -> Vec<String> {
    let mut blockers = Vec::new();
    if !load.latency_judged {
        blockers.push(format!(
            "latency not judged: replay ran at {:.1}x the recorded load (in flight: peak {} vs {}, mean {:.1} vs {:.1}; \
             max_load_ratio {}); re-run without --concurrency, or with --pace 1",
            load.ratio,
            load.replay.peak_in_flight,
            load.recorded.peak_in_flight,
            load.replay.mean_in_flight,
            load.recorded.mean_in_flight,
            v.max_load_ratio
        ));
    }
    let share = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 * 100.0 / of as f64 };
    let late = share(health.started_late, count);
    if late > v.max_late_percent {
        blockers.push(format!(
            "{} of {count} requests started late ({late:.1}% > max_late_percent {}): replay could not keep up",
            health.started_late, v.max_late_percent
        ));
    }
    let lost_count = health.queue_drops + health.capture_gaps;
    let lost = share(lost_count, count + health.queue_drops);
    if lost > v.max_lost_percent {
        blockers.push(format!(
            "evidence incomplete: {} queue drops and {} capture gaps of {} exchanges ({lost:.1}% > max_lost_percent {})",
            health.queue_drops,
            health.capture_gaps,
            count + health.queue_drops,
            v.max_lost_percent
        ));
    }
    blockers
}

/// Why no endpoint can be ready because of the capture as a whole (kernel
/// drops cannot be pinned on one endpoint), if so.
pub fn capture_blocker(load: &Load, v: &VerdictConfig) -> Option<String> {
    let dropped = load.kernel_drops as f64 * 100.0 / (load.packets + load.kernel_drops).max(1) as f64;
    (load.kernel_drops > 0 && dropped > v.max_lost_percent).then(|| {
        format!(
            "the kernel dropped {} packets of the capture ({dropped:.1}% > max_lost_percent {})",
            load.kernel_drops, v.max_lost_percent
        )
    })
}

#[cfg(test)]
mod tests;
