//! Unit tests of [`super::compare`], one group per rule.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::encoding::test_support::{brotli, gzip, raw_deflate, zlib};
use super::json_compare::PAIRWISE_BASE_BUDGET;
use super::rule_names::*;
use super::*;

mod json;

// ----- helpers -----------------------------------------------------------

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

fn answer<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> Answer<'a> {
    Answer { status: 200, headers, body }
}

/// Compares two bodies sent with the given headers on each side.
fn compare_with(
    recorded: (&[(&str, &str)], &[u8]),
    candidate: (&[(&str, &str)], &[u8]),
    rules: &CompareRules,
) -> Comparison {
    let (rh, ch) = (headers(recorded.0), headers(candidate.0));
    compare(&answer(&rh, recorded.1), &answer(&ch, candidate.1), rules)
}

const JSON_CT: &[(&str, &str)] = &[("Content-Type", "application/json")];

fn compare_json_with(recorded: &str, candidate: &str, rules: &CompareRules) -> Comparison {
    compare_with((JSON_CT, recorded.as_bytes()), (JSON_CT, candidate.as_bytes()), rules)
}

fn compare_json(recorded: &str, candidate: &str) -> Comparison {
    compare_json_with(recorded, candidate, &CompareRules::default())
}

fn diff(path: &str, kind: DiffKind, recorded: Value, candidate: Value) -> Difference {
    Difference { path: path.to_string(), kind, recorded, candidate }
}

/// A JSON value keeping the exact number text (arbitrary_precision).
fn v(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn counts(pairs: &[(&'static str, u64)]) -> BTreeMap<&'static str, u64> {
    pairs.iter().copied().collect()
}

fn unordered(paths: &[&str]) -> CompareRules {
    CompareRules { unordered_arrays: paths.iter().map(|p| p.to_string()).collect(), ..CompareRules::default() }
}

fn ignoring(paths: &[&str]) -> CompareRules {
    CompareRules { ignore_paths: paths.iter().map(|p| p.to_string()).collect(), ..CompareRules::default() }
}

// ----- rules and output types -------------------------------------------

#[test]
fn default_rules_have_documented_defaults() {
    let rules = CompareRules::default();
    assert!(rules.compare_headers);
    assert!(rules.timestamps_as_instants);
    assert!(rules.numbers_by_value);
    assert!(!rules.null_equals_missing);
    assert!(rules.ignore_headers.is_empty() && rules.ignore_paths.is_empty());
}

#[test]
fn rules_deserialize_with_defaults_and_reject_unknown_fields() {
    let rules: CompareRules =
        serde_json::from_str(r#"{"ignore_paths": ["/request_id"], "numbers_by_value": false}"#).unwrap();
    assert_eq!(rules.ignore_paths, vec!["/request_id"]);
    assert!(!rules.numbers_by_value);
    assert!(rules.compare_headers && rules.timestamps_as_instants);
    assert!(serde_json::from_str::<CompareRules>(r#"{"ignore_path": []}"#).is_err());
}

#[test]
fn difference_serializes_kind_in_lowercase() {
    let d = diff("/a", DiffKind::Type, json!("9"), json!(9));
    assert_eq!(
        serde_json::to_value(&d).unwrap(),
        json!({"path": "/a", "kind": "type", "recorded": "9", "candidate": 9})
    );
    for (kind, name) in [(DiffKind::Changed, "changed"), (DiffKind::Missing, "missing"), (DiffKind::Extra, "extra")] {
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(name));
    }
}

// ----- status -------------------------------------------------------------

#[test]
fn status_is_compared_exactly() {
    let h = headers(&[]);
    let recorded = Answer { status: 200, headers: &h, body: b"" };
    let candidate = Answer { status: 201, ..recorded };
    let c = compare(&recorded, &candidate, &CompareRules::default());
    assert_eq!(c.differences, vec![diff("status", DiffKind::Changed, json!(200), json!(201))]);
    assert!(compare(&recorded, &recorded, &CompareRules::default()).is_equal());
}

// ----- headers ------------------------------------------------------------

#[test]
fn header_name_case_and_order_do_not_matter() {
    let c = compare_with(
        (&[("Content-Type", "text/plain"), ("X-Feature", "on")], b"hi"),
        (&[("x-feature", "on"), ("CONTENT-TYPE", "text/plain")], b"hi"),
        &CompareRules::default(),
    );
    assert_eq!(c, Comparison::default());
}

#[test]
fn repeated_headers_compare_as_joined_ordered_values() {
    let rules = CompareRules::default();
    let joined = compare_with((&[("X-M", "a"), ("x-m", "b")], b""), (&[("X-M", "a, b")], b""), &rules);
    assert!(joined.is_equal());
    let swapped = compare_with(
        (&[("X-M", "a"), ("X-Other", "z"), ("x-m", "b")], b""),
        (&[("x-m", "b"), ("x-m", "a"), ("X-Other", "z")], b""),
        &rules,
    );
    assert_eq!(swapped.differences, vec![diff("header:x-m", DiffKind::Changed, json!("a, b"), json!("b, a"))]);
}

#[test]
fn missing_and_extra_headers() {
    let c = compare_with((&[("Cache-Control", "no-store")], b""), (&[("X-New", "1")], b""), &CompareRules::default());
    assert_eq!(
        c.differences,
        vec![
            diff("header:cache-control", DiffKind::Missing, json!("no-store"), Value::Null),
            diff("header:x-new", DiffKind::Extra, Value::Null, json!("1")),
        ]
    );
}

#[test]
fn default_ignored_headers_are_listed_only_when_they_differ() {
    let c = compare_with(
        (&[("Date", "Mon, 15 Jan 2024 10:00:00 GMT"), ("Server", "legacy"), ("Via", "1.1 x")], b"same"),
        (&[("date", "Tue, 16 Jan 2024 11:00:00 GMT"), ("server", "legacy"), ("Connection", "close")], b"same"),
        &CompareRules::default(),
    );
    assert!(c.is_equal());
    assert_eq!(c.ignored, vec!["header:connection", "header:date", "header:via"]);
}

#[test]
fn configured_ignored_headers_are_case_insensitive_and_request_ids_are_not_ignored_by_default() {
    let recorded: &[(&str, &str)] = &[("X-Request-Id", "abc")];
    let candidate: &[(&str, &str)] = &[("x-request-id", "def")];
    let by_default = compare_with((recorded, b""), (candidate, b""), &CompareRules::default());
    assert_eq!(
        by_default.differences,
        vec![diff("header:x-request-id", DiffKind::Changed, json!("abc"), json!("def"))]
    );
    let rules = CompareRules { ignore_headers: vec!["X-REQUEST-ID".into()], ..CompareRules::default() };
    let configured = compare_with((recorded, b""), (candidate, b""), &rules);
    assert!(configured.is_equal());
    assert_eq!(configured.ignored, vec!["header:x-request-id"]);
}

#[test]
fn compare_headers_false_skips_headers_entirely() {
    let rules = CompareRules { compare_headers: false, ..CompareRules::default() };
    let c = compare_with((&[("X-A", "1"), ("Date", "x")], b"body"), (&[("X-A", "2")], b"body"), &rules);
    assert_eq!(c, Comparison::default());
}

#[test]
fn content_type_is_normalised_and_counted() {
    let c = compare_with(
        (&[("Content-Type", "application/json; charset=utf-8")], b"{}"),
        (&[("Content-Type", "Application/JSON;charset=UTF-8")], b"{}"),
        &CompareRules::default(),
    );
    assert!(c.is_equal());
    assert_eq!(c.equivalences, counts(&[(CONTENT_TYPE_NORMALISED, 1)]));

    let different = compare_with(
        (&[("Content-Type", "application/json")], b"{}"),
        (&[("Content-Type", "application/problem+json")], b"{}"),
        &CompareRules::default(),
    );
    assert_eq!(
        different.differences,
        vec![diff(
            "header:content-type",
            DiffKind::Changed,
            json!("application/json"),
            json!("application/problem+json")
        )]
    );
    assert!(different.equivalences.is_empty());
}

#[test]
fn a_charset_that_means_nothing_for_json_is_a_counted_equivalence_but_not_for_text() {
    let content_types = |recorded: &str, candidate: &str| {
        compare_with(
            (&[("Content-Type", recorded)], b"{}"),
            (&[("Content-Type", candidate)], b"{}"),
            &CompareRules::default(),
        )
    };
    for (recorded, candidate) in [
        ("application/json", "application/json; charset=utf-8"),
        ("application/problem+json; charset=UTF-8", "application/problem+json"),
        ("application/json", "application/json;charset=\"utf8\""),
    ] {
        let c = content_types(recorded, candidate);
        assert!(c.is_equal(), "{recorded} vs {candidate}: {c:?}");
        assert_eq!(c.equivalences, counts(&[(MEDIA_TYPE_PARAMS, 1)]), "{recorded} vs {candidate}");
    }
    let c = content_types("text/html; q=1; charset=utf-8", "text/html; charset=UTF-8; q=1");
    assert_eq!(c.equivalences, counts(&[(CONTENT_TYPE_NORMALISED, 1)]), "parameter order and case");
    for (recorded, candidate) in [
        ("text/plain", "text/plain; charset=utf-8"),
        ("text/html; charset=iso-8859-1", "text/html; charset=utf-8"),
        ("application/json", "application/json; charset=iso-8859-1"),
        ("application/json", "text/json"),
    ] {
        let c = content_types(recorded, candidate);
        assert_eq!(c.differences.len(), 1, "{recorded} vs {candidate} still differ");
        assert_eq!(c.differences[0].path, "header:content-type");
    }
}

// ----- content encoding ------------------------------------------------------

const BODY: &str = r#"{"id": 7, "name": "widget", "tags": ["a", "b"]}"#;

#[test]
fn gzip_and_plain_with_same_json_are_equal_and_counted() {
    let gzipped = gzip(BODY.as_bytes());
    let c = compare_with(
        (&[("Content-Type", "application/json"), ("Content-Encoding", "gzip")], &gzipped),
        (JSON_CT, BODY.as_bytes()),
        &CompareRules::default(),
    );
    assert!(c.is_equal(), "{:?}", c.differences);
    assert_eq!(c.equivalences, counts(&[(CONTENT_ENCODING, 1)]));
    assert_eq!(c.ignored, vec!["header:content-encoding"]);
}

#[test]
fn each_encoding_decodes_before_comparison() {
    let plain = BODY.as_bytes();
    for (coding, encoded) in [
        ("gzip", gzip(plain)),
        ("x-gzip", gzip(plain)),
        ("deflate", zlib(plain)),
        ("deflate", raw_deflate(plain)),
        ("gzip, br", brotli(&gzip(plain))),
    ] {
        let c = compare_with(
            (&[("Content-Type", "application/json"), ("Content-Encoding", coding)], &encoded),
            (&[("Content-Type", "application/json"), ("Content-Encoding", "br")], &brotli(plain)),
            &CompareRules::default(),
        );
        assert!(c.is_equal(), "{coding}: {:?}", c.differences);
        assert_eq!(c.equivalences, counts(&[(CONTENT_ENCODING, 1)]), "{coding}");
    }
}

#[test]
fn decoding_plus_key_order_counts_both_rules() {
    let reordered = r#"{"tags": ["a", "b"], "name": "widget", "id": 7}"#;
    let c = compare_with(
        (&[("Content-Encoding", "gzip"), ("Content-Type", "application/json")], &gzip(BODY.as_bytes())),
        (JSON_CT, reordered.as_bytes()),
        &CompareRules::default(),
    );
    assert!(c.is_equal());
    assert_eq!(c.equivalences, counts(&[(CONTENT_ENCODING, 1), (KEY_ORDER, 1)]));
}

#[test]
fn decoded_bodies_that_still_differ_do_not_count_content_encoding() {
    let other = BODY.replace("widget", "gadget");
    let c = compare_with(
        (&[("Content-Encoding", "gzip"), ("Content-Type", "application/json")], &gzip(BODY.as_bytes())),
        (JSON_CT, other.as_bytes()),
        &CompareRules::default(),
    );
    assert_eq!(c.differences, vec![diff("/name", DiffKind::Changed, json!("widget"), json!("gadget"))]);
    assert!(c.equivalences.is_empty());
}

#[test]
fn corrupt_encoding_falls_back_to_raw_bytes() {
    let mut broken = gzip(BODY.as_bytes());
    broken.truncate(broken.len() / 2);
    let c = compare_with((&[("Content-Encoding", "gzip")], &broken), (&[], BODY.as_bytes()), &CompareRules::default());
    assert_eq!(c.differences.len(), 1);
    let d = &c.differences[0];
    assert_eq!((d.path.as_str(), d.kind), ("", DiffKind::Changed));
    let expected = format!("{} bytes sha256:", broken.len());
    assert!(d.recorded.as_str().unwrap().starts_with(&expected), "{d:?}");
}

// ----- body kinds ---------------------------------------------------------------------------

#[test]
fn missing_content_type_with_parseable_json_compares_as_json() {
    let c = compare_with((&[], br#"{"a": 1, "b": 2}"#), (&[], br#"{"b": 2, "a": 1}"#), &CompareRules::default());
    assert!(c.is_equal());
    assert_eq!(c.equivalences, counts(&[(KEY_ORDER, 1)]));
}

#[test]
fn text_content_type_with_json_body_compares_as_text() {
    let ct: &[(&str, &str)] = &[("Content-Type", "text/plain")];
    let c = compare_with((ct, br#"{"a": 1, "b": 2}"#), (ct, br#"{"b": 2, "a": 1}"#), &CompareRules::default());
    assert_eq!(c.differences.len(), 1);
    assert_eq!(c.differences[0].path, "");
}

#[test]
fn invalid_json_on_one_side_compares_as_text() {
    let c = compare_json(r#"{"a": 1}"#, r#"{"a": 1"#);
    assert_eq!(c.differences.len(), 1);
    let d = &c.differences[0];
    assert_eq!((d.path.as_str(), d.kind), ("", DiffKind::Changed));
    assert_eq!(d.recorded, json!(r#"{"a": 1}"#));
    let udiff = d.candidate.as_str().unwrap();
    assert!(udiff.starts_with("@@"), "{udiff}");
    assert!(udiff.contains("-{\"a\": 1}\n+{\"a\": 1"), "{udiff}");
}

#[test]
fn text_with_crlf_equals_text_with_lf() {
    let ct: &[(&str, &str)] = &[("Content-Type", "text/plain; charset=utf-8")];
    let c = compare_with((ct, b"one\r\ntwo\r\n"), (ct, b"one\ntwo\n"), &CompareRules::default());
    assert!(c.is_equal());
    assert_eq!(c.equivalences, counts(&[(LINE_ENDINGS, 1)]));
}

#[test]
fn differing_text_reports_excerpt_and_unified_diff() {
    let ct: &[(&str, &str)] = &[("Content-Type", "text/html")];
    let c = compare_with((ct, b"<p>\nhello\n</p>\n"), (ct, b"<p>\nbye\n</p>\n"), &CompareRules::default());
    assert_eq!(
        c.differences,
        vec![diff(
            "",
            DiffKind::Changed,
            json!("<p>\nhello\n</p>"),
            json!("@@ -1,3 +1,3 @@\n <p>\n-hello\n+bye\n </p>")
        )]
    );
}

#[test]
fn binary_bodies_differ_by_length_and_hash() {
    let recorded: &[u8] = &[0x89, b'P', b'N', b'G', 0xff, 0x00];
    let candidate: &[u8] = &[0x89, b'P', b'N', b'G', 0xfe];
    let ct: &[(&str, &str)] = &[("Content-Type", "image/png")];
    let c = compare_with((ct, recorded), (ct, candidate), &CompareRules::default());
    assert_eq!(c.differences.len(), 1);
    let d = &c.differences[0];
    let (r, k) = (d.recorded.as_str().unwrap(), d.candidate.as_str().unwrap());
    assert!(r.starts_with("6 bytes sha256:") && k.starts_with("5 bytes sha256:"), "{r} {k}");
    assert_eq!(r.len(), "6 bytes sha256:".len() + 16);
    assert!(compare_with((ct, recorded), (ct, recorded), &CompareRules::default()).is_equal());
}

#[test]
fn identical_bodies_with_empty_json_content_type_are_equal() {
    let c = compare_json("", "");
    assert_eq!(c, Comparison::default());
    let c = compare_json("", "{}");
    assert_eq!(c.differences.len(), 1);
}

#[test]
fn duplicate_keys_resolve_like_serde_json_last_value_wins() {
    let c = compare_json(r#"{"a": 1, "b": 2, "a": 3}"#, r#"{"a": 3, "b": 2}"#);
    assert_eq!(c, Comparison::default());
    let c = compare_json(r#"{"a": 1, "a": 3}"#, r#"{"a": 1}"#);
    assert_eq!(c.differences, vec![diff("/a", DiffKind::Changed, v("3"), v("1"))]);
}

#[test]
fn json_nested_beyond_the_parse_limit_is_compared_as_text() {
    let deep = |leaf: &str| format!("{}{leaf}{}", "[".repeat(200), "]".repeat(200));
    let c = compare_json(&deep("1"), &deep("1.0"));
    assert_eq!(c.differences.len(), 1);
    assert_eq!(c.differences[0].path, "");
    assert!(c.differences[0].candidate.as_str().unwrap().starts_with("@@"));
}
