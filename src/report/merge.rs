//! Merging reports (`shadowtap report`): report JSON files in (several
//! hosts, several runs), one report out, as if one replay had seen all
//! their exchanges. Counts add up; latency percentiles come from the merged
//! histograms the reports carry; learned noise adds up with its sample
//! counts; load and health add up; then `ready`/`why` are judged again on
//! the merged figures, with the criteria the reports were judged with.
//!
//! Not exact: `raw_paths` (distinct paths cannot be added; the largest is
//! kept, a lower bound) and the request rates (spans are not carried).

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::hdr::{self, HistogramError};
use super::{Criteria, EndpointStats, FieldCount, NoisyField, OutcomeCounts, Report, ReportJson};
use crate::replay::load::{EndpointLoad, Health};
use crate::replay::triage::FieldNoise;

/// Why reports cannot be merged; `report` names the input.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{report}: not a shadowtap report ({reason})")]
    NotAReport { report: String, reason: String },
    #[error(
        "{report}: endpoint {endpoint} has no latency histograms (a report from an older shadowtap): \
         percentiles cannot be merged; replay again"
    )]
    NoHistograms { report: String, endpoint: String },
    #[error("{report}: endpoint {endpoint}: {which} histogram: {error}")]
    BadHistogram { report: String, endpoint: String, which: &'static str, error: HistogramError },
    #[error("{report} was judged with other criteria than {first}; give --config to judge all with one")]
    CriteriaDiffer { report: String, first: String },
    #[error("no report to merge")]
    Nothing,
}

/// The parts of a report merging reads back.
#[derive(Deserialize)]
struct Input {
    endpoints: Vec<InputEndpoint>,
    totals: InputTotals,
    load: crate::replay::load::LoadSummary,
    #[serde(default)]
    equivalences: BTreeMap<String, u64>,
    /// Absent in reports older than merging: the defaults were used.
    criteria: Option<Criteria>,
    #[serde(default)]
    evicted: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct InputTotals {
    #[serde(default)]
    replay_queue_drops: u64,
    #[serde(default)]
    replay_loops: u64,
}

#[derive(Deserialize)]
struct InputEndpoint {
    endpoint: String,
    #[serde(flatten)]
    counts: OutcomeCounts,
    #[serde(default)]
    raw_paths: u64,
    #[serde(default)]
    explanations: BTreeMap<String, u64>,
    #[serde(default)]
    noisy_fields: Vec<NoisyField>,
    #[serde(default)]
    noise_samples: u64,
    recorded_p50_us: Option<u64>,
    candidate_p50_us: Option<u64>,
    recorded_histogram: Option<String>,
    candidate_histogram: Option<String>,
    #[serde(default)]
    top_fields: Vec<FieldCount>,
    #[serde(default)]
    field_counts: Vec<FieldCount>,
    load: EndpointLoad,
    health: Health,
    #[serde(default)]
    evidence_evicted: bool,
}

/// One endpoint's learned noise, summed over reports.
#[derive(Default)]
struct NoiseSum {
    samples: u64,
    fields: BTreeMap<String, FieldNoise>,
}

/// Reports being folded into one.
pub struct Merger {
    /// Not bounded: its inputs were, and dropping endpoints here would
    /// lose what their reports kept.
    report: Report,
    /// What the inputs' replayers evicted (noise, repeats, ids).
    evicted: crate::bounded::Evicted,
    noise: BTreeMap<String, NoiseSum>,
    raw_paths: HashMap<String, u64>,
    /// The first report's criteria and its name.
    criteria: Option<(Criteria, String)>,
}

impl Default for Merger {
    fn default() -> Self {
        Merger {
            report: Report::bounded(usize::MAX, usize::MAX),
            evicted: Default::default(),
            noise: Default::default(),
            raw_paths: Default::default(),
            criteria: None,
        }
    }
}

/// The examples kept per noisy field, as the noise model keeps them.
const NOISE_EXAMPLES: usize = 3;

impl Merger {
    /// Folds in one report file's JSON; `name` names it in errors.
    pub fn add(&mut self, name: &str, json: &[u8]) -> Result<(), MergeError> {
        let not_a_report = |e: serde_json::Error| MergeError::NotAReport { report: name.into(), reason: e.to_string() };
        let input: Input = serde_json::from_slice(json).map_err(not_a_report)?;
        let criteria = input.criteria.unwrap_or_else(|| Criteria::of_config(&crate::replay::config::Config::default()));
        match &self.criteria {
            None => self.criteria = Some((criteria, name.to_string())),
            Some((first, first_name)) if !same_criteria(first, &criteria) => {
                return Err(MergeError::CriteriaDiffer { report: name.into(), first: first_name.clone() });
            }
            Some(_) => {}
        }
        for e in input.endpoints {
            self.add_endpoint(name, e)?;
        }
        for (rule, n) in &input.equivalences {
            super::bump(&mut self.report.equivalences, rule, *n);
        }
        self.report.replay_queue_drops += input.totals.replay_queue_drops;
        self.report.replay_loops += input.totals.replay_loops;
        // Evictions add up (merging itself evicts nothing).
        for map in &crate::bounded::MAP_NAMES {
            *self.evicted.entry(map).or_default() += input.evicted.get(*map).copied().unwrap_or(0);
        }
        let load = &mut self.report.load;
        load.kernel_drops += input.load.kernel_drops;
        load.packets += input.load.packets;
        load.sample_percent = load.sample_percent.or(input.load.sample_percent);
        Ok(())
    }

    fn add_endpoint(&mut self, name: &str, e: InputEndpoint) -> Result<(), MergeError> {
        let histogram = |text: &Option<String>, p50: Option<u64>, which: &'static str| match (text, p50) {
            (Some(text), _) => hdr::decode(text).map_err(|error| MergeError::BadHistogram {
                report: name.into(),
                endpoint: e.endpoint.clone(),
                which,
                error,
            }),
            (None, None) => Ok(super::histogram()),
            (None, Some(_)) => Err(MergeError::NoHistograms { report: name.into(), endpoint: e.endpoint.clone() }),
        };
        let recorded = histogram(&e.recorded_histogram, e.recorded_p50_us, "recorded")?;
        let candidate = histogram(&e.candidate_histogram, e.candidate_p50_us, "candidate")?;
        let fields = if e.field_counts.is_empty() { &e.top_fields } else { &e.field_counts };
        let c = &e.counts;
        let outcomes = [
            ("match", c.matched),
            ("diff", c.diff),
            ("skipped", c.skipped),
            ("error", c.error),
            ("noise", c.noise),
            ("race", c.race),
        ];
        let stats = EndpointStats {
            count: c.count,
            outcomes: outcomes.iter().filter(|(_, n)| *n > 0).map(|(k, n)| (k.to_string(), *n)).collect(),
            explanations: e.explanations.clone(),
            recorded,
            candidate,
            fields: fields.iter().map(|f| (f.path.clone(), f.count)).collect(),
            evidence_evicted: e.evidence_evicted,
            ..EndpointStats::default()
        };
        self.report.merge_endpoint(e.endpoint.clone(), stats);
        self.report.load.absorb_endpoint(&e.endpoint, &e.load, &e.health);
        let paths = self.raw_paths.entry(e.endpoint.clone()).or_default();
        *paths = (*paths).max(e.raw_paths);
        self.add_noise(&e);
        Ok(())
    }

    fn add_noise(&mut self, e: &InputEndpoint) {
        // Older reports carry the samples only inside each noisy field.
        let samples = e.noise_samples.max(e.noisy_fields.iter().map(|f| f.samples).max().unwrap_or(0));
        let sum = self.noise.entry(e.endpoint.clone()).or_default();
        sum.samples += samples;
        for f in &e.noisy_fields {
            let ours = sum.fields.entry(f.path.clone()).or_default();
            ours.noisy += f.noisy;
            ours.candidate_diffs += f.candidate_diffs;
            for source in &f.sources {
                if let Some(known) = known_source(source)
                    && !ours.sources.contains(&known)
                {
                    ours.sources.push(known);
                }
            }
            for kind in &f.kinds {
                if !ours.kinds.contains(kind) {
                    ours.kinds.push(*kind);
                }
            }
            for example in &f.examples {
                if ours.examples.len() < NOISE_EXAMPLES {
                    ours.examples.push((example.recorded.clone(), example.other.clone()));
                }
            }
        }
    }

    /// The merged report, judged with `criteria` (default: the reports' own).
    pub fn finish(self, criteria: Option<&Criteria>) -> Result<ReportJson, MergeError> {
        let Some((own, _)) = &self.criteria else { return Err(MergeError::Nothing) };
        let mut options = criteria.unwrap_or(own).options();
        options.evicted = self.evicted;
        options.noise = self
            .noise
            .into_iter()
            .map(|(endpoint, sum)| {
                let mut fields: Vec<(String, FieldNoise)> = sum.fields.into_iter().collect();
                fields.sort_by(|a, b| b.1.noisy.cmp(&a.1.noisy).then(a.0.cmp(&b.0)));
                (endpoint, (sum.samples, fields))
            })
            .collect();
        let mut merged = self.report.to_json(&options);
        for e in &mut merged.endpoints {
            e.raw_paths = self.raw_paths.get(&e.endpoint).copied().unwrap_or(0).min(e.counts.count);
        }
        Ok(merged)
    }
}

/// The evidence of one saved report, to go on from (the daemon's state,
/// `crate::state`).
pub struct Reloaded {
    /// Unbounded: merge it into a bounded report.
    pub report: Report,
    /// What the saved report's maps and replayer had evicted.
    pub evicted: crate::bounded::Evicted,
    /// Distinct raw paths per endpoint (a lower bound from then on).
    pub raw_paths: HashMap<String, u64>,
}

impl Merger {
    /// The folded evidence itself rather than a report judged on it. The
    /// noise the reports carried is left out: the daemon keeps its noise
    /// model whole (`replay::triage::saved`).
    pub fn into_reloaded(self) -> Reloaded {
        Reloaded { report: self.report, evicted: self.evicted, raw_paths: self.raw_paths }
    }
}

fn same_criteria(a: &Criteria, b: &Criteria) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}

/// Noise sources are `&'static str` in the model; unknown ones are dropped.
fn known_source(source: &str) -> Option<&'static str> {
    ["secondary", "repeats"].into_iter().find(|known| *known == source)
}
