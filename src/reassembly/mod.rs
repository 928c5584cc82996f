//! TCP reassembly stage: decoded TCP segments of the connections owned by one
//! shard go in; each connection's two byte streams come out, in order, as
//! calls on that connection's [`Handler`] (data, gaps, FIN, close).
//!
//! One [`Reassembler`] per shard, owned by one thread: a connection lives in
//! exactly one shard (see [`FlowKey::shard`]), so nothing here is shared or
//! locked. Out-of-order segments wait for the hole to fill, retransmissions
//! and overlaps are trimmed, sequence numbers are extended to 64 bits so they
//! wrap freely. A hole that will never fill (the peer acknowledged past it, or
//! a memory bound was reached, or the flow closed) is handed to the handler as
//! a gap. Memory is bounded per flow, per shard and in flow count; every
//! byte a bound throws away is counted.

use std::net::SocketAddr;

mod flow;
mod half_open;
mod hashing;

use flow::{Budget, Flow, Stream};
use half_open::HalfOpen;
pub use hashing::{FlowMap, SeededState};

use crate::decode::{FLAG_ACK, FLAG_SYN};
use crate::exchange::Nanos;

/// Direction of a byte stream within a flow: `0` flows from [`FlowKey::a`]
/// to [`FlowKey::b`], `1` the other way.
pub type Dir = usize;

/// A connection's identity, the same for both directions: the lower
/// endpoint is always `a`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub a: SocketAddr,
    pub b: SocketAddr,
}

impl FlowKey {
    /// The key of the flow carrying a segment from `src` to `dst`, and the
    /// direction of that segment within it.
    pub fn of(src: SocketAddr, dst: SocketAddr) -> (FlowKey, Dir) {
        if src <= dst { (FlowKey { a: src, b: dst }, 0) } else { (FlowKey { a: dst, b: src }, 1) }
    }

    pub fn endpoint(&self, dir: Dir) -> SocketAddr {
        if dir == 0 { self.a } else { self.b }
    }
}

/// The shard (of `shards`) that owns the connection whose
/// [`FlowKey::hash64`] is `hash` (the reader samples by the same hash).
pub fn shard_of_hash(hash: u64, shards: usize) -> usize {
    (hash % shards.max(1) as u64) as usize
}

/// What a connection's byte streams are delivered to (the HTTP stage).
pub trait Handler: Sized {
    type Ctx;
    /// A new connection; `client` is the direction that sent the SYN, when seen.
    fn open(ctx: &mut Self::Ctx, key: FlowKey, client: Option<Dir>) -> Self;
    /// The client side became known after `open` (a SYN seen late).
    fn client_known(&mut self, _ctx: &mut Self::Ctx, _client: Dir) {}
    fn on_data(&mut self, ctx: &mut Self::Ctx, dir: Dir, data: &[u8], ts: Nanos);
    /// `len` bytes of stream `dir` will never be seen (0 when unknown).
    fn on_gap(&mut self, ctx: &mut Self::Ctx, dir: Dir, len: u64, ts: Nanos);
    /// Stream `dir` ended cleanly with a FIN.
    fn on_fin(&mut self, ctx: &mut Self::Ctx, dir: Dir, ts: Nanos);
    /// The connection is gone (both FINs, RST, idle, end of capture).
    fn on_close(&mut self, ctx: &mut Self::Ctx, ts: Nanos);
    /// False once the handler has no use for more bytes (not HTTP, or a
    /// tunnel): the reassembler then stops buffering for this flow.
    fn wants_data(&self) -> bool;
}

/// Default reordering window: mirror ports and TAPs reorder the two
/// directions by well under a millisecond to a few; 50 ms leaves margin
/// while a given-up hole still surfaces quickly.
pub const DEFAULT_REORDER_WINDOW_NS: Nanos = 50_000_000;

#[derive(Clone, Debug)]
pub struct Limits {
    /// Out-of-order bytes one direction may hold before its hole is given up.
    pub per_flow_ooo_bytes: usize,
    /// Out-of-order bytes the whole shard may hold; beyond, segments are dropped.
    pub shard_ooo_bytes: usize,
    /// Connections one shard tracks at once; new ones beyond are not tracked.
    pub max_flows: usize,
    /// A flow with no packet for this long (capture time) is closed.
    pub idle_timeout_ns: Nanos,
    /// How long (capture time) a hole the peer acknowledged past is still
    /// waited for: on a mirror port an ACK can be captured before the data
    /// it acknowledges. 0 gives it up at the first such ACK.
    pub reorder_window_ns: Nanos,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_flow_ooo_bytes: 2 << 20,
            shard_ooo_bytes: 64 << 20,
            max_flows: 500_000,
            idle_timeout_ns: 120 * 1_000_000_000,
            reorder_window_ns: DEFAULT_REORDER_WINDOW_NS,
        }
    }
}

/// Counters of one shard; summed over shards for the summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub segments: u64,
    pub payload_bytes: u64,
    pub connections: u64,
    pub out_of_order: u64,
    pub retransmitted: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Bytes thrown away because a memory bound was reached.
    pub bound_dropped_bytes: u64,
    /// Holes given up early because the per-flow bound was reached.
    pub bound_gaps: u64,
    /// Connections not tracked because the flow table was full: refused,
    /// or half-open (no data yet) and let go for a newer one.
    pub flows_refused: u64,
    pub idle_closed: u64,
    pub active_flows: u64,
    pub ooo_buffered_bytes: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.segments += o.segments;
        self.payload_bytes += o.payload_bytes;
        self.connections += o.connections;
        self.out_of_order += o.out_of_order;
        self.retransmitted += o.retransmitted;
        self.gaps += o.gaps;
        self.gap_bytes += o.gap_bytes;
        self.bound_dropped_bytes += o.bound_dropped_bytes;
        self.bound_gaps += o.bound_gaps;
        self.flows_refused += o.flows_refused;
        self.idle_closed += o.idle_closed;
        self.active_flows += o.active_flows;
        self.ooo_buffered_bytes += o.ooo_buffered_bytes;
    }
}

/// A segment as the reassembler takes it (decoded, payload borrowed).
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub ts: Nanos,
    pub payload: &'a [u8],
}

/// How long the end of a connection closed by a FIN each way is remembered.
/// Longer than a capture reorders or a sender retransmits for; short enough
/// that a busy shard's memory for them stays small.
const CLOSED_LINGER_NS: Nanos = 5_000_000_000;

/// A connection closed by a FIN each way: the 32-bit sequence number of
/// each direction's FIN (just past its last byte), and when it closed.
struct Closed {
    ends: [u32; 2],
    at: Nanos,
}

impl Closed {
    /// The segment carries nothing past the end of its direction: a late
    /// duplicate or retransmission of the closed connection's data.
    fn is_stale(&self, dir: Dir, seg: &Segment<'_>) -> bool {
        let seg_end = seg.seq.wrapping_add(seg.payload.len() as u32);
        self.ends[dir].wrapping_sub(seg_end) as i32 >= 0
    }
}

/// The flow table and reassembly of one shard.
pub struct Reassembler<H: Handler> {
    /// Keyed by what senders choose: a seeded hash (see `hashing`).
    flows: FlowMap<Flow<H>>,
    /// Connections recently closed by FINs, so that a late copy of their
    /// data does not open a new connection (see [`Reassembler::segment`]).
    closed: FlowMap<Closed>,
    /// Flows opened without data, oldest first: what a full table lets go.
    half_open: HalfOpen,
    limits: Limits,
    pub stats: Stats,
    ooo_total: usize,
    last_sweep: Nanos,
    /// Latest capture time seen by this shard.
    pub clock: Nanos,
}

impl<H: Handler> Reassembler<H> {
    pub fn new(limits: Limits) -> Self {
        Reassembler {
            flows: FlowMap::default(),
            closed: FlowMap::default(),
            half_open: HalfOpen::default(),
            limits,
            stats: Stats::default(),
            ooo_total: 0,
            last_sweep: i64::MIN,
            clock: i64::MIN,
        }
    }

    pub fn active_flows(&self) -> usize {
        self.flows.len()
    }

    /// Buffered out-of-order bytes across this shard's flows.
    pub fn buffered_bytes(&self) -> usize {
        self.ooo_total
    }

    /// Takes one segment of a flow owned by this shard.
    pub fn segment(&mut self, ctx: &mut H::Ctx, seg: &Segment<'_>) {
        self.stats.segments += 1;
        self.stats.payload_bytes += seg.payload.len() as u64;
        self.clock = self.clock.max(seg.ts);
        let (key, dir) = FlowKey::of(seg.src, seg.dst);
        let syn_only = seg.flags & (FLAG_SYN | FLAG_ACK) == FLAG_SYN;
        if syn_only && self.flows.get(&key).is_some_and(|f| f.is_reused_by(dir, seg.seq)) {
            self.close(ctx, key, seg.ts);
        }
        if !self.flows.contains_key(&key) {
            // A duplicate or retransmission of a connection's data can reach
            // the capture after both FINs closed it (reordering, a spurious
            // retransmission). Opened as a connection joined mid-stream, it
            // would be parsed again: a request emitted twice, the second time
            // unanswered. Such a copy is dropped; a SYN starts afresh.
            let stale = self.closed.get(&key).is_some_and(|c| c.is_stale(dir, seg));
            if stale && !syn_only {
                self.stats.retransmitted += 1;
                return;
            }
            self.closed.remove(&key);
            if !self.open(ctx, key, dir, seg) {
                return;
            }
        }
        let flow = self.flows.get_mut(&key).expect("flow just ensured");
        flow.last_seen = seg.ts;
        let mut budget = Budget { total: &mut self.ooo_total, limits: &self.limits, stats: &mut self.stats };
        flow.segment(ctx, dir, seg, &mut budget);
        if flow.closed {
            let fin_ends = flow.fin_ends();
            self.close(ctx, key, seg.ts);
            if let Some(ends) = fin_ends.filter(|_| self.closed.len() < self.limits.max_flows) {
                self.closed.insert(key, Closed { ends, at: seg.ts });
            }
        }
    }

    fn open(&mut self, ctx: &mut H::Ctx, key: FlowKey, dir: Dir, seg: &Segment<'_>) -> bool {
        // A bare ACK, FIN or RST (often the tail of a connection already
        // closed) does not open a connection worth tracking.
        if seg.flags & FLAG_SYN == 0 && seg.payload.is_empty() {
            return false;
        }
        if self.flows.len() >= self.limits.max_flows && !self.let_go_oldest_half_open(ctx, seg.ts) {
            self.stats.flows_refused += 1;
            self.stats.bound_dropped_bytes += seg.payload.len() as u64;
            return false;
        }
        let client = match (seg.flags & FLAG_SYN != 0, seg.flags & FLAG_ACK != 0) {
            (true, false) => Some(dir),
            (true, true) => Some(1 - dir),
            _ => None,
        };
        self.stats.connections += 1;
        let handler = H::open(ctx, key, client);
        let flow = Flow {
            streams: [Stream::default(), Stream::default()],
            handler,
            last_seen: seg.ts,
            client_known: client.is_some(),
            had_data: false,
            closed: false,
        };
        self.flows.insert(key, flow);
        if seg.payload.is_empty() {
            let flows = &self.flows;
            self.half_open.opened(key, self.limits.max_flows, |k| flows.get(k).is_some_and(|f| !f.had_data));
        }
        true
    }

    /// A full table makes room by closing its oldest half-open flow (a SYN
    /// flood's, most likely): counted as refused. False when every tracked
    /// flow has carried data.
    fn let_go_oldest_half_open(&mut self, ctx: &mut H::Ctx, ts: Nanos) -> bool {
        let flows = &self.flows;
        let Some(key) = self.half_open.take_oldest(|k| flows.get(k).is_some_and(|f| !f.had_data)) else {
            return false;
        };
        self.stats.flows_refused += 1;
        self.close(ctx, key, ts);
        true
    }

    fn close(&mut self, ctx: &mut H::Ctx, key: FlowKey, ts: Nanos) {
        if let Some(mut flow) = self.flows.remove(&key) {
            let mut budget = Budget { total: &mut self.ooo_total, limits: &self.limits, stats: &mut self.stats };
            flow.finish(ctx, ts, &mut budget);
        }
    }

    /// Closes flows idle for longer than the timeout, at most about once a
    /// second of capture time (a sweep visits every flow).
    pub fn expire_idle(&mut self, ctx: &mut H::Ctx, now: Nanos) {
        if now.saturating_sub(self.last_sweep) < 1_000_000_000 {
            return;
        }
        self.last_sweep = now;
        let linger_deadline = now.saturating_sub(CLOSED_LINGER_NS);
        self.closed.retain(|_, c| c.at >= linger_deadline);
        self.give_up_acked_holes(ctx, now);
        let deadline = now.saturating_sub(self.limits.idle_timeout_ns);
        let idle: Vec<FlowKey> = self.flows.iter().filter(|(_, f)| f.last_seen < deadline).map(|(k, _)| *k).collect();
        for key in idle {
            self.stats.idle_closed += 1;
            self.close(ctx, key, now);
        }
    }

    /// Quiet flows get no segment that would give up a hole once its
    /// reordering window has passed: the sweep does it for them.
    fn give_up_acked_holes(&mut self, ctx: &mut H::Ctx, now: Nanos) {
        let mut budget = Budget { total: &mut self.ooo_total, limits: &self.limits, stats: &mut self.stats };
        for flow in self.flows.values_mut().filter(|f| f.has_acked_hole()) {
            flow.give_up_acked_holes(ctx, now, &mut budget);
        }
    }

    /// End of input: every flow is closed, pending data flushed.
    pub fn close_all(&mut self, ctx: &mut H::Ctx) {
        let keys: Vec<FlowKey> = self.flows.keys().copied().collect();
        let now = self.clock;
        for key in keys {
            self.close(ctx, key, now);
        }
    }

    /// Refreshes the gauges in `stats`.
    pub fn update_gauges(&mut self) {
        self.stats.active_flows = self.flows.len() as u64;
        self.stats.ooo_buffered_bytes = self.ooo_total as u64;
    }
}

#[cfg(test)]
mod tests;
