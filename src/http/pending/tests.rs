//! Bounds on requests waiting for answers: one-sided captures keep a
//! bounded number, every request still comes out, and an answer owed to a
//! request sent out unanswered is never paired with a later one.

use crate::exchange::{Exchange, Nanos};
use crate::http::{Config, Conn, Ctx};
use crate::reassembly::{FlowKey, Handler};

fn ctx(per_conn: usize, bytes: usize) -> Ctx {
    Ctx::new(Config { max_waiting_per_conn: per_conn, max_waiting_bytes: bytes, ..Config::default() })
}

fn conn(ctx: &mut Ctx, client_port: u16) -> Conn {
    let client = format!("10.0.0.2:{client_port}").parse().unwrap();
    let key = FlowKey::of(client, "10.0.0.1:80".parse().unwrap()).0;
    let client_dir = if key.a == client { 0 } else { 1 };
    Conn::open(ctx, key, Some(client_dir))
}

fn client_dir(conn: &Conn) -> usize {
    conn.client.expect("client known")
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

fn answer(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

fn request(conn: &mut Conn, ctx: &mut Ctx, path: &str, ts: Nanos) {
    let dir = client_dir(conn);
    conn.on_data(ctx, dir, &get(path), ts);
}

fn respond(conn: &mut Conn, ctx: &mut Ctx, body: &str, ts: Nanos) {
    let dir = 1 - client_dir(conn);
    conn.on_data(ctx, dir, &answer(body), ts);
}

/// (uri, answer body) of each exchange, in the order they came out.
fn pairs(out: &[Exchange]) -> Vec<(String, Option<String>)> {
    out.iter()
        .map(|e| {
            let body = e.response.as_ref().map(|r| String::from_utf8_lossy(&r.payload.body).into_owned());
            (e.request.uri.clone(), body)
        })
        .collect()
}

#[test]
fn requests_never_answered_are_bounded_per_connection_and_all_come_out() {
    let mut ctx = ctx(10, 64 << 20);
    let mut c = conn(&mut ctx, 5000);
    let mut most_waiting = 0;
    for i in 0..100 {
        request(&mut c, &mut ctx, &format!("/{i}"), i);
        most_waiting = most_waiting.max(ctx.pending.parked());
    }
    assert_eq!(most_waiting, 10);
    assert_eq!(ctx.out.len(), 90, "the oldest come out as the newest arrive");
    // The watermark follows: no exchange still to come started before /90.
    assert_eq!(ctx.pending.oldest(), Some(90));
    c.on_close(&mut ctx, 100);
    let expected: Vec<_> = (0..100).map(|i| (format!("/{i}"), None)).collect();
    assert_eq!(pairs(&ctx.out), expected);
    assert_eq!((ctx.stats.unanswered, ctx.stats.sent_out_unanswered, ctx.stats.peak_waiting), (100, 90, 10));
    assert_eq!(ctx.pending.parked(), 0);
    assert_eq!(ctx.pending.oldest(), None);
}

#[test]
fn an_answer_owed_to_a_request_sent_out_is_set_aside_not_paired_with_the_next() {
    let mut ctx = ctx(2, 64 << 20);
    let mut c = conn(&mut ctx, 5000);
    for (i, path) in ["/a", "/b", "/c"].into_iter().enumerate() {
        request(&mut c, &mut ctx, path, i as Nanos);
    }
    for (i, body) in ["A", "B", "C"].into_iter().enumerate() {
        respond(&mut c, &mut ctx, body, 10 + i as Nanos);
    }
    c.on_close(&mut ctx, 20);
    let got = pairs(&ctx.out);
    assert_eq!(got, vec![("/a".into(), None), ("/b".into(), Some("B".into())), ("/c".into(), Some("C".into()))]);
    assert_eq!((ctx.stats.answers_to_sent_out, ctx.stats.orphan_responses), (1, 0));
}

#[test]
fn past_the_shard_bound_the_oldest_request_of_any_connection_comes_out() {
    // Room for three such requests (about 280 bytes each).
    let mut ctx = ctx(1000, 900);
    let (mut quiet, mut busy) = (conn(&mut ctx, 5000), conn(&mut ctx, 5001));
    request(&mut quiet, &mut ctx, "/old", 0);
    for i in 1..=3 {
        request(&mut busy, &mut ctx, &format!("/new{i}"), i);
    }
    assert_eq!(pairs(&ctx.out), vec![("/old".to_string(), None)]);
    assert_eq!(ctx.pending.parked(), 3);
    assert_eq!(ctx.pending.oldest(), Some(1), "the quiet connection no longer holds the watermark");
    // The quiet connection's answer was owed to /old; /late gets its own.
    respond(&mut quiet, &mut ctx, "OLD", 4);
    request(&mut quiet, &mut ctx, "/late", 5);
    respond(&mut quiet, &mut ctx, "LATE", 6);
    let last = pairs(&ctx.out).pop().unwrap();
    assert_eq!(last, ("/late".to_string(), Some("LATE".to_string())));
    assert_eq!(ctx.stats.answers_to_sent_out, 1);
    quiet.on_close(&mut ctx, 7);
    busy.on_close(&mut ctx, 7);
    assert_eq!(ctx.out.len(), 5);
    assert_eq!(ctx.pending.parked(), 0);
}

#[test]
fn answers_after_one_owed_to_a_request_sent_out_pair_in_order() {
    let mut ctx = ctx(1, 64 << 20);
    let mut c = conn(&mut ctx, 5000);
    request(&mut c, &mut ctx, "/1", 0);
    request(&mut c, &mut ctx, "/2", 1);
    respond(&mut c, &mut ctx, "one", 2);
    respond(&mut c, &mut ctx, "two", 3);
    c.on_close(&mut ctx, 4);
    assert_eq!(pairs(&ctx.out), vec![("/1".into(), None), ("/2".into(), Some("two".into()))]);
}
