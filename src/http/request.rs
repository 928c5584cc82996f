//! The client's side of a connection: request bytes in, pending requests
//! (with their start times, for the shard's watermark) out, waiting for the
//! response that answers them; framing a server must refuse stops request
//! parsing there.

use super::framing::{BodyOutcome, State, read_body, skip_body, take_head, trim_leading_newlines};
use super::head::{self, Framing};
use super::{Conn, Ctx, Mode, PendingRequest};
use crate::exchange::{Nanos, Payload, Request};
use crate::reassembly::Dir;

impl Conn {
    pub(super) fn feed_request(&mut self, ctx: &mut Ctx, mut data: &[u8], ts: Nanos) {
        while !data.is_empty() && matches!(self.mode, Mode::Sniffing | Mode::Http) {
            let used = match self.req.state {
                State::Idle => self.request_start(ctx, data, ts),
                State::Head => self.request_head(ctx, data),
                State::Resync => self.resync(ctx, true, data, ts),
                State::Discard => data.len(),
                _ => self.request_body(ctx, data),
            };
            data = &data[used..];
        }
        if self.mode == Mode::Http2 && !data.is_empty() {
            self.h2_data(ctx, self.client_dir(), data, ts);
        }
    }

    pub(super) fn client_dir(&self) -> Dir {
        self.client.unwrap_or(0)
    }

    /// Skips blank lines between messages, then a request begins here.
    fn request_start(&mut self, ctx: &mut Ctx, data: &[u8], ts: Nanos) -> usize {
        let skipped = data.len() - trim_leading_newlines(data).len();
        if skipped == data.len() {
            return skipped;
        }
        self.req.state = State::Head;
        self.req.msg_ts = ts;
        self.req.buf.clear();
        ctx.pending.add(ts);
        self.req_registered = true;
        skipped
    }

    pub(super) fn request_head(&mut self, ctx: &mut Ctx, data: &[u8]) -> usize {
        let Some((used, head_len)) = take_head(&mut self.req.buf, data, ctx.config.max_head, true) else {
            if self.req.buf.len() > ctx.config.max_head {
                self.request_malformed(ctx);
            }
            return data.len();
        };
        let parsed = head::parse_request(&self.req.buf[..head_len]);
        let ambiguous =
            parsed.as_ref().is_some_and(|p| head::request_framing_is_ambiguous(&self.req.buf[..head_len], &p.headers));
        self.req.buf.clear();
        let Some(parsed) = parsed else {
            self.request_malformed(ctx);
            return used;
        };
        ctx.stats.requests += 1;
        let framing = if ambiguous { Framing::Invalid } else { head::framing_from_headers(&parsed.headers) };
        let request = Request {
            ts: self.req.msg_ts,
            method: parsed.method,
            uri: parsed.uri,
            version: parsed.version,
            payload: Payload { headers: parsed.headers, ..Default::default() },
        };
        let is_connect = request.method.eq_ignore_ascii_case("CONNECT");
        self.reading = Some(PendingRequest { request, gap: false, complete: false });
        match framing {
            Framing::Absent | Framing::None | Framing::UntilClose if is_connect => self.request_done(ctx),
            Framing::Absent | Framing::None => self.request_done(ctx),
            Framing::Length(n) => self.req.state = State::Fixed(n),
            Framing::Chunked => self.req.state = State::ChunkSize,
            // A request cannot be read to close, and a bad length makes the
            // server reject it: the message ends at its head.
            Framing::UntilClose | Framing::Invalid => {
                ctx.stats.malformed += 1;
                self.request_done(ctx);
                self.req.state = State::Discard;
            }
        }
        used
    }

    fn request_body(&mut self, ctx: &mut Ctx, data: &[u8]) -> usize {
        let limit = ctx.config.body_limit;
        let payload = self.reading.as_mut().map(|r| &mut r.request.payload);
        let (used, outcome) = read_body(&mut self.req, payload, data, limit);
        match outcome {
            BodyOutcome::More => {}
            BodyOutcome::Done => self.request_done(ctx),
            BodyOutcome::Malformed => {
                ctx.stats.malformed += 1;
                self.request_done(ctx);
                self.req.state = State::Discard;
            }
        }
        used
    }

    /// The request in `reading` is complete: it waits for its response.
    fn request_done(&mut self, ctx: &mut Ctx) {
        self.req.state = State::Idle;
        self.req_registered = false;
        if let Some(mut pending) = self.reading.take() {
            pending.complete = true;
            let parked = self.parked(pending);
            ctx.park(&mut self.waiting, parked);
        }
    }

    fn request_malformed(&mut self, ctx: &mut Ctx) {
        ctx.stats.malformed += 1;
        self.forget_partial_request(ctx);
        self.req.buf.clear();
        self.req.state = State::Resync;
    }

    pub(super) fn request_gap(&mut self, ctx: &mut Ctx, len: u64) {
        if let Some(reading) = self.reading.as_mut() {
            reading.gap = true;
        }
        let payload = self.reading.as_mut().map(|r| &mut r.request.payload);
        if skip_body(&mut self.req, payload, len) {
            if self.req.state == State::Idle {
                self.request_done(ctx);
            }
            return;
        }
        if self.reading.is_some() {
            self.request_done(ctx);
        } else {
            self.forget_partial_request(ctx);
        }
        self.req.state = State::Resync;
        self.req.buf.clear();
    }

    /// The server answered while the request head was still arriving (a
    /// 431 or 413 to a client still sending): the request as far as its
    /// complete lines go is kept, marked truncated, to pair with that
    /// answer. The server closes after such an answer; the rest of what
    /// the client sends is answered by nobody.
    pub(super) fn request_cut_short_by_answer(&mut self, ctx: &mut Ctx) {
        let head_in_progress = self.req.state == State::Head && self.req_registered;
        if !head_in_progress || self.reading.is_some() || self.waiting.has_waiting() {
            return;
        }
        let Some(last_newline) = memchr::memrchr(b'\n', &self.req.buf) else { return };
        let mut head = self.req.buf[..=last_newline].to_vec();
        head.extend_from_slice(b"\r\n");
        let Some(parsed) = head::parse_request(&head) else { return };
        ctx.stats.requests += 1;
        let request = Request {
            ts: self.req.msg_ts,
            method: parsed.method,
            uri: parsed.uri,
            version: parsed.version,
            payload: Payload { headers: parsed.headers, truncated: true, ..Default::default() },
        };
        self.reading = Some(PendingRequest { request, gap: false, complete: false });
        self.req.buf.clear();
        self.req.state = State::Discard;
    }

    /// A request whose head never completed will not be emitted.
    pub(super) fn forget_partial_request(&mut self, ctx: &mut Ctx) {
        if self.req_registered {
            ctx.pending.remove(self.req.msg_ts);
            self.req_registered = false;
        }
    }

    /// The client stopped sending: a body read to its end is complete.
    pub(super) fn request_eof(&mut self, ctx: &mut Ctx) {
        if self.reading.is_some() {
            self.request_done(ctx);
        } else {
            self.forget_partial_request(ctx);
        }
        self.req.state = State::Resync;
    }
}
