//! The daemon's maps keyed by what the traffic chooses stay within their
//! bounds under high-cardinality traffic, count what they evict, and keep
//! verdicts truthful: `shadowtap run` on `lo` in front of a JSON service,
//! fed many distinct paths (endpoints, naming not learned) and answers
//! with a new JSON key each time (fields), with small configured bounds.
//! The report and `/metrics` must agree on the evictions, which must equal
//! what is missing from the report; nothing is lost from the totals; and a
//! regression planted on a normal endpoint is still not ready.
//! Needs root or CAP_NET_RAW (see `tests/live.rs`).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use serde_json::Value;

#[path = "common/fleet.rs"]
mod fleet;
#[path = "common/needs.rs"]
mod needs;

use fleet::{DEADLINE, Tap, body, wait_for_within};

/// `GET /b`: production `{"kind":"old"}`, the candidate `"new"` (the
/// planted regression). `GET /keys?n=N`: `{"kN": 1}`, the candidate
/// `{"kN": 2}` (a new differing field each time). Anything else: the path,
/// the same on both sides.
fn answer(target: &str, candidate: bool) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let n = query.strip_prefix("n=").unwrap_or("0");
    let body = match path {
        "/b" => format!("{{\"kind\":\"{}\"}}", if candidate { "new" } else { "old" }),
        "/keys" => format!("{{\"k{n}\":{}}}", if candidate { 2 } else { 1 }),
        _ => format!("{{\"route\":\"{path}\"}}"),
    };
    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

fn service(candidate: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream, candidate));
        }
    });
    addr
}

fn serve(stream: TcpStream, candidate: bool) {
    let Ok(clone) = stream.try_clone() else { return };
    let (mut reader, mut writer) = (BufReader::new(clone), stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line.split(' ').nth(1).unwrap_or("/").to_string();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
        }
        if writer.write_all(answer(&target, candidate).as_bytes()).is_err() {
            return;
        }
    }
}

/// Sends the targets on one keep-alive connection, reading each answer.
fn send(addr: SocketAddr, targets: &[String]) {
    let stream = TcpStream::connect(addr).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    for target in targets {
        write!(writer, "GET {target} HTTP/1.1\r\nHost: legacy\r\n\r\n").unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        std::io::Read::read_exact(&mut reader, &mut body).unwrap();
    }
}

/// A path segment of letters only, distinct per `i` (no value class
/// applies to it, so each is an endpoint of its own).
fn word(mut i: usize) -> String {
    let mut w = String::from("w");
    loop {
        w.push((b'a' + (i % 26) as u8) as char);
        i /= 26;
        if i == 0 {
            return w;
        }
    }
}

fn evicted(report: &Value, map: &str) -> u64 {
    report["evicted"][map].as_u64().unwrap_or_else(|| panic!("no evicted.{map}: {}", report["evicted"]))
}

fn metric(tap: &Tap, map: &str) -> Option<u64> {
    let text = body(tap.metrics, "/metrics").ok()?;
    let series = format!("shadowtap_evicted_total{{map=\"{map}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)?.trim().parse::<f64>().ok()).map(|v| v as u64)
}

#[test]
fn many_distinct_paths_and_keys_stay_within_the_bounds_counted_and_a_regression_is_still_not_ready() {
    let Some(()) = needs::met("bounded_maps", needs::live_capture()) else { return };
    let (legacy, candidate) = (service(false), service(true));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let (max_endpoints, max_fields) = (16, 8);
    std::fs::write(
        &config,
        format!(
            "[naming]\nlearn = false\n[output]\nreport_interval_s = 1\nmax_endpoints = {max_endpoints}\n\
             max_fields = {max_fields}\n[candidate]\ntimeout_ms = 5000\n"
        ),
    )
    .unwrap();
    let mut tap = Tap::start(dir.path(), "tap", &config, legacy, candidate);
    // Rounds of: the normal endpoints /a and /b (the regression), a new
    // key on /keys, and a new path seen once.
    let (rounds, paths) = (60, 100);
    let mut targets = Vec::new();
    for i in 0..rounds.max(paths) {
        if i < rounds {
            targets.extend([format!("/a?n={i}"), format!("/b?n={i}"), format!("/keys?n={i}")]);
        }
        if i < paths {
            targets.push(format!("/p/{}", word(i)));
        }
    }
    send(legacy, &targets);
    let exchanges = targets.len() as u64;
    // The report is rewritten every second; wait until it has every
    // exchange and /metrics says what it says.
    let report_path = tap.report.clone();
    let report = wait_for_within(DEADLINE * 2, "a report with every exchange, and /metrics agreeing", || {
        let text = std::fs::read_to_string(&report_path).map_err(|e| e.to_string())?;
        let report: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        if report["totals"]["count"].as_u64() != Some(exchanges) {
            return Err(format!("{} of {exchanges} in the report; {}", report["totals"]["count"], tap.log_tail()));
        }
        for map in ["report_endpoints", "report_fields"] {
            if metric(&tap, map) != Some(evicted(&report, map)) {
                return Err(format!("{map}: metric {:?}, report {}", metric(&tap, map), report["evicted"]));
            }
        }
        Ok(report)
    });
    let endpoints = report["endpoints"].as_array().unwrap();
    let find = |name: &str| endpoints.iter().find(|e| e["endpoint"] == name);
    assert!(endpoints.len() <= max_endpoints, "{} endpoints listed", endpoints.len());
    let other = find("(other)").expect("evicted endpoints fold into (other)");
    let listed_paths = endpoints.iter().filter(|e| e["endpoint"].as_str().unwrap().starts_with("GET /p/")).count();
    let evicted_endpoints = evicted(&report, "report_endpoints");
    assert_eq!(evicted_endpoints, (paths - listed_paths) as u64, "every path not listed was evicted, counted");
    assert!(evicted_endpoints > 0);
    assert_eq!(other["count"], evicted_endpoints, "each evicted path's one exchange is in (other)");
    assert_eq!(other["ready"], false, "{}", other["why"]);
    for name in ["GET /a", "GET /b", "GET /keys"] {
        let e = find(name).unwrap_or_else(|| panic!("{name}, seen often, is kept: {report:#}"));
        assert_eq!(e["count"], rounds as u64, "{name}");
    }
    let b = find("GET /b").unwrap();
    assert_eq!((b["diff"].as_u64(), &b["ready"]), (Some(rounds as u64), &Value::Bool(false)), "{}", b["why"]);
    let a = find("GET /a").unwrap();
    assert_eq!(a["diff"], 0, "the normal endpoint stays clean: {a}");
    let keys = find("GET /keys").unwrap();
    let fields = keys["field_counts"].as_array().unwrap().len();
    assert!(fields <= max_fields, "{fields} fields kept");
    assert_eq!(evicted(&report, "report_fields"), (rounds - fields) as u64, "every key not kept was evicted, counted");
    let page = body(tap.metrics, "/report").unwrap();
    let note = format!("report_endpoints {evicted_endpoints}");
    assert!(page.contains("id=\"evicted\"") && page.contains(&note), "the HTML report's foot says {note}");
    // At stop the last report says the same.
    tap.process.stop("the tap");
    let last: Value = serde_json::from_str(&std::fs::read_to_string(&tap.report).unwrap()).unwrap();
    assert_eq!(last["evicted"], report["evicted"]);
    assert_eq!(last["totals"]["count"], exchanges);
}
