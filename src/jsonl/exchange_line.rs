//! An exchange as one line of the `pairs` JSON (schema in the README),
//! written by hand rather than through serde: escaping body text is most
//! of the cost of `pairs`, and [`write_json_str`] does it a word at a time.

use base64::Engine;

use crate::calendar::format_ts;
use crate::exchange::{Exchange, Header, Http2Info, Payload};

/// Appends this exchange as one JSON object and a newline.
pub fn write_exchange_line(exchange: &Exchange, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"client\":\"");
    out.extend_from_slice(exchange.client.to_string().as_bytes());
    out.extend_from_slice(b"\",\"server\":\"");
    out.extend_from_slice(exchange.server.to_string().as_bytes());
    out.extend_from_slice(b"\",\"request\":{\"ts\":");
    let r = &exchange.request;
    write_json_str(out, &format_ts(r.ts));
    out.extend_from_slice(b",\"method\":");
    write_json_str(out, &r.method);
    out.extend_from_slice(b",\"uri\":");
    write_json_str(out, &r.uri);
    out.extend_from_slice(b",\"version\":");
    write_json_str(out, &r.version);
    write_payload(out, &r.payload);
    if let Some(h2) = exchange.http2.as_deref() {
        write_trailers(out, &h2.request_trailers);
    }
    out.extend_from_slice(b"},\"response\":");
    match &exchange.response {
        None => out.extend_from_slice(b"null"),
        Some(resp) => {
            out.extend_from_slice(b"{\"ts\":");
            write_json_str(out, &format_ts(resp.ts));
            out.extend_from_slice(format!(",\"status\":{},\"reason\":", resp.status).as_bytes());
            write_json_str(out, &resp.reason);
            out.extend_from_slice(b",\"version\":");
            write_json_str(out, &resp.version);
            write_payload(out, &resp.payload);
            if let Some(reason) = &resp.malformed {
                out.extend_from_slice(b",\"malformed\":");
                write_json_str(out, reason);
            }
            if let Some(h2) = exchange.http2.as_deref() {
                write_trailers(out, &h2.response_trailers);
            }
            out.push(b'}');
        }
    }
    out.extend_from_slice(b",\"latency_us\":");
    match exchange.latency_us() {
        Some(us) => out.extend_from_slice(us.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    if exchange.gap {
        out.extend_from_slice(b",\"gap\":true");
    }
    if let Some(h2) = exchange.http2.as_deref() {
        write_http2(out, h2);
    }
    out.extend_from_slice(b"}\n");
}

/// `,"stream_id":N`, then `"headers_incomplete":true` and `"reset":"CODE"`
/// when so.
fn write_http2(out: &mut Vec<u8>, h2: &Http2Info) {
    out.extend_from_slice(format!(",\"stream_id\":{}", h2.stream_id).as_bytes());
    if h2.headers_incomplete {
        out.extend_from_slice(b",\"headers_incomplete\":true");
    }
    if let Some(code) = &h2.reset {
        out.extend_from_slice(b",\"reset\":");
        write_json_str(out, code);
    }
}

/// `,"trailers":[[name,value],...]` when there are any.
fn write_trailers(out: &mut Vec<u8>, trailers: &[Header]) {
    if trailers.is_empty() {
        return;
    }
    out.extend_from_slice(b",\"trailers\":");
    write_header_list(out, trailers);
}

/// `,"headers":[...],"body":...,"body_len":N,"truncated":B`: `body` when
/// the bytes are UTF-8, `body_base64` otherwise.
fn write_payload(out: &mut Vec<u8>, p: &Payload) {
    out.extend_from_slice(b",\"headers\":");
    write_header_list(out, &p.headers);
    match std::str::from_utf8(&p.body) {
        Ok(text) => {
            out.extend_from_slice(b",\"body\":");
            write_json_str(out, text);
        }
        Err(_) => {
            out.extend_from_slice(b",\"body_base64\":\"");
            out.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(&p.body).as_bytes());
            out.push(b'"');
        }
    }
    out.extend_from_slice(format!(",\"body_len\":{},\"truncated\":{}", p.body_len, p.truncated).as_bytes());
}

/// `[[name,value],...]`.
fn write_header_list(out: &mut Vec<u8>, headers: &[Header]) {
    out.push(b'[');
    for (i, (name, value)) in headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        write_json_str(out, name);
        out.push(b',');
        write_json_str(out, value);
        out.push(b']');
    }
    out.push(b']');
}

/// Appends `s` as a JSON string, escaped as serde_json does (quote,
/// backslash, control characters; other text as is). Eight bytes are
/// checked at once; only words holding a byte to escape go byte by byte.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    let needs_escape = |w: u64| {
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
        control | has_zero(w ^ (ONES * b'"' as u64)) | has_zero(w ^ (ONES * b'\\' as u64))
    };
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut clean_from = 0;
    let mut i = 0;
    while i + 8 <= bytes.len() {
        let word = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        if needs_escape(word) == 0 {
            i += 8;
            continue;
        }
        for at in i..i + 8 {
            if let Some(escape) = escape_of(bytes[at]) {
                out.extend_from_slice(&bytes[clean_from..at]);
                push_escape(out, bytes[at], escape);
                clean_from = at + 1;
            }
        }
        i += 8;
    }
    for at in i..bytes.len() {
        if let Some(escape) = escape_of(bytes[at]) {
            out.extend_from_slice(&bytes[clean_from..at]);
            push_escape(out, bytes[at], escape);
            clean_from = at + 1;
        }
    }
    out.extend_from_slice(&bytes[clean_from..]);
    out.push(b'"');
}

fn escape_of(b: u8) -> Option<u8> {
    match b {
        b'"' => Some(b'"'),
        b'\\' => Some(b'\\'),
        b'\n' => Some(b'n'),
        b'\r' => Some(b'r'),
        b'\t' => Some(b't'),
        0x08 => Some(b'b'),
        0x0c => Some(b'f'),
        0..=0x1f => Some(b'u'),
        _ => None,
    }
}

fn push_escape(out: &mut Vec<u8>, byte: u8, escape: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'\\');
    out.push(escape);
    if escape == b'u' {
        out.extend_from_slice(&[b'0', b'0', HEX[(byte >> 4) as usize], HEX[(byte & 15) as usize]]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Request;

    #[test]
    fn binary_bodies_go_to_body_base64() {
        let payload = Payload { body: vec![0xff, 0x00], body_len: 2, ..Default::default() };
        let request = Request { ts: 0, method: "POST".into(), uri: "/".into(), version: "HTTP/1.1".into(), payload };
        let exchange = Exchange {
            client: "10.0.0.2:5000".parse().unwrap(),
            server: "10.0.0.1:80".parse().unwrap(),
            request,
            response: None,
            gap: false,
            http2: None,
        };
        let mut line = Vec::new();
        write_exchange_line(&exchange, &mut line);
        let json: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(json["request"]["body_base64"], "/wA=");
        assert!(json["request"].get("body").is_none());
        assert!(json["response"].is_null());
    }

    proptest::proptest! {
        /// The word-at-a-time escaper writes exactly what serde_json writes.
        #[test]
        fn strings_are_escaped_exactly_like_serde_json(s in "(\\PC|[\\x00-\\x1f\"\\\\])*") {
            let mut ours = Vec::new();
            write_json_str(&mut ours, &s);
            proptest::prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&s).unwrap());
        }
    }
}
