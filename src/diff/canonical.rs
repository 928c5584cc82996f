//! Canonical text form of a JSON value under the comparison rules: two values
//! are equivalent (compare without non-ignored differences) exactly when their
//! canonical forms are equal. Used to match elements of large unordered
//! arrays by hashing instead of pairwise comparison.
//!
//! Form: `n` null, `t`/`f` booleans, `d<canonical decimal>` numbers (or
//! `D<text>` when not compared by value), `T<unix secs>.<nanos>` timestamps
//! (when compared as instants), `s<JSON string>` other strings, `[..]` arrays
//! (elements sorted when the array is unordered), `{..}` objects with members
//! sorted by key, ignored members left out (and `null` members too when
//! `null_equals_missing`), and `~` for an ignored value.

use std::fmt::Write;

use serde_json::Value;

use super::CompareRules;
use super::json_tree::{Member, Node};
use super::number;
use super::pointer::{PatternSet, Scope, Step};
use super::timestamp;

pub(crate) fn canonical_form(value: &Node<'_>, scope: &Scope, patterns: &PatternSet, rules: &CompareRules) -> String {
    let mut out = String::new();
    write_canonical(value, scope, patterns, rules, &mut out);
    out
}

fn write_canonical(value: &Node<'_>, scope: &Scope, patterns: &PatternSet, rules: &CompareRules, out: &mut String) {
    if scope.ignored {
        out.push('~');
        return;
    }
    match value {
        Node::Null => out.push('n'),
        Node::Bool(true) => out.push('t'),
        Node::Bool(false) => out.push('f'),
        Node::Number(text) if rules.numbers_by_value => {
            out.push('d');
            out.push_str(&number::canonical_text(text));
        }
        Node::Number(text) => {
            out.push('D');
            out.push_str(text);
        }
        Node::String(s) => write_string(s, rules, out),
        Node::Array(items) => write_array(items, scope, patterns, rules, out),
        Node::Object(members) => write_object(members, scope, patterns, rules, out),
    }
}

fn write_string(text: &str, rules: &CompareRules, out: &mut String) {
    let instant = rules.timestamps_as_instants.then(|| timestamp::canonical_instant(text)).flatten();
    match instant {
        Some(instant) => {
            out.push('T');
            out.push_str(&instant);
        }
        None => {
            out.push('s');
            let _ = write!(out, "{}", Value::from(text));
        }
    }
}

fn write_array(items: &[Node<'_>], scope: &Scope, patterns: &PatternSet, rules: &CompareRules, out: &mut String) {
    let mut forms: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let child = patterns.child_scope(scope, Step::Index(i));
            canonical_form(item, &child, patterns, rules)
        })
        .collect();
    if scope.unordered {
        forms.sort_unstable();
    } else {
        // A missing or extra element at an ignored index is not a difference.
        while forms.last().is_some_and(|form| form == "~") {
            forms.pop();
        }
    }
    out.push('[');
    out.push_str(&forms.join(","));
    out.push(']');
}

fn write_object(members: &[Member<'_>], scope: &Scope, patterns: &PatternSet, rules: &CompareRules, out: &mut String) {
    let mut forms: Vec<(&str, String)> = members
        .iter()
        .filter(|(_, value)| !(value.is_null() && rules.null_equals_missing))
        .filter_map(|(key, value)| {
            let child = patterns.child_scope(scope, Step::Key(key));
            (!child.ignored).then(|| (key.as_ref(), canonical_form(value, &child, patterns, rules)))
        })
        .collect();
    forms.sort_unstable_by(|x, y| x.0.cmp(y.0));
    out.push('{');
    for (position, (key, form)) in forms.iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}:{form}", Value::from(*key));
    }
    out.push('}');
}
