//! The daemon's evidence kept across restarts. Out (at each report
//! interval and at shutdown): the report as it stands (counts, latency
//! histograms, load, field counts, evictions), the learned noise model
//! whole, since when evidence has been accumulating and how many restarts
//! it spans, written to `<state_dir>/state` (`file`: versioned,
//! checksummed, atomic). In (at start): the same, so the report goes on
//! from where it was.
//!
//! A missing file is a first start. A damaged one (torn, truncated,
//! flipped bits) is set aside as `state.corrupt-<time>` with one warning and
//! the daemon starts fresh. One written by another version is refused with
//! one line (exit 2): never misread. `run --fresh` and `state reset`
//! discard the state on purpose.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::replay::config::OutputConfig;
use crate::replay::triage::generated::saved::SavedMapping;
use crate::replay::triage::saved::SavedNoise;
use crate::report::{Report, ReportJson};

pub mod cli;
pub mod file;

pub use file::{FileError, VERSION};

/// Why the state cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state directory {dir}: {error}")]
    Dir { dir: PathBuf, error: std::io::Error },
    #[error(
        "{path}: written by another shadowtap (state version {found}, this one reads {VERSION}); \
         refusing to misread it: start with --fresh or run `shadowtap state reset` to discard it"
    )]
    Version { path: PathBuf, found: String },
    #[error("state directory {dir} is in use by another shadowtap (stop it first)")]
    InUse { dir: PathBuf },
    #[error(transparent)]
    File(#[from] FileError),
}

/// The state file's body (JSON).
#[derive(Serialize, Deserialize)]
pub struct Snapshot {
    /// When this evidence began accumulating (RFC 3339).
    pub since: String,
    /// Restarts the evidence spans.
    pub restarts: u64,
    /// When this snapshot was written (RFC 3339).
    pub saved_at: String,
    /// The report JSON as the daemon wrote it (read back as `report`
    /// merging reads reports).
    pub report: serde_json::Value,
    pub noise: SavedNoise,
    /// Id and time mappings still live, oldest first.
    #[serde(default)]
    pub generated: Vec<SavedMapping>,
    /// Names of endpoints the report evicted, and whether some were
    /// forgotten: one that comes back is never ready on what is left.
    #[serde(default)]
    pub evicted_endpoints: Vec<String>,
    #[serde(default)]
    pub evicted_forgotten: bool,
}

/// Report figures the daemon keeps in live counters, which restart at zero
/// with the process (as Prometheus expects): the saved values are added.
#[derive(Default, Clone, Debug)]
pub struct Carried {
    pub queue_drops: u64,
    pub loops: u64,
    pub kernel_drops: u64,
    pub packets: u64,
    pub evicted: crate::bounded::Evicted,
    /// Distinct raw paths per endpoint when saved: a floor from then on.
    pub raw_paths: HashMap<String, u64>,
    /// Load samples when saved: request rates are over this run's span,
    /// so over this run's samples only.
    pub samples: u64,
}

impl Carried {
    /// The figures of a report made of kept and new evidence that the
    /// evidence itself cannot give: raw paths counted before the restart
    /// are not forgotten, and request rates count this run's requests only
    /// (their span is this run's).
    pub fn apply(&self, json: &mut ReportJson) {
        for e in &mut json.endpoints {
            let before = self.raw_paths.get(&e.endpoint).copied().unwrap_or(0);
            e.raw_paths = e.raw_paths.max(before).min(e.counts.count);
        }
        let samples: u64 = json.endpoints.iter().map(|e| e.load.samples).sum();
        if self.samples > 0 && samples > 0 {
            let share = samples.saturating_sub(self.samples) as f64 / samples as f64;
            for side in [&mut json.load.recorded, &mut json.load.replay] {
                side.requests_per_s = side.requests_per_s.map(|r| (r * share * 100.0).round() / 100.0);
            }
        }
    }
}

/// What the daemon goes on from.
pub struct Restored {
    /// The saved report's evidence, within `[output]`'s bounds.
    pub report: Report,
    pub noise: SavedNoise,
    pub generated: Vec<SavedMapping>,
    pub carried: Carried,
}

/// Keeps the state of one daemon run in its directory.
pub struct Keeper {
    dir: PathBuf,
    /// The directory's lock, held while the daemon runs.
    _lock: std::fs::File,
    pub since: String,
    pub restarts: u64,
}

/// Now, as the state and the report say times.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The state directory in force: the configured one, else systemd's
/// `$STATE_DIRECTORY` (its first entry), else none.
pub fn dir_of(configured: Option<&Path>) -> Option<PathBuf> {
    configured.map(Path::to_path_buf).or_else(|| {
        let env = std::env::var_os("STATE_DIRECTORY")?;
        let first = env.to_str()?.split(':').next()?.to_string();
        (!first.is_empty()).then(|| PathBuf::from(first))
    })
}

impl Keeper {
    /// Opens the state directory (made when missing) and reads what was
    /// kept; `fresh` discards it first.
    pub fn open(dir: &Path, fresh: bool, output: &OutputConfig) -> Result<(Keeper, Option<Restored>), StateError> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|error| StateError::Dir { dir: dir.to_path_buf(), error })?;
        let lock = file::lock(dir)?.ok_or_else(|| StateError::InUse { dir: dir.to_path_buf() })?;
        if fresh && file::remove(dir)? {
            tracing::info!(dir = %dir.display(), "--fresh: the kept state was discarded; starting over");
        }
        let keeper = |since: String, restarts: u64| Keeper { dir: dir.to_path_buf(), _lock: lock, since, restarts };
        match load(dir, output) {
            Ok(None) => Ok((keeper(now(), 0), None)),
            Ok(Some((snapshot, restored))) => {
                tracing::info!(
                    dir = %dir.display(),
                    since = %snapshot.since,
                    restarts = snapshot.restarts + 1,
                    "going on from the kept state"
                );
                Ok((keeper(snapshot.since, snapshot.restarts + 1), Some(restored)))
            }
            Err(LoadError::Version(found)) => Err(StateError::Version { path: dir.join(file::FILE_NAME), found }),
            Err(LoadError::Io(e)) => Err(e.into()),
            Err(LoadError::Damaged(why)) => {
                let aside = file::set_aside(dir)?;
                tracing::warn!("state file damaged ({why}): set aside as {}; starting fresh", aside.display());
                Ok((keeper(now(), 0), None))
            }
        }
    }

    /// Writes the state: the report as it stands with the names it
    /// evicted, the noise model, the mapped values.
    pub fn save(
        &self,
        report: &ReportJson,
        evicted: (Vec<String>, bool),
        noise: SavedNoise,
        generated: Vec<SavedMapping>,
    ) -> Result<(), StateError> {
        let snapshot = Snapshot {
            since: self.since.clone(),
            restarts: self.restarts,
            saved_at: now(),
            report: serde_json::to_value(report).unwrap_or_default(),
            noise,
            generated,
            evicted_endpoints: evicted.0,
            evicted_forgotten: evicted.1,
        };
        let body = serde_json::to_vec(&snapshot).unwrap_or_default();
        Ok(file::write_atomically(&self.dir, &file::encode(&body))?)
    }
}

/// Why a kept state is not read.
enum LoadError {
    Damaged(String),
    Version(String),
    Io(FileError),
}

/// The snapshot in `dir` and the evidence it holds; `None` when there is
/// no state file.
fn load(dir: &Path, output: &OutputConfig) -> Result<Option<(Snapshot, Restored)>, LoadError> {
    let bytes = match file::read(dir) {
        Ok(None) => return Ok(None),
        Ok(Some(bytes)) => bytes,
        Err(FileError::Damaged(why)) => return Err(LoadError::Damaged(why)),
        Err(e) => return Err(LoadError::Io(e)),
    };
    let body = match file::decode(&bytes) {
        Ok(body) => body,
        Err(FileError::Version { found }) => return Err(LoadError::Version(found)),
        Err(FileError::Damaged(why)) => return Err(LoadError::Damaged(why)),
        Err(e) => return Err(LoadError::Io(e)),
    };
    // The checksum held, so a body that does not parse was written so:
    // still not to be misread.
    let snapshot: Snapshot =
        serde_json::from_slice(body).map_err(|e| LoadError::Damaged(format!("body not a snapshot: {e}")))?;
    chrono::DateTime::parse_from_rfc3339(&snapshot.since)
        .map_err(|_| LoadError::Damaged(format!("since {:?} is not a time", snapshot.since)))?;
    let restored = restore(&snapshot, output).map_err(|e| LoadError::Damaged(e.to_string()))?;
    Ok(Some((snapshot, restored)))
}

/// The evidence of a snapshot, within `[output]`'s bounds.
fn restore(snapshot: &Snapshot, output: &OutputConfig) -> Result<Restored, crate::report::merge::MergeError> {
    let json = serde_json::to_vec(&snapshot.report).unwrap_or_default();
    let mut merger = crate::report::merge::Merger::default();
    merger.add("kept report", &json)?;
    let reloaded = merger.into_reloaded();
    let saved = reloaded.report;
    let samples = snapshot.report["endpoints"]
        .as_array()
        .map_or(0, |endpoints| endpoints.iter().filter_map(|e| e["load"]["samples"].as_u64()).sum());
    let carried = Carried {
        queue_drops: saved.replay_queue_drops,
        loops: saved.replay_loops,
        kernel_drops: saved.load.kernel_drops,
        packets: saved.load.packets,
        evicted: reloaded.evicted,
        raw_paths: reloaded.raw_paths,
        samples,
    };
    let mut report = Report::of_output(output);
    report.remember_evicted_names(&snapshot.evicted_endpoints, snapshot.evicted_forgotten);
    report.merge(saved);
    Ok(Restored { report, noise: snapshot.noise.clone(), generated: snapshot.generated.clone(), carried })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> crate::report::ReportOptions {
        crate::report::Criteria::of_config(&crate::replay::config::Config::default()).options()
    }

    #[test]
    fn kept_state_goes_on_and_damage_or_other_versions_are_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let output = OutputConfig::default();
        let (first, restored) = Keeper::open(dir.path(), false, &output).unwrap();
        assert!(restored.is_none());
        assert_eq!(first.restarts, 0);
        first
            .save(&Report::default().to_json(&options()), (Vec::new(), false), SavedNoise::default(), Vec::new())
            .unwrap();
        let in_use = Keeper::open(dir.path(), false, &output).err().expect("one keeper per directory");
        assert!(matches!(in_use, StateError::InUse { .. }), "{in_use}");
        let since = first.since.clone();
        drop(first);

        let (second, restored) = Keeper::open(dir.path(), false, &output).unwrap();
        assert!(restored.is_some());
        assert_eq!((second.since.as_str(), second.restarts), (since.as_str(), 1));
        drop(second);

        // A flipped bit: set aside, fresh.
        let path = dir.path().join(file::FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x04;
        std::fs::write(&path, &bytes).unwrap();
        let (third, restored) = Keeper::open(dir.path(), false, &output).unwrap();
        assert!(restored.is_none());
        assert_eq!(third.restarts, 0);
        drop(third);
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with("state.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");

        // Another version: refused, left in place.
        std::fs::write(&path, b"shadowtap-state v2 len=2 sha256=00\n{}").unwrap();
        let err = Keeper::open(dir.path(), false, &output).err().expect("refused");
        assert!(matches!(err, StateError::Version { ref found, .. } if found == "2"), "{err}");
        assert!(path.exists());
        // --fresh discards it.
        let (fresh, restored) = Keeper::open(dir.path(), true, &output).unwrap();
        assert!(restored.is_none() && fresh.restarts == 0 && !path.exists());
    }

    #[test]
    fn evicted_endpoint_names_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let output = OutputConfig::default();
        let (keeper, _) = Keeper::open(dir.path(), false, &output).unwrap();
        let evicted = (vec!["GET /broken".to_string()], false);
        keeper
            .save(&Report::default().to_json(&options()), evicted.clone(), SavedNoise::default(), Vec::new())
            .unwrap();
        drop(keeper);
        let (_, restored) = Keeper::open(dir.path(), false, &output).unwrap();
        assert_eq!(restored.expect("kept").report.evicted_names(), evicted);
    }
}
