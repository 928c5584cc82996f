//! Exact counter increases over a window, per series. In: a counter's
//! name, the window and the evaluation time; out: each series' increase
//! within `(at - window, at]`, as an integer count.
//!
//! Not PromQL's `increase()`: that extrapolates to the window's edges
//! (fractional counts) and takes a series born inside the window from its
//! first scrape, losing what it counted before (a tap's endpoint appears
//! with its first outcome already counted). A verdict compares counts with
//! thresholds (`min_compared`, `max_diff = 0`), so it needs them exact:
//! the increase is the last value in the window minus the last value
//! before it (none: the series was born in the window, from 0), and for
//! a series whose counter was reset (a tap restarted), the sum of its
//! raw samples' steps.

use std::collections::{BTreeMap, BTreeSet};

use super::FleetError;
use super::api::{Labels, Prometheus, selector};

/// Each series of `metric` and its increase in the window.
pub fn increases(
    prometheus: &Prometheus,
    metric: &str,
    window_s: u64,
    at: f64,
) -> Result<Vec<(Labels, u64)>, FleetError> {
    let w = window_s;
    let last = prometheus.vector(&format!("last_over_time({metric}[{w}s])"), at)?;
    let before: BTreeMap<Labels, f64> = prometheus
        .vector(&format!("last_over_time({metric}[{w}s] offset {w}s)"), at)?
        .into_iter()
        .map(|s| (s.labels, s.value))
        .collect();
    // Resets between the last sample before the window and its end.
    let reset: BTreeSet<Labels> =
        prometheus.vector(&format!("resets({metric}[{}s]) > 0", 2 * w), at)?.into_iter().map(|s| s.labels).collect();
    let mut out = Vec::with_capacity(last.len());
    for series in last {
        let base = before.get(&series.labels).copied();
        let increase = if reset.contains(&series.labels) || base.is_some_and(|b| b > series.value) {
            let raw = prometheus.matrix(&format!("{}[{}s]", selector(metric, &series.labels), 2 * w), at)?;
            let values = raw.into_iter().next().map(|s| s.values).unwrap_or_default();
            stepped_increase(&values, at - w as f64)
        } else {
            series.value - base.unwrap_or(0.0)
        };
        out.push((series.labels, increase.max(0.0).round() as u64));
    }
    Ok(out)
}

/// A counter's increase after `start` from its raw samples: each step up,
/// and after a reset (a step down) the whole new value.
pub fn stepped_increase(samples: &[(f64, f64)], start: f64) -> f64 {
    let mut previous = samples.iter().take_while(|(t, _)| *t <= start).last().map_or(0.0, |(_, v)| *v);
    let mut increase = 0.0;
    for (_, v) in samples.iter().filter(|(t, _)| *t > start) {
        increase += if *v >= previous { v - previous } else { *v };
        previous = *v;
    }
    increase
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A stand-in for Prometheus answering the four queries `increases`
    /// asks about `m` over a 60 s window at t = 1000: series `a` counted
    /// 10 before the window and 25 at its end; `b` was born in it at 7;
    /// `c` was at 100 before it, rose to 120, restarted, and reached 9.
    fn fake_prometheus() -> String {
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
                let line = String::from_utf8_lossy(&request).lines().next().unwrap_or_default().to_string();
                let target = line.split(' ').nth(1).unwrap_or_default();
                let query = target.split("query=").nth(1).unwrap_or_default().split('&').next().unwrap_or_default();
                let query = decode(query);
                let series = |name: &str, v: &str| format!(r#"{{"metric":{{"s":"{name}"}},"value":[1000,"{v}"]}}"#);
                let result = match query.as_str() {
                    "last_over_time(m[60s])" => {
                        format!(r#"[{},{},{}]"#, series("a", "25"), series("b", "7"), series("c", "9"))
                    }
                    "last_over_time(m[60s] offset 60s)" => format!(r#"[{},{}]"#, series("a", "10"), series("c", "100")),
                    "resets(m[120s]) > 0" => format!("[{}]", series("c", "1")),
                    r#"m{s="c"}[120s]"# => {
                        r#"[{"metric":{"s":"c"},"values":[[900,"100"],[950,"120"],[970,"5"],[990,"9"]]}]"#.to_string()
                    }
                    _ => String::new(),
                };
                let body = if result.is_empty() {
                    format!(r#"{{"status":"error","errorType":"bad_data","error":"unexpected {query}"}}"#)
                } else {
                    let kind = if result.contains("values") { "matrix" } else { "vector" };
                    format!(r#"{{"status":"success","data":{{"resultType":"{kind}","result":{result}}}}}"#)
                };
                let _ = write!(stream, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            }
        });
        format!("http://{addr}")
    }

    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn increases_are_exact_across_births_and_restarts() {
        let url = fake_prometheus();
        let prometheus = Prometheus::parse(&url).unwrap();
        let mut got: Vec<(String, u64)> =
            increases(&prometheus, "m", 60, 1000.0).unwrap().into_iter().map(|(l, n)| (l["s"].clone(), n)).collect();
        got.sort();
        // a: 25 - 10; b: born in the window; c: 120 - 100, then 5 and 4 after the restart.
        assert_eq!(got, [("a".to_string(), 15), ("b".to_string(), 7), ("c".to_string(), 29)]);
    }

    #[test]
    fn steps_count_from_the_last_sample_before_the_window() {
        let samples = [(1.0, 5.0), (2.0, 7.0), (3.0, 9.0)];
        assert_eq!(stepped_increase(&samples, 1.5), 4.0);
        assert_eq!(stepped_increase(&samples, 0.5), 9.0, "born in the window: from 0");
    }

    #[test]
    fn a_reset_counts_the_new_value_whole() {
        // 10 before the window, 12, restart, 3, 6: 2 + 3 + 3.
        let samples = [(1.0, 10.0), (2.0, 12.0), (3.0, 3.0), (4.0, 6.0)];
        assert_eq!(stepped_increase(&samples, 1.0), 8.0);
    }
}
