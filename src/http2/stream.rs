//! One HTTP/2 stream as it builds up: decoded header blocks and DATA of
//! both directions go in; once both sides ended (or the stream was reset)
//! it turns into one [`Exchange`]: pseudo-headers become the method, URI,
//! Host and status, later header blocks become trailers, and a field that
//! referred to an unknown HPACK entry marks the headers incomplete.

use std::net::SocketAddr;

use super::hpack::Field;
use crate::exchange::{Exchange, Header, Http2Info, Nanos, Payload, Request, Response, header_text};

pub const VERSION: &str = "HTTP/2";

#[derive(Debug, Default)]
pub(super) struct Stream {
    pub id: u32,
    pub request: Option<Request>,
    pub response: Option<Response>,
    pub request_trailers: Vec<Header>,
    pub response_trailers: Vec<Header>,
    pub request_done: bool,
    pub response_done: bool,
    pub incomplete: bool,
    pub reset: Option<u32>,
    pub gap: bool,
}

/// Pseudo-headers of a header block, and its other fields in order.
#[derive(Debug, Default)]
struct Split {
    method: Option<String>,
    path: Option<String>,
    authority: Option<String>,
    status: Option<String>,
    headers: Vec<Header>,
    unknown: bool,
}

fn split(fields: Vec<Field>) -> Split {
    let mut split = Split::default();
    for field in fields {
        let Field::Known { name, value } = field else {
            split.unknown = true;
            continue;
        };
        let value = header_text(&value);
        match name.as_slice() {
            b":method" => split.method = Some(value),
            b":path" => split.path = Some(value),
            b":authority" => split.authority = Some(value),
            b":status" => split.status = Some(value),
            // :scheme and :protocol are not headers of the HTTP/1 form.
            [b':', ..] => {}
            _ => split.headers.push((header_text(&name), value)),
        }
    }
    split
}

impl Stream {
    pub fn new(id: u32) -> Self {
        Stream { id, ..Default::default() }
    }

    /// A decoded header block from the client: the request's head the
    /// first time, its trailers after.
    pub fn request_headers(&mut self, fields: Vec<Field>, ts: Nanos, end_stream: bool) {
        let split = split(fields);
        self.incomplete |= split.unknown;
        self.request_done |= end_stream;
        if self.request.is_some() {
            self.request_trailers.extend(split.headers);
            return;
        }
        let mut headers = split.headers;
        if let Some(authority) = split.authority
            && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            headers.insert(0, ("host".into(), authority));
        }
        // A request without :method and :path is only possible when they
        // came from unknown entries (or CONNECT, without :path).
        self.incomplete |= split.method.is_none();
        self.request = Some(Request {
            ts,
            method: split.method.unwrap_or_default(),
            uri: split.path.unwrap_or_default(),
            version: VERSION.into(),
            payload: Payload { headers, ..Default::default() },
        });
    }

    /// A decoded header block from the server: an interim 1xx answer
    /// (skipped), the response's head, or its trailers. Returns whether
    /// it was an interim answer.
    pub fn response_headers(&mut self, fields: Vec<Field>, ts: Nanos, end_stream: bool) -> bool {
        let split = split(fields);
        self.incomplete |= split.unknown;
        self.response_done |= end_stream;
        if self.response.is_some() {
            self.response_trailers.extend(split.headers);
            return false;
        }
        let status = split.status.as_deref().and_then(|s| s.parse::<u16>().ok());
        if status.is_some_and(|s| (100..200).contains(&s)) && !end_stream {
            return true;
        }
        self.incomplete |= status.is_none();
        self.response = Some(Response {
            ts,
            status: status.unwrap_or(0),
            reason: String::new(),
            version: VERSION.into(),
            payload: Payload { headers: split.headers, ..Default::default() },
            malformed: None,
        });
        false
    }

    /// DATA bytes of one side, kept up to `limit`.
    pub fn data(&mut self, from_client: bool, data: &[u8], limit: usize) {
        let payload = if from_client {
            self.request.as_mut().map(|r| &mut r.payload)
        } else {
            self.response.as_mut().map(|r| &mut r.payload)
        };
        let Some(payload) = payload else { return };
        payload.body_len += data.len() as u64;
        let room = limit.saturating_sub(payload.body.len());
        if data.len() > room {
            payload.truncated = true;
        }
        payload.body.extend_from_slice(&data[..data.len().min(room)]);
    }

    pub fn is_finished(&self) -> bool {
        self.reset.is_some() || (self.request_done && self.response_done)
    }

    pub fn into_exchange(self, client: SocketAddr, server: SocketAddr) -> Option<Exchange> {
        let request = self.request?;
        Some(Exchange {
            client,
            server,
            request,
            response: self.response,
            gap: self.gap,
            http2: Some(Box::new(Http2Info {
                stream_id: self.id,
                headers_incomplete: self.incomplete,
                reset: self.reset.map(reset_name),
                request_trailers: self.request_trailers,
                response_trailers: self.response_trailers,
            })),
        })
    }
}

/// An RST_STREAM error code's name (RFC 9113 section 7).
pub fn reset_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES.get(code as usize).map_or_else(|| format!("0x{code:x}"), |n| n.to_string())
}
