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
pub mod saved;
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
    /// The endpoint's sample counts when this field was (re)learned after
    /// the endpoint had evicted fields: its rates count from there, since
    /// before it a missing field may have been an evicted one, not a
    /// field without differences.
    #[serde(skip)]
    pub since: (u64, u64),
}

/// Examples kept per noisy field.
const NOISE_EXAMPLES: usize = 3;

#[derive(Default)]
struct EndpointNoise {
    noise_samples: u64,
    candidate_samples: u64,
    fields: HashMap<String, FieldNoise>,
    /// Some field of this endpoint was evicted (see [`FieldNoise::since`]).
    fields_evicted: bool,
    /// When it was last used ([`Learned::tick`]), to break ties in eviction.
    last: u64,
}

impl EndpointNoise {
    /// The field's counts, made (and room made, counted) when new.
    fn field(&mut self, field: String, max_fields: usize, evicted: &mut u64) -> &mut FieldNoise {
        if !self.fields.contains_key(&field) {
            // Least-seen first: a field production or the candidate
            // disagrees at often is what the rates are about; random keys
            // are seen once.
            let gone = crate::bounded::victims(self.fields.iter(), self.fields.len(), max_fields, |_, f| {
                f.noisy + f.candidate_diffs
            });
            for key in &gone {
                self.fields.remove(key);
            }
            *evicted += gone.len() as u64;
            self.fields_evicted |= !gone.is_empty();
        }
        let since = if self.fields_evicted { (self.noise_samples, self.candidate_samples) } else { (0, 0) };
        self.fields.entry(field).or_insert_with(|| FieldNoise { since, ..Default::default() })
    }
}

/// What was learned per endpoint, and what was evicted to stay bounded.
struct Learned {
    endpoints: HashMap<String, EndpointNoise>,
    max_endpoints: usize,
    max_fields: usize,
    evicted_endpoints: u64,
    evicted_fields: u64,
    tick: u64,
}

impl Learned {
    /// The endpoint's noise, made (and room made, counted) when new.
    fn endpoint(&mut self, endpoint: &str) -> &mut EndpointNoise {
        self.tick += 1;
        if !self.endpoints.contains_key(endpoint) {
            // Least-seen first (then least recently): an endpoint's noise
            // is worth keeping by how many samples it rests on. An evicted
            // one learns again from zero: until then its differences are
            // diffs, never noise.
            let gone =
                crate::bounded::victims(self.endpoints.iter(), self.endpoints.len(), self.max_endpoints, |_, e| {
                    (e.noise_samples + e.candidate_samples, e.last)
                });
            for key in &gone {
                self.endpoints.remove(key);
            }
            self.evicted_endpoints += gone.len() as u64;
            self.endpoints.insert(endpoint.to_string(), EndpointNoise::default());
        }
        let e = self.endpoints.get_mut(endpoint).expect("present or just inserted");
        e.last = self.tick;
        e
    }
}

/// What was learned, shared by all replay tasks (taken once per exchange).
pub struct NoiseModel {
    learned: Mutex<Learned>,
    recent: Mutex<Recent>,
}

impl Default for NoiseModel {
    fn default() -> Self {
        let output = super::config::OutputConfig::default();
        NoiseModel::bounded(output.max_endpoints, output.max_fields)
    }
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

/// Folds array indices so `/items/3/ts` and `/items/7/ts` are one field;
/// a path of huge keys is cut (`bounded::capped_key`).
pub fn field_of(path: &str) -> String {
    let folded = path
        .split('/')
        .map(|seg| if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) { "*" } else { seg })
        .collect::<Vec<_>>()
        .join("/");
    match crate::bounded::capped_key(&folded) {
        std::borrow::Cow::Borrowed(_) => folded,
        std::borrow::Cow::Owned(cut) => cut,
    }
}

impl NoiseModel {
    /// A model keeping at most `max_endpoints` endpoints of `max_fields`
    /// fields each (`[output]`).
    pub fn bounded(max_endpoints: usize, max_fields: usize) -> NoiseModel {
        let learned = Learned {
            endpoints: HashMap::new(),
            max_endpoints,
            max_fields,
            evicted_endpoints: 0,
            evicted_fields: 0,
            tick: 0,
        };
        NoiseModel { learned: Mutex::new(learned), recent: Default::default() }
    }

    /// Evictions so far: `noise_endpoints`, `noise_fields`, `repeats`.
    pub fn evicted(&self) -> crate::bounded::Evicted {
        let learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        let repeats = self.recent.lock().unwrap_or_else(|e| e.into_inner()).evicted;
        [("noise_endpoints", learned.evicted_endpoints), ("noise_fields", learned.evicted_fields), ("repeats", repeats)]
            .into_iter()
            .collect()
    }

    /// Production answered this request (secondary, or a repeat in the
    /// capture) with these differences from the recorded answer.
    pub fn learn(&self, endpoint: &str, differences: &[Difference], source: &'static str) {
        let mut learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        let (max_fields, mut evicted) = (learned.max_fields, 0);
        let e = learned.endpoint(endpoint);
        let mut seen = std::collections::HashSet::new();
        for d in differences {
            let field = field_of(&d.path);
            if !seen.insert(field.clone()) {
                continue;
            }
            let f = e.field(field, max_fields, &mut evicted);
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
        // Counted after the fields, so a field made now counts this sample.
        e.noise_samples += 1;
        learned.evicted_fields += evicted;
    }

    /// Counts the candidate's differences (after comparison) for the rates.
    pub fn count_candidate(&self, endpoint: &str, differences: &[Difference]) {
        let mut learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        let (max_fields, mut evicted) = (learned.max_fields, 0);
        let e = learned.endpoint(endpoint);
        let mut seen = std::collections::HashSet::new();
        for d in differences {
            let field = field_of(&d.path);
            if seen.insert(field.clone()) {
                e.field(field, max_fields, &mut evicted).candidate_diffs += 1;
            }
        }
        e.candidate_samples += 1;
        learned.evicted_fields += evicted;
    }

    /// Production-against-production comparisons learned for the endpoint.
    pub fn samples(&self, endpoint: &str) -> u64 {
        let learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        learned.endpoints.get(endpoint).map_or(0, |e| e.noise_samples)
    }

    /// Is this difference noise for the endpoint, by what was learned so
    /// far: production disagreed with itself at this field, in this way
    /// (a changing value never explains a key gone missing), about as often
    /// as the candidate does?
    pub fn is_noisy(&self, endpoint: &str, d: &Difference, config: &NoiseConfig) -> bool {
        let learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        let Some(e) = learned.endpoints.get(endpoint) else { return false };
        let Some(f) = e.fields.get(&field_of(&d.path)) else { return false };
        // Rates over the samples since the field was learned (all of them
        // unless fields were evicted).
        let noise_samples = e.noise_samples - f.since.0;
        let candidate_samples = e.candidate_samples - f.since.1;
        if f.noisy < config.min_samples || noise_samples == 0 || !f.kinds.contains(&d.kind) {
            return false;
        }
        let noise_rate = f.noisy as f64 / noise_samples as f64;
        let candidate_rate =
            if candidate_samples == 0 { 0.0 } else { f.candidate_diffs as f64 / candidate_samples as f64 };
        candidate_rate <= noise_rate * (1.0 + config.relative_percent / 100.0) + config.absolute_percent / 100.0
    }

    /// For the report: the noisy fields of each endpoint, with counts.
    pub fn snapshot(&self) -> HashMap<String, (u64, Vec<(String, FieldNoise)>)> {
        let learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        learned
            .endpoints
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

    #[test]
    fn noise_is_bounded_per_endpoint_and_field_with_evictions_counted_and_learning_goes_on() {
        let model = NoiseModel::bounded(8, 16);
        for _ in 0..10 {
            model.learn("GET /a", &[diff("/ts")], "secondary");
            model.count_candidate("GET /a", &[diff("/ts")]);
        }
        for i in 0..100 {
            model.learn("GET /a", &[diff(&format!("/k{i}"))], "secondary");
            model.learn(&format!("GET /r{i}"), &[diff("/x")], "secondary");
        }
        let evicted = model.evicted();
        let learned = model.learned.lock().unwrap();
        assert!(learned.endpoints.len() <= 8, "{}", learned.endpoints.len());
        let fields = learned.endpoints["GET /a"].fields.len();
        assert!(fields <= 16, "{fields}");
        assert_eq!(evicted["noise_fields"], 101 - fields as u64, "every field not held was evicted, counted");
        assert_eq!(evicted["noise_endpoints"], 101 - learned.endpoints.len() as u64);
        drop(learned);
        let ts = model.snapshot()["GET /a"].1.iter().find(|(p, _)| p == "/ts").map(|(_, f)| f.noisy);
        assert_eq!(ts, Some(10), "the most seen field stays learned");
        model.learn("GET /a", &[diff("/new")], "secondary");
        assert_eq!(model.snapshot()["GET /a"].1.iter().filter(|(p, _)| p == "/new").count(), 1, "still learning");
    }

    #[test]
    fn a_field_learned_again_after_evictions_counts_its_rates_from_then() {
        // /price is evicted, then learned again: since then the candidate
        // differs there every time, production 2 times in 10. Over the
        // whole history its fresh counts would read 2 in 22 for production
        // and 10 in 1012 for the candidate: noise. From the relearning on,
        // 20% against 100%: a diff.
        let model = NoiseModel::bounded(8, 4);
        let config = NoiseConfig::default();
        for _ in 0..2 {
            model.count_candidate("GET /a", &[diff("/price")]);
        }
        for _ in 0..1000 {
            model.count_candidate("GET /a", &[]);
        }
        for field in ["/k0", "/k1", "/k2", "/k3"] {
            for _ in 0..3 {
                model.learn("GET /a", &[diff(field)], "secondary");
            }
        }
        assert_eq!(model.evicted()["noise_fields"], 1, "/price, the least seen, went");
        for i in 0..10 {
            model.count_candidate("GET /a", &[diff("/price")]);
            let production = if i < 2 { vec![diff("/price")] } else { Vec::new() };
            model.learn("GET /a", &production, "secondary");
        }
        assert!(!model.is_noisy("GET /a", &diff("/price"), &config));
    }
}
