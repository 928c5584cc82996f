//! Replay stage: ordered exchanges in (from the pipeline); each one that
//! may be replayed is sent to the candidate, its answer compared with the
//! recorded one ([`crate::diff`]), and an [`Outcome`] comes out per
//! captured exchange, to the `--out` JSON Lines and to the report.
//!
//! Replay is off the critical path: exchanges arrive over bounded queues.
//! From files ([`lanes`]) the queues wait (nothing is lost); live
//! ([`run`]), a full queue drops the exchange and counts it, so capture
//! never waits for the candidate. Both schedulers call
//! [`Replayer::process`] for each exchange.

pub mod client;
pub mod config;
pub mod endpoint;
pub mod lanes;
mod live;
pub mod naming;
mod plain;
mod schedule;
pub mod session;
mod tls;
pub mod triage;

pub use live::run;
pub use schedule::Schedule;
pub(crate) use schedule::{Pacer, RateLimiter};

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::diff::{self, Answer, CompareRules, Difference};
use crate::exchange::{Exchange, format_ts};
use client::{CandidateAnswer, CandidateClient};
use config::Config;
use endpoint::Template;

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

/// A recorded id and the candidate's id for the same thing.
#[derive(Clone, Debug, Serialize)]
pub struct MappedId {
    pub recorded: String,
    pub candidate: String,
}

/// One line of `--out`.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
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
    /// Ids learned from writes, or used to rewrite this request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mapped_ids: Vec<MappedId>,
    /// Why an exchange was not replayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Equivalence rules that made raw differences disappear.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub equivalences: BTreeMap<&'static str, u64>,
}

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
    pub ids: Arc<triage::IdMap>,
    /// Endpoint templates learned from the traffic (a scan of the files
    /// first, or the daemon as it goes); kept across reloads.
    pub names: Arc<naming::Names>,
}

/// The replayer in use. The daemon swaps in a new one on reload; tasks
/// already running finish with the one they started with. Taken once per
/// exchange, never on the packet path.
pub struct Current(std::sync::RwLock<Arc<Replayer>>);

impl Current {
    pub fn new(replayer: Replayer) -> Current {
        Current(std::sync::RwLock::new(Arc::new(replayer)))
    }

    pub fn get(&self) -> Arc<Replayer> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Swaps in a new replayer, which keeps what the old one learned.
    pub fn set(&self, mut replayer: Replayer) {
        let mut slot = self.0.write().unwrap_or_else(|e| e.into_inner());
        replayer.noise = slot.noise.clone();
        replayer.ids = slot.ids.clone();
        replayer.names = slot.names.clone();
        *slot = Arc::new(replayer);
    }
}

impl Replayer {
    pub fn new(config: Config, candidate: &str) -> Result<Replayer, client::ClientError> {
        let body_limit = config.capture.body_limit;
        let client = CandidateClient::new(candidate, &config.candidate, body_limit)?;
        let templates = config.templates();
        let endpoint_rules = templates.iter().map(|t| (t.text.clone(), config.rules_for(&t.text))).collect();
        let mut writes: Vec<Template> = config.replay.allow_writes.iter().filter_map(|t| Template::parse(t)).collect();
        writes.extend(config.endpoints.iter().filter(|e| e.allow_writes).filter_map(|e| Template::parse(&e.template)));
        let legacy_client = |url: &Option<String>| -> Result<Option<CandidateClient>, client::ClientError> {
            url.as_deref().map(|u| CandidateClient::new(u, &config.candidate, body_limit)).transpose()
        };
        let secondary = legacy_client(&config.legacy.secondary)?;
        let primary = legacy_client(&config.legacy.primary)?;
        Ok(Replayer {
            config,
            templates,
            endpoint_rules,
            writes,
            client,
            secondary,
            primary,
            noise: Default::default(),
            ids: Default::default(),
            names: Default::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A request we sent ourselves (it carries our marker header): seen
    /// again when the candidate listens where we capture. Never replayed.
    pub fn is_own_replay(&self, exchange: &Exchange) -> bool {
        let marker = &self.config.candidate.marker_header;
        !marker.is_empty() && exchange.request.payload.header(marker).is_some()
    }

    fn endpoint(&self, exchange: &Exchange) -> String {
        self.names.name(&exchange.request.method, &exchange.request.uri, &self.templates)
    }

    /// The configured templates (they win over learned ones).
    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// Why this exchange must not be replayed, if so.
    fn skip_reason(&self, exchange: &Exchange) -> Option<String> {
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
            return Some("capture gap in this exchange".into());
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
    fn is_write(&self, exchange: &Exchange) -> bool {
        !self.config.replay.methods.iter().any(|m| m.eq_ignore_ascii_case(&exchange.request.method))
    }

    fn base_outcome(&self, exchange: &Exchange, endpoint: String) -> Outcome {
        Outcome {
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
        }
    }

    /// Replays one exchange (or says why not) and compares the answers,
    /// then sets aside what is noise, timing or generated ids.
    pub async fn process(&self, exchange: &Exchange) -> Outcome {
        let endpoint = self.endpoint(exchange);
        let mut outcome = self.base_outcome(exchange, endpoint);
        if let Some(reason) = self.skip_reason(exchange) {
            outcome.reason = Some(reason);
            return outcome;
        }
        let (uri, used_ids) = self.ids.rewrite_uri(&exchange.request.uri);
        outcome.mapped_ids =
            used_ids.into_iter().map(|(recorded, candidate)| MappedId { recorded, candidate }).collect();
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
        prefetch_recorded_answer(exchange);
        let (answer, secondary) = tokio::join!(self.client.send_to(&exchange.request, &uri), secondary);
        if let Some(Ok(second)) = secondary {
            let c = self.compare_with_recorded(exchange, &outcome.endpoint, &second);
            self.noise.learn(&outcome.endpoint, &c.differences, "secondary");
        }
        // Repeats are learned after the comparison, which has just read the
        // recorded answer (warm in cache), and before triage, which uses
        // what was learned.
        match answer {
            Err(e) => {
                self.learn_from_repeats(exchange, &outcome.endpoint);
                outcome.outcome = OutcomeKind::Error;
                outcome.error = Some(e.to_string());
            }
            Ok(answer) => {
                self.compare_into(&mut outcome, exchange, &answer);
                self.learn_from_repeats(exchange, &outcome.endpoint);
                self.triage(&mut outcome, exchange, &answer).await;
            }
        }
        outcome
    }

    fn learn_from_repeats(&self, exchange: &Exchange, endpoint: &str) {
        if !self.config.noise.from_repeats {
            return;
        }
        let window = self.config.noise.repeat_window_s as i64 * 1_000_000_000;
        let previous = match self.noise.previous_answer(exchange, window) {
            None => return,
            Some(triage::Repeat::Same) => {
                // The same answer again: no difference (what comparing says).
                self.noise.learn(endpoint, &[], "repeats");
                return;
            }
            Some(triage::Repeat::Changed(previous)) => previous,
        };
        let (status, headers, body) = previous.into_answer();
        let earlier = CandidateAnswer { status, headers, body, latency_us: 0, truncated: false };
        let c = self.compare_with_recorded(exchange, endpoint, &earlier);
        self.noise.learn(endpoint, &c.differences, "repeats");
    }

    /// The rules for an endpoint: its configured ones, else the global ones.
    fn rules_for(&self, endpoint: &str) -> &CompareRules {
        self.endpoint_rules.iter().find(|(e, _)| e == endpoint).map_or(&self.config.compare, |(_, rules)| rules)
    }

    fn compare_with_recorded(&self, exchange: &Exchange, endpoint: &str, other: &CandidateAnswer) -> diff::Comparison {
        let recorded = exchange.response.as_ref().expect("replayed exchanges have a response");
        let rules = self.rules_for(endpoint);
        let recorded_answer =
            Answer { status: recorded.status, headers: &recorded.payload.headers, body: &recorded.payload.body };
        let other_answer = Answer { status: other.status, headers: &other.headers, body: &other.body };
        let mut comparison = diff::compare(&recorded_answer, &other_answer, rules);
        if other.truncated {
            // Only the start of the answer was kept: its body differs (the
            // recorded one is within the limit), and that is all we know.
            comparison.differences.retain(|d| d.path == "status" || d.path.starts_with("header:"));
            comparison.differences.push(diff::Difference {
                path: String::new(),
                kind: diff::DiffKind::Changed,
                recorded: format!("{} bytes", recorded.payload.body.len()).into(),
                candidate: format!("more than {} bytes (the body limit)", self.config.capture.body_limit).into(),
            });
        }
        comparison
    }

    fn compare_into(&self, outcome: &mut Outcome, exchange: &Exchange, answer: &CandidateAnswer) {
        outcome.candidate_status = Some(answer.status);
        outcome.candidate_latency_us = Some(answer.latency_us);
        let comparison = self.compare_with_recorded(exchange, &outcome.endpoint, answer);
        self.noise.count_candidate(&outcome.endpoint, &comparison.differences);
        outcome.outcome = if comparison.differences.is_empty() { OutcomeKind::Match } else { OutcomeKind::Diff };
        outcome.differences = comparison.differences;
        outcome.equivalences = comparison.equivalences;
    }
}

/// Asks the CPU to bring the recorded answer (built on a capture thread,
/// cold in this core's caches) into cache while the candidate answers, so
/// that comparing does not wait for memory. Profiles showed the first
/// reads of the recorded headers and body as the costliest part of the
/// comparison. A hint only: it changes no data and nothing waits for it.
fn prefetch_recorded_answer(exchange: &Exchange) {
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

/// Methods that never change anything: the only ones sent to production
/// (the secondary, and the primary for race checks).
pub(crate) fn is_safe(method: &str) -> bool {
    ["GET", "HEAD", "OPTIONS"].iter().any(|m| m.eq_ignore_ascii_case(method))
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
