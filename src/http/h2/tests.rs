//! The hand-over to HTTP/2 seen from the connection handler.

use super::super::*;
use crate::http2::frames::{DATA, HEADERS, PING, WINDOW_UPDATE};

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

/// `:method GET`, `:path /x` (literal), `:authority svc` (literal).
fn request_block() -> Vec<u8> {
    let mut block = vec![0x82, 0x04, 0x02];
    block.extend(b"/x");
    block.extend([0x01, 0x03]);
    block.extend(b"svc");
    block
}

fn joined(ports: Vec<u16>, pieces: &[(Dir, &[u8])]) -> Ctx {
    let mut ctx = Ctx::new(Config { ports, ..Config::default() });
    let key = FlowKey { a: "10.0.0.2:5000".parse().unwrap(), b: "10.0.0.1:80".parse().unwrap() };
    let mut conn = Conn::open(&mut ctx, key, None);
    for (i, (dir, bytes)) in pieces.iter().enumerate() {
        conn.on_data(&mut ctx, *dir, bytes, i as Nanos);
    }
    conn.on_close(&mut ctx, pieces.len() as Nanos);
    ctx
}

#[test]
fn joined_late_behind_a_large_data_frame_is_found() {
    // The capture starts inside a 40 KB DATA frame of the server's.
    let mid_data = vec![b'x'; 40_000];
    let mut client = frame(WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]);
    client.extend(frame(PING, 0, 0, &[0; 8]));
    client.extend(frame(HEADERS, 0x5, 3, &request_block()));
    let mut server = frame(HEADERS, 0x4, 3, &[0x88]);
    server.extend(frame(DATA, 0x1, 3, b"ok"));
    let ctx = joined(vec![80], &[(1, &mid_data), (0, &client), (1, &server)]);
    assert_eq!(ctx.out.len(), 1, "{:?}", ctx.out);
    let e = &ctx.out[0];
    assert_eq!(
        (e.request.method.as_str(), e.request.uri.as_str(), e.request.version.as_str()),
        ("GET", "/x", "HTTP/2")
    );
    assert_eq!(e.response.as_ref().unwrap().payload.body, b"ok");
    assert_eq!(ctx.stats.http2.connections, 1);
    assert_eq!(ctx.stats.exchanges, 1);
    assert!(ctx.pending.oldest().is_none(), "nothing holds the watermark");
}

#[test]
fn joined_late_http1_is_not_taken_for_http2() {
    let ctx = joined(
        vec![80],
        &[(0, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"), (1, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")],
    );
    assert_eq!(ctx.out.len(), 1);
    assert_eq!(ctx.out[0].request.version, "HTTP/1.1");
    assert_eq!(ctx.stats.http2.connections, 0);
}

#[test]
fn without_a_known_client_a_late_join_is_not_read_as_http2() {
    let client = [
        frame(WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]),
        frame(PING, 0, 0, &[0; 8]),
        frame(HEADERS, 0x5, 3, &request_block()),
    ]
    .concat();
    let ctx = joined(Vec::new(), &[(0, &client)]);
    assert!(ctx.out.is_empty());
    assert_eq!(ctx.stats.http2.connections, 0);
}
