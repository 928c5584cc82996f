//! Body comparison: decode Content-Encoding, then pick how to compare.
//!
//! - JSON when both sides "want" JSON (Content-Type contains `json`, or no
//!   Content-Type and the body parses) and both parse; see [`super::json`].
//! - Otherwise text when both bodies are valid UTF-8, else bytes; see [`super::text`].
//!
//! Rule `content_encoding` is counted when the raw bodies differ, at least
//! one side was decoded, and after decoding no body difference remains.

use super::encoding::{Decoded, decode_body};
use super::json_tree::{self, Node};
use super::origin::OriginRewrite;
use super::rules::rule_names::{CONTENT_ENCODING, HOST_REWRITE};
use super::{Answer, CompareRules, Comparison, json_compare, text};
use crate::semantics::{first_header, joined_header};

/// One side's body, decoded, with its Content-Type.
struct Side<'a> {
    decoded: Decoded<'a>,
    content_type: Option<String>,
}

impl<'a> Side<'a> {
    fn of(answer: &Answer<'a>) -> Side<'a> {
        let content_encoding = joined_header(answer.headers, "content-encoding");
        Side {
            decoded: decode_body(answer.body, content_encoding.as_deref()),
            content_type: joined_header(answer.headers, "content-type"),
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.decoded.bytes
    }

    /// Content-Type says JSON, or there is none and the body may be JSON.
    fn wants_json(&self) -> bool {
        match &self.content_type {
            Some(content_type) => content_type.to_ascii_lowercase().contains("json"),
            None => !self.bytes().trim_ascii().is_empty(),
        }
    }
}

pub(crate) fn compare_bodies(
    recorded: &Answer,
    candidate: &Answer,
    rules: &CompareRules,
    origin: Option<&OriginRewrite>,
    out: &mut Comparison,
) {
    if recorded.body == candidate.body && same_encoding(recorded, candidate) {
        return;
    }
    let recorded_side = Side::of(recorded);
    let mut candidate_side = Side::of(candidate);
    if let Some(origin) = origin {
        let bytes = std::mem::replace(&mut candidate_side.decoded.bytes, std::borrow::Cow::Borrowed(&[]));
        let (bytes, rewritten) = origin.apply(bytes);
        candidate_side.decoded.bytes = bytes;
        out.count_equivalences(HOST_REWRITE, rewritten);
    }
    let differences_before = out.differences.len();
    compare_decoded(&recorded_side, &candidate_side, rules, out);
    let decoding_happened = recorded_side.decoded.was_decoded || candidate_side.decoded.was_decoded;
    let no_body_difference_left = out.differences.len() == differences_before;
    if recorded.body != candidate.body && decoding_happened && no_body_difference_left {
        out.count_equivalence(CONTENT_ENCODING);
    }
}

fn same_encoding(recorded: &Answer, candidate: &Answer) -> bool {
    let has = |a: &Answer| first_header(a.headers, "content-encoding").is_some();
    if !has(recorded) && !has(candidate) {
        return true;
    }
    let coding = |a: &Answer| joined_header(a.headers, "content-encoding").map(|v| v.to_ascii_lowercase());
    coding(recorded) == coding(candidate)
}

fn compare_decoded(recorded: &Side, candidate: &Side, rules: &CompareRules, out: &mut Comparison) {
    if recorded.bytes() == candidate.bytes() {
        return;
    }
    if let Some((recorded_json, candidate_json)) = parse_json_pair(recorded, candidate) {
        json_compare::compare_json(&recorded_json, &candidate_json, rules, out);
        return;
    }
    match (std::str::from_utf8(recorded.bytes()), std::str::from_utf8(candidate.bytes())) {
        (Ok(recorded_text), Ok(candidate_text)) => text::compare_text(recorded_text, candidate_text, out),
        _ => text::compare_bytes(recorded.bytes(), candidate.bytes(), out),
    }
}

/// Both bodies as JSON, when both want to be JSON and both parse.
fn parse_json_pair<'s>(recorded: &'s Side, candidate: &'s Side) -> Option<(Node<'s>, Node<'s>)> {
    if !(recorded.wants_json() && candidate.wants_json()) {
        return None;
    }
    let recorded_json = json_tree::parse(recorded.bytes()).ok()?;
    let candidate_json = json_tree::parse(candidate.bytes()).ok()?;
    Some((recorded_json, candidate_json))
}
