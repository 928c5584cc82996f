//! HTTP semantics (RFC 9110) that capture, replay and comparison all rely
//! on, written once: which methods are safe, which headers describe one
//! hop rather than the message, and how a header is looked up. Depends on
//! nothing; everything that needs these points down here.

/// A header as [`crate::exchange::Header`] holds it (no dependency up).
type Header = (String, String);

/// Methods that never change anything (RFC 9110 section 9.2.1, less
/// TRACE): the only ones sent to production (the secondary, the primary
/// for race checks) and the ones `replay` replays by default.
pub const SAFE_METHODS: [&str; 3] = ["GET", "HEAD", "OPTIONS"];

pub fn is_safe(method: &str) -> bool {
    SAFE_METHODS.iter().any(|m| m.eq_ignore_ascii_case(method))
}

/// Headers that describe one hop (one connection), not the message (RFC
/// 9110 section 7.6.1): never forwarded, never compared.
pub const HOP_BY_HOP: [&str; 7] =
    ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Every value of header `name` (case-insensitive), in wire order.
pub fn header_values<'a>(headers: &'a [Header], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The first value of header `name` (case-insensitive), as sent.
pub fn first_header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// All values of header `name`, trimmed and joined by `", "` in wire order
/// (how a repeated header reads as one, RFC 9110 section 5.3).
pub fn joined_header(headers: &[Header], name: &str) -> Option<String> {
    let mut values = header_values(headers, name).map(str::trim);
    let first = values.next()?;
    Some(values.fold(first.to_owned(), |joined, v| joined + ", " + v))
}

/// The elements of a list-valued header (`Connection`, `Transfer-Encoding`),
/// sent once with commas or repeated: each trimmed, empty ones left out.
pub fn header_list<'a>(headers: &'a [Header], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    header_values(headers, name).flat_map(|v| v.split(',')).map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<Header> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn look_ups_ignore_case_and_keep_wire_order() {
        let h = headers(&[("Vary", " a "), ("X", "1"), ("vary", "b, ,c")]);
        assert_eq!(first_header(&h, "VARY"), Some(" a "));
        assert_eq!(joined_header(&h, "vary").as_deref(), Some("a, b, ,c"));
        assert_eq!(header_list(&h, "Vary").collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(first_header(&h, "missing"), None);
        assert_eq!(joined_header(&h, "missing"), None);
    }

    #[test]
    fn safe_methods_and_hop_by_hop_headers_ignore_case() {
        assert!(is_safe("get") && is_safe("OPTIONS") && !is_safe("POST") && !is_safe("TRACE"));
        assert!(is_hop_by_hop("Transfer-Encoding") && !is_hop_by_hop("content-length"));
    }
}
