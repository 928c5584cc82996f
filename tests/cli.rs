//! Bad input at the command line: one clear line naming the file (and the
//! offset when known), exit code 2, and what was readable still processed.

use std::process::{Command, Output};

fn shadowtap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shadowtap")).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_missing_file_is_one_line_and_exit_2() {
    let out = shadowtap(&["pairs", "/nonexistent/capture.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "shadowtap: /nonexistent/capture.pcap: cannot read: No such file or directory (os error 2)"
    );
}

#[test]
fn a_file_that_is_not_a_capture_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.pcap");
    std::fs::write(&path, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let out = shadowtap(&["pairs", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("notes.pcap: not a pcap or pcapng capture"), "{err}");
}

#[test]
fn a_truncated_capture_still_yields_what_came_before_and_names_the_offset() {
    let whole = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/curl-get.pcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.pcap");
    std::fs::write(&path, &whole[..whole.len() * 2 / 3]).unwrap();
    let out = shadowtap(&["pairs", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let printed = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(printed >= 3, "exchanges before the cut must still be printed, got {printed}");
    let err = stderr(&out);
    let last = err.lines().last().unwrap();
    assert!(last.contains("cut.pcap: truncated capture at byte ") && last.contains("after "), "{last}");
}

#[test]
fn garbage_frames_are_skipped_and_counted_not_fatal() {
    // A valid pcap header (Ethernet) followed by records of random bytes.
    let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    let mut seed = 7u32;
    for i in 0..200u32 {
        let len = (i % 90) as usize;
        file.extend_from_slice(&i.to_le_bytes());
        file.extend_from_slice(&0u32.to_le_bytes());
        file.extend_from_slice(&(len as u32).to_le_bytes());
        file.extend_from_slice(&(len as u32).to_le_bytes());
        for _ in 0..len {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            file.push((seed >> 16) as u8);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.pcap");
    std::fs::write(&path, file).unwrap();
    let out = shadowtap(&["pairs", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("packets 200"), "{}", stderr(&out));
}

#[test]
fn bad_flags_exit_2() {
    assert_eq!(shadowtap(&["pairs", "--port", "http", "x.pcap"]).status.code(), Some(2));
    assert_eq!(shadowtap(&["no-such-command"]).status.code(), Some(2));
}

/// Every numeric flag and config value out of its range: one line naming
/// the flag (or the file's line and key), exit 2, no panic. Before, some
/// reached `Duration::from_secs_f64` or nanosecond arithmetic and panicked.
#[test]
fn numbers_out_of_range_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let window = config("window.toml", "[noise]\nrepeat_window_s = 10000000000\n");
    let late = config(
        "late.toml",
        "[candidate]\nurl = \"http://127.0.0.1:1\"\n[verdict]\nlate_start_ms = 18446744073709551615\n",
    );
    let queue = config("queue.toml", "[daemon]\n\nqueue = 0\n");
    let interval = config("interval.toml", "[output]\nreport_interval_s = 18446744073709551615\n");
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/demo.pcap");
    let replay = |extra: &[&str]| {
        let mut args = vec!["replay", demo, "--candidate", "http://127.0.0.1:1"];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--interface", "lo", "--candidate", "http://127.0.0.1:1"];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let own = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (replay(&["--rate", "1e-20"]), "--rate 1e-20: must be from 0.001"),
        (replay(&["--rate", "-5"]), "--rate -5.0: must be from 0.001"),
        (replay(&["--rate", "0"]), "--rate 0: must be above 0"),
        (replay(&["--pace", "nan"]), "--pace NaN: must be from 0.001"),
        (replay(&["--pace", "0"]), "--pace 0: must be a factor above 0"),
        (replay(&["--pace", "1e-300"]), "--pace 1e-300: must be from 0.001"),
        (replay(&["--pace", "inf"]), "--pace inf: must be from 0.001"),
        (replay(&["--concurrency", "100000000"]), "--concurrency 100000000: must be from 0 to 10000"),
        (replay(&["--concurrency", "-1"]), "'--concurrency <N>'"),
        (replay(&["--body-limit", "99999999999"]), "--body-limit 99999999999: must be from 0 to 1073741824"),
        (replay(&["--shards", "0"]), "'--shards <N>': 0 is not in 1..=256"),
        (replay(&["--shards", "100000"]), "'--shards <N>': 100000 is not in 1..=256"),
        (replay(&["--lanes", "0"]), "'--lanes <N>'"),
        (replay(&["--config", &window]), "window.toml:2: [noise] repeat_window_s = 10000000000: must be"),
        (
            replay(&["--config", &late]),
            "late.toml:4: [verdict] late_start_ms = 18446744073709551615: must be from 1 to 3600000",
        ),
        (own(&["pairs", demo, "--body-limit", "-1"]), "'--body-limit <BYTES>'"),
        (own(&["pairs", demo, "--port", "0"]), "--port 0: a server port is from 1 to 65535"),
        (own(&["pairs", demo, "--shards", "0"]), "'--shards <N>'"),
        (own(&["endpoints", demo, "--body-limit", "1e3"]), "'--body-limit <BYTES>'"),
        (run(&["--sample", "101"]), "--sample 101.0: must be from 0 to 100"),
        (run(&["--sample", "nan"]), "--sample NaN: must be from 0 to 100"),
        (run(&["--sample", "-0.5"]), "--sample -0.5: must be from 0 to 100"),
        (run(&["--config", &queue]), "queue.toml:3: [daemon] queue = 0: must be from 1"),
        (run(&["--config", &interval]), "interval.toml:2: [output] report_interval_s = 18446744073709551615"),
        (own(&["record", "--source", "ebpf", "--pid", "1", "--out", "x.pcapng", "--duration", "1e300"]), "--duration"),
        (own(&["record", "--source", "ebpf", "--pid", "1", "--out", "x.pcapng", "--duration", "-1"]), "--duration"),
        (own(&["record", "--source", "ebpf", "--pid", "0", "--out", "x.pcapng"]), "--pid 0: a process id"),
        (own(&["verdict", "--prometheus", "http://127.0.0.1:1", "--window", "99999999999999999999d"]), "not a window"),
        (own(&["demo", "--requests", "0"]), "'--requests <REQUESTS>'"),
    ];
    for (args, want) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_shadowtap")).args(&args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
    }
}

/// `run` whose candidate or secondary is the tapped service itself (its
/// `--port` on this host) refuses to start: one line naming the URL, exit 2.
/// A guard that let it through would start capturing: the wait is bounded.
#[test]
fn a_candidate_or_secondary_that_is_the_tapped_service_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("shadowtap.toml");
    let port = "18399";
    let cases = [
        ("", vec!["--candidate", "http://127.0.0.1:18399/"], "candidate http://127.0.0.1:18399/ is the tapped service"),
        ("", vec!["--candidate", "http://localhost:18399"], "candidate http://localhost:18399 is the tapped service"),
        (
            "[legacy]\nsecondary = \"http://127.0.0.1:18399\"\n",
            vec!["--candidate", "http://127.0.0.1:18400"],
            "[legacy] secondary http://127.0.0.1:18399 is the tapped service",
        ),
    ];
    for (file, flags, reason) in cases {
        std::fs::write(&config, file).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_shadowtap"))
            .args(["run", "--config", config.to_str().unwrap(), "--interface", "lo", "--port", port])
            .args(&flags)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                panic!("{flags:?}: run started instead of refusing");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(&format!("shadowtap: {reason}")), "{err}");
    }
}
