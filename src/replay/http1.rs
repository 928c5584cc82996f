//! The own HTTP/1.1 client for http candidates: a request's bytes in, the
//! candidate's answer out, read with the capture's framing code
//! ([`crate::http::answer`]) in the task that replays the exchange.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hyper::http::uri::Authority;

use super::answer::{CandidateAnswer, ClientError};
use crate::http::answer::{AnswerError, AnswerReader};

/// Keep-alive HTTP/1.1 connections to one http candidate, one request at
/// a time each: idle ones are reused (the most recent first), dropped after
/// 30 s idle or beyond 256 idle (per thread).
///
/// The request is written in one piece and the answer read with the
/// capture's own framing code ([`crate::http::answer`]), in the task that
/// replays the exchange: no connection task, no channel between the two,
/// and the candidate's answer parsed by the same rules as production's.
pub(super) struct Http1Pool {
    host: String,
    port: u16,
    /// Idle connections of each thread. A tokio connection belongs to the
    /// runtime that opened it; replay lanes each run their own runtime on
    /// their own thread, and one lane must never take another's connection
    /// (its runtime may already be gone).
    idle: std::sync::Mutex<HashMap<std::thread::ThreadId, Vec<(PlainConn, Instant)>>>,
}

struct PlainConn {
    stream: tokio::net::TcpStream,
    /// Read buffer, kept with the connection.
    buf: Box<[u8]>,
}

impl PlainConn {
    /// No end of stream and no stray bytes waiting: a server that closed
    /// an idle connection has left an EOF to read.
    fn looks_open(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_IDLE: usize = 256;
const READ_BUFFER: usize = 64 << 10;
/// Largest answer head read from a candidate.
const MAX_HEAD: usize = 64 << 10;

/// How one attempt on one connection failed.
struct Failed {
    error: ClientError,
    /// Nothing of an answer arrived: on a reused connection this is the
    /// server having closed it while idle, and the request may go again.
    before_answer: bool,
}

impl Http1Pool {
    pub(super) fn new(authority: &Authority) -> Http1Pool {
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = authority.port_u16().unwrap_or(80);
        Http1Pool { host, port, idle: Default::default() }
    }

    fn take(&self) -> Option<PlainConn> {
        let mut all = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let idle = all.get_mut(&std::thread::current().id())?;
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < IDLE_TIMEOUT {
                return Some(conn);
            }
        }
        None
    }

    fn put_back(&self, conn: PlainConn) {
        let mut all = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let idle = all.entry(std::thread::current().id()).or_default();
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<PlainConn, ClientError> {
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| ClientError::Request(format!("connecting to the candidate: {e}")))?;
        let _ = stream.set_nodelay(true);
        Ok(PlainConn { stream, buf: vec![0; READ_BUFFER].into_boxed_slice() })
    }

    /// Sends `wire` (a whole request) and reads its answer, on an idle
    /// connection or a new one. A safe request that finds its idle
    /// connection closed goes again on a new one; a write does not (it
    /// may have been acted on).
    pub(super) async fn exchange(
        &self,
        wire: &[u8],
        head_request: bool,
        retry: bool,
        body_limit: usize,
    ) -> Result<CandidateAnswer, ClientError> {
        // A request that may not go twice (a write) only takes an idle
        // connection the server has visibly not closed.
        let usable = |conn: &PlainConn| retry || conn.looks_open();
        if let Some(mut conn) = self.take().filter(usable) {
            match attempt(&mut conn, wire, head_request, body_limit).await {
                Ok((answer, reusable)) => {
                    if reusable {
                        self.put_back(conn);
                    }
                    return Ok(answer);
                }
                Err(failed) if failed.before_answer && retry => {}
                Err(failed) => return Err(failed.error),
            }
        }
        let mut conn = self.connect().await?;
        let (answer, reusable) = attempt(&mut conn, wire, head_request, body_limit).await.map_err(|f| f.error)?;
        if reusable {
            self.put_back(conn);
        }
        Ok(answer)
    }
}

/// One request and its answer on one connection. The latency runs from
/// the request's first byte sent to the answer's head read, as the
/// recorded latency runs from the request's first packet to the answer's.
/// Body bytes beyond `body_limit` are read (the connection stays usable)
/// but not kept: a broken candidate cannot exhaust memory.
async fn attempt(
    conn: &mut PlainConn,
    wire: &[u8],
    head_request: bool,
    body_limit: usize,
) -> Result<(CandidateAnswer, bool), Failed> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = Instant::now();
    let io_error = |e: std::io::Error, before_answer: bool| Failed {
        error: ClientError::Request(format!("connection to the candidate: {e}")),
        before_answer,
    };
    conn.stream.write_all(wire).await.map_err(|e| io_error(e, true))?;
    let mut reader = AnswerReader::new(head_request, MAX_HEAD, body_limit);
    let mut latency_us = None;
    let mut received = false;
    let mut left_over = false;
    while !reader.is_done() {
        let n = conn.stream.read(&mut conn.buf).await.map_err(|e| io_error(e, !received))?;
        if n == 0 {
            let before_answer = !received;
            reader.end_of_stream().map_err(|e| Failed { error: answer_error(e), before_answer })?;
            break;
        }
        received = true;
        let used = reader.feed(&conn.buf[..n]).map_err(|e| Failed { error: answer_error(e), before_answer: false })?;
        left_over = used < n;
        if latency_us.is_none() && reader.has_head() {
            latency_us = Some(started.elapsed().as_micros() as u64);
        }
    }
    let latency_us = latency_us.unwrap_or_else(|| started.elapsed().as_micros() as u64);
    let answered =
        reader.finish().ok_or_else(|| Failed { error: answer_error(AnswerError::Incomplete), before_answer: false })?;
    // Bytes beyond the answer: the server and we disagree on framing, the
    // connection cannot carry another request.
    let reusable = answered.reusable && !left_over;
    let (status, headers, body, truncated) = (answered.status, answered.headers, answered.body, answered.truncated);
    let answer = CandidateAnswer { status, headers, body, latency_us, truncated };
    Ok((answer, reusable))
}

fn answer_error(e: AnswerError) -> ClientError {
    ClientError::Request(format!("candidate answer: {e}"))
}
