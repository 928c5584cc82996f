//! Triage: which differences are real bugs. Raw differences in, each one
//! either kept or set aside with the reason (`noise`, `race`,
//! `generated_id`, `id_mapping`).
//!
//! - Noise is learned per endpoint and per field (array indices folded to
//!   `*`) from two sources: a second legacy instance answering the same
//!   request (`--secondary`), and the capture itself when production
//!   answered the same request differently within a short window. A field
//!   is noisy when production disagrees with itself there at least about as
//!   often as the candidate disagrees with production (Diffy's idea), within
//!   configurable margins.
//! - Races: with `--primary`, a diff is re-checked against production now;
//!   when production's answer moved at the differing fields to what the
//!   candidate says there, it is timing (moved elsewhere: still a diff).
//! - Writes replayed to sister datastores generate other ids, times,
//!   validators and tokens: those are set aside on the write and mapped
//!   (recorded → candidate) so later requests naming a recorded id are sent
//!   with the candidate's, and later answers carrying a recorded value
//!   compare equal (`generated.rs`).
//!
//! Noticing repeats in the capture is in `repeats.rs`; diffs held back until
//! their endpoint's noise is known, in `holdback.rs`.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::client::CandidateAnswer;
use super::{Explained, Outcome, OutcomeKind, Replayer, is_safe};
use crate::diff::{self, Answer, Difference};
use crate::exchange::Exchange;

mod generated;
mod holdback;
mod repeats;
mod validators;

pub use generated::{Generated, GeneratedValues, MappedValue, Window};
pub use validators::{Compare, Plan, Validators};

pub use holdback::{HELD_PER_ENDPOINT, HELD_TOTAL, Holdback};
use repeats::Recent;
pub use repeats::{RecordedAnswer, Repeat, StoredAnswer};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoiseConfig {
    /// Learn noise from production answering the same request differently
    /// within `repeat_window_s`.
    pub from_repeats: bool,
    pub repeat_window_s: u64,
    /// A field is noise when candidate-diff rate <= noise rate * (1 +
    /// relative_percent/100) + absolute_percent/100 ...
    pub relative_percent: f64,
    pub absolute_percent: f64,
    /// ... and production disagreed with itself there at least this often.
    pub min_samples: u64,
    /// Noise is learned as traffic flows, so the first answers of an
    /// endpoint are judged before anything is known about it. A diff on an
    /// endpoint with fewer production-against-production samples than this
    /// is held back and judged again once it has them (or when replay
    /// ends, or after `warmup_max_s`). 0: judge at once.
    pub warmup_samples: u64,
    /// Longest a diff is held back (live; a file is judged by its end).
    pub warmup_max_s: u64,
    /// Request headers that cannot change an answer: two exchanges that
    /// differ only there are the same request for noise from repeats.
    /// Every other header counts (conditionals, Range, Accept-Encoding,
    /// Prefer, Authorization, Cookie always do).
    pub repeat_ignore_headers: Vec<String>,
}

impl Default for NoiseConfig {
    fn default() -> Self {
        NoiseConfig {
            from_repeats: true,
            repeat_window_s: 60,
            relative_percent: 20.0,
            absolute_percent: 3.0,
            min_samples: 1,
            warmup_samples: 10,
            warmup_max_s: 5,
            repeat_ignore_headers: repeats::DEFAULT_REPEAT_IGNORE_HEADERS.iter().map(|h| h.to_string()).collect(),
        }
    }
}

/// Per-field counts of one endpoint.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FieldNoise {
    /// Production disagreed with itself here (secondary or repeat).
    pub noisy: u64,
    /// Comparisons of production with itself for this endpoint.
    pub noise_samples: u64,
    /// Candidate disagreed with production here.
    pub candidate_diffs: u64,
    /// Learned from: "secondary", "repeats" or both.
    pub sources: Vec<&'static str>,
}

#[derive(Default)]
struct EndpointNoise {
    noise_samples: u64,
    candidate_samples: u64,
    fields: HashMap<String, FieldNoise>,
}

/// What was learned, shared by all replay tasks (taken once per exchange).
#[derive(Default)]
pub struct NoiseModel {
    endpoints: Mutex<HashMap<String, EndpointNoise>>,
    recent: Mutex<Recent>,
}

/// Folds array indices so `/items/3/ts` and `/items/7/ts` are one field.
pub fn field_of(path: &str) -> String {
    path.split('/')
        .map(|seg| if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) { "*" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

impl NoiseModel {
    /// Production answered this request (secondary, or a repeat in the
    /// capture) with these differences from the recorded answer.
    pub fn learn(&self, endpoint: &str, differences: &[Difference], source: &'static str) {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        let e = endpoints.entry(endpoint.to_string()).or_default();
        e.noise_samples += 1;
        let mut seen = std::collections::HashSet::new();
        for d in differences {
            let field = field_of(&d.path);
            if !seen.insert(field.clone()) {
                continue;
            }
            let f = e.fields.entry(field).or_default();
            f.noisy += 1;
            if !f.sources.contains(&source) {
                f.sources.push(source);
            }
        }
    }

    /// Counts the candidate's differences (after comparison) for the rates.
    pub fn count_candidate(&self, endpoint: &str, differences: &[Difference]) {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        let e = endpoints.entry(endpoint.to_string()).or_default();
        e.candidate_samples += 1;
        let mut seen = std::collections::HashSet::new();
        for d in differences {
            let field = field_of(&d.path);
            if seen.insert(field.clone()) {
                e.fields.entry(field).or_default().candidate_diffs += 1;
            }
        }
    }

    /// Production-against-production comparisons learned for the endpoint.
    pub fn samples(&self, endpoint: &str) -> u64 {
        let endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        endpoints.get(endpoint).map_or(0, |e| e.noise_samples)
    }

    /// Is this difference noise for the endpoint, by what was learned so far?
    pub fn is_noisy(&self, endpoint: &str, path: &str, config: &NoiseConfig) -> bool {
        let endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        let Some(e) = endpoints.get(endpoint) else { return false };
        let Some(f) = e.fields.get(&field_of(path)) else { return false };
        if f.noisy < config.min_samples || e.noise_samples == 0 {
            return false;
        }
        let noise_rate = f.noisy as f64 / e.noise_samples as f64;
        let candidate_rate =
            if e.candidate_samples == 0 { 0.0 } else { f.candidate_diffs as f64 / e.candidate_samples as f64 };
        candidate_rate <= noise_rate * (1.0 + config.relative_percent / 100.0) + config.absolute_percent / 100.0
    }

    /// For the report: the noisy fields of each endpoint, with counts.
    pub fn snapshot(&self) -> HashMap<String, (u64, Vec<(String, FieldNoise)>)> {
        let endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        endpoints
            .iter()
            .map(|(name, e)| {
                let mut fields: Vec<(String, FieldNoise)> =
                    e.fields.iter().filter(|(_, f)| f.noisy > 0).map(|(p, f)| (p.clone(), f.clone())).collect();
                fields.sort_by(|a, b| b.1.noisy.cmp(&a.1.noisy).then(a.0.cmp(&b.0)));
                (name.clone(), (e.noise_samples, fields))
            })
            .collect()
    }
}

/// Noise explains fields, never the outcome of a request: however often
/// production answered one request in two ways (a 200 and a 304, a 200 and
/// a 503 during an incident), a candidate answering in another status
/// class, or with no body where production sent one, is a real difference.
fn noise_may_explain(d: &Difference, exchange: &Exchange, answer: &CandidateAnswer) -> bool {
    let Some(recorded) = &exchange.response else { return false };
    match d.path.as_str() {
        "status" => recorded.status / 100 == answer.status / 100,
        "" => !answer.body.is_empty() || recorded.payload.body.is_empty(),
        _ => true,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// The triage of one compared exchange: what [`Replayer::process`] calls
/// once the candidate's answer has been compared with the recorded one.
impl Replayer {
    /// Sets aside what a write generated, values mapped from earlier
    /// writes and noise, then asks production whether what remains is a
    /// race. `replayed` is when the candidate was asked and answered.
    pub(super) async fn triage(
        &self,
        outcome: &mut Outcome,
        exchange: &Exchange,
        answer: &CandidateAnswer,
        replayed: Window,
    ) {
        if outcome.differences.is_empty() {
            return;
        }
        let mut rest = std::mem::take(&mut outcome.differences);
        if self.is_write(exchange) {
            // First what this write generated, so that a `Location` or a
            // link naming a generated id maps whatever its place.
            rest.retain(|d| match self.generated_by_write(d, exchange, replayed) {
                Some(kind) => {
                    outcome.mapped_ids.extend(self.generated.learn(d, kind));
                    outcome.explained.push(Explained { path: d.path.clone(), by: kind.explained_by() });
                    false
                }
                None => true,
            });
        }
        self.set_aside_validators(&mut rest, outcome, exchange);
        let mut real = Vec::new();
        let mut any_noise = false;
        for d in rest {
            let by = if let Some(kind) = self.generated.explains(&d, &self.config.replay.id_fields) {
                Some(kind.mapped_by())
            } else if noise_may_explain(&d, exchange, answer)
                && self.noise.is_noisy(&outcome.endpoint, &d.path, &self.config.noise)
            {
                any_noise = true;
                Some("noise")
            } else {
                None
            };
            match by {
                Some(by) => outcome.explained.push(Explained { path: d.path.clone(), by }),
                None => real.push(d),
            }
        }
        if !real.is_empty() && self.is_race(exchange, &outcome.endpoint, answer, &real).await {
            outcome.explained.extend(real.drain(..).map(|d| Explained { path: d.path, by: "race" }));
            outcome.outcome = OutcomeKind::Race;
            return;
        }
        outcome.outcome = match (real.is_empty(), any_noise) {
            (false, _) => OutcomeKind::Diff,
            (true, true) => OutcomeKind::Noise,
            (true, false) => OutcomeKind::Match,
        };
        outcome.differences = real;
    }

    /// Validators of the same content differ between implementations: where
    /// no body difference remains, different `ETag`s and `Last-Modified`s
    /// (both present) are set aside and the pair remembered for the URI;
    /// a pair remembered before is set aside whatever the body.
    fn set_aside_validators(&self, rest: &mut Vec<Difference>, outcome: &mut Outcome, exchange: &Exchange) {
        let uri = &exchange.request.uri;
        let bodies_agree = !rest.iter().any(|d| d.path.is_empty() || d.path.starts_with('/'));
        rest.retain(|d| {
            if !validators::is_validator_header(&d.path) {
                return true;
            }
            let known = self.validators.explains(uri, d);
            let learnable = bodies_agree && d.kind == diff::DiffKind::Changed;
            if !(known || learnable) {
                return true;
            }
            if let (false, Some(r), Some(c)) = (known, d.recorded.as_str(), d.candidate.as_str()) {
                self.validators.learn(uri, r, c);
            }
            outcome.explained.push(Explained { path: d.path.clone(), by: "validator" });
            false
        });
    }

    /// What kind of value this write generated at this difference, if any.
    /// A value the client sent in the request is data, never generated.
    fn generated_by_write(&self, d: &Difference, exchange: &Exchange, replayed: Window) -> Option<Generated> {
        let recorded_text = generated::value_text(&d.recorded)?;
        generated::value_text(&d.candidate)?;
        if contains(&exchange.request.payload.body, recorded_text.as_bytes()) {
            return None;
        }
        let replay = &self.config.replay;
        if generated::looks_like_id_field(&d.path, &replay.id_fields) {
            return Some(Generated::Id);
        }
        let recorded = Window {
            start: exchange.request.ts,
            end: exchange.response.as_ref().map_or(exchange.request.ts, |r| r.ts),
        };
        let tolerance = std::time::Duration::from_millis(replay.generated_time_tolerance_ms);
        if generated::is_generated_time(d, recorded, replayed, tolerance) {
            return Some(Generated::Time);
        }
        generated::looks_like_token_field(&d.path, &replay.generated_fields).then_some(Generated::Value)
    }

    /// With `--primary`: production answers the same idempotent request
    /// again. If its answer now equals the candidate's, or has moved at
    /// every field where the candidate differs, to what the candidate says
    /// there, the diff is timing.
    async fn is_race(
        &self,
        exchange: &Exchange,
        endpoint: &str,
        answer: &CandidateAnswer,
        real: &[Difference],
    ) -> bool {
        let Some(primary) = &self.primary else { return false };
        if !is_safe(&exchange.request.method) {
            return false;
        }
        let Ok(now) = primary.send(&exchange.request).await else { return false };
        let rules = self.rules_for(endpoint);
        let now_answer = Answer { status: now.status, headers: &now.headers, body: &now.body };
        let candidate_answer = Answer { status: answer.status, headers: &answer.headers, body: &answer.body };
        let now_vs_candidate = diff::compare(&now_answer, &candidate_answer, rules);
        if now_vs_candidate.differences.is_empty() {
            return true;
        }
        let moved = self.compare_with_recorded(exchange, endpoint, &now, Some(primary));
        let moved_fields: std::collections::HashSet<&str> = moved.differences.iter().map(|d| d.path.as_str()).collect();
        // Production having moved at a field does not make the candidate's
        // value there right: recorded 70, production now 71, candidate 72
        // is a bug, not timing. A field is timing only where production now
        // agrees with the candidate.
        let still_differs: std::collections::HashSet<&str> =
            now_vs_candidate.differences.iter().map(|d| d.path.as_str()).collect();
        real.iter().all(|d| moved_fields.contains(d.path.as_str()) && !still_differs.contains(d.path.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::DiffKind;

    fn diff(path: &str) -> Difference {
        Difference { path: path.into(), kind: DiffKind::Changed, recorded: 1.into(), candidate: 2.into() }
    }

    #[test]
    fn a_field_production_changes_as_often_as_the_candidate_is_noise() {
        let model = NoiseModel::default();
        let config = NoiseConfig::default();
        for _ in 0..10 {
            model.learn("GET /a", &[diff("/request_id")], "secondary");
            model.count_candidate("GET /a", &[diff("/request_id"), diff("/name")]);
        }
        assert!(model.is_noisy("GET /a", "/request_id", &config));
        assert!(!model.is_noisy("GET /a", "/name", &config), "never noisy in production");
        assert!(!model.is_noisy("GET /b", "/request_id", &config), "noise is per endpoint");
    }

    #[test]
    fn a_field_the_candidate_breaks_far_more_often_than_production_is_not_noise() {
        let model = NoiseModel::default();
        let config = NoiseConfig::default();
        model.learn("GET /a", &[diff("/price")], "repeats");
        for _ in 0..9 {
            model.learn("GET /a", &[], "repeats");
        }
        for _ in 0..10 {
            model.count_candidate("GET /a", &[diff("/price")]);
        }
        assert!(!model.is_noisy("GET /a", "/price", &config), "10% noise does not explain 100% diffs");
    }

    #[test]
    fn array_indices_fold() {
        assert_eq!(field_of("/items/3/updated_at"), "/items/*/updated_at");
    }
}
