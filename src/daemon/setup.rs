//! What the daemon runs with: the configuration (file, then flags on top),
//! the BPF filter made from it, and the replayer and schedule it implies.
//! Read at start and again on SIGHUP.

use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::replay::config::Config;
use crate::replay::{Replayer, Schedule};
use crate::report::LatencyMargin;

pub const DEFAULT_CONFIG: &str = "/etc/shadowtap/shadowtap.toml";

/// Command-line values; each one given overrides the config file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub interface: Option<String>,
    pub ports: Vec<u16>,
    pub filter: Option<String>,
    pub candidate: Option<String>,
    pub out: Option<PathBuf>,
    pub report: Option<PathBuf>,
    pub metrics: Option<String>,
    pub sample: Option<f64>,
    pub secondary: Option<String>,
    pub primary: Option<String>,
    pub allow_writes: Vec<String>,
}

/// The configuration in force: the file (given, or the default path when
/// it exists), then the flags. Checked for what the daemon cannot run without.
pub fn load_config(o: &Overrides) -> anyhow::Result<Config> {
    let path = o.config.clone().or_else(|| Path::new(DEFAULT_CONFIG).exists().then(|| DEFAULT_CONFIG.into()));
    let mut config = match &path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let c = &mut config;
    if let Some(v) = &o.interface {
        c.capture.interface = Some(v.clone());
    }
    if !o.ports.is_empty() {
        c.capture.ports = o.ports.clone();
    }
    if let Some(v) = &o.filter {
        c.capture.filter = v.clone();
    }
    if let Some(v) = &o.candidate {
        c.candidate.url = Some(v.clone());
    }
    if let Some(v) = &o.out {
        c.output.out = Some(v.clone());
    }
    if let Some(v) = &o.report {
        c.output.report = Some(v.clone());
    }
    if let Some(v) = &o.metrics {
        c.metrics.listen = Some(v.clone());
    }
    if let Some(v) = o.sample {
        c.capture.sample_percent = v;
    }
    if o.secondary.is_some() {
        c.legacy.secondary = o.secondary.clone();
    }
    if o.primary.is_some() {
        c.legacy.primary = o.primary.clone();
    }
    crate::replay::endpoint::check_templates(&o.allow_writes).map_err(anyhow::Error::msg)?;
    c.replay.allow_writes.extend(o.allow_writes.iter().cloned());
    if c.capture.interface.is_none() {
        bail!("no interface: give --interface IF or [capture] interface in the config");
    }
    if c.candidate.url.is_none() {
        bail!("no candidate: give --candidate URL or [candidate] url in the config");
    }
    if !(0.0..=100.0).contains(&c.capture.sample_percent) {
        bail!("--sample must be a percentage from 0 to 100, not {}", c.capture.sample_percent);
    }
    Ok(config)
}

/// The BPF filter: as given, or built from the ports; in both cases minus
/// the candidate's own address and port, so that our replays are never
/// captured and replayed again (the marker header catches what this misses).
pub fn capture_filter(config: &Config) -> String {
    let base = if !config.capture.filter.trim().is_empty() {
        config.capture.filter.trim().to_string()
    } else if config.capture.ports.is_empty() {
        "tcp".to_string()
    } else {
        let ports: Vec<String> = config.capture.ports.iter().map(|p| format!("port {p}")).collect();
        format!("tcp and ({})", ports.join(" or "))
    };
    let exclusions: Vec<String> = candidate_addresses(config)
        .into_iter()
        .map(|addr| format!("not (host {} and tcp port {})", addr.ip(), addr.port()))
        .collect();
    if exclusions.is_empty() { base } else { format!("({base}) and {}", exclusions.join(" and ")) }
}

fn candidate_addresses(config: &Config) -> Vec<std::net::SocketAddr> {
    let Some(url) = &config.candidate.url else { return Vec::new() };
    let Ok(uri) = url.parse::<hyper::http::Uri>() else { return Vec::new() };
    let Some(host) = uri.host() else { return Vec::new() };
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut addrs: Vec<_> = (host, port).to_socket_addrs().map(|a| a.collect()).unwrap_or_default();
    addrs.sort();
    addrs.dedup();
    addrs
}

pub(super) fn margin_of(config: &Config) -> LatencyMargin {
    LatencyMargin { percent: config.latency.p99_margin_percent, ms: config.latency.p99_margin_ms }
}

pub(super) fn schedule_of(config: &Config) -> Schedule {
    Schedule { concurrency: config.candidate.concurrency, rate: config.candidate.rate, pace: 0.0, lanes: 0 }
}

pub(super) fn replayer_of(config: &Config) -> anyhow::Result<Replayer> {
    let url = config.candidate.url.clone().unwrap_or_default();
    Ok(Replayer::new(config.clone(), &url)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(candidate: &str, ports: &[u16], filter: &str) -> Config {
        let mut c = Config::default();
        c.candidate.url = Some(candidate.into());
        c.capture.ports = ports.to_vec();
        c.capture.filter = filter.into();
        c
    }

    #[test]
    fn the_filter_is_built_from_ports_and_excludes_the_candidate() {
        let c = config_with("http://127.0.0.1:8080", &[80, 8080], "");
        assert_eq!(capture_filter(&c), "(tcp and (port 80 or port 8080)) and not (host 127.0.0.1 and tcp port 8080)");
        let c = config_with("http://127.0.0.2:9000/base", &[], "tcp port 80");
        assert_eq!(capture_filter(&c), "(tcp port 80) and not (host 127.0.0.2 and tcp port 9000)");
    }

    #[test]
    fn flags_override_the_file_and_missing_essentials_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[capture]\ninterface = \"eth9\"\nports = [80]\n[candidate]\nurl = \"http://a:1\"\n")
            .unwrap();
        let o = Overrides { config: Some(path.clone()), interface: Some("lo".into()), ..Default::default() };
        let c = load_config(&o).unwrap();
        assert_eq!(c.capture.interface.as_deref(), Some("lo"));
        assert_eq!(c.capture.ports, vec![80]);
        std::fs::write(&path, "[capture]\ninterface = \"eth9\"\n").unwrap();
        let err = load_config(&Overrides { config: Some(path), ..Default::default() }).unwrap_err();
        assert!(err.to_string().starts_with("no candidate"), "{err}");
    }
}
