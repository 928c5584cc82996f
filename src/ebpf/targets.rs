//! Which processes to watch, named as an operator names them: pids (with
//! the processes they have forked so far; the BPF program follows later
//! forks) and systemd units (their cgroup, which holds every process the
//! unit starts). Also where those processes load libssl from, for the TLS
//! uprobes. In: `/proc` and the cgroup2 file system; out: ids.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::EbpfError;

/// A cgroup to watch: its id (the cgroup2 directory's inode number, what
/// `bpf_get_current_cgroup_id` returns) and its depth below the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    pub path: PathBuf,
    pub id: u64,
    pub level: u32,
}

/// `pid` and every process descended from it now.
pub fn with_descendants(pid: u32) -> Result<Vec<u32>, EbpfError> {
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(EbpfError::Target(format!("--pid {pid}: no such process")));
    }
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (child, parent) in parents() {
        children.entry(parent).or_default().push(child);
    }
    let mut out = vec![pid];
    let mut next = 0;
    while next < out.len() {
        if let Some(kids) = children.get(&out[next]) {
            for kid in kids {
                if !out.contains(kid) {
                    out.push(*kid);
                }
            }
        }
        next += 1;
    }
    Ok(out)
}

/// (pid, parent pid) of every process.
fn parents() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name may hold spaces and parentheses: the fields
            // after it start after the last ')'.
            let rest = &stat[stat.rfind(')')? + 2..];
            let ppid = rest.split(' ').nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// Where the cgroup2 hierarchy is mounted (/sys/fs/cgroup on unified
/// hosts, /sys/fs/cgroup/unified on hybrid ones).
pub fn cgroup2_root() -> Result<PathBuf, EbpfError> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts
        .lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            (right.split(' ').next()? == "cgroup2").then(|| PathBuf::from(mount_point))
        })
        .ok_or_else(|| EbpfError::Target("--unit needs the cgroup2 file system, and none is mounted".into()))
}

/// The cgroup of systemd unit `name`: as systemd reports it, else the
/// directory of that name in the cgroup2 tree.
pub fn unit_cgroup(name: &str) -> Result<Cgroup, EbpfError> {
    if name.is_empty() || name.contains('/') {
        return Err(EbpfError::Target(format!("--unit {name:?}: not a unit name")));
    }
    let root = cgroup2_root()?;
    let path = systemd_control_group(name)
        .map(|group| root.join(group.trim_start_matches('/')))
        .filter(|p| p.is_dir())
        .or_else(|| find_dir(&root, name, 6))
        .ok_or_else(|| EbpfError::Target(format!("--unit {name}: no cgroup of that name under {}", root.display())))?;
    cgroup_at(&root, &path)
}

fn cgroup_at(root: &Path, path: &Path) -> Result<Cgroup, EbpfError> {
    let meta = std::fs::metadata(path).map_err(|e| EbpfError::Target(format!("{}: {e}", path.display())))?;
    let level = path.strip_prefix(root).map(|rel| rel.components().count() as u32).unwrap_or(0);
    Ok(Cgroup { path: path.to_path_buf(), id: meta.ino(), level })
}

fn systemd_control_group(name: &str) -> Option<String> {
    let out = std::process::Command::new("systemctl")
        .args(["show", "--property", "ControlGroup", "--value", name])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let group = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !group.is_empty()).then_some(group)
}

fn find_dir(dir: &Path, name: &str, depth: u32) -> Option<PathBuf> {
    let entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().filter(|e| e.path().is_dir()).collect();
    if let Some(hit) = entries.iter().find(|e| e.file_name() == name) {
        return Some(hit.path());
    }
    if depth == 0 {
        return None;
    }
    entries.iter().find_map(|e| find_dir(&e.path(), name, depth - 1))
}

/// The processes in a cgroup and its children now.
pub fn cgroup_pids(cgroup: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_to_string(cgroup.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if let Ok(dir) = std::fs::read_dir(cgroup) {
        for entry in dir.flatten().filter(|e| e.path().is_dir()) {
            pids.extend(cgroup_pids(&entry.path()));
        }
    }
    pids
}

/// The libssl shared objects these processes have mapped, found in
/// `/proc/PID/maps` (python, nginx, curl: each may load its own copy).
pub fn libssl_paths(pids: &[u32]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for pid in pids {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        for line in maps.lines() {
            let Some(path) = line.split_whitespace().nth(5) else { continue };
            let file = path.rsplit('/').next().unwrap_or("");
            if file.starts_with("libssl.so") {
                // Through the process's own root, so a chroot or container
                // finds its copy.
                let via_root = PathBuf::from(format!("/proc/{pid}/root{path}"));
                out.insert(if via_root.exists() { via_root } else { PathBuf::from(path) });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_and_a_child_are_found() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let found = with_descendants(std::process::id()).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found[0], std::process::id());
        assert!(found.contains(&child.id()), "{found:?} lacks the child {}", child.id());
    }

    #[test]
    fn a_missing_pid_or_unit_is_a_clear_error() {
        let err = with_descendants(u32::MAX - 1).unwrap_err().to_string();
        assert!(err.contains("no such process"), "{err}");
        let err = unit_cgroup("../etc").unwrap_err().to_string();
        assert!(err.contains("not a unit name"), "{err}");
    }
}
