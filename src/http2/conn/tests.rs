use super::*;
use crate::http2::frames::{CONTINUATION, DATA, HEADERS, RST_STREAM, SETTINGS};

pub(crate) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

/// A literal field, with incremental indexing or without (short strings).
fn lit(name: &str, value: &str, index: bool) -> Vec<u8> {
    let mut out = vec![if index { 0x40 } else { 0x00 }, name.len() as u8];
    out.extend(name.as_bytes());
    out.push(value.len() as u8);
    out.extend(value.as_bytes());
    out
}

#[derive(Default)]
struct Clock(Vec<Nanos>);

impl StartClock for Clock {
    fn started(&mut self, ts: Nanos) {
        self.0.push(ts);
    }
    fn finished(&mut self, ts: Nanos) {
        let at = self.0.iter().position(|&t| t == ts).expect("a started request");
        self.0.remove(at);
    }
}

struct Harness {
    exchanges: Vec<Exchange>,
    stats: Stats,
    clock: Clock,
}

impl Harness {
    fn new() -> Self {
        Harness { exchanges: Vec::new(), stats: Stats::default(), clock: Clock::default() }
    }
    fn out(&mut self) -> Out<'_> {
        Out {
            exchanges: &mut self.exchanges,
            stats: &mut self.stats,
            clock: &mut self.clock,
            body_limit: 8,
            max_streams: 3,
        }
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;

fn request_block(path: &str, index: bool) -> Vec<u8> {
    let mut block = vec![0x82]; // :method GET
    block.extend(lit(":path", path, index));
    block.extend(lit(":authority", "svc", index));
    block.extend(lit("x-req", "r", index));
    block
}

#[test]
fn concurrent_streams_come_out_as_exchanges() {
    let mut h = Harness::new();
    let mut conn = H2Conn::from_start(&mut h.out(), addr(1), addr(2));
    let mut client = PREFACE.to_vec();
    client.extend(frame(SETTINGS, 0, 0, &[]));
    client.extend(frame(HEADERS, END_STREAM | END_HEADERS, 1, &request_block("/one", true)));
    // Stream 3: a POST whose block is split over a CONTINUATION.
    let mut post = vec![0x83];
    post.extend(lit(":path", "/two", false));
    client.extend(frame(HEADERS, 0, 3, &post[..3]));
    client.extend(frame(CONTINUATION, END_HEADERS, 3, &post[3..]));
    client.extend(frame(DATA, END_STREAM, 3, b"posted body"));
    // Stream 5 reuses stream 1's indexed entries (62.. in the table).
    client.extend(frame(HEADERS, END_STREAM | END_HEADERS, 5, &[0x82, 0xbf, 0xbe, 0xc0]));
    // Split the client bytes anywhere: the result is the same.
    let (a, b) = client.split_at(30);
    conn.on_data(&mut h.out(), true, a, 10);
    conn.on_data(&mut h.out(), true, b, 11);

    let mut server = frame(SETTINGS, 0, 0, &[]);
    server.extend(frame(HEADERS, END_HEADERS, 3, &[0x88])); // :status 200
    server.extend(frame(DATA, END_STREAM, 3, b"ok"));
    let mut trailer = lit("grpc-status", "0", false);
    server.extend(frame(HEADERS, END_HEADERS, 1, &[0x8d])); // :status 404
    server.extend(frame(DATA, 0, 1, b"nothing here"));
    trailer.extend(lit("x-t", "1", false));
    server.extend(frame(HEADERS, END_STREAM | END_HEADERS, 1, &trailer));
    server.extend(frame(RST_STREAM, 0, 5, &[0, 0, 0, 8]));
    // A push: its promise and its answer are counted, not exchanges.
    server.extend(frame(frames::PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 0, 2, 0x82, 0x84]));
    server.extend(frame(HEADERS, END_STREAM | END_HEADERS, 2, &[0x88]));
    conn.on_data(&mut h.out(), false, &server, 20);
    conn.on_close(&mut h.out());

    let ex = &h.exchanges;
    assert_eq!(ex.len(), 3);
    let (two, one, five) = (&ex[0], &ex[1], &ex[2]);
    assert_eq!((two.request.method.as_str(), two.request.uri.as_str()), ("POST", "/two"));
    assert_eq!(two.request.payload.body, b"posted b", "cut at the body limit");
    assert!(two.request.payload.truncated);
    assert_eq!(two.request.payload.body_len, 11);
    assert_eq!(two.response.as_ref().unwrap().status, 200);
    assert_eq!(two.response.as_ref().unwrap().payload.body, b"ok");
    assert_eq!(one.request.uri, "/one");
    assert_eq!(one.request.version, "HTTP/2");
    assert_eq!(one.request.payload.headers, [("host".to_string(), "svc".to_string()), ("x-req".into(), "r".into())]);
    let response = one.response.as_ref().unwrap();
    assert_eq!(response.status, 404);
    let info = one.http2.as_ref().unwrap();
    assert_eq!(info.stream_id, 1);
    assert_eq!(info.response_trailers, [("grpc-status".to_string(), "0".to_string()), ("x-t".into(), "1".into())]);
    assert!(!info.headers_incomplete);
    assert_eq!(five.request.uri, "/one", "indexed entries from stream 1's block");
    assert_eq!(five.request.payload.headers, one.request.payload.headers);
    assert_eq!(five.http2.as_ref().unwrap().reset.as_deref(), Some("CANCEL"));
    assert!(five.response.is_none());
    assert_eq!(h.stats.streams, 3);
    assert_eq!(h.stats.resets, 1);
    assert_eq!(h.stats.push_promises, 1);
    assert_eq!(h.stats.orphan_responses, 0);
    assert!(h.clock.0.is_empty(), "every started request finished");
}

#[test]
fn joined_late_marks_what_it_cannot_know_and_recovers() {
    let mut h = Harness::new();
    let mut conn = H2Conn::joined(&mut h.out(), addr(1), addr(2));
    // Starts inside a frame: 5 stray bytes, then frames.
    let mut client = vec![0x17, 0, 1, 2, 3];
    // Refers to entries made before the capture (62, 63).
    client.extend(frame(HEADERS, END_STREAM | END_HEADERS, 7, &[0x82, 0xbe, 0xbf]));
    // A size update to 0 empties the table: then everything is known.
    let mut block = vec![0x20, 0x3f, 0xe1, 0x1f]; // to 0, then back to 4096
    block.extend(request_block("/later", true));
    client.extend(frame(HEADERS, END_STREAM | END_HEADERS, 9, &block));
    client.extend(frame(HEADERS, END_STREAM | END_HEADERS, 11, &[0x82, 0xc0, 0xbf, 0xbe]));
    conn.on_data(&mut h.out(), true, &client, 1);
    // An answer to a stream the capture never saw start, then answers.
    let mut server = frame(HEADERS, END_STREAM | END_HEADERS, 5, &[0x88]);
    for id in [7, 9, 11] {
        server.extend(frame(HEADERS, END_STREAM | END_HEADERS, id, &[0x88]));
    }
    conn.on_data(&mut h.out(), false, &server, 2);
    let ex = &h.exchanges;
    assert_eq!(ex.len(), 3);
    assert!(ex[0].headers_incomplete());
    assert_eq!(ex[0].request.method, "GET", "what is known is kept");
    assert!(!ex[1].headers_incomplete());
    assert_eq!(ex[1].request.uri, "/later");
    assert!(!ex[2].headers_incomplete());
    assert_eq!(ex[2].request.uri, "/later");
    assert_eq!(ex[2].request.payload.headers, ex[1].request.payload.headers);
    assert_eq!(h.stats.orphan_responses, 1);
    assert_eq!(h.stats.headers_incomplete, 1);
    assert_eq!(h.stats.resync_bytes, 5);
}

#[test]
fn open_streams_are_bounded_and_a_gap_marks_them() {
    let mut h = Harness::new();
    let mut conn = H2Conn::from_start(&mut h.out(), addr(1), addr(2));
    let mut client = PREFACE.to_vec();
    for id in [1, 3, 5, 7] {
        client.extend(frame(HEADERS, END_STREAM | END_HEADERS, id, &request_block("/x", false)));
    }
    conn.on_data(&mut h.out(), true, &client, 1);
    assert_eq!(h.stats.streams_dropped, 1);
    conn.on_gap(&mut h.out(), false);
    conn.on_close(&mut h.out());
    assert_eq!(h.exchanges.len(), 3);
    assert!(h.exchanges.iter().all(|e| e.gap && e.response.is_none()));
}

#[test]
fn garbage_is_counted_not_fatal() {
    let mut h = Harness::new();
    let mut conn = H2Conn::from_start(&mut h.out(), addr(1), addr(2));
    conn.on_data(&mut h.out(), true, b"GET / HTTP/1.1\r\n\r\n", 1);
    assert_eq!(h.stats.malformed, 1);
    let mut bytes = frame(HEADERS, END_HEADERS, 1, &[0xff]); // truncated HPACK
    bytes.extend(frame(0x2, 0, 1, &[0; 3])); // PRIORITY of a bad length
    conn.on_data(&mut h.out(), false, &bytes, 2);
    assert!(h.stats.malformed >= 2);
}
