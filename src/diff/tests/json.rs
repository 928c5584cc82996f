//! JSON bodies compared as values: key order, strings, numbers,
//! timestamps, null and types, arrays (ordered and not), ignore paths.

use super::*;

// ----- JSON: key order ----------------------------------------------------------

#[test]
fn nested_arrays_of_objects_with_differing_key_orders_are_equal() {
    let recorded = r#"{"items": [{"a": 1, "b": {"x": 1, "y": [{"p": 1, "q": 2}]}}, {"c": 3, "d": 4}], "z": 0}"#;
    let candidate = r#"{"z": 0, "items": [{"b": {"y": [{"q": 2, "p": 1}], "x": 1}, "a": 1}, {"c": 3, "d": 4}]}"#;
    let c = compare_json(recorded, candidate);
    assert!(c.is_equal(), "{:?}", c.differences);
    // root, items/0, items/0/b, items/0/b/y/0 — not items/1 (same order).
    assert_eq!(c.equivalences, counts(&[(KEY_ORDER, 4)]));
}

#[test]
fn key_order_is_counted_even_when_values_differ_but_not_when_key_sets_differ() {
    let c = compare_json(r#"{"a": 1, "b": 2}"#, r#"{"b": 3, "a": 1}"#);
    assert_eq!(c.differences, vec![diff("/b", DiffKind::Changed, json!(2), json!(3))]);
    assert_eq!(c.equivalences, counts(&[(KEY_ORDER, 1)]));

    let c = compare_json(r#"{"a": 1, "b": 2}"#, r#"{"c": 2, "a": 1}"#);
    assert_eq!(
        c.differences,
        vec![diff("/b", DiffKind::Missing, json!(2), Value::Null), diff("/c", DiffKind::Extra, Value::Null, json!(2)),]
    );
    assert!(c.equivalences.is_empty());
}

#[test]
fn pointer_paths_escape_slash_and_tilde() {
    let c = compare_json(r#"{"a/b": {"m~n": 1}, "": {"": true}}"#, r#"{"a/b": {"m~n": 2}, "": {"": false}}"#);
    let paths: Vec<&str> = c.differences.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, vec!["/a~1b/m~0n", "//"]);
}

// ----- JSON: strings and unicode ---------------------------------------------------

#[test]
fn unicode_escapes_equal_their_characters() {
    let c = compare_json(
        r#"{"e": "\u00e9", "smile": "\ud83d\ude00", "mixed": "caf\u00E9 \/ \t"}"#,
        "{\"e\": \"é\", \"smile\": \"😀\", \"mixed\": \"café / \\t\"}",
    );
    assert_eq!(c, Comparison::default());
}

#[test]
fn different_unicode_normal_forms_are_different_strings() {
    let c = compare_json(r#"["\u00e9"]"#, r#"["e\u0301"]"#);
    assert_eq!(c.differences, vec![diff("/0", DiffKind::Changed, json!("é"), json!("e\u{301}"))]);
}

// ----- JSON: numbers ----------------------------------------------------------------

#[test]
fn equal_numbers_in_other_forms_are_counted_as_number_format() {
    let c = compare_json(
        r#"[9, 9, 9, 9, 100, -0, 1.5, 123456789012345678901234567890]"#,
        r#"[9.0, 9e0, 0.9e1, 90e-1, 1e2, 0, 15E-1, 12345678901234567890123456789e1]"#,
    );
    assert!(c.is_equal(), "{:?}", c.differences);
    assert_eq!(c.equivalences, counts(&[(NUMBER_FORMAT, 8)]));
}

#[test]
fn numbers_beyond_f64_keep_their_exact_value() {
    let c = compare_json(
        r#"{"big": 12345678901234567890123, "frac": 1.0000000000000000000001, "same": 12345678901234567890123}"#,
        r#"{"big": 12345678901234567890124, "frac": 1, "same": 12345678901234567890123}"#,
    );
    assert_eq!(
        c.differences,
        vec![
            diff("/big", DiffKind::Changed, v("12345678901234567890123"), v("12345678901234567890124")),
            diff("/frac", DiffKind::Changed, v("1.0000000000000000000001"), v("1")),
        ]
    );
    // The recorded values keep their exact text.
    assert_eq!(c.differences[1].recorded.to_string(), "1.0000000000000000000001");
    assert!(c.equivalences.is_empty());
}

#[test]
fn numbers_by_text_when_numbers_by_value_is_off() {
    let rules = CompareRules { numbers_by_value: false, ..CompareRules::default() };
    let c = compare_json_with("[9, 7]", "[9.0, 7]", &rules);
    assert_eq!(c.differences, vec![diff("/0", DiffKind::Changed, v("9"), v("9.0"))]);
}

// ----- JSON: timestamps --------------------------------------------------------------

#[test]
fn timestamps_with_mixed_offsets_compare_as_instants() {
    let c = compare_json(
        r#"{"a": "2024-01-15T10:30:00Z", "b": "2024-01-15T10:30:00Z", "c": "2024-01-15T10:30:00.000Z", "d": "2024-01-15T10:30:00Z"}"#,
        r#"{"a": "2024-01-15T12:30:00+02:00", "b": "2024-01-15T10:30:00+00:00", "c": "2024-01-15t10:30:00z", "d": "2024-01-15 10:30:00Z"}"#,
    );
    assert!(c.is_equal(), "{:?}", c.differences);
    assert_eq!(c.equivalences, counts(&[(TIMESTAMP_INSTANT, 4)]));
}

#[test]
fn different_instants_and_near_timestamps_differ() {
    let c = compare_json(
        r#"["2024-01-15T10:30:00Z", "2024-01-15T10:30:00Z", "2024-01-15T10:30:00Z", "2024-01-15 10:30"]"#,
        r#"["2024-01-15T10:30:00+02:00", "2024-01-15T10:30:01Z", "2024-01-15T10:30:00", "2024-01-15T10:30:00Z"]"#,
    );
    let paths: Vec<&str> = c.differences.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, vec!["/0", "/1", "/2", "/3"]);
    assert!(c.differences.iter().all(|d| d.kind == DiffKind::Changed));
    assert!(c.equivalences.is_empty());
}

#[test]
fn timestamps_as_text_when_rule_is_off() {
    let rules = CompareRules { timestamps_as_instants: false, ..CompareRules::default() };
    let c = compare_json_with(r#"["2024-01-15T10:30:00Z"]"#, r#"["2024-01-15T12:30:00+02:00"]"#, &rules);
    assert_eq!(c.differences.len(), 1);
}

// ----- JSON: null vs missing, types, arrays ------------------------------------------------

#[test]
fn null_and_missing_differ_by_default() {
    let c = compare_json(r#"{"a": null, "b": 1}"#, r#"{"b": 1, "c": null}"#);
    assert_eq!(
        c.differences,
        vec![
            diff("/a", DiffKind::Missing, Value::Null, Value::Null),
            diff("/c", DiffKind::Extra, Value::Null, Value::Null),
        ]
    );
}

#[test]
fn null_equals_missing_when_configured() {
    let rules = CompareRules { null_equals_missing: true, ..CompareRules::default() };
    let c = compare_json_with(r#"{"a": null, "b": 1}"#, r#"{"b": 1, "c": null}"#, &rules);
    assert!(c.is_equal());
    assert_eq!(c.equivalences, counts(&[(NULL_EQUALS_MISSING, 2)]));
    // A present null against a value is still a difference.
    let c = compare_json_with(r#"{"a": null}"#, r#"{"a": 0}"#, &rules);
    assert_eq!(c.differences, vec![diff("/a", DiffKind::Type, Value::Null, json!(0))]);
}

#[test]
fn different_json_types_are_kind_type() {
    let c = compare_json(
        r#"{"s": "9", "o": {}, "b": true, "n": null, "x": false}"#,
        r#"{"s": 9, "o": [], "b": "true", "n": 0, "x": true}"#,
    );
    let kinds: Vec<(&str, DiffKind)> = c.differences.iter().map(|d| (d.path.as_str(), d.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            ("/s", DiffKind::Type),
            ("/o", DiffKind::Type),
            ("/b", DiffKind::Type),
            ("/n", DiffKind::Type),
            ("/x", DiffKind::Changed),
        ]
    );
    assert_eq!(c.differences[0], diff("/s", DiffKind::Type, json!("9"), v("9")));
}

#[test]
fn arrays_in_order_report_common_prefix_then_tails() {
    let c = compare_json(r#"{"arr": [1, 2, 3, 4]}"#, r#"{"arr": [1, 5]}"#);
    assert_eq!(
        c.differences,
        vec![
            diff("/arr/1", DiffKind::Changed, v("2"), v("5")),
            diff("/arr/2", DiffKind::Missing, v("3"), Value::Null),
            diff("/arr/3", DiffKind::Missing, v("4"), Value::Null),
        ]
    );
    let c = compare_json("[1]", "[1, {\"k\": 2}]");
    assert_eq!(c.differences, vec![diff("/1", DiffKind::Extra, Value::Null, json!({"k": 2}))]);
}

#[test]
fn reordered_array_without_rule_differs_elementwise() {
    let c = compare_json(r#"{"tags": [1, 2]}"#, r#"{"tags": [2, 1]}"#);
    assert_eq!(c.differences.len(), 2);
}

#[test]
fn whole_document_scalar_difference_is_at_root_pointer() {
    let c = compare_with((&[], b"1"), (&[], b"2"), &CompareRules::default());
    assert_eq!(c.differences, vec![diff("", DiffKind::Changed, v("1"), v("2"))]);
}

// ----- JSON: unordered arrays --------------------------------------------------------

#[test]
fn unordered_array_matches_as_multiset_and_is_counted_once() {
    let c = compare_json_with(
        r#"{"tags": [3, 1, 2], "other": [1, 2]}"#,
        r#"{"tags": [1, 2, 3.0], "other": [1, 2]}"#,
        &unordered(&["/tags", "/other"]),
    );
    assert!(c.is_equal(), "{:?}", c.differences);
    assert_eq!(c.equivalences, counts(&[(UNORDERED_ARRAY, 1), (NUMBER_FORMAT, 1)]));
}

#[test]
fn unordered_array_duplicates_must_match_in_number() {
    let c = compare_json_with(r#"{"tags": [1, 1, 2]}"#, r#"{"tags": [1, 2, 2]}"#, &unordered(&["/tags"]));
    assert_eq!(
        c.differences,
        vec![
            diff("/tags/1", DiffKind::Missing, v("1"), Value::Null),
            diff("/tags/1", DiffKind::Extra, Value::Null, v("2")),
        ]
    );
    assert!(c.equivalences.is_empty());
}

#[test]
fn unordered_array_of_objects_uses_all_equivalence_rules() {
    let c = compare_json_with(
        r#"{"items": [{"id": 1, "at": "2024-01-15T10:30:00Z"}, {"id": 2, "at": "2024-01-15T11:00:00Z"}]}"#,
        r#"{"items": [{"at": "2024-01-15T13:00:00+02:00", "id": 2.0}, {"id": 1, "at": "2024-01-15T10:30:00Z"}]}"#,
        &unordered(&["/items"]),
    );
    assert!(c.is_equal(), "{:?}", c.differences);
    assert_eq!(
        c.equivalences,
        counts(&[(UNORDERED_ARRAY, 1), (KEY_ORDER, 1), (NUMBER_FORMAT, 1), (TIMESTAMP_INSTANT, 1)])
    );
}

#[test]
fn nested_unordered_arrays_with_wildcards() {
    let rules = unordered(&["/groups/*/members"]);
    let c = compare_json_with(
        r#"{"groups": [{"members": ["a", "b"]}, {"members": ["c", "d"]}]}"#,
        r#"{"groups": [{"members": ["b", "a"]}, {"members": ["d", "e"]}]}"#,
        &rules,
    );
    assert_eq!(
        c.differences,
        vec![
            diff("/groups/1/members/0", DiffKind::Missing, json!("c"), Value::Null),
            diff("/groups/1/members/1", DiffKind::Extra, Value::Null, json!("e")),
        ]
    );
    assert_eq!(c.equivalences, counts(&[(UNORDERED_ARRAY, 1)]));
}

#[test]
fn unordered_array_in_same_order_counts_nothing() {
    let c = compare_json_with(r#"[1, 2, 2]"#, r#"[1, 2, 2]"#, &unordered(&[""]));
    assert_eq!(c, Comparison::default());
    let c = compare_json_with(r#"[1, 2, 2, {"a": 1}]"#, r#"[1, 2, 2, {"a": 1.0}]"#, &unordered(&[""]));
    assert_eq!(c.equivalences, counts(&[(NUMBER_FORMAT, 1)]));
}

/// Long enough that reversing it exceeds the pairwise matching budget
/// (about len²/2 candidate checks), so canonical-form matching is used.
const LARGE: usize = 600;
const _: () = assert!(LARGE * LARGE / 2 > PAIRWISE_BASE_BUDGET + 8 * LARGE);

fn large_array(len: usize, format: impl Fn(usize) -> String) -> String {
    let items: Vec<String> = (0..len).map(format).collect();
    format!("{{\"items\": [{}]}}", items.join(","))
}

#[test]
fn large_unordered_arrays_are_matched_by_canonical_form() {
    let len = LARGE;
    let recorded =
        large_array(len, |i| format!(r#"{{"id": {i}, "at": "2024-01-15T10:30:00Z", "gone": null, "v": "x"}}"#));
    let candidate = large_array(len, |k| {
        let i = len - 1 - k;
        format!(r#"{{"v": "y", "at": "2024-01-15T12:30:00+02:00", "id": {i}.0}}"#)
    });
    let rules =
        CompareRules { null_equals_missing: true, ignore_paths: vec!["/items/*/v".into()], ..unordered(&["/items"]) };
    let c = compare_json_with(&recorded, &candidate, &rules);
    assert!(c.is_equal(), "{:?}", &c.differences[..c.differences.len().min(3)]);
    let n = len as u64;
    assert_eq!(
        c.equivalences,
        counts(&[(UNORDERED_ARRAY, 1), (NUMBER_FORMAT, n), (TIMESTAMP_INSTANT, n), (NULL_EQUALS_MISSING, n),])
    );
    assert_eq!(c.ignored.len(), len);
    assert_eq!(c.ignored[0], "/items/0/v");

    let changed = candidate.replacen(r#""id": 7.0"#, r#""id": 7.5"#, 1);
    let c = compare_json_with(&recorded, &changed, &rules);
    let expected_candidate_index = len - 1 - 7;
    assert_eq!(
        c.differences,
        vec![
            diff(
                "/items/7",
                DiffKind::Missing,
                v(r#"{"id": 7, "at": "2024-01-15T10:30:00Z", "gone": null, "v": "x"}"#),
                Value::Null
            ),
            diff(
                &format!("/items/{expected_candidate_index}"),
                DiffKind::Extra,
                Value::Null,
                v(r#"{"v": "y", "at": "2024-01-15T12:30:00+02:00", "id": 7.5}"#)
            ),
        ]
    );
}

#[test]
fn large_unordered_arrays_with_duplicates_must_match_in_number() {
    let len = 1001;
    let recorded = large_array(len, |i| if i == 0 { "1".into() } else { (i % 2).to_string() });
    let candidate = large_array(len, |i| if i == 0 { "0".into() } else { (i % 2).to_string() });
    let c = compare_json_with(&recorded, &candidate, &unordered(&["/items"]));
    let kinds: Vec<DiffKind> = c.differences.iter().map(|d| d.kind).collect();
    assert_eq!(kinds, vec![DiffKind::Missing, DiffKind::Extra]);
}

#[test]
fn large_unordered_arrays_compare_nested_unordered_arrays_as_multisets() {
    let len = LARGE;
    let recorded = large_array(len, |i| format!(r#"{{"id": {i}, "tags": [1, 2, {i}]}}"#));
    let candidate = large_array(len, |k| {
        let i = len - 1 - k;
        format!(r#"{{"id": {i}, "tags": [{i}, 2, 1]}}"#)
    });
    let rules = unordered(&["/items", "/items/*/tags"]);
    let c = compare_json_with(&recorded, &candidate, &rules);
    assert!(c.is_equal(), "{:?}", &c.differences[..c.differences.len().min(3)]);
    // The outer array, plus every inner one except where [1, 2, i] = [i, 2, 1] (i = 1).
    assert_eq!(c.equivalences, counts(&[(UNORDERED_ARRAY, len as u64)]));
    let outer_only = compare_json_with(&recorded, &candidate, &unordered(&["/items"]));
    assert_eq!(outer_only.differences.len(), 2 * (len - 1));
}

// ----- JSON: ignore_paths -------------------------------------------------------------

#[test]
fn ignore_paths_with_wildcards_drop_and_list_differences() {
    let c = compare_json_with(
        r#"{"request_id": "r1", "items": [{"id": 1, "updated_at": "x", "meta": {"updated_at": 1}}, {"id": 2, "updated_at": "y"}]}"#,
        r#"{"request_id": "r2", "items": [{"id": 1, "updated_at": "z", "meta": {"updated_at": 2}}, {"id": 3}]}"#,
        &ignoring(&["/items/*/updated_at", "/request_id"]),
    );
    assert_eq!(
        c.differences,
        vec![
            diff("/items/0/meta/updated_at", DiffKind::Changed, v("1"), v("2")),
            diff("/items/1/id", DiffKind::Changed, v("2"), v("3")),
        ]
    );
    assert_eq!(c.ignored, vec!["/request_id", "/items/0/updated_at", "/items/1/updated_at"]);
}

#[test]
fn ignored_subtrees_list_every_differing_leaf_and_count_no_equivalence() {
    let c = compare_json_with(
        r#"{"debug": {"a": 1, "b": [1, 2], "t": "2024-01-15T10:30:00Z"}, "keep": 1}"#,
        r#"{"keep": 1.0, "debug": {"b": [1], "a": 1.0, "c": true, "t": "2024-01-15T12:30:00+02:00"}}"#,
        &ignoring(&["/debug"]),
    );
    assert!(c.is_equal());
    assert_eq!(c.ignored, vec!["/debug/b/1", "/debug/c"]);
    assert_eq!(c.equivalences, counts(&[(KEY_ORDER, 1), (NUMBER_FORMAT, 1)]));
}

#[test]
fn double_star_ignores_at_any_depth() {
    let c = compare_json_with(
        r#"{"etag": 1, "a": [{"etag": 2, "x": 1}]}"#,
        r#"{"etag": 9, "a": [{"etag": 8, "x": 1}]}"#,
        &ignoring(&["/**/etag"]),
    );
    assert!(c.is_equal());
    assert_eq!(c.ignored, vec!["/etag", "/a/0/etag"]);
}
