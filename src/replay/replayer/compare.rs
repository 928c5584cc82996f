//! The comparisons the replayer makes once an answer is in: a recorded
//! answer against another (the candidate's, a legacy instance's, an
//! earlier recorded one), and what a recorded answer with broken framing
//! becomes. Plus a cache hint for the recorded answer while waiting.

use crate::diff::{self, Answer, CompareRules, Difference};
use crate::exchange::{Exchange, Response};
use crate::replay::answer::CandidateAnswer;
use crate::replay::outcome::{Outcome, OutcomeKind};

/// A recorded answer with broken framing: its body becomes one difference
/// of kind `malformed_recorded`, added after triage so that neither noise
/// nor a race can explain it away, and the outcome is a diff.
pub(super) fn report_malformed_recorded(outcome: &mut Outcome, exchange: &Exchange, answer: &CandidateAnswer) {
    let Some(reason) = exchange.response.as_ref().and_then(|r| r.malformed.as_ref()) else {
        return;
    };
    outcome.differences.push(Difference {
        path: String::new(),
        kind: diff::DiffKind::MalformedRecorded,
        recorded: reason.as_str().into(),
        candidate: format!("{} bytes", answer.body.len()).into(),
    });
    outcome.outcome = OutcomeKind::Diff;
}

/// A recorded answer against another one (the candidate's, the
/// secondary's, an earlier recorded one) by `rules`, with the Host rewrite
/// the asking client made undone (`origin`).
pub(super) fn compare_response(
    recorded: &Response,
    other: &CandidateAnswer,
    rules: &CompareRules,
    body_limit: usize,
    origin: Option<&diff::OriginRewrite>,
) -> diff::Comparison {
    let recorded_answer =
        Answer { status: recorded.status, headers: &recorded.payload.headers, body: &recorded.payload.body };
    let other_answer = Answer { status: other.status, headers: &other.headers, body: &other.body };
    let mut comparison = diff::compare_rewritten(&recorded_answer, &other_answer, rules, origin);
    if recorded.malformed.is_some() {
        // Production's framing was broken: its body is what a browser
        // would guess, so no body comparison is trusted (see
        // `report_malformed_recorded`).
        comparison.differences.retain(|d| d.path == "status" || d.path.starts_with("header:"));
    } else if other.truncated {
        // Only the start of the answer was kept: its body differs (the
        // recorded one is within the limit), and that is all we know.
        comparison.differences.retain(|d| d.path == "status" || d.path.starts_with("header:"));
        comparison.differences.push(diff::Difference {
            path: String::new(),
            kind: diff::DiffKind::Changed,
            recorded: format!("{} bytes", recorded.payload.body.len()).into(),
            candidate: format!("more than {} bytes (the body limit)", body_limit).into(),
        });
    }
    comparison
}

/// Asks the CPU to bring the recorded answer (built on a capture thread,
/// cold in this core's caches) into cache while the candidate answers, so
/// that comparing does not wait for memory. Profiles showed the first
/// reads of the recorded headers and body as the costliest part of the
/// comparison. A hint only: it changes no data and nothing waits for it.
pub(super) fn prefetch_recorded_answer(exchange: &Exchange) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let Some(response) = &exchange.response else { return };
        let lines = |bytes: &[u8]| {
            for line in bytes.chunks(64) {
                // SAFETY: prefetching is a hint and never faults, whatever
                // the address; these addresses are valid reads anyway.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
            }
        };
        for (name, value) in &response.payload.headers {
            lines(name.as_bytes());
            lines(value.as_bytes());
        }
        lines(&response.payload.body);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = exchange;
}
