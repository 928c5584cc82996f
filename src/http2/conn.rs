//! One HTTP/2 connection: its two byte streams go in (client and server
//! side, with gaps), one [`Exchange`] per stream comes out into [`Out`].
//! Seen from its start (prior-knowledge preface, or after an h2c Upgrade
//! whose request is stream 1's) both HPACK tables are exact; joined late
//! or after a gap, each side first looks for frame boundaries, and its
//! HPACK table is unknown until it becomes known again (see [`hpack`]).
//! Bounded: open streams per connection, body bytes, header block bytes.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::frames::{self, Event, Frame, Reader};
use super::hpack::{self, Decoder};
use super::stream::Stream;
use crate::exchange::{Exchange, Nanos, Request};

/// What a client sends first (RFC 9113 section 3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Bytes of one side kept while looking for frame boundaries.
const MAX_PROBE: usize = 64 << 10;
/// Compressed header block bytes gathered at most (HEADERS and its
/// CONTINUATIONs); past it the block is dropped and the table lost.
const MAX_BLOCK: usize = hpack::MAX_BLOCK_DECODED;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub connections: u64,
    pub streams: u64,
    pub push_promises: u64,
    pub resets: u64,
    pub headers_incomplete: u64,
    /// Streams not kept: past the bound on open streams of a connection.
    pub streams_dropped: u64,
    /// Answers on streams whose request was not seen (joined late).
    pub orphan_responses: u64,
    /// Framing or HPACK errors: that side's state was lost and found again.
    pub malformed: u64,
    /// Bytes passed over while looking for frame boundaries.
    pub resync_bytes: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.connections += o.connections;
        self.streams += o.streams;
        self.push_promises += o.push_promises;
        self.resets += o.resets;
        self.headers_incomplete += o.headers_incomplete;
        self.streams_dropped += o.streams_dropped;
        self.orphan_responses += o.orphan_responses;
        self.malformed += o.malformed;
        self.resync_bytes += o.resync_bytes;
    }
}

/// Start times of requests being read, so that the ordering stage waits
/// for them (the HTTP stage's pending clock).
pub trait StartClock {
    fn started(&mut self, ts: Nanos);
    fn finished(&mut self, ts: Nanos);
}

/// Where a connection's exchanges go, and its bounds.
pub struct Out<'a> {
    pub exchanges: &'a mut Vec<Exchange>,
    pub stats: &'a mut Stats,
    pub clock: &'a mut dyn StartClock,
    pub body_limit: usize,
    pub max_streams: usize,
}

/// A header block being gathered from HEADERS/PUSH_PROMISE + CONTINUATION.
#[derive(Debug)]
struct Block {
    stream: u32,
    bytes: Vec<u8>,
    end_stream: bool,
    push: bool,
    too_large: bool,
}

/// One direction's reading state.
#[derive(Debug)]
struct Side {
    reader: Reader,
    hpack: Decoder,
    /// Preface bytes still to come (client side, from the start).
    preface_left: usize,
    /// Frame boundaries known; else bytes gather in `probe`.
    synced: bool,
    probe: Vec<u8>,
    block: Option<Block>,
}

impl Side {
    fn new(from_start: bool, preface: bool) -> Side {
        Side {
            reader: Reader::default(),
            hpack: if from_start { Decoder::from_start() } else { Decoder::joined() },
            preface_left: if preface { PREFACE.len() } else { 0 },
            synced: from_start,
            probe: Vec::new(),
            block: None,
        }
    }

    /// Framing lost: look for boundaries again; the table is unknown.
    fn lose(&mut self) {
        self.reader = Reader::default();
        self.hpack.lose();
        self.synced = false;
        self.probe.clear();
        self.block = None;
        self.preface_left = 0;
    }
}

#[derive(Debug)]
pub struct H2Conn {
    client: SocketAddr,
    server: SocketAddr,
    /// Client side first, then server side.
    sides: [Side; 2],
    streams: BTreeMap<u32, Stream>,
}

impl H2Conn {
    /// Seen from its start: the client's first bytes are the preface.
    pub fn from_start(out: &mut Out, client: SocketAddr, server: SocketAddr) -> Self {
        out.stats.connections += 1;
        H2Conn { client, server, sides: [Side::new(true, true), Side::new(true, false)], streams: BTreeMap::new() }
    }

    /// Joined late: both sides look for frame boundaries first.
    pub fn joined(out: &mut Out, client: SocketAddr, server: SocketAddr) -> Self {
        out.stats.connections += 1;
        H2Conn { client, server, sides: [Side::new(false, false), Side::new(false, false)], streams: BTreeMap::new() }
    }

    /// After `Upgrade: h2c` answered by 101: the upgrading request is
    /// stream 1's, its answer comes over HTTP/2 (RFC 7540 section 3.2).
    pub fn upgraded(out: &mut Out, client: SocketAddr, server: SocketAddr, mut request: Request) -> Self {
        let mut conn = Self::from_start(out, client, server);
        request.version = super::stream::VERSION.into();
        // What asked for the switch is HTTP/1's own, not stream 1's
        // (RFC 9113 section 8.2.2 forbids it in HTTP/2).
        const HOP_BY_HOP: [&str; 6] =
            ["connection", "upgrade", "http2-settings", "keep-alive", "proxy-connection", "transfer-encoding"];
        request.payload.headers.retain(|(name, _)| !HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)));
        let mut stream = Stream::new(1);
        out.clock.started(request.ts);
        stream.request = Some(request);
        stream.request_done = true;
        out.stats.streams += 1;
        conn.streams.insert(1, stream);
        conn
    }

    pub fn on_data(&mut self, out: &mut Out, from_client: bool, mut data: &[u8], ts: Nanos) {
        let i = usize::from(!from_client);
        let side = &mut self.sides[i];
        if side.preface_left > 0 {
            let take = side.preface_left.min(data.len());
            let at = PREFACE.len() - side.preface_left;
            if data[..take] != PREFACE[at..at + take] {
                out.stats.malformed += 1;
                side.lose();
            } else {
                side.preface_left -= take;
                data = &data[take..];
            }
        }
        if data.is_empty() {
            return;
        }
        if !self.sides[i].synced {
            let Some(found) = self.find_boundary(out, i, data) else { return };
            return self.read_frames(out, i, &found, ts);
        }
        self.read_frames(out, i, data, ts);
    }

    /// Gathers bytes until frame heads follow one another; returns the
    /// bytes from the first boundary.
    fn find_boundary(&mut self, out: &mut Out, i: usize, data: &[u8]) -> Option<Vec<u8>> {
        let side = &mut self.sides[i];
        side.probe.extend_from_slice(data);
        match frames::find_boundary(&side.probe) {
            Some(at) => {
                out.stats.resync_bytes += at as u64;
                side.synced = true;
                let mut probe = std::mem::take(&mut side.probe);
                probe.drain(..at);
                Some(probe)
            }
            None => {
                if side.probe.len() > MAX_PROBE {
                    // Keep the tail: a frame head may start in it.
                    let drop = side.probe.len() - frames::FRAME_HEAD_LEN * 3;
                    out.stats.resync_bytes += drop as u64;
                    side.probe.drain(..drop);
                }
                None
            }
        }
    }

    fn read_frames(&mut self, out: &mut Out, i: usize, data: &[u8], ts: Nanos) {
        let mut reader = std::mem::take(&mut self.sides[i].reader);
        let result = reader.feed(data, &mut |event| self.on_event(out, i, event, ts));
        self.sides[i].reader = reader;
        if result.is_err() {
            out.stats.malformed += 1;
            self.lose_side(i);
        }
    }

    fn on_event(&mut self, out: &mut Out, i: usize, event: Event, ts: Nanos) {
        let from_client = i == 0;
        match event {
            Event::Data { stream, data } => {
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.data(from_client, data, out.body_limit);
                }
            }
            Event::DataEnd { stream, end_stream } => {
                if end_stream {
                    self.end_side(out, stream, from_client);
                }
            }
            Event::Frame(frame) => self.on_frame(out, i, frame, ts),
        }
    }

    fn on_frame(&mut self, out: &mut Out, i: usize, frame: Frame, ts: Nanos) {
        let side = &mut self.sides[i];
        match frame {
            Frame::Headers { stream, fragment, end_headers, end_stream, promised } => {
                if side.block.is_some() {
                    // A new block before the last ended: the protocol
                    // forbids it, and the table can no longer be trusted.
                    out.stats.malformed += 1;
                    side.hpack.lose();
                }
                let push = promised.is_some();
                side.block = Some(Block { stream, bytes: Vec::new(), end_stream, push, too_large: false });
                self.add_fragment(out, i, stream, fragment, end_headers, ts);
            }
            Frame::Continuation { stream, fragment, end_headers } => {
                if side.block.as_ref().is_some_and(|b| b.stream == stream) {
                    self.add_fragment(out, i, stream, fragment, end_headers, ts);
                } else {
                    out.stats.malformed += 1;
                    side.hpack.lose();
                    side.block = None;
                }
            }
            Frame::RstStream { stream, code } => {
                out.stats.resets += 1;
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.reset.get_or_insert(code);
                    self.emit_if_finished(out, stream);
                }
            }
            Frame::Settings { .. } | Frame::GoAway { .. } | Frame::Other { .. } => {}
        }
    }

    fn add_fragment(&mut self, out: &mut Out, i: usize, stream: u32, fragment: &[u8], end: bool, ts: Nanos) {
        let side = &mut self.sides[i];
        let Some(block) = side.block.as_mut() else { return };
        if block.bytes.len() + fragment.len() > MAX_BLOCK {
            block.too_large = true;
            block.bytes = Vec::new();
        } else if !block.too_large {
            block.bytes.extend_from_slice(fragment);
        }
        if !end {
            return;
        }
        let Some(block) = side.block.take() else { return };
        let fields = if block.too_large {
            side.hpack.lose();
            vec![hpack::Field::Unknown]
        } else {
            match side.hpack.decode_block(&block.bytes) {
                Ok(fields) => fields,
                Err(_) => {
                    out.stats.malformed += 1;
                    vec![hpack::Field::Unknown]
                }
            }
        };
        if block.push {
            out.stats.push_promises += 1;
            return;
        }
        self.header_block(out, i == 0, stream, fields, block.end_stream, ts);
    }

    fn header_block(
        &mut self,
        out: &mut Out,
        from_client: bool,
        id: u32,
        fields: Vec<hpack::Field>,
        end: bool,
        ts: Nanos,
    ) {
        if from_client && !self.streams.contains_key(&id) {
            if self.streams.len() >= out.max_streams {
                out.stats.streams_dropped += 1;
                return;
            }
            out.stats.streams += 1;
            out.clock.started(ts);
            self.streams.insert(id, Stream::new(id));
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            // Even streams are the server's pushes (counted with their
            // PUSH_PROMISE); an odd one began before the capture did.
            if id % 2 == 1 {
                out.stats.orphan_responses += 1;
            }
            return;
        };
        if from_client {
            stream.request_headers(fields, ts, end);
        } else {
            stream.response_headers(fields, ts, end);
        }
        self.emit_if_finished(out, id);
    }

    fn end_side(&mut self, out: &mut Out, id: u32, from_client: bool) {
        if let Some(stream) = self.streams.get_mut(&id) {
            if from_client {
                stream.request_done = true;
            } else {
                stream.response_done = true;
            }
            self.emit_if_finished(out, id);
        }
    }

    fn emit_if_finished(&mut self, out: &mut Out, id: u32) {
        if self.streams.get(&id).is_some_and(Stream::is_finished)
            && let Some(stream) = self.streams.remove(&id)
        {
            self.emit(out, stream);
        }
    }

    fn emit(&self, out: &mut Out, stream: Stream) {
        let Some(exchange) = stream.into_exchange(self.client, self.server) else { return };
        out.clock.finished(exchange.request.ts);
        if exchange.headers_incomplete() {
            out.stats.headers_incomplete += 1;
        }
        out.exchanges.push(exchange);
    }

    /// A hole in one direction: its framing and table are lost, and every
    /// open stream may have lost bytes.
    pub fn on_gap(&mut self, _out: &mut Out, from_client: bool) {
        self.lose_side(usize::from(!from_client));
    }

    fn lose_side(&mut self, i: usize) {
        self.sides[i].lose();
        for stream in self.streams.values_mut() {
            stream.gap = true;
        }
    }

    /// The connection ended: open streams come out as they are.
    pub fn on_close(&mut self, out: &mut Out) {
        for (_, stream) in std::mem::take(&mut self.streams) {
            self.emit(out, stream);
        }
    }
}

#[cfg(test)]
mod tests;
