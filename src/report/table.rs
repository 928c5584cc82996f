//! The report as a table for people: one row per endpoint, totals,
//! equivalences, load, and why each endpoint that is not ready is not.

use std::fmt::Write as _;

use super::{ReportJson, ms};

/// The per-endpoint table people read at the end of a run.
pub fn table(report: &ReportJson) -> String {
    let width = report.endpoints.iter().map(|e| e.endpoint.len()).max().unwrap_or(8).clamp(8, 60);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$} {:>6} {:>6} {:>5} {:>5} {:>5} {:>5} {:>5}  {:>9} {:>9}  {:>9} {:>9}  {:<5}  top differing fields",
        "endpoint",
        "count",
        "match",
        "diff",
        "noise",
        "race",
        "skip",
        "error",
        "rec p50",
        "rec p99",
        "cand p50",
        "cand p99",
        "ready"
    );
    for e in &report.endpoints {
        let flag = match (e.load.latency_judged, e.latency_regression) {
            (false, _) => " LOAD",
            (true, true) => " SLOWER",
            (true, false) => "",
        };
        let fields: Vec<String> = e.top_fields.iter().take(3).map(|f| format!("{} ({})", f.path, f.count)).collect();
        let _ = writeln!(
            out,
            "{:<width$} {:>6} {:>6} {:>5} {:>5} {:>5} {:>5} {:>5}  {:>7}ms {:>7}ms  {:>7}ms {:>7}ms  {:<5}{flag}  {}",
            truncate(&e.endpoint, width),
            e.counts.count,
            e.counts.matched,
            e.counts.diff,
            e.counts.noise,
            e.counts.race,
            e.counts.skipped,
            e.counts.error,
            ms(e.recorded_p50_us),
            ms(e.recorded_p99_us),
            ms(e.candidate_p50_us),
            ms(e.candidate_p99_us),
            if e.ready { "yes" } else { "no" },
            fields.join(", ")
        );
    }
    let t = &report.totals;
    let _ = writeln!(
        out,
        "{:<width$} {:>6} {:>6} {:>5} {:>5} {:>5} {:>5} {:>5}",
        "total",
        t.counts.count,
        t.counts.matched,
        t.counts.diff,
        t.counts.noise,
        t.counts.race,
        t.counts.skipped,
        t.counts.error
    );
    // Why each endpoint is not ready, in words: a bare "no" sends people
    // digging through the JSON.
    for e in report.endpoints.iter().filter(|e| !e.ready) {
        let _ = writeln!(out, "not ready: {}: {}", e.endpoint, e.why);
    }
    if !report.equivalences.is_empty() {
        let rules: Vec<String> = report.equivalences.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let _ = writeln!(out, "differences explained by equivalence rules: {}", rules.join(", "));
    }
    let (rec, rep) = (&report.load.recorded, &report.load.replay);
    let rate = |r: Option<f64>| r.map_or_else(|| "-".to_string(), |r| format!("{r:.0}/s"));
    let _ = writeln!(
        out,
        "load: replay in flight peak {} mean {:.1}, {} vs recorded peak {} mean {:.1}, {} ({:.1}x)",
        rep.peak_in_flight,
        rep.mean_in_flight,
        rate(rep.requests_per_s),
        rec.peak_in_flight,
        rec.mean_in_flight,
        rate(rec.requests_per_s),
        report.load.ratio
    );
    let unjudged: Vec<&str> =
        report.endpoints.iter().filter(|e| !e.load.latency_judged).map(|e| e.endpoint.as_str()).collect();
    if !unjudged.is_empty() {
        let _ = writeln!(
            out,
            "latency not judged (replay load above {}x the recording's) on: {}; re-run without --concurrency, or with --pace 1",
            report.load.max_load_ratio,
            unjudged.join(", ")
        );
    }
    if t.replay_queue_drops > 0 {
        let _ = writeln!(out, "exchanges dropped because replay fell behind: {}", t.replay_queue_drops);
    }
    if t.replay_loops > 0 {
        let _ = writeln!(
            out,
            "requests carrying the replay marker (our own replays captured again: a loop), not replayed: {}",
            t.replay_loops
        );
    }
    out
}

fn truncate(s: &str, width: usize) -> String {
    if s.len() <= width { s.to_string() } else { format!("{}…", &s[..s.floor_char_boundary(width - 1)]) }
}
