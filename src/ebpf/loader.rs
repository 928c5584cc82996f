//! Loads the BPF object built by build.rs, fills its filter maps from a
//! [`Plan`] and attaches its programs: BTF and raw tracepoints (no tracefs,
//! no kprobes) and libssl uprobes. In: a plan; out: a [`Loaded`] program
//! whose ring buffer and counters the source reads. Dropping it detaches
//! everything.

use std::collections::BTreeSet;
use std::path::PathBuf;

use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, Object, ObjectBuilder};

use super::EbpfError;
use super::targets::Cgroup;
use super::uprobes::SslProbes;

/// The CO-RE object compiled from bpf/tap.bpf.c.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tap.bpf.o"));

/// Counter slots of the program's `stats` map (`enum stat` in tap.bpf.c).
#[derive(Clone, Copy, Debug)]
pub enum Stat {
    Events = 0,
    Bytes,
    RingBufferDrops,
    ChunksCut,
    ConnsOpened,
    ConnsFull,
    CallsFull,
    TlsNoFd,
    TlsNotDecrypted,
    SkippedBytes,
    PidsFull,
    SampledOut,
}

pub const STATS: usize = 12;

/// What to watch, resolved to ids.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub tgids: Vec<u32>,
    pub cgroups: Vec<Cgroup>,
    pub ports: Vec<u16>,
    pub unix_paths: Vec<String>,
    pub tls: bool,
    pub libssl: BTreeSet<PathBuf>,
    pub ring_buffer_bytes: u32,
    /// Connections kept, in hundredths of a percent (10000: all).
    pub sample_basis_points: u32,
}

pub struct Loaded {
    // Links before the object: they are dropped (detached) first.
    _links: Vec<Link>,
    /// The libssl uprobes, per watched process (None: TLS off).
    ssl: std::cell::RefCell<Option<SslProbes>>,
    traced_tgids: MapHandle,
    pub events: MapHandle,
    stats: MapHandle,
    /// The program's `cfg` and what it was filled from: the sample may
    /// change while the ring buffer is being read (a reload).
    config: std::cell::RefCell<(MapHandle, Plan)>,
    /// Mutable only to attach uprobes to new processes.
    _object: std::cell::RefCell<Object>,
}

impl Loaded {
    /// Probes libssl in watched processes not probed yet (new workers);
    /// `strict` at start: a failure is an error. Returns how many
    /// processes are probed.
    pub fn refresh_uprobes(&self, strict: bool) -> Result<usize, EbpfError> {
        let mut ssl = self.ssl.borrow_mut();
        let Some(ssl) = ssl.as_mut() else { return Ok(0) };
        let watched = self.watched_processes();
        ssl.refresh(&mut self._object.borrow_mut(), &watched, strict)?;
        Ok(ssl.probed())
    }

    /// The processes watched now: those the kernel follows by pid (forks
    /// included) and those in the units' cgroups.
    fn watched_processes(&self) -> BTreeSet<u32> {
        let mut out: BTreeSet<u32> = self
            .traced_tgids
            .keys()
            .filter_map(|k| k.get(..4).map(|b| u32::from_ne_bytes(b.try_into().unwrap_or([0; 4]))))
            .collect();
        for cgroup in &self.config.borrow().1.cgroups {
            out.extend(super::targets::cgroup_pids(&cgroup.path));
        }
        out
    }

    /// Changes the share of new connections kept (a reload of `--sample`).
    pub fn set_sample(&self, basis_points: u32) -> Result<(), EbpfError> {
        let mut config = self.config.borrow_mut();
        config.1.sample_basis_points = basis_points.min(10_000);
        put(&config.0, &0u32.to_ne_bytes(), &config_bytes(&config.1))
    }

    /// The program's counters, summed over CPUs.
    pub fn stats(&self) -> [u64; STATS] {
        let mut out = [0u64; STATS];
        for (slot, total) in out.iter_mut().enumerate() {
            let key = (slot as u32).to_ne_bytes();
            if let Ok(Some(per_cpu)) = self.stats.lookup_percpu(&key, MapFlags::ANY) {
                *total = per_cpu
                    .iter()
                    .filter_map(|v| v.get(..8))
                    .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
                    .sum();
            }
        }
        out
    }
}

fn load_error(step: &str, e: libbpf_rs::Error) -> EbpfError {
    let text = format!("{e:#}");
    if e.kind() == libbpf_rs::ErrorKind::PermissionDenied || text.contains("Operation not permitted") {
        EbpfError::Privilege(format!("{step}: {text}"))
    } else {
        EbpfError::Load(format!("{step}: {text}"))
    }
}

fn map(object: &Object, name: &str) -> Result<MapHandle, EbpfError> {
    let found = object
        .maps()
        .find(|m| m.name() == name)
        .ok_or_else(|| EbpfError::Load(format!("the BPF object has no map {name}")))?;
    MapHandle::try_from(&found).map_err(|e| load_error(name, e))
}

fn put(map: &MapHandle, key: &[u8], value: &[u8]) -> Result<(), EbpfError> {
    map.update(key, value, MapFlags::ANY).map_err(|e| load_error("filling the filter maps", e))
}

/// `struct config` of tap.bpf.c: four flags, four u32 levels, the sample.
fn config_bytes(plan: &Plan) -> [u8; 24] {
    let mut levels: Vec<u32> = plan.cgroups.iter().map(|c| c.level).collect();
    levels.sort_unstable();
    levels.dedup();
    levels.truncate(4);
    let mut out = [0u8; 24];
    out[20..24].copy_from_slice(&plan.sample_basis_points.min(10_000).to_ne_bytes());
    out[0] = !plan.ports.is_empty() as u8;
    out[1] = !plan.unix_paths.is_empty() as u8;
    out[2] = plan.tls as u8;
    out[3] = levels.len() as u8;
    for (i, level) in levels.iter().enumerate() {
        out[4 + i * 4..8 + i * 4].copy_from_slice(&level.to_ne_bytes());
    }
    out
}

fn unix_key(path: &str) -> [u8; 108] {
    let mut key = [0u8; 108];
    let bytes = path.as_bytes();
    let n = bytes.len().min(107);
    key[..n].copy_from_slice(&bytes[..n]);
    key
}

fn fill_maps(object: &Object, plan: &Plan) -> Result<(), EbpfError> {
    put(&map(object, "cfg")?, &0u32.to_ne_bytes(), &config_bytes(plan))?;
    let tgids = map(object, "traced_tgids")?;
    for tgid in &plan.tgids {
        put(&tgids, &tgid.to_ne_bytes(), &[1])?;
    }
    let cgroups = map(object, "traced_cgroups")?;
    for cgroup in &plan.cgroups {
        put(&cgroups, &cgroup.id.to_ne_bytes(), &[1])?;
    }
    let ports = map(object, "ports")?;
    for port in &plan.ports {
        put(&ports, &port.to_ne_bytes(), &[1])?;
    }
    let paths = map(object, "unix_paths")?;
    for path in &plan.unix_paths {
        put(&paths, &unix_key(path), &[1])?;
    }
    Ok(())
}

/// The tracepoints (the uprobes are per process: `uprobes.rs`).
fn attach_all(object: &Object) -> Result<Vec<Link>, EbpfError> {
    let mut links = Vec::new();
    for prog in object.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        let tracepoint = match name.as_str() {
            // BTF tracepoints: libbpf finds the tracepoint from the section.
            "on_sys_enter" | "on_sys_exit" => {
                links.push(prog.attach_trace().map_err(|e| load_error(&name, e))?);
                continue;
            }
            "on_fork" => "sched_process_fork",
            "on_exit" => "sched_process_exit",
            _ => continue,
        };
        links.push(prog.attach_raw_tracepoint(tracepoint).map_err(|e| load_error(tracepoint, e))?);
    }
    Ok(links)
}

/// libbpf's own messages go to the log (debug), not to stderr: the
/// error that matters is ours, in one line.
fn libbpf_to_log(level: libbpf_rs::PrintLevel, message: String) {
    match level {
        libbpf_rs::PrintLevel::Warn => tracing::debug!(target: "libbpf", "{}", message.trim_end()),
        _ => tracing::trace!(target: "libbpf", "{}", message.trim_end()),
    }
}

/// Loads and attaches the program for `plan`.
pub fn load(plan: &Plan) -> Result<Loaded, EbpfError> {
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, libbpf_to_log)));
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(EbpfError::NoBtf);
    }
    let mut open = ObjectBuilder::default().open_memory(OBJECT).map_err(|e| load_error("opening the BPF object", e))?;
    // Without TLS the uprobe programs are not even loaded, so a kernel
    // without uprobe_multi still runs the plaintext source.
    if !plan.tls {
        for mut prog in open.progs_mut() {
            if prog.name().to_string_lossy().starts_with("ssl_") {
                prog.set_autoload(false);
            }
        }
    }
    for mut m in open.maps_mut() {
        if m.name() == "events" {
            m.set_max_entries(plan.ring_buffer_bytes).map_err(|e| load_error("sizing the ring buffer", e))?;
        }
    }
    let object = open.load().map_err(|e| load_error("loading the BPF program", e))?;
    fill_maps(&object, plan)?;
    let links = attach_all(&object)?;
    let ssl = if plan.tls { Some(SslProbes::default()) } else { None };
    let loaded = Loaded {
        ssl: std::cell::RefCell::new(ssl),
        traced_tgids: map(&object, "traced_tgids")?,
        events: map(&object, "events")?,
        stats: map(&object, "stats")?,
        config: std::cell::RefCell::new((map(&object, "cfg")?, plan.clone())),
        _links: links,
        _object: std::cell::RefCell::new(object),
    };
    loaded.refresh_uprobes(true)?;
    Ok(loaded)
}
