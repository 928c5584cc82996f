//! One connection's reassembly: its two byte streams in extended sequence
//! space, the out-of-order segments held beyond a hole, and the decisions
//! about holes (wait, skip on acknowledgement, skip at a bound, flush at
//! close) that end up as calls on the connection's [`Handler`].

use std::collections::BTreeMap;

use super::{Dir, Handler, Limits, Segment, Stats};
use crate::decode::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};
use crate::exchange::Nanos;

/// One direction's byte stream, in extended (64-bit) sequence space.
#[derive(Default)]
pub(super) struct Stream {
    /// Last 32-bit sequence number that moved the stream forward, and its
    /// 64-bit extension; later numbers are extended relative to it.
    pub(super) anchor: Option<(u32, u64)>,
    /// Next byte expected in order.
    pub(super) next: Option<u64>,
    /// Segments beyond a hole, by extended sequence number.
    pub(super) ooo: BTreeMap<u64, (Nanos, Vec<u8>)>,
    pub(super) ooo_bytes: usize,
    /// Sequence number just past the last byte, once a FIN was seen.
    pub(super) fin: Option<u64>,
    pub(super) finished: bool,
    /// Highest byte the peer acknowledged (extended).
    pub(super) acked: Option<u64>,
    /// Sequence number of the SYN that opened this direction.
    pub(super) syn_seq: Option<u32>,
    /// The hole at `next` that the peer acknowledged past, and the capture
    /// time that was first seen. On a mirror port the two directions take
    /// different paths, so an ACK can be captured before the data it
    /// acknowledges: the hole is given up only once the reordering window
    /// has passed since (see [`Flow::give_up_acked_holes`]).
    pub(super) acked_hole: Option<(u64, Nanos)>,
}

impl Stream {
    /// 64-bit position of a 32-bit sequence number; moves the anchor forward.
    pub(super) fn extend(&mut self, seq: u32) -> u64 {
        let ext = self.peek_extend(seq);
        match self.anchor {
            Some((_, anchor_ext)) if ext <= anchor_ext => {}
            _ => self.anchor = Some((seq, ext)),
        }
        ext
    }

    /// 64-bit position of `seq` without moving the anchor. Starts at 2^32 so
    /// that numbers slightly before the first one seen stay positive.
    pub(super) fn peek_extend(&self, seq: u32) -> u64 {
        match self.anchor {
            None => (1u64 << 32) | seq as u64,
            Some((anchor, anchor_ext)) => {
                let delta = seq.wrapping_sub(anchor) as i32 as i64;
                (anchor_ext as i64 + delta).max(0) as u64
            }
        }
    }

    pub(super) fn first_ooo(&self) -> Option<u64> {
        self.ooo.keys().next().copied()
    }
}

pub(super) struct Flow<H> {
    pub(super) streams: [Stream; 2],
    pub(super) handler: H,
    pub(super) last_seen: Nanos,
    pub(super) client_known: bool,
    /// Data seen in some direction (a new SYN then means a new connection).
    pub(super) had_data: bool,
    pub(super) closed: bool,
}

/// Shard-wide memory accounting handed to a flow while it works.
pub(super) struct Budget<'a> {
    pub(super) total: &'a mut usize,
    pub(super) limits: &'a Limits,
    pub(super) stats: &'a mut Stats,
}

impl<H: Handler> Flow<H> {
    /// A SYN on a known 4-tuple starts a new connection unless it is a
    /// retransmission of the SYN that opened this one.
    pub(super) fn is_reused_by(&self, dir: Dir, seq: u32) -> bool {
        self.had_data
            || self.streams.iter().any(|s| s.fin.is_some())
            || self.streams[dir].syn_seq.is_some_and(|first| first != seq)
    }

    /// The 32-bit sequence numbers of both FINs, when each direction ended
    /// with one (an extended number keeps the 32-bit one in its low half).
    pub(super) fn fin_ends(&self) -> Option<[u32; 2]> {
        let [a, b] = &self.streams;
        Some([a.fin? as u32, b.fin? as u32])
    }

    pub(super) fn segment(&mut self, ctx: &mut H::Ctx, dir: Dir, seg: &Segment<'_>, budget: &mut Budget<'_>) {
        if seg.flags & FLAG_SYN != 0 {
            self.note_syn(ctx, dir, seg);
        }
        if seg.flags & FLAG_ACK != 0 {
            self.note_ack(1 - dir, seg.ack);
            if budget.limits.reorder_window_ns == 0 {
                self.give_up_at_ack(ctx, 1 - dir, seg.ts, budget);
            }
        }
        if !seg.payload.is_empty() {
            self.had_data = true;
            if self.handler.wants_data() {
                let start = self.streams[dir].extend(seg.seq) + (seg.flags & FLAG_SYN != 0) as u64;
                self.data(ctx, dir, start, seg.payload, seg.ts, budget);
            }
        }
        if seg.flags & FLAG_FIN != 0 {
            let end = self.streams[dir].extend(seg.seq) + seg.payload.len() as u64 + (seg.flags & FLAG_SYN != 0) as u64;
            self.streams[dir].fin = Some(end);
            if self.streams[dir].next.is_none_or(|next| next >= end) || !self.handler.wants_data() {
                self.end_stream(ctx, dir, seg.ts);
            }
        }
        self.give_up_acked_holes(ctx, seg.ts, budget);
        if seg.flags & FLAG_RST != 0 || self.streams.iter().all(|s| s.finished) {
            self.closed = true;
        }
    }

    /// Gives up, in each direction, a hole the peer acknowledged past at
    /// least the reordering window ago (capture time `now`): the bytes were
    /// received, but not by the capture. Cheap when nothing is held.
    pub(super) fn give_up_acked_holes(&mut self, ctx: &mut H::Ctx, now: Nanos, budget: &mut Budget<'_>) {
        for dir in 0..2 {
            let stream = &mut self.streams[dir];
            let (Some(next), Some(first), Some(acked)) = (stream.next, stream.first_ooo(), stream.acked) else {
                continue;
            };
            if acked <= next {
                continue;
            }
            let since = match stream.acked_hole {
                Some((at, since)) if at == next => since,
                _ => {
                    stream.acked_hole = Some((next, now));
                    now
                }
            };
            if now.saturating_sub(since) < budget.limits.reorder_window_ns {
                continue;
            }
            stream.acked_hole = None;
            self.skip_to(ctx, dir, first.min(acked), now, budget);
            self.drain(ctx, dir, budget);
        }
    }

    /// With no reordering to wait for (a window of 0: a capture synthesised
    /// in order, such as a recording of the eBPF source), bytes of `dir` the
    /// peer acknowledged and the capture never saw are a gap at once:
    /// before the acknowledging segment's own bytes (an answer to a request
    /// whose tail was lost finds the request already marked), and also at
    /// the tail, with nothing held beyond.
    fn give_up_at_ack(&mut self, ctx: &mut H::Ctx, dir: Dir, ts: Nanos, budget: &mut Budget<'_>) {
        if !self.handler.wants_data() {
            return;
        }
        loop {
            let stream = &self.streams[dir];
            let (Some(next), Some(acked)) = (stream.next, stream.acked) else { return };
            // A FIN takes a sequence number but is no byte of the stream.
            let end = stream.fin.map_or(acked, |fin| acked.min(fin));
            let to = stream.first_ooo().map_or(end, |first| first.min(end));
            if to <= next {
                return;
            }
            self.skip_to(ctx, dir, to, ts, budget);
            self.drain(ctx, dir, budget);
        }
    }

    /// A hole acknowledged past is still waiting for its window to pass.
    pub(super) fn has_acked_hole(&self) -> bool {
        self.streams.iter().any(|s| s.acked_hole.is_some() && !s.ooo.is_empty())
    }

    pub(super) fn note_syn(&mut self, ctx: &mut H::Ctx, dir: Dir, seg: &Segment<'_>) {
        let stream = &mut self.streams[dir];
        let isn = stream.extend(seg.seq);
        stream.syn_seq.get_or_insert(seg.seq);
        if stream.next.is_none() {
            stream.next = Some(isn + 1);
        }
        if !self.client_known {
            self.client_known = true;
            let client = if seg.flags & FLAG_ACK == 0 { dir } else { 1 - dir };
            self.handler.client_known(ctx, client);
        }
    }

    /// The peer acknowledged up to `ack` of stream `dir`: bytes before it
    /// that we never saw were received, so a hole waiting there will not
    /// fill once the reordering window has passed (the caller checks).
    pub(super) fn note_ack(&mut self, dir: Dir, ack: u32) {
        let stream = &mut self.streams[dir];
        if stream.anchor.is_none() {
            return;
        }
        let acked = stream.peek_extend(ack);
        stream.acked = Some(stream.acked.map_or(acked, |a| a.max(acked)));
    }

    pub(super) fn data(
        &mut self,
        ctx: &mut H::Ctx,
        dir: Dir,
        start: u64,
        payload: &[u8],
        ts: Nanos,
        budget: &mut Budget<'_>,
    ) {
        let stream = &mut self.streams[dir];
        let next = *stream.next.get_or_insert(start);
        let end = start + payload.len() as u64;
        if end <= next {
            budget.stats.retransmitted += 1;
            return;
        }
        if start > next {
            self.hold(ctx, dir, start, payload, ts, budget);
            return;
        }
        if start < next {
            budget.stats.retransmitted += 1;
        }
        let fresh = &payload[(next - start) as usize..];
        self.deliver(ctx, dir, fresh, ts);
        self.drain(ctx, dir, budget);
    }

    /// Keeps a segment that arrived beyond a hole, within the memory bounds.
    pub(super) fn hold(
        &mut self,
        ctx: &mut H::Ctx,
        dir: Dir,
        start: u64,
        payload: &[u8],
        ts: Nanos,
        budget: &mut Budget<'_>,
    ) {
        budget.stats.out_of_order += 1;
        if self.streams[dir].ooo_bytes + payload.len() > budget.limits.per_flow_ooo_bytes {
            // Waiting longer for this hole would cost more than the flow may
            // hold: give it up and go on from the first held segment.
            budget.stats.bound_gaps += 1;
            if let Some(first) = self.streams[dir].first_ooo() {
                self.skip_to(ctx, dir, first.min(start), ts, budget);
                self.drain(ctx, dir, budget);
            } else {
                self.skip_to(ctx, dir, start, ts, budget);
            }
            if self.streams[dir].next.is_some_and(|next| start <= next) {
                return self.data(ctx, dir, start, payload, ts, budget);
            }
        }
        if *budget.total + payload.len() > budget.limits.shard_ooo_bytes {
            budget.stats.bound_dropped_bytes += payload.len() as u64;
            return;
        }
        let stream = &mut self.streams[dir];
        let previous = stream.ooo.get(&start).map_or(0, |(_, d)| d.len());
        if previous >= payload.len() {
            budget.stats.retransmitted += 1;
            return;
        }
        stream.ooo.insert(start, (ts, payload.to_vec()));
        stream.ooo_bytes += payload.len() - previous;
        *budget.total += payload.len() - previous;
    }

    /// Delivers held segments that the stream has now reached.
    pub(super) fn drain(&mut self, ctx: &mut H::Ctx, dir: Dir, budget: &mut Budget<'_>) {
        loop {
            let stream = &mut self.streams[dir];
            let next = stream.next.expect("drain after next is known");
            let Some(entry) = stream.ooo.first_entry() else {
                break;
            };
            if *entry.key() > next {
                break;
            }
            let start = *entry.key();
            let (ts, bytes) = entry.remove();
            stream.ooo_bytes -= bytes.len();
            *budget.total -= bytes.len();
            let end = start + bytes.len() as u64;
            if end <= next {
                budget.stats.retransmitted += 1;
                continue;
            }
            self.deliver(ctx, dir, &bytes[(next - start) as usize..], ts);
        }
    }

    pub(super) fn deliver(&mut self, ctx: &mut H::Ctx, dir: Dir, bytes: &[u8], ts: Nanos) {
        let stream = &mut self.streams[dir];
        stream.next = Some(stream.next.unwrap_or(0) + bytes.len() as u64);
        if self.handler.wants_data() {
            self.handler.on_data(ctx, dir, bytes, ts);
        }
        let stream = &self.streams[dir];
        if !stream.finished && stream.fin.is_some_and(|fin| stream.next.is_some_and(|n| n >= fin)) {
            self.end_stream(ctx, dir, ts);
        }
    }

    /// Gives up the bytes from the stream's position to `to`.
    pub(super) fn skip_to(&mut self, ctx: &mut H::Ctx, dir: Dir, to: u64, ts: Nanos, budget: &mut Budget<'_>) {
        let stream = &mut self.streams[dir];
        let next = stream.next.unwrap_or(to);
        if to <= next {
            return;
        }
        stream.next = Some(to);
        budget.stats.gaps += 1;
        budget.stats.gap_bytes += to - next;
        self.handler.on_gap(ctx, dir, to - next, ts);
        if self.streams[dir].fin.is_some_and(|fin| to >= fin) {
            self.end_stream(ctx, dir, ts);
        }
    }

    pub(super) fn end_stream(&mut self, ctx: &mut H::Ctx, dir: Dir, ts: Nanos) {
        if !self.streams[dir].finished {
            self.streams[dir].finished = true;
            self.handler.on_fin(ctx, dir, ts);
        }
    }

    /// The flow is gone: whatever is held is delivered across its holes,
    /// a missing tail is reported as a gap, then the handler closes.
    pub(super) fn finish(&mut self, ctx: &mut H::Ctx, ts: Nanos, budget: &mut Budget<'_>) {
        for dir in 0..2 {
            while let Some(first) = self.streams[dir].first_ooo() {
                self.skip_to(ctx, dir, first, ts, budget);
                self.drain(ctx, dir, budget);
            }
            let stream = &self.streams[dir];
            let known_end = stream.fin.or(stream.acked);
            if let (Some(next), Some(end)) = (stream.next, known_end)
                && end > next
                && self.handler.wants_data()
            {
                self.skip_to(ctx, dir, end, ts, budget);
            }
        }
        self.handler.on_close(ctx, ts);
    }
}
