//! The daemon's side of `crate::state`: at start, the kept evidence in
//! (report, noise, counters carried over); at each report interval and at
//! shutdown, the report and noise model out. Without a state directory
//! nothing is kept and the report accumulates since the daemon started.

use crate::replay::Replayer;
use std::collections::HashMap;

use crate::replay::config::Config;
use crate::report::figures::EndpointFigures;
use crate::report::{Report, ReportJson};
use crate::state::{Carried, Keeper, Restored};

/// What the daemon keeps, and since when.
pub(super) struct Kept {
    keeper: Option<Keeper>,
    pub carried: Carried,
    /// The kept report's figures at start, by endpoint: the metrics copy
    /// the report's figures less these, so their counters start at zero
    /// with the process as Prometheus expects (a crash that lost an
    /// interval would otherwise look like a reset and count twice).
    baseline: HashMap<String, EndpointFigures>,
    since: String,
    restarts: u64,
}

impl Kept {
    /// Reads the kept state (`[daemon] state_dir`, `--state-dir`, else
    /// `$STATE_DIRECTORY`); `fresh` discards it. The report to go on with;
    /// noise and mapped values are put back into `replayer`.
    pub fn open(config: &Config, fresh: bool, replayer: &Replayer) -> anyhow::Result<(Kept, Report)> {
        let Some(dir) = crate::state::dir_of(config.daemon.state_dir.as_deref()) else {
            let kept = Kept {
                keeper: None,
                carried: Carried::default(),
                baseline: HashMap::new(),
                since: crate::state::now(),
                restarts: 0,
            };
            return Ok((kept, Report::of_output(&config.output)));
        };
        let (keeper, restored) = Keeper::open(&dir, fresh, &config.output)?;
        let (report, carried) = match restored {
            Some(Restored { report, noise, generated, carried }) => {
                replayer.noise.restore(noise);
                replayer.generated.restore(generated);
                (report, carried)
            }
            None => (Report::of_output(&config.output), Carried::default()),
        };
        let baseline = report
            .figures(&config.verdict, usize::MAX)
            .into_iter()
            .map(|figures| (figures.endpoint.clone(), figures))
            .collect();
        let kept =
            Kept { since: keeper.since.clone(), restarts: keeper.restarts, keeper: Some(keeper), carried, baseline };
        Ok((kept, report))
    }

    /// Whether there is a state directory to write to.
    pub fn keeps(&self) -> bool {
        self.keeper.is_some()
    }

    /// What the report says beyond the evidence: since when, how many
    /// restarts, and the figures kept evidence cannot give (`Carried::apply`).
    pub fn finish(&self, json: &mut ReportJson) {
        self.carried.apply(json);
        json.since = Some(self.since.clone());
        json.restarts = Some(self.restarts);
    }

    /// The figures counted since the process started (the kept ones
    /// subtracted, by endpoint name; peaks are gauges and stay).
    pub fn since_start(&self, mut figures: Vec<EndpointFigures>) -> Vec<EndpointFigures> {
        for f in &mut figures {
            let Some(kept) = self.baseline.get(&f.endpoint) else { continue };
            let less = |now: &mut u64, before: u64| *now = now.saturating_sub(before);
            less(&mut f.load.samples, kept.load.samples);
            less(&mut f.load.recorded_in_flight_sum, kept.load.recorded_in_flight_sum);
            less(&mut f.load.replay_in_flight_sum, kept.load.replay_in_flight_sum);
            less(&mut f.health.started_late, kept.health.started_late);
            less(&mut f.health.queue_drops, kept.health.queue_drops);
            less(&mut f.health.capture_gaps, kept.health.capture_gaps);
            for field in &mut f.fields {
                if let Some(before) = kept.fields.iter().find(|k| k.path == field.path) {
                    less(&mut field.count, before.count);
                }
            }
        }
        figures
    }

    /// Writes the state (when kept).
    pub fn save(
        &self,
        json: &ReportJson,
        report: &std::sync::Mutex<Report>,
        replayer: &Replayer,
    ) -> Result<(), crate::state::StateError> {
        match &self.keeper {
            Some(keeper) => {
                let evicted = report.lock().unwrap_or_else(|e| e.into_inner()).evicted_names();
                keeper.save(json, evicted, replayer.noise.save(), replayer.generated.save())
            }
            None => Ok(()),
        }
    }
}
