//! HTTP/2 framing (RFC 9113 section 4 and 6): one direction's bytes go in
//! as they arrive, [`Event`]s come out: whole control and header frames,
//! and DATA payloads in pieces as they arrive (padding removed), so a
//! large body is never buffered whole. A frame other than DATA longer than
//! [`MAX_BUFFERED_FRAME_LEN`] (the 24-bit length allows 16 MiB) or with an
//! impossible layout is an error: the connection's framing is lost.

use thiserror::Error;

pub const FRAME_HEAD_LEN: usize = 9;
/// Frames other than DATA are read whole: this bounds the buffer. Peers
/// keep them far below it (the default SETTINGS_MAX_FRAME_SIZE is 16 KiB).
pub const MAX_BUFFERED_FRAME_LEN: usize = 1 << 20;
/// Frames not larger than this are what a scan for frame boundaries
/// accepts (the default SETTINGS_MAX_FRAME_SIZE).
const PLAUSIBLE_FRAME_LEN: usize = 1 << 14;

pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const PRIORITY: u8 = 2;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PUSH_PROMISE: u8 = 5;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;
pub const WINDOW_UPDATE: u8 = 8;
pub const CONTINUATION: u8 = 9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;
const SETTINGS_HEADER_TABLE_SIZE: u16 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("HTTP/2 frame of {0} bytes, past the largest read whole")]
    TooLarge(usize),
    #[error("HTTP/2 frame of type {kind} with an impossible length {len}")]
    BadLength { kind: u8, len: usize },
    #[error("HTTP/2 frame padding longer than its payload")]
    BadPadding,
}

/// The fixed 9 bytes before every frame's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl FrameHead {
    pub fn parse(b: &[u8; FRAME_HEAD_LEN]) -> FrameHead {
        FrameHead {
            len: (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }
}

/// A frame other than DATA, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// HEADERS (padding and priority removed), CONTINUATION, PUSH_PROMISE
    /// (`promised` set): a piece of a header block.
    Headers {
        stream: u32,
        fragment: &'a [u8],
        end_headers: bool,
        end_stream: bool,
        promised: Option<u32>,
    },
    Continuation {
        stream: u32,
        fragment: &'a [u8],
        end_headers: bool,
    },
    RstStream {
        stream: u32,
        code: u32,
    },
    Settings {
        ack: bool,
        header_table_size: Option<u32>,
    },
    GoAway {
        last_stream: u32,
        code: u32,
    },
    /// PRIORITY, PING, WINDOW_UPDATE and unknown types: nothing to keep.
    Other {
        kind: u8,
    },
}

/// What the reader hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    Frame(Frame<'a>),
    /// A piece of a DATA frame's payload.
    Data {
        stream: u32,
        data: &'a [u8],
    },
    /// A DATA frame's end.
    DataEnd {
        stream: u32,
        end_stream: bool,
    },
}

/// Where the reader is in the byte stream.
#[derive(Debug, Clone)]
enum State {
    /// Reading a frame head (bytes so far in `buf`).
    Head,
    /// Reading a whole non-DATA payload into `buf`.
    Payload(FrameHead),
    /// Inside a DATA payload: `left` payload bytes to come, of which the
    /// last `pad` are padding; `pad` is None until the pad length byte.
    Data { head: FrameHead, left: usize, pad: Option<usize> },
}

/// The frame reader of one direction.
#[derive(Debug, Clone)]
pub struct Reader {
    state: State,
    buf: Vec<u8>,
}

impl Default for Reader {
    fn default() -> Self {
        Reader { state: State::Head, buf: Vec::new() }
    }
}

impl Reader {
    /// Reads `input`, handing every event to `on`. After an error the
    /// reader must not be fed again (the stream's framing is lost).
    pub fn feed(&mut self, mut input: &[u8], on: &mut dyn FnMut(Event)) -> Result<(), FrameError> {
        while !input.is_empty() {
            input = match self.state.clone() {
                State::Head => self.read_head(input, on)?,
                State::Payload(head) => self.read_payload(head, input, on)?,
                State::Data { head, left, pad } => self.read_data(head, left, pad, input, on)?,
            };
        }
        Ok(())
    }

    fn read_head<'a>(&mut self, input: &'a [u8], on: &mut dyn FnMut(Event)) -> Result<&'a [u8], FrameError> {
        let take = (FRAME_HEAD_LEN - self.buf.len()).min(input.len());
        self.buf.extend_from_slice(&input[..take]);
        let Ok(bytes) = <&[u8; FRAME_HEAD_LEN]>::try_from(&self.buf[..]) else {
            return Ok(&input[take..]);
        };
        let head = FrameHead::parse(bytes);
        self.buf.clear();
        check_len(&head)?;
        self.state = match (head.kind, head.len) {
            (DATA, 0) if head.flags & PADDED != 0 => return Err(FrameError::BadPadding),
            (DATA, 0) => {
                on(Event::DataEnd { stream: head.stream, end_stream: head.flags & END_STREAM != 0 });
                State::Head
            }
            (_, 0) => {
                on(Event::Frame(parse_frame(&head, &[])?));
                State::Head
            }
            (DATA, _) => State::Data { head, left: head.len, pad: (head.flags & PADDED == 0).then_some(0) },
            _ => State::Payload(head),
        };
        Ok(&input[take..])
    }

    fn read_payload<'a>(
        &mut self,
        head: FrameHead,
        input: &'a [u8],
        on: &mut dyn FnMut(Event),
    ) -> Result<&'a [u8], FrameError> {
        let take = (head.len - self.buf.len()).min(input.len());
        self.buf.extend_from_slice(&input[..take]);
        if self.buf.len() == head.len {
            let payload = std::mem::take(&mut self.buf);
            self.state = State::Head;
            on(Event::Frame(parse_frame(&head, &payload)?));
        }
        Ok(&input[take..])
    }

    fn read_data<'a>(
        &mut self,
        head: FrameHead,
        mut left: usize,
        pad: Option<usize>,
        mut input: &'a [u8],
        on: &mut dyn FnMut(Event),
    ) -> Result<&'a [u8], FrameError> {
        let pad = match pad {
            Some(pad) => pad,
            None => {
                let pad = usize::from(input[0]);
                input = &input[1..];
                left -= 1;
                if pad > left {
                    return Err(FrameError::BadPadding);
                }
                pad
            }
        };
        let data_left = left - pad;
        let take = data_left.min(input.len());
        if take > 0 {
            on(Event::Data { stream: head.stream, data: &input[..take] });
        }
        // Padding is skipped once the data is through.
        let skip = (input.len() - take).min(pad.min(left - take));
        left -= take + skip;
        let pad = pad - skip;
        if left == 0 {
            self.state = State::Head;
            on(Event::DataEnd { stream: head.stream, end_stream: head.flags & END_STREAM != 0 });
        } else {
            self.state = State::Data { head, left, pad: Some(pad) };
        }
        Ok(&input[take + skip..])
    }
}

fn check_len(head: &FrameHead) -> Result<(), FrameError> {
    if head.kind != DATA && head.len > MAX_BUFFERED_FRAME_LEN {
        return Err(FrameError::TooLarge(head.len));
    }
    let fixed = match head.kind {
        PRIORITY => Some(5),
        RST_STREAM | WINDOW_UPDATE => Some(4),
        PING => Some(8),
        _ => None,
    };
    let bad = fixed.is_some_and(|n| n != head.len)
        || (head.kind == SETTINGS && !head.len.is_multiple_of(6))
        || (head.kind == GOAWAY && head.len < 8)
        || (head.kind == PUSH_PROMISE && head.len < 4);
    if bad {
        return Err(FrameError::BadLength { kind: head.kind, len: head.len });
    }
    Ok(())
}

/// Parses a whole payload of a frame other than DATA.
pub fn parse_frame<'a>(head: &FrameHead, payload: &'a [u8]) -> Result<Frame<'a>, FrameError> {
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Ok(match head.kind {
        HEADERS => {
            let mut body = unpad(head, payload)?;
            if head.flags & PRIORITY_FLAG != 0 {
                body = body.get(5..).ok_or(FrameError::BadLength { kind: HEADERS, len: head.len })?;
            }
            Frame::Headers {
                stream: head.stream,
                fragment: body,
                end_headers: head.flags & END_HEADERS != 0,
                end_stream: head.flags & END_STREAM != 0,
                promised: None,
            }
        }
        PUSH_PROMISE => {
            let body = unpad(head, payload)?;
            let promised = body.get(..4).ok_or(FrameError::BadLength { kind: PUSH_PROMISE, len: head.len })?;
            Frame::Headers {
                stream: head.stream,
                fragment: &body[4..],
                end_headers: head.flags & END_HEADERS != 0,
                end_stream: false,
                promised: Some(be32(promised) & 0x7fff_ffff),
            }
        }
        CONTINUATION => {
            Frame::Continuation { stream: head.stream, fragment: payload, end_headers: head.flags & END_HEADERS != 0 }
        }
        RST_STREAM => Frame::RstStream { stream: head.stream, code: be32(payload) },
        SETTINGS => Frame::Settings { ack: head.flags & ACK != 0, header_table_size: header_table_size(payload) },
        GOAWAY => Frame::GoAway { last_stream: be32(payload) & 0x7fff_ffff, code: be32(&payload[4..]) },
        kind => Frame::Other { kind },
    })
}

/// The payload without its padding (PADDED flag: a length byte first).
fn unpad<'a>(head: &FrameHead, payload: &'a [u8]) -> Result<&'a [u8], FrameError> {
    if head.flags & PADDED == 0 {
        return Ok(payload);
    }
    let (&pad, rest) = payload.split_first().ok_or(FrameError::BadPadding)?;
    rest.len().checked_sub(usize::from(pad)).map(|end| &rest[..end]).ok_or(FrameError::BadPadding)
}

/// The last SETTINGS_HEADER_TABLE_SIZE in a SETTINGS payload.
fn header_table_size(payload: &[u8]) -> Option<u32> {
    payload
        .chunks_exact(6)
        .rev()
        .find(|s| u16::from_be_bytes([s[0], s[1]]) == SETTINGS_HEADER_TABLE_SIZE)
        .map(|s| u32::from_be_bytes([s[2], s[3], s[4], s[5]]))
}

/// Whether 9 bytes look like a frame head a peer would send: a known
/// type, a length within the default maximum that fits the type, a
/// stream id where the type needs one (and none where it must not).
pub fn plausible_head(b: &[u8; FRAME_HEAD_LEN]) -> bool {
    let head = FrameHead::parse(b);
    let reserved_clear = b[5] & 0x80 == 0;
    let on_connection = matches!(head.kind, SETTINGS | PING | GOAWAY);
    let stream_ok = match head.kind {
        WINDOW_UPDATE => true,
        _ => on_connection == (head.stream == 0),
    };
    head.kind <= CONTINUATION
        && head.len <= PLAUSIBLE_FRAME_LEN
        && reserved_clear
        && stream_ok
        && check_len(&head).is_ok()
}

/// Frames in a row that a scan wants to see (or the end of the bytes)
/// before it trusts a boundary.
const FRAMES_IN_A_ROW: usize = 3;

/// The first offset in `buf` from which plausible frame heads follow one
/// another (three in a row, or to the exact end of `buf`): where a reader
/// that joined a connection late can start. None if there is none yet.
pub fn find_boundary(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find(|&start| chain_fits(&buf[start..], true))
}

/// Whether `buf` holds three plausible frames in a row somewhere: what
/// tells a connection joined late as HTTP/2.
pub fn looks_like_frames(buf: &[u8]) -> bool {
    (0..buf.len()).any(|start| chain_fits(&buf[start..], false))
}

fn chain_fits(mut rest: &[u8], to_end: bool) -> bool {
    for i in 0..FRAMES_IN_A_ROW {
        let Some(head) = rest.first_chunk::<FRAME_HEAD_LEN>() else { return false };
        if !plausible_head(head) {
            return false;
        }
        let end = FRAME_HEAD_LEN + FrameHead::parse(head).len;
        if end > rest.len() {
            return false;
        }
        if i + 1 == FRAMES_IN_A_ROW {
            return true;
        }
        if end == rest.len() {
            return to_end;
        }
        rest = &rest[end..];
    }
    true
}

#[cfg(test)]
mod tests;
