//! What [`Replayer::process`] does with an answer once it is compared:
//! triage (values a write generated, validators, noise, races; the models
//! are in [`crate::replay::triage`]), and judging a held diff again
//! ([`crate::replay::holdback`]).

use super::Replayer;
use crate::diff::{self, Answer, Difference};
use crate::exchange::Exchange;
use crate::replay::answer::CandidateAnswer;
use crate::replay::outcome::{Explained, Outcome, OutcomeKind};
use crate::replay::triage::{Generated, Window, generated, validators};
use crate::semantics::is_safe;

/// Noise explains fields, never the outcome of a request: however often
/// production answered one request in two ways (a 200 and a 304, a 200 and
/// a 503 during an incident), a candidate answering in another status
/// class, or with no body where production sent one, is a real difference,
/// and so is all that comes with it (another content type, an error body):
/// none of this answer's differences is then set aside as noise.
fn noise_may_explain(differences: &[Difference], exchange: &Exchange, answer: &CandidateAnswer) -> bool {
    let Some(recorded) = &exchange.response else { return false };
    let same_class = recorded.status / 100 == answer.status / 100;
    let body_missing = answer.body.is_empty() && !recorded.payload.body.is_empty();
    let body_differs = differences.iter().any(|d| d.path.is_empty() || d.path.starts_with('/'));
    same_class && !(body_missing && body_differs)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// The triage of one compared exchange: what [`Replayer::process`] calls
/// once the candidate's answer has been compared with the recorded one.
impl Replayer {
    /// Sets aside what a write generated, values mapped from earlier
    /// writes and noise, then asks production whether what remains is a
    /// race. `replayed` is when the candidate was asked and answered.
    pub(super) async fn triage(
        &self,
        outcome: &mut Outcome,
        exchange: &Exchange,
        answer: &CandidateAnswer,
        replayed: Window,
    ) {
        if outcome.differences.is_empty() {
            return;
        }
        let mut rest = std::mem::take(&mut outcome.differences);
        if self.is_write(exchange) {
            // First what this write generated, so that a `Location` or a
            // link naming a generated id maps whatever its place.
            rest.retain(|d| match self.generated_by_write(d, exchange, replayed) {
                Some(kind) => {
                    outcome.mapped_ids.extend(self.generated.learn(d, kind));
                    outcome.explained.push(Explained { path: d.path.clone(), by: kind.explained_by() });
                    false
                }
                None => true,
            });
        }
        self.set_aside_validators(&mut rest, outcome, exchange);
        let noise_may_explain = noise_may_explain(&rest, exchange, answer);
        outcome.noise_barred = !noise_may_explain;
        let mut real = Vec::new();
        let mut any_noise = false;
        for d in rest {
            let by = if let Some(kind) = self.generated.explains(&d, &self.config.replay.id_fields) {
                Some(kind.mapped_by())
            } else if noise_may_explain && self.noise.is_noisy(&outcome.endpoint, &d, &self.config.noise) {
                any_noise = true;
                Some("noise")
            } else {
                None
            };
            match by {
                Some(by) => outcome.explained.push(Explained { path: d.path.clone(), by }),
                None => real.push(d),
            }
        }
        if !real.is_empty() && self.is_race(exchange, &outcome.endpoint, answer, &real).await {
            outcome.explained.extend(real.drain(..).map(|d| Explained { path: d.path, by: "race" }));
            outcome.outcome = OutcomeKind::Race;
            return;
        }
        outcome.outcome = match (real.is_empty(), any_noise) {
            (false, _) => OutcomeKind::Diff,
            (true, true) => OutcomeKind::Noise,
            (true, false) => OutcomeKind::Match,
        };
        outcome.differences = real;
    }

    /// Validators of the same content differ between implementations: where
    /// no body difference remains, different `ETag`s and `Last-Modified`s
    /// (both present) are set aside and the pair remembered for the URI;
    /// a pair remembered before is set aside whatever the body.
    fn set_aside_validators(&self, rest: &mut Vec<Difference>, outcome: &mut Outcome, exchange: &Exchange) {
        let uri = &exchange.request.uri;
        let bodies_agree = !rest.iter().any(|d| d.path.is_empty() || d.path.starts_with('/'));
        rest.retain(|d| {
            if !validators::is_validator_header(&d.path) {
                return true;
            }
            let known = self.validators.explains(uri, d);
            let learnable = bodies_agree && d.kind == diff::DiffKind::Changed;
            if !(known || learnable) {
                return true;
            }
            if let (false, Some(r), Some(c)) = (known, d.recorded.as_str(), d.candidate.as_str()) {
                self.validators.learn(uri, r, c);
            }
            outcome.explained.push(Explained { path: d.path.clone(), by: "validator" });
            false
        });
    }

    /// What kind of value this write generated at this difference, if any.
    /// A value the client sent in the request is data, never generated.
    fn generated_by_write(&self, d: &Difference, exchange: &Exchange, replayed: Window) -> Option<Generated> {
        let recorded_text = generated::value_text(&d.recorded)?;
        generated::value_text(&d.candidate)?;
        if contains(&exchange.request.payload.body, recorded_text.as_bytes()) {
            return None;
        }
        let replay = &self.config.replay;
        if generated::looks_like_id_field(&d.path, &replay.id_fields) {
            return Some(Generated::Id);
        }
        let recorded = Window {
            start: exchange.request.ts,
            end: exchange.response.as_ref().map_or(exchange.request.ts, |r| r.ts),
        };
        let tolerance = std::time::Duration::from_millis(replay.generated_time_tolerance_ms);
        if generated::is_generated_time(d, recorded, replayed, tolerance) {
            return Some(Generated::Time);
        }
        generated::looks_like_token_field(&d.path, &replay.generated_fields).then_some(Generated::Value)
    }

    /// With `--primary`: production answers the same idempotent request
    /// again. If its answer now equals the candidate's, or has moved at
    /// every field where the candidate differs, to what the candidate says
    /// there, the diff is timing.
    async fn is_race(
        &self,
        exchange: &Exchange,
        endpoint: &str,
        answer: &CandidateAnswer,
        real: &[Difference],
    ) -> bool {
        let Some(primary) = &self.primary else { return false };
        if !is_safe(&exchange.request.method) {
            return false;
        }
        let Ok(now) = primary.send(&exchange.request).await else { return false };
        let rules = self.rules_for(endpoint);
        let now_answer = Answer { status: now.status, headers: &now.headers, body: &now.body };
        let candidate_answer = Answer { status: answer.status, headers: &answer.headers, body: &answer.body };
        let now_vs_candidate = diff::compare(&now_answer, &candidate_answer, rules);
        if now_vs_candidate.differences.is_empty() {
            return true;
        }
        let moved = self.compare_with_recorded(exchange, endpoint, &now, Some(primary));
        let moved_fields: std::collections::HashSet<&str> = moved.differences.iter().map(|d| d.path.as_str()).collect();
        // Production having moved at a field does not make the candidate's
        // value there right: recorded 70, production now 71, candidate 72
        // is a bug, not timing. A field is timing only where production now
        // agrees with the candidate.
        let still_differs: std::collections::HashSet<&str> =
            now_vs_candidate.differences.iter().map(|d| d.path.as_str()).collect();
        real.iter().all(|d| moved_fields.contains(d.path.as_str()) && !still_differs.contains(d.path.as_str()))
    }

    /// A held diff, judged with the noise known now: its differences that
    /// are noise by now are set aside as such.
    pub(in crate::replay) fn judge_noise_again(&self, outcome: &mut Outcome) {
        let config = &self.config().noise;
        if outcome.noise_barred {
            return;
        }
        let (noisy, real): (Vec<Difference>, Vec<Difference>) = std::mem::take(&mut outcome.differences)
            .into_iter()
            // A recorded answer with broken framing is never noise.
            .partition(|d| {
                d.kind != crate::diff::DiffKind::MalformedRecorded && self.noise.is_noisy(&outcome.endpoint, d, config)
            });
        outcome.explained.extend(noisy.iter().map(|d| Explained { path: d.path.clone(), by: "noise" }));
        if real.is_empty() {
            outcome.outcome = OutcomeKind::Noise;
        }
        outcome.differences = real;
    }
}
