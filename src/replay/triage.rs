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
//! Noticing repeats in the capture is in `repeats.rs`. The models live
//! here; the steps that apply them to a compared answer are the
//! replayer's (`replayer/judging.rs`); diffs held back until their
//! endpoint's noise is known, in `super::holdback`.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::diff::{DiffKind, Difference};

pub(crate) mod generated;
mod repeats;
pub(crate) mod validators;

pub use generated::{Generated, GeneratedValues, MappedValue, Window};
pub use validators::{Compare, Plan, Validators};

pub use super::config::NoiseConfig;
use repeats::Recent;
pub use repeats::{RecordedAnswer, Repeat, StoredAnswer};

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
    /// How production disagreed with itself here: a value that changes
    /// (`changed`) says nothing about a key that goes missing, turns `null`
    /// or changes type, so each kind is noise only once production did it.
    pub kinds: Vec<DiffKind>,
    /// A few of production's disagreements here: (its recorded answer,
    /// the other answer), so a user can see what was learned.
    pub examples: Vec<(serde_json::Value, serde_json::Value)>,
}

/// Examples kept per noisy field.
const NOISE_EXAMPLES: usize = 3;

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

/// A value as an example in the report: long strings cut.
fn shorten(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::String(s) if s.len() > 120 => {
            let cut = (0..=120).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
            serde_json::Value::String(format!("{}...", &s[..cut]))
        }
        other => other.clone(),
    }
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
            if !f.kinds.contains(&d.kind) {
                f.kinds.push(d.kind);
            }
            if f.examples.len() < NOISE_EXAMPLES {
                f.examples.push((shorten(&d.recorded), shorten(&d.candidate)));
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

    /// Is this difference noise for the endpoint, by what was learned so
    /// far: production disagreed with itself at this field, in this way
    /// (a changing value never explains a key gone missing), about as often
    /// as the candidate does?
    pub fn is_noisy(&self, endpoint: &str, d: &Difference, config: &NoiseConfig) -> bool {
        let endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        let Some(e) = endpoints.get(endpoint) else { return false };
        let Some(f) = e.fields.get(&field_of(&d.path)) else { return false };
        if f.noisy < config.min_samples || e.noise_samples == 0 || !f.kinds.contains(&d.kind) {
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
        assert!(model.is_noisy("GET /a", &diff("/request_id"), &config));
        assert!(!model.is_noisy("GET /a", &diff("/name"), &config), "never noisy in production");
        assert!(!model.is_noisy("GET /b", &diff("/request_id"), &config), "noise is per endpoint");
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
        assert!(!model.is_noisy("GET /a", &diff("/price"), &config), "10% noise does not explain 100% diffs");
    }

    #[test]
    fn a_changing_value_is_noise_but_the_key_missing_or_null_is_not_until_production_did_it() {
        let model = NoiseModel::default();
        let config = NoiseConfig::default();
        let of_kind = |kind, candidate: serde_json::Value| Difference {
            path: "/served_at".into(),
            kind,
            recorded: "2026-11-28T10:00:00Z".into(),
            candidate,
        };
        for _ in 0..10 {
            model.learn("GET /a", &[diff("/served_at")], "secondary");
        }
        assert!(model.is_noisy("GET /a", &diff("/served_at"), &config));
        assert!(!model.is_noisy("GET /a", &of_kind(DiffKind::Missing, serde_json::Value::Null), &config));
        assert!(!model.is_noisy("GET /a", &of_kind(DiffKind::Type, serde_json::Value::Null), &config));
        model.learn("GET /a", &[of_kind(DiffKind::Missing, serde_json::Value::Null)], "secondary");
        assert!(model.is_noisy("GET /a", &of_kind(DiffKind::Missing, serde_json::Value::Null), &config));
        let snapshot = model.snapshot();
        let (_, fields) = &snapshot["GET /a"];
        assert_eq!(fields[0].1.kinds, [DiffKind::Changed, DiffKind::Missing]);
        assert_eq!(fields[0].1.examples.len(), NOISE_EXAMPLES, "a few examples, bounded");
    }

    #[test]
    fn array_indices_fold() {
        assert_eq!(field_of("/items/3/updated_at"), "/items/*/updated_at");
    }
}
