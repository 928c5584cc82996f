//! The shard's bound on bytes held by messages still arriving: partial
//! heads, bodies not complete yet, and lines scanned for a start line. In:
//! each connection's holding after every call from reassembly. Out: the
//! shard's total, and, past `Config::max_reading_bytes`, the connection
//! that just grew cut where it stands.
//!
//! Why: every connection may hold up to a head (64 KiB) and a body (the
//! body limit) per direction while its message arrives, so a slowloris
//! that sends large heads it never finishes grows memory with the flow
//! table, up to `max_flows` times that (measured, debug build on `lo`:
//! 2,000 connections each sending 60 KB of a head took the daemon from
//! 87 to 307 MB; with a 16 MB bound to 238 MB, most of the rest being
//! capture batches held for shards that fell behind, bounded per shard). A cut connection loses the
//! message it was reading as a capture gap would (a request whose head had
//! arrived is emitted marked as such and judged like any gap; a head still
//! arriving is dropped), its buffers are freed, and it reads on from the
//! next start line; the cut and the bytes dropped are counted.

use super::framing::Side;
use super::{Conn, Ctx, Mode};
use crate::exchange::Nanos;
use crate::reassembly::{Dir, Handler};

/// Capacity an empty buffer keeps for the next message (most heads fit).
const KEPT_FOR_REUSE: usize = 8 << 10;

impl Conn {
    /// Bytes this connection holds for messages still arriving (allocated,
    /// which is what memory pays).
    fn reading_bytes(&self) -> usize {
        let body = |p: &crate::exchange::Payload| p.body.capacity();
        let sides = [&self.req, &self.resp, &self.scan[0], &self.scan[1]];
        sides.iter().map(|s| s.buf.capacity()).sum::<usize>()
            + self.reading.as_ref().map_or(0, |r| body(&r.request.payload))
            + self.response.as_ref().map_or(0, |(r, _)| body(&r.payload))
    }

    /// Brings the shard's total up to date with this connection's holding;
    /// past the shard's bound, a connection that grew is cut (on `dir`,
    /// the direction it grew on).
    pub(super) fn settle_reading(&mut self, ctx: &mut Ctx, dir: Dir, ts: Nanos) {
        // A buffer kept for reuse after a large message is not kept idle.
        self.free_empty_buffers(KEPT_FOR_REUSE);
        let now = self.reading_bytes();
        let grew = now > self.held;
        self.recount(ctx, now);
        if !grew || ctx.reading_bytes <= ctx.config.max_reading_bytes {
            return;
        }
        if self.reading_on(dir) {
            ctx.stats.reading_cut += 1;
            ctx.stats.reading_cut_bytes += now as u64;
            self.cut_reading(ctx, dir, ts);
        }
        self.free_empty_buffers(0);
        let after = self.reading_bytes();
        self.recount(ctx, after);
    }

    fn recount(&mut self, ctx: &mut Ctx, now: usize) {
        ctx.reading_bytes = ctx.reading_bytes - self.held + now;
        self.held = now;
    }

    /// A message is arriving on `dir`: bytes of it are held.
    fn reading_on(&self, dir: Dir) -> bool {
        let side = if self.client == Some(dir) { &self.req } else { &self.resp };
        let message = if self.client == Some(dir) { self.reading.is_some() } else { self.response.is_some() };
        message || !side.buf.is_empty() || !self.scan[dir].buf.is_empty()
    }

    fn free_empty_buffers(&mut self, above: usize) {
        for side in self.sides_mut().filter(|side| side.buf.is_empty() && side.buf.capacity() > above) {
            side.buf = Vec::new();
        }
    }

    /// The connection is gone: what it held is no longer counted.
    pub(super) fn release_reading(&mut self, ctx: &mut Ctx) {
        ctx.reading_bytes -= self.held;
        self.held = 0;
    }

    /// Gives up the message being read on `dir` as lost (a gap), and
    /// frees the buffers left empty. A connection not yet known as HTTP
    /// with a client is given up whole (nothing of it was emitted yet).
    fn cut_reading(&mut self, ctx: &mut Ctx, dir: Dir, ts: Nanos) {
        if self.mode == Mode::Http && self.client.is_some() {
            Handler::on_gap(self, ctx, dir, 0, ts);
        } else {
            self.mode = Mode::Ignored;
            self.forget_partial_request(ctx);
            self.sides_mut().for_each(|side| side.buf.clear());
        }
    }

    fn sides_mut(&mut self) -> impl Iterator<Item = &mut Side> {
        let [a, b] = &mut self.scan;
        [&mut self.req, &mut self.resp, a, b].into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Conn, Ctx};
    use crate::exchange::Nanos;
    use crate::reassembly::{FlowKey, Handler};

    fn conn(ctx: &mut Ctx, port: u16) -> Conn {
        let key = FlowKey { a: "10.0.0.1:80".parse().unwrap(), b: format!("10.0.0.2:{port}").parse().unwrap() };
        Conn::open(ctx, key, Some(1))
    }

    fn ctx(max_reading_bytes: usize) -> Ctx {
        Ctx::new(Config { max_reading_bytes, ..Config::default() })
    }

    /// A slowloris with fat heads: each connection sends 10 KB of a head it
    /// never finishes, in 1 KB pieces.
    fn fat_heads(ctx: &mut Ctx, conns: u16) -> Vec<Conn> {
        let mut all: Vec<Conn> = (0..conns).map(|i| conn(ctx, 2000 + i)).collect();
        for c in &mut all {
            c.on_data(ctx, 1, b"GET /slow HTTP/1.1\r\nX-Fat: ", 1);
        }
        for round in 0..10 {
            for c in &mut all {
                c.on_data(ctx, 1, &[b'a'; 1024], 2 + round as Nanos);
            }
        }
        all
    }

    #[test]
    fn heads_that_never_end_hold_no_more_than_the_bound() {
        let bound = 64 << 10;
        let mut ctx = ctx(bound);
        let mut all = fat_heads(&mut ctx, 100);
        // One connection may overshoot by what it took in one call.
        assert!(ctx.reading_bytes <= bound + (32 << 10), "{} bytes held", ctx.reading_bytes);
        assert!(ctx.stats.reading_cut > 0 && ctx.stats.reading_cut_bytes > 0, "{:?}", ctx.stats);
        let held: usize = all.iter().map(|c| c.held).sum();
        assert_eq!(held, ctx.reading_bytes, "the shard's total is the sum of its connections'");
        for c in &mut all {
            c.on_close(&mut ctx, 20);
        }
        assert_eq!(ctx.reading_bytes, 0);
        assert!(ctx.out.is_empty(), "no request was complete: {:?}", ctx.out);
    }

    #[test]
    fn without_the_bound_the_same_heads_hold_a_megabyte() {
        let mut ctx = ctx(usize::MAX);
        let _all = fat_heads(&mut ctx, 100);
        assert!(ctx.reading_bytes >= 100 * (10 << 10), "{} bytes held", ctx.reading_bytes);
        assert_eq!(ctx.stats.reading_cut, 0);
    }

    #[test]
    fn a_request_that_completes_at_once_is_kept_while_the_bound_is_full() {
        let mut ctx = ctx(64 << 10);
        let _slow = fat_heads(&mut ctx, 100);
        let cut = ctx.stats.reading_cut;
        let mut c = conn(&mut ctx, 9000);
        c.on_data(&mut ctx, 1, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n", 30);
        c.on_data(&mut ctx, 0, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 31);
        c.on_close(&mut ctx, 32);
        assert_eq!(ctx.stats.reading_cut, cut, "nothing held across calls, nothing cut");
        let uris: Vec<&str> = ctx.out.iter().map(|e| e.request.uri.as_str()).collect();
        assert_eq!(uris, ["/ok"]);
        assert_eq!(ctx.out[0].response.as_ref().map(|r| r.status), Some(200));
    }

    #[test]
    fn a_body_cut_short_comes_out_marked_as_a_gap() {
        let mut ctx = ctx(16 << 10);
        let mut c = conn(&mut ctx, 9001);
        c.on_data(&mut ctx, 1, b"POST /up HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", 1);
        for i in 0..10 {
            c.on_data(&mut ctx, 1, &[b'x'; 4096], 2 + i);
        }
        assert!(ctx.stats.reading_cut >= 1, "{:?}", ctx.stats);
        assert!(ctx.reading_bytes <= 16 << 10, "{} bytes held", ctx.reading_bytes);
        c.on_close(&mut ctx, 20);
        assert_eq!(ctx.reading_bytes, 0);
        let up: Vec<_> = ctx.out.iter().filter(|e| e.request.uri == "/up").collect();
        assert_eq!(up.len(), 1, "{:?}", ctx.out);
        assert!(up[0].gap || up[0].request.payload.truncated, "marked: {:?}", up[0]);
    }
}
