//! The unit of work after the HTTP stage: one request and the response that
//! answered it, as seen on the wire. Produced by [`crate::http`], consumed by
//! `pairs` (printed as JSON Lines) and by replay.

use std::net::SocketAddr;

use base64::Engine;

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
    let secs = ts.div_euclid(1_000_000_000);
    let micros = ts.rem_euclid(1_000_000_000) / 1_000;
    let (days, second_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let mut text = [0u8; 27];
    let mut put = |at: usize, value: i64, width: usize| {
        let mut v = value;
        for i in (0..width).rev() {
            text[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    // i64 nanoseconds span the years 1677 to 2262: always four digits.
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, second_of_day / 3600, 2);
    put(14, second_of_day / 60 % 60, 2);
    put(17, second_of_day % 60, 2);
    put(20, micros, 6);
    for (at, sep) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (26, b'Z')] {
        text[at] = sep;
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Proleptic Gregorian (year, month, day) of a day count from 1970-01-01
/// (Howard Hinnant's civil_from_days). Called for every outcome line,
/// where chrono's general formatter showed in profiles.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl Exchange {
    /// Appends this exchange as one JSON object (the `pairs` schema, see the
    /// README) and a newline. Written by hand rather than through serde:
    /// escaping body text is most of the cost of `pairs`, and
    /// [`write_json_str`] does it a word at a time.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"client\":\"");
        out.extend_from_slice(self.client.to_string().as_bytes());
        out.extend_from_slice(b"\",\"server\":\"");
        out.extend_from_slice(self.server.to_string().as_bytes());
        out.extend_from_slice(b"\",\"request\":{\"ts\":");
        let r = &self.request;
        write_json_str(out, &format_ts(r.ts));
        out.extend_from_slice(b",\"method\":");
        write_json_str(out, &r.method);
        out.extend_from_slice(b",\"uri\":");
        write_json_str(out, &r.uri);
        out.extend_from_slice(b",\"version\":");
        write_json_str(out, &r.version);
        write_payload(out, &r.payload);
        out.extend_from_slice(b"},\"response\":");
        match &self.response {
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
                out.push(b'}');
            }
        }
        out.extend_from_slice(b",\"latency_us\":");
        match self.latency_us() {
            Some(us) => out.extend_from_slice(us.to_string().as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        if self.gap {
            out.extend_from_slice(b",\"gap\":true");
        }
        out.extend_from_slice(b"}\n");
    }
}

/// `,"headers":[...],"body":...,"body_len":N,"truncated":B`: `body` when
/// the bytes are UTF-8, `body_base64` otherwise.
fn write_payload(out: &mut Vec<u8>, p: &Payload) {
    out.extend_from_slice(b",\"headers\":[");
    for (i, (name, value)) in p.headers.iter().enumerate() {
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

    #[test]
    fn timestamps_print_with_microseconds_in_utc() {
        assert_eq!(format_ts(1_705_314_600_123_456_789), "2024-01-15T10:30:00.123456Z");
        for ts in [0, 1, -1, 999, 1_000_000_000, -86_400_000_000_123, 1_705_314_600_000_000_000, i64::MAX, i64::MIN] {
            let by_strftime = chrono::DateTime::from_timestamp_nanos(ts).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            assert_eq!(format_ts(ts), by_strftime, "{ts}");
        }
        // Every day of four centuries (leap years, century rules), at a
        // moving time of day.
        let mut ts = -4_102_444_800_000_000_000i64; // 1840-01-01
        while ts < 8_520_000_000_000_000_000 {
            let by_strftime = chrono::DateTime::from_timestamp_nanos(ts).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            assert_eq!(format_ts(ts), by_strftime, "{ts}");
            ts += 86_400_000_000_000 + 1_234_567_891;
        }
    }

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
        };
        let mut line = Vec::new();
        exchange.write_json_line(&mut line);
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
