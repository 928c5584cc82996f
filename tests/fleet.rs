//! The fleet verdict (`shadowtap verdict --prometheus`): three `shadowtap
//! run` taps on `lo`, each in front of one of three instances of a legacy
//! service, replaying to one candidate with two planted regressions (a
//! changed field on `/b`, 30 ms more on `/slow`), scraped every second by
//! a real Prometheus. Each tap sees 40 exchanges per endpoint, fewer than
//! the 100 compared a verdict needs: only the fleet's sums make `/a`
//! ready. The fleet verdict must say what the merged report of the three
//! taps says, endpoint by endpoint, and fail as it fails.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

#[path = "common/fleet.rs"]
mod fleet;
#[path = "common/needs.rs"]
mod needs;
use fleet::{DEADLINE, Flavor, Prometheus, Tap, wait_for_within};

const PER_ENDPOINT: u64 = 40;
const ROUTES: [&str; 3] = ["/a", "/b", "/slow"];

/// `endpoint -> (ready, why)` from `verdict`'s table.
fn table(stdout: &str) -> BTreeMap<String, (bool, String)> {
    let mut rows = BTreeMap::new();
    for line in stdout.lines().skip(1).take_while(|l| !l.starts_with("verdict:")) {
        // "GET /a    yes    why...": the endpoint has one space inside.
        let mut words = line.split_whitespace();
        let endpoint = format!("{} {}", words.next().unwrap(), words.next().unwrap());
        let ready = words.next().unwrap() == "yes";
        rows.insert(endpoint, (ready, words.collect::<Vec<_>>().join(" ")));
    }
    rows
}

/// Latency figures (`12.3`) blanked: the fleet reads them from buckets, a
/// report from HdrHistograms; every count stays.
fn without_latencies(why: &str) -> String {
    why.split(' ')
        .map(|w| if w.contains('.') && w.chars().next().is_some_and(|c| c.is_ascii_digit()) { "#" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The candidate p99 in milliseconds a latency blocker names.
fn candidate_p99_ms(why: &str) -> f64 {
    let after = why.split("candidate p99 ").nth(1).unwrap_or_else(|| panic!("no candidate p99 in {why}"));
    after.split(' ').next().unwrap().parse().unwrap()
}

fn shadowtap(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shadowtap")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Sends each route `PER_ENDPOINT` times to `legacy`, paced so that replay
/// never has more in flight than production had.
fn traffic(legacy: SocketAddr) {
    for n in 0..PER_ENDPOINT {
        for route in ROUTES {
            fleet::body(legacy, &format!("{route}?n={n}")).unwrap();
        }
        std::thread::sleep(Duration::from_millis(40));
    }
}

#[test]
fn the_fleet_verdict_says_what_the_merged_report_says() {
    let Some(()) = needs::met("fleet verdict", needs::live_capture()) else { return };
    let Some(prometheus_bin) = needs::met("fleet verdict", needs::program("prometheus")) else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("shadowtap.toml");
    // Configured names at once (no learning hold), diffs judged at once.
    std::fs::write(&config, "[naming]\nlearn = false\n\n[noise]\nwarmup_samples = 0\n").unwrap();
    let candidate = fleet::service(Flavor::Regressed);
    let legacies: Vec<SocketAddr> = (0..3).map(|_| fleet::service(Flavor::Legacy)).collect();
    let taps: Vec<Tap> = legacies
        .iter()
        .enumerate()
        .map(|(i, legacy)| Tap::start(dir.path(), &format!("tap{i}"), &config, *legacy, candidate))
        .collect();
    let targets: Vec<SocketAddr> = taps.iter().map(|t| t.metrics).collect();
    let rules = repo().join("systemd/prometheus/shadowtap-rules.yml");
    let prometheus = Prometheus::start(&prometheus_bin, dir.path(), &targets, Some(&rules));
    wait_for_within(DEADLINE, "Prometheus scraping three taps", || {
        match prometheus.scalar("sum(up{job=\"shadowtap\"})") {
            Some(3.0) => Ok(()),
            other => {
                let logs: Vec<String> = taps.iter().map(Tap::log_tail).collect();
                Err(format!("{other:?} up; targets: {}; tap logs:\n{}", prometheus.target_errors(), logs.join("\n")))
            }
        }
    });

    let senders: Vec<_> = legacies
        .iter()
        .map(|legacy| {
            let legacy = *legacy;
            std::thread::spawn(move || traffic(legacy))
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    let per_tap = PER_ENDPOINT * ROUTES.len() as u64;
    for tap in &taps {
        wait_for_within(DEADLINE, "every outcome on the tap's /metrics", || {
            match tap.counter_sum("shadowtap_outcomes_total") {
                n if n >= per_tap => Ok(()),
                n => Err(format!("{n} of {per_tap}")),
            }
        });
    }
    // Every tap scraped again after its last outcome.
    let done = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    wait_for_within(DEADLINE, "a scrape of every tap after the last outcome", || {
        match prometheus.scalar("min(timestamp(up{job=\"shadowtap\"}))") {
            Some(t) if t > done + 0.2 => Ok(()),
            other => Err(format!("last scrape {other:?}, done at {done}")),
        }
    });
    let total = prometheus.scalar("sum(shadowtap_outcomes_total)");
    assert_eq!(total, Some((per_tap * 3) as f64), "Prometheus has every outcome");

    dashboard_and_rules_use_what_taps_serve(&fleet::body(taps[0].metrics, "/metrics").unwrap(), &prometheus);

    let url = prometheus.url();
    let (fleet_code, fleet_out, fleet_err) = shadowtap(&["verdict", "--prometheus", &url, "--window", "10m"]);
    for (i, tap) in taps.into_iter().enumerate() {
        let mut process = tap.process;
        process.stop(&format!("tap{i}"));
    }
    let reports: Vec<String> = (0..3).map(|i| dir.path().join(format!("tap{i}.json")).display().to_string()).collect();
    let mut args = vec!["report"];
    args.extend(reports.iter().map(String::as_str));
    args.push("--verdict");
    let (merged_code, merged_out, merged_err) = shadowtap(&args);

    eprintln!("fleet:\n{fleet_out}\nmerged:\n{merged_out}");
    assert_eq!(merged_code, 1, "merged report: {merged_out}{merged_err}");
    assert_eq!(fleet_code, 1, "fleet verdict: {fleet_out}{fleet_err}");
    let (fleet, merged) = (table(&fleet_out), table(&merged_out));
    assert_eq!(fleet.keys().collect::<Vec<_>>(), ["GET /a", "GET /b", "GET /slow"], "{fleet_out}");
    assert_eq!(fleet.keys().collect::<Vec<_>>(), merged.keys().collect::<Vec<_>>(), "{merged_out}");
    for (endpoint, (ready, why)) in &merged {
        let (fleet_ready, fleet_why) = &fleet[endpoint];
        assert_eq!(fleet_ready, ready, "{endpoint}: fleet says {fleet_why:?}, merged report {why:?}");
        assert_eq!(without_latencies(fleet_why), without_latencies(why), "{endpoint}");
    }
    // Ready only on the fleet's sums: no tap alone has 100 compared.
    assert!(fleet["GET /a"].0, "{fleet_out}");
    assert!(fleet["GET /a"].1.starts_with(&format!("{} compared, no diff", 3 * PER_ENDPOINT)), "{fleet_out}");
    assert!(fleet["GET /b"].1.contains(&format!("{} diff (at /kind)", 3 * PER_ENDPOINT)), "{fleet_out}");
    assert!(!fleet["GET /slow"].0 && fleet["GET /slow"].1.contains("candidate p99"), "{fleet_out}");
    // The buckets' p99 is within 10% of the HdrHistogram's (README).
    let (from_buckets, from_hdr) = (candidate_p99_ms(&fleet["GET /slow"].1), candidate_p99_ms(&merged["GET /slow"].1));
    assert!(
        (from_buckets - from_hdr).abs() <= from_hdr * 0.1,
        "p99 {from_buckets} ms from buckets, {from_hdr} ms exact"
    );
    // Named endpoints, as `verdict` takes them.
    let (code, out, _) = shadowtap(&["verdict", "--prometheus", &url, "--window", "10m", "--endpoint", "GET /a"]);
    assert_eq!((code, table(&out).len()), (0, 1), "{out}");
}

#[test]
fn a_bad_or_silent_prometheus_is_one_line_and_exit_2() {
    let not_prometheus = fleet::service(Flavor::Legacy);
    let closed = fleet::free_addr();
    let error_json = error_server("{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"planted failure\"}");
    let cases = [
        ("ftp://127.0.0.1:9090".to_string(), "not a Prometheus URL"),
        ("https://127.0.0.1:9090".to_string(), "https is not supported"),
        (format!("http://{closed}"), "unreachable"),
        (format!("http://{not_prometheus}"), "not a Prometheus query API"),
        (format!("http://{error_json}"), "planted failure"),
    ];
    for (url, says) in cases {
        let (code, out, err) = shadowtap(&["verdict", "--prometheus", &url]);
        assert_eq!(code, 2, "{url}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{url}: {err}");
        assert!(err.contains(says), "{url}: {err}");
    }
    let (code, _, err) = shadowtap(&["verdict", "--prometheus", "http://127.0.0.1:1", "--window", "1.5h"]);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");
}

/// A server answering every request with `json` (status 400), as
/// Prometheus answers a query it refuses.
fn error_server(json: &'static str) -> SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.0 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
                json.len()
            );
        }
    });
    addr
}

fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `shadowtap_*` names a text uses, each exactly (not as a prefix).
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("shadowtap_") {
        let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        rest = &rest[at + name.len()..];
        names.insert(name);
    }
    names
}

/// The Grafana dashboard's and the alerting rules' expressions: every
/// `shadowtap_*` name they use is served by a tap that has seen traffic
/// (so they cannot rot when a metric is renamed), every dashboard query
/// is valid PromQL with its variables filled in, and every rule, loaded
/// into the test's Prometheus, evaluates without error on the taps' data.
fn dashboard_and_rules_use_what_taps_serve(scrape: &str, prometheus: &Prometheus) {
    let served: std::collections::BTreeSet<String> = scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_string))
        .collect();
    let dashboard = std::fs::read_to_string(repo().join("systemd/grafana/shadowtap.json")).unwrap();
    let rules = std::fs::read_to_string(repo().join("systemd/prometheus/shadowtap-rules.yml")).unwrap();
    for (file, text) in [("dashboard", &dashboard), ("rules", &rules)] {
        let used = metric_names(text);
        assert!(used.len() >= 5, "{file} uses only {used:?}");
        let missing: Vec<&String> = used.iter().filter(|name| !served.contains(*name)).collect();
        assert!(missing.is_empty(), "{file} uses metrics no tap serves: {missing:?}");
    }
    let json: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let panels = json["panels"].as_array().unwrap();
    let mut queries = 0;
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{} has no targets", panel["title"]));
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let filled = expr
                .replace("$instance", ".*")
                .replace("$endpoint", ".*")
                .replace("$__rate_interval", "1m")
                .replace("$__range", "5m");
            let status = prometheus.status(&filled);
            assert_eq!(status, "success", "{}: {filled}", panel["title"]);
            queries += 1;
        }
    }
    assert!(queries >= 10, "{queries} dashboard queries");
    let groups = wait_for_within(DEADLINE, "every rule evaluated", || {
        let text = fleet::body(prometheus.addr, "/api/v1/rules").map_err(|e| e.to_string())?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let rules: Vec<serde_json::Value> = json["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        let pending: Vec<&serde_json::Value> = rules.iter().filter(|r| r["health"] != "ok").collect();
        if rules.len() >= 8 && pending.is_empty() {
            Ok(rules)
        } else {
            Err(format!("{} rules, not ok: {pending:?}", rules.len()))
        }
    });
    assert!(groups.iter().all(|r| r["lastError"].as_str().unwrap_or("").is_empty()), "{groups:?}");
}

#[test]
fn the_alerting_rules_pass_promtool_and_their_unit_tests() {
    let Some(promtool) = needs::met("alerting rules", needs::program("promtool")) else { return };
    let dir = repo().join("systemd/prometheus");
    for args in [["check", "rules", "shadowtap-rules.yml"], ["test", "rules", "shadowtap-rules.test.yml"]] {
        let out = Command::new(&promtool).args(args).current_dir(&dir).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("SUCCESS"), "promtool {args:?}: {text}");
    }
}
