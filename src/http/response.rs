//! The server's side of a connection: response bytes in; each complete
//! response paired with the oldest pending request and emitted as an
//! exchange. Interim 1xx answers are skipped; tunnels end parsing.

use super::framing::{BodyOutcome, State, keep_body, read_body, skip_body, take_head, trim_leading_newlines};
use super::head::{self, Framing, ResponseFraming};
use super::pending::{Front, Parked};
use super::{Conn, Ctx, Mode, PendingRequest, lenient};
use crate::exchange::{Nanos, Payload, Response};

impl Conn {
    pub(super) fn feed_response(&mut self, ctx: &mut Ctx, mut data: &[u8], ts: Nanos) {
        while !data.is_empty() && matches!(self.mode, Mode::Sniffing | Mode::Http) {
            let used = match self.resp.state {
                State::Idle => self.response_start(data, ts),
                State::Head => self.response_head(ctx, data),
                State::Resync => self.resync(ctx, false, data, ts),
                State::Discard => data.len(),
                State::UntilStartLine => self.response_until_start_line(ctx, data, ts),
                _ => self.response_body(ctx, data),
            };
            data = &data[used..];
        }
        if self.mode == Mode::Http2 && !data.is_empty() {
            // After a 101 to h2c, the rest is the server's HTTP/2.
            self.h2_data(ctx, 1 - self.client_dir(), data, ts);
        }
    }

    fn response_start(&mut self, data: &[u8], ts: Nanos) -> usize {
        let skipped = data.len() - trim_leading_newlines(data).len();
        if skipped < data.len() {
            self.resp.state = State::Head;
            self.resp.msg_ts = ts;
            self.resp.buf.clear();
        }
        skipped
    }

    pub(super) fn response_head(&mut self, ctx: &mut Ctx, data: &[u8]) -> usize {
        let Some((used, head_len)) = take_head(&mut self.resp.buf, data, ctx.config.max_head, false) else {
            if self.resp.buf.len() > ctx.config.max_head {
                self.response_malformed(ctx);
            }
            return data.len();
        };
        let parsed = lenient::parse_response(&self.resp.buf[..head_len]);
        self.resp.buf.clear();
        let Some((parsed, mut malformed)) = parsed else {
            self.response_malformed(ctx);
            return used;
        };
        ctx.stats.responses += 1;
        let status = parsed.status;
        let framing = self.response_framing(ctx, status, &parsed.headers);
        let interim = (100..200).contains(&status) && status != 101;
        if interim {
            ctx.stats.interim_responses += 1;
        }
        if !interim {
            self.request_cut_short_by_answer(ctx);
        }
        let answered = self.waiting.has_waiting() || self.reading.is_some();
        if !answered && !interim {
            ctx.stats.orphan_responses += 1;
        }
        self.response_discard = interim || !answered;
        if framing == ResponseFraming::Body(Framing::Invalid) {
            malformed.get_or_insert_with(|| lenient::BAD_CONTENT_LENGTH.to_string());
        }
        if malformed.is_some() {
            ctx.stats.malformed += 1;
        }
        let response = Response {
            ts: self.resp.msg_ts,
            status,
            reason: parsed.reason,
            version: parsed.version,
            payload: Payload { headers: parsed.headers, ..Default::default() },
            malformed,
        };
        let closes =
            head::header_list(&response.payload.headers, "connection").any(|v| v.eq_ignore_ascii_case("close"));
        if closes && !interim && self.reading.is_none() && self.req.state != State::Head {
            // The server closes after this answer: later client bytes are
            // answered by nobody, so they are not parsed as requests.
            self.req.state = State::Discard;
        }
        self.response = Some((response, false));
        match framing {
            ResponseFraming::Body(Framing::Length(n)) => self.resp.state = State::Fixed(n),
            ResponseFraming::Body(Framing::Chunked) => self.resp.state = State::ChunkSize,
            ResponseFraming::Body(Framing::Absent | Framing::UntilClose) => self.resp.state = State::UntilClose,
            // What a bad length would frame is a guess: the body is what
            // comes up to the next answer, or close.
            ResponseFraming::Body(Framing::Invalid) => self.resp.state = State::UntilStartLine,
            ResponseFraming::Body(Framing::None) | ResponseFraming::NoBody => self.response_done(ctx),
            ResponseFraming::Tunnel if super::h2::upgrades_to_h2c(status, &self.response) => self.upgrade_to_h2(ctx),
            ResponseFraming::Tunnel => {
                self.response_done(ctx);
                self.mode = Mode::Ignored;
                ctx.stats.tunnels += 1;
            }
        }
        used
    }

    /// Framing of a response, by the method of the request it answers.
    /// (An answer owed to a request sent out unanswered is framed as one
    /// to a GET: that request's method is no longer known.)
    fn response_framing(&mut self, ctx: &mut Ctx, status: u16, headers: &[crate::exchange::Header]) -> ResponseFraming {
        let front = if self.waiting.has_waiting() { ctx.front_mut(&self.waiting) } else { self.reading.as_mut() };
        let method = front.map(|p| p.request.method.as_str()).unwrap_or("GET");
        let (head, connect) = (method.eq_ignore_ascii_case("HEAD"), method.eq_ignore_ascii_case("CONNECT"));
        head::response_framing(head, connect, status, headers)
    }

    fn response_body(&mut self, ctx: &mut Ctx, data: &[u8]) -> usize {
        let limit = ctx.config.body_limit;
        let payload = self.response.as_mut().map(|(r, _)| &mut r.payload);
        let (used, outcome) = read_body(&mut self.resp, payload, data, limit);
        match outcome {
            BodyOutcome::More => {}
            BodyOutcome::Done => self.response_done(ctx),
            BodyOutcome::Malformed => self.chunked_body_broken(ctx),
        }
        used
    }

    /// A body sent as chunked is not (or stops being) chunked: the answer
    /// is kept, marked, with the rest of its bytes up to the next status
    /// line or close, the offending line included.
    fn chunked_body_broken(&mut self, ctx: &mut Ctx) {
        let line = std::mem::take(&mut self.resp.buf);
        self.resp.state = State::UntilStartLine;
        let Some((response, _)) = self.response.as_mut() else {
            ctx.stats.malformed += 1;
            self.resp.state = State::Resync;
            return;
        };
        if response.malformed.is_none() {
            ctx.stats.malformed += 1;
            let never_chunked = response.payload.body_len == 0;
            let reason = if never_chunked { lenient::NOT_CHUNKED } else { lenient::BAD_CHUNK };
            response.malformed = Some(reason.to_string());
        }
        self.body_line(ctx, line);
    }

    /// Reads a malformed answer's body a line at a time (a line is held
    /// until complete, up to a bound) so that a status line at a line start
    /// ends it and begins the next answer.
    fn response_until_start_line(&mut self, ctx: &mut Ctx, data: &[u8], ts: Nanos) -> usize {
        const MAX_LINE: usize = 4096;
        let newline = memchr::memchr(b'\n', data);
        let used = newline.map_or(data.len(), |i| i + 1);
        if self.resp.buf.is_empty() {
            self.resp.msg_ts = ts;
        }
        self.resp.buf.extend_from_slice(&data[..used]);
        if newline.is_some() || self.resp.buf.len() > MAX_LINE {
            let line = std::mem::take(&mut self.resp.buf);
            self.body_line(ctx, line);
        }
        used
    }

    /// One line of a malformed answer's body, or the next answer's start.
    fn body_line(&mut self, ctx: &mut Ctx, line: Vec<u8>) {
        if line.ends_with(b"\n") && head::is_status_line(head::first_line(&line)) {
            let ts = self.resp.msg_ts;
            self.response_done(ctx);
            self.resp.buf = line;
            self.rejoin_response(ctx, ts);
            return;
        }
        let limit = ctx.config.body_limit;
        keep_body(self.response.as_mut().map(|(r, _)| &mut r.payload), &line, limit);
    }

    /// The response in progress is complete: pair it with its request.
    fn response_done(&mut self, ctx: &mut Ctx) {
        self.resp.state = State::Idle;
        let Some((response, gap)) = self.response.take() else {
            return;
        };
        if std::mem::take(&mut self.response_discard) {
            return;
        }
        let parked = match ctx.take_front(&mut self.waiting) {
            Front::Request(parked) => parked,
            Front::SentOut => {
                // Its request already came out unanswered (a bound): the
                // answer is set aside, never paired with a later request.
                ctx.stats.answers_to_sent_out += 1;
                return;
            }
            Front::Nothing => match self.reading.take() {
                // Answered before the request finished (an early error, or
                // 100-continue refused): the rest of its body is not kept,
                // and the request says so.
                Some(mut p) => {
                    self.req_registered = false;
                    ctx.pending.remove(p.request.ts);
                    p.request.payload.truncated = true;
                    self.parked(p)
                }
                None => return,
            },
        };
        ctx.emit(parked, Some(response), gap);
    }

    fn response_malformed(&mut self, ctx: &mut Ctx) {
        ctx.stats.malformed += 1;
        self.resp.buf.clear();
        self.resp.state = State::Resync;
    }

    pub(super) fn response_gap(&mut self, ctx: &mut Ctx, len: u64) {
        match self.response.as_mut() {
            Some((_, gap)) => *gap = true,
            None => {
                if let Some(front) = ctx.front_mut(&self.waiting) {
                    front.gap = true;
                }
            }
        }
        let payload = self.response.as_mut().map(|(r, _)| &mut r.payload);
        if skip_body(&mut self.resp, payload, len) {
            if self.resp.state == State::Idle {
                self.response_done(ctx);
            }
            return;
        }
        if self.response.is_some() {
            self.response_done(ctx);
        }
        self.resp.state = State::Resync;
        self.resp.buf.clear();
    }

    /// The server stopped sending: a body read to close is now complete; a
    /// response cut short is still paired with what arrived.
    pub(super) fn response_eof(&mut self, ctx: &mut Ctx, _ts: Nanos) {
        if self.resp.state == State::UntilStartLine {
            let rest = std::mem::take(&mut self.resp.buf);
            keep_body(self.response.as_mut().map(|(r, _)| &mut r.payload), &rest, ctx.config.body_limit);
        }
        if self.response.is_some() {
            self.response_done(ctx);
        }
        self.resp.state = State::Resync;
    }

    pub(super) fn flush_unanswered(&mut self, ctx: &mut Ctx) {
        let mut unanswered = ctx.drain(&mut self.waiting);
        if let Some(reading) = self.reading.take() {
            if std::mem::take(&mut self.req_registered) {
                ctx.pending.remove(reading.request.ts);
            }
            unanswered.push(self.parked(reading));
        }
        for parked in unanswered {
            ctx.stats.unanswered += 1;
            ctx.emit(parked, None, false);
        }
    }

    /// A request with what its exchange needs of this connection.
    pub(super) fn parked(&self, pending: PendingRequest) -> Parked {
        let client = self.client_dir();
        Parked::new(pending, self.key.endpoint(client), self.key.endpoint(1 - client))
    }
}
