//! Header comparison. Names are compared case-insensitively and header order
//! never matters; repeated headers are compared as their values, in wire
//! order, joined by `", "`. Hop-by-hop and per-response headers (see
//! [`DEFAULT_IGNORED_HEADERS`]) plus `rules.ignore_headers` are ignored.
//! Content-Type is compared after normalising case and spaces around `;`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::rules::rule_names::CONTENT_TYPE_NORMALISED;
use super::{CompareRules, Comparison, DiffKind};

/// Headers that differ between any two servers or connections, or that only
/// describe the transfer. `content-encoding` is here because bodies are
/// decoded before they are compared.
pub(crate) const DEFAULT_IGNORED_HEADERS: &[&str] = &[
    "date",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "server",
    "age",
    "via",
    "te",
    "trailer",
    "upgrade",
    "x-shadowtap-replay",
];

/// All values of header `name` (case-insensitive), in order, joined by `", "`.
pub(crate) fn header_value(headers: &[(String, String)], name: &str) -> Option<String> {
    let mut values = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
    let first = values.next()?;
    Some(values.fold(first.to_owned(), |joined, v| joined + ", " + v))
}

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
    let recorded = collect_by_name(recorded);
    let candidate = collect_by_name(candidate);
    for name in union_of_names(&recorded, &candidate) {
        let pair = (recorded.get(name).map(String::as_str), candidate.get(name).map(String::as_str));
        compare_one_header(name, pair, rules, out);
    }
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
    if name == "content-type" && content_types_equivalent(recorded, candidate) {
        out.count_equivalence(CONTENT_TYPE_NORMALISED);
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

fn content_types_equivalent(recorded: Option<&str>, candidate: Option<&str>) -> bool {
    match (recorded, candidate) {
        (Some(a), Some(b)) => normalise_content_type(a) == normalise_content_type(b),
        _ => false,
    }
}

fn is_ignored_header(name: &str, rules: &CompareRules) -> bool {
    DEFAULT_IGNORED_HEADERS.contains(&name)
        || rules.ignore_headers.iter().any(|ignored| ignored.trim().eq_ignore_ascii_case(name))
}

/// Lowercase name → values in wire order joined by `", "`.
fn collect_by_name(headers: &[(String, String)]) -> BTreeMap<String, String> {
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = value.trim();
        by_name
            .entry(name.trim().to_ascii_lowercase())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    by_name
}

/// Sorted, deduplicated names present on either side.
fn union_of_names<'m>(recorded: &'m BTreeMap<String, String>, candidate: &'m BTreeMap<String, String>) -> Vec<&'m str> {
    let mut names: Vec<&str> = recorded.keys().chain(candidate.keys()).map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    names
}
