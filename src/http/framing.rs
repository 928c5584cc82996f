//! Message framing on one direction's bytes: finding where a head ends,
//! reading bodies by Content-Length, chunked encoding (with trailers) or
//! until close, stepping over capture holes inside a body, and scanning
//! line by line for a start line. The parser state lives in [`Side`]; the
//! connection logic that decides between these is in the parent module.

use super::{head, lenient};
use crate::exchange::{Nanos, Payload};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// At a message boundary: the next non-empty line starts a message.
    Idle,
    /// Accumulating a head in `buf`.
    Head,
    Fixed(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailers,
    UntilClose,
    /// The body of an answer whose framing cannot be trusted: up to the
    /// next status line at a line start, or close (complete lines in `buf`).
    UntilStartLine,
    /// Lost: looking for the next start line, a line at a time in `buf`.
    Resync,
    /// The client sent a request whose framing a server must reject (RFC
    /// 9112 section 6.3: then it closes the connection). Whatever follows
    /// is not a request anyone answered (it may be a smuggling attempt), so
    /// it is ignored rather than parsed.
    Discard,
}

/// One direction's parser.
#[derive(Debug)]
pub(super) struct Side {
    pub(super) state: State,
    pub(super) buf: Vec<u8>,
    /// Time of the packet with the first byte of the message being read.
    pub(super) msg_ts: Nanos,
}

impl Side {
    pub(super) fn new(state: State) -> Self {
        Side { state, buf: Vec::new(), msg_ts: 0 }
    }
}

/// Accumulates one line into `side.buf` (bounded: an overlong line is
/// dropped). Returns the bytes of `data` used and, once the line is
/// complete, the time its first byte arrived.
pub(super) fn scan_line(side: &mut Side, data: &[u8], ts: Nanos, max_line: usize) -> (usize, Option<Nanos>) {
    let newline = memchr::memchr(b'\n', data);
    let used = newline.map_or(data.len(), |i| i + 1);
    if side.buf.is_empty() {
        side.msg_ts = ts;
    }
    if side.buf.len() + used <= max_line {
        side.buf.extend_from_slice(&data[..used]);
    } else {
        side.buf.clear();
        return (used, None);
    }
    (used, newline.map(|_| side.msg_ts))
}

pub(super) fn trim_leading_newlines(data: &[u8]) -> &[u8] {
    let start = data.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(data.len());
    &data[start..]
}

/// Appends head bytes from `data` to `buf` until the head is complete.
/// Returns (bytes of `data` used, length of the head in `buf`) once it is.
/// A request whose first line is HTTP/0.9 (`GET /x`, no version) ends at
/// that line.
pub(super) fn take_head(buf: &mut Vec<u8>, data: &[u8], max_head: usize, request: bool) -> Option<(usize, usize)> {
    let old_len = buf.len();
    let room = (max_head + 1).saturating_sub(old_len);
    let take = data.len().min(room.max(1));
    buf.extend_from_slice(&data[..take]);
    let at_data_end = take == data.len();
    if let Some(end) = http09_request_end(buf, at_data_end).filter(|_| request) {
        buf.truncate(end);
        return Some((end.saturating_sub(old_len), end));
    }
    let regular = head::head_end(buf, old_len.saturating_sub(3));
    // A response head may end in bare CRs (a server bug browsers accept);
    // a request's may not (lenience there is what smuggling exploits).
    let bare_cr = if request { None } else { lenient::bare_cr_head_end(buf, old_len.saturating_sub(2)) };
    let end = match (regular, bare_cr) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    buf.truncate(end);
    Some((end - old_len, end))
}

/// An HTTP/0.9 request (`GET /x` and nothing else) ends with its line. It
/// is told from a broken later request by nothing following the line in
/// what has arrived so far (`at_data_end`).
pub(super) fn http09_request_end(buf: &[u8], at_data_end: bool) -> Option<usize> {
    let nl = memchr::memchr(b'\n', buf)?;
    let alone = nl + 1 == buf.len() && at_data_end;
    (alone && head::is_versionless_request_line(head::first_line(buf))).then_some(nl + 1)
}

pub(super) enum BodyOutcome {
    More,
    Done,
    Malformed,
}

/// Keeps at most `limit` body bytes and counts all of them.
pub(super) fn keep_body(payload: Option<&mut Payload>, bytes: &[u8], limit: usize) {
    let Some(payload) = payload else { return };
    payload.body_len += bytes.len() as u64;
    let room = limit.saturating_sub(payload.body.len());
    payload.body.extend_from_slice(&bytes[..bytes.len().min(room)]);
    if bytes.len() > room {
        payload.truncated = true;
    }
}

/// Reads body bytes in the side's current body state (fixed length,
/// chunked, until close). Returns bytes used and whether the body ended.
pub(super) fn read_body(
    side: &mut Side,
    payload: Option<&mut Payload>,
    data: &[u8],
    limit: usize,
) -> (usize, BodyOutcome) {
    const MAX_LINE: usize = 4096;
    match side.state {
        State::Fixed(remaining) => {
            let n = data.len().min(remaining as usize);
            keep_body(payload, &data[..n], limit);
            let left = remaining - n as u64;
            side.state = State::Fixed(left);
            (n, if left == 0 { BodyOutcome::Done } else { BodyOutcome::More })
        }
        State::UntilClose => {
            keep_body(payload, data, limit);
            (data.len(), BodyOutcome::More)
        }
        State::ChunkData(remaining) => {
            let n = data.len().min(remaining as usize);
            keep_body(payload, &data[..n], limit);
            let left = remaining - n as u64;
            side.state = if left == 0 { State::ChunkDataEnd } else { State::ChunkData(left) };
            (n, BodyOutcome::More)
        }
        State::ChunkDataEnd => match data[0] {
            b'\r' => (1, BodyOutcome::More),
            b'\n' => {
                side.state = State::ChunkSize;
                (1, BodyOutcome::More)
            }
            _ => (0, BodyOutcome::Malformed),
        },
        State::ChunkSize | State::Trailers => {
            let newline = memchr::memchr(b'\n', data);
            let used = newline.map_or(data.len(), |i| i + 1);
            side.buf.extend_from_slice(&data[..used]);
            if newline.is_none() {
                let too_long = side.buf.len() > MAX_LINE;
                return (used, if too_long { BodyOutcome::Malformed } else { BodyOutcome::More });
            }
            let raw = std::mem::take(&mut side.buf);
            let line = raw.strip_suffix(b"\n").unwrap_or(&raw);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if side.state == State::Trailers {
                return (used, if line.is_empty() { BodyOutcome::Done } else { BodyOutcome::More });
            }
            let size = head::parse_chunk_size(line);
            match size {
                Some(0) => {
                    side.state = State::Trailers;
                    (used, BodyOutcome::More)
                }
                Some(size) => {
                    side.state = State::ChunkData(size);
                    (used, BodyOutcome::More)
                }
                None => {
                    // Left for the caller: a malformed answer keeps it.
                    side.buf = raw;
                    (used, BodyOutcome::Malformed)
                }
            }
        }
        State::Idle | State::Head | State::Resync | State::Discard | State::UntilStartLine => {
            (0, BodyOutcome::Malformed)
        }
    }
}

/// A hole of `len` bytes inside a body whose framing tells where it ends
/// can be stepped over; returns false when the framing is lost.
pub(super) fn skip_body(side: &mut Side, payload: Option<&mut Payload>, len: u64) -> bool {
    let mark = |payload: Option<&mut Payload>| {
        if let Some(p) = payload {
            p.body_len += len;
            p.truncated = true;
        }
    };
    match side.state {
        State::Fixed(remaining) if len > 0 && len <= remaining => {
            mark(payload);
            side.state = if len == remaining { State::Idle } else { State::Fixed(remaining - len) };
            true
        }
        State::ChunkData(remaining) if len > 0 && len <= remaining => {
            mark(payload);
            side.state = if len == remaining { State::ChunkDataEnd } else { State::ChunkData(remaining - len) };
            true
        }
        State::UntilClose => {
            mark(payload);
            true
        }
        _ => false,
    }
}
