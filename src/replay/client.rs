//! The candidate's HTTP client: hyper with a keep-alive pool, HTTP/1.1,
//! https through rustls. A captured request goes in, rewritten for the
//! candidate (its Host, no hop-by-hop headers, a marker header); the
//! candidate's status, headers, body and time to first byte come out.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::http::{HeaderName, HeaderValue, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::config::CandidateConfig;
use crate::exchange::Request;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad candidate URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("timed out after {0} ms")]
    Timeout(u64),
    #[error("{0}")]
    Request(String),
}

pub struct CandidateAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Request sent to response head received, like the recorded latency.
    pub latency_us: u64,
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

pub struct CandidateClient {
    client: Client<Https, Full<Bytes>>,
    /// For http candidates: our own keep-alive connections, cheaper per
    /// request than the pooled client (kept for https).
    http1: Option<Http1Pool>,
    base: Uri,
    /// The base's scheme and authority, and its path without a trailing
    /// slash: the target of each request is built from these.
    scheme: Scheme,
    authority: Authority,
    base_path: String,
    host_header: HostHeader,
    marker: Option<(HeaderName, HeaderValue)>,
    timeout: Duration,
}

enum HostHeader {
    /// The candidate's authority (`None`: not a valid header value).
    Candidate(Option<HeaderValue>),
    Keep,
    /// A fixed value (`None`: not a valid header value).
    Fixed(Option<HeaderValue>),
}

/// Headers that describe one hop, not the request (RFC 9110 section 7.6.1),
/// plus the framing headers hyper sets itself.
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
    "expect",
];

impl CandidateClient {
    pub fn new(url: &str, config: &CandidateConfig) -> Result<CandidateClient, ClientError> {
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
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
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
        let http1 = (scheme == Scheme::HTTP).then(|| Http1Pool::new(&authority));
        Ok(CandidateClient {
            client,
            http1,
            base,
            scheme,
            authority,
            base_path,
            host_header,
            marker,
            timeout: Duration::from_millis(config.timeout_ms),
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
        for (name, value) in &request.payload.headers {
            if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
                continue;
            }
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                headers.append(n, v);
            }
        }
        let host = match &self.host_header {
            HostHeader::Candidate(v) | HostHeader::Fixed(v) => v.clone(),
            HostHeader::Keep => request.payload.header("host").and_then(|h| HeaderValue::from_str(h).ok()),
        };
        if let Some(v) = host {
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
        let outgoing = self.build(request, uri)?;
        let started = Instant::now();
        let work = async {
            let (response, connection) = match &self.http1 {
                Some(pool) => {
                    let (response, connection) = pool.request(outgoing).await?;
                    (response, Some(connection))
                }
                None => (self.client.request(outgoing).await.map_err(|e| ClientError::Request(describe(&e)))?, None),
            };
            let latency_us = started.elapsed().as_micros() as u64;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Request(format!("reading body: {e}")))?
                .to_bytes()
                .to_vec();
            if let (Some(pool), Some(connection)) = (&self.http1, connection) {
                pool.put_back(connection);
            }
            Ok(CandidateAnswer { status, headers, body, latency_us })
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or(Err(ClientError::Timeout(self.timeout.as_millis() as u64)))
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Keep-alive HTTP/1.1 connections to one http candidate, one request at a
/// time each, like the pooled client's: idle ones are reused (the most
/// recent first), dropped after 30 s idle or beyond 256 idle.
struct Http1Pool {
    host: String,
    port: u16,
    /// Host header when the request has none, as the pooled client sets it.
    default_host: Option<HeaderValue>,
    idle: std::sync::Mutex<Vec<(Sender, Instant)>>,
}

const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_IDLE: usize = 256;

impl Http1Pool {
    fn new(authority: &Authority) -> Http1Pool {
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = authority.port_u16().unwrap_or(80);
        let default_host = match authority.port_u16() {
            Some(p) if p != 80 => HeaderValue::from_str(&format!("{}:{}", authority.host(), p)).ok(),
            _ => HeaderValue::from_str(authority.host()).ok(),
        };
        Http1Pool { host, port, default_host, idle: std::sync::Mutex::new(Vec::new()) }
    }

    fn take(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((sender, since)) = idle.pop() {
            if !sender.is_closed() && since.elapsed() < IDLE_TIMEOUT {
                return Some(sender);
            }
        }
        None
    }

    fn put_back(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push((sender, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<Sender, ClientError> {
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| ClientError::Request(format!("client error (Connect): tcp connect error: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Request(describe(&e)))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Sends on an idle connection, or a new one; a request that an idle
    /// connection could not take (closed meanwhile) goes on a new one.
    async fn request(
        &self,
        mut outgoing: hyper::Request<Full<Bytes>>,
    ) -> Result<(hyper::Response<hyper::body::Incoming>, Sender), ClientError> {
        // Origin form on the wire, and a Host header, as the pooled client.
        let path = outgoing.uri().path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        *outgoing.uri_mut() = Uri::from(path);
        if let Some(host) = &self.default_host {
            outgoing.headers_mut().entry(hyper::header::HOST).or_insert_with(|| host.clone());
        }
        while let Some(mut sender) = self.take() {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(outgoing).await {
                Ok(response) => return Ok((response, sender)),
                Err(mut e) => match e.take_message() {
                    Some(message) => outgoing = message,
                    None => return Err(ClientError::Request(describe(e.error()))),
                },
            }
        }
        let mut sender = self.connect().await?;
        sender.ready().await.map_err(|e| ClientError::Request(describe(&e)))?;
        let response = sender.send_request(outgoing).await.map_err(|e| ClientError::Request(describe(&e)))?;
        Ok((response, sender))
    }
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
