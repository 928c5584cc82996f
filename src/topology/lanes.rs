//! Replay of saved captures on lanes. In: the pipeline's ordered batches of
//! exchanges; out: outcome lines to the sink and one report per lane,
//! merged by the caller.
//!
//! A lane is one thread with its own single-threaded tokio runtime, its own
//! share of the concurrency and its own connections to the candidate. An
//! exchange stays on the lane it was given to from request to outcome, so
//! nothing in a lane crosses threads: no work stealing, no wake-ups of
//! another core per exchange, the candidate's answer compared where it was
//! read. Profiles of the multi-threaded runtime showed a third of replay's
//! CPU going to that traffic between threads; two lanes on two cores
//! replay ~15-20 % more per second than it did.
//!
//! The feeder (the caller's thread) deals each batch out to the lanes in
//! turns. What needs one order across lanes happens in the feeder:
//! pacing and rate limits (exchanges are then handed over one at a time),
//! and writes, which go alone: after every earlier exchange has finished,
//! and before any later one starts (see [`super::dispatch::run`] for why).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

use super::OutcomeSink;
use crate::exchange::Exchange;
use crate::replay::load::{AS_RECORDED_MAX, RecordedLoad, Sample};
use crate::replay::{ConnectionPacer, Current, Holdback, Outcome, Pacer, RateLimiter, Schedule};
use crate::report::Report;

/// Outcome lines are written to the shared sink in chunks of about this:
/// few enough locks and writes, and lanes' lines interleave in runs of
/// a few dozen (lines come in completion order anyway).
const FLUSH_BYTES: usize = 16 << 10;

/// Lanes: as asked, else one per two cores (the other core of each pair is
/// left to reading the capture and to a candidate on the same host; on
/// this project's 2-core machine one lane replayed as fast as two with 10 %
/// less CPU), at most 4 (beyond that the candidate, not replay, is the
/// limit). Never more than requests in flight.
pub fn lane_count(asked: usize, concurrency: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let lanes = if asked > 0 { asked } else { (cores / 2).clamp(1, 4) };
    lanes.min(concurrency.max(1))
}

/// An exchange handed to a lane, with what the feeder knew of its load.
struct Job {
    exchange: Exchange,
    /// Production's requests in flight when it started.
    recorded_in_flight: u32,
    /// Sent later than `[verdict] late_start_ms` after it was due.
    late: bool,
}

/// What the lanes produced.
pub struct Replayed {
    pub report: Report,
    pub outcomes: u64,
    pub write_result: std::io::Result<()>,
}

/// Replays every exchange from `exchanges` on `lanes` lanes, writing
/// outcome lines to `sink`. Returns when all are done (or a lane died).
pub fn replay_on_lanes(
    exchanges: Receiver<Vec<Exchange>>,
    current: Arc<Current>,
    schedule: &Schedule,
    sink: OutcomeSink,
) -> std::io::Result<Replayed> {
    // 0: no more in flight than production had at each point (the feeder
    // holds that); the lanes only bound it.
    let as_recorded = schedule.concurrency == 0;
    let concurrency = if as_recorded { AS_RECORDED_MAX } else { schedule.concurrency };
    let count = lane_count(schedule.lanes, concurrency);
    let shared = Arc::new(Shared { sink: Mutex::new((sink, Ok(()))), outstanding: Outstanding::default() });
    let mut lanes = Vec::with_capacity(count);
    for index in 0..count {
        let share = concurrency / count + usize::from(index < concurrency % count);
        lanes.push(Lane::start(index, share, current.clone(), shared.clone())?);
    }
    feed(&exchanges, &lanes, &current, schedule, &shared.outstanding);
    drop(exchanges);
    let mut report = Report::of_output(&current.get().config().output);
    let mut outcomes = 0;
    let mut lost = 0;
    for lane in lanes {
        drop(lane.tx);
        match lane.handle.join() {
            Ok(done) => {
                report.merge(done.report);
                outcomes += done.outcomes;
            }
            Err(_) => lost += 1,
        }
    }
    if lost > 0 {
        // The panic itself was printed by the default hook.
        return Err(std::io::Error::other(format!("{lost} replay lane(s) stopped unexpectedly; outcomes are missing")));
    }
    let (mut sink, write_result) = std::mem::replace(
        &mut *shared.sink.lock().unwrap_or_else(|e| e.into_inner()),
        (Box::new(std::io::sink()), Ok(())),
    );
    let write_result = write_result.and_then(|_| sink.flush());
    Ok(Replayed { report, outcomes, write_result })
}

/// Deals batches out to the lanes; one exchange at a time when pacing,
/// rate-limiting, following the recorded load (no `--concurrency`) or
/// around a write.
fn feed(exchanges: &Receiver<Vec<Exchange>>, lanes: &[Lane], current: &Current, schedule: &Schedule, o: &Outstanding) {
    let mut pacer = Pacer::new(schedule.pace);
    let mut limiter = RateLimiter::new(schedule.rate);
    let mut recorded = RecordedLoad::ordered();
    let mut connections = ConnectionPacer::default();
    let as_recorded = schedule.concurrency == 0;
    let one_at_a_time = pacer.is_paced() || limiter.is_limited() || as_recorded;
    let mut next = 0usize;
    let send = |lane: usize, batch: Vec<Job>| -> bool {
        o.add(batch.len());
        lanes[lane].tx.blocking_send(batch).is_ok()
    };
    for batch in exchanges.iter() {
        let replayer = current.get();
        for exchange in &batch {
            replayer.note_in_capture_order(exchange);
        }
        let late_after = std::time::Duration::from_millis(replayer.config().verdict.late_start_ms);
        // Every exchange but our own replays counts in production's load,
        // replayed or not.
        let mut job_of = |exchange: Exchange| {
            let recorded_in_flight =
                if replayer.is_own_replay(&exchange) { 0 } else { recorded.in_flight_at(&exchange) };
            Job { exchange, recorded_in_flight, late: false }
        };
        if !one_at_a_time && !batch.iter().any(|e| replayer.is_replayed_write(e)) {
            let jobs = batch.into_iter().map(&mut job_of).collect();
            for (lane, part) in deal(jobs, lanes.len(), &mut next) {
                if !send(lane, part) {
                    return;
                }
            }
            continue;
        }
        for exchange in batch {
            let replayed = replayer.will_replay(&exchange);
            let write = replayed && replayer.is_write(&exchange);
            let mut job = job_of(exchange);
            // Time spent waiting for the candidate (answers to earlier
            // requests) moves the pace along: it is not the replayer's lag,
            // and catching up would send a burst production never sent.
            if write {
                pacer.shift(o.wait_until_idle());
            }
            if replayed {
                let ts = job.exchange.request.ts;
                wait(pacer.delay_for(ts));
                wait(limiter.delay());
                if as_recorded {
                    pacer.shift(o.wait_until_below((job.recorded_in_flight as usize).clamp(1, AS_RECORDED_MAX)));
                    wait(connections.delay_for(job.exchange.client, ts));
                }
                job.late = pacer.lateness(ts) > late_after;
            }
            let lane = if write {
                0
            } else {
                let lane = next;
                next = (next + 1) % lanes.len();
                lane
            };
            if !send(lane, vec![job]) {
                return;
            }
            if write {
                pacer.shift(o.wait_until_idle());
            }
        }
    }
}

fn wait(delay: Option<std::time::Duration>) {
    if let Some(delay) = delay {
        std::thread::sleep(delay);
    }
}

/// Splits a batch into one part per lane, in turns (so each lane's part
/// keeps capture order and the lanes progress through the capture
/// together), starting with lane `next`.
fn deal<T>(batch: Vec<T>, lanes: usize, next: &mut usize) -> Vec<(usize, Vec<T>)> {
    let mut parts: Vec<Vec<T>> = (0..lanes).map(|_| Vec::with_capacity(batch.len() / lanes + 1)).collect();
    for exchange in batch {
        parts[*next].push(exchange);
        *next = (*next + 1) % lanes;
    }
    parts.into_iter().enumerate().filter(|(_, p)| !p.is_empty()).collect()
}

struct Shared {
    sink: Mutex<(OutcomeSink, std::io::Result<()>)>,
    outstanding: Outstanding,
}

/// Exchanges handed to lanes and not finished: a write waits for none;
/// following the recorded load, the next exchange waits for fewer than
/// production had in flight.
#[derive(Default)]
struct Outstanding {
    count: AtomicUsize,
    /// The feeder waits for the count to fall below this (0: nobody waits).
    below: AtomicUsize,
    /// A lane stopped (it panicked): nobody waits for its exchanges.
    lane_gone: AtomicBool,
    lock: Mutex<()>,
    idle: Condvar,
}

impl Outstanding {
    fn add(&self, n: usize) {
        self.count.fetch_add(n, Ordering::AcqRel);
    }

    fn done(&self) {
        // SeqCst with the waiter's store of `below`: either it sees this
        // decrement, or this sees what it waits for.
        let left = self.count.fetch_sub(1, Ordering::SeqCst) - 1;
        if left < self.below.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    fn wake(&self) {
        // Under the lock: a waiter between its check and its wait cannot
        // miss this.
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.idle.notify_all();
    }

    fn wait_until_idle(&self) -> std::time::Duration {
        self.wait_until_below(1)
    }

    /// Until fewer than `n` are outstanding (or a lane is gone); how long
    /// that took.
    fn wait_until_below(&self, n: usize) -> std::time::Duration {
        if self.count.load(Ordering::SeqCst) < n {
            return std::time::Duration::ZERO;
        }
        let since = std::time::Instant::now();
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.below.store(n, Ordering::SeqCst);
        while self.count.load(Ordering::SeqCst) >= n && !self.lane_gone.load(Ordering::Acquire) {
            guard = self.idle.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        self.below.store(0, Ordering::SeqCst);
        since.elapsed()
    }
}

struct Lane {
    tx: mpsc::Sender<Vec<Job>>,
    handle: JoinHandle<LaneDone>,
}

struct LaneDone {
    report: Report,
    outcomes: u64,
}

/// Marks the lane gone when its thread ends, however it ends.
struct GoneOnDrop(Arc<Shared>);

impl Drop for GoneOnDrop {
    fn drop(&mut self) {
        self.0.outstanding.lane_gone.store(true, Ordering::Release);
        self.0.outstanding.wake();
    }
}

impl Lane {
    fn start(index: usize, concurrency: usize, current: Arc<Current>, shared: Arc<Shared>) -> std::io::Result<Lane> {
        // Two batches waiting: enough to never run dry between hand-offs,
        // few enough that the pipeline stays only a little ahead.
        let (tx, rx) = mpsc::channel::<Vec<Job>>(2);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = std::thread::Builder::new().name(format!("replay-{index}")).spawn(move || {
            let _gone = GoneOnDrop(shared.clone());
            runtime.block_on(run_lane(rx, concurrency, current, shared))
        })?;
        Ok(Lane { tx, handle })
    }
}

/// One lane: at most `concurrency` exchanges in flight, outcomes folded
/// into the lane's report and written in chunks.
async fn run_lane(
    mut rx: mpsc::Receiver<Vec<Job>>,
    concurrency: usize,
    current: Arc<Current>,
    shared: Arc<Shared>,
) -> LaneDone {
    let mut in_flight = FuturesUnordered::new();
    let mut pending = VecDeque::new();
    let mut open = true;
    let report = Report::of_output(&current.get().config().output);
    let mut out = LaneOutput { report, lines: Vec::with_capacity(2 * FLUSH_BYTES), outcomes: 0 };
    // Diffs of endpoints whose noise is not known yet wait here, and are
    // judged again once it is (or when the capture ends).
    let mut hold = Holdback::default();
    loop {
        while in_flight.len() < concurrency {
            let Some(job) = pending.pop_front() else { break };
            in_flight.push(replay_one(current.clone(), job));
        }
        if in_flight.is_empty() && pending.is_empty() && !open {
            break;
        }
        tokio::select! {
            biased;
            Some(outcome) = in_flight.next(), if !in_flight.is_empty() => {
                if let Some((outcome, sample)) = outcome {
                    if let Some(sample) = sample {
                        out.report.load.add(&outcome.endpoint, &sample);
                    }
                    for ready in hold.offer(outcome, &current.get()) {
                        out.record(&ready, &shared);
                    }
                }
                shared.outstanding.done();
            }
            batch = rx.recv(), if open && pending.is_empty() => match batch {
                Some(batch) => pending.extend(batch),
                None => open = false,
            },
            else => break,
        }
    }
    for judged in hold.drain(&current.get()) {
        out.record(&judged, &shared);
    }
    out.flush(&shared);
    LaneDone { report: out.report, outcomes: out.outcomes }
}

async fn replay_one(current: Arc<Current>, job: Job) -> Option<(Outcome, Option<Sample>)> {
    let replayer = current.get();
    if current.is_loop(&replayer, &job.exchange) {
        return None;
    }
    let (outcome, sent) = replayer.process_measured(&job.exchange).await;
    let sample = sent.map(|sent| Sample {
        recorded_in_flight: job.recorded_in_flight,
        replay_in_flight: sent.in_flight,
        recorded_ts: job.exchange.request.ts,
        sent: sent.at,
        done: sent.done,
        late: job.late,
    });
    Some((outcome, sample))
}

struct LaneOutput {
    report: Report,
    lines: Vec<u8>,
    outcomes: u64,
}

impl LaneOutput {
    fn record(&mut self, outcome: &Outcome, shared: &Shared) {
        self.report.add(outcome);
        self.outcomes += 1;
        if serde_json::to_writer(&mut self.lines, &outcome.redacted()).is_ok() {
            self.lines.push(b'\n');
        }
        if self.lines.len() >= FLUSH_BYTES {
            self.flush(shared);
        }
    }

    /// Whole lines only, so lanes' lines never interleave mid-line.
    fn flush(&mut self, shared: &Shared) {
        if self.lines.is_empty() {
            return;
        }
        let mut sink = shared.sink.lock().unwrap_or_else(|e| e.into_inner());
        let (writer, result) = &mut *sink;
        if result.is_ok() {
            *result = writer.write_all(&self.lines);
        }
        self.lines.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dealing_keeps_order_within_each_lane_and_takes_turns_across_batches() {
        let exchange = |ts: i64| Exchange {
            client: "127.0.0.1:1".parse().unwrap(),
            server: "127.0.0.1:2".parse().unwrap(),
            request: crate::exchange::Request {
                ts,
                method: "GET".into(),
                uri: "/x".into(),
                version: "HTTP/1.1".into(),
                payload: Default::default(),
            },
            response: None,
            gap: false,
            http2: None,
        };
        let mut next = 0;
        let parts = deal((0..5).map(exchange).collect(), 2, &mut next);
        let ts = |p: &Vec<Exchange>| p.iter().map(|e| e.request.ts).collect::<Vec<_>>();
        assert_eq!(
            parts.iter().map(|(l, p)| (*l, ts(p))).collect::<Vec<_>>(),
            vec![(0, vec![0, 2, 4]), (1, vec![1, 3])]
        );
        let parts = deal((5..6).map(exchange).collect(), 2, &mut next);
        assert_eq!(parts.iter().map(|(l, p)| (*l, ts(p))).collect::<Vec<_>>(), vec![(1, vec![5])]);
    }

    #[test]
    fn a_waiter_for_idle_is_woken_by_the_last_done_or_a_lost_lane() {
        let o = Arc::new(Outstanding::default());
        o.add(2);
        let waiter = {
            let o = o.clone();
            std::thread::spawn(move || o.wait_until_idle())
        };
        o.done();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!waiter.is_finished(), "one exchange is still out");
        o.done();
        waiter.join().unwrap();
        o.add(1);
        o.lane_gone.store(true, Ordering::Release);
        o.wake();
        o.wait_until_idle();
    }
}
