//! One replay session from start to end: the pipeline's ordered exchanges
//! are handed to the async replayer over a bounded queue, outcomes are
//! written as JSON Lines and folded into the report. Shared by `replay`,
//! `demo` and the live daemon.

use std::io::Write;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Outcome, Replayer, Schedule};
use crate::exchange::Exchange;
use crate::pipeline::{Running, Summary};
use crate::report::{Report, ReportJson, ReportOptions};

/// What a finished session hands back.
pub struct Finished {
    pub report: ReportJson,
    pub summary: Summary,
    pub capture_error: Option<crate::capture::CaptureError>,
    pub outcomes: u64,
}

/// Where outcome lines go.
pub type OutcomeSink = Box<dyn Write + Send>;

/// Runs replay over a running pipeline until its exchanges are exhausted.
/// `wait_when_full`: files wait for replay (no loss); live drops and counts.
pub fn replay_pipeline(
    running: Running,
    replayer: Replayer,
    schedule: Schedule,
    mut sink: OutcomeSink,
    options: ReportOptions,
    wait_when_full: bool,
) -> std::io::Result<Finished> {
    let threads: usize = std::env::var("SHADOWTAP_REPLAY_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let runtime = if threads == 0 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .thread_name("replay")
            .build()?
    };
    // Batches as the pipeline made them: one hand-off per batch.
    let (tx, rx) = mpsc::channel::<Vec<Exchange>>(2);
    let (out_tx, mut out_rx) = mpsc::channel::<Outcome>(1024);
    let exchanges = running.exchanges.clone();
    let feeder = std::thread::Builder::new().name("replay-feed".into()).spawn(move || {
        let mut dropped = 0u64;
        for batch in exchanges.iter() {
            let size = batch.len() as u64;
            if wait_when_full {
                if tx.blocking_send(batch).is_err() {
                    return dropped;
                }
            } else if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(batch) {
                dropped += size;
            }
        }
        dropped
    })?;
    let current = Arc::new(super::Current::new(replayer));
    let learned = current.clone();
    let (report, outcomes, write_result) = runtime.block_on(async move {
        let replay = tokio::spawn(super::run(current, rx, out_tx, schedule));
        // Outcomes are folded on a runtime worker, not on this thread, so
        // that handing each one over does not cross to a sleeping thread.
        let collector = tokio::spawn(async move {
            let mut report = Report::default();
            let mut outcomes = 0u64;
            let mut write_result = Ok(());
            let mut line = Vec::with_capacity(4096);
            while let Some(outcome) = out_rx.recv().await {
                report.add(&outcome);
                outcomes += 1;
                if write_result.is_ok() {
                    line.clear();
                    write_result =
                        serde_json::to_writer(&mut line, &outcome).map_err(std::io::Error::from).and_then(|_| {
                            line.push(b'\n');
                            sink.write_all(&line)
                        });
                }
            }
            if write_result.is_ok() {
                write_result = sink.flush();
            }
            (report, outcomes, write_result)
        });
        let _ = replay.await;
        collector.await.expect("collector task panicked")
    });
    let mut report = report;
    report.replay_queue_drops = feeder.join().unwrap_or(0);
    let (summary, capture_error) = running.finish();
    write_result?;
    let options = ReportOptions { noise: learned.get().noise.snapshot(), ..options };
    Ok(Finished { report: report.to_json(&options), summary, capture_error, outcomes })
}
