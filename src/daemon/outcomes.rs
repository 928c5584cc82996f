//! The daemon's outcome sinks: replayed outcomes in (from the dispatcher),
//! held until names settle and noise is known, then folded into the
//! metrics and the report and written as JSON Lines to `--out`. The file
//! is written on its own thread, never on the async workers, in batches
//! (what waits, up to 1 MiB, one write and a flush); it is reopened on
//! SIGHUP (logrotate). A batch that cannot be written (disk full, a
//! read-only file) is counted line by line and makes `/healthz`
//! unhealthy until a write works again ([`super::health`]).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use super::Shared;
use super::health::Health;
use crate::replay::settling::Settling;
use crate::replay::{Current, Holdback, Outcome, Replayer};
use crate::topology::OutcomeSink;
use crate::topology::dispatch::Replayed;

/// Outcome lines waiting for the writer thread.
const WRITER_QUEUE: usize = 1024;

/// Lines are written in batches of about this many bytes at most.
const BATCH_BYTES: usize = 1 << 20;

/// The `--out` file's writer thread and its queue.
pub(super) struct OutcomeWriter {
    lines: mpsc::Sender<Vec<u8>>,
    /// Set on SIGHUP: the file is reopened before the next line.
    pub(super) reopen: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl OutcomeWriter {
    /// Starts the thread writing to `out` (opened from `path`, unbuffered:
    /// the thread batches), noting in `health` what cannot be written.
    pub(super) fn start(
        mut out: OutcomeSink,
        path: Option<PathBuf>,
        health: Arc<Health>,
    ) -> std::io::Result<OutcomeWriter> {
        let (lines, mut rx) = mpsc::channel::<Vec<u8>>(WRITER_QUEUE);
        let reopen = Arc::new(AtomicBool::new(false));
        let reopen_flag = reopen.clone();
        let thread = std::thread::Builder::new().name("outcomes".into()).spawn(move || {
            while let Some(line) = rx.blocking_recv() {
                if reopen_flag.swap(false, Ordering::Relaxed) {
                    let _ = out.flush();
                    match super::open_out(&path) {
                        Ok(reopened) => out = reopened,
                        Err(e) => tracing::error!("cannot reopen {:?}: {e}", path),
                    }
                }
                let (batch, lines) = batch_from(line, &mut rx);
                match out.write_all(&batch).and_then(|()| out.flush()) {
                    Ok(()) => health.lines_written(),
                    Err(e) => {
                        if health.lines_not_written(lines, &e) {
                            tracing::error!(out = ?path, "cannot write outcome lines (counted, /healthz unhealthy): {e}");
                        }
                    }
                }
            }
        })?;
        Ok(OutcomeWriter { lines, reopen, thread })
    }

    pub(super) fn sender(&self) -> mpsc::Sender<Vec<u8>> {
        self.lines.clone()
    }

    /// Waits until every line sent is written (all senders gone).
    pub(super) fn finish(self) {
        drop(self.lines);
        let _ = self.thread.join();
    }
}

/// `first` and the lines waiting behind it, up to [`BATCH_BYTES`]; how
/// many lines.
fn batch_from(first: Vec<u8>, rx: &mut mpsc::Receiver<Vec<u8>>) -> (Vec<u8>, u64) {
    let (mut batch, mut lines) = (first, 1);
    while batch.len() < BATCH_BYTES {
        let Ok(line) = rx.try_recv() else { break };
        batch.extend_from_slice(&line);
        lines += 1;
    }
    (batch, lines)
}

/// Folds outcomes into the report and metrics and sends them to the
/// writer, until the dispatcher is done.
pub(super) async fn collect(
    mut rx: mpsc::Receiver<Replayed>,
    shared: Arc<Shared>,
    current: Arc<Current>,
    lines: mpsc::Sender<Vec<u8>>,
) {
    // Diffs of endpoints whose noise is not known yet wait here (bounded,
    // at most [noise] warmup_max_s), then are judged again.
    let mut hold = Holdback::default();
    // Outcomes wait here first, until endpoint names are learned.
    let mut settling = Settling::default();
    let mut names_seen = current.get().names.generation();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let replayer = current.get();
        let ready = tokio::select! {
            received = rx.recv() => match received {
                Some((outcome, sample)) => {
                    // The load is known now, under the name the outcome has
                    // now (the report renames it with the endpoint once
                    // names settle); the outcome may be held back.
                    if let Some(sample) = sample {
                        shared.report.lock().unwrap_or_else(|e| e.into_inner()).load.add(&outcome.endpoint, &sample);
                    }
                    named_then_judged(settling.offer(outcome, &replayer), &mut hold, &replayer)
                }
                None => break,
            },
            _ = tick.tick() => {
                rename_report_endpoints(&shared, &replayer, &mut names_seen);
                let mut ready = named_then_judged(settling.tick(&replayer), &mut hold, &replayer);
                ready.extend(hold.expired(&replayer));
                ready
            }
        };
        for outcome in ready {
            emit(&outcome, &shared, &lines).await;
        }
    }
    let replayer = current.get();
    replayer.names.settle_now();
    let settled = named_then_judged(settling.drain(&replayer), &mut hold, &replayer);
    for outcome in settled.iter().chain(&hold.drain(&replayer)) {
        emit(outcome, &shared, &lines).await;
    }
    rename_report_endpoints(&shared, &replayer, &mut names_seen);
}

/// Outcomes out of the naming hold (final names) go through the noise
/// warm-up hold, which counts samples per final endpoint.
fn named_then_judged(named: Vec<Outcome>, hold: &mut Holdback, replayer: &Replayer) -> Vec<Outcome> {
    named.into_iter().flat_map(|o| hold.offer(o, replayer)).collect()
}

/// Learning made names more general: the report's endpoints follow.
fn rename_report_endpoints(shared: &Shared, replayer: &Replayer, seen: &mut u64) {
    let generation = replayer.names.generation();
    if generation != *seen && replayer.names.is_settled() {
        *seen = generation;
        let mut report = shared.report.lock().unwrap_or_else(|e| e.into_inner());
        report.rename(|name| replayer.names.rename(name, replayer.templates()));
    }
}

/// One outcome to the metrics, the report and the --out writer.
async fn emit(outcome: &Outcome, shared: &Shared, lines: &mpsc::Sender<Vec<u8>>) {
    shared.metrics.observe(outcome);
    shared.report.lock().unwrap_or_else(|e| e.into_inner()).add(outcome);
    let mut line = serde_json::to_vec(&outcome.redacted()).unwrap_or_default();
    line.push(b'\n');
    if lines.send(line).await.is_err() {
        tracing::error!("cannot write outcome: the writer is gone");
    }
}
