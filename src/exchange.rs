//! The unit of work after the HTTP stage: one request and the response that
//! answered it, as seen on the wire. Produced by [`crate::http`], consumed by
//! `pairs` (printed as JSON Lines) and by replay.

use std::net::SocketAddr;

use base64::Engine;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// Capture time in nanoseconds since the Unix epoch.
pub type Nanos = i64;

/// One header as sent: the name keeps its case; the value is decoded lossily
/// (obs-text bytes become U+FFFD), which is what a JSON consumer can use.
pub type Header = (String, String);

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
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
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
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub request: Request,
    pub response: Option<Response>,
    /// A hole in the captured stream (lost packet) touched this exchange.
    pub gap: bool,
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

/// RFC 3339 with microseconds, UTC, the form of every `ts` we print.
pub fn format_ts(ts: Nanos) -> String {
    chrono::DateTime::from_timestamp_nanos(ts).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

struct Ts(Nanos);

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_ts(self.0))
    }
}

/// Writes `body` (valid UTF-8) or `body_base64` (anything else), then the
/// length and truncation fields common to both messages.
fn serialize_payload<M: SerializeMap>(map: &mut M, p: &Payload) -> Result<(), M::Error> {
    map.serialize_entry("headers", &p.headers)?;
    match std::str::from_utf8(&p.body) {
        Ok(text) => map.serialize_entry("body", text)?,
        Err(_) => map.serialize_entry("body_base64", &base64::engine::general_purpose::STANDARD.encode(&p.body))?,
    }
    map.serialize_entry("body_len", &p.body_len)?;
    map.serialize_entry("truncated", &p.truncated)
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("ts", &Ts(self.ts))?;
        map.serialize_entry("method", &self.method)?;
        map.serialize_entry("uri", &self.uri)?;
        map.serialize_entry("version", &self.version)?;
        serialize_payload(&mut map, &self.payload)?;
        map.end()
    }
}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("ts", &Ts(self.ts))?;
        map.serialize_entry("status", &self.status)?;
        map.serialize_entry("reason", &self.reason)?;
        map.serialize_entry("version", &self.version)?;
        serialize_payload(&mut map, &self.payload)?;
        map.end()
    }
}

impl Serialize for Exchange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("client", &self.client.to_string())?;
        map.serialize_entry("server", &self.server.to_string())?;
        map.serialize_entry("request", &self.request)?;
        map.serialize_entry("response", &self.response)?;
        map.serialize_entry("latency_us", &self.latency_us())?;
        if self.gap {
            map.serialize_entry("gap", &true)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_with_microseconds_in_utc() {
        assert_eq!(format_ts(1_705_314_600_123_456_789), "2024-01-15T10:30:00.123456Z");
    }

    #[test]
    fn binary_bodies_go_to_body_base64() {
        let payload = Payload { body: vec![0xff, 0x00], body_len: 2, ..Default::default() };
        let request = Request { ts: 0, method: "POST".into(), uri: "/".into(), version: "HTTP/1.1".into(), payload };
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["body_base64"], "/wA=");
        assert!(json.get("body").is_none());
    }
}
