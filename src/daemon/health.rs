//! What `/healthz` says and whether the systemd watchdog is still fed. In:
//! notes from the outcome writer thread (lines written or not) and from
//! the daemon's task set (the replay dispatcher ended before shutdown);
//! out: [`Health::problem`] (a 503 with the reason) and
//! [`Health::watchdog_ok`]. A dead dispatcher stops the watchdog so
//! systemd restarts the daemon; a disk that cannot take the outcome lines
//! does not (a restart would not help), it is reported and counted.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub(super) struct Health {
    /// Outcome lines that could not be written (disk full, EBADF, ...).
    lines_lost: AtomicU64,
    /// Why the last write failed; cleared by the next one that works.
    write_failing: Mutex<Option<String>>,
    /// Why the replay dispatcher is gone, when it ended before shutdown.
    dispatcher_gone: Mutex<Option<String>>,
}

impl Health {
    /// `lines` outcome lines were lost to `error`. True the first time
    /// (since writes last worked): worth a log line, the rest are counted.
    pub(super) fn lines_not_written(&self, lines: u64, error: &std::io::Error) -> bool {
        self.lines_lost.fetch_add(lines, Ordering::Relaxed);
        lock(&self.write_failing).replace(error.to_string()).is_none()
    }

    /// A write worked: the outcome file is healthy again (the count stays).
    pub(super) fn lines_written(&self) {
        lock(&self.write_failing).take();
    }

    pub(super) fn lines_lost(&self) -> u64 {
        self.lines_lost.load(Ordering::Relaxed)
    }

    pub(super) fn dispatcher_ended(&self, why: String) {
        lock(&self.dispatcher_gone).get_or_insert(why);
    }

    /// Why the dispatcher is gone, if it is.
    pub(super) fn dispatcher_problem(&self) -> Option<String> {
        lock(&self.dispatcher_gone).clone()
    }

    /// The watchdog is fed only while replay works.
    pub(super) fn watchdog_ok(&self) -> bool {
        self.dispatcher_problem().is_none()
    }

    /// Why the daemon is unhealthy, if it is (`/healthz` says it).
    pub(super) fn problem(&self) -> Option<String> {
        if let Some(why) = self.dispatcher_problem() {
            return Some(why);
        }
        lock(&self.write_failing)
            .as_ref()
            .map(|error| format!("outcome lines cannot be written: {error} ({} lines lost so far)", self.lines_lost()))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_failures_are_counted_and_heal_dispatcher_death_does_not() {
        let h = Health::default();
        assert!(h.problem().is_none() && h.watchdog_ok());
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(h.lines_not_written(3, &full), "the first failure is logged");
        assert!(!h.lines_not_written(2, &full), "the next ones only counted");
        assert_eq!(h.lines_lost(), 5);
        let problem = h.problem().unwrap();
        assert!(problem.contains("cannot be written") && problem.contains("5 lines lost"), "{problem}");
        assert!(h.watchdog_ok(), "a full disk is not fixed by a restart");
        h.lines_written();
        assert!(h.problem().is_none() && h.lines_lost() == 5);
        h.dispatcher_ended("the replay dispatcher ended".into());
        h.lines_written();
        assert!(!h.watchdog_ok() && h.problem().unwrap().contains("dispatcher"));
    }
}
