//! The report's bounds: endpoints (`[output] max_endpoints`) and differing
//! fields per endpoint (`[output] max_fields`). In: a new endpoint or field
//! for a full map; out: room, made by evicting the least-seen, counted.
//!
//! An evicted endpoint's evidence is not dropped: it is folded into the
//! endpoint [`OTHER`], which is never ready, so its diffs and errors stay
//! counted. An evicted endpoint that comes back starts again with only part
//! of its evidence, so it is marked (`evidence_evicted`) and never ready
//! either: a verdict never rests on what was left after its failures were
//! evicted. The same holds when lanes' reports are merged (an endpoint one
//! lane evicted is marked in the merged report) and when endpoints are
//! renamed (the daemon's names becoming more general: an evicted name's
//! new name is marked). Evicted names are remembered (cut like fields,
//! bounded too); once that memory is full every new endpoint is marked,
//! since any could be one that came back.

use std::collections::HashSet;

use super::{EndpointReport, EndpointStats, Report};
use crate::bounded::{Evicted, victims};

/// Where evicted endpoints' evidence goes.
pub const OTHER: &str = "(other)";

/// Evicted endpoint names remembered, per endpoint kept.
const TOMBSTONES_PER_ENDPOINT: usize = 16;

/// The report's limits and what they evicted.
pub(super) struct Bounds {
    max_endpoints: usize,
    max_fields: usize,
    evicted_endpoints: u64,
    evicted_fields: u64,
    /// Names of evicted endpoints (`bounded::capped_key`).
    tombstones: HashSet<String>,
    /// Some evicted name could not be remembered: every new endpoint may
    /// be one coming back.
    forgot: bool,
    /// Outcomes added so far, to break ties among the least-seen (the
    /// least recently seen goes first).
    tick: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        let output = crate::replay::config::OutputConfig::default();
        Bounds::new(output.max_endpoints, output.max_fields)
    }
}

impl Bounds {
    pub(super) fn new(max_endpoints: usize, max_fields: usize) -> Bounds {
        Bounds {
            max_endpoints,
            max_fields,
            evicted_endpoints: 0,
            evicted_fields: 0,
            tombstones: HashSet::new(),
            forgot: false,
            tick: 0,
        }
    }

    fn remember_evicted(&mut self, name: &str) {
        if self.tombstones.len() < self.max_endpoints.saturating_mul(TOMBSTONES_PER_ENDPOINT) {
            self.tombstones.insert(crate::bounded::capped_key(name).into_owned());
        } else {
            self.forgot = true;
        }
    }

    fn was_evicted(&self, name: &str) -> bool {
        self.forgot || self.tombstones.contains(crate::bounded::capped_key(name).as_ref())
    }

    /// Folds another report's bounds in (lanes of one replay).
    pub(super) fn merge(&mut self, other: &Bounds) {
        self.evicted_endpoints += other.evicted_endpoints;
        self.evicted_fields += other.evicted_fields;
        self.forgot |= other.forgot;
        for name in &other.tombstones {
            self.remember_evicted(name);
        }
    }

    /// Evicted names get their new names too; whether any was new.
    pub(super) fn rename(&mut self, new_name: &impl Fn(&str) -> String) -> bool {
        let renamed: Vec<String> =
            self.tombstones.iter().map(|name| new_name(name)).filter(|new| !self.tombstones.contains(new)).collect();
        let any = !renamed.is_empty();
        for name in renamed {
            self.remember_evicted(&name);
        }
        any
    }
}

impl Report {
    /// A report keeping at most `max_endpoints` endpoints (one of them
    /// [`OTHER`]) of at most `max_fields` differing fields each.
    pub fn bounded(max_endpoints: usize, max_fields: usize) -> Report {
        Report { bounds: Bounds::new(max_endpoints, max_fields), ..Report::default() }
    }

    /// A report within `[output]`'s bounds.
    pub fn of_output(output: &crate::replay::config::OutputConfig) -> Report {
        Report::bounded(output.max_endpoints, output.max_fields)
    }

    /// What the report's own maps evicted.
    pub fn evicted(&self) -> Evicted {
        [("report_endpoints", self.bounds.evicted_endpoints), ("report_fields", self.bounds.evicted_fields)]
            .into_iter()
            .collect()
    }

    /// The names of evicted endpoints remembered, and whether some could
    /// not be (kept across restarts, `crate::state`: an endpoint evicted
    /// before a restart that comes back after it is still marked).
    pub fn evicted_names(&self) -> (Vec<String>, bool) {
        let mut names: Vec<String> = self.bounds.tombstones.iter().cloned().collect();
        names.sort();
        (names, self.bounds.forgot)
    }

    /// Remembers evicted endpoint names again (within the bound).
    pub fn remember_evicted_names(&mut self, names: &[String], forgot: bool) {
        for name in names {
            self.bounds.remember_evicted(name);
        }
        self.bounds.forgot |= forgot;
    }

    /// The endpoint's stats, made when new, after making room.
    pub(super) fn stats_mut(&mut self, name: &str) -> &mut EndpointStats {
        self.bounds.tick += 1;
        if !self.endpoints.contains_key(name) {
            self.make_room_for_endpoints(1);
            let stats = EndpointStats { evidence_evicted: self.bounds.was_evicted(name), ..Default::default() };
            self.endpoints.insert(name.to_string(), stats);
        }
        let stats = self.endpoints.get_mut(name).expect("present or just inserted");
        stats.last = self.bounds.tick;
        stats
    }

    /// Counts a differing field of `stats`, making room when it is new.
    pub(super) fn count_field(stats: &mut EndpointStats, bounds: &mut Bounds, path: &str) {
        let path = crate::bounded::capped_key(path);
        if let Some(n) = stats.fields.get_mut(path.as_ref()) {
            *n += 1;
            return;
        }
        bounds.evicted_fields += trim_fields(stats, bounds.max_fields);
        stats.fields.insert(path.into_owned(), 1);
    }

    /// After merging or renaming: endpoints evicted somewhere (another
    /// lane, under an older name) are marked, then back within the bounds.
    pub(super) fn enforce_bounds(&mut self) {
        if self.bounds.forgot || !self.bounds.tombstones.is_empty() {
            for (name, stats) in self.endpoints.iter_mut() {
                stats.evidence_evicted |= name != OTHER && self.bounds.was_evicted(name);
            }
        }
        let max_fields = self.bounds.max_fields;
        for stats in self.endpoints.values_mut() {
            if stats.fields.len() > max_fields {
                self.bounds.evicted_fields += trim_fields(stats, max_fields + 1);
            }
        }
        if self.endpoints.len() > self.bounds.max_endpoints {
            self.make_room_for_endpoints(0);
        }
    }

    /// Folds the least-seen endpoints (then the least recently seen) into
    /// [`OTHER`] so that `incoming` more fit. Least-seen, because an
    /// endpoint's evidence is worth keeping by how much there is: random
    /// paths are seen once, the service's endpoints over and over.
    fn make_room_for_endpoints(&mut self, incoming: usize) {
        let max = self.bounds.max_endpoints;
        // Folding makes OTHER when it is not there yet: room for it too.
        let len = self.endpoints.len() + incoming + usize::from(!self.endpoints.contains_key(OTHER));
        // `victims` makes room for one more.
        let gone = victims(self.endpoints.iter(), len.saturating_sub(1), max, |name, s| {
            if name == OTHER { (u64::MAX, u64::MAX) } else { (s.count, s.last) }
        });
        for name in gone.into_iter().filter(|name| name != OTHER) {
            let Some(stats) = self.endpoints.remove(&name) else { continue };
            self.bounds.evicted_endpoints += 1;
            self.bounds.remember_evicted(&name);
            let other = self.endpoints.entry(OTHER.to_string()).or_default();
            super::merge_stats(other, stats);
            self.load.fold(&name, OTHER);
        }
    }
}

/// Evicts the least-seen fields of `stats` so that one more fits under
/// `max`; how many went.
fn trim_fields(stats: &mut EndpointStats, max: usize) -> u64 {
    let gone = victims(stats.fields.iter(), stats.fields.len(), max, |_, n| *n);
    for path in &gone {
        stats.fields.remove(path);
    }
    gone.len() as u64
}

/// Why an endpoint's evidence is incomplete because of the bounds.
pub fn blockers(e: &EndpointReport) -> Option<String> {
    if e.endpoint == OTHER {
        Some("evidence of endpoints evicted by the report's bound ([output] max_endpoints), never judged".into())
    } else if e.evidence_evicted {
        Some("part of its evidence was evicted into (other) ([output] max_endpoints)".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::{Outcome, OutcomeKind};

    fn outcome(endpoint: &str, kind: OutcomeKind, fields: &[&str]) -> Outcome {
        let difference = |p: &&str| crate::diff::Difference {
            path: p.to_string(),
            kind: crate::diff::DiffKind::Changed,
            recorded: 1.into(),
            candidate: 2.into(),
        };
        Outcome {
            schema: Default::default(),
            ts: String::new(),
            method: "GET".into(),
            uri: endpoint.trim_start_matches("GET ").into(),
            endpoint: endpoint.into(),
            outcome: kind,
            differences: fields.iter().map(difference).collect(),
            recorded_status: Some(200),
            candidate_status: Some(200),
            recorded_latency_us: Some(1000),
            candidate_latency_us: Some(1000),
            error: None,
            explained: Vec::new(),
            mapped_ids: Vec::new(),
            reason: None,
            equivalences: Default::default(),
            noise_barred: false,
        }
    }

    #[test]
    fn evicted_endpoints_fold_into_other_which_is_never_ready_and_keeps_their_failures() {
        let mut report = Report::bounded(8, 16);
        for _ in 0..20 {
            report.add(&outcome("GET /hot", OutcomeKind::Match, &[]));
        }
        report.add(&outcome("GET /broken", OutcomeKind::Diff, &["/price"]));
        for i in 0..30 {
            report.add(&outcome(&format!("GET /r{i}"), OutcomeKind::Match, &[]));
        }
        assert!(report.endpoints.len() <= 8, "{}", report.endpoints.len());
        let json = report.to_json(&super::super::Criteria::of_config(&Default::default()).options());
        let listed = json.endpoints.iter().filter(|e| e.endpoint != OTHER).count() as u64;
        assert_eq!(json.evicted["report_endpoints"], 32 - listed, "every endpoint not listed was evicted, counted");
        let other = json.endpoints.iter().find(|e| e.endpoint == OTHER).expect("an (other) bucket");
        assert_eq!(json.totals.counts.count, 51, "nothing lost");
        assert_eq!(json.totals.counts.diff, 1);
        assert!(json.endpoints.iter().any(|e| e.endpoint == "GET /hot"), "the most seen stays");
        assert_eq!(other.counts.diff, 1, "the evicted failure is kept in (other)");
        assert!(!other.ready, "{}", other.why);
        // The broken endpoint comes back with matches only: not ready.
        for _ in 0..40 {
            report.add(&outcome("GET /broken", OutcomeKind::Match, &[]));
        }
        let json = report.to_json(&super::super::Criteria::of_config(&Default::default()).options());
        let broken = json.endpoints.iter().find(|e| e.endpoint == "GET /broken").unwrap();
        assert!(broken.evidence_evicted && !broken.ready, "{}", broken.why);
    }

    #[test]
    fn evicted_names_kept_across_a_restart_still_mark_an_endpoint_that_comes_back() {
        let mut before = Report::bounded(4, 16);
        before.add(&outcome("GET /broken", OutcomeKind::Diff, &["/price"]));
        for i in 0..10 {
            for _ in 0..3 {
                before.add(&outcome(&format!("GET /r{i}"), OutcomeKind::Match, &[]));
            }
        }
        let (names, forgot) = before.evicted_names();
        assert!(names.contains(&"GET /broken".to_string()), "{names:?}");
        let mut after = Report::bounded(4, 16);
        after.remember_evicted_names(&names, forgot);
        for _ in 0..40 {
            after.add(&outcome("GET /broken", OutcomeKind::Match, &[]));
        }
        let json = after.to_json(&super::super::Criteria::of_config(&Default::default()).options());
        let broken = json.endpoints.iter().find(|e| e.endpoint == "GET /broken").unwrap();
        assert!(broken.evidence_evicted && !broken.ready, "{}", broken.why);
    }

    #[test]
    fn differing_fields_are_bounded_per_endpoint_and_evictions_counted() {
        let mut report = Report::bounded(8, 16);
        for _ in 0..5 {
            report.add(&outcome("GET /a", OutcomeKind::Diff, &["/price"]));
        }
        let random: Vec<String> = (0..100).map(|i| format!("/k{i}")).collect();
        for path in &random {
            report.add(&outcome("GET /a", OutcomeKind::Diff, &[path]));
        }
        let stats = &report.endpoints["GET /a"];
        assert!(stats.fields.len() <= 16, "{}", stats.fields.len());
        assert_eq!(stats.fields.get("/price"), Some(&5), "the most seen field stays");
        assert_eq!(report.evicted()["report_fields"], 101 - stats.fields.len() as u64);
    }

    #[test]
    fn an_endpoint_evicted_in_one_lane_or_under_an_older_name_is_never_ready_when_merged_or_renamed() {
        let options = super::super::Criteria::of_config(&Default::default()).options();
        let fill = |report: &mut Report| {
            for i in 0..20 {
                report.add(&outcome(&format!("GET /r{i}"), OutcomeKind::Match, &[]));
            }
        };
        // Lane one sees /x fail and evicts it; lane two sees /x match.
        let (mut one, mut two) = (Report::bounded(8, 16), Report::bounded(8, 16));
        one.add(&outcome("GET /x", OutcomeKind::Diff, &["/price"]));
        fill(&mut one);
        for _ in 0..40 {
            two.add(&outcome("GET /x", OutcomeKind::Match, &[]));
        }
        assert!(!one.endpoints.contains_key("GET /x"), "evicted in lane one");
        one.merge(two);
        let json = one.to_json(&options);
        let x = json.endpoints.iter().find(|e| e.endpoint == "GET /x").unwrap();
        assert!(x.evidence_evicted && !x.ready, "{}", x.why);
        // /u/1 fails and is evicted; names then become /u/{id}, which
        // has only matches: its evidence is partial.
        let mut report = Report::bounded(8, 16);
        report.add(&outcome("GET /u/1", OutcomeKind::Diff, &["/price"]));
        fill(&mut report);
        for _ in 0..40 {
            report.add(&outcome("GET /u/{id}", OutcomeKind::Match, &[]));
        }
        report.rename(|name| if name.starts_with("GET /u/") { "GET /u/{id}".to_string() } else { name.to_string() });
        let json = report.to_json(&options);
        let u = json.endpoints.iter().find(|e| e.endpoint == "GET /u/{id}").unwrap();
        assert!(u.evidence_evicted && !u.ready, "{}", u.why);
    }
}
