//! Endpoint names while replay runs: the learned templates in use
//! ([`Names`], shared by every task), how the daemon learns them as
//! traffic flows. The hold that lets the daemon's outcomes go out under
//! final names is [`super::settling::Settling`].
//!
//! Saved captures are scanned before replay ([`super::endpoint::scan`]):
//! their names are final from the start. The daemon cannot scan ahead, so
//! - the dispatcher shows every request to the learner ([`Names::observe`])
//!   and learns again now and then, keeping positions once variable
//!   variable (names only get more general while it runs);
//! - the collector holds outcomes until the names have settled (after
//!   `[naming] settle_exchanges` requests or `settle_s` seconds; at most
//!   [`super::settling::MAX_HELD`] outcomes wait), and names every outcome again as it goes
//!   out, so lines, report and metrics carry the final names;
//! - when later learning makes a name more general, the report's
//!   endpoints are renamed and merged ([`Names::rename`]).
//!
//! Memory is bounded by the learner's limits and
//! [`super::settling::MAX_HELD`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::config::NamingConfig;
use super::endpoint::{Learned, Learner, Template, name_with, path_of};
use crate::exchange::Exchange;

/// Learning again at most this often once names have settled ...
const RELEARN_INTERVAL: Duration = Duration::from_secs(5);
/// ... and only after this many new requests.
const RELEARN_AFTER: u64 = 1000;
/// Provisional names while settling, after this many new requests.
const PROVISIONAL_EVERY: u64 = 250;

/// The learned templates in use, and (in the daemon) the learner.
#[derive(Default)]
pub struct Names {
    learned: RwLock<Arc<Learned>>,
    online: Mutex<Online>,
    settled: AtomicBool,
    /// Bumped at each change of the learned templates.
    generation: AtomicU64,
}

/// What the daemon has learned from so far.
#[derive(Default)]
struct Online {
    learner: Learner,
    seen: u64,
    since_learned: u64,
    started: Option<Instant>,
    learned_at: Option<Instant>,
}

impl Names {
    pub fn get(&self) -> Arc<Learned> {
        self.learned.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Installs learned templates (a scan's: final, settled).
    pub fn set(&self, learned: Learned) {
        self.install(learned, true);
    }

    fn install(&self, learned: Learned, settled: bool) {
        *self.learned.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(learned);
        self.generation.fetch_add(1, Ordering::Relaxed);
        if settled {
            self.settled.store(true, Ordering::Relaxed);
        }
    }

    pub fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Relaxed)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The endpoint of a request.
    pub fn name(&self, method: &str, uri: &str, templates: &[Template]) -> String {
        name_with(&self.get(), method, uri, templates)
    }

    /// An endpoint name under the current templates (a name is a path
    /// whose placeholders are values like any other).
    pub fn rename(&self, endpoint: &str, templates: &[Template]) -> String {
        if templates.iter().any(|t| t.text == endpoint) {
            return endpoint.to_string();
        }
        match endpoint.split_once(' ') {
            Some((method, path)) => self.name(method, path, templates),
            None => endpoint.to_string(),
        }
    }

    /// The daemon saw a request: learn from it, and learn again when the
    /// names settle or, after that, now and then.
    pub fn observe(&self, exchange: &Exchange, templates: &[Template], config: &NamingConfig) {
        if !config.learn {
            self.settled.store(true, Ordering::Relaxed);
            return;
        }
        let (method, path) = (&exchange.request.method, path_of(&exchange.request.uri));
        let mut online = self.online.lock().unwrap_or_else(|e| e.into_inner());
        // Requests a configured template names count towards settling too:
        // with every request configured, names settle all the same (and
        // the outcomes held meanwhile go out).
        online.seen += 1;
        online.started.get_or_insert_with(Instant::now);
        if templates.iter().any(|t| t.matches(method, path)) {
            if self.settle_due(&online, config) {
                self.learn(&mut online, true);
            }
            return;
        }
        online.learner.observe(method, path);
        online.since_learned += 1;
        let due = online.since_learned >= RELEARN_AFTER
            && online.learned_at.is_none_or(|at| at.elapsed() >= RELEARN_INTERVAL);
        if self.settle_due(&online, config) || (self.is_settled() && due) {
            self.learn(&mut online, true);
        } else if !self.is_settled() && online.since_learned >= PROVISIONAL_EVERY {
            // Provisional names while settling, so that noise and the
            // warm-up hold already group requests roughly as they will be.
            self.learn(&mut online, false);
        }
    }

    /// Settles the names if it is time (the collector's clock: traffic
    /// may have stopped before `settle_exchanges`).
    pub fn settle_if_due(&self, config: &NamingConfig) {
        let mut online = self.online.lock().unwrap_or_else(|e| e.into_inner());
        if !config.learn {
            self.settled.store(true, Ordering::Relaxed);
        } else if self.settle_due(&online, config) {
            self.learn(&mut online, true);
        }
    }

    /// Learns from everything seen and settles now (shutdown).
    pub fn settle_now(&self) {
        let mut online = self.online.lock().unwrap_or_else(|e| e.into_inner());
        if online.seen > 0 {
            self.learn(&mut online, true);
        }
        self.settled.store(true, Ordering::Relaxed);
    }

    fn settle_due(&self, online: &Online, config: &NamingConfig) -> bool {
        !self.is_settled()
            && (online.seen >= config.settle_exchanges
                || online.started.is_some_and(|s| s.elapsed() >= Duration::from_secs(config.settle_s)))
    }

    fn learn(&self, online: &mut Online, settle: bool) {
        // Provisional names are not kept: only settled ones are given out.
        let learned = if self.is_settled() { online.learner.learn_after(&self.get()) } else { online.learner.learn() };
        self.install(learned, settle);
        online.since_learned = 0;
        online.learned_at = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str) -> Exchange {
        crate::exchange::test_get(uri, &[], b"")
    }

    /// Found by the load test: with every request named by a configured
    /// template, nothing was ever learned, names never settled, and the
    /// daemon held every outcome for good.
    #[test]
    fn names_settle_when_every_request_is_configured() {
        let names = Names::default();
        let templates = [Template::parse("GET /a/{id}").unwrap()];
        let config = NamingConfig { settle_exchanges: 3, ..NamingConfig::default() };
        for i in 0..2 {
            names.observe(&get(&format!("/a/{i}")), &templates, &config);
        }
        assert!(!names.is_settled(), "two of three");
        names.observe(&get("/a/9"), &templates, &config);
        assert!(names.is_settled(), "settled by count though nothing was learned");
        assert_eq!(names.name("GET", "/a/7", &templates), "GET /a/{id}");
        let by_time = Names::default();
        by_time.observe(&get("/a/1"), &templates, &NamingConfig { settle_s: 0, ..NamingConfig::default() });
        by_time.settle_if_due(&NamingConfig { settle_s: 0, ..NamingConfig::default() });
        assert!(by_time.is_settled(), "settled by time");
    }
}
