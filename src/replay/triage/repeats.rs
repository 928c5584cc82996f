//! Noise from the capture itself: production answering the same request
//! differently within a window. Recorded answers in, by request; out, the
//! earlier answer to compare with when it changed.

use std::collections::{HashMap, VecDeque};
use std::hash::Hasher;

use super::{NoiseConfig, NoiseModel};
use crate::exchange::{Exchange, Nanos, Request};

/// An answer production gave: status, headers, body.
pub type RecordedAnswer = (u16, Vec<(String, String)>, Vec<u8>);

/// Recorded answers by request, for noticing repeats.
#[derive(Default)]
pub(super) struct Recent {
    by_key: HashMap<RequestKey, (Nanos, StoredAnswer)>,
    order: VecDeque<(Nanos, RequestKey)>,
    /// Bytes of the stored answers.
    bytes: usize,
    /// Answers forgotten inside their window because a bound was hit
    /// (not those that aged out of it).
    pub(super) evicted: u64,
}

/// A request as far as repeats are concerned (see [`request_key`]): 128
/// bits of hash, so that two different requests are taken for the same one
/// (and their answers' differences for noise) with a chance of about 2^-100
/// over a window's worth of requests.
type RequestKey = u128;

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
    use std::hash::{BuildHasher, Hasher};
    // Seeded: answers can echo what a client sent, and with an unseeded
    // hash a client could make two different answers look the same.
    let mut h = foldhash::fast::SeedableRandomState::with_seed(0, foldhash::SharedSeed::global_random()).build_hasher();
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

    pub fn to_answer(&self) -> RecordedAnswer {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let (headers, body) = self.parts();
        (self.status, headers.map(|(n, v)| (text(n), text(v))).collect(), body.to_vec())
    }
}

/// Bounds on the answers remembered: requests (each key also queued once
/// per sighting) and their bytes (answers are up to `body_limit` each).
/// Beyond either the oldest go first: a repeat is found within a window,
/// so the oldest answer is the one least likely to be repeated in it.
const MAX_RECENT: usize = 50_000;
const MAX_RECENT_BYTES: usize = 256 << 20;

impl Recent {
    /// Forgets answers that left the window, and the oldest beyond the
    /// bounds (counted), so that `incoming` bytes more fit.
    fn make_room(&mut self, now: Nanos, window_ns: i64, incoming: usize) {
        while let Some(&(ts, old_key)) = self.order.front() {
            let expired = now - ts > window_ns;
            let full = self.order.len() >= MAX_RECENT || self.bytes + incoming > MAX_RECENT_BYTES;
            if !expired && !full {
                break;
            }
            self.order.pop_front();
            if self.by_key.get(&old_key).is_some_and(|(t, _)| *t == ts) {
                if let Some((_, stored)) = self.by_key.remove(&old_key) {
                    self.bytes -= stored.data.len();
                }
                self.evicted += u64::from(!expired);
            }
        }
    }
}

/// Headers that always make another request, even when configured as
/// ignorable: conditionals, ranges, content negotiation, preferences, the
/// user.
const ALWAYS_COUNT: &[&str] = &[
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "if-range",
    "range",
    "accept-encoding",
    "prefer",
    "authorization",
    "cookie",
];

fn ignorable(name: &str, ignored: &[String]) -> bool {
    ignored.iter().any(|i| i.eq_ignore_ascii_case(name)) && !ALWAYS_COUNT.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// The request as far as noise from repeats is concerned: two exchanges
/// are the same request only when method, URI, body and every header agree
/// (names in any case and order), except headers that cannot change an
/// answer. A plain GET and a conditional one (`If-None-Match`), a `Range`,
/// another `Accept-Encoding`, `Prefer`, user or cookie are other requests:
/// production answering them differently is not noise.
fn request_key(r: &Request, ignored: &[String]) -> RequestKey {
    // Headers in any order: each header's hash is added (wrapping), which
    // does not depend on the order and, unlike xor, does not cancel a
    // header sent twice.
    let headers = r
        .payload
        .headers
        .iter()
        .filter(|(name, _)| !ignorable(name, ignored))
        .map(|(name, value)| {
            let mut h = std::hash::DefaultHasher::new();
            write_lowercase(&mut h, name.as_bytes());
            h.write_u8(0);
            h.write(value.trim().as_bytes());
            h.finish()
        })
        .fold(0u64, u64::wrapping_add);
    hash128(|h| {
        h.write(r.method.as_bytes());
        h.write_u8(0);
        h.write(r.uri.as_bytes());
        h.write_u8(0);
        h.write(&r.payload.body);
        h.write_usize(r.payload.body.len());
        h.write_u64(headers);
    })
}

/// `bytes` in ASCII lowercase into the hasher, a stack buffer at a time
/// (a byte at a time costs a hasher call per byte).
fn write_lowercase(h: &mut impl Hasher, bytes: &[u8]) {
    let mut buffer = [0u8; 64];
    for chunk in bytes.chunks(buffer.len()) {
        let lower = &mut buffer[..chunk.len()];
        lower.copy_from_slice(chunk);
        lower.make_ascii_lowercase();
        h.write(lower);
    }
}

/// Two SipHash-1-3 runs with fixed keys, one told apart by a prefix.
fn hash128(feed: impl Fn(&mut std::hash::DefaultHasher)) -> RequestKey {
    let (mut a, mut b) = (std::hash::DefaultHasher::new(), std::hash::DefaultHasher::new());
    b.write_u64(0x9e37_79b9_7f4a_7c15);
    feed(&mut a);
    feed(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

impl NoiseModel {
    /// Production's last answer in the capture to this request, if it is
    /// still remembered (within `[noise] repeat_window_s`).
    pub fn last_answer(&self, request: &Request, config: &NoiseConfig) -> Option<RecordedAnswer> {
        let key = request_key(request, &config.repeat_ignore_headers);
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.by_key.get(&key).map(|(_, stored)| stored.to_answer())
    }

    /// Checks the capture for an earlier answer to the same request within
    /// the window, and remembers this one. The stored copy is replaced
    /// only when the answer changed: repeats of the same answer, the usual
    /// case, cost a comparison and no copy.
    pub fn previous_answer(&self, exchange: &Exchange, config: &NoiseConfig) -> Option<Repeat> {
        let window_ns = config.repeat_window_s as i64 * 1_000_000_000;
        let response = exchange.response.as_ref()?;
        if !exchange.request.method.eq_ignore_ascii_case("GET") || exchange.gap || response.payload.truncated {
            return None;
        }
        let key = request_key(&exchange.request, &config.repeat_ignore_headers);
        let now = exchange.request.ts;
        let (status, headers, body) = (response.status, &response.payload.headers, &response.payload.body);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let incoming = headers.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>() + body.len();
        recent.make_room(now, window_ns, incoming);
        let recent = &mut *recent;
        let repeat = match recent.by_key.get_mut(&key) {
            Some((ts, stored)) => {
                let in_window = now - *ts <= window_ns;
                *ts = now;
                if stored.same_as(status, headers, body) {
                    in_window.then_some(Repeat::Same)
                } else {
                    let fresh = StoredAnswer::of(status, headers, body);
                    recent.bytes = recent.bytes + fresh.data.len() - stored.data.len();
                    let previous = std::mem::replace(stored, fresh);
                    in_window.then_some(Repeat::Changed(previous))
                }
            }
            None => {
                let stored = StoredAnswer::of(status, headers, body);
                recent.bytes += stored.data.len();
                recent.by_key.insert(key, (now, stored));
                None
            }
        };
        recent.order.push_back((now, key));
        repeat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(headers: &[(&str, &str)], body: &str) -> Exchange {
        crate::exchange::test_get("/data/a.json", headers, body.as_bytes())
    }

    fn key(headers: &[(&str, &str)]) -> RequestKey {
        request_key(&get(headers, "").request, &NoiseConfig::default().repeat_ignore_headers)
    }

    const PLAIN: &[(&str, &str)] = &[("Host", "api"), ("Accept", "application/json")];

    #[test]
    fn headers_that_cannot_change_an_answer_and_header_order_do_not_make_another_request() {
        let same = [
            &[("accept", "application/json"), ("HOST", "api")][..],
            &[("Host", "api"), ("User-Agent", "curl/8"), ("Accept", "application/json")],
            &[("Host", "api"), ("Accept", "application/json"), ("traceparent", "00-abc-def-01"), ("X-Request-Id", "7")],
        ];
        for headers in same {
            assert_eq!(key(headers), key(PLAIN), "{headers:?}");
        }
    }

    #[test]
    fn conditionals_ranges_negotiation_users_and_bodies_make_another_request() {
        let with = |extra: (&str, &str)| {
            let mut headers = PLAIN.to_vec();
            headers.push(extra);
            key(&headers)
        };
        for extra in [
            ("If-None-Match", "\"abc\""),
            ("If-Modified-Since", "Sat, 28 Nov 2026 16:25:25 GMT"),
            ("Range", "bytes=0-9"),
            ("Accept-Encoding", "gzip"),
            ("Prefer", "return=minimal"),
            ("Authorization", "Bearer x"),
            ("Cookie", "session=1"),
            ("Accept-Language", "fr"),
        ] {
            assert_ne!(with(extra), key(PLAIN), "{extra:?}");
        }
        let ignored = NoiseConfig::default().repeat_ignore_headers;
        assert_ne!(request_key(&get(PLAIN, "a").request, &ignored), request_key(&get(PLAIN, "b").request, &ignored));
        // Configuring them as ignorable does not make them so.
        let everything: Vec<String> = ["authorization", "if-none-match", "user-agent"].map(String::from).to_vec();
        let auth = [("Host", "api"), ("Authorization", "Bearer x")];
        let key = |headers: &[(&str, &str)]| request_key(&get(headers, "").request, &everything);
        assert_ne!(key(&auth), key(&auth[..1]));
    }

    #[test]
    fn beyond_the_bound_the_oldest_answers_are_forgotten_and_counted() {
        let model = NoiseModel::default();
        let config = NoiseConfig::default();
        for i in 0..MAX_RECENT + 10 {
            let mut exchange = crate::exchange::test_get(&format!("/r/{i}"), &[], b"");
            exchange.response = Some(crate::exchange::Response {
                ts: 1,
                status: 200,
                reason: "OK".into(),
                version: "HTTP/1.1".into(),
                payload: crate::exchange::Payload { body: b"{}".to_vec(), ..Default::default() },
                malformed: None,
            });
            assert!(model.previous_answer(&exchange, &config).is_none());
        }
        let recent = model.recent.lock().unwrap();
        assert_eq!(recent.evicted, 10, "each request beyond the bound pushed out one, inside the window");
        assert!(recent.by_key.len() <= MAX_RECENT, "{}", recent.by_key.len());
        assert_eq!(recent.bytes, recent.by_key.values().map(|(_, s)| s.data.len()).sum::<usize>());
    }
}
