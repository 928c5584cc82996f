//! What replay says about one captured exchange: the `--out` line, the unit
//! the report folds. Below the replayer, triage and the report, which all
//! point down here.

use std::collections::BTreeMap;

use serde::Serialize;

use super::triage::MappedValue;
use crate::diff::Difference;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeKind {
    Match,
    Diff,
    Skipped,
    Error,
    /// Every difference was noise (production disagrees with itself there).
    Noise,
    /// Production's own answer moved between capture and replay.
    Race,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Match => "match",
            OutcomeKind::Diff => "diff",
            OutcomeKind::Skipped => "skipped",
            OutcomeKind::Error => "error",
            OutcomeKind::Noise => "noise",
            OutcomeKind::Race => "race",
        }
    }

    /// The candidate answered and the answers were compared.
    pub fn was_compared(self) -> bool {
        matches!(self, OutcomeKind::Match | OutcomeKind::Diff | OutcomeKind::Noise | OutcomeKind::Race)
    }
}

/// A difference set aside, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Explained {
    pub path: String,
    /// `noise`, `race`, `generated_id`, `id_mapping`, or an ignore rule.
    pub by: &'static str,
}

/// The version of the `--out` line format, `"schema": 1` in every line
/// (`schema/outcome-line.v1.json`). Fields may be added within a version;
/// none is renamed, removed or given another meaning without a new one.
pub const LINE_SCHEMA: u32 = 1;

/// Serialises as [`LINE_SCHEMA`].
#[derive(Clone, Copy, Debug, Default)]
pub struct LineSchema;

impl Serialize for LineSchema {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(LINE_SCHEMA)
    }
}

/// One line of `--out`.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub schema: LineSchema,
    pub ts: String,
    pub method: String,
    pub uri: String,
    pub endpoint: String,
    pub outcome: OutcomeKind,
    pub differences: Vec<Difference>,
    pub recorded_status: Option<u16>,
    pub candidate_status: Option<u16>,
    pub recorded_latency_us: Option<u64>,
    pub candidate_latency_us: Option<u64>,
    pub error: Option<String>,
    /// Differences set aside, and why.
    pub explained: Vec<Explained>,
    /// Values (ids, times, tokens) this write generated, or ids used to
    /// rewrite this request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mapped_ids: Vec<MappedValue>,
    /// Why an exchange was not replayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Equivalence rules that made raw differences disappear.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub equivalences: BTreeMap<&'static str, u64>,
    /// The answer changed in kind (status class, body gone): no noise may
    /// explain any of its differences, also when judged again later.
    #[serde(skip)]
    pub noise_barred: bool,
}

impl Outcome {
    /// This outcome as it may be written: the values at secret paths
    /// (credentials, cookies, `[redact]`) replaced by their keyed hashes
    /// ([`crate::redact`]). Borrowed when nothing is secret.
    pub fn redacted(&self) -> std::borrow::Cow<'_, Outcome> {
        let redactor = crate::redact::redactor();
        if !self.differences.iter().any(|d| redactor.is_secret_path(&d.path))
            && !self.mapped_ids.iter().any(|m| m.secret)
        {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut redacted = self.clone();
        for d in redacted.differences.iter_mut().filter(|d| redactor.is_secret_path(&d.path)) {
            d.recorded = redactor.redact_value(&d.recorded);
            d.candidate = redactor.redact_value(&d.candidate);
        }
        for m in redacted.mapped_ids.iter_mut().filter(|m| m.secret) {
            m.recorded = redactor.redact_text(m.recorded.as_bytes());
            m.candidate = redactor.redact_text(m.candidate.as_bytes());
        }
        std::borrow::Cow::Owned(redacted)
    }
}

/// Why an exchange a capture gap touched is not replayed (the report counts
/// these as thin evidence behind its endpoint).
pub const GAP_REASON: &str = "capture gap in this exchange";

/// Why an HTTP/2 exchange whose headers are not all known (the capture
/// joined its connection late) is not replayed.
pub const HEADERS_INCOMPLETE_REASON: &str = "HTTP/2 headers incomplete (HPACK entries made before the capture)";
