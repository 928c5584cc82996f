//! The unit of work after the HTTP stage: one request and the response that
//! answered it, as seen on the wire. Produced by [`crate::http`], consumed by
//! `pairs` (printed as JSON Lines, [`crate::jsonl`]) and by replay. Data
//! only: how it is written and how times print live elsewhere.

use std::net::SocketAddr;

/// Capture time in nanoseconds since the Unix epoch.
pub type Nanos = i64;

/// One header as sent: the name keeps its case. Name and value are text as
/// [`header_text`] makes it: the wire bytes themselves when they are UTF-8,
/// else a lossless escape of them, so the candidate is sent exactly what
/// production received ([`header_bytes`]).
pub type Header = (String, String);

/// Starts a header text that stands for bytes that are not UTF-8. A header
/// never holds NUL on the wire (RFC 9110 section 5.5; httparse refuses
/// it), so no real value is misread as escaped.
const RAW_MARK: char = '\0';

/// Header bytes as text, losslessly: UTF-8 as it is; anything else (Latin-1
/// `caf\xe9`, stray obs-text) as U+0000 then one char per byte, U+0000 to
/// U+00FF (`"\u0000caf\u00e9"`). What JSON output shows, and what
/// [`header_bytes`] turns back into the wire bytes.
pub fn header_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.starts_with(RAW_MARK) => text.to_owned(),
        _ => std::iter::once(RAW_MARK).chain(bytes.iter().map(|&b| char::from(b))).collect(),
    }
}

/// The wire bytes a [`header_text`] stands for.
pub fn header_bytes(text: &str) -> std::borrow::Cow<'_, [u8]> {
    match text.strip_prefix(RAW_MARK) {
        // Every char of an escape is below U+0100 by construction; one that
        // is not (a hand-edited saved capture) is kept as its UTF-8.
        Some(escaped) if escaped.chars().all(|c| (c as u32) < 0x100) => {
            escaped.chars().map(|c| c as u32 as u8).collect::<Vec<u8>>().into()
        }
        _ => text.as_bytes().into(),
    }
}

/// What both requests and responses carry after their start line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Payload {
    pub headers: Vec<Header>,
    /// Body bytes as on the wire, de-chunked, at most the body limit.
    pub body: Vec<u8>,
    /// Full body length seen on the wire (after de-chunking), even when
    /// `body` was cut at the limit.
    pub body_len: u64,
    pub truncated: bool,
}

impl Payload {
    /// First value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::semantics::first_header(&self.headers, name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Time of the packet that carried the first byte of the request line.
    pub ts: Nanos,
    pub method: String,
    pub uri: String,
    pub version: String,
    pub payload: Payload,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Time of the packet that carried the first byte of the status line.
    pub ts: Nanos,
    pub status: u16,
    pub reason: String,
    pub version: String,
    pub payload: Payload,
    /// Why the answer's framing was broken (a server bug), when it was: it
    /// was read as a browser would, its body up to the next status line or
    /// close.
    pub malformed: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub request: Request,
    pub response: Option<Response>,
    /// A hole in the captured stream (lost packet) touched this exchange.
    pub gap: bool,
    /// What only an HTTP/2 stream has (None for HTTP/1).
    pub http2: Option<Box<Http2Info>>,
}

/// The HTTP/2 side of an exchange: one stream of a connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Http2Info {
    pub stream_id: u32,
    /// A header field referred to an HPACK table entry made before the
    /// capture saw the connection (or after a gap): the headers shown are
    /// not all there were, so the exchange is not replayed.
    pub headers_incomplete: bool,
    /// The stream was reset (RST_STREAM): its error code's name.
    pub reset: Option<String>,
    pub request_trailers: Vec<Header>,
    pub response_trailers: Vec<Header>,
}

impl Exchange {
    /// An HTTP/2 exchange whose headers are not all known.
    pub fn headers_incomplete(&self) -> bool {
        self.http2.as_ref().is_some_and(|h| h.headers_incomplete)
    }
}

impl Exchange {
    /// First packet of the request to first packet of the response.
    pub fn latency_us(&self) -> Option<u64> {
        let response = self.response.as_ref()?;
        Some((response.ts - self.request.ts).max(0) as u64 / 1_000)
    }

    /// A rough size used for memory accounting of queued exchanges.
    pub fn approx_bytes(&self) -> usize {
        let payload = |p: &Payload| p.body.len() + p.headers.iter().map(|(n, v)| n.len() + v.len() + 16).sum::<usize>();
        256 + self.request.uri.len()
            + payload(&self.request.payload)
            + self.response.as_ref().map_or(0, |r| payload(&r.payload))
    }
}

/// Exchanges for unit tests: a GET of `uri` with these headers and body,
/// no answer yet (set `response` as a test needs).
#[cfg(test)]
pub(crate) fn test_get(uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Exchange {
    Exchange {
        client: "127.0.0.1:1".parse().expect("an address"),
        server: "127.0.0.1:2".parse().expect("an address"),
        request: Request {
            ts: 0,
            method: "GET".into(),
            uri: uri.into(),
            version: "HTTP/1.1".into(),
            payload: Payload {
                headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
                body: body.to_vec(),
                ..Default::default()
            },
        },
        response: None,
        gap: false,
        http2: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bytes_round_trip_through_text() {
        let cases: [&[u8]; 6] = [b"caf\xe9", b"plain", "caf\u{e9}".as_bytes(), b"\0lead", b"\xff\xfe\x80", b""];
        for bytes in cases {
            assert_eq!(&*header_bytes(&header_text(bytes)), bytes, "{bytes:?}");
        }
        assert_eq!(header_text(b"caf\xe9"), "\u{0}caf\u{e9}");
        assert_eq!(header_text("café".as_bytes()), "café", "UTF-8 stays as it is");
        assert_ne!(header_text(b"caf\xe9"), header_text("café".as_bytes()), "Latin-1 is not UTF-8");
    }
}
