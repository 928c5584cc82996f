//! Where the HTTP/1 stage hands a connection to [`crate::http2`]: the
//! client preface at a connection's start, a 101 answer to `Upgrade: h2c`
//! (the upgrading request becomes stream 1's), or, in a connection joined
//! late, HTTP/2 frames found in either side's first bytes before any HTTP/1
//! start line. From then on both sides' bytes, gaps and close go there.

use super::framing::State;
use super::pending::Front;
use super::{Conn, Ctx, Mode, PendingClock};
use crate::exchange::{Nanos, Response};
use crate::http2::{self, H2Conn, Out, PREFACE, StartClock};
use crate::reassembly::Dir;

/// Bytes of each side kept while a connection joined late is looked at
/// for HTTP/2 frames: three frames in a row must fit (a server's DATA
/// frames are 16 KiB by default).
const PROBE_WINDOW: usize = 64 << 10;
/// Bytes looked at in all before a connection joined late is taken as not
/// HTTP/2 (as HTTP/1's scan for a start line gives up).
const MAX_PROBED: u64 = super::MAX_SCAN_UNKNOWN;

/// A connection joined late, while it is looked at for HTTP/2 frames.
#[derive(Debug, Default)]
pub(super) struct Probe {
    sides: [Vec<u8>; 2],
    probed: u64,
}

impl StartClock for PendingClock {
    fn started(&mut self, ts: Nanos) {
        self.add(ts);
    }
    fn finished(&mut self, ts: Nanos) {
        self.remove(ts);
    }
}

/// A 101 answer that switches to HTTP/2 over cleartext.
pub(super) fn upgrades_to_h2c(status: u16, response: &Option<(Response, bool)>) -> bool {
    let Some((response, _)) = response else { return false };
    status == 101 && response.payload.header("upgrade").is_some_and(|v| v.trim().eq_ignore_ascii_case("h2c"))
}

/// The first bytes of a side, seen from the connection's start: the
/// client's preface, or a server that speaks first with its SETTINGS
/// (its half of the connection preface).
fn starts_h2(from_client: bool, data: &[u8]) -> bool {
    if from_client {
        return data.starts_with(&PREFACE[..14]);
    }
    data.first_chunk().is_some_and(|head| {
        http2::frames::plausible_head(head) && http2::frames::FrameHead::parse(head).kind == http2::frames::SETTINGS
    })
}

/// Runs `f` on the HTTP/2 state with the shard's output; counts what it emits.
fn with_out(ctx: &mut Ctx, f: impl FnOnce(&mut Out)) {
    let before = ctx.out.len();
    let mut out = Out {
        exchanges: &mut ctx.out,
        stats: &mut ctx.stats.http2,
        clock: &mut ctx.pending,
        body_limit: ctx.config.body_limit,
        max_streams: ctx.config.max_waiting_per_conn,
    };
    f(&mut out);
    let emitted = (ctx.out.len() - before) as u64;
    ctx.stats.exchanges += emitted;
    ctx.stats.gap_exchanges += ctx.out[before..].iter().filter(|e| e.gap).count() as u64;
}

impl Conn {
    /// Whether `data` turned the connection into HTTP/2 (and was read as such).
    pub(super) fn starts_http2(&mut self, ctx: &mut Ctx, dir: Dir, data: &[u8], ts: Nanos) -> bool {
        if self.mode == Mode::Sniffing
            && self.from_start
            && self.client.is_some()
            && starts_h2(self.client == Some(dir), data)
        {
            self.become_http(ctx);
            self.mode = Mode::Http2;
            let (client, server) = self.addresses();
            with_out(ctx, |out| self.h2 = Some(Box::new(H2Conn::from_start(out, client, server))));
            self.h2_data(ctx, dir, data, ts);
            return true;
        }
        self.probe_joined(ctx, dir, data, ts)
    }

    /// Joined late: looks for HTTP/2 frames until HTTP/1 found its way.
    fn probe_joined(&mut self, ctx: &mut Ctx, dir: Dir, data: &[u8], ts: Nanos) -> bool {
        let Some(probe) = self.h2_probe.as_mut() else { return false };
        let h1_found = self.req.state != State::Resync || self.resp.state != State::Resync;
        probe.probed += data.len() as u64;
        if self.client.is_none() || h1_found || probe.probed > MAX_PROBED {
            // The client side must be known (--port) to read HTTP/2
            // joined late; HTTP/1 found, or nothing found, ends the probe.
            self.h2_probe = None;
            return false;
        }
        let side = &mut probe.sides[dir];
        side.extend_from_slice(data);
        if side.len() > PROBE_WINDOW {
            side.drain(..side.len() - PROBE_WINDOW);
        }
        if !http2::frames::looks_like_frames(side) {
            return false;
        }
        let probe = self.h2_probe.take().expect("probing").sides;
        self.leave_http1(ctx);
        self.become_http(ctx);
        self.mode = Mode::Http2;
        let (client, server) = self.addresses();
        with_out(ctx, |out| self.h2 = Some(Box::new(H2Conn::joined(out, client, server))));
        for (side, bytes) in probe.iter().enumerate() {
            self.h2_data(ctx, side, bytes, ts);
        }
        true
    }

    /// Forgets what the HTTP/1 parser holds (the bytes were not HTTP/1).
    fn leave_http1(&mut self, ctx: &mut Ctx) {
        if self.req_registered {
            ctx.pending.remove(self.req.msg_ts);
            self.req_registered = false;
        }
        self.reading = None;
        self.response = None;
    }

    /// A 101 to h2c: the waiting request is stream 1's, answered over HTTP/2.
    pub(super) fn upgrade_to_h2(&mut self, ctx: &mut Ctx) {
        self.resp.state = State::Idle;
        self.response = None;
        self.response_discard = false;
        let request = match ctx.take_front(&mut self.waiting) {
            Front::Request(parked) => Some(parked.pending.request),
            _ => self.reading.take().map(|p| {
                ctx.pending.remove(p.request.ts);
                self.req_registered = false;
                p.request
            }),
        };
        self.mode = Mode::Http2;
        let (client, server) = self.addresses();
        with_out(ctx, |out| {
            let conn = match request {
                Some(request) => H2Conn::upgraded(out, client, server, request),
                None => H2Conn::from_start(out, client, server),
            };
            self.h2 = Some(Box::new(conn));
        });
    }

    pub(super) fn h2_data(&mut self, ctx: &mut Ctx, dir: Dir, data: &[u8], ts: Nanos) {
        let from_client = self.client_dir() == dir;
        if let Some(h2) = self.h2.as_mut() {
            with_out(ctx, |out| h2.on_data(out, from_client, data, ts));
        }
    }

    pub(super) fn h2_gap(&mut self, ctx: &mut Ctx, dir: Dir) {
        let from_client = self.client_dir() == dir;
        if let Some(h2) = self.h2.as_mut() {
            with_out(ctx, |out| h2.on_gap(out, from_client));
        }
    }

    pub(super) fn h2_close(&mut self, ctx: &mut Ctx) {
        if let Some(mut h2) = self.h2.take() {
            with_out(ctx, |out| h2.on_close(out));
        }
    }

    fn addresses(&self) -> (std::net::SocketAddr, std::net::SocketAddr) {
        let client = self.client_dir();
        (self.key.endpoint(client), self.key.endpoint(1 - client))
    }
}

#[cfg(test)]
mod tests;
