//! Requests waiting for their answers, for every connection of one shard.
//! In: requests as their heads begin (start times, for the watermark) and
//! as their messages end (parked until answered). Out: the oldest request
//! of a connection when an answer arrives, or, past a bound, the oldest
//! requests as unanswered exchanges, so that a capture that sees only
//! requests (a mirror port with one leg) holds a bounded number of them and
//! none holds the ordering stage's watermark for ever.
//!
//! Bounds: requests per connection, and bytes of waiting requests in the
//! shard (what the ordering stage counts of an exchange). Past the first,
//! the connection's oldest comes out; past the second, the shard's oldest,
//! whichever connection it is on. HTTP/1.1 answers come in request order,
//! so an answer that arrives later for a request sent out unanswered is
//! owed to it: it is set aside (counted), never paired with a later one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;

use super::{Ctx, PendingRequest, Stats};
use crate::exchange::{Exchange, Nanos, Response};
use crate::reassembly::SeededState;

/// One connection's place in the waiting requests: its requests are
/// numbered `front..next` (those sent out unanswered by the shard bound
/// are missing from the table); `owed` answers are due to requests before
/// `front` that were sent out unanswered.
#[derive(Debug)]
pub(super) struct Queue {
    conn: u64,
    front: u64,
    next: u64,
    owed: u64,
}

/// A request parked until its answer, with what its exchange needs.
#[derive(Debug)]
pub(super) struct Parked {
    pub(super) pending: PendingRequest,
    pub(super) client: SocketAddr,
    pub(super) server: SocketAddr,
    bytes: usize,
}

impl Parked {
    pub(super) fn new(pending: PendingRequest, client: SocketAddr, server: SocketAddr) -> Parked {
        let r = &pending.request;
        let headers: usize = r.payload.headers.iter().map(|(n, v)| n.len() + v.len() + 16).sum();
        let bytes = 256 + r.uri.len() + headers + r.payload.body.len();
        Parked { pending, client, server, bytes }
    }
}

/// What answers the connection's next answer.
#[allow(clippy::large_enum_variant)] // returned once and moved on, never stored
pub(super) enum Front {
    /// A waiting request.
    Request(Parked),
    /// A request already sent out unanswered by a bound.
    SentOut,
    /// Nothing waits.
    Nothing,
}

/// The shard's waiting requests and the start times of requests begun.
#[derive(Debug, Default)]
pub struct PendingClock {
    /// Start times of request heads being read (one per connection at most).
    starts: BTreeMap<Nanos, u32>,
    /// Parked requests by (connection, number).
    parked: HashMap<(u64, u64), Parked, SeededState>,
    /// The same, oldest first: (start time, connection, number).
    by_age: BTreeSet<(Nanos, u64, u64)>,
    parked_bytes: usize,
    connections: u64,
}

impl PendingClock {
    pub(crate) fn add(&mut self, ts: Nanos) {
        *self.starts.entry(ts).or_default() += 1;
    }

    pub(crate) fn remove(&mut self, ts: Nanos) {
        if let Some(count) = self.starts.get_mut(&ts) {
            *count -= 1;
            if *count == 0 {
                self.starts.remove(&ts);
            }
        }
    }

    /// The start of the oldest request not yet handed out.
    pub fn oldest(&self) -> Option<Nanos> {
        let parked = self.by_age.first().map(|(ts, _, _)| *ts);
        let reading = self.starts.keys().next().copied();
        parked.into_iter().chain(reading).min()
    }

    /// Requests parked now (all connections of the shard).
    pub fn parked(&self) -> usize {
        self.parked.len()
    }

    pub(super) fn queue(&mut self) -> Queue {
        self.connections += 1;
        Queue { conn: self.connections, front: 0, next: 0, owed: 0 }
    }

    fn unpark(&mut self, conn: u64, n: u64) -> Option<Parked> {
        let parked = self.parked.remove(&(conn, n))?;
        self.by_age.remove(&(parked.pending.request.ts, conn, n));
        self.parked_bytes -= parked.bytes;
        Some(parked)
    }
}

impl Queue {
    /// A request waits for an answer (or an answer is owed to one).
    pub(super) fn has_waiting(&self) -> bool {
        self.owed > 0 || self.front < self.next
    }
}

impl Ctx {
    /// Parks a complete request until its answer; past a bound, the oldest
    /// come out unanswered.
    pub(super) fn park(&mut self, queue: &mut Queue, parked: Parked) {
        let n = queue.next;
        queue.next += 1;
        self.pending.remove(parked.pending.request.ts);
        self.pending.by_age.insert((parked.pending.request.ts, queue.conn, n));
        self.pending.parked_bytes += parked.bytes;
        self.pending.parked.insert((queue.conn, n), parked);
        while queue.next - queue.front > self.config.max_waiting_per_conn.max(1) as u64 {
            queue.front += 1;
            queue.owed += 1;
            if let Some(oldest) = self.pending.unpark(queue.conn, queue.front - 1) {
                self.send_out_unanswered(oldest);
            }
        }
        while self.pending.parked_bytes > self.config.max_waiting_bytes && !self.pending.by_age.is_empty() {
            let (_, conn, n) = self.pending.by_age.first().copied().expect("not empty");
            if let Some(oldest) = self.pending.unpark(conn, n) {
                self.send_out_unanswered(oldest);
            }
        }
        self.stats.peak_waiting = self.stats.peak_waiting.max(self.pending.parked.len() as u64);
    }

    fn send_out_unanswered(&mut self, parked: Parked) {
        self.stats.unanswered += 1;
        self.stats.sent_out_unanswered += 1;
        self.emit(parked, None, false);
    }

    /// What the connection's next answer answers; taken off the queue.
    pub(super) fn take_front(&mut self, queue: &mut Queue) -> Front {
        if queue.owed > 0 {
            queue.owed -= 1;
            return Front::SentOut;
        }
        if queue.front == queue.next {
            return Front::Nothing;
        }
        queue.front += 1;
        match self.pending.unpark(queue.conn, queue.front - 1) {
            Some(parked) => Front::Request(parked),
            None => Front::SentOut,
        }
    }

    /// The request the next answer answers, if it still waits.
    pub(super) fn front_mut(&mut self, queue: &Queue) -> Option<&mut PendingRequest> {
        if queue.owed > 0 || queue.front == queue.next {
            return None;
        }
        self.pending.parked.get_mut(&(queue.conn, queue.front)).map(|p| &mut p.pending)
    }

    /// The connection is gone: its waiting requests, oldest first.
    pub(super) fn drain(&mut self, queue: &mut Queue) -> Vec<Parked> {
        let drained = (queue.front..queue.next).filter_map(|n| self.pending.unpark(queue.conn, n)).collect();
        queue.front = queue.next;
        queue.owed = 0;
        drained
    }

    /// Hands an exchange out to the shard's output.
    pub(super) fn emit(&mut self, parked: Parked, response: Option<Response>, response_gap: bool) {
        let gap = parked.pending.gap || response_gap;
        self.stats.exchanges += 1;
        if gap {
            self.stats.gap_exchanges += 1;
        }
        self.out.push(Exchange {
            client: parked.client,
            server: parked.server,
            request: parked.pending.request,
            response,
            gap,
            http2: None,
        });
    }
}

impl Stats {
    /// Adds the counters of this stage's bounds on waiting requests.
    pub(super) fn add_waiting(&mut self, o: &Stats) {
        self.sent_out_unanswered += o.sent_out_unanswered;
        self.answers_to_sent_out += o.answers_to_sent_out;
        self.peak_waiting += o.peak_waiting;
    }
}

#[cfg(test)]
mod tests;
