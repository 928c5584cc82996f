//! The fleet verdict (`shadowtap verdict --prometheus URL`): readiness
//! across every tap one Prometheus scrapes, judged as a report is judged.
//! In: the taps' `shadowtap_*` series over a window (outcome counters,
//! latency histogram buckets, and the evidence each tap copies from its
//! report: in-flight figures, late starts, queue drops, capture gaps,
//! differing fields, its criteria). Out: one [`EndpointReport`] per
//! endpoint, built from the fleet's sums and judged by
//! [`crate::report::judge`], the judge of reports and merged reports.
//!
//! Counts are exact increases over the window ([`increase`]); p50/p90/p99
//! come from the buckets summed over all taps, read as
//! `histogram_quantile` reads them ([`quantile`]), so they are within a
//! bucket of the truth (see [`crate::metrics::latency_buckets`]) where a
//! report's HdrHistogram is within 0.1%. In-flight peaks are each tap's
//! peak since it started (largest over the window), as in its report.

pub mod api;
mod increase;
mod quantile;

use std::collections::BTreeMap;

use crate::replay::load::{EndpointLoad, Health, Load, SideLoad};
use crate::report::{self, Criteria, EndpointReport, FieldCount, OutcomeCounts};
use api::{Labels, Prometheus};
use increase::increases;

/// Why the fleet cannot be judged.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{url}: not a Prometheus URL: {why}")]
    BadUrl { url: String, why: String },
    #[error("Prometheus at {url} is unreachable: {error}")]
    Unreachable { url: String, error: String },
    #[error("{url}: not a Prometheus query API: {why}")]
    NotPrometheus { url: String, why: String },
    #[error("Prometheus at {url} refused {query}: {error}")]
    Query { url: String, query: String, error: String },
    #[error("Prometheus at {url} scraped no shadowtap tap in the last {window_s} s (no shadowtap_criteria_info)")]
    NoTaps { url: String, window_s: u64 },
    #[error("the taps judge with {kinds} different criteria; give --config to judge all with one")]
    CriteriaDiffer { kinds: usize },
    #[error("a tap's criteria cannot be read: {0}")]
    BadCriteria(String),
}

/// What to ask and how to judge it.
pub struct FleetQuery<'a> {
    pub url: &'a str,
    pub window_s: u64,
    /// Judge with these instead of the taps' own.
    pub criteria: Option<Criteria>,
}

/// The fleet's sums for one endpoint.
#[derive(Default)]
struct Sums {
    counts: OutcomeCounts,
    /// Cumulative counts by bucket bound (the `le` label), per side.
    recorded: BTreeMap<String, u64>,
    candidate: BTreeMap<String, u64>,
    fields: BTreeMap<String, u64>,
    samples: u64,
    recorded_sum: u64,
    replay_sum: u64,
    recorded_peak: u32,
    replay_peak: u32,
    health: Health,
}

/// Every endpoint the taps reported in the window, judged.
pub fn judge(query: &FleetQuery) -> Result<Vec<EndpointReport>, FleetError> {
    let prometheus = Prometheus::parse(query.url)?;
    let (w, at) = (query.window_s, prometheus.now()?);
    let criteria = criteria(&prometheus, query, at)?;
    let options = criteria.options();
    let mut sums: BTreeMap<String, Sums> = BTreeMap::new();
    let mut each = |metric: &str, add: &mut dyn FnMut(&mut Sums, &Labels, u64)| -> Result<(), FleetError> {
        for (labels, n) in increases(&prometheus, metric, w, at)? {
            if let Some(endpoint) = labels.get("endpoint") {
                add(sums.entry(endpoint.clone()).or_default(), &labels, n);
            }
        }
        Ok(())
    };
    each("shadowtap_outcomes_total", &mut |s, l, n| add_outcome(&mut s.counts, l, n))?;
    each("shadowtap_latency_seconds_bucket", &mut |s, l, n| {
        let side =
            if l.get("side").map(String::as_str) == Some("recorded") { &mut s.recorded } else { &mut s.candidate };
        *side.entry(l.get("le").cloned().unwrap_or_default()).or_default() += n;
    })?;
    each("shadowtap_field_diffs_total", &mut |s, l, n| {
        *s.fields.entry(l.get("field").cloned().unwrap_or_default()).or_default() += n;
    })?;
    each("shadowtap_load_samples_total", &mut |s, _, n| s.samples += n)?;
    each("shadowtap_recorded_in_flight_sum_total", &mut |s, _, n| s.recorded_sum += n)?;
    each("shadowtap_replay_in_flight_sum_total", &mut |s, _, n| s.replay_sum += n)?;
    each("shadowtap_started_late_total", &mut |s, _, n| s.health.started_late += n)?;
    each("shadowtap_endpoint_queue_drops_total", &mut |s, _, n| s.health.queue_drops += n)?;
    each("shadowtap_capture_gaps_total", &mut |s, _, n| s.health.capture_gaps += n)?;
    for (metric, recorded) in [("shadowtap_recorded_in_flight_peak", true), ("shadowtap_replay_in_flight_peak", false)]
    {
        for peak in prometheus.vector(&format!("max_over_time({metric}[{w}s])"), at)? {
            let Some(endpoint) = peak.labels.get("endpoint") else { continue };
            let s = sums.entry(endpoint.clone()).or_default();
            let slot = if recorded { &mut s.recorded_peak } else { &mut s.replay_peak };
            *slot = (*slot).max(peak.value.clamp(0.0, f64::from(u32::MAX)) as u32);
        }
    }
    let total = |metric: &str| -> Result<u64, FleetError> {
        Ok(increases(&prometheus, metric, w, at)?.iter().map(|(_, n)| n).sum())
    };
    let mut load = Load::default();
    load.kernel_drops = total("shadowtap_kernel_drops_total")?;
    load.packets = total("shadowtap_packets_captured_total")?;
    for (endpoint, s) in &sums {
        load.absorb_endpoint(endpoint, &s.endpoint_load(), &s.health);
    }
    Ok(sums
        .iter()
        .map(|(endpoint, s)| {
            let mut e = s.report(endpoint, &load, &options);
            report::judge(&mut e, &options, &load);
            e
        })
        .collect())
}

/// The verdicts of the named endpoints (all when none), as `verdict` reads
/// them from a report.
pub fn verdicts(endpoints: &[EndpointReport], named: &[String]) -> Vec<report::Verdict> {
    let json = serde_json::json!({ "endpoints": endpoints });
    report::verdicts(&json, named).unwrap_or_default()
}

/// The criteria to judge with: given, or the one set all taps report.
fn criteria(prometheus: &Prometheus, query: &FleetQuery, at: f64) -> Result<Criteria, FleetError> {
    let w = query.window_s;
    let reported = prometheus.vector(&format!("last_over_time(shadowtap_criteria_info[{w}s])"), at)?;
    let kinds: std::collections::BTreeSet<&str> =
        reported.iter().filter_map(|s| s.labels.get("criteria").map(String::as_str)).collect();
    if kinds.is_empty() {
        return Err(FleetError::NoTaps { url: query.url.to_string(), window_s: w });
    }
    if let Some(given) = &query.criteria {
        return Ok(given.clone());
    }
    if kinds.len() > 1 {
        return Err(FleetError::CriteriaDiffer { kinds: kinds.len() });
    }
    let only = kinds.into_iter().next().unwrap_or_default();
    serde_json::from_str(only).map_err(|e| FleetError::BadCriteria(e.to_string()))
}

fn add_outcome(c: &mut OutcomeCounts, labels: &Labels, n: u64) {
    c.count += n;
    match labels.get("outcome").map(String::as_str) {
        Some("match") => c.matched += n,
        Some("diff") => c.diff += n,
        Some("skipped") => c.skipped += n,
        Some("error") => c.error += n,
        Some("noise") => c.noise += n,
        Some("race") => c.race += n,
        _ => {}
    }
}

/// Microseconds at quantile `q` of one side's summed buckets.
fn quantile_us(buckets: &BTreeMap<String, u64>, q: f64) -> Option<u64> {
    let bounds: Vec<(f64, u64)> = buckets.iter().filter_map(|(le, n)| Some((le.parse::<f64>().ok()?, *n))).collect();
    quantile::histogram_quantile(q, &bounds).map(|s| (s * 1e6).round() as u64)
}

impl Sums {
    fn endpoint_load(&self) -> EndpointLoad {
        let side = |peak| SideLoad { peak_in_flight: peak, mean_in_flight: 0.0, requests_per_s: None };
        EndpointLoad {
            recorded: side(self.recorded_peak),
            replay: side(self.replay_peak),
            ratio: 1.0,
            latency_judged: true,
            samples: self.samples,
            recorded_in_flight_sum: self.recorded_sum,
            replay_in_flight_sum: self.replay_sum,
        }
    }

    /// The endpoint as a report has it, not judged yet.
    fn report(&self, endpoint: &str, fleet: &Load, options: &report::ReportOptions) -> EndpointReport {
        let (load, health) = fleet.endpoint(endpoint, &options.verdict);
        let mut fields: Vec<FieldCount> =
            self.fields.iter().map(|(path, count)| FieldCount { path: path.clone(), count: *count }).collect();
        fields.sort_by(|a, b| b.count.cmp(&a.count).then(a.path.cmp(&b.path)));
        let (r, c) = (&self.recorded, &self.candidate);
        EndpointReport {
            endpoint: endpoint.to_string(),
            counts: self.counts,
            raw_paths: 0,
            explanations: BTreeMap::new(),
            noisy_fields: Vec::new(),
            recorded_p50_us: quantile_us(r, 0.5),
            recorded_p90_us: quantile_us(r, 0.9),
            recorded_p99_us: quantile_us(r, 0.99),
            recorded_max_us: None,
            candidate_p50_us: quantile_us(c, 0.5),
            candidate_p90_us: quantile_us(c, 0.9),
            candidate_p99_us: quantile_us(c, 0.99),
            candidate_max_us: None,
            latency_regression: report::is_slower(quantile_us(r, 0.99), quantile_us(c, 0.99), options.margin),
            load,
            health,
            top_fields: fields.iter().take(5).cloned().collect(),
            ready: false,
            why: String::new(),
            noise_samples: 0,
            field_counts: fields,
            recorded_histogram: None,
            candidate_histogram: None,
            evidence_evicted: false,
        }
    }
}

/// `90s`, `30m`, `1h`, `7d`: seconds, at least 1.
pub fn parse_window(text: &str) -> Result<u64, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("{text}: not a window (like 90s, 30m, 1h, 7d)"))?;
    let unit_s = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("{text}: not a window (like 90s, 30m, 1h, 7d)")),
    };
    match n.checked_mul(unit_s) {
        Some(s) if s > 0 => Ok(s),
        _ => Err(format!("{text}: not a window (like 90s, 30m, 1h, 7d)")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_window;

    #[test]
    fn windows_read_like_prometheus_durations() {
        assert_eq!(parse_window("90s"), Ok(90));
        assert_eq!(parse_window("1h"), Ok(3600));
        assert_eq!(parse_window("7d"), Ok(604_800));
        for bad in ["", "0s", "1", "h", "1.5h", "-1h", "99999999999999999999w"] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
    }
}
