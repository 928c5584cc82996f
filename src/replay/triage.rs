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
//! - Writes replayed to sister datastores return other generated ids: those
//!   are mapped (recorded id → candidate id) so later requests naming the
//!   recorded id are sent with the candidate's, and compare equal.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::client::CandidateAnswer;
use super::{Explained, MappedId, Outcome, OutcomeKind, Replayer, is_safe};
use crate::diff::{self, Answer, Difference};
use crate::exchange::{Exchange, Nanos};

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

/// An answer production gave: status, headers, body.
pub type RecordedAnswer = (u16, Vec<(String, String)>, Vec<u8>);

/// Recorded answers by request, for noticing repeats.
#[derive(Default)]
struct Recent {
    by_key: HashMap<Arc<str>, (Nanos, StoredAnswer)>,
    order: VecDeque<(Nanos, Arc<str>)>,
}

/// A recorded answer kept for noticing repeats, in two allocations: the
/// header names and values then the body in one buffer, and their lengths.
pub struct StoredAnswer {
    /// Of status, headers and body: repeats are told apart by this alone
    /// (reading the stored copy back showed in profiles; a 64-bit
    /// collision would only count one noise sample as "no difference").
    fingerprint: u64,
    status: u16,
    data: Vec<u8>,
    /// (name length, value length) of each header, in order.
    lengths: Vec<(u32, u32)>,
}

fn fingerprint(status: u16, headers: &[(String, String)], body: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write_u16(status);
    h.write_usize(headers.len());
    for (name, value) in headers {
        h.write(name.as_bytes());
        h.write_u8(0);
        h.write(value.as_bytes());
        h.write_u8(0);
    }
    h.write(body);
    h.write_usize(body.len());
    h.finish()
}

/// What an earlier answer to the same request was.
pub enum Repeat {
    /// The same as this one.
    Same,
    /// Different: the earlier answer, to compare with.
    Changed(StoredAnswer),
}

impl StoredAnswer {
    fn of(status: u16, headers: &[(String, String)], body: &[u8]) -> StoredAnswer {
        let size = headers.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>() + body.len();
        let mut data = Vec::with_capacity(size);
        let mut lengths = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            data.extend_from_slice(name.as_bytes());
            data.extend_from_slice(value.as_bytes());
            lengths.push((name.len() as u32, value.len() as u32));
        }
        data.extend_from_slice(body);
        StoredAnswer { fingerprint: fingerprint(status, headers, body), status, data, lengths }
    }

    /// Header names and values, then the body.
    fn parts(&self) -> (impl Iterator<Item = (&[u8], &[u8])>, &[u8]) {
        let mut at = 0;
        let headers = self.lengths.iter().map(move |&(n, v)| {
            let (n, v) = (n as usize, v as usize);
            let pair = (&self.data[at..at + n], &self.data[at + n..at + n + v]);
            at += n + v;
            pair
        });
        let header_bytes: usize = self.lengths.iter().map(|&(n, v)| n as usize + v as usize).sum();
        (headers, &self.data[header_bytes..])
    }

    /// This status, these headers (in order) and this body.
    pub fn same_as(&self, status: u16, headers: &[(String, String)], body: &[u8]) -> bool {
        self.fingerprint == fingerprint(status, headers, body)
    }

    pub fn into_answer(self) -> RecordedAnswer {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let (headers, body) = self.parts();
        (self.status, headers.map(|(n, v)| (text(n), text(v))).collect(), body.to_vec())
    }
}

const MAX_RECENT: usize = 50_000;

/// Folds array indices so `/items/3/ts` and `/items/7/ts` are one field.
pub fn field_of(path: &str) -> String {
    path.split('/')
        .map(|seg| if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) { "*" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// The request as far as noise from repeats is concerned: method, URI and
/// the headers that usually change an answer.
fn request_key(exchange: &Exchange) -> String {
    let r = &exchange.request;
    // One pass over the headers (the first of each name counts).
    const NAMES: [&str; 4] = ["accept", "accept-language", "authorization", "cookie"];
    let mut values = [None::<&str>; 4];
    for (name, value) in &r.payload.headers {
        if let Some(i) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)) {
            values[i].get_or_insert(value.as_str());
        }
    }
    let [accept, lang, auth, cookie] = values.map(|v| v.unwrap_or(""));
    format!("{} {} accept={accept} lang={lang} auth={auth} cookie={cookie}", r.method, r.uri)
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

    /// Checks the capture for an earlier answer to the same request within
    /// the window, and remembers this one. The stored copy is replaced
    /// only when the answer changed: repeats of the same answer, the usual
    /// case, cost a comparison and no copy.
    pub fn previous_answer(&self, exchange: &Exchange, window_ns: Nanos) -> Option<Repeat> {
        let response = exchange.response.as_ref()?;
        if !exchange.request.method.eq_ignore_ascii_case("GET") || exchange.gap || response.payload.truncated {
            return None;
        }
        let key = request_key(exchange);
        let now = exchange.request.ts;
        let (status, headers, body) = (response.status, &response.payload.headers, &response.payload.body);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((ts, old_key)) = recent.order.front().cloned() {
            if now - ts <= window_ns && recent.order.len() < MAX_RECENT {
                break;
            }
            recent.order.pop_front();
            if recent.by_key.get(&old_key).is_some_and(|(t, _)| *t == ts) {
                recent.by_key.remove(&old_key);
            }
        }
        let known = recent.by_key.get_key_value(key.as_str()).map(|(k, _)| k.clone());
        let (repeat, key) = match known.and_then(|k| Some((k.clone(), recent.by_key.get_mut(&k)?))) {
            Some((key, (ts, stored))) => {
                let in_window = now - *ts <= window_ns;
                *ts = now;
                let repeat = if stored.same_as(status, headers, body) {
                    in_window.then_some(Repeat::Same)
                } else {
                    let previous = std::mem::replace(stored, StoredAnswer::of(status, headers, body));
                    in_window.then_some(Repeat::Changed(previous))
                };
                (repeat, key)
            }
            None => {
                let key: Arc<str> = key.into();
                recent.by_key.insert(key.clone(), (now, StoredAnswer::of(status, headers, body)));
                (None, key)
            }
        };
        recent.order.push_back((now, key));
        repeat
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

/// Recorded ids → the candidate's ids, learned from replayed writes.
#[derive(Default)]
pub struct IdMap {
    map: Mutex<HashMap<String, String>>,
}

const MAX_IDS: usize = 1_000_000;

impl IdMap {
    pub fn insert(&self, recorded: String, candidate: String) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() < MAX_IDS {
            map.insert(recorded, candidate);
        }
    }

    pub fn get(&self, recorded: &str) -> Option<String> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).get(recorded).cloned()
    }

    /// The URI with every path segment that is a mapped recorded id
    /// replaced by the candidate's id; and the pairs used.
    pub fn rewrite_uri(&self, uri: &str) -> (String, Vec<(String, String)>) {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.is_empty() {
            return (uri.to_string(), Vec::new());
        }
        let (path, query) = match uri.find('?') {
            Some(i) => (&uri[..i], &uri[i..]),
            None => (uri, ""),
        };
        let mut used = Vec::new();
        let segments: Vec<String> = path
            .split('/')
            .map(|seg| match map.get(seg) {
                Some(to) if !seg.is_empty() => {
                    used.push((seg.to_string(), to.clone()));
                    to.clone()
                }
                _ => seg.to_string(),
            })
            .collect();
        (segments.join("/") + query, used)
    }
}

/// Scalar JSON value as the text an id would have in a URL.
pub fn id_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.is_empty() && s.len() <= 128 => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Does this field name look like a server-generated identifier?
pub fn looks_like_id_field(path: &str, configured: &[String]) -> bool {
    if configured.iter().any(|c| crate::replay::triage::field_of(c) == field_of(path)) {
        return true;
    }
    let last = path.rsplit('/').next().unwrap_or("").to_ascii_lowercase();
    last == "id" || last == "uuid" || last.ends_with("_id") || last.ends_with("id") && last.len() <= 8
}

/// The triage of one compared exchange: what [`Replayer::process`] calls
/// once the candidate's answer has been compared with the recorded one.
impl Replayer {
    /// Sets aside generated ids, mapped ids and noise, then asks production
    /// whether what remains is a race.
    pub(super) async fn triage(&self, outcome: &mut Outcome, exchange: &Exchange, answer: &CandidateAnswer) {
        if outcome.differences.is_empty() {
            return;
        }
        let is_write = self.is_write(exchange);
        let request_body = String::from_utf8_lossy(&exchange.request.payload.body).into_owned();
        let mut real = Vec::new();
        let mut any_noise = false;
        for d in std::mem::take(&mut outcome.differences) {
            let (rec, cand) = (id_text(&d.recorded), id_text(&d.candidate));
            let by = match (rec, cand) {
                (Some(rec), Some(cand)) if self.ids.get(&rec).as_deref() == Some(cand.as_str()) => Some("id_mapping"),
                (Some(rec), Some(cand))
                    if is_write
                        && looks_like_id_field(&d.path, &self.config.replay.id_fields)
                        && !request_body.contains(&rec) =>
                {
                    self.ids.insert(rec.clone(), cand.clone());
                    outcome.mapped_ids.push(MappedId { recorded: rec, candidate: cand });
                    Some("generated_id")
                }
                _ if self.noise.is_noisy(&outcome.endpoint, &d.path, &self.config.noise) => {
                    any_noise = true;
                    Some("noise")
                }
                _ => None,
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
        let moved = self.compare_with_recorded(exchange, endpoint, &now);
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
    use super::super::config::Config;

    fn replayer(noise: &str) -> Replayer {
        Replayer::new(Config::parse(&format!("[noise]\n{noise}\n"), "c").unwrap(), "http://127.0.0.1:1").unwrap()
    }

    fn diff_at(endpoint: &str, paths: &[&str]) -> Outcome {
        let difference = |p: &&str| Difference {
            path: p.to_string(),
            kind: DiffKind::Changed,
            recorded: 1.into(),
            candidate: 2.into(),
        };
        Outcome {
            ts: String::new(),
            method: "GET".into(),
            uri: "/x".into(),
            endpoint: endpoint.into(),
            outcome: OutcomeKind::Diff,
            differences: paths.iter().map(difference).collect(),
            recorded_status: Some(200),
            candidate_status: Some(200),
            recorded_latency_us: None,
            candidate_latency_us: None,
            error: None,
            explained: Vec::new(),
            mapped_ids: Vec::new(),
            reason: None,
            equivalences: Default::default(),
        }
    }

    /// Production disagreed with itself at `/ts`, `n` times.
    fn learn(r: &Replayer, endpoint: &str, n: usize) {
        let noisy = diff_at(endpoint, &["/ts"]).differences;
        for _ in 0..n {
            r.noise.learn(endpoint, &noisy, "repeats");
        }
    }

    #[test]
    fn a_diff_waits_for_its_endpoints_noise_and_is_judged_again() {
        let r = replayer("warmup_samples = 3");
        let mut hold = Holdback::default();
        assert!(hold.offer(diff_at("E", &["/ts"]), &r).is_empty(), "nothing known yet: held");
        assert!(hold.offer(diff_at("E", &["/ts", "/name"]), &r).is_empty());
        assert_eq!(hold.offer(diff_at("F", &["/ts"]), &r).len(), 0, "another endpoint, held apart");
        learn(&r, "E", 3);
        r.noise.count_candidate("E", &diff_at("E", &["/ts"]).differences);
        // The next outcome of E releases E's held ones, judged again; F waits.
        let out = hold.offer(diff_at("E", &["/name"]), &r);
        let kinds: Vec<_> = out.iter().map(|o| (o.outcome, o.differences.len(), o.explained.len())).collect();
        assert_eq!(kinds, [(OutcomeKind::Noise, 0, 1), (OutcomeKind::Diff, 1, 1), (OutcomeKind::Diff, 1, 0)]);
        assert_eq!(out[1].differences[0].path, "/name", "a real difference stays");
        assert_eq!(hold.len(), 1);
        let rest = hold.drain(&r);
        assert_eq!(
            (rest.len(), rest[0].outcome, hold.len()),
            (1, OutcomeKind::Diff, 0),
            "F never learned: still a diff"
        );
    }

    #[test]
    fn holding_is_bounded_off_when_zero_and_expires() {
        let r = replayer("warmup_samples = 5");
        let mut hold = Holdback::default();
        for _ in 0..super::HELD_PER_ENDPOINT {
            assert!(hold.offer(diff_at("E", &["/a"]), &r).is_empty());
        }
        assert_eq!(hold.offer(diff_at("E", &["/a"]), &r).len(), 1, "beyond the bound a diff goes out at once");
        let r0 = replayer("warmup_samples = 0");
        assert_eq!(Holdback::default().offer(diff_at("E", &["/a"]), &r0).len(), 1);
        let expiring = replayer("warmup_samples = 5\nwarmup_max_s = 0");
        let mut hold = Holdback::default();
        assert!(hold.offer(diff_at("E", &["/a"]), &expiring).is_empty());
        assert_eq!(hold.expired(&expiring).len(), 1);
        assert!(hold.is_empty());
    }
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
    fn array_indices_fold_and_ids_in_paths_are_rewritten() {
        assert_eq!(field_of("/items/3/updated_at"), "/items/*/updated_at");
        let ids = IdMap::default();
        ids.insert("500001".into(), "100001".into());
        assert_eq!(ids.rewrite_uri("/comments/500001?x=500001").0, "/comments/100001?x=500001");
        assert_eq!(ids.rewrite_uri("/comments/5000011").0, "/comments/5000011");
    }
}

/// Diffs held back while their endpoint's noise is not known yet (see
/// [`NoiseConfig::warmup_samples`]), then judged again. Bounded: at most
/// [`HELD_PER_ENDPOINT`] per endpoint and [`HELD_TOTAL`] in all; beyond,
/// a diff goes out as judged.
#[derive(Default)]
pub struct Holdback {
    held: HashMap<String, Vec<(std::time::Instant, Outcome)>>,
    total: usize,
}

pub const HELD_PER_ENDPOINT: usize = 256;
pub const HELD_TOTAL: usize = 8192;

impl Holdback {
    /// Takes a finished outcome; returns those that may go out now: this
    /// one unless it is held, and the endpoint's held ones once it knows
    /// enough, judged again.
    pub fn offer(&mut self, outcome: Outcome, replayer: &Replayer) -> Vec<Outcome> {
        let config = &replayer.config().noise;
        let warm = |endpoint: &str| replayer.noise.samples(endpoint) >= config.warmup_samples;
        if config.warmup_samples == 0 {
            return vec![outcome];
        }
        let mut out = Vec::new();
        if self.held.contains_key(&outcome.endpoint) && warm(&outcome.endpoint) {
            out.extend(self.release(&outcome.endpoint.clone(), replayer));
        }
        let room =
            self.total < HELD_TOTAL && self.held.get(&outcome.endpoint).is_none_or(|h| h.len() < HELD_PER_ENDPOINT);
        if outcome.outcome == OutcomeKind::Diff && room && !warm(&outcome.endpoint) {
            self.total += 1;
            self.held.entry(outcome.endpoint.clone()).or_default().push((std::time::Instant::now(), outcome));
        } else {
            out.push(outcome);
        }
        out
    }

    /// Held diffs older than `warmup_max_s`, judged with what is known.
    pub fn expired(&mut self, replayer: &Replayer) -> Vec<Outcome> {
        let max_age = std::time::Duration::from_secs(replayer.config().noise.warmup_max_s);
        let old: Vec<String> = self
            .held
            .iter()
            .filter(|(_, held)| held.first().is_some_and(|(since, _)| since.elapsed() >= max_age))
            .map(|(endpoint, _)| endpoint.clone())
            .collect();
        old.iter().flat_map(|endpoint| self.release(endpoint, replayer)).collect()
    }

    /// Everything held, judged with what is known (replay ended).
    pub fn drain(&mut self, replayer: &Replayer) -> Vec<Outcome> {
        let endpoints: Vec<String> = self.held.keys().cloned().collect();
        endpoints.iter().flat_map(|endpoint| self.release(endpoint, replayer)).collect()
    }

    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn release(&mut self, endpoint: &str, replayer: &Replayer) -> Vec<Outcome> {
        let held = self.held.remove(endpoint).unwrap_or_default();
        self.total -= held.len();
        held.into_iter()
            .map(|(_, mut outcome)| {
                replayer.judge_noise_again(&mut outcome);
                outcome
            })
            .collect()
    }
}

impl Replayer {
    /// A held diff, judged with the noise known now: its differences that
    /// are noise by now are set aside as such.
    pub(super) fn judge_noise_again(&self, outcome: &mut Outcome) {
        let config = &self.config().noise;
        let (noisy, real): (Vec<Difference>, Vec<Difference>) = std::mem::take(&mut outcome.differences)
            .into_iter()
            .partition(|d| self.noise.is_noisy(&outcome.endpoint, &d.path, config));
        outcome.explained.extend(noisy.iter().map(|d| Explained { path: d.path.clone(), by: "noise" }));
        if real.is_empty() {
            outcome.outcome = OutcomeKind::Noise;
        }
        outcome.differences = real;
    }
}
