//! HTTP exchange building: a connection's two in-order byte streams (from
//! reassembly, with gaps) go in; completed [`Exchange`]s come out into the
//! shard's [`Ctx`], each a request paired with the response that answered it.
//!
//! Framing follows RFC 9112 section 6: Content-Length, chunked (with
//! trailers), read-until-close responses, no body for HEAD, 1xx, 204 and 304,
//! interim 1xx answers (`Expect: 100-continue`) skipped, pipelined requests
//! paired in order, and 101 Switching Protocols or a successful CONNECT end
//! parsing for that connection. A stream joined mid-way, or after a hole,
//! is scanned for the next start line. HTTP/2 (the client preface, an h2c
//! Upgrade, or frames found in a connection joined late) is handed to
//! [`crate::http2`] (see `h2.rs`).

pub mod answer;
mod framing;
mod h2;
pub mod head;
mod lenient;
mod pending;
mod reading;
mod request;
mod response;
mod resync;

pub use pending::PendingClock;

use crate::exchange::{Exchange, Nanos, Request, Response};
use crate::reassembly::{Dir, FlowKey, Handler};
use framing::{Side, State, trim_leading_newlines};

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
    /// Requests of one connection waiting for their answers; past it the
    /// oldest comes out unanswered.
    pub max_waiting_per_conn: usize,
    /// Bytes of requests waiting for their answers in the shard; past it
    /// the shard's oldest comes out unanswered.
    pub max_waiting_bytes: usize,
    /// Bytes the shard's messages still arriving may hold (partial heads
    /// and bodies); past it the connection that grew is cut (`reading`).
    pub max_reading_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            body_limit: 1 << 20,
            ports: Vec::new(),
            max_head: 64 << 10,
            max_waiting_per_conn: DEFAULT_MAX_WAITING_PER_CONN,
            max_waiting_bytes: DEFAULT_MAX_WAITING_MB << 20,
            max_reading_bytes: DEFAULT_MAX_READING_MB << 20,
        }
    }
}

/// Requests one connection may have waiting for answers: clients pipeline
/// a few; thousands come from a capture that misses the answers.
pub const DEFAULT_MAX_WAITING_PER_CONN: usize = 1000;
/// Megabytes of requests waiting for answers, in all.
pub const DEFAULT_MAX_WAITING_MB: usize = 64;
/// Megabytes of messages still arriving, in all.
pub const DEFAULT_MAX_READING_MB: usize = 128;

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
    /// Of `unanswered`: sent out early by a bound on waiting requests.
    pub sent_out_unanswered: u64,
    /// Answers that came after their request was sent out unanswered
    /// (set aside, not paired).
    pub answers_to_sent_out: u64,
    /// Most requests waiting at once in a shard (summed over shards).
    pub peak_waiting: u64,
    pub http2: crate::http2::Stats,
    /// Messages cut short by the bound on bytes of messages still
    /// arriving, and the bytes they held.
    pub reading_cut: u64,
    pub reading_cut_bytes: u64,
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
        self.http2.add(&o.http2);
        self.reading_cut += o.reading_cut;
        self.reading_cut_bytes += o.reading_cut_bytes;
        self.add_waiting(o);
    }
}

/// What the HTTP stage of one shard shares between its connections.
#[derive(Debug, Default)]
pub struct Ctx {
    pub config: Config,
    pub out: Vec<Exchange>,
    pub pending: PendingClock,
    pub stats: Stats,
    /// Bytes held by this shard's messages still arriving (`reading`).
    pub reading_bytes: usize,
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
    /// HTTP/2: bytes go to `Conn::h2`.
    Http2,
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
    /// Complete requests waiting for their responses (parked in the
    /// shard's [`PendingClock`], which bounds them).
    waiting: pending::Queue,
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
    /// The HTTP/2 state once the connection is known to speak it.
    h2: Option<Box<crate::http2::H2Conn>>,
    /// Joined late: each side's first bytes, looked at for HTTP/2 frames
    /// until either protocol is found.
    h2_probe: Option<Box<h2::Probe>>,
    /// Bytes of messages still arriving, as last counted in the shard's
    /// total (`reading`).
    held: usize,
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
            waiting: ctx.pending.queue(),
            reading: None,
            req_registered: false,
            response: None,
            response_discard: false,
            scan: [Side::new(State::Resync), Side::new(State::Resync)],
            scanned: 0,
            h2: None,
            h2_probe: (!from_start).then(Default::default),
            held: 0,
        }
    }

    fn client_known(&mut self, ctx: &mut Ctx, client: Dir) {
        if self.client.is_none() && client_by_port(&ctx.config.ports, self.key).is_none() {
            self.client = Some(client);
        }
    }

    fn on_data(&mut self, ctx: &mut Ctx, dir: Dir, data: &[u8], ts: Nanos) {
        if self.starts_http2(ctx, dir, data, ts) {
            self.settle_reading(ctx, dir, ts);
            return;
        }
        self.take_data(ctx, dir, data, ts);
        self.settle_reading(ctx, dir, ts);
    }

    fn on_gap(&mut self, ctx: &mut Ctx, dir: Dir, len: u64, ts: Nanos) {
        if self.mode == Mode::Http2 {
            return self.h2_gap(ctx, dir);
        }
        if self.mode != Mode::Http {
            return;
        }
        if self.client == Some(dir) {
            self.request_gap(ctx, len);
        } else {
            self.response_gap(ctx, len);
        }
        self.settle_reading(ctx, dir, ts);
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
        self.settle_reading(ctx, dir, ts);
    }

    fn on_close(&mut self, ctx: &mut Ctx, ts: Nanos) {
        self.h2_close(ctx);
        if self.mode == Mode::Http {
            self.response_eof(ctx, ts);
            self.request_eof(ctx);
        }
        self.flush_unanswered(ctx);
        if self.req_registered {
            ctx.pending.remove(self.req.msg_ts);
            self.req_registered = false;
        }
        self.release_reading(ctx);
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
    /// A connection's bytes, before the shard's count of what it holds.
    fn take_data(&mut self, ctx: &mut Ctx, dir: Dir, data: &[u8], ts: Nanos) {
        if self.mode == Mode::Sniffing && !self.sniff(ctx, dir, data) {
            return;
        }
        match (self.mode, self.client) {
            (Mode::Http2, _) => self.h2_data(ctx, dir, data, ts),
            (Mode::Ignored, _) => {}
            (_, None) => self.find_client(ctx, dir, data, ts),
            (_, Some(client)) if client == dir => self.feed_request(ctx, data, ts),
            (_, Some(_)) => self.feed_response(ctx, data, ts),
        }
    }

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
}

#[cfg(test)]
mod tests;
