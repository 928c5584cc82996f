//! Validators (`ETag`, `Last-Modified`) and conditional requests.
//!
//! Two implementations serving the same content give it other validators
//! (nginx's ETag is the file's time and size; another server hashes the
//! content). So where the bodies agree, different validators are
//! explained (`validator`) and the pair remembered per URI. A later
//! conditional request (`If-None-Match`, `If-Modified-Since`, `If-Match`,
//! `If-Unmodified-Since`, `If-Range`) that names a recorded validator is
//! sent with the candidate's own, so a recorded 304 meets the candidate's
//! 304. When no mapping is known, a read is sent as recorded (the
//! candidate's validators may well be production's: content hashes); if
//! production answered 304 and the candidate the whole answer, without the
//! validator the request named, the candidate's answer is compared with
//! the last full answer production gave to the same request
//! (`not_modified`), or, with none in the capture, the exchange is skipped
//! with the reason. A write whose precondition names a validator the
//! candidate never gave is skipped: it would fail (412) or, sent without
//! it, write unconditionally.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::diff::Difference;
use crate::exchange::{Exchange, Request};

/// Headers whose values are validators a client got from an answer.
const CONDITIONALS: [&str; 5] = ["if-none-match", "if-match", "if-modified-since", "if-unmodified-since", "if-range"];

/// The answer headers that are validators.
pub fn is_validator_header(path: &str) -> bool {
    matches!(path, "header:etag" | "header:last-modified")
}

/// Recorded validator → the candidate's, per URI.
/// A pair's key, of bounded size whatever the URI's length.
fn pair_key(uri: &str, recorded: &str) -> (String, String) {
    let capped = |s: &str| crate::bounded::capped_key(s).into_owned();
    (capped(uri), capped(recorded.trim()))
}

pub struct Validators {
    map: Mutex<Pairs>,
}

impl Default for Validators {
    fn default() -> Self {
        Validators::bounded(super::super::config::ReplayConfig::default().max_mapped_values)
    }
}

/// Remembered pairs (URI and recorded validator → the candidate's, and
/// when learned), bounded: beyond `max` the oldest learned go
/// (counted); a validator is sent back by clients soon after they got it.
struct Pairs {
    pairs: HashMap<(String, String), (String, u64)>,
    max: usize,
    next: u64,
    evicted: u64,
}

/// How a recorded request is sent to the candidate.
pub enum Plan {
    /// Not conditional, or nothing known to map: as recorded.
    AsRecorded,
    /// Its conditions name validators mapped to the candidate's own.
    Mapped(Box<Exchange>),
    /// Not replayed, and why.
    Skip(String),
}

/// What a conditional request's answer is compared with.
pub enum Compare {
    /// The recorded answer, as always.
    Recorded,
    /// Production's earlier full answer: it answered 304, the candidate
    /// the whole answer (its validators are other ones).
    FullAnswer(Box<Exchange>),
    /// Production answered 304, the candidate in full, and the capture has
    /// no full answer to compare with.
    Nothing(String),
}

impl Validators {
    /// Remembers at most `max` pairs (`[replay] max_mapped_values`).
    pub fn bounded(max: usize) -> Validators {
        Validators { map: Mutex::new(Pairs { pairs: HashMap::new(), max, next: 0, evicted: 0 }) }
    }

    /// Pairs forgotten to stay within the bound.
    pub fn evicted(&self) -> u64 {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).evicted
    }

    /// Remembers that where production said `recorded` for `uri`, the
    /// candidate says `candidate`.
    pub fn learn(&self, uri: &str, recorded: &str, candidate: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let key = pair_key(uri, recorded);
        if !map.pairs.contains_key(&key) {
            let gone = crate::bounded::victims(map.pairs.iter(), map.pairs.len(), map.max, |_, (_, seq)| *seq);
            for old in &gone {
                map.pairs.remove(old);
            }
            map.evicted += gone.len() as u64;
        }
        map.next += 1;
        let seq = map.next;
        map.pairs.insert(key, (candidate.trim().to_string(), seq));
    }

    fn get(&self, uri: &str, recorded: &str) -> Option<String> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.pairs.get(&pair_key(uri, recorded)).map(|(to, _)| to.clone())
    }

    /// Is this validator difference the pair already remembered for `uri`?
    pub fn explains(&self, uri: &str, d: &Difference) -> bool {
        match (d.recorded.as_str(), d.candidate.as_str()) {
            (Some(r), Some(c)) => self.get(uri, r).is_some_and(|mapped| mapped == c.trim()),
            _ => false,
        }
    }

    /// How to send this exchange's request.
    pub fn plan(&self, exchange: &Exchange) -> Plan {
        let request = &exchange.request;
        if !is_conditional_request(request) {
            return Plan::AsRecorded;
        }
        let mut mapped = request.clone();
        let mut all_known = true;
        let mut changed = false;
        for (name, value) in mapped.payload.headers.iter_mut().filter(|(n, _)| is_conditional(n)) {
            match self.map_value(&request.uri, name, value) {
                Some(v) if v == *value => {}
                Some(v) => {
                    *value = v;
                    changed = true;
                }
                None => all_known = false,
            }
        }
        if all_known && changed {
            return Plan::Mapped(Box::new(Exchange { request: mapped, ..exchange.clone() }));
        }
        if !all_known && !crate::semantics::is_safe(&request.method) {
            return Plan::Skip("precondition names a validator the candidate never gave".into());
        }
        Plan::AsRecorded
    }

    /// What the candidate's answer to `sent` is compared with. `full_answer`
    /// gives production's last answer to the request without conditions.
    pub fn compare_with(
        sent: &Exchange,
        candidate_status: u16,
        candidate_headers: &[(String, String)],
        full_answer: impl FnOnce(&Request) -> Option<Exchange>,
    ) -> Compare {
        let request = &sent.request;
        let recorded_status = sent.response.as_ref().map_or(0, |r| r.status);
        if recorded_status != 304 || !(200..300).contains(&candidate_status) || !is_conditional_request(request) {
            return Compare::Recorded;
        }
        // The candidate sent the whole answer with the very validator the
        // request named: it ignored the condition, a real difference.
        let etag = crate::semantics::first_header(candidate_headers, "etag").map(str::trim);
        let named = request.payload.header("if-none-match").and_then(entity_tags).unwrap_or_default();
        if etag.is_some_and(|etag| named.contains(&etag)) {
            return Compare::Recorded;
        }
        let mut unconditional = request.clone();
        unconditional.payload.headers.retain(|(n, _)| !is_conditional(n));
        match full_answer(&unconditional) {
            Some(earlier) => Compare::FullAnswer(Box::new(Exchange { request: unconditional, ..earlier })),
            None => Compare::Nothing(
                "production answered 304, the candidate in full with its own validator, and the capture \
                 has no earlier full answer to compare with"
                    .into(),
            ),
        }
    }

    /// The value with each validator it names replaced by the candidate's;
    /// `None` when one is not known. `*` needs no mapping.
    fn map_value(&self, uri: &str, name: &str, value: &str) -> Option<String> {
        let value = value.trim();
        if value == "*" {
            return Some(value.to_string());
        }
        let is_tag_list = name.eq_ignore_ascii_case("if-none-match") || name.eq_ignore_ascii_case("if-match");
        let is_tag = is_tag_list || value.starts_with('"') || value.starts_with("W/");
        if !is_tag {
            // A date: If-Modified-Since, If-Unmodified-Since, If-Range.
            return self.get(uri, value);
        }
        let tags = entity_tags(value)?;
        let mapped: Option<Vec<String>> = tags.iter().map(|t| self.get(uri, t)).collect();
        Some(mapped?.join(", "))
    }
}

fn is_conditional_request(request: &Request) -> bool {
    request.payload.headers.iter().any(|(n, _)| is_conditional(n))
}

fn is_conditional(name: &str) -> bool {
    CONDITIONALS.iter().any(|c| c.eq_ignore_ascii_case(name))
}

/// The entity tags of an `If-None-Match`/`If-Match` list (`W/"a", "b,c"`),
/// each as written; `None` if the list does not parse.
fn entity_tags(value: &str) -> Option<Vec<&str>> {
    let mut tags = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        let start = rest;
        let after_weak = rest.strip_prefix("W/").unwrap_or(rest);
        let inner = after_weak.strip_prefix('"')?;
        let close = inner.find('"')?;
        let len = (start.len() - after_weak.len()) + 1 + close + 1;
        tags.push(&start[..len]);
        rest = start[len..].trim_start();
        rest = match rest.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if rest.is_empty() => rest,
            None => return None,
        };
    }
    (!tags.is_empty()).then_some(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Payload, Response};

    fn exchange(headers: &[(&str, &str)], status: u16) -> Exchange {
        let mut e = crate::exchange::test_get("/a.json", headers, b"");
        let (payload, version) = (Payload::default(), "HTTP/1.1".into());
        e.response = Some(Response { ts: 1, status, reason: String::new(), version, payload, malformed: None });
        e
    }

    fn header<'a>(e: &'a Exchange, name: &str) -> Option<&'a str> {
        e.request.payload.header(name)
    }

    #[test]
    fn entity_tag_lists_parse_with_weak_tags_and_commas_inside() {
        assert_eq!(entity_tags(r#""a""#), Some(vec![r#""a""#]));
        assert_eq!(entity_tags(r#"W/"a" , "b,c""#), Some(vec![r#"W/"a""#, r#""b,c""#]));
        assert_eq!(entity_tags("nope"), None);
        assert_eq!(entity_tags(r#""a" "b""#), None);
    }

    #[test]
    fn a_known_validator_is_sent_as_the_candidates_own() {
        let v = Validators::default();
        v.learn("/a.json", r#""r1""#, r#""c1""#);
        v.learn("/a.json", "Sat, 28 Nov 2026 10:00:00 GMT", "Sat, 28 Nov 2026 11:00:00 GMT");
        let e = exchange(&[("If-None-Match", r#""r1""#), ("If-Modified-Since", "Sat, 28 Nov 2026 10:00:00 GMT")], 304);
        let Plan::Mapped(sent) = v.plan(&e) else { panic!("mapped") };
        assert_eq!(header(&sent, "if-none-match"), Some(r#""c1""#));
        assert_eq!(header(&sent, "if-modified-since"), Some("Sat, 28 Nov 2026 11:00:00 GMT"));
        assert_eq!(sent.response, e.response, "compared with what production answered");
        assert!(matches!(v.plan(&exchange(&[("If-None-Match", "*")], 304)), Plan::AsRecorded));
        assert!(matches!(v.plan(&exchange(&[("Accept", "*/*")], 200)), Plan::AsRecorded));
        // Unknown: as recorded (the candidate's validators may be the same).
        assert!(matches!(v.plan(&exchange(&[("If-None-Match", r#""r2""#)], 304)), Plan::AsRecorded));
        // A write's precondition is never sent with a validator the
        // candidate never gave, nor dropped.
        let mut put = exchange(&[("If-Match", r#""r9""#)], 412);
        put.request.method = "PUT".into();
        assert!(matches!(v.plan(&put), Plan::Skip(_)));
    }

    #[test]
    fn a_recorded_304_met_by_a_full_answer_is_compared_with_the_last_full_answer() {
        let e = exchange(&[("If-None-Match", r#""r1""#), ("Accept", "*/*")], 304);
        let etag = |v: &str| vec![("ETag".to_string(), v.to_string())];
        let Compare::Nothing(reason) = Validators::compare_with(&e, 200, &etag(r#""c1""#), |_| None) else {
            panic!("nothing to compare with")
        };
        assert!(reason.contains("no earlier full answer"), "{reason}");
        let full = exchange(&[("Accept", "*/*")], 200);
        let compare = Validators::compare_with(&e, 200, &etag(r#""c1""#), |r| {
            assert!(header_of(r, "if-none-match").is_none(), "the request without conditions");
            Some(full.clone())
        });
        let Compare::FullAnswer(with) = compare else { panic!("compared with the full answer") };
        assert_eq!(with.response.as_ref().unwrap().status, 200);
        // The candidate ignored a validator it had given itself: a real 200 vs 304.
        assert!(matches!(
            Validators::compare_with(&e, 200, &etag(r#""r1""#), |_| Some(full.clone())),
            Compare::Recorded
        ));
        // 304 met by 304, or production's own full answer: as recorded.
        assert!(matches!(Validators::compare_with(&e, 304, &[], |_| None), Compare::Recorded));
        let full_recorded = exchange(&[("If-None-Match", r#""old""#)], 200);
        assert!(matches!(Validators::compare_with(&full_recorded, 200, &[], |_| None), Compare::Recorded));
    }

    fn header_of<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
        r.payload.header(name)
    }

    #[test]
    fn beyond_the_bound_the_oldest_pairs_are_forgotten_counted_and_new_ones_still_learned() {
        let v = Validators::bounded(8);
        for i in 0..20 {
            v.learn(&format!("/v/{i}"), "\"r\"", "\"c\"");
        }
        let held = v.map.lock().unwrap().pairs.len();
        assert!(held <= 8, "{held}");
        assert_eq!(v.evicted(), 20 - held as u64);
        assert_eq!(v.get("/v/19", "\"r\"").as_deref(), Some("\"c\""), "the newest is learned");
        assert_eq!(v.get("/v/0", "\"r\""), None, "the oldest went first");
    }
}
