//! How replay is fed and paced: the schedule (concurrency, rate, pace,
//! lanes) and the two gates both schedulers apply before a request starts.

use std::time::{Duration, Instant};

use crate::exchange::Nanos;

/// How replay is fed and paced.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Requests in flight at most; 0: no more than production had in
    /// flight at each point of the recording (see [`super::load`]).
    pub concurrency: usize,
    /// Requests per second at most (0: unlimited).
    pub rate: f64,
    /// 0: as fast as possible; else the captured pace times this factor.
    pub pace: f64,
    /// Replay lanes for saved captures (0: by the number of cores).
    pub lanes: usize,
}

/// At most `rate` starts per second, evenly spaced.
pub(crate) struct RateLimiter {
    interval: Option<Duration>,
    next: Instant,
}

impl RateLimiter {
    pub(crate) fn new(rate: f64) -> Self {
        let interval = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
        RateLimiter { interval, next: Instant::now() }
    }

    pub(crate) fn is_limited(&self) -> bool {
        self.interval.is_some()
    }

    /// How long the next start must wait (it is then counted as started).
    pub(crate) fn delay(&mut self) -> Option<Duration> {
        let interval = self.interval?;
        let now = Instant::now();
        let wait = (self.next > now).then(|| self.next - now);
        self.next = self.next.max(now) + interval;
        wait
    }

    pub(crate) async fn wait(&mut self) {
        if let Some(delay) = self.delay() {
            tokio::time::sleep(delay).await;
        }
    }
}

/// Replays at the captured pace (scaled): the n-th request starts
/// (ts_n - ts_0) / factor after the first.
pub(crate) struct Pacer {
    factor: f64,
    start: Option<(Nanos, Instant)>,
}

impl Pacer {
    pub(crate) fn new(factor: f64) -> Self {
        Pacer { factor, start: None }
    }

    pub(crate) fn is_paced(&self) -> bool {
        self.factor > 0.0
    }

    /// How long a request captured at `ts` must wait to keep the pace.
    pub(crate) fn delay_for(&mut self, ts: Nanos) -> Option<Duration> {
        if self.factor <= 0.0 {
            return None;
        }
        let (first_ts, first_at) = *self.start.get_or_insert((ts, Instant::now()));
        let offset = (ts - first_ts).max(0) as f64 / 1e9 / self.factor;
        let due = first_at + Duration::from_secs_f64(offset);
        let now = Instant::now();
        (due > now).then(|| due - now)
    }

    /// Moves the pace on by `waited` (time spent waiting for the
    /// candidate): later requests are due that much later.
    pub(crate) fn shift(&mut self, waited: Duration) {
        if let Some((_, first_at)) = &mut self.start {
            *first_at += waited;
        }
    }

    /// How far behind the captured pace a request captured at `ts` is
    /// now (zero when not paced or on time).
    pub(crate) fn lateness(&self, ts: Nanos) -> Duration {
        let Some((first_ts, first_at)) = self.start.filter(|_| self.factor > 0.0) else { return Duration::ZERO };
        let due = first_at + Duration::from_secs_f64((ts - first_ts).max(0) as f64 / 1e9 / self.factor);
        Instant::now().saturating_duration_since(due)
    }

    pub(crate) async fn wait_for(&mut self, ts: Nanos) {
        if let Some(delay) = self.delay_for(ts) {
            tokio::time::sleep(delay).await;
        }
    }
}

/// Opens connections no faster than production did: a request production
/// sent on a new connection waits, after the previous such request, at
/// least as long as production waited between the two. Gaps are not
/// saved up, so a delay never turns into a burst. (Requests production
/// sent on connections it kept alive go as the in-flight limit allows.)
#[derive(Default)]
pub(crate) struct ConnectionPacer {
    /// Client connections seen in the capture (cleared when large: a
    /// connection seen again then counts as new once, a short wait).
    seen: std::collections::HashSet<std::net::SocketAddr>,
    /// The previous new connection: its capture time, when replay sent it.
    previous: Option<(Nanos, Instant)>,
}

const MAX_SEEN: usize = 1 << 16;

impl ConnectionPacer {
    /// How long the request from `client` captured at `ts` must wait.
    pub(crate) fn delay_for(&mut self, client: std::net::SocketAddr, ts: Nanos) -> Option<Duration> {
        if self.seen.len() >= MAX_SEEN {
            self.seen.clear();
        }
        if !self.seen.insert(client) {
            return None;
        }
        let now = Instant::now();
        let due = self.previous.map(|(prev_ts, prev_at)| prev_at + Duration::from_nanos((ts - prev_ts).max(0) as u64));
        let start = due.map_or(now, |due| due.max(now));
        self.previous = Some((ts, start));
        (start > now).then(|| start - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_connections_wait_at_least_the_recorded_gap_and_kept_alive_ones_do_not() {
        let mut c = ConnectionPacer::default();
        let (a, b, d) =
            ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap(), "127.0.0.1:3".parse().unwrap());
        let ms = 1_000_000;
        assert_eq!(c.delay_for(a, 0), None, "the first goes at once");
        assert_eq!(c.delay_for(a, 5 * ms), None, "the same connection again");
        let wait = c.delay_for(b, 50 * ms).expect("a new connection 50 ms after the first");
        assert!(wait > Duration::from_millis(40) && wait <= Duration::from_millis(50), "{wait:?}");
        std::thread::sleep(Duration::from_millis(120));
        // Late already: it goes now, and the gap is not saved up for the next.
        assert_eq!(c.delay_for(d, 60 * ms), None);
        let wait = c.delay_for("127.0.0.1:4".parse().unwrap(), 80 * ms).expect("20 ms after the one just sent");
        assert!(wait > Duration::from_millis(10), "{wait:?}");
    }
}
