//! `shadowtap report --html`: the demo capture (pcaps/demo.pcap) replayed
//! to the demo's candidate on loopback (planted diffs, a 500, a slow
//! endpoint), the page written from the report and the outcome lines, then
//! opened in headless Chromium (Debian's `chromium`, installed by .ci/run)
//! with every host name unresolvable and a proxy that goes nowhere. What
//! must hold, in the DOM Chromium rendered: the not-ready endpoints and
//! their why in the summary, one latency plot per endpoint, the differing
//! value of an example highlighted; Chromium's own network log shows no
//! http(s) request; its screenshot is not blank; secrets are redacted.

#[path = "common/demo_service.rs"]
mod demo_service;
#[path = "common/needs.rs"]
mod needs;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use shadowtap::demo::Flavor;

const BIN: &str = env!("CARGO_BIN_EXE_shadowtap");
const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/demo.pcap");

/// Runs chromium headless on `page` with `args`, no network: every name
/// unresolvable, every connection through a proxy that does not exist.
/// Returns stdout. Killed after a minute.
fn chromium(chromium: &Path, profile: &Path, page: &Path, args: &[String]) -> String {
    let mut child = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg("--host-resolver-rules=MAP * ~NOTFOUND")
        .arg("--proxy-server=127.0.0.1:9")
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("chromium did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

/// Pixels of an 8-bit RGB or RGBA PNG (what Chromium writes), unfiltered.
fn png_pixels(png: &[u8]) -> (usize, Vec<Vec<u8>>) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let (mut at, mut width, mut channels, mut idat) = (8, 0, 0, Vec::new());
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let (kind, data) = (&png[at + 4..at + 8], &png[at + 8..at + 8 + len]);
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
                assert_eq!(data[8], 8, "8-bit");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..]).read_to_end(&mut raw).unwrap();
    let stride = width * channels;
    let mut rows: Vec<Vec<u8>> = Vec::new();
    for line in raw.chunks(stride + 1) {
        let (filter, data) = (line[0], &line[1..]);
        let up = rows.last().cloned().unwrap_or_else(|| vec![0; stride]);
        let mut row = vec![0u8; stride];
        for i in 0..stride {
            let a = if i >= channels { row[i - channels] } else { 0 };
            let (b, c) = (up[i], if i >= channels { up[i - channels] } else { 0 });
            let predictor = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = ((p - i16::from(a)).abs(), (p - i16::from(b)).abs(), (p - i16::from(c)).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("filter {other}"),
            };
            row[i] = data[i].wrapping_add(predictor);
        }
        rows.push(row);
    }
    (channels, rows)
}

fn replay(dir: &Path, candidate: &str) -> (PathBuf, PathBuf) {
    let (out, report) = (dir.join("outcomes.jsonl"), dir.join("report.json"));
    let config = dir.join("shadowtap.toml");
    std::fs::write(&config, "[verdict]\nmin_compared = 10\n[latency]\np99_margin_ms = 30\n").unwrap();
    let run = Command::new(BIN)
        .args(["replay", DEMO, "--candidate", candidate, "--config", config.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap(), "--report", report.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "replay: {}", String::from_utf8_lossy(&run.stderr));
    (out, report)
}

/// `shadowtap report REPORT --outcomes OUTCOMES --html PAGE`, which must
/// succeed; the page's text.
fn render_html(report: &Path, outcomes: &Path, page: &Path) -> String {
    let run = Command::new(BIN)
        .arg("report")
        .arg(report)
        .args(["--outcomes", outcomes.to_str().unwrap(), "--html", page.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "report: {}", String::from_utf8_lossy(&run.stderr));
    std::fs::read_to_string(page).unwrap()
}

#[test]
fn the_html_report_renders_offline_in_chromium_with_summary_plots_and_examples() {
    let Some(browser) = needs::met("html report in chromium", needs::program("chromium")) else { return };
    let dir = tempfile::tempdir().unwrap();
    let candidate = format!("http://{}", demo_service::service(Flavor::Candidate));
    let (outcomes, report_path) = replay(dir.path(), &candidate);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let page = dir.path().join("report.html");
    let html = render_html(&report_path, &outcomes, &page);
    // Nothing to load: no remote src, href, import or url() in the file.
    for needle in ["src=\"http", "href=\"http", "url(http", "@import", "src='http", "href='http"] {
        assert!(!html.contains(needle), "the page loads {needle}");
    }

    let profile = dir.path().join("profile");
    let net_log = dir.path().join("net-log.json");
    let dom = chromium(
        Path::new(&browser),
        &profile,
        &page,
        &["--dump-dom".into(), "--virtual-time-budget=2000".into(), format!("--log-net-log={}", net_log.display())],
    );
    assert!(dom.contains("id=\"summary\""), "chromium rendered the page: {}", &dom[..dom.len().min(500)]);
    let summary = &dom[dom.find("id=\"summary\"").unwrap()..dom.find("id=\"endpoints\"").unwrap()];
    let endpoints = report["endpoints"].as_array().unwrap();
    let not_ready: Vec<&Value> = endpoints.iter().filter(|e| e["ready"] == false).collect();
    assert!(!not_ready.is_empty(), "the demo has regressions");
    for e in &not_ready {
        let why = dom_text(e["why"].as_str().unwrap());
        assert!(summary.contains(&why), "the summary says why {} is not ready: {why}", e["endpoint"]);
    }
    // Not-ready endpoints come first in the summary.
    let first = &not_ready[0]["endpoint"].as_str().unwrap();
    let ready_at = summary.find("class=\"endpoint ready\"").unwrap_or(summary.len());
    assert!(summary.find(&html_escape(first)).unwrap() < ready_at);
    assert_eq!(dom.matches("class=\"latency-plot\"").count(), endpoints.len(), "one plot per endpoint");
    for e in endpoints.iter().filter(|e| !e["candidate_p50_us"].is_null()) {
        let name = html_escape(e["endpoint"].as_str().unwrap());
        let plot = &dom[dom.find(&format!("data-endpoint=\"{name}\"")).unwrap()..];
        let plot = &plot[..plot.find("</svg>").unwrap()];
        assert_eq!(plot.matches("<polyline").count(), 2, "{name}: recorded and candidate drawn");
    }
    // An example's differing value is highlighted: the first diff line's.
    let lines: Vec<Value> =
        std::fs::read_to_string(&outcomes).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let differing: Vec<String> = lines
        .iter()
        .filter(|l| l["outcome"] == "diff")
        .flat_map(|l| l["differences"].as_array().unwrap().iter().map(|d| dom_text(&d["candidate"].to_string())))
        .collect();
    assert!(!differing.is_empty());
    assert!(
        differing.iter().any(|v| dom.contains(&format!("<mark class=\"differing\">{v}</mark>"))),
        "no differing value highlighted"
    );
    // The sort script ran without breaking the table: every row is there.
    assert_eq!(dom.matches("<tr><td><a href=\"#ep-").count(), endpoints.len());

    // Chromium's network log: the page requested no http(s) URL. A
    // control page with one remote image shows the log catches such a
    // request on this Chromium.
    assert_eq!(page_requests(&net_log), Vec::<String>::new(), "the report page made network requests");
    let control = dir.path().join("control.html");
    std::fs::write(&control, "<html><body><img src=\"http://cdn.invalid/x.png\">control</body></html>").unwrap();
    let control_log = dir.path().join("control-net-log.json");
    chromium(
        Path::new(&browser),
        &profile,
        &control,
        &["--dump-dom".into(), "--virtual-time-budget=2000".into(), format!("--log-net-log={}", control_log.display())],
    );
    assert_eq!(page_requests(&control_log), vec!["http://cdn.invalid/x.png".to_string()], "the control is caught");

    // A screenshot that is not blank: several colours, a real share of
    // pixels away from the background.
    let shot = dir.path().join("shot.png");
    chromium(
        Path::new(&browser),
        &profile,
        &page,
        &[format!("--screenshot={}", shot.display()), "--window-size=1200,1600".into()],
    );
    if let Some(keep) = std::env::var_os("SHADOWTAP_KEEP_HTML") {
        // For a person to look at: the page and what Chromium drew.
        std::fs::copy(&page, Path::new(&keep).join("report.html")).unwrap();
        std::fs::copy(&shot, Path::new(&keep).join("report.png")).unwrap();
    }
    let (channels, rows) = png_pixels(&std::fs::read(&shot).unwrap());
    let background = rows[0][..3].to_vec();
    let pixels: Vec<&[u8]> = rows.iter().flat_map(|r| r.chunks(channels)).collect();
    let inked = pixels.iter().filter(|p| p[..3] != background[..]).count();
    let colours: std::collections::HashSet<&[u8]> = pixels.iter().map(|p| &p[..3]).collect();
    assert!(
        colours.len() > 10 && inked * 100 > pixels.len(),
        "blank screenshot: {} colours, {inked} inked",
        colours.len()
    );
}

#[test]
fn secrets_in_differences_are_redacted_in_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let candidate = format!("http://{}", demo_service::service(Flavor::Candidate));
    let (outcomes, report_path) = replay(dir.path(), &candidate);
    // A Set-Cookie that differs, on an endpoint's top fields and in an
    // outcome line: both values are secrets.
    let mut report: Value = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let endpoint = report["endpoints"][0]["endpoint"].as_str().unwrap().to_string();
    report["endpoints"][0]["field_counts"]
        .as_array_mut()
        .unwrap()
        .insert(0, serde_json::json!({"path": "header:set-cookie", "count": 1_000_000}));
    std::fs::write(&report_path, report.to_string()).unwrap();
    let secret_line = serde_json::json!({
        "ts": "2026-11-25T21:59:28.000001Z", "method": "GET", "uri": "/login", "endpoint": endpoint, "outcome": "diff",
        "differences": [{"path": "header:set-cookie", "kind": "changed", "recorded": "sid=legacy-s3cret", "candidate": "sid=cand-s3cret"}],
        "explained": [], "recorded_status": 200, "candidate_status": 200,
    });
    let mut text = std::fs::read_to_string(&outcomes).unwrap();
    text += &format!("{secret_line}\n");
    std::fs::write(&outcomes, text).unwrap();
    let page = dir.path().join("report.html");
    let html = render_html(&report_path, &outcomes, &page);
    assert!(html.contains("header:set-cookie"), "the example is shown");
    assert!(!html.contains("s3cret"), "a secret reached the page");
    assert!(html.contains("[redacted:"), "shown as a keyed hash");
}

/// The http(s) URLs a page opened from a file asked for, from Chromium's
/// net log: requests whose network isolation key is the file's site.
/// (Chromium's own background requests, to its update and account
/// services, have other keys; they fail here anyway: no name resolves.)
fn page_requests(net_log: &Path) -> Vec<String> {
    let log: Value = serde_json::from_str(&std::fs::read_to_string(net_log).unwrap()).unwrap();
    let events = log["events"].as_array().expect("a net log with events");
    let mut urls: Vec<String> = events
        .iter()
        .map(|e| &e["params"])
        .filter(|p| p["network_isolation_key"].as_str().is_some_and(|k| k.contains("file://")))
        .filter_map(|p| p["url"].as_str())
        .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
        .map(str::to_string)
        .collect();
    urls.dedup();
    urls
}

fn html_escape(text: &str) -> String {
    shadowtap::html::escape(text)
}

/// Text as Chromium serialises a text node: only `&`, `<`, `>` escaped.
fn dom_text(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
