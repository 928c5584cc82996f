//! Unit tests of `config.rs`.

use super::*;

#[test]
fn errors_name_the_line() {
    let err = Config::parse("[candidate]\nurl = \"http://x\"\ntimeout_ms = \"soon\"\n", "c.toml").unwrap_err();
    assert!(err.to_string().starts_with("c.toml:3: "), "{err}");
    let err = Config::parse("[candidate]\nnope = 1\n", "c.toml").unwrap_err();
    assert!(err.to_string().starts_with("c.toml:2: "), "{err}");
    let err = Config::parse("[[endpoints]]\ntemplate = \"users\"\n", "c.toml").unwrap_err();
    assert!(err.to_string().starts_with("c.toml:2: bad endpoint template"), "{err}");
    let err = Config::parse("[candidate]\nurl = \"https://x\"\nca_file = 3\n", "c.toml").unwrap_err();
    assert!(err.to_string().starts_with("c.toml:3: invalid type"), "{err}");
}

/// The commented default config shipped for the systemd unit loads,
/// and so does every key in it once uncommented.
#[test]
fn the_shipped_default_config_loads_with_every_key() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/shadowtap.toml");
    let shipped = Config::load(Path::new(path)).unwrap();
    assert_eq!(shipped.capture.ports, vec![80]);
    let text = std::fs::read_to_string(path).unwrap();
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with('[') || rest.contains(" = ") && !rest.starts_with(' ') => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let every = Config::parse(&uncommented, "uncommented").unwrap();
    assert!(every.legacy.secondary.is_some() && every.verdict.min_compared == 100, "{uncommented}");
    assert!(shipped.naming.learn && every.naming.settle_exchanges == 1000, "{uncommented}");
    assert!(shipped.candidate.ca_file.is_none() && every.candidate.ca_file.is_some(), "{uncommented}");
    assert!(shipped.ebpf.record.is_none() && every.ebpf.record.is_some(), "{uncommented}");
    // [ebpf]: documented with the defaults the code has, and every key valid.
    assert_eq!(shipped.ebpf, crate::ebpf::EbpfConfig::default(), "{uncommented}");
    assert!(every.ebpf.pids == [1234] && every.ebpf.units.len() == 1 && every.ebpf.unix.len() == 1, "{uncommented}");
    assert_eq!(
        (every.capture.source.as_str(), every.ebpf.tls.as_str(), every.ebpf.ring_buffer_mb),
        ("pcap", "auto", 64)
    );
    every.ebpf.check().unwrap();
    let waiting = |c: &Config| (c.capture.max_waiting_per_connection, c.capture.max_waiting_mb);
    assert_eq!(waiting(&every), waiting(&Config::default()), "documented with the defaults the code has");
}

#[test]
fn included_endpoint_files_add_templates_after_the_own_ones() {
    let dir = tempfile::tempdir().unwrap();
    let learned = "[[endpoints]]\ntemplate = \"GET /user/{name}/about.json\"\n";
    std::fs::write(dir.path().join("learned.toml"), learned).unwrap();
    std::fs::write(dir.path().join("bad.toml"), "[candidate]\nurl = \"http://x\"\n").unwrap();
    let main = dir.path().join("main.toml");
    let own = "[naming]\ninclude = [\"learned.toml\"]\n[[endpoints]]\ntemplate = \"GET /a/{id}\"\n";
    std::fs::write(&main, own).unwrap();
    let c = Config::load(&main).unwrap();
    let texts: Vec<String> = c.templates().into_iter().map(|t| t.text).collect();
    assert_eq!(texts, vec!["GET /a/{id}", "GET /user/{name}/about.json"]);
    std::fs::write(&main, "[naming]\ninclude = [\"bad.toml\"]\n").unwrap();
    let err = Config::load(&main).unwrap_err().to_string();
    assert!(err.contains("bad.toml:1: only [[endpoints]]"), "{err}");
}

#[test]
fn endpoint_rules_add_to_global_rules() {
    let c = Config::parse(
        "[compare]\nignore_paths=[\"/a\"]\n[[endpoints]]\ntemplate=\"GET /u/{id}\"\nignore_paths=[\"/b\"]\n",
        "c",
    )
    .unwrap();
    assert_eq!(c.rules_for("GET /u/{id}").ignore_paths, vec!["/a", "/b"]);
    assert_eq!(c.rules_for("GET /other").ignore_paths, vec!["/a"]);
}
