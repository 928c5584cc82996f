//! The state file on disk. In: the snapshot's body (JSON bytes); out: the
//! file `state` in the state directory, and back.
//!
//! Format: one header line, then the body:
//!
//! ```text
//! shadowtap-state v1 len=12345 sha256=<64 hex digits>\n
//! {...JSON...}
//! ```
//!
//! The length and the SHA-256 of the body catch a torn write (power loss
//! before the data reached the disk) and any flipped bit. Written to a
//! temporary file in the same directory, fsynced, renamed over the old
//! one, and the directory fsynced: a crash leaves the old file or the new
//! one, never half of one.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The version this shadowtap writes and reads.
pub const VERSION: u32 = 1;

/// The file's name inside the state directory.
pub const FILE_NAME: &str = "state";

/// The state file at most (a bounded report and noise model are far
/// smaller): a larger file is not read into memory.
pub const MAX_LEN: u64 = 512 * 1024 * 1024;

const MAGIC: &str = "shadowtap-state";

/// Why a state file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Torn, truncated, flipped bits, not a state file: set aside.
    #[error("damaged state file ({0})")]
    Damaged(String),
    /// Written by another shadowtap version: refused, never misread.
    #[error("state file version {found}, this shadowtap reads version {VERSION}")]
    Version { found: String },
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |error| FileError::Io { path: path.to_path_buf(), error }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The file's bytes for `body`.
pub fn encode(body: &[u8]) -> Vec<u8> {
    let header = format!("{MAGIC} v{VERSION} len={} sha256={}\n", body.len(), hex(&Sha256::digest(body)));
    let mut bytes = header.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// The body of a state file's bytes, checked.
pub fn decode(bytes: &[u8]) -> Result<&[u8], FileError> {
    let damaged = |why: &str| FileError::Damaged(why.to_string());
    let end = bytes.iter().take(256).position(|b| *b == b'\n').ok_or_else(|| damaged("no header line"))?;
    let header = std::str::from_utf8(&bytes[..end]).map_err(|_| damaged("header not text"))?;
    let body = &bytes[end + 1..];
    let mut words = header.split(' ');
    if words.next() != Some(MAGIC) {
        return Err(damaged("not a shadowtap state file"));
    }
    let version = words.next().unwrap_or("");
    if version != format!("v{VERSION}") {
        // A version is only believed when it looks like one: a flipped bit
        // in "v1" is damage, not a version.
        return match version.strip_prefix('v').filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
            Some(n) => Err(FileError::Version { found: n.to_string() }),
            None => Err(damaged("bad version field")),
        };
    }
    // Canonical numbers only ("07" or "+7" is not what `encode` writes).
    let len = words
        .next()
        .and_then(|w| w.strip_prefix("len="))
        .and_then(|n| n.parse::<usize>().ok().filter(|len| len.to_string() == n));
    let sum = words.next().and_then(|w| w.strip_prefix("sha256="));
    let (Some(len), Some(sum), None) = (len, sum, words.next()) else { return Err(damaged("bad header")) };
    if body.len() != len {
        return Err(FileError::Damaged(format!("{} body bytes, header says {len}: torn write", body.len())));
    }
    if hex(&Sha256::digest(body)) != sum {
        return Err(damaged("checksum mismatch"));
    }
    Ok(body)
}

/// Writes `bytes` as `dir/state`: temporary file, fsync, rename, fsync
/// of the directory.
pub fn write_atomically(dir: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let path = dir.join(FILE_NAME);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    // Owner only: the state holds what the report holds (values of the
    // traffic), whatever the umask.
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// The state file's bytes; `None` when there is none.
pub fn read(dir: &Path) -> Result<Option<Vec<u8>>, FileError> {
    let path = dir.join(FILE_NAME);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FileError::Io { path, error: e }),
    };
    let len = file.metadata().map_err(io(&path))?.len();
    if len > MAX_LEN {
        return Err(FileError::Damaged(format!("{len} bytes, more than a state file holds")));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_LEN + 1), &mut bytes).map_err(io(&path))?;
    Ok(Some(bytes))
}

/// Moves a damaged state file aside (`state.corrupt-<time>`) so a fresh
/// start does not overwrite what someone may want to look at.
pub fn set_aside(dir: &Path) -> Result<PathBuf, FileError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let aside = dir.join(format!("{FILE_NAME}.corrupt-{stamp}"));
    std::fs::rename(dir.join(FILE_NAME), &aside).map_err(io(&aside))?;
    Ok(aside)
}

/// The lock file's name: held by the daemon using the directory.
pub const LOCK_NAME: &str = "lock";

/// Takes the directory's lock (released when the file is closed, also
/// when the process dies): one daemon per state directory, and no reset
/// under a running one. `None` when another process holds it.
pub fn lock(dir: &Path) -> Result<Option<File>, FileError> {
    use std::os::fd::AsRawFd;
    let path = dir.join(LOCK_NAME);
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io(&path))?;
    // SAFETY: flock(2) on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(Some(file));
    }
    match std::io::Error::last_os_error() {
        e if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
        e => Err(FileError::Io { path, error: e }),
    }
}

/// Removes the state file (`state reset`); whether there was one.
pub fn remove(dir: &Path) -> Result<bool, FileError> {
    let path = dir.join(FILE_NAME);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(FileError::Io { path, error: e }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BODY: &[u8] = br#"{"since":"2026-11-28T00:00:00Z","restarts":3,"report":{"endpoints":[]}}"#;

    #[test]
    fn a_body_survives_the_round_trip_and_the_disk() {
        assert_eq!(decode(&encode(BODY)).unwrap(), BODY);
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none(), "missing: nothing");
        write_atomically(dir.path(), &encode(BODY)).unwrap();
        write_atomically(dir.path(), &encode(b"{}")).unwrap();
        assert_eq!(decode(&read(dir.path()).unwrap().unwrap()).unwrap(), b"{}");
        assert!(!dir.path().join("state.tmp").exists());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner only");
        assert!(remove(dir.path()).unwrap());
        assert!(!remove(dir.path()).unwrap());
        let held = lock(dir.path()).unwrap();
        assert!(held.is_some());
        assert!(lock(dir.path()).unwrap().is_none(), "held: not twice");
        drop(held);
        assert!(lock(dir.path()).unwrap().is_some(), "released with the file");
    }

    #[test]
    fn truncation_and_other_versions_are_told_apart() {
        let bytes = encode(BODY);
        for cut in [0, 10, bytes.len() - 1] {
            assert!(matches!(decode(&bytes[..cut]), Err(FileError::Damaged(_))), "cut at {cut}");
        }
        let v2 = String::from_utf8(bytes.clone()).unwrap().replacen(" v1 ", " v2 ", 1);
        assert!(matches!(decode(v2.as_bytes()), Err(FileError::Version { found }) if found == "2"));
        let v0 = String::from_utf8(bytes).unwrap().replacen(" v1 ", " v0 ", 1);
        assert!(matches!(decode(v0.as_bytes()), Err(FileError::Version { .. })));
        let padded = String::from_utf8(encode(BODY)).unwrap().replacen(" len=", " len=0", 1);
        assert!(matches!(decode(padded.as_bytes()), Err(FileError::Damaged(_))));
    }

    proptest! {
        #[test]
        fn any_bit_flip_is_detected(at in 0usize..10_000, bit in 0u8..8) {
            let mut bytes = encode(BODY);
            let at = at % bytes.len();
            bytes[at] ^= 1 << bit;
            // Never read as a body: damage (or, for a flip turning the
            // version digit into another digit, another version).
            prop_assert!(decode(&bytes).is_err());
        }

        #[test]
        fn any_bytes_are_refused_unless_exactly_what_encode_writes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            // Whatever is accepted is exactly what `encode` writes.
            let mut framed = b"shadowtap-state v1 ".to_vec();
            framed.extend_from_slice(&bytes);
            for input in [&bytes, &framed] {
                if let Ok(body) = decode(input) {
                    prop_assert_eq!(&encode(body), input);
                }
            }
        }
    }
}
