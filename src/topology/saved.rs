//! One replay session of saved captures from start to end: the pipeline's
//! ordered exchanges are replayed on lanes ([`super::lanes`]), outcomes
//! written as JSON Lines and folded into the report. Shared by `replay`
//! and `demo` (the live daemon feeds [`super::dispatch::run`] instead: it must drop,
//! not wait, when replay falls behind).

use std::sync::Arc;

use super::OutcomeSink;
use crate::pipeline::{Running, Summary};
use crate::replay::{Current, Replayer, Schedule};
use crate::report::{ReportJson, ReportOptions};

/// What a finished session hands back.
pub struct Finished {
    pub report: ReportJson,
    pub summary: Summary,
    pub capture_error: Option<crate::capture::CaptureError>,
    pub outcomes: u64,
}

/// Runs replay over a running pipeline until its exchanges are exhausted.
/// Files wait for replay: nothing is lost.
pub fn replay_pipeline(
    running: Running,
    replayer: Replayer,
    schedule: Schedule,
    sink: OutcomeSink,
    options: ReportOptions,
) -> std::io::Result<Finished> {
    let current = Arc::new(Current::new(replayer));
    let replayed = super::lanes::replay_on_lanes(running.exchanges.clone(), current.clone(), &schedule, sink)?;
    let (summary, capture_error) = running.finish();
    replayed.write_result?;
    let replayer = current.get();
    let options = ReportOptions { noise: replayer.noise.snapshot(), evicted: replayer.evicted(), ..options };
    let mut report = replayed.report;
    report.replay_loops = current.loops();
    Ok(Finished { report: report.to_json(&options), summary, capture_error, outcomes: replayed.outcomes })
}
