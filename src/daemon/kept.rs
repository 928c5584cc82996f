//! The daemon's side of `crate::state`: at start, the kept evidence in
//! (report, noise, counters carried over); at each report interval and at
//! shutdown, the report and noise model out. Without a state directory
//! nothing is kept and the report accumulates since the daemon started.

use crate::replay::Replayer;
use crate::replay::config::Config;
use crate::report::{Report, ReportJson};
use crate::state::{Carried, Keeper, Restored};

/// What the daemon keeps, and since when.
pub(super) struct Kept {
    keeper: Option<Keeper>,
    pub carried: Carried,
    since: String,
    restarts: u64,
}

impl Kept {
    /// Reads the kept state (`[daemon] state_dir`, `--state-dir`, else
    /// `$STATE_DIRECTORY`); `fresh` discards it. The report to go on with;
    /// noise and mapped values are put back into `replayer`.
    pub fn open(config: &Config, fresh: bool, replayer: &Replayer) -> anyhow::Result<(Kept, Report)> {
        let Some(dir) = crate::state::dir_of(config.daemon.state_dir.as_deref()) else {
            let kept = Kept { keeper: None, carried: Carried::default(), since: crate::state::now(), restarts: 0 };
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
        let kept = Kept { since: keeper.since.clone(), restarts: keeper.restarts, keeper: Some(keeper), carried };
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

    /// Writes the state (when kept).
    pub fn save(&self, json: &ReportJson, replayer: &Replayer) -> Result<(), crate::state::StateError> {
        match &self.keeper {
            Some(keeper) => keeper.save(json, replayer.noise.save(), replayer.generated.save()),
            None => Ok(()),
        }
    }
}
