//! Report stage: per-exchange outcomes in (from replay and diff); out, the
//! per-endpoint summary: outcome counts, recorded and candidate latency
//! percentiles (HdrHistogram), the fields that differ most, and how many
//! differences each equivalence rule explained. Written as JSON and as a
//! table for people.

use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::replay::Outcome;
use crate::replay::endpoint::distinct::Distinct;
use crate::replay::load::{self, EndpointLoad, Health, Load, LoadSummary};

pub mod bounds;
pub mod figures;
pub mod hdr;
pub mod merge;
mod table;

pub use table::table;

/// Adds `n` to the count under `key`, making the key only when new.
fn bump(counts: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    match counts.get_mut(key) {
        Some(count) => *count += n,
        None => {
            counts.insert(key.to_string(), n);
        }
    }
}

/// Latency histogram: microseconds, 3 significant digits. It grows to the
/// largest latency seen instead of being sized for an hour up front (a
/// few KiB per endpoint rather than ~190 KiB).
fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("valid histogram precision")
}

#[derive(Clone)]
struct EndpointStats {
    count: u64,
    outcomes: BTreeMap<String, u64>,
    /// Differences set aside, by reason ("noise", "race", "generated_id"...).
    explanations: BTreeMap<String, u64>,
    recorded: Histogram<u64>,
    candidate: Histogram<u64>,
    fields: HashMap<String, u64>,
    /// Distinct request paths (query dropped) named by this endpoint.
    raw_paths: Distinct,
    /// When last seen (`bounds`: ties among the least-seen).
    last: u64,
    /// Made again after it was evicted (`bounds`): never ready.
    evidence_evicted: bool,
}

/// Raw paths per endpoint are counted exactly up to this many.
const RAW_PATHS_EXACT: usize = 1024;

impl Default for EndpointStats {
    fn default() -> Self {
        EndpointStats {
            raw_paths: Distinct::new(RAW_PATHS_EXACT),
            count: 0,
            outcomes: BTreeMap::new(),
            explanations: BTreeMap::new(),
            recorded: histogram(),
            candidate: histogram(),
            fields: HashMap::new(),
            last: 0,
            evidence_evicted: false,
        }
    }
}

/// Aggregates outcomes as they come.
#[derive(Default)]
pub struct Report {
    endpoints: BTreeMap<String, EndpointStats>,
    equivalences: BTreeMap<String, u64>,
    /// Exchanges the live daemon could not replay because the queue was full.
    pub replay_queue_drops: u64,
    /// Requests carrying our replay marker (our replays captured again: a
    /// loop), not replayed.
    pub replay_loops: u64,
    /// Production's load against replay's, and the replayer's health.
    pub load: Load,
    bounds: bounds::Bounds,
}

#[derive(Serialize, serde::Deserialize, Clone, Debug)]
pub struct FieldCount {
    pub path: String,
    pub count: u64,
}

#[derive(Serialize)]
pub struct EndpointReport {
    pub endpoint: String,
    #[serde(flatten)]
    pub counts: OutcomeCounts,
    /// Distinct request paths (without query) this endpoint holds: exact
    /// up to 1024, estimated within a few percent beyond.
    pub raw_paths: u64,
    /// Differences set aside, by reason, counted per difference.
    pub explanations: BTreeMap<String, u64>,
    /// Fields where production disagreed with itself (learned noise).
    pub noisy_fields: Vec<NoisyField>,
    pub recorded_p50_us: Option<u64>,
    pub recorded_p90_us: Option<u64>,
    pub recorded_p99_us: Option<u64>,
    pub recorded_max_us: Option<u64>,
    pub candidate_p50_us: Option<u64>,
    pub candidate_p90_us: Option<u64>,
    pub candidate_p99_us: Option<u64>,
    pub candidate_max_us: Option<u64>,
    /// Candidate p99 worse than recorded by more than the configured margin.
    pub latency_regression: bool,
    /// In flight in production and in replay; whether latency was judged.
    pub load: EndpointLoad,
    /// The replayer's health behind this endpoint's evidence.
    pub health: Health,
    pub top_fields: Vec<FieldCount>,
    /// Cutover readiness: the old endpoint can be turned off.
    pub ready: bool,
    pub why: String,
    /// Production-against-production comparisons behind `noisy_fields`
    /// (so noise rates add up when reports are merged).
    pub noise_samples: u64,
    /// Differing fields with their counts, the most frequent first (at most
    /// [`FIELD_COUNTS_KEPT`]): what `top_fields` is cut from, for merging.
    pub field_counts: Vec<FieldCount>,
    /// The latency histograms behind the percentiles: HdrHistogram V2
    /// serialisation, base64; absent when nothing was compared.
    pub recorded_histogram: Option<String>,
    pub candidate_histogram: Option<String>,
    /// Evidence of this endpoint was evicted by `[output] max_endpoints`
    /// before it came back: what is left is partial, so never ready.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub evidence_evicted: bool,
}

/// Differing fields kept per endpoint in `field_counts`.
pub const FIELD_COUNTS_KEPT: usize = 100;

#[derive(Serialize, serde::Deserialize, Clone, Debug)]
pub struct NoisyField {
    pub path: String,
    /// Times production disagreed with itself here, out of `samples`.
    pub noisy: u64,
    pub samples: u64,
    pub candidate_diffs: u64,
    pub sources: Vec<String>,
    /// How production disagreed there: `changed`, `missing`, `extra`, `type`.
    #[serde(default)]
    pub kinds: Vec<crate::diff::DiffKind>,
    /// A few of production's disagreements: `{"recorded", "other"}`.
    #[serde(default)]
    pub examples: Vec<NoiseExample>,
}

/// One of production's disagreements with itself at a noisy field.
#[derive(Serialize, serde::Deserialize, Clone, Debug)]
pub struct NoiseExample {
    pub recorded: serde_json::Value,
    pub other: serde_json::Value,
}

/// What a report needs besides the outcomes.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub margin: LatencyMargin,
    pub verdict: crate::replay::config::VerdictConfig,
    pub noise: std::collections::HashMap<String, (u64, Vec<(String, crate::replay::triage::FieldNoise)>)>,
    /// What the replayer's learned maps evicted (noise, repeats, ids).
    pub evicted: crate::bounded::Evicted,
}

impl ReportOptions {
    pub fn new(margin: LatencyMargin, verdict: crate::replay::config::VerdictConfig) -> Self {
        ReportOptions { margin, verdict, noise: Default::default(), evicted: Default::default() }
    }
}

/// Exchanges by outcome: the same fields in each endpoint and in the totals.
#[derive(Serialize, serde::Deserialize, Default, Clone, Copy, Debug)]
pub struct OutcomeCounts {
    pub count: u64,
    #[serde(rename = "match")]
    pub matched: u64,
    pub diff: u64,
    pub skipped: u64,
    pub error: u64,
    pub noise: u64,
    pub race: u64,
}

impl OutcomeCounts {
    fn add(&mut self, o: &OutcomeCounts) {
        self.count += o.count;
        self.matched += o.matched;
        self.diff += o.diff;
        self.skipped += o.skipped;
        self.error += o.error;
        self.noise += o.noise;
        self.race += o.race;
    }
}

#[derive(Serialize, Default)]
pub struct Totals {
    #[serde(flatten)]
    pub counts: OutcomeCounts,
    pub replay_queue_drops: u64,
    pub replay_loops: u64,
    pub ready_endpoints: u64,
}

#[derive(Serialize)]
pub struct ReportJson {
    pub endpoints: Vec<EndpointReport>,
    pub totals: Totals,
    /// At what load the replay ran compared with the recording.
    pub load: LoadSummary,
    pub equivalences: BTreeMap<String, u64>,
    /// What readiness was judged against, so merged reports are judged
    /// again the same way.
    pub criteria: Criteria,
    /// Entries each bounded map evicted to stay within its bound.
    pub evicted: crate::bounded::Evicted,
    /// The daemon's report: since when it has been accumulating (RFC 3339),
    /// across restarts (`crate::state`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The daemon's report: how many restarts its evidence spans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u64>,
}

/// The thresholds behind `ready`/`why`.
#[derive(Serialize, serde::Deserialize, Clone, Debug)]
pub struct Criteria {
    pub p99_margin_percent: f64,
    pub p99_margin_ms: f64,
    pub verdict: crate::replay::config::VerdictConfig,
}

impl Criteria {
    pub fn of(options: &ReportOptions) -> Criteria {
        Criteria {
            p99_margin_percent: options.margin.percent,
            p99_margin_ms: options.margin.ms,
            verdict: options.verdict.clone(),
        }
    }

    /// A configuration's `[verdict]` and `[latency]`.
    pub fn of_config(config: &crate::replay::config::Config) -> Criteria {
        Criteria {
            p99_margin_percent: config.latency.p99_margin_percent,
            p99_margin_ms: config.latency.p99_margin_ms,
            verdict: config.verdict.clone(),
        }
    }

    pub fn options(&self) -> ReportOptions {
        ReportOptions::new(
            LatencyMargin { percent: self.p99_margin_percent, ms: self.p99_margin_ms },
            self.verdict.clone(),
        )
    }
}

/// When a candidate's p99 counts as a regression.
#[derive(Clone, Copy, Debug)]
pub struct LatencyMargin {
    pub percent: f64,
    pub ms: f64,
}

fn quantile(h: &Histogram<u64>, q: f64) -> Option<u64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q))
}

impl Report {
    pub fn add(&mut self, outcome: &Outcome) {
        if outcome.reason.as_deref() == Some(crate::replay::GAP_REASON) {
            self.load.add_capture_gap(&outcome.endpoint);
        }
        let stats = self.stats_mut(&outcome.endpoint);
        stats.count += 1;
        stats.raw_paths.insert(crate::replay::endpoint::path_of(&outcome.uri));
        bump(&mut stats.outcomes, outcome.outcome.as_str(), 1);
        if outcome.outcome.was_compared() {
            if let Some(us) = outcome.recorded_latency_us {
                let _ = stats.recorded.record(us.max(1));
            }
            if let Some(us) = outcome.candidate_latency_us {
                let _ = stats.candidate.record(us.max(1));
            }
        }
        let stats = self.endpoints.get_mut(outcome.endpoint.as_str()).expect("made above");
        for d in &outcome.differences {
            Report::count_field(stats, &mut self.bounds, &d.path);
        }
        for e in &outcome.explained {
            bump(&mut stats.explanations, e.by, 1);
        }
        for (rule, n) in &outcome.equivalences {
            bump(&mut self.equivalences, rule, *n);
        }
    }

    /// An exchange the live daemon dropped before replay (queue full):
    /// missing evidence behind its endpoint, which is listed even if no
    /// exchange of it was replayed.
    pub fn add_queue_drop(&mut self, endpoint: &str) {
        self.stats_mut(endpoint);
        self.load.add_queue_drop(endpoint);
    }

    /// Folds in a report made elsewhere (another replay lane).
    pub fn merge(&mut self, other: Report) {
        for (name, theirs) in other.endpoints {
            self.merge_endpoint(name, theirs);
        }
        for (rule, n) in &other.equivalences {
            bump(&mut self.equivalences, rule, *n);
        }
        self.replay_queue_drops += other.replay_queue_drops;
        self.replay_loops += other.replay_loops;
        self.load.merge(other.load);
        self.bounds.merge(&other.bounds);
        self.enforce_bounds();
    }

    /// Gives endpoints new names (the daemon learned more); endpoints that
    /// get the same name are merged.
    pub fn rename(&mut self, new_name: impl Fn(&str) -> String) {
        let evicted_renamed = self.bounds.rename(&new_name);
        if self.endpoints.keys().all(|name| new_name(name) == *name) {
            if evicted_renamed {
                self.enforce_bounds();
            }
            return;
        }
        for (name, stats) in std::mem::take(&mut self.endpoints) {
            self.merge_endpoint(new_name(&name), stats);
        }
        self.load.rename(&new_name);
        self.enforce_bounds();
    }

    fn merge_endpoint(&mut self, name: String, theirs: EndpointStats) {
        merge_stats(self.endpoints.entry(name).or_default(), theirs);
    }

    pub fn to_json(&self, options: &ReportOptions) -> ReportJson {
        let margin = options.margin;
        let mut totals = Totals {
            replay_queue_drops: self.replay_queue_drops,
            replay_loops: self.replay_loops,
            ..Default::default()
        };
        let endpoints = self
            .endpoints
            .iter()
            .map(|(name, s)| {
                let get = |k: &str| s.outcomes.get(k).copied().unwrap_or(0);
                let mut field_counts: Vec<FieldCount> =
                    s.fields.iter().map(|(path, count)| FieldCount { path: path.clone(), count: *count }).collect();
                field_counts.sort_by(|a, b| b.count.cmp(&a.count).then(a.path.cmp(&b.path)));
                field_counts.truncate(FIELD_COUNTS_KEPT);
                let top: Vec<FieldCount> = field_counts.iter().take(5).cloned().collect();
                let noisy_fields = options
                    .noise
                    .get(name)
                    .map(|(samples, fields)| {
                        fields
                            .iter()
                            .map(|(path, f)| NoisyField {
                                path: path.clone(),
                                noisy: f.noisy,
                                samples: *samples,
                                candidate_diffs: f.candidate_diffs,
                                sources: f.sources.iter().map(|s| s.to_string()).collect(),
                                kinds: f.kinds.clone(),
                                examples: f
                                    .examples
                                    .iter()
                                    .map(|(recorded, other)| NoiseExample {
                                        recorded: crate::redact::redactor().shown(path, recorded),
                                        other: crate::redact::redactor().shown(path, other),
                                    })
                                    .collect(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let (load, health) = self.load.endpoint(name, &options.verdict);
                let mut report = EndpointReport {
                    endpoint: name.clone(),
                    counts: OutcomeCounts {
                        count: s.count,
                        matched: get("match"),
                        diff: get("diff"),
                        skipped: get("skipped"),
                        error: get("error"),
                        noise: get("noise"),
                        race: get("race"),
                    },
                    raw_paths: s.raw_paths.count().min(s.count),
                    explanations: s.explanations.clone(),
                    noisy_fields,
                    recorded_p50_us: quantile(&s.recorded, 0.5),
                    recorded_p90_us: quantile(&s.recorded, 0.9),
                    recorded_p99_us: quantile(&s.recorded, 0.99),
                    recorded_max_us: (!s.recorded.is_empty()).then(|| s.recorded.max()),
                    candidate_p50_us: quantile(&s.candidate, 0.5),
                    candidate_p90_us: quantile(&s.candidate, 0.9),
                    candidate_p99_us: quantile(&s.candidate, 0.99),
                    candidate_max_us: (!s.candidate.is_empty()).then(|| s.candidate.max()),
                    latency_regression: is_slower(quantile(&s.recorded, 0.99), quantile(&s.candidate, 0.99), margin),
                    load,
                    health,
                    top_fields: top,
                    ready: false,
                    why: String::new(),
                    noise_samples: options.noise.get(name).map_or(0, |(samples, _)| *samples),
                    field_counts,
                    recorded_histogram: hdr::encode(&s.recorded),
                    candidate_histogram: hdr::encode(&s.candidate),
                    evidence_evicted: s.evidence_evicted,
                };
                judge(&mut report, options, &self.load);
                totals.ready_endpoints += u64::from(report.ready);
                totals.counts.add(&report.counts);
                report
            })
            .collect();
        let load = self.load.summary(&options.verdict);
        let mut evicted = crate::bounded::evicted_zero();
        crate::bounded::add_evicted(&mut evicted, &self.evicted());
        crate::bounded::add_evicted(&mut evicted, &options.evicted);
        let equivalences = self.equivalences.clone();
        ReportJson {
            endpoints,
            totals,
            load,
            equivalences,
            criteria: Criteria::of(options),
            evicted,
            since: None,
            restarts: None,
        }
    }
}

/// Adds `theirs` into `ours` (lanes, renames, evicted endpoints).
fn merge_stats(ours: &mut EndpointStats, theirs: EndpointStats) {
    ours.count += theirs.count;
    ours.raw_paths.merge(&theirs.raw_paths);
    for (k, n) in &theirs.outcomes {
        bump(&mut ours.outcomes, k, *n);
    }
    for (k, n) in &theirs.explanations {
        bump(&mut ours.explanations, k, *n);
    }
    // Auto-resizing histograms take any values; this cannot fail.
    let _ = ours.recorded.add(&theirs.recorded);
    let _ = ours.candidate.add(&theirs.candidate);
    for (path, n) in theirs.fields {
        *ours.fields.entry(path).or_default() += n;
    }
    ours.last = ours.last.max(theirs.last);
    ours.evidence_evicted |= theirs.evidence_evicted;
}

/// Sets `ready`/`why` of an endpoint from its figures and the capture's
/// (kernel drops): the one judge of reports, merged reports and the fleet.
pub fn judge(report: &mut EndpointReport, options: &ReportOptions, capture: &Load) {
    (report.ready, report.why) = readiness(report, &options.verdict, options.margin);
    if let Some(blocker) = load::capture_blocker(capture, &options.verdict) {
        report.why = if report.ready { blocker } else { format!("{}; {blocker}", report.why) };
        report.ready = false;
    }
}

/// Whether the old endpoint can be turned off, and why (or why not).
pub fn readiness(
    e: &EndpointReport,
    v: &crate::replay::config::VerdictConfig,
    margin: LatencyMargin,
) -> (bool, String) {
    let c = &e.counts;
    let compared = c.matched + c.noise + c.race;
    let mut blockers = Vec::new();
    if compared < v.min_compared {
        blockers.push(format!("{compared} compared, {} needed", v.min_compared));
    }
    if c.diff > v.max_diff {
        let fields: Vec<&str> = e.top_fields.iter().take(3).map(|f| f.path.as_str()).collect();
        blockers.push(format!("{} diff (at {})", c.diff, fields.join(", ")));
    }
    if c.error > v.max_error {
        blockers.push(format!("{} error", c.error));
    }
    blockers.extend(bounds::blockers(e));
    // Latency measured at a load production never saw is reported, not
    // judged: not ready either way, with what to run instead.
    blockers.extend(load::blockers(&e.load, &e.health, c.count, v));
    if e.latency_regression && e.load.latency_judged {
        blockers.push(format!(
            "candidate p99 {} ms vs recorded {} ms (margin {}% and {} ms)",
            ms(e.candidate_p99_us),
            ms(e.recorded_p99_us),
            margin.percent,
            margin.ms
        ));
    }
    if blockers.is_empty() {
        let p99 = format!("p99 {} ms vs {} ms", ms(e.candidate_p99_us), ms(e.recorded_p99_us));
        (true, format!("{compared} compared, no diff, no error, {p99}"))
    } else {
        (false, blockers.join("; "))
    }
}

/// Candidate p99 worse than recorded p99 by more than both margins.
pub fn is_slower(recorded_p99: Option<u64>, candidate_p99: Option<u64>, margin: LatencyMargin) -> bool {
    match (recorded_p99, candidate_p99) {
        (Some(r), Some(c)) => {
            let (r, c) = (r as f64, c as f64);
            c > r * (1.0 + margin.percent / 100.0) && c - r > margin.ms * 1000.0
        }
        _ => false,
    }
}

fn ms(us: Option<u64>) -> String {
    us.map_or_else(|| "-".to_string(), |us| format!("{:.1}", us as f64 / 1000.0))
}

/// One endpoint's cutover verdict, read back from a report file.
pub struct Verdict {
    pub endpoint: String,
    pub ready: bool,
    pub why: String,
}

/// The verdicts of the named endpoints (all when none are named). A named
/// endpoint the report has never seen is not ready. `None` when the JSON is
/// not a report.
pub fn verdicts(report: &serde_json::Value, named: &[String]) -> Option<Vec<Verdict>> {
    let endpoints = report.get("endpoints")?.as_array()?;
    let read = |e: &serde_json::Value| -> Option<Verdict> {
        Some(Verdict {
            endpoint: e.get("endpoint")?.as_str()?.to_string(),
            ready: e.get("ready")?.as_bool()?,
            why: e.get("why")?.as_str()?.to_string(),
        })
    };
    let all: Vec<Verdict> = endpoints.iter().map(read).collect::<Option<_>>()?;
    if named.is_empty() {
        return Some(all);
    }
    let wanted = named.iter().map(|name| {
        let normal = crate::replay::endpoint::Template::parse(name).map_or(name.clone(), |t| t.text);
        all.iter()
            .find(|v| v.endpoint == normal)
            .map(|v| Verdict { endpoint: v.endpoint.clone(), ready: v.ready, why: v.why.clone() })
            .unwrap_or(Verdict { endpoint: normal, ready: false, why: "no traffic seen for this endpoint".into() })
    });
    Some(wanted.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slower_needs_both_the_relative_and_the_absolute_margin() {
        let m = LatencyMargin { percent: 20.0, ms: 5.0 };
        assert!(!is_slower(Some(100), Some(900), m), "0.8 ms worse is within 5 ms");
        assert!(is_slower(Some(100_000), Some(130_000), m));
        assert!(!is_slower(Some(100_000), Some(119_000), m));
        assert!(!is_slower(None, Some(1), m));
    }
}
