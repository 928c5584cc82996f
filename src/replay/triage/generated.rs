//! Values a replayed write generates, and their mapping into later answers.
//!
//! A write replayed to the candidate's sister datastore generates its own
//! ids, creation and update times, validators and tokens, so its answer
//! differs from production's exactly there. Such a difference is set aside
//! on the write (`generated_id`, `generated_time`, `generated_value`) and
//! the pair (recorded → candidate) remembered, so that later requests
//! naming the recorded id are sent with the candidate's, and later answers
//! carrying the recorded value compare equal to the candidate's
//! (`id_mapping`, `value_mapping`).
//!
//! What counts as generated, on a write's answer only, and only when the
//! recorded value does not come from the request body (the client sent
//! it: then it is data, not generated):
//! - an id: a field named like one (`id`, `uuid`, `*_id`, `[replay]
//!   id_fields`);
//! - a time: both values are instants (RFC 3339, an HTTP date, or Unix
//!   seconds or milliseconds) and each lies within its own exchange's time
//!   window: production's between the recorded request's first packet and
//!   the answer's, the candidate's between sending and the answer, widened
//!   by the value's precision (a stamp in whole seconds can read up to a
//!   second before the request started) and by `[replay]
//!   generated_time_tolerance_ms` (clocks of other hosts). A stamp off by
//!   an hour is outside its window and stays a diff;
//! - a validator or token: the `ETag` header, fields named `token`,
//!   `nonce`, `etag`, `*_token`, and `[replay] generated_fields`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::diff::Difference;
use crate::exchange::Nanos;

pub mod saved;

/// What kind of generated value a mapping is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Generated {
    Id,
    Time,
    Value,
}

impl Generated {
    /// The explanation on the write that generated it.
    pub fn explained_by(self) -> &'static str {
        match self {
            Generated::Id => "generated_id",
            Generated::Time => "generated_time",
            Generated::Value => "generated_value",
        }
    }

    /// The explanation on a later answer that carries it.
    pub fn mapped_by(self) -> &'static str {
        match self {
            Generated::Id => "id_mapping",
            Generated::Time | Generated::Value => "value_mapping",
        }
    }
}

/// When an exchange happened, as the wall clock saw it: nanoseconds since
/// the Unix epoch, from the start of the request to the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: Nanos,
    pub end: Nanos,
}

impl Window {
    pub fn between(start: SystemTime, end: SystemTime) -> Window {
        Window { start: nanos_since_epoch(start), end: nanos_since_epoch(end) }
    }

    /// Does an instant read with `precision` lie within the window, give or
    /// take `tolerance`? A stamp is truncated (or rounded) to its precision,
    /// so it can read up to one unit before the request started.
    fn holds(&self, instant: Instant, tolerance: Duration) -> bool {
        let tolerance = tolerance.as_nanos() as i64;
        let earliest = self.start - instant.precision - tolerance;
        let latest = self.end + instant.precision + tolerance;
        (earliest..=latest).contains(&instant.at)
    }
}

fn nanos_since_epoch(t: SystemTime) -> Nanos {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
}

/// An instant read from a value, with the precision it was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Instant {
    at: Nanos,
    precision: Nanos,
}

/// Epoch numbers are taken as times only within these years (2001-2286 in
/// seconds): a small id is never read as 1970.
const EPOCH_SECONDS: std::ops::RangeInclusive<i64> = 1_000_000_000..=9_999_999_999;

/// The instant a JSON or header value denotes, if it is one.
fn instant_of(value: &Value) -> Option<Instant> {
    match value {
        Value::String(text) => instant_of_text(text),
        Value::Number(n) => {
            let n = n.as_i64()?;
            if EPOCH_SECONDS.contains(&n) {
                Some(Instant { at: n * 1_000_000_000, precision: 1_000_000_000 })
            } else if EPOCH_SECONDS.contains(&(n / 1000)) {
                Some(Instant { at: n * 1_000_000, precision: 1_000_000 })
            } else {
                None
            }
        }
        _ => None,
    }
}

fn instant_of_text(text: &str) -> Option<Instant> {
    if let Some(t) = crate::diff::parse_instant(text) {
        return Some(Instant { at: t.timestamp_nanos_opt()?, precision: precision_of_rfc3339(text) });
    }
    // HTTP dates (Last-Modified, Expires): IMF-fixdate, whole seconds.
    let t = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    Some(Instant { at: t.timestamp_nanos_opt()?, precision: 1_000_000_000 })
}

/// One unit of the last digit of the seconds: 1 s for `...:25Z`, 1 ms for
/// `...:25.123Z`.
fn precision_of_rfc3339(text: &str) -> Nanos {
    // `YYYY-MM-DDTHH:MM:SS` is 19 bytes; a fraction follows as `.ddd`.
    let digits = match text.as_bytes().get(19..) {
        Some([b'.', rest @ ..]) => rest.iter().take_while(|b| b.is_ascii_digit()).count(),
        _ => 0,
    };
    10i64.pow(9 - digits.min(9) as u32)
}

/// Is this value a time the write generated: an instant on each side, each
/// within its own exchange's window?
pub fn is_generated_time(d: &Difference, recorded: Window, candidate: Window, tolerance: Duration) -> bool {
    match (instant_of(&d.recorded), instant_of(&d.candidate)) {
        (Some(r), Some(c)) => recorded.holds(r, tolerance) && candidate.holds(c, tolerance),
        _ => false,
    }
}

/// The last segment of a path (`/comment/id` → `id`, `header:etag` → `etag`).
fn field_name(path: &str) -> String {
    let last = path.rsplit('/').next().unwrap_or("");
    last.strip_prefix("header:").unwrap_or(last).to_ascii_lowercase()
}

/// Does this field name look like a server-generated identifier?
pub fn looks_like_id_field(path: &str, configured: &[String]) -> bool {
    if configured.iter().any(|c| super::field_of(c) == super::field_of(path)) {
        return true;
    }
    if path.starts_with("header:") {
        return false;
    }
    let last = field_name(path);
    last == "id" || last == "uuid" || last.ends_with("_id") || last.ends_with("id") && last.len() <= 8
}

/// Does this field hold a validator or token a write generates?
pub fn looks_like_token_field(path: &str, configured: &[String]) -> bool {
    if configured.iter().any(|c| super::field_of(c) == super::field_of(path) || c.eq_ignore_ascii_case(path)) {
        return true;
    }
    let last = field_name(path);
    ["etag", "token", "nonce"].contains(&last.as_str()) || last.ends_with("_token")
}

/// Scalar JSON value as the text it would have in a URL or a header.
pub fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() && s.len() <= 256 => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A recorded value and the candidate's value for the same thing.
#[derive(Clone, Debug, Serialize)]
pub struct MappedValue {
    pub recorded: String,
    pub candidate: String,
    pub kind: Generated,
    /// Learned at a secret path ([`crate::redact`]): written redacted.
    #[serde(skip)]
    pub secret: bool,
}

/// Recorded values → the candidate's, learned from replayed writes.
/// Times are keyed by instant, so a later answer that writes the same
/// instant in another form still maps.
pub struct GeneratedValues {
    map: Mutex<Mapped>,
}

impl Default for GeneratedValues {
    fn default() -> Self {
        GeneratedValues::bounded(super::super::config::ReplayConfig::default().max_mapped_values)
    }
}

/// The mappings, bounded: beyond `max` the oldest learned go (counted).
/// Oldest first, because a write's ids are named by the requests that
/// follow it soon; a value mapped long ago is the least likely to come
/// back.
struct Mapped {
    values: HashMap<String, Mapping>,
    max: usize,
    next: u64,
    evicted: u64,
}

impl Mapped {
    fn insert(&mut self, from: String, to: String, kind: Generated, field: String) {
        if !self.values.contains_key(&from) {
            let gone = crate::bounded::victims(self.values.iter(), self.values.len(), self.max, |_, m| m.seq);
            for key in &gone {
                self.values.remove(key);
            }
            self.evicted += gone.len() as u64;
        }
        self.next += 1;
        self.values.insert(from, Mapping { to, kind, field, seq: self.next });
    }
}

/// What a recorded value maps to, and where it was learned.
struct Mapping {
    to: String,
    kind: Generated,
    /// The field's name where the write generated it (`id`, `etag`).
    field: String,
    /// When it was learned (for evicting the oldest).
    seq: u64,
}

/// The key a value is remembered under: times by instant, others by text.
fn key_of(value: &Value, kind: Generated) -> Option<String> {
    match kind {
        Generated::Time => instant_of(value).map(|i| format!("@{}", i.at)),
        _ => value_text(value),
    }
}

impl GeneratedValues {
    /// Remembers at most `max` values (`[replay] max_mapped_values`).
    pub fn bounded(max: usize) -> GeneratedValues {
        GeneratedValues { map: Mutex::new(Mapped { values: HashMap::new(), max, next: 0, evicted: 0 }) }
    }

    /// Values forgotten to stay within the bound.
    pub fn evicted(&self) -> u64 {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).evicted
    }

    /// Remembers what the candidate generated where production had `recorded`.
    pub fn learn(&self, d: &Difference, kind: Generated) -> Option<MappedValue> {
        let (from, to) = (key_of(&d.recorded, kind)?, key_of(&d.candidate, kind)?);
        self.map.lock().unwrap_or_else(|e| e.into_inner()).insert(from, to, kind, field_name(&d.path));
        let secret = crate::redact::redactor().is_secret_path(&d.path);
        Some(MappedValue { recorded: value_text(&d.recorded)?, candidate: value_text(&d.candidate)?, kind, secret })
    }

    /// Remembers an id pair directly (tests, and ids read from URLs).
    pub fn insert_id(&self, recorded: String, candidate: String) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(recorded, candidate, Generated::Id, "id".into());
    }

    /// Does this difference show a remembered value: the recorded one on
    /// production's side, its mapping on the candidate's? Gives the kind of
    /// the mapping that explains it.
    ///
    /// Ids are short and common numbers, so an id mapping explains a
    /// difference only where an id stands: a field named like one
    /// (`id_fields` included), a field of the name it was learned at, or
    /// inside a longer string (a `Location`, a link). A `count` going from
    /// 1 to 2 is never explained by an id 1 that mapped to 2. Times (to the
    /// nanosecond) and tokens are specific enough to map anywhere.
    pub fn explains(&self, d: &Difference, id_fields: &[String]) -> Option<Generated> {
        let guard = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let map = &guard.values;
        if map.is_empty() {
            return None;
        }
        for kind in [Generated::Id, Generated::Time] {
            let (Some(from), Some(to)) = (key_of(&d.recorded, kind), key_of(&d.candidate, kind)) else { continue };
            let Some(m) = map.get(&from).filter(|m| m.to == to) else { continue };
            let id_place = looks_like_id_field(&d.path, id_fields) || field_name(&d.path) == m.field;
            if m.kind != Generated::Id || id_place {
                return Some(m.kind);
            }
        }
        let (Value::String(recorded), Value::String(candidate)) = (&d.recorded, &d.candidate) else { return None };
        let (rewritten, used) = rewrite_tokens(recorded, map);
        (used && rewritten == *candidate).then_some(Generated::Id)
    }

    /// The URI with every path segment that is a mapped recorded id
    /// replaced by the candidate's; and the pairs used.
    pub fn rewrite_uri(&self, uri: &str) -> (String, Vec<MappedValue>) {
        let guard = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let map = &guard.values;
        if map.is_empty() {
            return (uri.to_string(), Vec::new());
        }
        let (path, query) = match uri.find('?') {
            Some(i) => (&uri[..i], &uri[i..]),
            None => (uri, ""),
        };
        let mut used = Vec::new();
        let segments: Vec<&str> = path
            .split('/')
            .map(|seg| match map.get(seg) {
                Some(m) if !seg.is_empty() && m.kind != Generated::Time => {
                    // Already in the URI, which is not a secret place.
                    let (recorded, candidate) = (seg.to_string(), m.to.clone());
                    used.push(MappedValue { recorded, candidate, kind: m.kind, secret: false });
                    m.to.as_str()
                }
                _ => seg,
            })
            .collect();
        (segments.join("/") + query, used)
    }
}

/// `text` with each run of id characters that is a remembered id or token
/// replaced by its mapping; and whether any was. A text that is one token
/// whole is left to the field rules of [`GeneratedValues::explains`].
fn rewrite_tokens(text: &str, map: &HashMap<String, Mapping>) -> (String, bool) {
    let is_token_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let mut out = String::with_capacity(text.len());
    let mut used = false;
    let mut rest = text;
    while !rest.is_empty() {
        let token_len = rest.bytes().take_while(|b| is_token_byte(*b)).count();
        if token_len == 0 {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let token = &rest[..token_len];
        match map.get(token) {
            Some(m) if m.kind != Generated::Time && token.len() < text.len() => {
                out.push_str(&m.to);
                used = true;
            }
            _ => out.push_str(token),
        }
        rest = &rest[token_len..];
    }
    (out, used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::DiffKind;

    fn diff(path: &str, recorded: Value, candidate: Value) -> Difference {
        Difference { path: path.into(), kind: DiffKind::Changed, recorded, candidate }
    }

    const S: i64 = 1_000_000_000;
    /// 2026-11-28T16:25:25Z
    const T: i64 = 1_795_883_125 * S;

    fn window(start: i64, end: i64) -> Window {
        Window { start, end }
    }

    #[test]
    fn a_stamp_in_whole_seconds_may_read_up_to_a_second_before_the_request() {
        let recorded = window(T + S / 2, T + S / 2 + 2_000_000); // request at :25.5
        let candidate = window(T + 2 * S, T + 2 * S + 3_000_000);
        let d = diff("/created_at", "2026-11-28T16:25:25Z".into(), "2026-11-28T16:25:27+00:00".into());
        assert!(is_generated_time(&d, recorded, candidate, Duration::ZERO));
        // In milliseconds the same stamp must not read before the request.
        let d = diff("/created_at", "2026-11-28T16:25:25.000Z".into(), "2026-11-28T16:25:27.001+00:00".into());
        assert!(!is_generated_time(&d, recorded, candidate, Duration::ZERO));
    }

    #[test]
    fn a_stamp_off_by_an_hour_or_not_a_time_is_not_generated() {
        let recorded = window(T, T + 5_000_000);
        let candidate = window(T + 2 * S, T + 2 * S + 5_000_000);
        let tolerance = Duration::from_secs(2);
        let hour_off = diff("/created_at", "2026-11-28T16:25:25Z".into(), "2026-11-28T17:25:27Z".into());
        assert!(!is_generated_time(&hour_off, recorded, candidate, tolerance));
        let not_time = diff("/name", "note 0".into(), "note 1".into());
        assert!(!is_generated_time(&not_time, recorded, candidate, tolerance));
        let epoch = diff("/created", Value::from(T / S), Value::from(T / S + 2));
        assert!(is_generated_time(&epoch, recorded, candidate, tolerance));
        let epoch_ms = diff("/created", Value::from(T / 1_000_000), Value::from(T / 1_000_000 + 2_001));
        assert!(is_generated_time(&epoch_ms, recorded, candidate, tolerance));
        let small = diff("/n", Value::from(7), Value::from(8));
        assert!(!is_generated_time(&small, recorded, candidate, tolerance));
        let http_date = diff(
            "header:last-modified",
            "Sat, 28 Nov 2026 16:25:25 GMT".into(),
            "Sat, 28 Nov 2026 16:25:27 GMT".into(),
        );
        assert!(is_generated_time(&http_date, recorded, candidate, tolerance));
    }

    #[test]
    fn precision_is_read_from_the_fraction_digits() {
        assert_eq!(precision_of_rfc3339("2026-11-28T16:25:25Z"), S);
        assert_eq!(precision_of_rfc3339("2026-11-28T16:25:25.123Z"), 1_000_000);
        assert_eq!(precision_of_rfc3339("2026-11-28T16:25:25.123456789+00:00"), 1);
        assert_eq!(precision_of_rfc3339("2026-11-28T16:25:25+02:00"), S);
    }

    #[test]
    fn mapped_times_compare_by_instant_and_ids_inside_strings_map() {
        let values = GeneratedValues::default();
        let created = diff("/created_at", "2026-11-28T16:25:25Z".into(), "2026-11-28T16:25:27+00:00".into());
        values.learn(&created, Generated::Time).unwrap();
        values.learn(&diff("/id", Value::from(500001), Value::from(100001)), Generated::Id).unwrap();
        let later = diff("/created_at", "2026-11-28T18:25:25+02:00".into(), "2026-11-28T16:25:27.000Z".into());
        assert_eq!(values.explains(&later, &[]), Some(Generated::Time));
        let wrong = diff("/created_at", "2026-11-28T16:25:25Z".into(), "2026-11-28T16:25:28Z".into());
        assert_eq!(values.explains(&wrong, &[]), None);
        let location = diff("header:location", "/api/comments/500001".into(), "/api/comments/100001".into());
        assert_eq!(values.explains(&location, &[]), Some(Generated::Id));
        let elsewhere = diff("header:location", "/api/comments/500001".into(), "/api/other/100001".into());
        assert_eq!(values.explains(&elsewhere, &[]), None);
        let longer = diff("/ref", "5000011".into(), "1000011".into());
        assert_eq!(values.explains(&longer, &[]), None, "a token is mapped whole, never a part of one");
        let parent = diff("/comments/0/post_id", Value::from(500001), Value::from(100001));
        assert_eq!(values.explains(&parent, &[]), Some(Generated::Id));
    }

    #[test]
    fn a_small_id_mapping_never_explains_a_count() {
        let values = GeneratedValues::default();
        values.learn(&diff("/id", Value::from(1), Value::from(2)), Generated::Id).unwrap();
        assert_eq!(values.explains(&diff("/count", Value::from(1), Value::from(2)), &[]), None);
        assert_eq!(values.explains(&diff("/count", "1".into(), "2".into()), &[]), None);
        assert_eq!(values.explains(&diff("/items/0/id", Value::from(1), Value::from(2)), &[]), Some(Generated::Id));
        assert_eq!(
            values.explains(&diff("/count", Value::from(1), Value::from(2)), &["/count".into()]),
            Some(Generated::Id)
        );
    }

    #[test]
    fn uri_path_segments_are_rewritten_not_query_values() {
        let values = GeneratedValues::default();
        values.insert_id("500001".into(), "100001".into());
        assert_eq!(values.rewrite_uri("/comments/500001?x=500001").0, "/comments/100001?x=500001");
        assert_eq!(values.rewrite_uri("/comments/5000011").0, "/comments/5000011");
    }

    #[test]
    fn id_and_token_fields_by_name_and_config() {
        assert!(looks_like_id_field("/comment/id", &[]));
        assert!(looks_like_id_field("/post_id", &[]));
        assert!(!looks_like_id_field("/name", &[]));
        assert!(looks_like_id_field("/items/3/ref", &["/items/*/ref".into()]));
        assert!(looks_like_token_field("header:etag", &[]));
        assert!(looks_like_token_field("/session_token", &[]));
        assert!(!looks_like_token_field("/body", &[]));
        assert!(looks_like_token_field("/secret", &["/secret".into()]));
    }

    #[test]
    fn beyond_the_bound_the_oldest_ids_are_forgotten_counted_and_new_ones_still_learned() {
        let values = GeneratedValues::bounded(16);
        for i in 0..40 {
            values.insert_id(format!("r{i}"), format!("c{i}"));
        }
        let held = values.map.lock().unwrap().values.len();
        assert!(held <= 16, "{held}");
        assert_eq!(values.evicted(), 40 - held as u64, "every value not held was evicted, and counted");
        let explains = |i: u32| values.explains(&diff("/id", format!("r{i}").into(), format!("c{i}").into()), &[]);
        assert_eq!(explains(39), Some(Generated::Id), "the newest is still learned");
        assert_eq!(explains(0), None, "the oldest went first");
    }
}
