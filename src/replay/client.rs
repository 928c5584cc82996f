//! The candidate's HTTP client: hyper with a keep-alive pool, HTTP/1.1,
//! https through rustls. A captured request goes in, rewritten for the
//! candidate (its Host, no hop-by-hop headers, a marker header); the
//! candidate's status, headers, body and time to first byte come out.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
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
    base: Uri,
    host_header: HostHeader,
    marker: Option<(HeaderName, HeaderValue)>,
    timeout: Duration,
}

enum HostHeader {
    Candidate,
    Keep,
    Fixed(String),
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
            "candidate" | "" => HostHeader::Candidate,
            "keep" => HostHeader::Keep,
            other => HostHeader::Fixed(other.to_string()),
        };
        let marker = (!config.marker_header.is_empty())
            .then(|| {
                Some((
                    HeaderName::from_bytes(config.marker_header.as_bytes()).ok()?,
                    HeaderValue::from_str(&config.marker_value).ok()?,
                ))
            })
            .flatten();
        Ok(CandidateClient { client, base, host_header, marker, timeout: Duration::from_millis(config.timeout_ms) })
    }

    fn target(&self, uri: &str) -> Result<Uri, ClientError> {
        let path = crate::replay::endpoint::path_and_query(uri);
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

    fn build(&self, request: &Request) -> Result<hyper::Request<Full<Bytes>>, ClientError> {
        let method = hyper::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| ClientError::Request(format!("bad method: {e}")))?;
        let mut builder = hyper::Request::builder().method(method).uri(self.target(&request.uri)?);
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
            HostHeader::Candidate => self.base.authority().map(|a| a.to_string()),
            HostHeader::Keep => request.payload.header("host").map(str::to_string),
            HostHeader::Fixed(h) => Some(h.clone()),
        };
        if let Some(v) = host.and_then(|h| HeaderValue::from_str(&h).ok()) {
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
        let outgoing = self.build(request)?;
        let started = Instant::now();
        let work = async {
            let response = self.client.request(outgoing).await.map_err(|e| ClientError::Request(describe(&e)))?;
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
            Ok(CandidateAnswer { status, headers, body, latency_us })
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or(Err(ClientError::Timeout(self.timeout.as_millis() as u64)))
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
