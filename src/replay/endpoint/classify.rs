//! Path segments recognised without learning: a segment (or a run of
//! segments, for dates) in, a named placeholder or the segment itself out.
//!
//! Strong classes are safe to apply anywhere, because no API names its
//! routes that way: numbers, UUIDs and long hex (`{id}`, as before),
//! base36/base62 ids mixing digits and letters (`{id}`), e-mail addresses
//! (`{email}`), ISO dates (`{date}`), `YYYY/MM/DD` runs (`{year}/{month}/
//! {day}`) and long base64url tokens (`{hash}`). Slugs are weak: a route
//! such as `get-user-profile` looks like one, so a slug only becomes
//! `{slug}` after a placeholder (`/comments/{id}/{slug}`), where it
//! describes that id, or when learning finds its position variable.

use std::borrow::Cow;

/// The segments of a path with strong classes replaced by placeholders.
pub fn normalise<'a>(segments: &[&'a str]) -> Vec<Cow<'a, str>> {
    let mut out = Vec::with_capacity(segments.len());
    let mut i = 0;
    while i < segments.len() {
        let date_run = date_run(&segments[i..]);
        if date_run > 0 {
            out.extend(["{year}", "{month}", "{day}"].iter().take(date_run).map(|p| Cow::Borrowed(*p)));
            i += date_run;
            continue;
        }
        out.push(match strong_class(segments[i]) {
            Some(placeholder) => Cow::Borrowed(placeholder),
            None => Cow::Borrowed(segments[i]),
        });
        i += 1;
    }
    out
}

/// The placeholder for a segment that is a value whatever its position.
pub fn strong_class(segment: &str) -> Option<&'static str> {
    if is_number(segment) || is_uuid(segment) || is_long_hex(segment) || is_mixed_id(segment) || is_fullname(segment) {
        Some("{id}")
    } else if is_email(segment) {
        Some("{email}")
    } else if is_iso_date(segment) {
        Some("{date}")
    } else if is_token(segment) {
        Some("{hash}")
    } else {
        None
    }
}

pub fn is_placeholder(segment: &str) -> bool {
    segment.len() >= 2 && segment.starts_with('{') && segment.ends_with('}')
}

/// Words joined by `-` or `_` (three or more), mostly letters: a title
/// made into a path (`python_latency_go`, `how-to-read-a-pcap`).
pub fn is_slug(segment: &str) -> bool {
    let words: Vec<&str> = segment.split(['-', '_']).collect();
    words.len() >= 3
        && segment.len() >= 8
        && words.iter().all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric()))
        && segment.bytes().filter(u8::is_ascii_alphabetic).count() * 2 > segment.len()
}

/// The name a learned variable position gets, from what its values (and
/// how many paths carry each) look like: `{slug}` when most are slugs,
/// `{id}` when most carry digits or are ids already, `{name}` otherwise
/// (user names, subreddits, owners).
pub fn variable_name<'a>(values: impl Iterator<Item = (&'a str, u64)>) -> &'static str {
    let (mut slugs, mut ids, mut all) = (0u64, 0u64, 0u64);
    for (v, n) in values {
        all += n;
        if is_slug(v) || v == "{slug}" {
            slugs += n;
        } else if v == "{id}" || v.bytes().any(|b| b.is_ascii_digit()) {
            ids += n;
        }
    }
    if slugs * 2 > all {
        "{slug}"
    } else if ids * 2 > all {
        "{id}"
    } else {
        "{name}"
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_long_hex(s: &str) -> bool {
    s.len() >= 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_uuid(s: &str) -> bool {
    let mut groups = 0;
    for (g, n) in s.split('-').zip([8, 4, 4, 4, 12]) {
        if g.len() != n || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        groups += 1;
    }
    groups == 5 && s.len() == 36
}

/// A base36/base62 id such as `269ajd` or `aZ3kQ9xP`: letters and digits
/// mixed the way random ids are and words are not. `sha256`, `page10`,
/// `utf8`, `v2` (a word, then a number) stay literal.
fn is_mixed_id(s: &str) -> bool {
    if !(5..=64).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    if digits == 0 || digits == s.len() {
        return false;
    }
    let bytes = s.as_bytes();
    // Digits and letters alternating (case does not count: `iPhone12`).
    let alternations = bytes.windows(2).filter(|w| w[0].is_ascii_digit() != w[1].is_ascii_digit()).count();
    alternations >= 3 || (digits >= 2 && bytes[0].is_ascii_digit())
}

/// A type-prefixed id such as Reddit's `t3_269ajd`.
fn is_fullname(s: &str) -> bool {
    let Some((prefix, id)) = s.split_once('_') else { return false };
    let p = prefix.as_bytes();
    p.len() == 2
        && p[0].is_ascii_lowercase()
        && p[1].is_ascii_digit()
        && (1..=16).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

fn is_email(s: &str) -> bool {
    // Most segments have neither `@` nor `%40`: no allocation for them.
    if memchr::memchr2(b'@', b'%', s.as_bytes()).is_none() {
        return false;
    }
    let s = s.replace("%40", "@");
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// `2024-01-15`, optionally with a time after it.
fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && two_digits_in(&b[5..7], 1, 12)
        && b[7] == b'-'
        && two_digits_in(&b[8..10], 1, 31)
        && (b.len() == 10 || b[10] == b'T' || b[10] == b' ' || b[10] == b'_')
}

fn two_digits_in(b: &[u8], low: u8, high: u8) -> bool {
    b.len() == 2 && b.iter().all(u8::is_ascii_digit) && (low..=high).contains(&((b[0] - b'0') * 10 + b[1] - b'0'))
}

fn number_in(s: &str, digits: std::ops::RangeInclusive<usize>, low: u32, high: u32) -> bool {
    digits.contains(&s.len()) && is_number(s) && s.parse::<u32>().is_ok_and(|n| (low..=high).contains(&n))
}

/// How many segments from the start form a date: 3 for `2024/01/15`,
/// 2 for `2024/01` (a two-digit month), else 0.
fn date_run(segments: &[&str]) -> usize {
    let year = |s: &str| number_in(s, 4..=4, 1900, 2100);
    match segments {
        [y, m, d, ..] if year(y) && number_in(m, 1..=2, 1, 12) && number_in(d, 1..=2, 1, 31) => 3,
        [y, m, ..] if year(y) && number_in(m, 2..=2, 1, 12) => 2,
        _ => 0,
    }
}

/// A long opaque token (base64url of a hash or a key): long, with upper
/// and lower case letters and digits.
fn is_token(s: &str) -> bool {
    s.len() >= 20
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().any(|b| b.is_ascii_uppercase())
        && s.bytes().any(|b| b.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(path: &str) -> String {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        normalise(&segments).join("/")
    }

    #[test]
    fn values_are_recognised_by_their_shape() {
        assert_eq!(norm("/r/golang/comments/269ajd/python_latency_go"), "r/golang/comments/{id}/python_latency_go");
        assert_eq!(norm("/api/info/t3_269ajd"), "api/info/{id}");
        assert_eq!(norm("/p/aZ3kQ9xP/edit"), "p/{id}/edit");
        assert_eq!(norm("/archive/2024/01/15"), "archive/{year}/{month}/{day}");
        assert_eq!(norm("/archive/2024/01"), "archive/{year}/{month}");
        assert_eq!(norm("/stats/2024-01-15"), "stats/{date}");
        assert_eq!(norm("/users/ann.lee@example.com/prefs"), "users/{email}/prefs");
        assert_eq!(norm("/users/ann%40example.org"), "users/{email}");
        assert_eq!(norm("/k/Xq3_vB9-kLm2Pz8RtY1wQe"), "k/{hash}");
        assert_eq!(norm("/o/123e4567-e89b-12d3-a456-426614174000"), "o/{id}");
        assert_eq!(norm("/blob/0123456789abcdef0123"), "blob/{id}");
        assert_eq!(norm("/issues/42"), "issues/{id}");
    }

    #[test]
    fn route_words_stay_literal() {
        for literal in [
            "sha256",
            "page10",
            "utf8",
            "v2",
            "oauth2",
            "hot.json",
            "about.json",
            "get-user-profile",
            "x86_64",
            "iPhone12",
            "html5",
            "api",
            "users",
        ] {
            assert_eq!(strong_class(literal), None, "{literal}");
        }
        // A year alone is a number ({id}, as before), not a date.
        assert_eq!(norm("/y/2024"), "y/{id}");
    }

    #[test]
    fn slugs_and_variable_names() {
        assert!(is_slug("python_latency_go"));
        assert!(is_slug("how-to-read-a-pcap"));
        assert!(!is_slug("hot.json"));
        assert!(!is_slug("a-b"));
        let one = |v: &'static [&'static str]| v.iter().map(|s| (*s, 1));
        assert_eq!(variable_name(one(&["python_latency_go", "why-rust-now", "x"])), "{slug}");
        assert_eq!(variable_name(one(&["alice", "bob", "carol2"])), "{name}");
        assert_eq!(variable_name(one(&["ab1", "{id}", "carol"])), "{id}");
        assert_eq!(variable_name([("{id}", 30), ("abc", 1), ("xyz", 1)].into_iter()), "{id}");
    }
}
