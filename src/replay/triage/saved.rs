//! Learned noise kept across restarts (`crate::state`). Out: every
//! endpoint's samples and every field's counts, kinds, sources and
//! examples (secrets redacted, as in the report); in: the same, put back
//! into a model within its bounds.

use serde::{Deserialize, Serialize};

use super::{FieldNoise, NoiseModel};
use crate::diff::DiffKind;

/// The noise model as saved.
#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct SavedNoise {
    pub endpoints: Vec<SavedEndpoint>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct SavedEndpoint {
    pub endpoint: String,
    pub noise_samples: u64,
    pub candidate_samples: u64,
    pub fields_evicted: bool,
    pub fields: Vec<SavedField>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct SavedField {
    pub path: String,
    pub noisy: u64,
    pub candidate_diffs: u64,
    pub sources: Vec<String>,
    pub kinds: Vec<DiffKind>,
    pub examples: Vec<(serde_json::Value, serde_json::Value)>,
    /// [`FieldNoise::since`]: rates count from these sample counts.
    pub since: (u64, u64),
}

/// Sources are `&'static str` in the model; unknown ones are dropped.
fn known_source(source: &str) -> Option<&'static str> {
    ["secondary", "repeats"].into_iter().find(|known| *known == source)
}

impl NoiseModel {
    /// What was learned, to be saved.
    pub fn save(&self) -> SavedNoise {
        let learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        let redactor = crate::redact::redactor();
        let mut endpoints: Vec<SavedEndpoint> = learned
            .endpoints
            .iter()
            .map(|(name, e)| SavedEndpoint {
                endpoint: name.clone(),
                noise_samples: e.noise_samples,
                candidate_samples: e.candidate_samples,
                fields_evicted: e.fields_evicted,
                fields: e
                    .fields
                    .iter()
                    .map(|(path, f)| SavedField {
                        path: path.clone(),
                        noisy: f.noisy,
                        candidate_diffs: f.candidate_diffs,
                        sources: f.sources.iter().map(|s| s.to_string()).collect(),
                        kinds: f.kinds.clone(),
                        examples: f
                            .examples
                            .iter()
                            .map(|(a, b)| (redactor.shown(path, a), redactor.shown(path, b)))
                            .collect(),
                        since: f.since,
                    })
                    .collect(),
            })
            .collect();
        endpoints.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        SavedNoise { endpoints }
    }

    /// Puts saved noise back (at start, into a new model); beyond the
    /// model's bounds the least-seen are evicted as when learning.
    pub fn restore(&self, saved: SavedNoise) {
        let mut learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        let max_fields = learned.max_fields;
        for s in saved.endpoints {
            let mut evicted = 0;
            let e = learned.endpoint(&s.endpoint);
            e.noise_samples = s.noise_samples;
            e.candidate_samples = s.candidate_samples;
            e.fields_evicted = s.fields_evicted;
            for f in s.fields {
                let field = e.field(f.path, max_fields, &mut evicted);
                *field = FieldNoise {
                    noisy: f.noisy,
                    noise_samples: 0,
                    candidate_diffs: f.candidate_diffs,
                    sources: f.sources.iter().filter_map(|s| known_source(s)).collect(),
                    kinds: f.kinds,
                    examples: f.examples,
                    // Never beyond the endpoint's counts (a hand-edited file).
                    since: (f.since.0.min(s.noise_samples), f.since.1.min(s.candidate_samples)),
                };
            }
            learned.evicted_fields += evicted;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::Difference;

    #[test]
    fn restored_noise_explains_what_it_explained() {
        let model = NoiseModel::default();
        let d = Difference { path: "/ts".into(), kind: DiffKind::Changed, recorded: 1.into(), candidate: 2.into() };
        for _ in 0..5 {
            model.learn("GET /a", std::slice::from_ref(&d), "repeats");
            model.count_candidate("GET /a", std::slice::from_ref(&d));
        }
        let config = crate::replay::config::NoiseConfig::default();
        assert!(model.is_noisy("GET /a", &d, &config));
        let text = serde_json::to_string(&model.save()).unwrap();
        let back = NoiseModel::default();
        assert!(!back.is_noisy("GET /a", &d, &config));
        back.restore(serde_json::from_str(&text).unwrap());
        assert!(back.is_noisy("GET /a", &d, &config));
        assert_eq!(back.samples("GET /a"), 5);
        assert_eq!(serde_json::to_string(&back.save()).unwrap(), text);
    }
}
