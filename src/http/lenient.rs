//! Answers with broken framing, read as a browser would: a response head
//! in, the status, headers and a short reason why it was malformed out.
//!
//! Production's answers are kept even when a server's bug breaks framing
//! (a status line `HTTP/1.2` or `HTTP/1.01`, bare CR line ends, a header
//! line without colon), so that replay learns that production sends them.
//! Requests are not read this way: lenience there is what request
//! smuggling exploits.

use super::head::{self, ResponseHead, first_line, lenient_headers};

/// The reasons, as printed in `pairs` (`response.malformed`).
pub const BARE_CR: &str = "bare CR line ending";
pub const NO_COLON: &str = "header line without colon";
pub const BAD_HEADER: &str = "invalid header line";
pub const BAD_STATUS_LINE: &str = "malformed status line";
pub const BAD_CONTENT_LENGTH: &str = "invalid Content-Length";
pub const NOT_CHUNKED: &str = "Transfer-Encoding chunked but body not chunked";
pub const BAD_CHUNK: &str = "malformed chunked body";

/// The head and, when it was broken, why (the first problem found).
pub fn parse_response(raw: &[u8]) -> Option<(ResponseHead, Option<String>)> {
    let normalized;
    let (head, bare_cr) = match bare_crs_as_newlines(raw) {
        Some(n) => {
            normalized = n;
            (&normalized[..], true)
        }
        None => (raw, false),
    };
    if let Some(parsed) = head::parse_response(head) {
        let reason = bare_cr.then(|| BARE_CR.to_string()).or_else(|| header_lines_problem(head, parsed.headers.len()));
        return Some((parsed, reason));
    }
    let (parsed, version_ok) = by_hand(head)?;
    let reason = if !version_ok {
        format!("bad status line version {}", parsed.version)
    } else if bare_cr {
        BARE_CR.to_string()
    } else {
        header_lines_problem(head, parsed.headers.len()).unwrap_or_else(|| BAD_STATUS_LINE.to_string())
    };
    Some((parsed, Some(reason)))
}

/// `HTTP/x.y NNN reason` with any digits as version, then the headers
/// leniently. Returns the head and whether its version was 1.0 or 1.1.
fn by_hand(head: &[u8]) -> Option<(ResponseHead, bool)> {
    let line = first_line(head);
    if !head::is_status_line(line) {
        return None;
    }
    let space = memchr::memchr(b' ', line)?;
    if line.get(space + 4).is_some_and(|&b| b != b' ') {
        return None;
    }
    let version = String::from_utf8_lossy(&line[..space]).into_owned();
    let status = std::str::from_utf8(&line[space + 1..space + 4]).ok()?.parse().ok()?;
    let reason = String::from_utf8_lossy(&line[space + 4..]).trim().to_string();
    let rest = &head[(memchr::memchr(b'\n', head)? + 1)..];
    let version_ok = version == "HTTP/1.0" || version == "HTTP/1.1";
    Some((ResponseHead { status, reason, version, headers: lenient_headers(rest) }, version_ok))
}

/// A copy with each CR not followed by LF turned into LF, when there is
/// such a CR (RFC 9112 section 2.2 forbids them; some readers take them as
/// line ends, which is how they end up here).
fn bare_crs_as_newlines(head: &[u8]) -> Option<Vec<u8>> {
    let is_bare = |at: usize| head.get(at + 1) != Some(&b'\n');
    memchr::memchr_iter(b'\r', head).find(|&at| is_bare(at))?;
    let mut out = head.to_vec();
    for at in memchr::memchr_iter(b'\r', head).filter(|&at| is_bare(at)) {
        out[at] = b'\n';
    }
    Some(out)
}

/// Header lines the parser skipped, when there are more lines than
/// headers (continuation lines of a folded header are not lines).
fn header_lines_problem(head: &[u8], parsed: usize) -> Option<String> {
    // The usual head: the status line, one line per header and the empty
    // line, so no more newlines than that; counted with memchr, without
    // splitting (this runs for every answer read).
    if memchr::memchr_iter(b'\n', head).count() <= parsed + 2 {
        return None;
    }
    let mut lines = head.split(|&b| b == b'\n').skip(1).map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let header_lines: Vec<&[u8]> =
        lines.by_ref().take_while(|l| !l.is_empty()).filter(|l| l[0] != b' ' && l[0] != b'\t').collect();
    if header_lines.len() <= parsed {
        return None;
    }
    let no_colon = header_lines.iter().any(|l| !l.contains(&b':'));
    Some(if no_colon { NO_COLON } else { BAD_HEADER }.to_string())
}

/// Where a response head ends when its lines end in bare CRs (`\r\r`, or
/// `\r\r\n`): searched from `from`, only after no regular end was found.
/// None while the byte after `\r\r` has not arrived.
pub fn bare_cr_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let at = from + memchr::memmem::find(&buf[from..], b"\r\r")?;
    match buf.get(at + 2) {
        None => None,
        Some(b'\n') => Some(at + 3),
        Some(_) => Some(at + 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason_of(head: &[u8]) -> Option<String> {
        parse_response(head).expect("parsed").1
    }

    #[test]
    fn well_formed_heads_have_no_reason() {
        assert_eq!(reason_of(b"HTTP/1.1 200 OK\r\nA: b\r\nFolded: x\r\n y\r\n\r\n"), None);
        assert_eq!(reason_of(b"HTTP/1.0 404 Not Found\n\n"), None);
    }

    #[test]
    fn each_broken_framing_is_read_and_named() {
        let (h, r) = parse_response(b"HTTP/1.2 200 ok\r\nContent-Length: 2\r\n\r\n").unwrap();
        assert_eq!((h.status, h.version.as_str(), h.reason.as_str()), (200, "HTTP/1.2", "ok"));
        assert_eq!(h.headers, vec![("Content-Length".to_string(), "2".to_string())]);
        assert_eq!(r.as_deref(), Some("bad status line version HTTP/1.2"));
        let (h, r) = parse_response(b"HTTP/1.01 302 Found\r\nLocation: /x\r\n\r\n").unwrap();
        assert_eq!((h.status, r.as_deref()), (302, Some("bad status line version HTTP/1.01")));
        let (h, r) = parse_response(b"HTTP/1.1 200 OK\rContent-Length: 5\rX: y\r\r").unwrap();
        assert_eq!((h.headers.len(), r.as_deref()), (2, Some(BARE_CR)));
        let (h, r) = parse_response(b"HTTP/1.1 200 OK\r\nthis line has no colon\r\nA: b\r\n\r\n").unwrap();
        assert_eq!((h.headers.len(), r.as_deref()), (1, Some(NO_COLON)));
        assert_eq!(reason_of(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n").as_deref(), Some(BAD_HEADER));
        assert!(parse_response(b"HTTP/1.1 2000 OK\r\n\r\n").is_none());
        assert!(parse_response(b"<html>\r\n\r\n").is_none());
    }

    #[test]
    fn bare_cr_heads_end_at_an_empty_line() {
        assert_eq!(bare_cr_head_end(b"HTTP/1.1 200 OK\rA: b\r\rbody", 0), Some(22));
        assert_eq!(bare_cr_head_end(b"HTTP/1.1 200 OK\rA: b\r\r\nbody", 0), Some(23));
        assert_eq!(bare_cr_head_end(b"HTTP/1.1 200 OK\rA: b\r\r", 0), None);
        assert_eq!(bare_cr_head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n", 0), None);
    }
}
