//! A recording read back through the real pipeline (as `pairs` and
//! `replay` read it) gives the exchanges that the same events give on the
//! live path (the shards' byte streams, `crate::streams`).

use std::net::SocketAddr;

use super::*;
use crate::exchange::Exchange;
use crate::pipeline::{self, Source};
use crate::replay::config::Config;
use crate::streams::{Limits, StreamEvent, Streams, Toward};
use crate::topology::build::{self, Consumer, SourceChoice};

const MS: i64 = 1_000_000;
/// A Unix time in ns, as `EbpfCapture::unix_ns` gives.
const T0: i64 = 1_790_000_000 * 1_000_000_000;

fn ip(addr: &str) -> Endpoint {
    Endpoint::Ip(addr.parse().unwrap())
}

fn open(conn: u64, client: &str) -> Event<'static> {
    Event::Open { conn, ts: 0, tgid: 1, fd: 3, server: ip("127.0.0.1:8080"), client: ip(client) }
}

fn data(conn: u64, side: Side, off: u64, bytes: &'static [u8]) -> Event<'static> {
    Event::Data { conn, ts: 0, side, off, tls: false, bytes }
}

fn skip(conn: u64, side: Side, off: u64, len: u64) -> Event<'static> {
    Event::Skip { conn, ts: 0, side, off, len, cut: true }
}

fn close(conn: u64, to_server: u64, to_client: u64) -> Event<'static> {
    Event::Close { conn, ts: 0, to_server, to_client }
}

/// Events of one connection's directions written one after the other,
/// each at the offset where its direction stands, a millisecond apart.
struct Script {
    events: Vec<(Event<'static>, i64)>,
    sent: std::collections::HashMap<(u64, bool), u64>,
}

impl Script {
    fn new() -> Script {
        Script { events: Vec::new(), sent: Default::default() }
    }

    fn at(&mut self, event: Event<'static>) {
        let ts = T0 + self.events.len() as i64 * MS;
        self.events.push((event, ts));
    }

    fn open(&mut self, conn: u64, client: &str) {
        self.at(open(conn, client));
    }

    fn send(&mut self, conn: u64, side: Side, bytes: &'static [u8]) {
        let off = self.advance(conn, side, bytes.len() as u64);
        self.at(data(conn, side, off, bytes));
    }

    fn skip(&mut self, conn: u64, side: Side, len: u64) {
        let off = self.advance(conn, side, len);
        self.at(skip(conn, side, off, len));
    }

    /// Bytes the source never reported (a dropped ring-buffer record).
    fn lose(&mut self, conn: u64, side: Side, len: u64) {
        self.advance(conn, side, len);
    }

    fn close(&mut self, conn: u64) {
        let to_server = self.sent.get(&(conn, true)).copied().unwrap_or(0);
        let to_client = self.sent.get(&(conn, false)).copied().unwrap_or(0);
        self.at(close(conn, to_server, to_client));
    }

    fn advance(&mut self, conn: u64, side: Side, len: u64) -> u64 {
        let sent = self.sent.entry((conn, side == Side::ToServer)).or_default();
        let off = *sent;
        *sent += len;
        off
    }
}

fn pipeline_config(files: &[std::path::PathBuf]) -> pipeline::Config {
    let source = SourceChoice::Files(files.to_vec());
    build::pipeline_config(&Config::default(), &source, Consumer::Print, Some(1))
}

/// The live path: the events as the shards take them.
fn live(events: &[(Event<'static>, i64)]) -> Vec<Exchange> {
    let config = pipeline_config(&[]);
    let mut ctx = crate::http::Ctx::new(config.http);
    let mut streams = Streams::<crate::http::Conn>::new(Limits { max_conns: 1000, idle_timeout_ns: i64::MAX });
    let toward = |side: &Side| if *side == Side::ToServer { Toward::Server } else { Toward::Client };
    for (event, ts) in events {
        let id = event.conn();
        let stream_event = match event {
            Event::Open { server, client, .. } => {
                let (client, server) = stand_in_addresses(id, server, client);
                StreamEvent::Open { client, server }
            }
            Event::Data { side, off, bytes, .. } => StreamEvent::Data { toward: toward(side), off: *off, bytes },
            Event::Skip { side, off, len, .. } => StreamEvent::Skip { toward: toward(side), off: *off, len: *len },
            Event::Close { to_server, to_client, .. } => {
                StreamEvent::Close { to_server: *to_server, to_client: *to_client }
            }
        };
        let unknown = Endpoint::Unix(String::new());
        streams.event(&mut ctx, id, *ts, stream_event, || stand_in_addresses(id, &unknown, &unknown));
    }
    streams.close_all(&mut ctx, events.last().map_or(0, |(_, ts)| *ts));
    ctx.out
}

/// The recorded path: events to a pcapng, read back by the pipeline.
fn recorded(events: &[(Event<'static>, i64)]) -> (Vec<Exchange>, pipeline::Summary) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seen.pcapng");
    let mut recorder = Recorder::create(&path, 1000).unwrap();
    for (event, ts) in events {
        recorder.record(event, *ts);
    }
    let stats = recorder.finish();
    assert_eq!(stats.write_errors, 0);
    assert!(is_recording(&path));
    let running = pipeline::start(Source::Files(vec![path.clone()]), pipeline_config(&[path]));
    let exchanges: Vec<Exchange> = running.exchanges.iter().flatten().collect();
    let (summary, error) = running.finish();
    assert!(error.is_none(), "{error:?}");
    assert_eq!(summary.capture.malformed + summary.capture.not_tcp, 0);
    (exchanges, summary)
}

/// What must agree: addresses, request line, status, bodies, times, flags.
/// Bodies as their length and a digest, so that a failure prints short.
type Seen = (SocketAddr, SocketAddr, String, String, Option<u16>, Body, Body, i64, bool, bool);
type Body = (usize, u64);

fn body(bytes: &[u8]) -> Body {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    (bytes.len(), hasher.finish())
}

fn seen(mut exchanges: Vec<Exchange>) -> Vec<Seen> {
    exchanges.sort_by_key(|e| (e.request.ts, e.client));
    exchanges
        .into_iter()
        .map(|e| {
            let response = e.response.as_ref();
            (
                e.client,
                e.server,
                e.request.method.clone(),
                e.request.uri.clone(),
                response.map(|r| r.status),
                body(&e.request.payload.body),
                body(response.map_or(&[][..], |r| &r.payload.body)),
                e.request.ts,
                e.request.payload.truncated,
                e.gap,
            )
        })
        .collect()
}

fn same_on_both_paths(script: &Script) -> Vec<Seen> {
    let live = seen(live(&script.events));
    let (recorded, _) = recorded(&script.events);
    let recorded = seen(recorded);
    assert!(!live.is_empty());
    assert_eq!(recorded, live);
    live
}

const GET: &[u8] = b"GET /items/1 HTTP/1.1\r\nHost: a\r\n\r\n";
const POST: &[u8] = b"POST /items HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst";
const CREATED: &[u8] = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nid";

#[test]
fn keep_alive_a_post_and_a_unix_socket_read_back_the_same() {
    let mut s = Script::new();
    s.open(1, "127.0.0.2:40000");
    s.send(1, Side::ToServer, GET);
    s.send(1, Side::ToClient, OK);
    s.send(1, Side::ToServer, POST);
    s.send(1, Side::ToClient, CREATED);
    // A second connection interleaved with the first, on a unix socket.
    s.at(Event::Open {
        conn: 2,
        ts: 0,
        tgid: 1,
        fd: 4,
        server: Endpoint::Unix("/run/app.sock".into()),
        client: Endpoint::Unix(String::new()),
    });
    s.send(2, Side::ToServer, GET);
    s.close(1);
    s.send(2, Side::ToClient, OK);
    s.close(2);
    let seen = same_on_both_paths(&s);
    let lines: Vec<_> = seen.iter().map(|x| (x.2.as_str(), x.4, x.9)).collect();
    assert_eq!(lines, [("GET", Some(200), false), ("POST", Some(201), false), ("GET", Some(200), false)]);
    assert_eq!(seen[1].5, body(b"hello world"));
    assert_eq!(seen[2].1, "127.255.0.1:80".parse().unwrap(), "the unix socket's stand-in server");
}

#[test]
fn a_skip_in_an_answer_or_at_a_request_tail_marks_gap_on_both_paths() {
    let mut s = Script::new();
    s.open(1, "127.0.0.2:40001");
    s.send(1, Side::ToServer, GET);
    // sendfile: the body of the answer went by unread.
    s.send(1, Side::ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    s.skip(1, Side::ToClient, 1000);
    s.send(1, Side::ToServer, GET);
    s.send(1, Side::ToClient, OK);
    // A request whose body's tail was cut, answered at once.
    s.send(1, Side::ToServer, b"POST /items HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n\r\n0123456789");
    s.skip(1, Side::ToServer, 30);
    s.send(1, Side::ToClient, CREATED);
    s.send(1, Side::ToServer, GET);
    s.send(1, Side::ToClient, OK);
    s.close(1);
    let seen = same_on_both_paths(&s);
    let gaps: Vec<_> = seen.iter().map(|x| (x.2.as_str(), x.4, x.9)).collect();
    assert_eq!(
        gaps,
        [("GET", Some(200), true), ("GET", Some(200), false), ("POST", Some(201), true), ("GET", Some(200), false)]
    );
}

#[test]
fn a_lost_open_and_lost_chunks_read_back_as_the_live_path_sees_them() {
    let mut s = Script::new();
    // The open of connection 5 was dropped: stand-in addresses on both paths.
    s.send(5, Side::ToServer, GET);
    s.send(5, Side::ToClient, OK);
    s.send(5, Side::ToServer, GET);
    // A dropped record in the middle of an answer: the next chunk starts later.
    s.send(5, Side::ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n01234");
    s.lose(5, Side::ToClient, 10);
    s.send(5, Side::ToClient, b"56789");
    s.send(5, Side::ToServer, POST);
    s.send(5, Side::ToClient, CREATED);
    s.close(5);
    let seen = same_on_both_paths(&s);
    assert_eq!(seen.iter().map(|x| x.9).collect::<Vec<_>>(), [false, true, false]);
    assert!(seen[0].0.ip().to_string().starts_with("127.254."), "a stand-in client: {}", seen[0].0);
}

#[test]
fn large_chunks_are_split_into_segments_that_join_again() {
    let body: &'static [u8] = Box::leak(vec![b'x'; 150_000].into_boxed_slice());
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
    let mut s = Script::new();
    s.at(Event::Open { conn: 1, ts: 0, tgid: 1, fd: 3, server: ip("[::1]:8080"), client: ip("[::1]:40002") });
    s.send(1, Side::ToServer, GET);
    s.send(1, Side::ToClient, Box::leak(head.into_bytes().into_boxed_slice()));
    s.send(1, Side::ToClient, body);
    s.close(1);
    let seen = same_on_both_paths(&s);
    assert_eq!(seen[0].6.0, 150_000);
    assert!(!seen[0].9);
}

#[test]
fn connections_are_bounded_and_forgotten_at_close() {
    let mut recorder = Recorder::new(Vec::new(), 2).unwrap();
    for conn in 1..=3 {
        recorder.record(&open(conn, "127.0.0.2:40000"), T0);
    }
    assert_eq!((recorder.open_connections(), recorder.stats.evicted), (2, 1));
    recorder.record(&close(3, 0, 0), T0);
    recorder.record(&close(1, 0, 0), T0);
    assert_eq!(recorder.open_connections(), 1, "connection 1 was the oldest, gone already");
    let stats = recorder.finish();
    assert_eq!((stats.connections, stats.events, stats.packets), (3, 5, 3 * 3 + 3));
}

#[test]
fn only_a_recording_is_taken_for_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.pcapng");
    Recorder::create(&path, 10).unwrap().finish();
    assert!(is_recording(&path));
    let config = pipeline_config(std::slice::from_ref(&path));
    assert_eq!(config.limits.reorder_window_ns, 0, "nothing arrives late in a recording");
    let capture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    let other = std::fs::read_dir(capture)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"));
    let other = other.expect("a capture in pcaps/");
    assert!(!is_recording(&other));
    assert_ne!(pipeline_config(&[other, path]).limits.reorder_window_ns, 0);
    assert!(!is_recording(&dir.path().join("missing.pcapng")));
}
