//! The candidate's HTTP client. A captured request goes in, rewritten for
//! the candidate (its Host, no hop-by-hop headers, a marker header); the
//! candidate's status, headers, body and time to first byte come out.
//! http candidates go through our own HTTP/1.1 connections
//! ([`super::http1`]), https ones (or all, with `http_client = "hyper"`)
//! through hyper's keep-alive pool with rustls ([`super::tls`]).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::http::{HeaderName, HeaderValue, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub use super::answer::{CandidateAnswer, ClientError};
use super::config::CandidateConfig;
use super::http1::Http1Pool;
use super::tls::tls_config;
use crate::exchange::{Request, header_bytes, header_text};

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

pub struct CandidateClient {
    client: Client<Https, Full<Bytes>>,
    /// For http candidates: our own keep-alive connections (see
    /// [`Http1Pool`]); https goes through hyper's pooled client.
    http1: Option<Http1Pool>,
    base: Uri,
    /// The base's scheme and authority, and its path without a trailing
    /// slash: the target of each request is built from these.
    scheme: Scheme,
    authority: Authority,
    base_path: String,
    host_header: HostHeader,
    /// Add X-Forwarded-Host/-Proto when the Host is rewritten.
    forwarded: bool,
    marker: Option<(HeaderName, HeaderValue)>,
    timeout: Duration,
    body_limit: usize,
}

enum HostHeader {
    /// The candidate's authority (`None`: not a valid header value).
    Candidate(Option<HeaderValue>),
    Keep,
    /// A fixed value (`None`: not a valid header value).
    Fixed(Option<HeaderValue>),
}

/// Headers the client sets itself rather than passing on, besides the
/// hop-by-hop ones ([`crate::semantics::HOP_BY_HOP`]): framing, Host
/// (see `host_for`) and `Expect` (the request is sent in one piece).
const SET_BY_CLIENT: [&str; 3] = ["content-length", "host", "expect"];

impl CandidateClient {
    /// `body_limit`: answer body bytes kept (the capture's --body-limit: a
    /// recorded body is never longer, so a longer answer differs anyway).
    pub fn new(url: &str, config: &CandidateConfig, body_limit: usize) -> Result<CandidateClient, ClientError> {
        let bad = |reason: String| ClientError::BadUrl { url: url.to_string(), reason };
        let base: Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| bad(e.to_string()))?;
        match base.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err(bad("scheme must be http or https".into())),
        }
        if base.authority().is_none() {
            return Err(bad("no host".into()));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca_file = config.ca_file.as_deref().filter(|p| !p.as_os_str().is_empty());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(ca_file)?)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(https);
        let host_header = match config.host_header.as_str() {
            "candidate" | "" => {
                HostHeader::Candidate(base.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()))
            }
            "keep" => HostHeader::Keep,
            other => HostHeader::Fixed(HeaderValue::from_str(other).ok()),
        };
        let scheme = base.scheme().cloned().unwrap_or(Scheme::HTTP);
        let authority = base.authority().cloned().expect("checked above");
        let base_path = base.path().trim_end_matches('/').to_string();
        let marker = (!config.marker_header.is_empty())
            .then(|| {
                Some((
                    HeaderName::from_bytes(config.marker_header.as_bytes()).ok()?,
                    HeaderValue::from_str(&config.marker_value).ok()?,
                ))
            })
            .flatten();
        let own_client = config.http_client == super::config::HttpClient::Shadowtap;
        let http1 = (scheme == Scheme::HTTP && own_client).then(|| Http1Pool::new(&authority));
        Ok(CandidateClient {
            client,
            http1,
            base,
            scheme,
            authority,
            base_path,
            host_header,
            forwarded: config.forwarded_headers,
            marker,
            timeout: Duration::from_millis(config.timeout_ms),
            body_limit: body_limit.max(1),
        })
    }

    fn target(&self, uri: &str) -> Result<Uri, ClientError> {
        let path = crate::replay::endpoint::path_and_query(uri);
        // Usual case, without formatting and parsing the whole URL again.
        if path.starts_with('/') {
            let mut joined = String::with_capacity(self.base_path.len() + path.len());
            joined.push_str(&self.base_path);
            joined.push_str(path);
            if let Ok(pq) = PathAndQuery::try_from(joined) {
                let mut parts = hyper::http::uri::Parts::default();
                parts.scheme = Some(self.scheme.clone());
                parts.authority = Some(self.authority.clone());
                parts.path_and_query = Some(pq);
                if let Ok(target) = Uri::from_parts(parts) {
                    return Ok(target);
                }
            }
        }
        let base_path = self.base.path().trim_end_matches('/');
        let text = format!(
            "{}://{}{}{}",
            self.base.scheme_str().unwrap_or("http"),
            self.base.authority().map(|a| a.as_str()).unwrap_or(""),
            base_path,
            path
        );
        text.parse()
            .map_err(|e: hyper::http::uri::InvalidUri| ClientError::Request(format!("bad target {text:?}: {e}")))
    }

    fn build(&self, request: &Request, uri: &str) -> Result<hyper::Request<Full<Bytes>>, ClientError> {
        let method = hyper::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| ClientError::Request(format!("bad method: {e}")))?;
        let mut builder = hyper::Request::builder().method(method).uri(self.target(uri)?);
        let headers = builder.headers_mut().expect("fresh builder");
        for (name, value) in self.forwarded_headers(request) {
            if let (Ok(n), Ok(v)) =
                (HeaderName::from_bytes(&header_bytes(name)), HeaderValue::from_bytes(&header_bytes(value)))
            {
                headers.append(n, v);
            }
        }
        for (name, value) in self.forwarding(request) {
            if let Ok(v) = HeaderValue::from_bytes(&header_bytes(&value)) {
                headers.append(name, v);
            }
        }
        // Without one (keep, none captured), hyper sets it from the target.
        if let Some(v) = self.host_for(request) {
            headers.insert(hyper::header::HOST, v);
        }
        if let Some((name, value)) = &self.marker {
            headers.insert(name.clone(), value.clone());
        }
        builder
            .body(Full::new(Bytes::from(request.payload.body.clone())))
            .map_err(|e| ClientError::Request(e.to_string()))
    }

    pub async fn send(&self, request: &Request) -> Result<CandidateAnswer, ClientError> {
        self.send_to(request, &request.uri).await
    }

    /// Sends `request` with `uri` in place of its own.
    pub async fn send_to(&self, request: &Request, uri: &str) -> Result<CandidateAnswer, ClientError> {
        let work = async {
            match &self.http1 {
                Some(pool) => {
                    let wire = self.wire_request(request, uri)?;
                    let head_request = request.method.eq_ignore_ascii_case("HEAD");
                    pool.exchange(&wire, head_request, crate::semantics::is_safe(&request.method), self.body_limit)
                        .await
                }
                None => self.send_pooled(request, uri).await,
            }
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or(Err(ClientError::Timeout(self.timeout.as_millis() as u64)))
    }

    /// The request as bytes for an http candidate, in origin form, with
    /// the same rewriting as [`CandidateClient::build`].
    fn wire_request(&self, request: &Request, uri: &str) -> Result<Vec<u8>, ClientError> {
        let path = crate::replay::endpoint::path_and_query(uri);
        let method = request.method.as_bytes();
        if method.is_empty() || !method.iter().all(|&b| is_token_byte(b)) {
            return Err(ClientError::Request(format!("bad method {:?}", request.method)));
        }
        let target_ok = |t: &str| t.bytes().all(|b| b > b' ' && b != 0x7f);
        if !path.starts_with('/') || !target_ok(path) || !target_ok(&self.base_path) {
            return Err(ClientError::Request(format!("bad target {path:?}")));
        }
        let body = &request.payload.body;
        let mut wire = Vec::with_capacity(256 + path.len() + body.len() + 48 * request.payload.headers.len());
        wire.extend_from_slice(method);
        wire.push(b' ');
        wire.extend_from_slice(self.base_path.as_bytes());
        wire.extend_from_slice(path.as_bytes());
        wire.extend_from_slice(b" HTTP/1.1\r\n");
        let mut put = |name: &[u8], value: &[u8]| {
            wire.extend_from_slice(name);
            wire.extend_from_slice(b": ");
            wire.extend_from_slice(value);
            wire.extend_from_slice(b"\r\n");
        };
        if let Some(host) = self.host_for(request).or_else(|| self.own_host()) {
            put(b"Host", host.as_bytes());
        }
        // As production received them: escaped bytes back to the wire's.
        for (name, value) in self.forwarded_headers(request) {
            let (name, value) = (header_bytes(name), header_bytes(value));
            if is_header_name(&name) && is_header_value(&value) {
                put(&name, &value);
            }
        }
        for (name, value) in self.forwarding(request) {
            let value = header_bytes(&value);
            if is_header_value(&value) {
                put(name.as_bytes(), &value);
            }
        }
        if let Some((name, value)) = &self.marker {
            put(name.as_str().as_bytes(), value.as_bytes());
        }
        if !body.is_empty() || expects_body(&request.method) {
            put(b"Content-Length", body.len().to_string().as_bytes());
        }
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(body);
        Ok(wire)
    }

    /// The Host the candidate gets, by `host_header` (`None`: "keep" and
    /// none was captured).
    fn host_for(&self, request: &Request) -> Option<HeaderValue> {
        match &self.host_header {
            HostHeader::Candidate(v) | HostHeader::Fixed(v) => v.clone(),
            HostHeader::Keep => {
                request.payload.header("host").and_then(|h| HeaderValue::from_bytes(&header_bytes(h)).ok())
            }
        }
    }

    /// The captured headers passed on, as captured: not the hop-by-hop and
    /// framing ones, not Host (see [`Self::host_for`]), not a marker (ours
    /// is added).
    fn forwarded_headers<'a>(&'a self, request: &'a Request) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let marker = self.marker.as_ref().map(|(n, _)| n.as_str());
        let passed_on = move |name: &str| {
            !crate::semantics::is_hop_by_hop(name)
                && !SET_BY_CLIENT.iter().any(|h| name.eq_ignore_ascii_case(h))
                && !marker.is_some_and(|m| name.eq_ignore_ascii_case(m))
        };
        request.payload.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).filter(move |(name, _)| passed_on(name))
    }

    /// What production was asked for (Host, scheme), when the candidate is
    /// sent another Host and the recorded request does not already carry
    /// it: `X-Forwarded-Host`, `X-Forwarded-Proto`.
    fn forwarding(&self, request: &Request) -> Vec<(&'static str, String)> {
        let rewritten = !matches!(self.host_header, HostHeader::Keep);
        let Some(host) = request.payload.header("host").filter(|_| self.forwarded && rewritten) else {
            return Vec::new();
        };
        let mut added = Vec::with_capacity(2);
        if request.payload.header("x-forwarded-host").is_none() {
            added.push(("X-Forwarded-Host", host.trim().to_string()));
        }
        if request.payload.header("x-forwarded-proto").is_none() {
            added.push(("X-Forwarded-Proto", "http".to_string()));
        }
        added
    }

    /// The origin the candidate may build its URLs from (its scheme and the
    /// Host it was sent) and production's (the recorded Host), when the
    /// Host was rewritten: comparison reads the first as the second.
    pub fn origin_rewrite(&self, request: &Request) -> Option<crate::diff::OriginRewrite> {
        let sent = match &self.host_header {
            HostHeader::Candidate(v) | HostHeader::Fixed(v) => v.as_ref()?.to_str().ok()?,
            HostHeader::Keep => return None,
        };
        let recorded = request.payload.header("host")?.trim();
        if recorded.is_empty() || recorded.eq_ignore_ascii_case(sent) {
            return None;
        }
        let recorded_scheme =
            request.payload.header("x-forwarded-proto").and_then(|p| p.split(',').next()).map_or("http", str::trim);
        Some(crate::diff::OriginRewrite {
            candidate: format!("{}://{sent}", self.scheme.as_str()),
            recorded: format!("{recorded_scheme}://{recorded}"),
        })
    }

    /// The candidate's own authority as a Host value.
    fn own_host(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(self.authority.as_str()).ok()
    }

    /// https (and http with `http_client = "hyper"`): hyper's pooled client.
    async fn send_pooled(&self, request: &Request, uri: &str) -> Result<CandidateAnswer, ClientError> {
        let outgoing = self.build(request, uri)?;
        let started = Instant::now();
        let response = self.client.request(outgoing).await.map_err(|e| ClientError::Request(describe(&e)))?;
        let latency_us = started.elapsed().as_micros() as u64;
        let status = response.status().as_u16();
        let headers =
            response.headers().iter().map(|(n, v)| (n.as_str().to_string(), header_text(v.as_bytes()))).collect();
        let (body, truncated) =
            match http_body_util::Limited::new(response.into_body(), self.body_limit).collect().await {
                Ok(collected) => (collected.to_bytes().to_vec(), false),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => (Vec::new(), true),
                Err(e) => return Err(ClientError::Request(format!("reading body: {e}"))),
            };
        Ok(CandidateAnswer { status, headers, body, latency_us, truncated })
    }
}

/// Methods whose requests carry a body by definition: sent with a
/// Content-Length even when it is empty, as clients do.
fn expects_body(method: &str) -> bool {
    ["POST", "PUT", "PATCH"].iter().any(|m| m.eq_ignore_ascii_case(method))
}

/// RFC 9110 token characters (method and header names).
fn is_token_byte(b: u8) -> bool {
    TOKEN_BYTES[b as usize]
}

/// RFC 9110 `tchar`, as a table: checked for every byte of every header
/// name of every replayed request.
const TOKEN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~');
        b += 1;
    }
    table
};

fn is_header_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().copied().all(is_token_byte)
}

/// No line breaks or NULs: a value that would split the request is dropped.
fn is_header_value(value: &[u8]) -> bool {
    !value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0)
}

/// hyper's top-level error says little ("client error (Connect)"); the
/// source chain says what happened (connection refused, reset...).
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests;
