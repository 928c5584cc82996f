//! Noise from the capture itself: production answering the same request
//! differently within a window. Recorded answers in, by request; out, the
//! earlier answer to compare with when it changed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::NoiseModel;
use crate::exchange::{Exchange, Nanos};

/// An answer production gave: status, headers, body.
pub type RecordedAnswer = (u16, Vec<(String, String)>, Vec<u8>);

/// Recorded answers by request, for noticing repeats.
#[derive(Default)]
pub(super) struct Recent {
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
}
