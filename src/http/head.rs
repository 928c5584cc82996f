//! Message heads: recognising start lines in a byte stream (to know a
//! connection is HTTP, and to rejoin a stream after a hole) and parsing a
//! complete head with `httparse`, leniently, as a passive observer must: the
//! server already accepted what we are looking at.

use crate::exchange::{Header, header_text};

/// The start line of a request, what we need of its head, and framing facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub uri: String,
    pub version: String,
    pub headers: Vec<Header>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: String,
    pub version: String,
    pub headers: Vec<Header>,
}

const MAX_HEADERS: usize = 256;
const MAX_METHOD: usize = 24;

fn parser_config() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_requests(true)
        .ignore_invalid_headers_in_responses(true);
    config
}

fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<Header> {
    headers.iter().map(|h| (h.name.to_string(), header_text(h.value))).collect()
}

pub(super) fn version_string(minor: Option<u8>) -> String {
    match minor.unwrap_or(1) {
        0 => "HTTP/1.0".into(),
        1 => "HTTP/1.1".into(),
        other => format!("HTTP/1.{other}"),
    }
}

/// Parses a complete request head (start line through the empty line).
/// httparse first; when it refuses, a lenient reading of what servers
/// still answer: a request line without version (`GET /x` followed by
/// headers) or with spaces inside the target.
pub fn parse_request(head: &[u8]) -> Option<RequestHead> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    if let Ok(httparse::Status::Complete(_)) = parser_config().parse_request(&mut request, head) {
        return Some(RequestHead {
            method: request.method?.to_string(),
            uri: request.path?.to_string(),
            version: version_string(request.version),
            headers: owned_headers(request.headers),
        });
    }
    parse_request_leniently(head)
}

fn parse_request_leniently(head: &[u8]) -> Option<RequestHead> {
    let line = first_line(head);
    let (method, uri, version) = split_request_line(line)?;
    if version.is_none() && !is_versionless_request_line(line) {
        return None;
    }
    let rest = &head[(memchr::memchr(b'\n', head)? + 1)..];
    let headers = if rest.is_empty() || rest == b"\r\n" || rest == b"\n" {
        Vec::new()
    } else {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::parse_headers(rest, &mut slots) {
            Ok(httparse::Status::Complete((_, parsed))) => owned_headers(parsed),
            _ => lenient_headers(rest),
        }
    };
    let version = match version {
        Some(v) => String::from_utf8_lossy(v).into_owned(),
        // `GET /x` alone is HTTP/0.9; followed by headers it is a broken
        // later request, and its version is left empty.
        None if headers.is_empty() && rest.len() <= 2 => "HTTP/0.9".to_string(),
        None => String::new(),
    };
    Some(RequestHead {
        method: String::from_utf8_lossy(method).into_owned(),
        uri: String::from_utf8_lossy(uri).into_owned(),
        version,
        headers,
    })
}

/// `Name: value` lines, skipping those without a colon.
pub(super) fn lenient_headers(rest: &[u8]) -> Vec<Header> {
    rest.split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = memchr::memchr(b':', line)?;
            let name = header_text(line[..colon].trim_ascii());
            let value = header_text(line[colon + 1..].trim_ascii());
            (!name.is_empty()).then_some((name, value))
        })
        .collect()
}

/// Method, target and (when present) version of a request line.
pub type RequestLine<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>);

/// Method, target and version of a request line, leniently: the target is
/// everything between the method and a final `HTTP/x.y` (spaces included),
/// and the version may be missing.
pub fn split_request_line(line: &[u8]) -> Option<RequestLine<'_>> {
    let space = memchr::memchr(b' ', line)?;
    let method = &line[..space];
    if method.is_empty() || method.len() > MAX_METHOD || !method.iter().all(|&b| is_method_char(b)) {
        return None;
    }
    let rest = trim_spaces(&line[space + 1..]);
    if rest.is_empty() {
        return None;
    }
    match rest.iter().rposition(|&b| b == b' ') {
        Some(at) if rest[at + 1..].starts_with(b"HTTP/") => {
            Some((method, trim_spaces(&rest[..at]), Some(&rest[at + 1..])))
        }
        _ if rest.starts_with(b"HTTP/") => Some((method, b"", Some(rest))),
        _ => Some((method, rest, None)),
    }
}

fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|&b| b != b' ').map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// Parses a well-formed response head (the candidate's answers are held to
/// this).
pub fn parse_response(head: &[u8]) -> Option<ResponseHead> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    match parser_config().parse_response(&mut response, head) {
        Ok(httparse::Status::Complete(_)) => Some(ResponseHead {
            status: response.code?,
            reason: response.reason.unwrap_or("").to_string(),
            version: version_string(response.version),
            headers: owned_headers(response.headers),
        }),
        _ => None,
    }
}

/// The first line, without its line ending.
pub fn first_line(bytes: &[u8]) -> &[u8] {
    let end = memchr::memchr(b'\n', bytes).unwrap_or(bytes.len());
    let line = &bytes[..end];
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Index just past the empty line that ends a head (`\r\n\r\n` or bare
/// `\n\n`, in any mix), searching from `from`.
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = memchr::memchr(b'\n', &buf[at..]) {
        let nl = at + i;
        let rest = &buf[nl + 1..];
        if rest.first() == Some(&b'\n') {
            return Some(nl + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        at = nl + 1;
    }
    None
}

/// Could `bytes` (the start of a stream, possibly short) begin a request
/// line? False as soon as it surely cannot, which is how non-HTTP
/// connections are recognised without buffering them.
pub fn may_start_request(bytes: &[u8]) -> bool {
    let method_len = bytes.iter().take_while(|b| is_method_char(**b)).count();
    if method_len == bytes.len() {
        return method_len <= MAX_METHOD;
    }
    (1..=MAX_METHOD).contains(&method_len) && bytes[method_len] == b' '
}

pub fn may_start_response(bytes: &[u8]) -> bool {
    let n = bytes.len().min(5);
    bytes[..n] == b"HTTP/"[..n]
}

fn is_method_char(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'-' || b == b'_'
}

/// Is this whole line (no line ending) a request line? Method token,
/// target, and `HTTP/x.y`; or a method and target alone (HTTP/0.9 `GET`,
/// or a broken request a server will still answer).
pub fn is_request_line(line: &[u8]) -> bool {
    split_request_line(line).is_some() && (is_versionless_request_line(line) || has_version(line))
}

fn has_version(line: &[u8]) -> bool {
    split_request_line(line).is_some_and(|(_, _, version)| version.is_some())
}

/// A line of exactly method and target, HTTP/0.9 when nothing follows. The
/// method must look like one (upper case, 3 letters or more) and the target
/// have no space, so that stray text is not taken for a request.
pub fn is_versionless_request_line(line: &[u8]) -> bool {
    split_request_line(line).is_some_and(|(method, uri, version)| {
        version.is_none()
            && !uri.contains(&b' ')
            && method.len() >= 3
            && method.iter().all(|b| b.is_ascii_uppercase() || *b == b'_' || *b == b'-')
    })
}

/// Is this whole line a status line (`HTTP/1.x NNN ...`)? A minor
/// version of two digits (`HTTP/1.01`, sent by broken servers) counts too.
pub fn is_status_line(line: &[u8]) -> bool {
    let version_len = if line.get(8) == Some(&b' ') { 8 } else { 9 };
    line.len() >= version_len + 4
        && is_version(&line[..version_len])
        && line[version_len] == b' '
        && line[version_len + 1..version_len + 4].iter().all(u8::is_ascii_digit)
}

fn is_version(v: &[u8]) -> bool {
    v.starts_with(b"HTTP/") && v[5].is_ascii_digit() && v[6] == b'.' && v[7..].iter().all(u8::is_ascii_digit)
}

/// Values of every header named `name`, each split on commas (a list-valued
/// header may be sent once with commas or repeated).
pub fn header_list<'a>(headers: &'a [Header], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    crate::semantics::header_list(headers, name)
}

/// How a body is delimited, from the headers alone (RFC 9112 section 6.3,
/// items 3 to 5; the status and method rules are the caller's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Neither Content-Length nor Transfer-Encoding: no body for a request,
    /// read until close for a response.
    Absent,
    /// Content-Length: 0.
    None,
    Length(u64),
    Chunked,
    /// Transfer-Encoding without chunked last (responses: read to close).
    UntilClose,
    /// Content-Length that cannot be trusted (not a number, overflow,
    /// conflicting values).
    Invalid,
}

/// Request framing a server must refuse or close after (RFC 9112 sections
/// 6.1 and 5.2): both Transfer-Encoding and Content-Length, or a header
/// folded over lines (obs-fold). What follows such a request on the
/// connection is where smuggled requests hide.
pub fn request_framing_is_ambiguous(head: &[u8], headers: &[Header]) -> bool {
    let both = header_list(headers, "transfer-encoding").next().is_some()
        && headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
    let folded = head.windows(2).any(|w| w[0] == b'\n' && (w[1] == b' ' || w[1] == b'\t'));
    both || folded
}

/// How a response is delimited, the request's method and the status first
/// (RFC 9112 section 6.3, items 1 and 2), then its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    Body(Framing),
    /// HEAD, 1xx, 204, 304: no body whatever the headers say.
    NoBody,
    /// 101 Switching Protocols, or a successful CONNECT: not HTTP after it.
    Tunnel,
}

/// `head_request`, `connect`: the method of the request answered.
pub fn response_framing(head_request: bool, connect: bool, status: u16, headers: &[Header]) -> ResponseFraming {
    if status == 101 || (connect && (200..300).contains(&status)) {
        return ResponseFraming::Tunnel;
    }
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return ResponseFraming::NoBody;
    }
    ResponseFraming::Body(framing_from_headers(headers))
}

pub fn framing_from_headers(headers: &[Header]) -> Framing {
    let mut codings = header_list(headers, "transfer-encoding").peekable();
    if codings.peek().is_some() {
        // Transfer-Encoding overrides Content-Length (section 6.3, item 3).
        let last = codings.last().unwrap_or_default();
        return if last.eq_ignore_ascii_case("chunked") { Framing::Chunked } else { Framing::UntilClose };
    }
    let mut length = None;
    for value in header_list(headers, "content-length") {
        let parsed = parse_content_length(value);
        match (parsed, length) {
            (None, _) => return Framing::Invalid,
            (Some(n), Some(previous)) if n != previous => return Framing::Invalid,
            (Some(n), _) => length = Some(n),
        }
    }
    match length {
        None => Framing::Absent,
        Some(0) => Framing::None,
        Some(n) => Framing::Length(n),
    }
}

/// Digits only (no sign, no spaces inside), and it must fit in a u64.
fn parse_content_length(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Parses a chunk-size line (hex digits, optional extensions), given
/// without its line end (a bare LF ends a line too), by httparse's rules.
pub fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // httparse reads a line without digits as size 0; a size needs one.
    if !line.first().is_some_and(u8::is_ascii_hexdigit) {
        return None;
    }
    // httparse wants the CRLF; short lines (all real ones) are framed on
    // the stack so no chunk costs an allocation.
    let mut short = [0u8; 64];
    let long;
    let framed: &[u8] = if line.len() + 2 <= short.len() {
        short[..line.len()].copy_from_slice(line);
        short[line.len()..line.len() + 2].copy_from_slice(b"\r\n");
        &short[..line.len() + 2]
    } else {
        long = [line, b"\r\n"].concat();
        &long
    };
    match httparse::parse_chunk_size(framed) {
        Ok(httparse::Status::Complete((used, size))) if used == framed.len() => Some(size),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<Header> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn transfer_encoding_wins_over_content_length() {
        let h = headers(&[("Content-Length", "10"), ("Transfer-Encoding", "gzip, chunked")]);
        assert_eq!(framing_from_headers(&h), Framing::Chunked);
    }

    #[test]
    fn bad_content_lengths_are_invalid() {
        for bad in ["-1", "18446744073709551616", "1 2", "0x10", "+5"] {
            assert_eq!(framing_from_headers(&headers(&[("Content-Length", bad)])), Framing::Invalid, "{bad}");
        }
        let twice = headers(&[("Content-Length", "5"), ("content-length", "6")]);
        assert_eq!(framing_from_headers(&twice), Framing::Invalid);
        let same = headers(&[("Content-Length", "5, 5")]);
        assert_eq!(framing_from_headers(&same), Framing::Length(5));
    }

    #[test]
    fn chunk_sizes_reject_overflow_and_junk() {
        assert_eq!(parse_chunk_size(b"1a;name=v\r"), Some(26));
        assert_eq!(parse_chunk_size(b"00000000000000010"), None);
        assert_eq!(parse_chunk_size(b"10000000000000000"), None);
        assert_eq!(parse_chunk_size(b"zz"), None);
    }

    #[test]
    fn start_lines_are_recognised() {
        assert!(is_request_line(b"GET /a?b=1 HTTP/1.1"));
        assert!(is_request_line(b"GET /"));
        assert!(!is_request_line(b"SSH-2.0-OpenSSH_9.2"));
        assert!(is_status_line(b"HTTP/1.0 200 OK"));
        assert!(!is_status_line(b"HTTP/1.0 2x0 OK"));
        assert!(is_status_line(b"HTTP/1.01 200 OK"));
        assert!(!is_status_line(b"HTTP/1.012 200 OK"));
        assert!(may_start_request(b"PO"));
        assert!(!may_start_request(b"SSH-2.0"));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nBODY", 0), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\nA: b\n\nBODY", 0), Some(21));
    }

    #[test]
    fn http09_requests_parse_without_version() {
        let head = parse_request(b"GET /index.html\r\n").unwrap();
        assert_eq!(head.version, "HTTP/0.9");
        assert_eq!(head.uri, "/index.html");
        let broken = parse_request(b"OPTIONS HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!((broken.uri.as_str(), broken.version.as_str()), ("", "HTTP/1.1"));
        let broken = parse_request(b"GET /HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!((broken.uri.as_str(), broken.version.as_str()), ("/HTTP/1.1", ""));
        assert_eq!(broken.headers, vec![("Host".to_string(), "x".to_string())]);
        let spaced = parse_request(b"CONNECT host:25 / HTTP/1.0\r\nJunk line\r\n\r\n").unwrap();
        assert_eq!((spaced.method.as_str(), spaced.uri.as_str()), ("CONNECT", "host:25 /"));
    }
}
