//! `shadowtap state show` and `shadowtap state reset`: a state directory
//! in; out, what is kept there (one line per fact), or nothing kept.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{FileError, Snapshot, StateError, file};

/// Where `state show` and `state reset` look: `--state-dir`, else
/// `$STATE_DIRECTORY`, else the packaged unit's `StateDirectory=`.
pub fn dir_or_default(given: Option<PathBuf>) -> PathBuf {
    super::dir_of(given.as_deref()).unwrap_or_else(|| PathBuf::from("/var/lib/shadowtap"))
}

/// What is kept in `dir`, for people.
pub fn show(dir: &Path) -> Result<String, StateError> {
    let path = dir.join(file::FILE_NAME);
    let Some(bytes) = file::read(dir)? else {
        return Ok(format!("{}: no state kept (the daemon starts fresh)\n", path.display()));
    };
    let body = match file::decode(&bytes) {
        Ok(body) => body,
        Err(FileError::Version { found }) => return Err(StateError::Version { path, found }),
        Err(e) => return Err(e.into()),
    };
    let snapshot: Snapshot =
        serde_json::from_slice(body).map_err(|e| FileError::Damaged(format!("body not a snapshot: {e}")))?;
    Ok(describe(&path, bytes.len(), &snapshot))
}

fn describe(path: &Path, size: usize, s: &Snapshot) -> String {
    let endpoints = s.report.get("endpoints").and_then(|e| e.as_array());
    let count = |key: &str| s.report.get("totals").and_then(|t| t.get(key)).and_then(|n| n.as_u64()).unwrap_or(0);
    let noise_fields: usize = s.noise.endpoints.iter().map(|e| e.fields.iter().filter(|f| f.noisy > 0).count()).sum();
    let mut out = String::new();
    let _ = writeln!(out, "file:       {} ({size} bytes, version {})", path.display(), super::VERSION);
    let _ = writeln!(out, "since:      {}", s.since);
    let _ = writeln!(out, "restarts:   {}", s.restarts);
    let _ = writeln!(out, "saved at:   {}", s.saved_at);
    let _ = writeln!(
        out,
        "exchanges:  {} ({} match, {} diff, {} error)",
        count("count"),
        count("match"),
        count("diff"),
        count("error")
    );
    let _ = writeln!(out, "endpoints:  {}", endpoints.map_or(0, |e| e.len()));
    let _ = writeln!(out, "noise:      {} noisy fields over {} endpoints", noise_fields, s.noise.endpoints.len());
    out
}

/// Discards what is kept in `dir`, for people.
pub fn reset(dir: &Path) -> Result<String, StateError> {
    let path = dir.join(file::FILE_NAME);
    if !path.exists() {
        return Ok(format!("{}: no state kept, nothing to reset\n", path.display()));
    }
    // A running daemon would write its state again at once.
    let _lock = file::lock(dir)?.ok_or_else(|| StateError::InUse { dir: dir.to_path_buf() })?;
    Ok(if file::remove(dir)? {
        format!("{}: removed; the daemon starts fresh\n", path.display())
    } else {
        format!("{}: no state kept, nothing to reset\n", path.display())
    })
}
