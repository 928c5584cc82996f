//! Whole-body comparison of text and binary bodies; one difference at path `""`.
//!
//! Text: CRLF is read as LF and trailing newlines are dropped before comparing
//! (rule `line_endings` when that made the difference disappear). A remaining
//! difference carries `recorded` = the first [`EXCERPT_CHARS`] characters of
//! the (line-ending normalised) recorded text, `…` appended when cut, and `candidate` = a unified-diff excerpt (starts with
//! `@@`, at most [`EXCERPT_LINES`] lines of at most [`EXCERPT_CHARS`] chars).
//!
//! Bytes: equal only when identical; otherwise both sides are described as
//! `"<length> bytes sha256:<first 16 hex digits>"`.

use std::borrow::Cow;
use std::fmt::Write;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use similar::TextDiff;

use super::rules::rule_names::LINE_ENDINGS;
use super::{Comparison, DiffKind};

pub(crate) const EXCERPT_CHARS: usize = 200;
pub(crate) const EXCERPT_LINES: usize = 20;
/// Lines of unchanged context around each change in the excerpt.
const CONTEXT_LINES: usize = 2;
/// Bound on the line-diff time for huge texts (the diff then gets coarser).
const DIFF_TIMEOUT: Duration = Duration::from_millis(500);

pub(crate) fn compare_text(recorded: &str, candidate: &str, out: &mut Comparison) {
    if recorded == candidate {
        return;
    }
    let recorded = normalise_line_endings(recorded);
    let candidate = normalise_line_endings(candidate);
    if recorded == candidate {
        out.count_equivalence(LINE_ENDINGS);
        return;
    }
    out.push_difference(
        "",
        DiffKind::Changed,
        Value::from(first_chars(&recorded, EXCERPT_CHARS)),
        Value::from(unified_diff_excerpt(&recorded, &candidate)),
    );
}

pub(crate) fn compare_bytes(recorded: &[u8], candidate: &[u8], out: &mut Comparison) {
    if recorded == candidate {
        return;
    }
    out.push_difference(
        "",
        DiffKind::Changed,
        Value::from(describe_bytes(recorded)),
        Value::from(describe_bytes(candidate)),
    );
}

/// CRLF → LF, trailing newlines removed.
fn normalise_line_endings(text: &str) -> Cow<'_, str> {
    let unified: Cow<'_, str> =
        if text.contains("\r\n") { Cow::Owned(text.replace("\r\n", "\n")) } else { Cow::Borrowed(text) };
    let kept = unified.trim_end_matches('\n').len();
    match unified {
        Cow::Borrowed(s) => Cow::Borrowed(&s[..kept]),
        Cow::Owned(mut s) => {
            s.truncate(kept);
            Cow::Owned(s)
        }
    }
}

/// `"<len> bytes sha256:<16 hex>"`.
pub(crate) fn describe_bytes(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(16);
    for byte in &digest[..8] {
        let _ = write!(hex, "{byte:02x}");
    }
    format!("{} bytes sha256:{hex}", bytes.len())
}

/// A short unified line diff (`@@ ... @@` hunks, no file header).
fn unified_diff_excerpt(recorded: &str, candidate: &str) -> String {
    let diff = TextDiff::configure().timeout(DIFF_TIMEOUT).diff_lines(recorded, candidate);
    let full = diff.unified_diff().context_radius(CONTEXT_LINES).missing_newline_hint(false).to_string();
    truncate_lines(&full, EXCERPT_LINES, EXCERPT_CHARS)
}

/// At most `max_lines` lines of at most `max_chars` chars each; `…` marks a cut.
fn truncate_lines(text: &str, max_lines: usize, max_chars: usize) -> String {
    let mut lines: Vec<String> = text.lines().take(max_lines).map(|line| first_chars(line, max_chars)).collect();
    if text.lines().nth(max_lines).is_some() {
        lines.push("…".to_owned());
    }
    lines.join("\n")
}

/// The first `max_chars` characters, with `…` appended when cut.
fn first_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_and_trailing_newline_are_line_ending_equivalences() {
        let mut out = Comparison::default();
        compare_text("a\r\nb\r\n", "a\nb", &mut out);
        assert!(out.differences.is_empty());
        assert_eq!(out.equivalences.get(LINE_ENDINGS), Some(&1));
    }

    #[test]
    fn identical_text_counts_nothing() {
        let mut out = Comparison::default();
        compare_text("same\r\n", "same\r\n", &mut out);
        assert_eq!(out, Comparison::default());
    }

    #[test]
    fn differing_text_gives_excerpt_and_unified_diff() {
        let recorded: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let candidate = recorded.replace("line 50\n", "LINE fifty\n");
        let mut out = Comparison::default();
        compare_text(&recorded, &candidate, &mut out);
        assert_eq!(out.differences.len(), 1);
        let d = &out.differences[0];
        assert_eq!((d.path.as_str(), d.kind), ("", DiffKind::Changed));
        let excerpt = d.recorded.as_str().unwrap();
        assert!(excerpt.starts_with("line 0\nline 1\n"));
        assert_eq!(excerpt.chars().count(), EXCERPT_CHARS + 1);
        let udiff = d.candidate.as_str().unwrap();
        assert!(udiff.starts_with("@@ -49,5 +49,5 @@"), "{udiff}");
        assert!(udiff.contains("\n-line 50\n+LINE fifty\n"), "{udiff}");
        assert!(!out.equivalences.contains_key(LINE_ENDINGS));
    }

    #[test]
    fn long_diffs_are_cut_to_twenty_short_lines() {
        let recorded: String = (0..100).map(|i| format!("{i}{}\n", "x".repeat(500))).collect();
        let candidate: String = (0..100).map(|i| format!("{i}{}\n", "y".repeat(500))).collect();
        let excerpt = unified_diff_excerpt(&recorded, &candidate);
        let lines: Vec<&str> = excerpt.lines().collect();
        assert_eq!(lines.len(), EXCERPT_LINES + 1);
        assert_eq!(lines[EXCERPT_LINES], "…");
        assert!(lines.iter().all(|l| l.chars().count() <= EXCERPT_CHARS + 1));
    }

    #[test]
    fn bytes_are_described_by_length_and_hash() {
        assert_eq!(describe_bytes(b"abc"), "3 bytes sha256:ba7816bf8f01cfea");
        let mut out = Comparison::default();
        compare_bytes(&[0xff, 0x00], &[0xff, 0x00], &mut out);
        assert!(out.differences.is_empty());
        compare_bytes(&[0xff, 0x00], &[0xff, 0x01], &mut out);
        assert_eq!(out.differences.len(), 1);
        assert_eq!(out.differences[0].recorded, Value::from(describe_bytes(&[0xff, 0x00])));
        assert_ne!(out.differences[0].recorded, out.differences[0].candidate);
    }
}
