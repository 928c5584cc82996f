//! The replayer: one captured exchange in, sent to the candidate (and the
//! legacy instances), compared with the recorded answer and triaged; one
//! [`Outcome`] out. Both schedulers (`topology::lanes`,
//! `topology::dispatch`) call [`Replayer::process`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::answer::{CandidateAnswer, ClientError};
use super::client::CandidateClient;
use super::config::{self, Config};
use super::endpoint::{self, Template};
use super::outcome::{Explained, GAP_REASON, HEADERS_INCOMPLETE_REASON, Outcome, OutcomeKind};
use super::{naming, triage};
use crate::calendar::format_ts;
use crate::diff::{self, CompareRules};
use crate::exchange::{self, Exchange};
use crate::semantics::is_safe;

mod compare;
mod judging;

use compare::{compare_response, prefetch_recorded_answer, report_malformed_recorded};

/// Everything replay needs, shared by its tasks.
pub struct Replayer {
    config: Config,
    templates: Vec<Template>,
    /// Comparison rules of each configured endpoint (global plus its own),
    /// merged once here rather than for every comparison.
    endpoint_rules: Vec<(String, CompareRules)>,
    writes: Vec<Template>,
    client: CandidateClient,
    secondary: Option<CandidateClient>,
    primary: Option<CandidateClient>,
    /// Learned as traffic flows; kept across reloads.
    pub noise: Arc<triage::NoiseModel>,
    pub generated: Arc<triage::GeneratedValues>,
    pub validators: Arc<triage::Validators>,
    /// Requests in flight to the candidate right now, over all lanes and
    /// workers; kept across reloads.
    in_flight: Arc<AtomicUsize>,
    /// Endpoint templates learned from the traffic (a scan of the files
    /// first, or the daemon as it goes); kept across reloads.
    pub names: Arc<naming::Names>,
}

/// When a request went to the candidate, how many were in flight then
/// (itself included), and when its answer (or error) came.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    pub in_flight: u32,
    pub at: Instant,
    pub done: Instant,
}

/// Counts a request in flight until dropped (also when its future is
/// dropped half way, by a timeout or a panic).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    /// Enters, returning the guard and the count with this one.
    fn enter(gauge: &'a AtomicUsize) -> (InFlight<'a>, u32) {
        let now = gauge.fetch_add(1, Ordering::AcqRel) + 1;
        (InFlight(gauge), now.min(u32::MAX as usize) as u32)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Bodies (recorded plus candidate) up to this size are compared where the
/// answer was read; larger differing ones on a blocking thread, so that a
/// long comparison (a text diff may take hundreds of ms) never delays
/// reading, and so timing, the other answers in flight on that thread.
const INLINE_COMPARE_BYTES: usize = 8 << 10;

/// The replayer in use. The daemon swaps in a new one on reload; tasks
/// already running finish with the one they started with. Taken once per
/// exchange, never on the packet path.
pub struct Current {
    slot: std::sync::RwLock<Arc<Replayer>>,
    /// Requests that carried our marker header (our own replays seen
    /// again: a loop), not replayed; kept across reloads.
    loops: std::sync::atomic::AtomicU64,
}

impl Current {
    pub fn new(replayer: Replayer) -> Current {
        Current { slot: std::sync::RwLock::new(Arc::new(replayer)), loops: Default::default() }
    }

    pub fn get(&self) -> Arc<Replayer> {
        self.slot.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// True (and counted) when `exchange` is one of our own replays seen
    /// again: the schedulers then leave it out, counted, never silently.
    pub fn is_loop(&self, replayer: &Replayer, exchange: &Exchange) -> bool {
        let ours = replayer.is_own_replay(exchange);
        if ours {
            self.loops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        ours
    }

    /// Our own replays seen again so far (`is_loop`).
    pub fn loops(&self) -> u64 {
        self.loops.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Swaps in a new replayer, which keeps what the old one learned.
    pub fn set(&self, mut replayer: Replayer) {
        let mut slot = self.slot.write().unwrap_or_else(|e| e.into_inner());
        replayer.noise = slot.noise.clone();
        replayer.generated = slot.generated.clone();
        replayer.validators = slot.validators.clone();
        replayer.in_flight = slot.in_flight.clone();
        replayer.names = slot.names.clone();
        *slot = Arc::new(replayer);
    }
}

impl Replayer {
    pub fn new(config: Config, candidate: &str) -> Result<Replayer, ClientError> {
        let body_limit = config.capture.body_limit;
        let client = CandidateClient::new(candidate, &config.candidate, body_limit)?;
        let templates = config.templates();
        let endpoint_rules = templates.iter().map(|t| (t.text.clone(), config.rules_for(&t.text))).collect();
        let mut writes: Vec<Template> = config.replay.allow_writes.iter().filter_map(|t| Template::parse(t)).collect();
        writes.extend(config.endpoints.iter().filter(|e| e.allow_writes).filter_map(|e| Template::parse(&e.template)));
        // Other legacy instances are production: they are asked exactly as
        // production was, with the recorded Host (a rewritten one would
        // change links and content hashes in their answers, and teach that
        // as production's own noise).
        let as_production = config::CandidateConfig {
            host_header: "keep".into(),
            forwarded_headers: false,
            ..config.candidate.clone()
        };
        let legacy_client = |url: &Option<String>| -> Result<Option<CandidateClient>, ClientError> {
            url.as_deref().map(|u| CandidateClient::new(u, &as_production, body_limit)).transpose()
        };
        let secondary = legacy_client(&config.legacy.secondary)?;
        let primary = legacy_client(&config.legacy.primary)?;
        let noise = triage::NoiseModel::bounded(config.output.max_endpoints, config.output.max_fields);
        let generated = triage::GeneratedValues::bounded(config.replay.max_mapped_values);
        let validators = triage::Validators::bounded(config.replay.max_mapped_values);
        Ok(Replayer {
            config,
            templates,
            endpoint_rules,
            writes,
            client,
            secondary,
            primary,
            noise: Arc::new(noise),
            generated: Arc::new(generated),
            validators: Arc::new(validators),
            in_flight: Default::default(),
            names: Default::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the replayer's learned maps evicted to stay within their
    /// bounds (`noise_*`, `repeats`, `generated_values`, `validators`).
    pub fn evicted(&self) -> crate::bounded::Evicted {
        let mut evicted = self.noise.evicted();
        evicted.insert("generated_values", self.generated.evicted());
        evicted.insert("validators", self.validators.evicted());
        evicted
    }

    /// A request we sent ourselves (it carries our marker header): seen
    /// again when the candidate listens where we capture. Never replayed.
    pub fn is_own_replay(&self, exchange: &Exchange) -> bool {
        let marker = &self.config.candidate.marker_header;
        !marker.is_empty() && exchange.request.payload.header(marker).is_some()
    }

    pub(crate) fn endpoint(&self, exchange: &Exchange) -> String {
        self.names.name(&exchange.request.method, &exchange.request.uri, &self.templates)
    }

    /// The configured templates (they win over learned ones).
    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// Why this exchange must not be replayed, if so.
    pub(crate) fn skip_reason(&self, exchange: &Exchange) -> Option<String> {
        if exchange.headers_incomplete() {
            // HTTP/2 joined late: a header came from an HPACK entry the
            // capture never saw, so the request is not known whole.
            return Some(HEADERS_INCOMPLETE_REASON.into());
        }
        let request = &exchange.request;
        let method_ok = self.config.replay.methods.iter().any(|m| m.eq_ignore_ascii_case(&request.method));
        let path = endpoint::path_of(&request.uri);
        let write_ok = self.writes.iter().any(|t| t.matches(&request.method, path));
        if !method_ok && !write_ok {
            return Some(format!("{} is not replayed (not a safe method, no allow_writes route)", request.method));
        }
        let Some(response) = &exchange.response else {
            return Some("no recorded response".into());
        };
        if exchange.gap {
            return Some(GAP_REASON.into());
        }
        let limit = self.config.capture.body_limit;
        if request.payload.truncated && request.payload.body.len() < limit {
            // Cut short, not cut at the limit: production answered before
            // the client had sent it all (a 413, a 401 during an upload).
            return Some("request incomplete: production answered before the client had sent it all".into());
        }
        if request.payload.truncated || response.payload.truncated {
            return Some("body larger than --body-limit".into());
        }
        if response.status == 101 || request.method.eq_ignore_ascii_case("CONNECT") {
            return Some("protocol switch or tunnel".into());
        }
        None
    }

    /// A write that will be replayed (its route allows it): it must go
    /// alone, after everything before it was answered.
    pub(crate) fn is_replayed_write(&self, exchange: &Exchange) -> bool {
        self.is_write(exchange) && self.will_replay(exchange)
    }

    /// The exchange goes to the candidate (not ours, not skipped).
    pub(crate) fn will_replay(&self, exchange: &Exchange) -> bool {
        !self.is_own_replay(exchange) && self.skip_reason(exchange).is_none()
    }

    /// Not one of the methods replayed everywhere: a write, replayed
    /// because its route writes to sister datastores.
    pub(crate) fn is_write(&self, exchange: &Exchange) -> bool {
        !self.config.replay.methods.iter().any(|m| m.eq_ignore_ascii_case(&exchange.request.method))
    }

    fn base_outcome(&self, exchange: &Exchange, endpoint: String) -> Outcome {
        Outcome {
            schema: Default::default(),
            ts: format_ts(exchange.request.ts),
            method: exchange.request.method.clone(),
            uri: exchange.request.uri.clone(),
            endpoint,
            outcome: OutcomeKind::Skipped,
            differences: Vec::new(),
            recorded_status: exchange.response.as_ref().map(|r| r.status),
            candidate_status: None,
            recorded_latency_us: exchange.latency_us(),
            candidate_latency_us: None,
            error: None,
            explained: Vec::new(),
            mapped_ids: Vec::new(),
            reason: None,
            equivalences: BTreeMap::new(),
            noise_barred: false,
        }
    }

    /// Replays one exchange (or says why not) and compares the answers,
    /// then sets aside what is noise, timing or generated ids.
    pub async fn process(&self, exchange: &Exchange) -> Outcome {
        self.process_measured(exchange).await.0
    }

    /// [`Self::process`], and when the request went to the candidate and
    /// how many were in flight then (`None`: not sent).
    pub async fn process_measured(&self, exchange: &Exchange) -> (Outcome, Option<Sent>) {
        let endpoint = self.endpoint(exchange);
        let mut outcome = self.base_outcome(exchange, endpoint);
        if let Some(reason) = self.skip_reason(exchange) {
            outcome.reason = Some(reason);
            return (outcome, None);
        }
        let mapped;
        let to_send = match self.validators.plan(exchange) {
            triage::Plan::AsRecorded => exchange,
            triage::Plan::Mapped(exchange) => {
                mapped = exchange;
                &*mapped
            }
            triage::Plan::Skip(reason) => {
                outcome.reason = Some(reason);
                return (outcome, None);
            }
        };
        let (uri, used_ids) = self.generated.rewrite_uri(&exchange.request.uri);
        outcome.mapped_ids = used_ids;
        // The secondary is production (it shares production's datastores):
        // it only ever hears reads. A replayed write (allow_writes) sent
        // there would write to production's data, and teach the ids it
        // generated as noise.
        let secondary = async {
            match &self.secondary {
                Some(client) if is_safe(&exchange.request.method) => Some(client.send(&exchange.request).await),
                _ => None,
            }
        };
        let candidate = async {
            // Timed where the answer is read; the comparisons below never
            // run on this thread while other answers wait (see
            // INLINE_COMPARE_BYTES).
            let (_guard, in_flight) = InFlight::enter(&self.in_flight);
            let at = Instant::now();
            let answer = self.client.send_to(&to_send.request, &uri).await;
            (answer, Sent { in_flight, at, done: Instant::now() })
        };
        prefetch_recorded_answer(exchange);
        let sent_at = std::time::SystemTime::now();
        let ((answer, sent), secondary) = tokio::join!(candidate, secondary);
        let replayed = triage::Window::between(sent_at, std::time::SystemTime::now());
        if let Some(Ok(second)) = secondary {
            let (c, _) = self.compare_answer(exchange, &outcome.endpoint, second, self.secondary.as_ref()).await;
            self.noise.learn(&outcome.endpoint, &c.differences, "secondary");
        }
        match answer {
            Err(e) => {
                outcome.outcome = OutcomeKind::Error;
                outcome.error = Some(e.to_string());
            }
            Ok(answer) => {
                let full;
                let compared = match self.compare_with(to_send, &answer) {
                    triage::Compare::Recorded => to_send,
                    triage::Compare::FullAnswer(earlier) => {
                        outcome.explained.push(Explained { path: "status".into(), by: "not_modified" });
                        full = earlier;
                        &*full
                    }
                    triage::Compare::Nothing(reason) => {
                        outcome.candidate_status = Some(answer.status);
                        outcome.reason = Some(reason);
                        return (outcome, Some(sent));
                    }
                };
                let answer = self.compare_into(&mut outcome, compared, answer).await;
                self.triage(&mut outcome, compared, &answer, replayed).await;
                report_malformed_recorded(&mut outcome, compared, &answer);
            }
        }
        (outcome, Some(sent))
    }

    /// What the candidate's answer to a conditional request is compared
    /// with (see [`triage::Validators`]); production's last full answer to
    /// the same request comes from what repeats remember.
    fn compare_with(&self, sent: &Exchange, answer: &CandidateAnswer) -> triage::Compare {
        triage::Validators::compare_with(sent, answer.status, &answer.headers, |unconditional| {
            let (status, headers, body) = self.noise.last_answer(unconditional, &self.config.noise)?;
            let mut response = sent.response.clone()?;
            response.status = status;
            response.payload = exchange::Payload { headers, body_len: body.len() as u64, body, truncated: false };
            response.malformed = None;
            Some(Exchange { request: unconditional.clone(), response: Some(response), ..sent.clone() })
        })
    }

    /// Called by the schedulers for each exchange in capture order, before
    /// it is handed out for replay: what production's own answers teach
    /// (repeats) is learned in the order production gave them, and the
    /// last full answer to each request is known before any later
    /// conditional request to it is compared (replays finish in any
    /// order). Requests we sent ourselves are not production's.
    pub fn note_in_capture_order(&self, exchange: &Exchange) {
        if !self.is_own_replay(exchange) {
            self.learn_from_repeats(exchange, &self.endpoint(exchange));
        }
    }

    fn learn_from_repeats(&self, exchange: &Exchange, endpoint: &str) {
        if !self.config.noise.from_repeats {
            return;
        }
        let previous = match self.noise.previous_answer(exchange, &self.config.noise) {
            None => return,
            Some(triage::Repeat::Same) => {
                // The same answer again: no difference (what comparing says).
                self.noise.learn(endpoint, &[], "repeats");
                return;
            }
            Some(triage::Repeat::Changed(previous)) => previous,
        };
        let (status, headers, body) = previous.to_answer();
        let earlier = CandidateAnswer { status, headers, body, latency_us: 0, truncated: false };
        let c = self.compare_with_recorded(exchange, endpoint, &earlier, None);
        self.noise.learn(endpoint, &c.differences, "repeats");
    }

    /// The rules for an endpoint: its configured ones, else the global ones.
    fn rules_for(&self, endpoint: &str) -> &CompareRules {
        self.endpoint_rules.iter().find(|(e, _)| e == endpoint).map_or(&self.config.compare, |(_, rules)| rules)
    }

    /// Compares another answer to this exchange's request with the recorded
    /// one; `from` is the client that got it (its Host rewrite is undone),
    /// `None` for an answer from the capture itself.
    fn compare_with_recorded(
        &self,
        exchange: &Exchange,
        endpoint: &str,
        other: &CandidateAnswer,
        from: Option<&CandidateClient>,
    ) -> diff::Comparison {
        let recorded = exchange.response.as_ref().expect("replayed exchanges have a response");
        let origin = from.and_then(|client| client.origin_rewrite(&exchange.request));
        compare_response(recorded, other, self.rules_for(endpoint), self.config.capture.body_limit, origin.as_ref())
    }

    /// [`Self::compare_with_recorded`], off this thread when the bodies are
    /// large and differ (see [`INLINE_COMPARE_BYTES`]); hands `other` back.
    async fn compare_answer(
        &self,
        exchange: &Exchange,
        endpoint: &str,
        other: CandidateAnswer,
        from: Option<&CandidateClient>,
    ) -> (diff::Comparison, CandidateAnswer) {
        let recorded = exchange.response.as_ref().expect("replayed exchanges have a response");
        let body = &recorded.payload.body;
        if body.len() + other.body.len() <= INLINE_COMPARE_BYTES || *body == other.body {
            return (self.compare_with_recorded(exchange, endpoint, &other, from), other);
        }
        // Copies: the blocking thread cannot borrow. A copy of a large body
        // costs far less than comparing it.
        let (recorded, rules) = (recorded.clone(), self.rules_for(endpoint).clone());
        let origin = from.and_then(|client| client.origin_rewrite(&exchange.request));
        let limit = self.config.capture.body_limit;
        let compared = tokio::task::spawn_blocking(move || {
            (compare_response(&recorded, &other, &rules, limit, origin.as_ref()), other)
        });
        match compared.await {
            Ok(done) => done,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("comparison cancelled: {e}"),
        }
    }

    async fn compare_into(
        &self,
        outcome: &mut Outcome,
        exchange: &Exchange,
        answer: CandidateAnswer,
    ) -> CandidateAnswer {
        outcome.candidate_status = Some(answer.status);
        outcome.candidate_latency_us = Some(answer.latency_us);
        let (comparison, answer) = self.compare_answer(exchange, &outcome.endpoint, answer, Some(&self.client)).await;
        self.noise.count_candidate(&outcome.endpoint, &comparison.differences);
        outcome.outcome = if comparison.differences.is_empty() { OutcomeKind::Match } else { OutcomeKind::Diff };
        outcome.differences = comparison.differences;
        outcome.equivalences = comparison.equivalences;
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_rules_are_merged_once_and_found_by_endpoint() {
        let config = Config::parse(
            "[compare]\nignore_paths=[\"/a\"]\n[[endpoints]]\ntemplate=\"get /u/{id}\"\nignore_paths=[\"/b\"]\n",
            "c",
        )
        .unwrap();
        let replayer = Replayer::new(config, "http://127.0.0.1:1").unwrap();
        assert_eq!(replayer.rules_for("GET /u/{id}").ignore_paths, vec!["/a", "/b"]);
        assert_eq!(replayer.rules_for("GET /other").ignore_paths, vec!["/a"]);
    }
}
