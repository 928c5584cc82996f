//! HTTP exchange building: a connection's two in-order byte streams (from
//! reassembly, with gaps) go in; completed [`Exchange`]s come out into the
//! shard's [`Ctx`], each a request paired with the response that answered it.
//!
//! Framing follows RFC 9112 section 6: Content-Length, chunked (with
//! trailers), read-until-close responses, no body for HEAD, 1xx, 204 and 304,
//! interim 1xx answers (`Expect: 100-continue`) skipped, pipelined requests
//! paired in order, and 101 Switching Protocols or a successful CONNECT end
//! parsing for that connection. A stream joined mid-way, or after a hole,
//! is scanned for the next start line.

pub mod answer;
mod framing;
pub mod head;
mod resync;

use std::collections::{BTreeMap, VecDeque};

use crate::exchange::{Exchange, Nanos, Payload, Request, Response};
use crate::reassembly::{Dir, FlowKey, Handler};
use framing::{BodyOutcome, Side, State, read_body, skip_body, take_head, trim_leading_newlines};
use head::Framing;

/// Bytes of a connection joined mid-stream that are scanned for a start
/// line before it is taken as not HTTP.
const MAX_SCAN_UNKNOWN: u64 = 256 << 10;

#[derive(Clone, Debug)]
pub struct Config {
    /// Body bytes kept per message; the rest is counted, not kept.
    pub body_limit: usize,
    /// Server ports; empty means "any connection that starts like HTTP".
    pub ports: Vec<u16>,
    /// Largest head (start line and headers) accepted.
    pub max_head: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { body_limit: 1 << 20, ports: Vec::new(), max_head: 64 << 10 }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub http_connections: u64,
    pub non_http_connections: u64,
    pub requests: u64,
    pub responses: u64,
    pub exchanges: u64,
    pub unanswered: u64,
    pub orphan_responses: u64,
    pub interim_responses: u64,
    pub malformed: u64,
    pub tunnels: u64,
    pub gap_exchanges: u64,
    /// Bytes passed over while looking for a start line.
    pub resync_bytes: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.http_connections += o.http_connections;
        self.non_http_connections += o.non_http_connections;
        self.requests += o.requests;
        self.responses += o.responses;
        self.exchanges += o.exchanges;
        self.unanswered += o.unanswered;
        self.orphan_responses += o.orphan_responses;
        self.interim_responses += o.interim_responses;
        self.malformed += o.malformed;
        self.tunnels += o.tunnels;
        self.gap_exchanges += o.gap_exchanges;
        self.resync_bytes += o.resync_bytes;
    }
}

/// Start times of requests begun but not yet handed out, so the ordering
/// stage knows no earlier exchange can still come from this shard.
#[derive(Debug, Default)]
pub struct PendingClock {
    starts: BTreeMap<Nanos, u32>,
}

impl PendingClock {
    fn add(&mut self, ts: Nanos) {
        *self.starts.entry(ts).or_default() += 1;
    }

    fn remove(&mut self, ts: Nanos) {
        if let Some(count) = self.starts.get_mut(&ts) {
            *count -= 1;
            if *count == 0 {
                self.starts.remove(&ts);
            }
        }
    }

    pub fn oldest(&self) -> Option<Nanos> {
        self.starts.keys().next().copied()
    }
}

/// What the HTTP stage of one shard shares between its connections.
#[derive(Debug, Default)]
pub struct Ctx {
    pub config: Config,
    pub out: Vec<Exchange>,
    pub pending: PendingClock,
    pub stats: Stats,
}

impl Ctx {
    pub fn new(config: Config) -> Self {
        Ctx { config, ..Default::default() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not yet known to be HTTP.
    Sniffing,
    Http,
    /// Not HTTP, or a tunnel after 101 / CONNECT: bytes are ignored.
    Ignored,
}

/// A request being read or waiting for its response.
#[derive(Debug)]
struct PendingRequest {
    request: Request,
    gap: bool,
    complete: bool,
}

/// The HTTP state of one TCP connection.
#[derive(Debug)]
pub struct Conn {
    key: FlowKey,
    client: Option<Dir>,
    mode: Mode,
    /// Stream start seen (SYN): a wrong first line means "not HTTP", not "lost".
    from_start: bool,
    req: Side,
    resp: Side,
    /// Complete requests waiting for their responses, oldest first.
    waiting: VecDeque<PendingRequest>,
    /// The request being read, once its head parsed.
    reading: Option<PendingRequest>,
    /// True while the request parser's message started (its ts registered).
    req_registered: bool,
    /// The response being read, and whether a gap touched it.
    response: Option<(Response, bool)>,
    /// The response being read is an interim 1xx or has no request.
    response_discard: bool,
    /// Line scanners per direction while the client is unknown.
    scan: [Side; 2],
    /// Bytes scanned without finding a start line while the client is
    /// unknown; past a bound the connection is taken as not HTTP.
    scanned: u64,
}

impl Handler for Conn {
    type Ctx = Ctx;

    fn open(ctx: &mut Ctx, key: FlowKey, client: Option<Dir>) -> Self {
        let by_port = client_by_port(&ctx.config.ports, key);
        let from_start = client.is_some();
        let client = by_port.or(client);
        let initial = if from_start { State::Idle } else { State::Resync };
        Conn {
            key,
            client,
            mode: Mode::Sniffing,
            from_start,
            req: Side::new(initial),
            resp: Side::new(initial),
            waiting: VecDeque::new(),
            reading: None,
            req_registered: false,
            response: None,
            response_discard: false,
            scan: [Side::new(State::Resync), Side::new(State::Resync)],
            scanned: 0,
        }
    }

    fn client_known(&mut self, ctx: &mut Ctx, client: Dir) {
        if self.client.is_none() && client_by_port(&ctx.config.ports, self.key).is_none() {
            self.client = Some(client);
        }
    }

    fn on_data(&mut self, ctx: &mut Ctx, dir: Dir, data: &[u8], ts: Nanos) {
        if self.mode == Mode::Sniffing && !self.sniff(ctx, dir, data) {
            return;
        }
        match (self.mode, self.client) {
            (Mode::Ignored, _) => {}
            (_, None) => self.find_client(ctx, dir, data, ts),
            (_, Some(client)) if client == dir => self.feed_request(ctx, data, ts),
            (_, Some(_)) => self.feed_response(ctx, data, ts),
        }
    }

    fn on_gap(&mut self, ctx: &mut Ctx, dir: Dir, len: u64, _ts: Nanos) {
        if self.mode != Mode::Http {
            return;
        }
        if self.client == Some(dir) {
            self.request_gap(ctx, len);
        } else {
            self.response_gap(ctx, len);
        }
    }

    fn on_fin(&mut self, ctx: &mut Ctx, dir: Dir, ts: Nanos) {
        if self.mode != Mode::Http {
            return;
        }
        if self.client == Some(dir) {
            self.request_eof(ctx);
        } else {
            self.response_eof(ctx, ts);
        }
    }

    fn on_close(&mut self, ctx: &mut Ctx, ts: Nanos) {
        if self.mode == Mode::Http {
            self.response_eof(ctx, ts);
            self.request_eof(ctx);
        }
        self.flush_unanswered(ctx);
        if self.req_registered {
            ctx.pending.remove(self.req.msg_ts);
            self.req_registered = false;
        }
    }

    fn wants_data(&self) -> bool {
        self.mode != Mode::Ignored
    }
}

/// With `--port`, the client is whichever end is not on a server port.
fn client_by_port(ports: &[u16], key: FlowKey) -> Option<Dir> {
    let a_serves = ports.contains(&key.a.port());
    let b_serves = ports.contains(&key.b.port());
    match (a_serves, b_serves) {
        (false, true) => Some(0),
        (true, false) => Some(1),
        _ => None,
    }
}

impl Conn {
    /// Decides whether the connection is HTTP from its first bytes.
    /// Returns true when `data` should be parsed.
    fn sniff(&mut self, ctx: &mut Ctx, dir: Dir, data: &[u8]) -> bool {
        let port_says_http = client_by_port(&ctx.config.ports, self.key).is_some();
        if !self.from_start {
            // Joined mid-stream: both sides scan for start lines; the first
            // one found tells which side is the client.
            if port_says_http || self.client.is_some() {
                self.become_http(ctx);
            }
            return true;
        }
        let Some(client) = self.client else {
            return true;
        };
        let looks_http = if dir == client {
            head::may_start_request(trim_leading_newlines(data))
        } else {
            head::may_start_response(data)
        };
        if looks_http || port_says_http {
            self.become_http(ctx);
            true
        } else {
            self.mode = Mode::Ignored;
            ctx.stats.non_http_connections += 1;
            false
        }
    }

    fn become_http(&mut self, ctx: &mut Ctx) {
        if self.mode == Mode::Sniffing {
            self.mode = Mode::Http;
            ctx.stats.http_connections += 1;
        }
    }

    // ---- requests -------------------------------------------------------

    fn feed_request(&mut self, ctx: &mut Ctx, mut data: &[u8], ts: Nanos) {
        while !data.is_empty() && self.mode != Mode::Ignored {
            let used = match self.req.state {
                State::Idle => self.request_start(ctx, data, ts),
                State::Head => self.request_head(ctx, data),
                State::Resync => self.resync(ctx, true, data, ts),
                State::Discard => data.len(),
                _ => self.request_body(ctx, data),
            };
            data = &data[used..];
        }
    }

    fn client_dir(&self) -> Dir {
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

    fn request_head(&mut self, ctx: &mut Ctx, data: &[u8]) -> usize {
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
            Framing::Absent | Framing::None | Framing::UntilClose if is_connect => self.request_done(),
            Framing::Absent | Framing::None => self.request_done(),
            Framing::Length(n) => self.req.state = State::Fixed(n),
            Framing::Chunked => self.req.state = State::ChunkSize,
            // A request cannot be read to close, and a bad length makes the
            // server reject it: the message ends at its head.
            Framing::UntilClose | Framing::Invalid => {
                ctx.stats.malformed += 1;
                self.request_done();
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
            BodyOutcome::Done => self.request_done(),
            BodyOutcome::Malformed => {
                ctx.stats.malformed += 1;
                self.request_done();
                self.req.state = State::Discard;
            }
        }
        used
    }

    /// The request in `reading` is complete: it waits for its response.
    fn request_done(&mut self) {
        self.req.state = State::Idle;
        self.req_registered = false;
        if let Some(mut pending) = self.reading.take() {
            pending.complete = true;
            self.waiting.push_back(pending);
        }
    }

    fn request_malformed(&mut self, ctx: &mut Ctx) {
        ctx.stats.malformed += 1;
        self.forget_partial_request(ctx);
        self.req.buf.clear();
        self.req.state = State::Resync;
    }

    fn request_gap(&mut self, ctx: &mut Ctx, len: u64) {
        if let Some(reading) = self.reading.as_mut() {
            reading.gap = true;
        }
        let payload = self.reading.as_mut().map(|r| &mut r.request.payload);
        if skip_body(&mut self.req, payload, len) {
            if self.req.state == State::Idle {
                self.request_done();
            }
            return;
        }
        if self.reading.is_some() {
            self.request_done();
        } else {
            self.forget_partial_request(ctx);
        }
        self.req.state = State::Resync;
        self.req.buf.clear();
    }

    /// A request whose head never completed will not be emitted.
    fn forget_partial_request(&mut self, ctx: &mut Ctx) {
        if self.req_registered {
            ctx.pending.remove(self.req.msg_ts);
            self.req_registered = false;
        }
    }

    /// The client stopped sending: a body read to its end is complete.
    fn request_eof(&mut self, ctx: &mut Ctx) {
        if self.reading.is_some() {
            self.request_done();
        } else {
            self.forget_partial_request(ctx);
        }
        self.req.state = State::Resync;
    }

    // ---- responses ------------------------------------------------------

    fn feed_response(&mut self, ctx: &mut Ctx, mut data: &[u8], ts: Nanos) {
        while !data.is_empty() && self.mode != Mode::Ignored {
            let used = match self.resp.state {
                State::Idle => self.response_start(data, ts),
                State::Head => self.response_head(ctx, data),
                State::Resync => self.resync(ctx, false, data, ts),
                State::Discard => data.len(),
                _ => self.response_body(ctx, data),
            };
            data = &data[used..];
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

    fn response_head(&mut self, ctx: &mut Ctx, data: &[u8]) -> usize {
        let Some((used, head_len)) = take_head(&mut self.resp.buf, data, ctx.config.max_head, false) else {
            if self.resp.buf.len() > ctx.config.max_head {
                self.response_malformed(ctx);
            }
            return data.len();
        };
        let parsed = head::parse_response(&self.resp.buf[..head_len]);
        self.resp.buf.clear();
        let Some(parsed) = parsed else {
            self.response_malformed(ctx);
            return used;
        };
        ctx.stats.responses += 1;
        let status = parsed.status;
        let framing = self.response_framing(status, &parsed.headers);
        let interim = (100..200).contains(&status) && status != 101;
        if interim {
            ctx.stats.interim_responses += 1;
        }
        let answered = self.waiting.front().or(self.reading.as_ref()).is_some();
        if !answered && !interim {
            ctx.stats.orphan_responses += 1;
        }
        self.response_discard = interim || !answered;
        let response = Response {
            ts: self.resp.msg_ts,
            status,
            reason: parsed.reason,
            version: parsed.version,
            payload: Payload { headers: parsed.headers, ..Default::default() },
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
            ResponseFraming::Body(Framing::Absent | Framing::UntilClose | Framing::Invalid) => {
                self.resp.state = State::UntilClose
            }
            ResponseFraming::Body(Framing::None) | ResponseFraming::NoBody => self.response_done(ctx),
            ResponseFraming::Tunnel => {
                self.response_done(ctx);
                self.mode = Mode::Ignored;
                ctx.stats.tunnels += 1;
            }
        }
        used
    }

    /// The method of the request this response answers, then RFC 9112
    /// section 6.3 items 1 and 2.
    fn response_framing(&self, status: u16, headers: &[crate::exchange::Header]) -> ResponseFraming {
        let method = self.waiting.front().or(self.reading.as_ref()).map(|p| p.request.method.as_str()).unwrap_or("GET");
        if status == 101 || (method.eq_ignore_ascii_case("CONNECT") && (200..300).contains(&status)) {
            return ResponseFraming::Tunnel;
        }
        if method.eq_ignore_ascii_case("HEAD") || (100..200).contains(&status) || status == 204 || status == 304 {
            return ResponseFraming::NoBody;
        }
        ResponseFraming::Body(head::framing_from_headers(headers))
    }

    fn response_body(&mut self, ctx: &mut Ctx, data: &[u8]) -> usize {
        let limit = ctx.config.body_limit;
        let payload = self.response.as_mut().map(|(r, _)| &mut r.payload);
        let (used, outcome) = read_body(&mut self.resp, payload, data, limit);
        match outcome {
            BodyOutcome::More => {}
            BodyOutcome::Done => self.response_done(ctx),
            BodyOutcome::Malformed => {
                ctx.stats.malformed += 1;
                self.response_done(ctx);
                self.resp.state = State::Resync;
            }
        }
        used
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
        let pending = match self.waiting.pop_front() {
            Some(p) => p,
            None => match self.reading.take() {
                // Answered before the request finished (an early error, or
                // 100-continue refused): the rest of its body is not kept.
                Some(p) => {
                    self.req_registered = false;
                    p
                }
                None => return,
            },
        };
        self.emit(ctx, pending, Some(response), gap);
    }

    fn response_malformed(&mut self, ctx: &mut Ctx) {
        ctx.stats.malformed += 1;
        self.resp.buf.clear();
        self.resp.state = State::Resync;
    }

    fn response_gap(&mut self, ctx: &mut Ctx, len: u64) {
        match self.response.as_mut() {
            Some((_, gap)) => *gap = true,
            None => {
                if let Some(front) = self.waiting.front_mut() {
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
    fn response_eof(&mut self, ctx: &mut Ctx, _ts: Nanos) {
        if self.response.is_some() {
            self.response_done(ctx);
        }
        self.resp.state = State::Resync;
    }

    fn flush_unanswered(&mut self, ctx: &mut Ctx) {
        if let Some(reading) = self.reading.take() {
            self.waiting.push_back(reading);
            self.req_registered = false;
        }
        while let Some(pending) = self.waiting.pop_front() {
            ctx.stats.unanswered += 1;
            self.emit(ctx, pending, None, false);
        }
    }

    fn emit(&mut self, ctx: &mut Ctx, pending: PendingRequest, response: Option<Response>, response_gap: bool) {
        let client = self.client_dir();
        let gap = pending.gap || response_gap;
        ctx.pending.remove(pending.request.ts);
        ctx.stats.exchanges += 1;
        if gap {
            ctx.stats.gap_exchanges += 1;
        }
        ctx.out.push(Exchange {
            client: self.key.endpoint(client),
            server: self.key.endpoint(1 - client),
            request: pending.request,
            response,
            gap,
        });
    }
}

enum ResponseFraming {
    Body(Framing),
    NoBody,
    Tunnel,
}
