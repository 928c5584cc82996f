//! Diffs held back while their endpoint's noise is not known yet, then
//! judged again: outcomes in, as replay finishes them; out, the same
//! outcomes, some later and with differences set aside as noise.

use std::collections::HashMap;

use super::outcome::{Outcome, OutcomeKind};
use super::replayer::Replayer;

/// Diffs held back while their endpoint's noise is not known yet (see
/// [`crate::replay::config::NoiseConfig::warmup_samples`]), then judged again. Bounded: at most
/// [`HELD_PER_ENDPOINT`] per endpoint and [`HELD_TOTAL`] in all; beyond,
/// a diff goes out as judged.
#[derive(Default)]
pub struct Holdback {
    held: HashMap<String, Vec<(std::time::Instant, Outcome)>>,
    total: usize,
}

pub const HELD_PER_ENDPOINT: usize = 256;
pub const HELD_TOTAL: usize = 8192;

impl Holdback {
    /// Takes a finished outcome; returns those that may go out now: this
    /// one unless it is held, and the endpoint's held ones once it knows
    /// enough, judged again.
    pub fn offer(&mut self, outcome: Outcome, replayer: &Replayer) -> Vec<Outcome> {
        let config = &replayer.config().noise;
        let warm = |endpoint: &str| replayer.noise.samples(endpoint) >= config.warmup_samples;
        if config.warmup_samples == 0 {
            return vec![outcome];
        }
        let mut out = Vec::new();
        if self.held.contains_key(&outcome.endpoint) && warm(&outcome.endpoint) {
            out.extend(self.release(&outcome.endpoint.clone(), replayer));
        }
        let room =
            self.total < HELD_TOTAL && self.held.get(&outcome.endpoint).is_none_or(|h| h.len() < HELD_PER_ENDPOINT);
        if outcome.outcome == OutcomeKind::Diff && room && !warm(&outcome.endpoint) {
            self.total += 1;
            self.held.entry(outcome.endpoint.clone()).or_default().push((std::time::Instant::now(), outcome));
        } else {
            out.push(outcome);
        }
        out
    }

    /// Held diffs older than `warmup_max_s`, judged with what is known.
    pub fn expired(&mut self, replayer: &Replayer) -> Vec<Outcome> {
        let max_age = std::time::Duration::from_secs(replayer.config().noise.warmup_max_s);
        let old: Vec<String> = self
            .held
            .iter()
            .filter(|(_, held)| held.first().is_some_and(|(since, _)| since.elapsed() >= max_age))
            .map(|(endpoint, _)| endpoint.clone())
            .collect();
        old.iter().flat_map(|endpoint| self.release(endpoint, replayer)).collect()
    }

    /// Everything held, judged with what is known (replay ended).
    pub fn drain(&mut self, replayer: &Replayer) -> Vec<Outcome> {
        let endpoints: Vec<String> = self.held.keys().cloned().collect();
        endpoints.iter().flat_map(|endpoint| self.release(endpoint, replayer)).collect()
    }

    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn release(&mut self, endpoint: &str, replayer: &Replayer) -> Vec<Outcome> {
        let held = self.held.remove(endpoint).unwrap_or_default();
        self.total -= held.len();
        held.into_iter()
            .map(|(_, mut outcome)| {
                replayer.judge_noise_again(&mut outcome);
                outcome
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{DiffKind, Difference};
    use crate::replay::config::Config;

    fn replayer(noise: &str) -> Replayer {
        Replayer::new(Config::parse(&format!("[noise]\n{noise}\n"), "c").unwrap(), "http://127.0.0.1:1").unwrap()
    }

    fn diff_at(endpoint: &str, paths: &[&str]) -> Outcome {
        let difference = |p: &&str| Difference {
            path: p.to_string(),
            kind: DiffKind::Changed,
            recorded: 1.into(),
            candidate: 2.into(),
        };
        Outcome {
            schema: Default::default(),
            ts: String::new(),
            method: "GET".into(),
            uri: "/x".into(),
            endpoint: endpoint.into(),
            outcome: OutcomeKind::Diff,
            differences: paths.iter().map(difference).collect(),
            recorded_status: Some(200),
            candidate_status: Some(200),
            recorded_latency_us: None,
            candidate_latency_us: None,
            error: None,
            explained: Vec::new(),
            mapped_ids: Vec::new(),
            reason: None,
            equivalences: Default::default(),
            noise_barred: false,
        }
    }

    /// Production disagreed with itself at `/ts`, `n` times.
    fn learn(r: &Replayer, endpoint: &str, n: usize) {
        let noisy = diff_at(endpoint, &["/ts"]).differences;
        for _ in 0..n {
            r.noise.learn(endpoint, &noisy, "repeats");
        }
    }

    #[test]
    fn a_diff_waits_for_its_endpoints_noise_and_is_judged_again() {
        let r = replayer("warmup_samples = 3");
        let mut hold = Holdback::default();
        assert!(hold.offer(diff_at("E", &["/ts"]), &r).is_empty(), "nothing known yet: held");
        assert!(hold.offer(diff_at("E", &["/ts", "/name"]), &r).is_empty());
        assert_eq!(hold.offer(diff_at("F", &["/ts"]), &r).len(), 0, "another endpoint, held apart");
        learn(&r, "E", 3);
        r.noise.count_candidate("E", &diff_at("E", &["/ts"]).differences);
        // The next outcome of E releases E's held ones, judged again; F waits.
        let out = hold.offer(diff_at("E", &["/name"]), &r);
        let kinds: Vec<_> = out.iter().map(|o| (o.outcome, o.differences.len(), o.explained.len())).collect();
        assert_eq!(kinds, [(OutcomeKind::Noise, 0, 1), (OutcomeKind::Diff, 1, 1), (OutcomeKind::Diff, 1, 0)]);
        assert_eq!(out[1].differences[0].path, "/name", "a real difference stays");
        assert_eq!(hold.len(), 1);
        let rest = hold.drain(&r);
        assert_eq!(
            (rest.len(), rest[0].outcome, hold.len()),
            (1, OutcomeKind::Diff, 0),
            "F never learned: still a diff"
        );
    }

    #[test]
    fn holding_is_bounded_off_when_zero_and_expires() {
        let r = replayer("warmup_samples = 5");
        let mut hold = Holdback::default();
        for _ in 0..super::HELD_PER_ENDPOINT {
            assert!(hold.offer(diff_at("E", &["/a"]), &r).is_empty());
        }
        assert_eq!(hold.offer(diff_at("E", &["/a"]), &r).len(), 1, "beyond the bound a diff goes out at once");
        let r0 = replayer("warmup_samples = 0");
        assert_eq!(Holdback::default().offer(diff_at("E", &["/a"]), &r0).len(), 1);
        let expiring = replayer("warmup_samples = 5\nwarmup_max_s = 0");
        let mut hold = Holdback::default();
        assert!(hold.offer(diff_at("E", &["/a"]), &expiring).is_empty());
        assert_eq!(hold.expired(&expiring).len(), 1);
        assert!(hold.is_empty());
    }
}
