//! What the daemon runs with: the configuration (file, then flags on top,
//! see [`crate::topology::flags`]), checked for what the daemon cannot run
//! without. Read at start and again on SIGHUP.

use std::path::Path;

use anyhow::bail;

use crate::replay::config::Config;
use crate::topology::Flags;

pub const DEFAULT_CONFIG: &str = "/etc/shadowtap/shadowtap.toml";

/// The configuration in force: the file (given, or the default path when
/// it exists), then the flags. Checked for what the daemon cannot run without.
pub fn load_config(flags: &Flags) -> anyhow::Result<Config> {
    let config = flags.load(Some(Path::new(DEFAULT_CONFIG)))?;
    match config.capture.source.as_str() {
        "pcap" if config.capture.interface.is_none() => {
            bail!("no interface: give --interface IF or [capture] interface in the config")
        }
        "pcap" if config.ebpf.record.is_some() => {
            bail!("--record needs --source ebpf (with pcap, use tcpdump -w FILE)")
        }
        "pcap" => {}
        "ebpf" => config.ebpf.check().map_err(anyhow::Error::msg)?,
        other => bail!("--source {other:?}: must be pcap or ebpf"),
    }
    if config.candidate.url.is_none() {
        bail!("no candidate: give --candidate URL or [candidate] url in the config");
    }
    super::loop_guard::refuse_loops(&config).map_err(anyhow::Error::msg)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_missing_essentials_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[capture]\ninterface = \"eth9\"\nports = [80]\n[candidate]\nurl = \"http://a:1\"\n")
            .unwrap();
        let o = Flags { config: Some(path.clone()), interface: Some("lo".into()), ..Default::default() };
        let c = load_config(&o).unwrap();
        assert_eq!(c.capture.interface.as_deref(), Some("lo"));
        assert_eq!(c.capture.ports, vec![80]);
        std::fs::write(&path, "[capture]\ninterface = \"eth9\"\n").unwrap();
        let err = load_config(&Flags { config: Some(path), ..Default::default() }).unwrap_err();
        assert!(err.to_string().starts_with("no candidate"), "{err}");
    }
}
