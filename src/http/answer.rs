//! Reading one answer off a live connection: the candidate's bytes in, as
//! they arrive; its status, headers and de-chunked body out.
//!
//! The framing code is the one that reads production's answers off the
//! wire ([`super::framing`]), so both sides of a comparison are parsed by
//! the same rules: a header the capture keeps, the candidate's answer keeps
//! too, spelled as it was sent.

use super::framing::{BodyOutcome, Side, State, read_body, take_head, trim_leading_newlines};
use super::head::{self, Framing, ResponseFraming};
use crate::exchange::{Header, Payload};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AnswerError {
    #[error("malformed response head")]
    BadHead,
    #[error("response head larger than {0} bytes")]
    HeadTooLarge(usize),
    #[error("malformed chunked body")]
    BadBody,
    #[error("connection closed before the answer was complete")]
    Incomplete,
    #[error("the candidate switched protocols (status 101)")]
    Upgrade,
}

/// One complete answer.
#[derive(Debug)]
pub struct Answered {
    pub status: u16,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
    /// The body was longer than the limit (the rest was read and dropped).
    pub truncated: bool,
    /// The connection may carry another request: the answer was delimited
    /// by its framing, and the server did not say it closes.
    pub reusable: bool,
}

/// Reads the answer to one request, fed the connection's bytes in order.
pub struct AnswerReader {
    side: Side,
    head_request: bool,
    max_head: usize,
    body_limit: usize,
    status: u16,
    keep_alive: bool,
    payload: Payload,
    has_head: bool,
    done: bool,
}

impl AnswerReader {
    /// `head_request`: the request was HEAD, so the answer has no body
    /// whatever its headers say.
    pub fn new(head_request: bool, max_head: usize, body_limit: usize) -> AnswerReader {
        AnswerReader {
            side: Side::new(State::Idle),
            head_request,
            max_head,
            body_limit,
            status: 0,
            keep_alive: false,
            payload: Payload::default(),
            has_head: false,
            done: false,
        }
    }

    /// The final (non-1xx) head has been read.
    pub fn has_head(&self) -> bool {
        self.has_head
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds the next bytes. Returns how many were used: all of them
    /// unless the answer ended inside `data` (what follows is not part of
    /// it).
    pub fn feed(&mut self, data: &[u8]) -> Result<usize, AnswerError> {
        let mut used = 0;
        while used < data.len() && !self.done {
            let rest = &data[used..];
            used += match self.side.state {
                State::Idle => self.start(rest),
                State::Head => self.head(rest)?,
                _ => self.body(rest)?,
            };
        }
        Ok(used)
    }

    /// The peer closed the connection: an answer delimited by the close is
    /// complete, any other unfinished one is not.
    pub fn end_of_stream(&mut self) -> Result<(), AnswerError> {
        if !self.done && self.side.state == State::UntilClose {
            self.done = true;
            self.keep_alive = false;
        }
        if self.done { Ok(()) } else { Err(AnswerError::Incomplete) }
    }

    /// The answer, once [`AnswerReader::is_done`].
    pub fn finish(self) -> Option<Answered> {
        if !self.done {
            return None;
        }
        Some(Answered {
            status: self.status,
            headers: self.payload.headers,
            body: self.payload.body,
            truncated: self.payload.truncated,
            reusable: self.keep_alive,
        })
    }

    fn start(&mut self, data: &[u8]) -> usize {
        let skipped = data.len() - trim_leading_newlines(data).len();
        if skipped < data.len() {
            self.side.state = State::Head;
            self.side.buf.clear();
        }
        skipped
    }

    fn head(&mut self, data: &[u8]) -> Result<usize, AnswerError> {
        let Some((used, head_len)) = take_head(&mut self.side.buf, data, self.max_head, false) else {
            if self.side.buf.len() > self.max_head {
                return Err(AnswerError::HeadTooLarge(self.max_head));
            }
            return Ok(data.len());
        };
        let parsed = head::parse_response(&self.side.buf[..head_len]).ok_or(AnswerError::BadHead)?;
        self.side.buf.clear();
        let status = parsed.status;
        if (100..200).contains(&status) && status != 101 {
            // Interim (100 Continue, 103 Early Hints): the answer follows.
            self.side.state = State::Idle;
            return Ok(used);
        }
        // The capture's rule, for a request that is never a CONNECT (not
        // replayed).
        let framing = match head::response_framing(self.head_request, false, status, &parsed.headers) {
            ResponseFraming::Tunnel => return Err(AnswerError::Upgrade),
            ResponseFraming::NoBody => Framing::None,
            ResponseFraming::Body(framing) => framing,
        };
        self.status = status;
        self.keep_alive = keeps_alive(&parsed.version, &parsed.headers);
        self.has_head = true;
        self.payload.headers = parsed.headers;
        match framing {
            Framing::None => self.done = true,
            Framing::Length(n) => {
                self.payload.body.reserve(n.min(self.body_limit as u64) as usize);
                self.side.state = State::Fixed(n);
            }
            Framing::Chunked => self.side.state = State::ChunkSize,
            Framing::Absent | Framing::UntilClose | Framing::Invalid => {
                self.keep_alive = false;
                self.side.state = State::UntilClose;
            }
        }
        Ok(used)
    }

    fn body(&mut self, data: &[u8]) -> Result<usize, AnswerError> {
        let (used, outcome) = read_body(&mut self.side, Some(&mut self.payload), data, self.body_limit);
        match outcome {
            BodyOutcome::More => Ok(used),
            BodyOutcome::Done => {
                self.done = true;
                Ok(used)
            }
            BodyOutcome::Malformed => Err(AnswerError::BadBody),
        }
    }
}

/// HTTP/1.1 keeps the connection unless told `close`; HTTP/1.0 only when
/// told `keep-alive` (RFC 9112 section 9.3).
fn keeps_alive(version: &str, headers: &[Header]) -> bool {
    let mut tokens = head::header_list(headers, "connection");
    if version == "HTTP/1.0" {
        tokens.any(|t| t.eq_ignore_ascii_case("keep-alive"))
    } else {
        !tokens.any(|t| t.eq_ignore_ascii_case("close"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(chunks: &[&[u8]], head_request: bool) -> Result<(Answered, usize), AnswerError> {
        let mut reader = AnswerReader::new(head_request, 8192, 1 << 20);
        let mut left_over = 0;
        for chunk in chunks {
            let used = reader.feed(chunk)?;
            left_over += chunk.len() - used;
        }
        if !reader.is_done() {
            reader.end_of_stream()?;
        }
        Ok((reader.finish().expect("done"), left_over))
    }

    #[test]
    fn content_length_body_split_anywhere() {
        let wire: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
        for cut in 0..wire.len() {
            let (a, rest) = read_all(&[&wire[..cut], &wire[cut..]], false).unwrap();
            assert_eq!((a.status, a.body.as_slice(), a.reusable, rest), (200, &b"hello"[..], true, 0), "cut {cut}");
            assert_eq!(a.headers[1], ("X-A".to_string(), "b".to_string()));
        }
    }

    #[test]
    fn chunked_with_trailers_and_interim_answer() {
        let wire: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
            3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n";
        for cut in 0..wire.len() {
            let (a, _) = read_all(&[&wire[..cut], &wire[cut..]], false).unwrap();
            assert_eq!((a.status, a.body.as_slice()), (200, &b"abcde"[..]), "cut {cut}");
        }
    }

    #[test]
    fn bytes_after_the_answer_are_not_used() {
        let wire: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n";
        let (a, rest) = read_all(&[wire], false).unwrap();
        assert_eq!((a.status, rest), (204, 17));
    }

    #[test]
    fn head_requests_and_304_have_no_body() {
        let (a, rest) = read_all(&[b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"], true).unwrap();
        assert_eq!((a.body.len(), rest), (0, 0));
        let (a, _) = read_all(&[b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"], false).unwrap();
        assert_eq!(a.status, 304);
    }

    #[test]
    fn read_until_close_and_connection_reuse_rules() {
        let (a, _) = read_all(&[b"HTTP/1.1 200 OK\r\n\r\nto the end", b" of it"], false).unwrap();
        assert_eq!((a.body.as_slice(), a.reusable), (&b"to the end of it"[..], false));
        let (a, _) = read_all(&[b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"], false).unwrap();
        assert!(!a.reusable);
        let (a, _) = read_all(&[b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"], false).unwrap();
        assert!(!a.reusable);
        let (a, _) =
            read_all(&[b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"], false).unwrap();
        assert!(a.reusable);
    }

    #[test]
    fn broken_answers_are_errors() {
        assert_eq!(read_all(&[b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"], false).unwrap_err(), {
            AnswerError::Incomplete
        });
        assert_eq!(read_all(&[b"garbage\r\n\r\n"], false).unwrap_err(), AnswerError::BadHead);
        assert_eq!(
            read_all(&[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"], false).unwrap_err(),
            AnswerError::BadBody
        );
        assert_eq!(read_all(&[b"HTTP/1.1 101 Switching\r\n\r\n"], false).unwrap_err(), AnswerError::Upgrade);
        let mut reader = AnswerReader::new(false, 64, 1024);
        assert_eq!(reader.feed(&[b'a'; 100]).unwrap_err(), AnswerError::HeadTooLarge(64));
    }

    #[test]
    fn body_beyond_the_limit_is_read_but_not_kept() {
        let mut reader = AnswerReader::new(false, 8192, 4);
        reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789").unwrap();
        let a = reader.finish().unwrap();
        assert_eq!((a.body.as_slice(), a.truncated, a.reusable), (&b"0123"[..], true, true));
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        /// How an answer's body is delimited on the wire.
        #[derive(Debug, Clone)]
        enum Framing {
            Length,
            /// Chunk sizes, cycled through (0 is skipped).
            Chunked(Vec<usize>),
            UntilClose,
        }

        fn framing() -> impl Strategy<Value = Framing> {
            prop_oneof![
                Just(Framing::Length),
                prop::collection::vec(1usize..40, 1..5).prop_map(Framing::Chunked),
                Just(Framing::UntilClose),
            ]
        }

        fn wire(body: &[u8], framing: &Framing, interim: bool) -> Vec<u8> {
            let mut w = Vec::new();
            if interim {
                w.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            w.extend_from_slice(b"HTTP/1.1 200 OK\r\nX-Name: v\r\n");
            match framing {
                Framing::Length => {
                    w.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                    w.extend_from_slice(body);
                }
                Framing::Chunked(sizes) => {
                    w.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                    let mut rest = body;
                    for size in sizes.iter().cycle() {
                        if rest.is_empty() {
                            break;
                        }
                        let (chunk, tail) = rest.split_at((*size).min(rest.len()));
                        w.extend_from_slice(format!("{:X}\r\n", chunk.len()).as_bytes());
                        w.extend_from_slice(chunk);
                        w.extend_from_slice(b"\r\n");
                        rest = tail;
                    }
                    w.extend_from_slice(b"0\r\n\r\n");
                }
                Framing::UntilClose => {
                    w.extend_from_slice(b"\r\n");
                    w.extend_from_slice(body);
                }
            }
            w
        }

        proptest! {
            /// However the connection cuts the bytes into reads, the answer
            /// comes out whole: same status, header and body; the bytes of
            /// the next answer are left unread; a framed answer may be
            /// followed by another request, one read until close may not.
            #[test]
            fn any_cut_of_any_framing_reads_the_same_answer(
                body in prop::collection::vec(any::<u8>(), 0..300),
                framing in framing(),
                interim in any::<bool>(),
                cuts in prop::collection::vec(0usize..400, 0..8),
            ) {
                let mut bytes = wire(&body, &framing, interim);
                let answer_len = bytes.len();
                let until_close = matches!(framing, Framing::UntilClose);
                if !until_close {
                    bytes.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
                }
                let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
                cuts.push(0);
                cuts.push(bytes.len());
                cuts.sort();
                let mut reader = AnswerReader::new(false, 8192, 1 << 20);
                let mut used_total = 0;
                for pair in cuts.windows(2) {
                    if reader.is_done() {
                        break;
                    }
                    let piece = &bytes[pair[0]..pair[1]];
                    used_total += reader.feed(piece).unwrap();
                }
                if until_close {
                    reader.end_of_stream().unwrap();
                } else {
                    prop_assert_eq!(used_total, answer_len, "stopped exactly at the end of the answer");
                }
                let a = reader.finish().unwrap();
                prop_assert_eq!(a.status, 200);
                prop_assert_eq!(&a.headers[0], &("X-Name".to_string(), "v".to_string()));
                prop_assert_eq!(a.body, body);
                prop_assert_eq!(a.reusable, !until_close);
            }
        }
    }
}
