//! Exchanges built from a conversation fed straight to a connection's
//! handler (no reassembly): answers with broken framing, early answers.

use super::*;

/// Feeds each (direction, bytes) piece in turn (0 client, 1 server), then
/// closes; returns the exchanges.
fn converse(pieces: &[(Dir, &[u8])]) -> Vec<Exchange> {
    let mut ctx = Ctx::new(Config::default());
    let key = FlowKey { a: "10.0.0.2:5000".parse().unwrap(), b: "10.0.0.1:80".parse().unwrap() };
    let mut conn = Conn::open(&mut ctx, key, Some(0));
    for (i, (dir, bytes)) in pieces.iter().enumerate() {
        conn.on_data(&mut ctx, *dir, bytes, i as Nanos);
    }
    conn.on_close(&mut ctx, pieces.len() as Nanos);
    ctx.out
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

/// (status, body, malformed) of each answer, in request order.
fn answers(exchanges: &[Exchange]) -> Vec<Option<(u16, String, Option<String>)>> {
    exchanges
        .iter()
        .map(|e| {
            let r = e.response.as_ref()?;
            Some((r.status, String::from_utf8_lossy(&r.payload.body).into_owned(), r.malformed.clone()))
        })
        .collect()
}

#[test]
fn a_bare_cr_answer_is_kept_and_the_next_one_too() {
    let (a, b) = (get("/a"), get("/b"));
    let got = converse(&[
        (0, &a),
        (1, b"HTTP/1.1 200 OK\rContent-Length: 5\r\r"),
        (1, b"hello"),
        (0, &b),
        (1, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    assert_eq!(
        answers(&got),
        vec![Some((200, "hello".into(), Some(lenient::BARE_CR.into()))), Some((200, "ok".into(), None))]
    );
}

/// A bare-CR head right after a body read up to the next status line: its
/// "status line" runs to the first LF, through head and body.
#[test]
fn an_answer_read_to_the_next_status_line_gives_way_to_a_bare_cr_one() {
    let (a, b, c) = (get("/a"), get("/b"), get("/c"));
    let got = converse(&[
        (0, &a),
        (1, b"HTTP/1.1 200 OK\r\nTransfer-Encoding:  chunked\r\n\r\n"),
        (1, b"not chunked\n"),
        (0, &b),
        (1, b"HTTP/1.1 200 OK\rContent-Length: 5\r\r"),
        (1, b"hello\n"),
        (0, &c),
        (1, b"HTTP/1.1 201 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    assert_eq!(
        answers(&got),
        vec![
            Some((200, "not chunked\n".into(), Some(lenient::NOT_CHUNKED.into()))),
            Some((200, "hello".into(), Some(lenient::BARE_CR.into()))),
            Some((201, "ok".into(), None)),
        ]
    );
}

#[test]
fn an_answer_before_the_request_head_ended_is_paired_with_what_arrived() {
    let got = converse(&[
        (0, b"GET /big HTTP/1.1\r\nHost: x\r\nX-Pad: ppp"),
        (1, b"HTTP/1.1 431 Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n"),
        (0, b"pppp\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n"),
    ]);
    assert_eq!(got.len(), 1, "{got:?}");
    let (request, response) = (&got[0].request, got[0].response.as_ref().unwrap());
    assert_eq!((request.method.as_str(), request.uri.as_str(), request.payload.truncated), ("GET", "/big", true));
    assert_eq!(request.payload.headers, vec![("Host".to_string(), "x".to_string())]);
    assert_eq!(response.status, 431);
}
