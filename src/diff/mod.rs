//! Comparison engine: decides whether the candidate service answered the same
//! as production did.
//!
//! **In:** two [`Answer`]s — the *recorded* one (what production really
//! answered, from the capture) and the *candidate* one (what the rewrite
//! answered to the replayed request) — and the [`CompareRules`] from the config.
//!
//! **Out:** a [`Comparison`]:
//! - `differences`: every remaining difference, one per leaf, each with a path
//!   (`status`, `header:<lowercase-name>`, a JSON pointer into a JSON body, or
//!   `""` for a text/binary body compared as a whole), a [`DiffKind`], and the
//!   recorded and candidate values as JSON;
//! - `equivalences`: for each equivalence rule (see [`rule_names`]) that made
//!   at least one raw difference disappear, how many it made disappear (rules
//!   with a zero count are absent);
//! - `ignored`: the paths of differences that were set aside by `ignore_paths`
//!   or because the header is ignored (only those that actually differed).
//!
//! Steps: status (exact) → headers ([`headers`]) → body: decode the
//! Content-Encoding ([`encoding`]), then compare as JSON ([`json_tree`] parses,
//! [`json_compare`] compares), text or bytes ([`text`]), chosen by [`body`].

mod body;
mod canonical;
mod encoding;
mod headers;
mod json_compare;
mod json_tree;
mod number;
mod origin;
mod pointer;
mod rules;
mod text;
mod timestamp;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

pub use origin::OriginRewrite;
pub use rules::{CompareRules, rule_names};
pub(crate) use timestamp::parse_instant;

/// One HTTP answer as seen on the wire (the body still content-encoded).
#[derive(Clone, Copy, Debug)]
pub struct Answer<'a> {
    pub status: u16,
    /// Header (name, value) pairs in wire order; names in any case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// How the recorded and candidate values differ at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffKind {
    /// Both present, values differ.
    Changed,
    /// Present in the recorded answer, absent in the candidate's.
    Missing,
    /// Absent in the recorded answer, present in the candidate's.
    Extra,
    /// Both present with different JSON types (e.g. string vs number).
    Type,
    /// The recorded answer's framing was broken (`recorded` says why), so
    /// its body is not compared: a difference the user must look at.
    #[serde(rename = "malformed_recorded")]
    MalformedRecorded,
}

/// One difference between the recorded and the candidate answer.
///
/// `recorded`/`candidate` hold the values at `path` (`null` for an absent
/// side). For a text body (path `""`): `recorded` is the first 200 characters
/// of the recorded text and `candidate` a unified-diff excerpt starting with
/// `@@` (at most 20 lines of at most 200 characters). For a binary body both
/// are strings like `"1234 bytes sha256:0123456789abcdef"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub path: String,
    pub kind: DiffKind,
    pub recorded: Value,
    pub candidate: Value,
}

/// The result of comparing two answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Comparison {
    pub differences: Vec<Difference>,
    /// Rule name -> how many raw differences that rule made disappear in this comparison.
    pub equivalences: BTreeMap<&'static str, u64>,
    /// Paths set aside by `ignore_paths` / ignored headers that actually differed.
    pub ignored: Vec<String>,
}

impl Comparison {
    /// No difference remains.
    pub fn is_equal(&self) -> bool {
        self.differences.is_empty()
    }

    /// Records that `rule` made one raw difference disappear.
    fn count_equivalence(&mut self, rule: &'static str) {
        self.count_equivalences(rule, 1);
    }

    fn count_equivalences(&mut self, rule: &'static str, n: u64) {
        if n > 0 {
            *self.equivalences.entry(rule).or_insert(0) += n;
        }
    }

    fn push_difference(&mut self, path: &str, kind: DiffKind, recorded: Value, candidate: Value) {
        self.differences.push(Difference { path: path.to_owned(), kind, recorded, candidate });
    }
}

/// Compares the candidate's answer with the recorded one under `rules`.
pub fn compare(recorded: &Answer, candidate: &Answer, rules: &CompareRules) -> Comparison {
    compare_rewritten(recorded, candidate, rules, None)
}

/// [`compare`], with the Host the tool rewrote undone in the candidate's
/// answer (see [`OriginRewrite`]).
pub fn compare_rewritten(
    recorded: &Answer,
    candidate: &Answer,
    rules: &CompareRules,
    origin: Option<&OriginRewrite>,
) -> Comparison {
    let mut comparison = Comparison::default();
    compare_status(recorded.status, candidate.status, &mut comparison);
    if rules.compare_headers {
        let (candidate_headers, rewritten) = match origin {
            Some(origin) => origin.apply_to_headers(candidate.headers),
            None => (std::borrow::Cow::Borrowed(candidate.headers), 0),
        };
        headers::compare_headers(recorded.headers, &candidate_headers, rules, &mut comparison);
        comparison.count_equivalences(rule_names::HOST_REWRITE, rewritten);
    }
    body::compare_bodies(recorded, candidate, rules, origin, &mut comparison);
    comparison
}

/// The JSON tree parser on its own, for the fuzz targets (`fuzz/`): the
/// document as a `serde_json::Value`, or why the body is not JSON. Not an
/// API: the tree itself stays private to the diff.
#[doc(hidden)]
pub fn parse_json_for_fuzzing(body: &[u8]) -> Result<Value, String> {
    json_tree::parse(body).map(|node| node.to_value()).map_err(|e| e.to_string())
}

fn compare_status(recorded: u16, candidate: u16, out: &mut Comparison) {
    if recorded != candidate {
        out.push_difference("status", DiffKind::Changed, Value::from(recorded), Value::from(candidate));
    }
}
