//! Header comparison. Names are compared case-insensitively and header order
//! never matters; repeated headers are compared as their values, in wire
//! order, joined by `", "`. Hop-by-hop and per-response headers (see
//! [`DEFAULT_IGNORED_HEADERS`], hop-by-hop ones) plus `rules.ignore_headers` are ignored.
//! Content-Type is compared after normalising case and spaces around `;`.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use super::rules::rule_names::{CONTENT_TYPE_NORMALISED, MEDIA_TYPE_PARAMS};
use super::{CompareRules, Comparison, DiffKind};

/// Headers that differ between any two servers, or that only describe
/// the transfer, besides the hop-by-hop ones
/// ([`crate::semantics::HOP_BY_HOP`]): together the headers never
/// compared. `content-encoding` is here because bodies are decoded before
/// they are compared.
pub(crate) const DEFAULT_IGNORED_HEADERS: &[&str] =
    &["date", "content-length", "content-encoding", "server", "age", "via", "x-shadowtap-replay"];

/// Lowercase, trimmed, no spaces around `;`: `Text/HTML ; Charset=UTF-8` → `text/html;charset=utf-8`.
pub(crate) fn normalise_content_type(value: &str) -> String {
    value.split(';').map(|part| part.trim().to_ascii_lowercase()).collect::<Vec<_>>().join(";")
}

pub(crate) fn compare_headers(
    recorded: &[(String, String)],
    candidate: &[(String, String)],
    rules: &CompareRules,
    out: &mut Comparison,
) {
    if !same_in_wire_order(recorded, candidate, rules, out) {
        compare_by_name(recorded, candidate, rules, out);
    }
}

/// The general walk: both sides grouped by name and sorted.
fn compare_by_name(
    recorded: &[(String, String)],
    candidate: &[(String, String)],
    rules: &CompareRules,
    out: &mut Comparison,
) {
    let recorded = collect_by_name(recorded);
    let candidate = collect_by_name(candidate);
    // Both sides are sorted by lowercase name: walk them together, in the
    // order of the names present on either side.
    let (mut r, mut c) = (recorded.iter().peekable(), candidate.iter().peekable());
    loop {
        let (name, pair) = match (r.peek(), c.peek()) {
            (None, None) => break,
            (Some(a), Some(b)) => match cmp_ignoring_case(a.0, b.0) {
                Ordering::Less => (a.0, (Some(&*a.1), None)),
                Ordering::Greater => (b.0, (None, Some(&*b.1))),
                Ordering::Equal => (a.0, (Some(&*a.1), Some(&*b.1))),
            },
            (Some(a), None) => (a.0, (Some(&*a.1), None)),
            (None, Some(b)) => (b.0, (None, Some(&*b.1))),
        };
        if pair.0.is_some() {
            r.next();
        }
        if pair.1.is_some() {
            c.next();
        }
        if pair.0 == pair.1 {
            continue;
        }
        compare_one_header(&name.to_ascii_lowercase(), pair, rules, out);
    }
}

/// The usual case, without sorting: both sides have the same names in the
/// same order, and their values differ only in ignored headers (Date,
/// Server...). Records those as the general walk would (once per name, in
/// name order) and returns true; returns false, recording nothing, when
/// the general walk is needed.
fn same_in_wire_order(
    recorded: &[(String, String)],
    candidate: &[(String, String)],
    rules: &CompareRules,
    out: &mut Comparison,
) -> bool {
    if recorded.len() != candidate.len() {
        return false;
    }
    let mut ignored: Vec<String> = Vec::new();
    for ((rn, rv), (cn, cv)) in recorded.iter().zip(candidate) {
        let (rn, cn) = (rn.trim(), cn.trim());
        if !rn.eq_ignore_ascii_case(cn) {
            return false;
        }
        if rv.trim() == cv.trim() {
            continue;
        }
        let name = rn.to_ascii_lowercase();
        if !is_ignored_header(&name, rules) {
            return false;
        }
        ignored.push(name);
    }
    ignored.sort();
    ignored.dedup();
    out.ignored.extend(ignored.into_iter().map(|name| format!("header:{name}")));
    true
}

fn compare_one_header(
    name: &str,
    (recorded, candidate): (Option<&str>, Option<&str>),
    rules: &CompareRules,
    out: &mut Comparison,
) {
    if recorded == candidate {
        return;
    }
    let path = format!("header:{name}");
    if is_ignored_header(name, rules) {
        out.ignored.push(path);
        return;
    }
    if name == "content-type"
        && let Some(rule) = content_types_equivalent(recorded, candidate)
    {
        out.count_equivalence(rule);
        return;
    }
    let kind = match (recorded, candidate) {
        (Some(_), None) => DiffKind::Missing,
        (None, Some(_)) => DiffKind::Extra,
        _ => DiffKind::Changed,
    };
    let as_json = |v: Option<&str>| v.map_or(Value::Null, Value::from);
    out.push_difference(&path, kind, as_json(recorded), as_json(candidate));
}

/// Which rule makes two Content-Types equal, if one does: the same text
/// but for case, spaces and parameter order (`content_type_normalised`), or
/// a parameter that means nothing for the media type
/// (`media_type_params`): JSON is UTF-8 by definition (RFC 8259 defines no
/// charset for `application/json` or `+json` types), so `charset=utf-8`
/// there says nothing. For `text/*` a charset changes the decoding and
/// still differs.
fn content_types_equivalent(recorded: Option<&str>, candidate: Option<&str>) -> Option<&'static str> {
    let (recorded, candidate) = (recorded?, candidate?);
    if normalise_content_type(recorded) == normalise_content_type(candidate) {
        return Some(CONTENT_TYPE_NORMALISED);
    }
    let (recorded, candidate) = (MediaType::parse(recorded), MediaType::parse(candidate));
    if recorded.essence != candidate.essence {
        return None;
    }
    if recorded.params == candidate.params {
        return Some(CONTENT_TYPE_NORMALISED);
    }
    (recorded.meaningful_params() == candidate.meaningful_params()).then_some(MEDIA_TYPE_PARAMS)
}

/// `type/subtype` and its parameters, lowercased (values unquoted), sorted.
struct MediaType {
    essence: String,
    params: Vec<(String, String)>,
}

impl MediaType {
    fn parse(value: &str) -> MediaType {
        let mut parts = value.split(';');
        let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut params: Vec<(String, String)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_ascii_lowercase()))
            .collect();
        params.sort();
        MediaType { essence, params }
    }

    fn is_json(&self) -> bool {
        self.essence == "application/json" || self.essence.ends_with("+json")
    }

    /// The parameters less those that cannot change how the body is read.
    fn meaningful_params(&self) -> Vec<&(String, String)> {
        let says_nothing = |(name, value): &&(String, String)| {
            self.is_json() && name == "charset" && (value == "utf-8" || value == "utf8")
        };
        self.params.iter().filter(|p| !says_nothing(p)).collect()
    }
}

fn is_ignored_header(name: &str, rules: &CompareRules) -> bool {
    DEFAULT_IGNORED_HEADERS.contains(&name)
        || crate::semantics::is_hop_by_hop(name)
        || rules.ignore_headers.iter().any(|ignored| ignored.trim().eq_ignore_ascii_case(name))
}

/// Names compared as their ASCII lowercase.
fn cmp_ignoring_case(a: &str, b: &str) -> Ordering {
    a.bytes().map(|c| c.to_ascii_lowercase()).cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// (Trimmed name, values in wire order joined by `", "`), sorted by
/// lowercase name, one entry per name (case-insensitive).
fn collect_by_name(headers: &[(String, String)]) -> Vec<(&str, Cow<'_, str>)> {
    let mut trimmed: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.trim(), v.trim())).collect();
    // Stable: values of a repeated header stay in wire order.
    trimmed.sort_by(|a, b| cmp_ignoring_case(a.0, b.0));
    let mut by_name: Vec<(&str, Cow<'_, str>)> = Vec::with_capacity(trimmed.len());
    for (name, value) in trimmed {
        match by_name.last_mut() {
            Some((last, joined)) if last.eq_ignore_ascii_case(name) => {
                let joined = joined.to_mut();
                joined.push_str(", ");
                joined.push_str(value);
            }
            _ => by_name.push((name, Cow::Borrowed(value))),
        }
    }
    by_name
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
        let name = prop_oneof![Just("Date"), Just("date"), Just("ETag"), Just("Server"), Just("X-A"), Just("x-a")];
        let value = prop_oneof![Just("1"), Just(" 1 "), Just("2"), Just("")];
        prop::collection::vec((name, value).prop_map(|(n, v)| (n.to_string(), v.to_string())), 0..6)
    }

    proptest! {
        /// When the wire-order shortcut answers, it answers exactly what
        /// the general walk does.
        #[test]
        fn the_shortcut_agrees_with_the_general_walk(
            recorded in headers(),
            mut candidate in headers(),
            copy in any::<bool>(),
            ignore_etag in any::<bool>(),
        ) {
            if copy {
                // Same names in the same order, values free: the shortcut's case.
                candidate = recorded.iter().zip(candidate.iter().chain(std::iter::repeat(&(String::new(), "2".into()))))
                    .map(|((n, _), (_, v))| (n.clone(), v.clone()))
                    .collect();
            }
            let rules = CompareRules {
                ignore_headers: if ignore_etag { vec!["etag".into()] } else { vec![] },
                ..CompareRules::default()
            };
            let mut general = Comparison::default();
            compare_by_name(&recorded, &candidate, &rules, &mut general);
            let mut shortcut = Comparison::default();
            if same_in_wire_order(&recorded, &candidate, &rules, &mut shortcut) {
                prop_assert_eq!(shortcut, general);
            } else {
                prop_assert_eq!(shortcut, Comparison::default());
            }
        }
    }
}
