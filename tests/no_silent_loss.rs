//! Nothing is dropped without being counted: requests that carry the
//! replay marker (our own replays captured again: a loop) are counted in
//! the report, and compressed captures (`.pcap.gz`, `.pcapng.gz`) read
//! exactly as their uncompressed originals, a truncated one being a
//! one-line error. (The live side, a loop through a forwarding candidate,
//! unwritable outcome lines and a dead dispatcher: `live_health.rs`.)

use std::path::Path;
use std::process::{Command, Output};

fn shadowtap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shadowtap")).args(args).output().unwrap()
}

fn demo_pcap() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/demo.pcap")
}

fn lines_of(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The marker header is configurable; naming one that the 30 POSTs of the
/// demo capture carry (Content-Length) makes them look like our replays:
/// each is counted as a loop in the report's totals and the table, none is
/// replayed, and every other exchange has its outcome.
#[test]
fn requests_carrying_the_marker_are_counted_as_loops_not_dropped_silently() {
    let dir = tempfile::tempdir().unwrap();
    let (config, out, report) =
        (dir.path().join("c.toml"), dir.path().join("out.jsonl"), dir.path().join("report.json"));
    std::fs::write(&config, "[candidate]\nmarker_header = \"Content-Length\"\ntimeout_ms = 2000\n").unwrap();
    let pairs = shadowtap(&["pairs", demo_pcap()]);
    let carrying = String::from_utf8_lossy(&pairs.stdout)
        .lines()
        .filter(|l| l.contains("[\"content-length\",") && l.find("[\"content-length\",") < l.find("\"response\""))
        .count();
    assert_eq!(carrying, 30, "the demo capture's POSTs carry a body");
    let run = shadowtap(&[
        "replay",
        demo_pcap(),
        "--candidate",
        "http://127.0.0.1:1",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let lines = lines_of(&out);
    assert_eq!(lines.len(), 300 - carrying, "every exchange but the loops has an outcome");
    assert!(lines.iter().all(|l| l["method"] != "POST"), "no loop was replayed");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["totals"]["replay_loops"], carrying as u64, "{}", report["totals"]);
    assert!(stdout.contains(&format!("captured again: a loop), not replayed: {carrying}")), "{stdout}");
    // Merged reports add the loops up.
    let merged = dir.path().join("merged.json");
    let report_path = dir.path().join("report.json");
    let merge = shadowtap(&[
        "report",
        report_path.to_str().unwrap(),
        report_path.to_str().unwrap(),
        "--json",
        merged.to_str().unwrap(),
    ]);
    assert!(merge.status.success(), "{}", String::from_utf8_lossy(&merge.stderr));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(json["totals"]["replay_loops"], 2 * carrying as u64, "{}", json["totals"]);
}

#[path = "common/needs.rs"]
mod needs;

fn gzip(from: &Path, to: &Path) {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(std::fs::File::create(to).unwrap(), flate2::Compression::default());
    encoder.write_all(&std::fs::read(from).unwrap()).unwrap();
    encoder.finish().unwrap();
}

/// `pairs FILE`: (exit code, stdout, stderr).
fn pairs(file: &Path) -> (Option<i32>, String, String) {
    let out = shadowtap(&["pairs", file.to_str().unwrap()]);
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A compressed capture prints exactly what its original prints (the
/// exchanges and the summary), and the original is the golden output.
fn assert_reads_as_original(original: &Path, compressed: &Path, golden: &str) {
    let (code, exchanges, summary) = pairs(original);
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(exchanges, golden, "{} against the golden demo.jsonl", original.display());
    let (gz_code, gz_exchanges, gz_summary) = pairs(compressed);
    assert_eq!(gz_code, Some(0), "{gz_summary}");
    assert!(gz_exchanges == exchanges, "{} prints other exchanges than {}", compressed.display(), original.display());
    assert_eq!(gz_summary, summary);
}

#[test]
fn a_pcap_gz_reads_as_the_pcap() {
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("demo.pcap.gz");
    gzip(Path::new(demo_pcap()), &gz);
    let golden = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/demo.jsonl")).unwrap();
    assert_reads_as_original(Path::new(demo_pcap()), &gz, &golden);
}

/// The demo capture as pcapng (editcap -F pcapng: section header,
/// interface description, enhanced packet blocks), then gzipped.
#[test]
fn a_pcapng_gz_reads_as_the_pcapng() {
    let Some(editcap) = needs::met("no_silent_loss::a_pcapng_gz_reads_as_the_pcapng", needs::program("editcap")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (pcapng, gz) = (dir.path().join("demo.pcapng"), dir.path().join("demo.pcapng.gz"));
    let made = Command::new(editcap).args(["-F", "pcapng", demo_pcap(), pcapng.to_str().unwrap()]).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert_eq!(&std::fs::read(&pcapng).unwrap()[..4], &[0x0a, 0x0d, 0x0d, 0x0a], "a pcapng section header");
    gzip(&pcapng, &gz);
    let golden = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/demo.jsonl")).unwrap();
    assert_reads_as_original(&pcapng, &gz, &golden);
}

/// A `.gz` cut short: what came before the cut is printed, then one error
/// line naming the file, exit 2; cut inside the gzip header: that line only.
#[test]
fn a_truncated_gz_is_one_error_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("demo.pcap.gz");
    gzip(Path::new(demo_pcap()), &gz);
    let bytes = std::fs::read(&gz).unwrap();
    for (name, keep) in [("half.pcap.gz", bytes.len() / 2), ("header.pcap.gz", 5), ("tiny.pcap.gz", 20)] {
        let cut = dir.path().join(name);
        std::fs::write(&cut, &bytes[..keep]).unwrap();
        let (code, exchanges, stderr) = pairs(&cut);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("shadowtap: ")).collect();
        assert_eq!(errors.len(), 1, "{name}: {stderr}");
        assert!(errors[0].contains(name), "{name}: {stderr}");
        assert!(stderr.lines().last() == Some(errors[0]), "{name}: the error comes last: {stderr}");
        if keep == bytes.len() / 2 {
            assert!(errors[0].contains("truncated capture at byte"), "{stderr}");
            assert!(exchanges.lines().count() > 50, "what came before the cut is printed");
        } else {
            assert_eq!(stderr.lines().count(), 1, "{name}: nothing readable, one line: {stderr}");
        }
    }
}
