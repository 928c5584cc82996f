//! Property tests of [`super::compare`] on generated JSON documents:
//! (a) a document against itself re-serialised differently (shuffled keys,
//!     numbers in other equal forms, strings with `\u` escapes) has no
//!     differences;
//! (b) changing exactly one leaf gives exactly one difference, at that leaf's
//!     pointer, even when the candidate is also re-serialised differently;
//! plus checks of the helpers these rely on: the JSON parser agrees with
//! serde_json, and both unordered-array matching strategies agree.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::json_compare::unmatched_counts;
use super::json_tree::{Node, parse};
use super::number::same_value;
use super::{Answer, CompareRules, Comparison, DiffKind, compare};

// ----- generation ----------------------------------------------------------

/// Number texts, including integers and fractions far beyond f64 precision.
fn number_text() -> impl Strategy<Value = String> {
    (any::<bool>(), "0|[1-9][0-9]{0,30}", proptest::option::of("[0-9]{1,25}"), proptest::option::of(-30i32..30))
        .prop_map(|(negative, integer, fraction, exponent)| {
            let mut text = String::new();
            if negative {
                text.push('-');
            }
            text.push_str(&integer);
            if let Some(fraction) = fraction {
                text.push('.');
                text.push_str(&fraction);
            }
            if let Some(exponent) = exponent {
                text.push_str(&format!("e{exponent}"));
            }
            text
        })
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number_text().prop_map(|text| serde_json::from_str(&text).expect("valid number")),
        "\\PC{0,12}".prop_map(Value::String),
        "[a\u{e9}\u{1f600}\"\\\\/]{0,6}".prop_map(Value::String),
    ]
}

/// Keys include `/`, `~` and the empty key to exercise pointer escaping.
fn key() -> impl Strategy<Value = String> {
    "[a-c~/\u{e9}]{0,3}"
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

// ----- re-serialisation in another, equivalent form ------------------------

/// Small deterministic generator driving the rewriting choices.
struct Choices(u64);

impl Choices {
    fn next(&mut self, bound: usize) -> usize {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound
    }
}

/// Serialises `value` as JSON text with object members shuffled, numbers in a
/// randomly chosen equal form and strings sometimes fully `\u`-escaped.
fn rewrite(value: &Value, choices: &mut Choices, out: &mut String) {
    match value {
        Value::Number(n) => out.push_str(&rewrite_number(n.as_str(), choices.next(5))),
        Value::String(s) if choices.next(2) == 0 => out.push_str(&escape_everything(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(" , ");
                }
                rewrite(item, choices, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut entries: Vec<(&String, &Value)> = members.iter().collect();
            for i in (1..entries.len()).rev() {
                entries.swap(i, choices.next(i + 1));
            }
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&escape_everything(k));
                out.push_str(" :\n");
                rewrite(v, choices, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A JSON string literal with every non-alphanumeric char as `\uXXXX`
/// (astral chars as surrogate pairs).
fn escape_everything(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out.push('"');
    out
}

/// Another text for the same exact value, chosen by `form`.
fn rewrite_number(text: &str, form: usize) -> String {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().unwrap()),
        None => (unsigned, 0),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = format!("{integer}{fraction}");
    let significant = all_digits.trim_start_matches('0');
    let significant = if significant.is_empty() { "0" } else { significant };
    let scaled_exponent = exponent - fraction.len() as i64;
    let sign = if negative { "-" } else { "" };
    match form {
        // one more trailing zero in the fraction: 12 -> 12.0, 1.5e3 -> 1.50e3
        0 => {
            let fraction = format!("{fraction}0");
            format!("{sign}{integer}.{fraction}e{exponent}")
        }
        // all digits as an integer with a negative exponent: 1.25 -> 125e-2
        1 => format!("{sign}{significant}E{scaled_exponent}"),
        // 0.<digits> form: 125 -> 0.125e3
        2 => {
            let shifted = scaled_exponent + significant.len() as i64;
            let plus = if shifted >= 0 { "+" } else { "" };
            format!("{sign}0.{significant}e{plus}{shifted}")
        }
        // a trailing zero moved into the exponent: 125 -> 1250e-1
        3 if significant == "0" => format!("{sign}0.000"),
        3 => format!("{sign}{significant}0e{}", scaled_exponent - 1),
        _ => text.to_owned(),
    }
}

// ----- comparing ---------------------------------------------------------------

fn compare_texts(recorded: &str, candidate: &str) -> Comparison {
    let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    let recorded = Answer { status: 200, headers: &headers, body: recorded.as_bytes() };
    let candidate = Answer { body: candidate.as_bytes(), ..recorded };
    compare(&recorded, &candidate, &CompareRules::default())
}

/// Independent RFC 6901 escaping for the expected pointers.
fn pointer_segment(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// Pointers of all scalar leaves, in document order.
fn leaf_pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                leaf_pointers(item, format!("{prefix}/{i}"), out);
            }
        }
        Value::Object(members) => {
            for (k, item) in members {
                leaf_pointers(item, format!("{prefix}{}", pointer_segment(k)), out);
            }
        }
        _ => out.push(prefix),
    }
}

/// A leaf of the same type with a surely different value (null becomes a number).
fn changed_leaf(leaf: &Value) -> Value {
    match leaf {
        Value::Null => Value::from(0),
        Value::Bool(b) => Value::Bool(!b),
        Value::Number(n) => {
            let replacement = if same_value(n.as_str(), "7") { "8" } else { "7" };
            serde_json::from_str(replacement).unwrap()
        }
        Value::String(s) => Value::String(format!("{s}x")),
        _ => unreachable!("containers are not leaves"),
    }
}

/// Small values with many equivalent spellings, so matches are frequent.
fn small_equivalent_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just("1"),
        Just("1.0"),
        Just("10e-1"),
        Just("2"),
        Just("null"),
        Just("\"2024-01-15T10:30:00Z\""),
        Just("\"2024-01-15T12:30:00+02:00\""),
        Just("\"2024-01-15T10:30:01Z\""),
        Just("\"x\""),
    ]
    .prop_map(|text| serde_json::from_str::<Value>(text).unwrap());
    leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((prop_oneof![Just("a"), Just("b"), Just("c")], inner), 0..3)
                .prop_map(|members| Value::Object(members.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

fn parse_all(texts: &[String]) -> Vec<Node<'_>> {
    texts.iter().map(|t| parse(t.as_bytes()).unwrap()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The two unordered-array matching strategies (pairwise for small arrays,
    /// canonical-form hashing for large ones) must agree.
    #[test]
    fn pairwise_and_canonical_matching_agree(
        a in prop::collection::vec(small_equivalent_value(), 0..8),
        b in prop::collection::vec(small_equivalent_value(), 0..8),
        null_equals_missing in any::<bool>(),
        ignore_b in any::<bool>(),
        ignore_second_element in any::<bool>(),
    ) {
        let mut ignore_paths: Vec<String> = Vec::new();
        if ignore_b {
            ignore_paths.push("/*/b".into());
        }
        if ignore_second_element {
            ignore_paths.push("/*/1".into());
        }
        let rules = CompareRules {
            null_equals_missing,
            ignore_paths,
            unordered_arrays: vec!["".into(), "/*/a".into()],
            ..CompareRules::default()
        };
        let texts = |values: &[Value]| -> Vec<String> {
            values.iter().map(|v| serde_json::to_string(v).unwrap()).collect()
        };
        let (a_texts, b_texts) = (texts(&a), texts(&b));
        let (a, b) = (parse_all(&a_texts), parse_all(&b_texts));
        prop_assert_eq!(
            unmatched_counts(&a, &b, &rules, false),
            unmatched_counts(&a, &b, &rules, true)
        );
    }

    /// The hand-written parser accepts exactly what serde_json accepts and
    /// builds the same value, on documents with one byte changed, removed or inserted.
    #[test]
    fn parser_agrees_with_serde_json_on_mutated_documents(
        value in json_value(),
        seed in 1u64..,
        position in any::<prop::sample::Index>(),
        byte in prop_oneof![
            Just(b'"'), Just(b'\\'), Just(b','), Just(b':'), Just(b'}'), Just(b']'),
            Just(b'{'), Just(b'['), Just(b'-'), Just(b'0'), Just(b'e'), Just(b'.'),
            Just(b'u'), Just(b'd'), Just(b' '), Just(b'\n'), Just(0x01u8), Just(0xc3u8),
        ],
        operation in 0usize..3,
    ) {
        let mut text = String::new();
        rewrite(&value, &mut Choices(seed), &mut text);
        let mut bytes = text.into_bytes();
        let at = position.index(bytes.len() + 1);
        match operation {
            0 if at < bytes.len() => bytes[at] = byte,
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => bytes.insert(at, byte),
        }
        let ours = parse(&bytes).ok().map(|node| node.to_value());
        let theirs = serde_json::from_slice::<Value>(&bytes).ok();
        prop_assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn number_rewrites_keep_the_value(text in number_text(), form in 0usize..5) {
        let rewritten = rewrite_number(&text, form);
        prop_assert!(serde_json::from_str::<Value>(&rewritten).is_ok(), "{}", rewritten);
        prop_assert!(same_value(&text, &rewritten), "{} vs {}", text, rewritten);
    }

    #[test]
    fn reserialised_equivalent_document_has_no_difference(value in json_value(), seed in 1u64..) {
        let recorded = serde_json::to_string(&value).unwrap();
        let mut candidate = String::new();
        rewrite(&value, &mut Choices(seed), &mut candidate);
        let comparison = compare_texts(&recorded, &candidate);
        prop_assert!(comparison.differences.is_empty(),
            "{}\nvs\n{}\n{:?}", recorded, candidate, comparison.differences);
        prop_assert!(comparison.ignored.is_empty());
    }

    #[test]
    fn one_changed_leaf_gives_one_difference_at_its_pointer(
        value in json_value(),
        pick in any::<prop::sample::Index>(),
        seed in 1u64..,
    ) {
        let mut leaves = Vec::new();
        leaf_pointers(&value, String::new(), &mut leaves);
        let value = if leaves.is_empty() {
            // e.g. `[]` or `{"a": {}}`: give the change a leaf to land on.
            leaves.push("/1".to_owned());
            Value::Array(vec![value, Value::Bool(true)])
        } else {
            value
        };
        let pointer = leaves[pick.index(leaves.len())].clone();
        let mut changed = value.clone();
        let slot = changed.pointer_mut(&pointer).expect("pointer into the document");
        let original = slot.clone();
        *slot = changed_leaf(&original);
        let new_leaf = slot.clone();

        let recorded = serde_json::to_string(&value).unwrap();
        let mut candidate = String::new();
        rewrite(&changed, &mut Choices(seed), &mut candidate);
        let comparison = compare_texts(&recorded, &candidate);

        prop_assert_eq!(comparison.differences.len(), 1, "{} vs {}: {:?}",
            recorded, candidate, comparison.differences);
        let difference = &comparison.differences[0];
        prop_assert_eq!(&difference.path, &pointer);
        let expected_kind = if original.is_null() { DiffKind::Type } else { DiffKind::Changed };
        prop_assert_eq!(difference.kind, expected_kind);
        prop_assert_eq!(&difference.recorded, &original);
        if !new_leaf.is_number() {
            prop_assert_eq!(&difference.candidate, &new_leaf);
        } else {
            prop_assert!(same_value(difference.candidate.to_string().as_str(), &new_leaf.to_string()));
        }
    }
}
