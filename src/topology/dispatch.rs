//! The live scheduler: the daemon's exchanges in over a bounded queue (full:
//! dropped and counted before they get here), outcomes out over a channel,
//! at most `concurrency` replayed at once by long-lived worker tasks on the
//! daemon's multi-threaded runtime; without a configured concurrency, no
//! more at once than production had in flight (see [`crate::replay::load`]). Each
//! outcome goes out with its load sample. (Saved captures go through
//! [`super::lanes`] instead.) It sits next to the daemon, its only user.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::exchange::Exchange;
use crate::replay::load::{AS_RECORDED_MAX, RecordedLoad, Sample};
use crate::replay::{Current, Outcome, Pacer, RateLimiter, Replayer, Schedule, Sent};

/// An outcome, and the load it was replayed at (`None`: not sent).
pub type Replayed = (Outcome, Option<Sample>);

/// An exchange for a worker, with production's in flight at its start.
/// (Live, lateness is the pipeline's lag, counted where exchanges leave
/// it: see the daemon's feeder. Waiting here is waiting for the candidate.)
struct Job {
    exchange: Exchange,
    recorded_in_flight: u32,
}

impl Job {
    fn sample(&self, sent: Option<Sent>) -> Option<Sample> {
        sent.map(|sent| Sample {
            recorded_in_flight: self.recorded_in_flight,
            replay_in_flight: sent.in_flight,
            recorded_ts: self.exchange.request.ts,
            sent: sent.at,
            done: sent.done,
            late: false,
        })
    }

    async fn replay(&self, replayer: &Replayer) -> Replayed {
        let (outcome, sent) = replayer.process_measured(&self.exchange).await;
        (outcome, self.sample(sent))
    }
}

/// Replays every exchange from `input` with bounded concurrency, sending
/// each outcome to `output` (in completion order).
///
/// `concurrency` long-lived workers replay; this task dispatches each
/// exchange to an idle one (at most `concurrency` in flight, as many as
/// workers), so no task is spawned per exchange.
pub async fn run(
    current: Arc<Current>,
    mut input: mpsc::Receiver<Vec<Exchange>>,
    output: mpsc::Sender<Replayed>,
    schedule: Schedule,
) {
    let as_recorded = schedule.concurrency == 0;
    let concurrency = if as_recorded { AS_RECORDED_MAX } else { schedule.concurrency };
    let mut recorded = RecordedLoad::unordered();
    let (idle_tx, mut idle_rx) = mpsc::unbounded_channel::<usize>();
    let mut workers: Vec<Worker> = (0..concurrency).map(|id| Worker::spawn(id, &idle_tx, &output)).collect();
    // Workers with nothing to do (a stack: the most recently busy first).
    let mut idle: Vec<usize> = (0..concurrency).rev().collect();
    let mut limiter = RateLimiter::new(schedule.rate);
    let mut pacer = Pacer::new(schedule.pace);
    // Exchanges come in batches (one hand-off per batch, not per exchange).
    let mut pending = std::collections::VecDeque::new();
    loop {
        let Some(exchange) = pending.pop_front() else {
            match input.recv().await {
                Some(batch) => {
                    pending.extend(batch);
                    continue;
                }
                None => break,
            }
        };
        let replayer = current.get();
        if current.is_loop(&replayer, &exchange) {
            continue;
        }
        replayer.names.observe(&exchange, replayer.templates(), &replayer.config().naming);
        replayer.note_in_capture_order(&exchange);
        let recorded_in_flight = recorded.in_flight_at(&exchange);
        if replayer.skip_reason(&exchange).is_some() {
            let outcome = replayer.process(&exchange).await;
            if output.send((outcome, None)).await.is_err() {
                break;
            }
            continue;
        }
        pacer.wait_for(exchange.request.ts).await;
        limiter.wait().await;
        let job = Job { exchange, recorded_in_flight };
        if replayer.is_write(&job.exchange) {
            // A write is replayed alone, in capture order: after every
            // earlier request has been answered (they must not see it), and
            // before any later one is sent, because later requests may name
            // the ids it generates (POST, then GET of what it made) and are
            // rewritten with the candidate's ids only once its answer is
            // known. Sent concurrently, the GET went out with the recorded
            // id, and writes' ids were mapped in whatever order they landed.
            while idle.len() < concurrency {
                idle.push(idle_rx.recv().await.expect("the dispatcher holds a sender"));
            }
            if output.send(job.replay(&replayer).await).await.is_err() {
                break;
            }
            continue;
        }
        if as_recorded {
            // No more in flight than production had when this one started.
            let limit = (job.recorded_in_flight as usize).clamp(1, AS_RECORDED_MAX);
            while concurrency - idle.len() >= limit {
                idle.push(idle_rx.recv().await.expect("the dispatcher holds a sender"));
            }
        }
        let id = match idle.pop() {
            Some(id) => id,
            None => idle_rx.recv().await.expect("the dispatcher holds a sender"),
        };
        if let Err(mpsc::error::TrySendError::Closed(job) | mpsc::error::TrySendError::Full(job)) =
            workers[id].jobs.try_send((replayer, job))
        {
            // The worker is gone (it panicked): a new one takes its place.
            workers[id] = Worker::spawn(id, &idle_tx, &output);
            let _ = workers[id].jobs.try_send(job);
        }
    }
    // Wait for the workers to finish what they have.
    let handles: Vec<_> = workers.into_iter().map(|w| w.handle).collect();
    for handle in handles {
        let _ = handle.await;
    }
}

/// One replay worker: takes exchanges one at a time, says when it is idle.
struct Worker {
    jobs: mpsc::Sender<(Arc<Replayer>, Job)>,
    handle: tokio::task::JoinHandle<()>,
}

impl Worker {
    fn spawn(id: usize, idle: &mpsc::UnboundedSender<usize>, output: &mpsc::Sender<Replayed>) -> Worker {
        // Only idle workers are given an exchange: one slot is enough.
        let (jobs, rx) = mpsc::channel::<(Arc<Replayer>, Job)>(1);
        let output = output.clone();
        let mut state = WorkerState { id, busy: false, jobs: rx, idle: idle.clone() };
        let handle = tokio::spawn(async move {
            while let Some((replayer, job)) = state.jobs.recv().await {
                state.busy = true;
                let replayed = job.replay(&replayer).await;
                drop(replayer);
                drop(job);
                state.busy = false;
                let _ = state.idle.send(id);
                let _ = output.send(replayed).await;
            }
        });
        Worker { jobs, handle }
    }
}

/// A worker's end of things. If the worker dies while busy (a panic), it
/// stops taking exchanges and says it is idle, so that the dispatcher
/// never waits for it and replaces it.
struct WorkerState {
    id: usize,
    busy: bool,
    jobs: mpsc::Receiver<(Arc<Replayer>, Job)>,
    idle: mpsc::UnboundedSender<usize>,
}

impl Drop for WorkerState {
    fn drop(&mut self) {
        if self.busy {
            self.jobs.close();
            let _ = self.idle.send(self.id);
        }
    }
}
