//! Unit tests of `client.rs`.

use super::*;

fn captured(method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
    Request {
        ts: 0,
        method: method.into(),
        uri: uri.into(),
        version: "HTTP/1.1".into(),
        payload: crate::exchange::Payload {
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body: body.to_vec(),
            body_len: body.len() as u64,
            truncated: false,
        },
    }
}

fn client(url: &str, toml: &str) -> CandidateClient {
    let config = crate::replay::config::Config::parse(&format!("[candidate]\n{toml}\n"), "c").unwrap();
    CandidateClient::new(url, &config.candidate, 1 << 20).unwrap()
}

/// The request line and the headers (lowercase names, in order) of
/// what goes on the wire, and the body.
fn on_the_wire(wire: &[u8]) -> (String, Vec<(String, String)>, Vec<u8>) {
    let end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = std::str::from_utf8(&wire[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap().to_string();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(": ").unwrap();
            (n.to_ascii_lowercase(), v.to_string())
        })
        .collect();
    (start, headers, wire[end + 4..].to_vec())
}

const HOP_BY_HOP_AND_FRAMING: [(&str, &str); 9] = [
    ("Connection", "keep-alive, x-foo"),
    ("Keep-Alive", "timeout=5"),
    ("Proxy-Connection", "keep-alive"),
    ("TE", "trailers"),
    ("Trailer", "x-sum"),
    ("Transfer-Encoding", "chunked"),
    ("Upgrade", "h2c"),
    ("Content-Length", "999"),
    ("Expect", "100-continue"),
];

#[test]
fn a_request_is_rewritten_for_the_candidate() {
    let mut headers = vec![("Host", "legacy.example"), ("Accept", "application/json"), ("X-Shadowtap-Replay", "0")];
    headers.extend(HOP_BY_HOP_AND_FRAMING);
    headers.push(("X-Bad", "a\r\nInjected: yes"));
    let request = captured("POST", "http://legacy.example/api/x?q=1", &headers, b"{\"a\":1}");
    let c = client("http://127.0.0.1:8081/base/", "");
    let (start, headers, body) = on_the_wire(&c.wire_request(&request, &request.uri).unwrap());
    assert_eq!(start, "POST /base/api/x?q=1 HTTP/1.1", "origin form under the candidate's base path");
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    let want = ["host", "accept", "x-forwarded-host", "x-forwarded-proto", "x-shadowtap-replay", "content-length"];
    assert_eq!(names, want, "{headers:?}");
    assert_eq!(headers[0].1, "127.0.0.1:8081", "Host is the candidate's by default");
    assert_eq!((headers[2].1.as_str(), headers[3].1.as_str()), ("legacy.example", "http"), "what production was asked");
    assert_eq!(headers[4].1, "1", "our marker, once, replacing a captured one");
    assert_eq!((headers[5].1.as_str(), body.as_slice()), ("7", &b"{\"a\":1}"[..]));
}

#[test]
fn forwarded_headers_only_when_the_host_is_rewritten_and_not_twice() {
    let names = |headers: &[(&str, &str)], toml: &str| {
        let request = captured("GET", "/x", headers, b"");
        let (_, sent, _) = on_the_wire(&client("http://127.0.0.1:8081", toml).wire_request(&request, "/x").unwrap());
        sent.into_iter().filter(|(n, _)| n.starts_with("x-forwarded")).collect::<Vec<_>>()
    };
    assert!(names(&[("Host", "api")], "host_header = \"keep\"").is_empty());
    assert!(names(&[("Host", "api")], "forwarded_headers = false").is_empty());
    let behind_proxy = names(&[("Host", "api"), ("X-Forwarded-Host", "www"), ("X-Forwarded-Proto", "https")], "");
    assert_eq!(behind_proxy, [("x-forwarded-host".into(), "www".into()), ("x-forwarded-proto".into(), "https".into())]);
    let c = client("http://127.0.0.1:8081", "");
    let origin = c.origin_rewrite(&captured("GET", "/x", &[("Host", "api.example.com")], b"")).unwrap();
    assert_eq!(
        (origin.candidate.as_str(), origin.recorded.as_str()),
        ("http://127.0.0.1:8081", "http://api.example.com")
    );
    let tls = c.origin_rewrite(&captured("GET", "/x", &[("Host", "api"), ("X-Forwarded-Proto", "https")], b""));
    assert_eq!(tls.unwrap().recorded, "https://api");
    assert!(
        client("http://127.0.0.1:8081", "host_header = \"keep\"")
            .origin_rewrite(&captured("GET", "/x", &[("Host", "api")], b""))
            .is_none()
    );
}

#[test]
fn host_header_modes_and_bodiless_requests() {
    let request = captured("GET", "/x", &[("Host", "legacy.example")], b"");
    let host = |toml: &str| {
        let (_, headers, _) = on_the_wire(&client("http://127.0.0.1:8081", toml).wire_request(&request, "/x").unwrap());
        assert!(!headers.iter().any(|(n, _)| n == "content-length"), "a GET without a body has no length");
        headers.iter().filter(|(n, _)| n == "host").map(|(_, v)| v.clone()).collect::<Vec<_>>()
    };
    assert_eq!(host(""), ["127.0.0.1:8081"]);
    assert_eq!(host("host_header = \"keep\""), ["legacy.example"]);
    assert_eq!(host("host_header = \"api.internal\""), ["api.internal"]);
    let no_host = captured("GET", "/x", &[], b"");
    let keep = client("http://127.0.0.1:8081", "host_header = \"keep\"");
    let (_, headers, _) = on_the_wire(&keep.wire_request(&no_host, "/x").unwrap());
    assert_eq!(
        headers,
        [("host".to_string(), "127.0.0.1:8081".to_string()), ("x-shadowtap-replay".into(), "1".into())]
    );
    let empty_post = captured("POST", "/x", &[], b"");
    let (_, headers, _) = on_the_wire(&keep.wire_request(&empty_post, "/x").unwrap());
    assert!(headers.contains(&("content-length".to_string(), "0".to_string())));
    let (_, headers, _) =
        on_the_wire(&client("http://127.0.0.1:1", "marker_header = \"\"").wire_request(&request, "/x").unwrap());
    assert!(!headers.iter().any(|(n, _)| n == "x-shadowtap-replay"), "no marker when configured off");
}

#[test]
fn bad_methods_and_targets_are_errors_not_requests() {
    let c = client("http://127.0.0.1:1", "");
    for (method, uri) in [("GE T", "/x"), ("", "/x"), ("GET", "/a b"), ("GET", "/a\r\nX: y"), ("GET", "no-slash")] {
        let request = captured(method, uri, &[], b"");
        assert!(c.wire_request(&request, uri).is_err(), "{method:?} {uri:?}");
    }
}

#[test]
fn both_clients_send_the_same_headers() {
    let mut headers = vec![("Host", "legacy.example"), ("Accept", "text/html"), ("Cookie", "a=1"), ("cookie", "b=2")];
    headers.extend(HOP_BY_HOP_AND_FRAMING);
    let request = captured("PUT", "/api/y", &headers, b"body");
    let c = client("http://127.0.0.1:8081/v2", "");
    let (_, ours, _) = on_the_wire(&c.wire_request(&request, &request.uri).unwrap());
    let hyper_request = c.build(&request, &request.uri).unwrap();
    assert_eq!(hyper_request.uri().path(), "/v2/api/y");
    let mut theirs: Vec<(String, String)> = hyper_request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap().to_string()))
        .collect();
    // hyper adds Content-Length itself from the body when it sends.
    theirs.push(("content-length".into(), "4".into()));
    let (mut ours, mut theirs) = (ours, theirs);
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
}

#[test]
fn token_bytes_are_rfc_9110_tchar() {
    for b in 0..=255u8 {
        let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        assert_eq!(is_token_byte(b), tchar, "{b:#04x}");
    }
}

#[test]
fn header_bytes_that_are_not_utf8_reach_the_wire_as_captured() {
    let head = b"GET /x HTTP/1.1\r\nHost: legacy\r\nX-Name: caf\xe9\r\nX-Raw: \xff\x80ok\r\n\r\n";
    let parsed = crate::http::head::parse_request(head).unwrap();
    let mut request = captured("GET", "/x", &[], b"");
    request.payload.headers = parsed.headers;
    let c = client("http://127.0.0.1:8081", "");
    let wire = c.wire_request(&request, &request.uri).unwrap();
    let has = |needle: &[u8]| wire.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"\r\nX-Name: caf\xe9\r\n"), "{}", String::from_utf8_lossy(&wire));
    assert!(has(b"\r\nX-Raw: \xff\x80ok\r\n"), "{}", String::from_utf8_lossy(&wire));
    let built = c.build(&request, &request.uri).unwrap();
    assert_eq!(built.headers()["x-name"].as_bytes(), b"caf\xe9", "the hyper path too");
}
