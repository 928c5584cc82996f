//! HAR 1.2 export (`pairs --format har`): exchanges in (request-time
//! order, from the pipeline), one HAR document out, which browser devtools
//! and HAR viewers open. Entries are written one at a time, so memory does
//! not grow with the capture. Bodies are the bytes on the wire: text when
//! they are UTF-8, base64 otherwise (`content.encoding`; a request body,
//! for which HAR 1.2 has no encoding field, says so in `_encoding`).
//! Timings come from the capture: `wait` is from the request's first byte
//! to the answer's. Secret header values (credentials, cookies) are
//! redacted. The report's examples (from outcome lines) go out as HAR
//! too ([`examples`]).

use std::io::Write;

use base64::Engine as _;
use crossbeam_channel::Receiver;
use serde_json::{Value, json};

use crate::calendar::format_ts;
use crate::exchange::{Exchange, Payload};

pub mod examples;

/// Writes every exchange of `batches` as one HAR document; returns how
/// many entries were written. On a write error the input is still drained
/// (so the pipeline can finish) and the error returned.
pub fn write_har(batches: Receiver<Vec<Exchange>>, out: &mut impl Write) -> std::io::Result<u64> {
    let head = json!({"version": "1.2", "creator": {"name": "shadowtap", "version": env!("CARGO_PKG_VERSION")}});
    let head = serde_json::to_string(&head)?;
    let mut result = writeln!(out, "{{\"log\":{},\"pages\":[],\"entries\":[", &head[..head.len() - 1]);
    let mut written = 0u64;
    for batch in batches {
        for exchange in &batch {
            if result.is_err() {
                continue;
            }
            let separator = if written == 0 { "" } else { ",\n" };
            result = out
                .write_all(separator.as_bytes())
                .and_then(|_| serde_json::to_writer(&mut *out, &entry(exchange)).map_err(std::io::Error::from));
            written += 1;
        }
    }
    result?;
    out.write_all(b"\n]}}\n")?;
    Ok(written)
}

fn headers(p: &Payload) -> Vec<Value> {
    // Secret values never leave the machine in a HAR file.
    crate::redact::redactor()
        .headers(&p.headers)
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect()
}

/// The body as HAR text: (text, Some("base64")) when not UTF-8.
fn body_text(body: &[u8]) -> (String, Option<&'static str>) {
    match std::str::from_utf8(body) {
        Ok(text) => (text.to_string(), None),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), Some("base64")),
    }
}

/// `name=value` pairs of the request's query, as sent (not decoded).
pub(crate) fn query_string(uri: &str) -> Vec<Value> {
    let Some((_, query)) = uri.split_once('?') else { return Vec::new() };
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            json!({"name": name, "value": value})
        })
        .collect()
}

/// An absolute URL: HAR wants one, the wire has a path and a Host.
fn url(exchange: &Exchange) -> String {
    let uri = &exchange.request.uri;
    if uri.starts_with("http://") || uri.starts_with("https://") {
        return uri.clone();
    }
    let host = exchange.request.payload.header("host").map_or_else(|| exchange.server.to_string(), str::to_string);
    format!("http://{host}{uri}")
}

fn mime_type(p: &Payload) -> &str {
    p.header("content-type").unwrap_or("")
}

fn entry(exchange: &Exchange) -> Value {
    let r = &exchange.request;
    let mut request = json!({
        "method": r.method,
        "url": url(exchange),
        "httpVersion": r.version,
        "cookies": [],
        "headers": headers(&r.payload),
        "queryString": query_string(&r.uri),
        "headersSize": -1,
        "bodySize": r.payload.body_len,
    });
    if r.payload.body_len > 0 {
        let (text, encoding) = body_text(&r.payload.body);
        let mut post = json!({"mimeType": mime_type(&r.payload), "text": text});
        if let Some(encoding) = encoding {
            post["_encoding"] = encoding.into();
        }
        request["postData"] = post;
    }
    let (response, wait_ms) = match &exchange.response {
        Some(resp) => {
            let (text, encoding) = body_text(&resp.payload.body);
            let mut content =
                json!({"size": resp.payload.body_len, "mimeType": mime_type(&resp.payload), "text": text});
            if let Some(encoding) = encoding {
                content["encoding"] = encoding.into();
            }
            if resp.payload.truncated {
                content["comment"] = "body cut at the capture's body limit".into();
            }
            let response = json!({
                "status": resp.status,
                "statusText": resp.reason,
                "httpVersion": resp.version,
                "cookies": [],
                "headers": headers(&resp.payload),
                "content": content,
                "redirectURL": resp.payload.header("location").unwrap_or(""),
                "headersSize": -1,
                "bodySize": resp.payload.body_len,
            });
            (response, (resp.ts - r.ts).max(0) as f64 / 1e6)
        }
        None => (
            json!({
                "status": 0, "statusText": "", "httpVersion": "", "cookies": [], "headers": [],
                "content": {"size": 0, "mimeType": ""}, "redirectURL": "", "headersSize": -1, "bodySize": -1,
                "comment": "no answer captured",
            }),
            0.0,
        ),
    };
    json!({
        "startedDateTime": format_ts(r.ts),
        "time": wait_ms,
        "request": request,
        "response": response,
        "cache": {},
        "timings": {"send": 0, "wait": wait_ms, "receive": 0},
        "serverIPAddress": exchange.server.ip().to_string(),
        "connection": exchange.client.port().to_string(),
    })
}
