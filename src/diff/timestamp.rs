//! RFC 3339 timestamps compared as instants: `2024-01-15T12:30:00+02:00`
//! equals `2024-01-15T10:30:00Z`. Parsing is chrono's, which also accepts a
//! lowercase `t`/`z` and a space instead of `T` (and keeps at most 9 digits of
//! fractional seconds).

use chrono::{DateTime, FixedOffset};

/// Parses `text` as an RFC 3339 date-time, cheaply rejecting most strings first.
pub(crate) fn parse_instant(text: &str) -> Option<DateTime<FixedOffset>> {
    if !looks_like_timestamp(text) {
        return None;
    }
    DateTime::parse_from_rfc3339(text).ok()
}

/// Both texts are timestamps and denote the same instant.
pub(crate) fn same_instant(a: &str, b: &str) -> bool {
    match (parse_instant(a), parse_instant(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Canonical text of the instant (`<unix seconds>.<nanoseconds>`), if `text` is a timestamp.
pub(crate) fn canonical_instant(text: &str) -> Option<String> {
    let instant = parse_instant(text)?;
    Some(format!("{}.{:09}", instant.timestamp(), instant.timestamp_subsec_nanos()))
}

/// `YYYY-` prefix and a plausible length; avoids running the parser on every string.
fn looks_like_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    (19..=64).contains(&bytes.len()) && bytes[..4].iter().all(u8::is_ascii_digit) && bytes[4] == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_instant_with_different_offsets_and_spellings() {
        let base = "2024-01-15T10:30:00Z";
        for other in [
            "2024-01-15T10:30:00+00:00",
            "2024-01-15T12:30:00+02:00",
            "2024-01-15T05:30:00-05:00",
            "2024-01-15T10:30:00.000Z",
            "2024-01-15t10:30:00z",
            "2024-01-15 10:30:00Z",
        ] {
            assert!(same_instant(base, other), "{other}");
            assert_eq!(canonical_instant(base), canonical_instant(other), "{other}");
        }
    }

    #[test]
    fn different_instants_and_non_timestamps_differ() {
        assert!(!same_instant("2024-01-15T10:30:00Z", "2024-01-15T10:30:00+02:00"));
        assert!(!same_instant("2024-01-15T10:30:00Z", "2024-01-15T10:30:00.001Z"));
        assert!(!same_instant("2024-01-15T10:30:00Z", "2024-01-15 10:30"));
        assert!(!same_instant("2024-01-15", "2024-01-15"));
        assert_eq!(canonical_instant("2024-01-15T10:30:00"), None);
        assert_eq!(canonical_instant("hello"), None);
    }
}
