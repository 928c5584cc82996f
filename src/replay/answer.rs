//! What the candidate (or a legacy instance) answered, and why it could
//! not answer: the types the client produces and triage, the comparisons
//! and the report consume. Below the client and its transports
//! ([`super::http1`], [`super::tls`]), so that they all point down here.

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad candidate URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("timed out after {0} ms")]
    Timeout(u64),
    #[error("{0}")]
    Request(String),
    /// `[candidate] ca_file` cannot be used: unreadable, no certificate,
    /// bad PEM or a certificate that is not one.
    #[error("[candidate] ca_file {path}: {reason}")]
    CaFile { path: String, reason: String },
}

pub struct CandidateAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Request sent to response head received, like the recorded latency.
    pub latency_us: u64,
    /// The body was longer than the body limit: `body` holds what was kept.
    pub truncated: bool,
}
