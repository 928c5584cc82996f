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
    let waiting =
        |c: &Config| (c.capture.max_waiting_per_connection, c.capture.max_waiting_mb, c.capture.max_reading_mb);
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

/// Every numeric key out of range is refused by `parse`, naming the file's
/// line and the key; the values at the bounds still load.
#[test]
fn numbers_out_of_range_name_the_key_and_its_line() {
    let bad = [
        ("candidate", "timeout_ms = 0"),
        ("candidate", "concurrency = 1000000"),
        ("candidate", "rate = 1e-20"),
        ("candidate", "rate = -1.0"),
        ("candidate", "rate = nan"),
        ("candidate", "pace = inf"),
        ("candidate", "pace = 1e-300"),
        ("replay", "generated_time_tolerance_ms = 18446744073709551615"),
        ("latency", "p99_margin_percent = -5.0"),
        ("latency", "p99_margin_ms = nan"),
        ("naming", "settle_s = 18446744073709551615"),
        ("naming", "settle_exchanges = 18446744073709551615"),
        ("noise", "repeat_window_s = 10000000000"),
        ("noise", "relative_percent = nan"),
        ("noise", "absolute_percent = 101.0"),
        ("noise", "min_samples = 0"),
        ("noise", "warmup_samples = 18446744073709551615"),
        ("noise", "warmup_max_s = 18446744073709551615"),
        ("verdict", "min_compared = 0"),
        ("verdict", "max_load_ratio = nan"),
        ("verdict", "max_load_ratio = 0.5"),
        ("verdict", "late_start_ms = 18446744073709551615"),
        ("verdict", "late_start_ms = 0"),
        ("verdict", "max_late_percent = -1.0"),
        ("verdict", "max_lost_percent = inf"),
        ("capture", "ports = [80, 0]"),
        ("capture", "snaplen = -1"),
        ("capture", "buffer_mb = 0"),
        ("capture", "sample_percent = 100.5"),
        ("capture", "body_limit = 18446744073709551615"),
        ("capture", "max_flows = 0"),
        ("capture", "idle_timeout_s = 18446744073709551615"),
        ("capture", "max_flow_buffer_kb = 18446744073709551615"),
        ("capture", "max_buffer_mb = 18446744073709551615"),
        ("capture", "reorder_window_ms = 18446744073709551615"),
        ("capture", "max_reading_mb = 0"),
        ("capture", "max_reading_mb = 18446744073709551615"),
        ("output", "report_interval_s = 0"),
        ("output", "report_interval_s = 18446744073709551615"),
        ("output", "max_endpoints = 0"),
        ("output", "max_endpoints = 18446744073709551615"),
        ("output", "max_fields = 3"),
        ("output", "max_fields = 18446744073709551615"),
        ("replay", "max_mapped_values = 0"),
        ("replay", "max_mapped_values = 18446744073709551615"),
        ("daemon", "queue = 0"),
        ("daemon", "queue = 18446744073709551615"),
        ("daemon", "drain_timeout_s = 18446744073709551615"),
        ("ebpf", "ring_buffer_mb = 3"),
        ("ebpf", "pids = [0]"),
    ];
    for (section, line) in bad {
        let text = format!("# a comment\n[{section}]\n{line}\n");
        let err = Config::parse(&text, "c.toml").expect_err(&text).to_string();
        let key = line.split(' ').next().unwrap();
        assert!(err.starts_with(&format!("c.toml:3: [{section}] {key} = ")), "{text}: {err}");
        assert!(err.contains("must be") || err.contains(" is from "), "{text}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let at_the_bounds = "[candidate]\nrate = 0.001\npace = 1000.0\nconcurrency = 10000\ntimeout_ms = 1\n\
                         [verdict]\nmin_compared = 1\nmax_load_ratio = 1.0\n[capture]\nbody_limit = 0\n\
                         sample_percent = 0.0\nreorder_window_ms = 0\n[noise]\nwarmup_samples = 0\n\
                         [output]\nmax_endpoints = 4\nmax_fields = 4\n[replay]\nmax_mapped_values = 1\n";
    Config::parse(at_the_bounds, "c.toml").unwrap();
}

/// The zero meaning "no limit" stays valid in the file, and a dotted key
/// at the top is found on its line too.
#[test]
fn zero_rate_and_pace_are_the_defaults_and_dotted_keys_name_their_line() {
    let c = Config::parse("[candidate]\nrate = 0.0\npace = 0.0\n", "c.toml").unwrap();
    assert_eq!((c.candidate.rate, c.candidate.pace), (0.0, 0.0));
    let err = Config::parse("\n\ncandidate.pace = -2.0\n", "c.toml").unwrap_err().to_string();
    assert!(err.starts_with("c.toml:3: [candidate] pace = -2.0: must be from 0.001 to 1000"), "{err}");
}
