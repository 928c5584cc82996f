//! Property tests of reassembly and HTTP exchange building together.
//!
//! A generated HTTP/1.1 conversation per connection (1 to 6 connections,
//! 1 to 5 exchanges each) is written out as bytes, cut into TCP segments,
//! and delivered the way a capture might show it: connections interleaved,
//! segments reordered within a bounded window, exact duplicates, and
//! retransmissions overlapping two neighbouring segments, with sequence
//! numbers starting anywhere (just below 2^32 included, so they wrap).
//! What comes out must be exactly the conversation.
//!
//! The delivery order keeps what a capture keeps: a connection's handshake
//! comes first, a response's bytes come after its whole request (the server
//! cannot answer what it has not read), and each ACK number acknowledges
//! only the peer bytes already in the capture, contiguously (a receiver
//! acknowledges what it has). Timestamps follow the original send order and
//! never decrease in delivery order.
//!
//! The second property removes one segment from inside a Content-Length
//! response body (never delivered, though the client did get it and
//! acknowledges past it): that exchange is marked as a gap with the rest of
//! its body, and every other exchange, before and after it, is intact.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use proptest::sample::Index;
use shadowtap::decode::{FLAG_ACK, FLAG_FIN, FLAG_SYN};
use shadowtap::exchange::{Exchange, Header};
use shadowtap::http::{Config, Conn, Ctx};
use shadowtap::reassembly::{DEFAULT_REORDER_WINDOW_NS, Limits, Reassembler, Segment};

// ---- a small deterministic generator for the bulky choices ---------------

/// SplitMix64: the structure of a case comes from proptest (so it shrinks),
/// the bulk (body bytes, cut points, reordering) from seeds it generates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

// ---- the conversation ----------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Post,
    Put,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }

    fn has_body(self) -> bool {
        matches!(self, Method::Post | Method::Put)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFraming {
    Length,
    Chunked { trailer: bool },
}

#[derive(Debug, Clone)]
struct ExchangeSpec {
    method: Method,
    path: String,
    extra_headers: Vec<Header>,
    req_body_len: usize,
    req_chunked: bool,
    status: u16,
    resp_body_len: usize,
    resp_framing: BodyFraming,
    /// Body bytes, chunk splits and header spellings.
    seed: u64,
}

/// How the last exchange of a connection ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    KeepAlive,
    /// The last response says `Connection: close` (framed as usual).
    Close,
    /// The last response says `Connection: close` and has no length: its
    /// body is everything up to the server's FIN.
    UntilClose,
}

#[derive(Debug, Clone)]
struct ConnSpec {
    exchanges: Vec<ExchangeSpec>,
    ending: Ending,
    isn: [u32; 2],
    v6: bool,
    /// The server's address sorts before the client's (so the client is
    /// direction 1 of the flow rather than 0).
    server_sorts_first: bool,
    client_port: u16,
    /// Largest segment payload.
    mss: u64,
    /// Percent chance of sending the next request bytes before the next
    /// response bytes when both could go (pipelining).
    eagerness: u64,
    /// FIN carried by the last data segment of [client, server].
    fin_with_data: [bool; 2],
    seed: u64,
}

#[derive(Debug, Clone)]
struct Scenario {
    conns: Vec<ConnSpec>,
    /// A segment may be delivered up to this many positions late.
    window: u64,
    dup_percent: u64,
    retx_percent: u64,
    seed: u64,
}

fn body_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let text = seed.is_multiple_of(3);
    (0..len)
        .map(|_| {
            let r = rng.next() as u8;
            if text { b'a' + r % 26 } else { r }
        })
        .collect()
}

/// Chunked encoding of `body` with random chunk sizes, hex case and chunk
/// extensions, and maybe a trailer.
fn chunked(body: &[u8], trailer: bool, rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let left = (body.len() - at) as u64;
        let n = if rng.chance(30) { left } else { rng.range(1, left.min(700)) } as usize;
        let size = if rng.chance(50) { format!("{n:x}") } else { format!("{n:X}") };
        out.extend_from_slice(size.as_bytes());
        if rng.chance(15) {
            out.extend_from_slice(b";ext=1");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body[at..at + n]);
        out.extend_from_slice(b"\r\n");
        at += n;
    }
    out.extend_from_slice(b"0\r\n");
    if trailer {
        out.extend_from_slice(b"X-Checksum: 0123abcd\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        404 => "Not Found",
        _ => "Internal Server Error",
    }
}

fn header(name: &str, value: impl ToString) -> Header {
    (name.to_string(), value.to_string())
}

fn write_head(out: &mut Vec<u8>, start_line: &str, headers: &[Header]) {
    out.extend_from_slice(start_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Body bytes shown by their length and a fingerprint, so that a failing
/// case prints readably.
#[derive(Clone, PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hash = self.0.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        let head: String = self.0.iter().take(12).map(|b| format!("{b:02x}")).collect();
        write!(f, "Bytes(len {}, fnv {hash:016x}, {head}..)", self.0.len())
    }
}

/// What one exchange must look like, and the form the output is compared in.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Want {
    client: SocketAddr,
    server: SocketAddr,
    method: String,
    uri: String,
    req_headers: Vec<Header>,
    req_body: Bytes,
    req_body_len: u64,
    req_truncated: bool,
    /// Status, headers, body, body_len, truncated.
    response: Option<(u16, Vec<Header>, Bytes, u64, bool)>,
    gap: bool,
}

impl Want {
    fn of(e: &Exchange) -> Want {
        let req = &e.request.payload;
        Want {
            client: e.client,
            server: e.server,
            method: e.request.method.clone(),
            uri: e.request.uri.clone(),
            req_headers: req.headers.clone(),
            req_body: Bytes(req.body.clone()),
            req_body_len: req.body_len,
            req_truncated: req.truncated,
            response: e.response.as_ref().map(|r| {
                let p = &r.payload;
                (r.status, p.headers.clone(), Bytes(p.body.clone()), p.body_len, p.truncated)
            }),
            gap: e.gap,
        }
    }
}

/// A connection written out: both byte streams, where each message sits in
/// them, and the exchanges they must give.
struct Written {
    client: SocketAddr,
    server: SocketAddr,
    /// [client → server, server → client].
    streams: [Vec<u8>; 2],
    /// End of each request in the client stream.
    req_ends: Vec<u64>,
    /// End of each response in the server stream.
    resp_ends: Vec<u64>,
    /// Body of each Content-Length response, as a range of the server stream.
    length_bodies: Vec<Option<(u64, u64)>>,
    wants: Vec<Want>,
}

fn addresses(index: usize, spec: &ConnSpec) -> (SocketAddr, SocketAddr) {
    let i = index as u8;
    let (client, server): (IpAddr, IpAddr) = if spec.v6 {
        let server = if spec.server_sorts_first { 0x10 } else { 0xf000 };
        (
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 1, 0x100 + i as u16).into(),
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 1, server).into(),
        )
    } else {
        let server = if spec.server_sorts_first { [10, 0, 0, 1] } else { [10, 200, 0, 1] };
        (Ipv4Addr::new(10, 1, i, 2).into(), Ipv4Addr::from(server).into())
    };
    (SocketAddr::new(client, spec.client_port), SocketAddr::new(server, 80))
}

fn write_conn(index: usize, spec: &ConnSpec) -> Written {
    let (client, server) = addresses(index, spec);
    let mut w = Written {
        client,
        server,
        streams: [Vec::new(), Vec::new()],
        req_ends: Vec::new(),
        resp_ends: Vec::new(),
        length_bodies: Vec::new(),
        wants: Vec::new(),
    };
    let last = spec.exchanges.len() - 1;
    for (k, ex) in spec.exchanges.iter().enumerate() {
        let mut rng = Rng(ex.seed);
        // Request.
        let mut headers = vec![header(if rng.chance(80) { "Host" } else { "host" }, "example.test")];
        headers.extend(ex.extra_headers.iter().cloned());
        let req_body = if ex.method.has_body() { body_bytes(ex.req_body_len, ex.seed ^ 1) } else { Vec::new() };
        let uri = format!("{}?conn={index}&ex={k}", ex.path);
        let mut wire_body = req_body.clone();
        if ex.method.has_body() {
            if ex.req_chunked {
                headers.push(header("Transfer-Encoding", if rng.chance(80) { "chunked" } else { "Chunked" }));
                wire_body = chunked(&req_body, rng.chance(20), &mut rng);
            } else {
                let name = if rng.chance(70) { "Content-Length" } else { "content-length" };
                headers.push(header(name, req_body.len()));
            }
        }
        let stream = &mut w.streams[0];
        write_head(stream, &format!("{} {uri} HTTP/1.1", ex.method.name()), &headers);
        stream.extend_from_slice(&wire_body);
        w.req_ends.push(stream.len() as u64);

        // Response.
        let no_body = ex.method == Method::Head || ex.status == 204 || ex.status == 304;
        let ending = if k == last { spec.ending } else { Ending::KeepAlive };
        let until_close = ending == Ending::UntilClose && !no_body;
        let resp_body = body_bytes(ex.resp_body_len, ex.seed ^ 2);
        let mut resp_headers = vec![header("Server", "proptest")];
        let mut wire_body = Vec::new();
        let mut length_body = false;
        if !until_close && ex.status != 204 {
            match ex.resp_framing {
                BodyFraming::Length => {
                    resp_headers.push(header("Content-Length", resp_body.len()));
                    wire_body = resp_body.clone();
                    length_body = !no_body;
                }
                BodyFraming::Chunked { trailer } if ex.status != 304 => {
                    resp_headers.push(header("Transfer-Encoding", "chunked"));
                    wire_body = chunked(&resp_body, trailer, &mut rng);
                }
                BodyFraming::Chunked { .. } => {}
            }
        } else if until_close {
            wire_body = resp_body.clone();
        }
        if ending != Ending::KeepAlive {
            resp_headers.push(header("Connection", "close"));
        }
        if no_body {
            wire_body.clear();
        }
        let stream = &mut w.streams[1];
        write_head(stream, &format!("HTTP/1.1 {} {}", ex.status, reason(ex.status)), &resp_headers);
        let body_start = stream.len() as u64;
        stream.extend_from_slice(&wire_body);
        w.resp_ends.push(stream.len() as u64);
        w.length_bodies.push(length_body.then_some((body_start, stream.len() as u64)));

        let got_body = if no_body { Vec::new() } else { resp_body };
        w.wants.push(Want {
            client,
            server,
            method: ex.method.name().to_string(),
            uri,
            req_headers: headers,
            req_body_len: req_body.len() as u64,
            req_body: Bytes(req_body),
            req_truncated: false,
            response: Some((ex.status, resp_headers, Bytes(got_body.clone()), got_body.len() as u64, false)),
            gap: false,
        });
    }
    w
}

// ---- segments and their delivery -----------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Syn,
    SynAck,
    HandshakeAck,
    Data,
    /// A FIN without data.
    Fin,
    /// A pure ACK (the client's, past a hole, in the gap property).
    Ack,
}

#[derive(Debug, Clone)]
struct Planned {
    conn: usize,
    /// 0: client to server; 1: server to client.
    dir: usize,
    kind: Kind,
    /// Payload as a range of the direction's stream (for Fin and Ack, the
    /// position of their sequence number).
    start: u64,
    end: u64,
    fin: bool,
    /// Prefix of each direction's stream the capture must hold before this
    /// segment can appear in it.
    need: [u64; 2],
    /// Position in the original (send) order of everything.
    orig: usize,
}

/// Cut points of a stream: consecutive ranges of at most `mss` bytes, with
/// `exact` (if any) one range of its own.
fn cut(len: u64, mss: u64, exact: Option<(u64, u64)>, rng: &mut Rng) -> Vec<(u64, u64)> {
    let mut pieces = Vec::new();
    let mut at = 0;
    while at < len {
        let mut end = (at + rng.range(1, mss)).min(len);
        if let Some((a, b)) = exact {
            if at == a {
                end = b;
            } else if at < a && a < end {
                end = a;
            }
        }
        pieces.push((at, end));
        at = end;
    }
    pieces
}

/// The client bytes the server must have read before sending stream bytes
/// up to `end`: every request answered (even partly) in them.
fn client_need(w: &Written, end: u64) -> u64 {
    if end == 0 {
        return 0;
    }
    let k = w.resp_ends.partition_point(|&e| e < end);
    w.req_ends[k.min(w.req_ends.len() - 1)]
}

/// One connection's segments in the order they were sent, with duplicates
/// and overlapping retransmissions; `hole` (a range of the server stream)
/// is sent by nobody in the capture, and an ACK from the client past it
/// follows the first bytes after it.
fn plan_conn(index: usize, spec: &ConnSpec, w: &Written, s: &Scenario, hole: Option<(u64, u64)>) -> Vec<Planned> {
    let mut rng = Rng(spec.seed);
    let lens = [w.streams[0].len() as u64, w.streams[1].len() as u64];
    let plan = |dir, kind, start, end, fin, need| Planned { conn: index, dir, kind, start, end, fin, need, orig: 0 };
    let mut sides: [Vec<Planned>; 2] = [Vec::new(), Vec::new()];
    let mut piece_end = [HashMap::new(), HashMap::new()];
    for dir in 0..2 {
        let pieces = cut(lens[dir], spec.mss, if dir == 1 { hole } else { None }, &mut rng);
        piece_end[dir].extend(pieces.iter().copied());
        for &(a, b) in &pieces {
            let need = if dir == 1 { [client_need(w, b), 0] } else { [0, 0] };
            sides[dir].push(plan(dir, Kind::Data, a, b, false, need));
        }
        let server_fin_need = [lens[0], 0];
        let need = if dir == 1 { server_fin_need } else { [0, 0] };
        let last_is_hole = hole.is_some_and(|(_, b)| dir == 1 && b == lens[1]);
        match sides[dir].last_mut() {
            Some(last) if spec.fin_with_data[dir] && !last_is_hole => last.fin = true,
            _ => sides[dir].push(plan(dir, Kind::Fin, lens[dir], lens[dir], true, need)),
        }
    }

    // Merge the two directions: a server segment goes once the requests it
    // answers are sent; otherwise, requests go ahead with `eagerness`.
    let mut order = vec![
        plan(0, Kind::Syn, 0, 0, false, [0, 0]),
        plan(1, Kind::SynAck, 0, 0, false, [0, 0]),
        plan(0, Kind::HandshakeAck, 0, 0, false, [0, 0]),
    ];
    let (mut ci, mut si, mut client_sent) = (0, 0, 0);
    while ci < sides[0].len() || si < sides[1].len() {
        let server_may = si < sides[1].len() && client_sent >= sides[1][si].need[0];
        let client_may = ci < sides[0].len();
        if client_may && (!server_may || rng.chance(spec.eagerness)) {
            client_sent = sides[0][ci].end;
            order.push(sides[0][ci].clone());
            ci += 1;
        } else {
            order.push(sides[1][si].clone());
            si += 1;
        }
    }

    // Copies: an exact duplicate soon after a segment, or a retransmission
    // of the end of one segment and the start of the next after the next.
    let overlaps_hole = |p: &Planned| p.dir == 1 && hole.is_some_and(|(a, b)| p.start < b && a < p.end);
    let mut out = Vec::new();
    let mut retx: Vec<(usize, u64, Planned)> = Vec::new();
    for p in order {
        let is_hole = p.kind == Kind::Data && overlaps_hole(&p);
        if !is_hole {
            out.push(p.clone());
        }
        if let Some((_, b)) = hole.filter(|&(_, b)| is_hole && p.end == b) {
            // The client got the hole's bytes (only the capture missed them)
            // and acknowledges past them once the bytes after them arrive.
            let need = [0, (b + 1).min(lens[1])];
            let client_at = out.iter().filter(|q| q.dir == 0 && q.kind == Kind::Data).map(|q| q.end).max().unwrap_or(0);
            let ack = plan(0, Kind::Ack, client_at, client_at, false, need);
            retx.push((1, b, ack));
        }
        if p.kind != Kind::Data || is_hole {
            continue;
        }
        if rng.chance(s.dup_percent) {
            out.push(p.clone());
        }
        if p.end < lens[p.dir] && rng.chance(s.retx_percent) {
            let next_end = piece_end[p.dir][&p.end];
            let start = rng.range(p.start, p.end - 1);
            let end = rng.range(p.end + 1, next_end);
            let need = if p.dir == 1 { [client_need(w, end), 0] } else { [0, 0] };
            let copy = plan(p.dir, Kind::Data, start, end, false, need);
            if !overlaps_hole(&copy) {
                retx.push((p.dir, p.end, copy));
            }
        }
        // Retransmissions wait until the segment they reach into was sent.
        let mut k = 0;
        while k < retx.len() {
            let (dir, after_start, _) = &retx[k];
            if *dir == p.dir && *after_start == p.start {
                out.push(retx.remove(k).2);
            } else {
                k += 1;
            }
        }
    }
    // Those whose next segment was never sent go last (before the FINs).
    for (_, _, copy) in retx {
        let at = out.iter().rposition(|q| !q.fin).map_or(out.len(), |i| i + 1);
        out.insert(at, copy);
    }
    out
}

/// Where delivery stands on one connection.
struct Delivered {
    handshake: u8,
    have: [Vec<bool>; 2],
    prefix: [u64; 2],
}

impl Delivered {
    fn ready(&self, p: &Planned) -> bool {
        match p.kind {
            Kind::Syn => self.handshake == 0,
            Kind::SynAck => self.handshake == 1,
            Kind::HandshakeAck => self.handshake == 2,
            _ => self.handshake == 3 && self.prefix[0] >= p.need[0] && self.prefix[1] >= p.need[1],
        }
    }

    fn take(&mut self, p: &Planned) {
        if matches!(p.kind, Kind::Syn | Kind::SynAck | Kind::HandshakeAck) {
            self.handshake += 1;
        }
        let have = &mut self.have[p.dir];
        for b in &mut have[p.start as usize..p.end as usize] {
            *b = true;
        }
        let prefix = &mut self.prefix[p.dir];
        while (*prefix as usize) < have.len() && have[*prefix as usize] {
            *prefix += 1;
        }
    }
}

struct OwnedSegment {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    ts: i64,
    payload: Vec<u8>,
}

fn seq_at(isn: u32, offset: u64) -> u32 {
    isn.wrapping_add(1).wrapping_add(offset as u32)
}

/// Every connection's segments in capture order, and the exchanges each
/// connection must give (by connection index).
fn capture(s: &Scenario, gap: Option<(usize, u64, u64)>) -> (Vec<OwnedSegment>, Vec<Written>) {
    let written: Vec<Written> = s.conns.iter().enumerate().map(|(i, c)| write_conn(i, c)).collect();
    let hole_of = |i: usize| gap.filter(|g| g.0 == i).map(|g| (g.1, g.2));
    let mut per_conn: Vec<VecDeque<Planned>> =
        s.conns.iter().enumerate().map(|(i, c)| plan_conn(i, c, &written[i], s, hole_of(i)).into()).collect();

    // Interleave the connections, then let segments arrive late.
    let mut rng = Rng(s.seed);
    let mut sent = Vec::new();
    loop {
        let open: Vec<usize> = (0..per_conn.len()).filter(|&i| !per_conn[i].is_empty()).collect();
        if open.is_empty() {
            break;
        }
        let i = open[rng.range(0, open.len() as u64 - 1) as usize];
        let mut p = per_conn[i].pop_front().unwrap();
        p.orig = sent.len();
        sent.push(p);
    }
    let mut keyed: Vec<(u64, Planned)> =
        sent.into_iter().map(|p| (p.orig as u64 + rng.range(0, s.window), p)).collect();
    keyed.sort_by_key(|(key, p)| (*key, p.orig));

    let mut state: Vec<Delivered> = written
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut have = [vec![false; w.streams[0].len()], vec![false; w.streams[1].len()]];
            if let Some((a, b)) = hole_of(i) {
                // Never in the capture, but the client has them: its ACKs
                // go past them.
                have[1][a as usize..b as usize].iter_mut().for_each(|b| *b = true);
            }
            Delivered { handshake: 0, have, prefix: [0, 0] }
        })
        .collect();
    let mut out = Vec::new();
    let mut waiting: Vec<Planned> = Vec::new();
    let mut clock = 0i64;
    for (_, p) in keyed {
        waiting.push(p);
        while let Some(at) = waiting.iter().position(|p| state[p.conn].ready(p)) {
            let p = waiting.remove(at);
            let w = &written[p.conn];
            let spec = &s.conns[p.conn];
            let st = &mut state[p.conn];
            st.take(&p);
            let (src, dst) = if p.dir == 0 { (w.client, w.server) } else { (w.server, w.client) };
            let isn = spec.isn[p.dir];
            let peer = 1 - p.dir;
            let (seq, flags) = match p.kind {
                Kind::Syn => (spec.isn[0], FLAG_SYN),
                Kind::SynAck => (spec.isn[1], FLAG_SYN | FLAG_ACK),
                _ => (seq_at(isn, p.start), FLAG_ACK | if p.fin { FLAG_FIN } else { 0 }),
            };
            let ack = if p.kind == Kind::Syn { 0 } else { seq_at(spec.isn[peer], st.prefix[peer]) };
            clock = clock.max(1_700_000_000_000_000_000 + p.orig as i64 * 1_000);
            let payload = w.streams[p.dir][p.start as usize..p.end as usize].to_vec();
            out.push(OwnedSegment { src, dst, seq, ack, flags, ts: clock, payload });
        }
    }
    assert!(waiting.is_empty(), "segments never deliverable: {waiting:?}");
    (out, written)
}

/// What reassembly and HTTP made of a capture.
struct Outcome {
    /// The exchanges by client address, each connection's in the order
    /// they came out.
    exchanges: Vec<Want>,
    /// Connections still open at the end of input, before `close_all`.
    open_at_end: usize,
    /// Reassembly counters before `close_all` (once the reordering window
    /// has passed after the last segment), and after.
    before_close: shadowtap::reassembly::Stats,
    stats: shadowtap::reassembly::Stats,
}

/// Runs the segments through reassembly and HTTP.
fn run(segments: &[OwnedSegment]) -> Outcome {
    let mut ctx = Ctx::new(Config::default());
    let mut reassembler = Reassembler::<Conn>::new(Limits::default());
    for s in segments {
        let seg =
            Segment { src: s.src, dst: s.dst, seq: s.seq, ack: s.ack, flags: s.flags, ts: s.ts, payload: &s.payload };
        reassembler.segment(&mut ctx, &seg);
    }
    let open_at_end = reassembler.active_flows();
    let last = segments.last().map_or(0, |s| s.ts);
    reassembler.expire_idle(&mut ctx, last + DEFAULT_REORDER_WINDOW_NS);
    let before_close = reassembler.stats.clone();
    reassembler.close_all(&mut ctx);
    let mut exchanges: Vec<Want> = ctx.out.iter().map(Want::of).collect();
    exchanges.sort_by_key(|w| w.client);
    Outcome { exchanges, open_at_end, before_close, stats: reassembler.stats }
}

// ---- strategies ----------------------------------------------------------

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![3 => Just(Method::Get), 1 => Just(Method::Head), 2 => Just(Method::Post), 1 => Just(Method::Put)]
}

fn body_len() -> impl Strategy<Value = usize> {
    prop_oneof![2 => 0usize..40, 2 => 0usize..3000]
}

fn exchange() -> impl Strategy<Value = ExchangeSpec> {
    let extra = prop::collection::vec(("X-[A-Za-z][A-Za-z0-9-]{0,10}", "[!-~]([ -~]{0,20}[!-~])?"), 0..3);
    let status =
        prop_oneof![6 => Just(200u16), 1 => Just(201), 1 => Just(404), 1 => Just(500), 1 => Just(204), 1 => Just(304)];
    let framing =
        prop_oneof![Just(BodyFraming::Length), any::<bool>().prop_map(|trailer| BodyFraming::Chunked { trailer })];
    (method(), "/[a-z0-9._~/-]{0,16}", extra, body_len(), any::<bool>(), status, body_len(), framing, any::<u64>())
        .prop_map(
            |(method, path, extra_headers, req_body_len, req_chunked, status, resp_body_len, resp_framing, seed)| {
                ExchangeSpec {
                    method,
                    path,
                    extra_headers,
                    req_body_len,
                    req_chunked,
                    status,
                    resp_body_len,
                    resp_framing,
                    seed,
                }
            },
        )
}

fn isn() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), (0u32..4000).prop_map(|d| u32::MAX - d), Just(0u32)]
}

fn conn() -> impl Strategy<Value = ConnSpec> {
    let ending = prop_oneof![2 => Just(Ending::KeepAlive), 1 => Just(Ending::Close), 2 => Just(Ending::UntilClose)];
    let mss = prop_oneof![1 => 1u64..16, 3 => 16u64..400, 2 => 400u64..1461];
    (
        prop::collection::vec(exchange(), 1..=5),
        ending,
        (isn(), isn()),
        (any::<bool>(), any::<bool>(), 1024u16..),
        mss,
        0u64..=100,
        any::<[bool; 2]>(),
        any::<u64>(),
    )
        .prop_map(
            |(
                exchanges,
                ending,
                (c, s),
                (v6, server_sorts_first, client_port),
                mss,
                eagerness,
                fin_with_data,
                seed,
            )| {
                ConnSpec {
                    exchanges,
                    ending,
                    isn: [c, s],
                    v6,
                    server_sorts_first,
                    client_port,
                    mss,
                    eagerness,
                    fin_with_data,
                    seed,
                }
            },
        )
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (prop::collection::vec(conn(), 1..=6), 0u64..=8, 0u64..=30, 0u64..=30, any::<u64>()).prop_map(
        |(conns, window, dup_percent, retx_percent, seed)| Scenario { conns, window, dup_percent, retx_percent, seed },
    )
}

/// Groups `wants` of every connection by client, as `run` sorts them.
fn expected(written: &[Written]) -> Vec<Want> {
    let mut all: Vec<Want> = written.iter().flat_map(|w| w.wants.iter().cloned()).collect();
    all.sort_by_key(|w| w.client);
    all
}

/// Makes `(conn, exchange)` a GET answered 200 with a Content-Length body
/// of at least `min_len` bytes, so that a hole can be cut inside it.
fn force_length_body(s: &mut Scenario, conn: usize, ex: usize, min_len: usize) {
    let c = &mut s.conns[conn];
    let e = &mut c.exchanges[ex];
    if e.method == Method::Head {
        e.method = Method::Get;
    }
    e.status = 200;
    e.resp_framing = BodyFraming::Length;
    e.resp_body_len = e.resp_body_len.max(min_len);
    if ex == c.exchanges.len() - 1 && c.ending == Ending::UntilClose {
        c.ending = Ending::Close;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn reordered_duplicated_wrapped_segments_give_the_conversation(s in scenario()) {
        let (segments, written) = capture(&s, None);
        let got = run(&segments);
        prop_assert_eq!(got.exchanges, expected(&written));
        prop_assert_eq!(got.stats.gaps, 0);
        // One flow per connection, each closed by its FINs, none reopened by
        // a late copy of its data.
        prop_assert_eq!(got.stats.connections, s.conns.len() as u64);
        prop_assert_eq!(got.open_at_end, 0);
    }

    #[test]
    fn a_hole_in_a_length_body_marks_that_exchange_and_spares_the_rest(
        mut s in scenario(),
        which_conn in any::<Index>(),
        which_exchange in any::<Index>(),
        hole_seed in any::<u64>(),
    ) {
        let conn = which_conn.index(s.conns.len());
        let ex = which_exchange.index(s.conns[conn].exchanges.len());
        force_length_body(&mut s, conn, ex, 2);
        let written: Vec<Written> = s.conns.iter().enumerate().map(|(i, c)| write_conn(i, c)).collect();
        let (body_start, body_end) = written[conn].length_bodies[ex].expect("a Content-Length body");
        let len = body_end - body_start;
        let mut rng = Rng(hole_seed);
        let from = rng.range(0, len - 1);
        let to = from + rng.range(1, (len - from).min(s.conns[conn].mss));
        let (segments, written) = capture(&s, Some((conn, body_start + from, body_start + to)));

        // The exchange with the hole keeps the body around it and knows its
        // full length.
        let mut want = written;
        let target = &mut want[conn].wants[ex];
        target.gap = true;
        let response = target.response.as_mut().unwrap();
        let mut body = response.2.0.clone();
        body.drain(from as usize..to as usize);
        response.2 = Bytes(body);
        response.4 = true;
        let got = run(&segments);
        prop_assert_eq!(got.exchanges, expected(&want));
        prop_assert_eq!((got.stats.gaps, got.stats.gap_bytes), (1, to - from));
        if body_start + to < want[conn].streams[1].len() as u64 {
            // The client's ACK past the hole, with bytes after it held, gave
            // the hole up once the reordering window passed, not only at
            // the end of input.
            prop_assert_eq!(got.before_close.gaps, 1);
        }
    }
}
