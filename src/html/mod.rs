//! The HTML report: a report (one replay's or merged) and, optionally,
//! evidence from outcome lines in; one self-contained page out. CSS, the
//! sorting script and the SVG charts are inline and nothing is loaded from
//! anywhere, so the file works offline and can be mailed or archived.
//! Order: the summary (ready or not, and why, per endpoint), the sortable
//! endpoint table, outcomes over time, then per endpoint its latency
//! distributions, top differing fields with noise rates, and examples.

pub mod charts;
pub mod examples;

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::replay::triage::field_of;
use crate::report::{EndpointReport, ReportJson, hdr};
use examples::{Evidence, Example};

/// Outcome kinds, in the order charts stack them.
pub const OUTCOMES: [&str; 6] = ["match", "noise", "race", "diff", "error", "skipped"];

/// Differing fields shown (and collected examples for) per endpoint.
pub const FIELDS_SHOWN: usize = 10;

/// Text safe inside HTML elements and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The (endpoint, field) pairs whose examples the page shows.
pub fn wanted_fields(report: &ReportJson) -> HashSet<(String, String)> {
    report
        .endpoints
        .iter()
        .flat_map(|e| e.field_counts.iter().take(FIELDS_SHOWN).map(|f| (e.endpoint.clone(), field_of(&f.path))))
        .collect()
}

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("sort.js");

/// The daemon's report: since when its evidence accumulates, across how
/// many restarts (`crate::state`).
fn accumulated(page: &mut String, report: &ReportJson) {
    if let (Some(since), Some(restarts)) = (&report.since, report.restarts) {
        let plural = if restarts == 1 { "" } else { "s" };
        let _ = write!(
            page,
            "<p class=\"note\">Evidence accumulated since <time>{}</time>, across {restarts} restart{plural}.</p>",
            escape(since)
        );
    }
}

/// The whole page.
pub fn render(report: &ReportJson, evidence: &Evidence, title: &str) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    );
    let _ = write!(page, "<h1>{}</h1>", escape(title));
    accumulated(&mut page, report);
    summary(&mut page, report);
    endpoint_table(&mut page, report);
    if evidence.buckets.len() > 1 {
        page.push_str("<h2>Outcomes over time</h2>");
        page.push_str(&charts::timeline(&evidence.timeline(60)));
        legend(&mut page);
    }
    if evidence.bad_lines > 0 {
        let _ = write!(
            page,
            "<p class=\"note\">{} outcome lines could not be read and were skipped.</p>",
            evidence.bad_lines
        );
    }
    for e in &report.endpoints {
        endpoint_section(&mut page, e, evidence);
    }
    evicted_note(&mut page, report);
    let _ = writeln!(page, "<script>{SCRIPT}</script></body></html>");
    page
}

/// What the bounded maps evicted, at the foot of the page, when any.
fn evicted_note(page: &mut String, report: &ReportJson) {
    let evicted: Vec<String> =
        report.evicted.iter().filter(|(_, n)| **n > 0).map(|(map, n)| format!("{map} {n}")).collect();
    if !evicted.is_empty() {
        let _ = write!(
            page,
            "<footer><p class=\"note\" id=\"evicted\">Evicted to stay within bounds: {}.</p></footer>",
            escape(&evicted.join(", "))
        );
    }
}

fn summary(page: &mut String, report: &ReportJson) {
    let not_ready: Vec<&EndpointReport> = report.endpoints.iter().filter(|e| !e.ready).collect();
    let all_ready = !report.endpoints.is_empty() && not_ready.is_empty();
    let _ = write!(
        page,
        "<section id=\"summary\"><p class=\"verdict {}\">{}</p><ul>",
        if all_ready { "ready" } else { "not-ready" },
        if all_ready {
            "Ready to turn the old service off.".to_string()
        } else {
            format!("Not ready: {} of {} endpoints are not ready.", not_ready.len(), report.endpoints.len())
        }
    );
    let ready = report.endpoints.iter().filter(|e| e.ready);
    for e in not_ready.iter().copied().chain(ready) {
        let _ = write!(
            page,
            "<li class=\"endpoint {}\"><a href=\"#{}\">{}</a> <b>{}</b> <span class=\"why\">{}</span></li>",
            if e.ready { "ready" } else { "not-ready" },
            anchor(&e.endpoint),
            escape(&e.endpoint),
            if e.ready { "ready" } else { "not ready" },
            escape(&e.why)
        );
    }
    page.push_str("</ul></section>");
}

fn ms(us: Option<u64>) -> (String, String) {
    us.map_or(("-".into(), "-1".into()), |us| (format!("{:.1} ms", us as f64 / 1000.0), us.to_string()))
}

fn endpoint_table(page: &mut String, report: &ReportJson) {
    page.push_str("<h2>Endpoints</h2><table id=\"endpoints\" class=\"sortable\"><thead><tr>");
    for (name, kind) in [
        ("endpoint", "text"),
        ("count", "num"),
        ("match", "num"),
        ("diff", "num"),
        ("noise", "num"),
        ("race", "num"),
        ("skipped", "num"),
        ("error", "num"),
        ("rec p50", "num"),
        ("rec p99", "num"),
        ("cand p50", "num"),
        ("cand p99", "num"),
        ("ready", "text"),
    ] {
        let _ = write!(page, "<th data-kind=\"{kind}\" title=\"sort\">{name}</th>");
    }
    page.push_str("</tr></thead><tbody>");
    for e in &report.endpoints {
        let c = &e.counts;
        let _ = write!(page, "<tr><td><a href=\"#{}\">{}</a></td>", anchor(&e.endpoint), escape(&e.endpoint));
        for n in [c.count, c.matched, c.diff, c.noise, c.race, c.skipped, c.error] {
            let _ = write!(page, "<td data-value=\"{n}\">{n}</td>");
        }
        for us in [e.recorded_p50_us, e.recorded_p99_us, e.candidate_p50_us, e.candidate_p99_us] {
            let (text, value) = ms(us);
            let _ = write!(page, "<td data-value=\"{value}\">{text}</td>");
        }
        let _ = write!(
            page,
            "<td class=\"{}\">{}</td></tr>",
            if e.ready { "ready" } else { "not-ready" },
            if e.ready { "yes" } else { "no" }
        );
    }
    page.push_str("</tbody></table>");
}

fn legend(page: &mut String) {
    page.push_str("<p class=\"legend\">");
    for kind in OUTCOMES {
        let _ = write!(page, "<span class=\"swatch o-{kind}\"></span>{kind} ");
    }
    page.push_str("</p>");
}

/// A fragment id for an endpoint (its name has spaces, slashes, braces).
fn anchor(endpoint: &str) -> String {
    let id: String = endpoint.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    format!("ep-{id}-{:x}", crate::replay::endpoint::distinct::stable_hash(endpoint) & 0xffff)
}

fn endpoint_section(page: &mut String, e: &EndpointReport, evidence: &Evidence) {
    let _ = write!(
        page,
        "<section class=\"endpoint-detail\" id=\"{}\"><h2>{}</h2><p class=\"{}\"><b>{}</b> <span class=\"why\">{}</span></p>",
        anchor(&e.endpoint),
        escape(&e.endpoint),
        if e.ready { "ready" } else { "not-ready" },
        if e.ready { "ready" } else { "not ready" },
        escape(&e.why)
    );
    let decode = |h: &Option<String>| h.as_deref().and_then(|text| hdr::decode(text).ok());
    let (recorded, candidate) = (decode(&e.recorded_histogram), decode(&e.candidate_histogram));
    page.push_str("<div class=\"plot\"><h3>Latency: recorded vs candidate (share of requests at or below)</h3>");
    page.push_str(&charts::latency_plot(&e.endpoint, recorded.as_ref(), candidate.as_ref()));
    page.push_str("</div>");
    fields_table(page, e);
    for f in e.field_counts.iter().take(FIELDS_SHOWN) {
        let key = (e.endpoint.clone(), field_of(&f.path));
        if let Some(examples) = evidence.examples.get(&key) {
            let _ = write!(page, "<h4>Examples at <code>{}</code></h4>", escape(&f.path));
            examples.iter().for_each(|x| example(page, x, &key.1));
        }
    }
    page.push_str("</section>");
}

fn fields_table(page: &mut String, e: &EndpointReport) {
    if e.field_counts.is_empty() {
        return;
    }
    page.push_str(
        "<h3>Top differing fields</h3><table class=\"fields sortable\"><thead><tr><th data-kind=\"text\">field</th>\
         <th data-kind=\"num\">diffs</th><th data-kind=\"num\">production's own disagreement (noise rate)</th></tr></thead><tbody>",
    );
    for f in e.field_counts.iter().take(FIELDS_SHOWN) {
        let folded = field_of(&f.path);
        let noise = e.noisy_fields.iter().find(|n| n.path == folded && n.samples > 0);
        let (rate, value) = noise.map_or(("-".to_string(), -1.0), |n| {
            let rate = n.noisy as f64 * 100.0 / n.samples as f64;
            (format!("{rate:.1}% ({} of {})", n.noisy, n.samples), rate)
        });
        let _ = write!(
            page,
            "<tr><td><code>{}</code></td><td data-value=\"{}\">{}</td><td data-value=\"{value}\">{rate}</td></tr>",
            escape(&f.path),
            f.count,
            f.count
        );
    }
    page.push_str("</tbody></table>");
}

fn status(s: Option<u64>) -> String {
    s.map_or_else(|| "-".into(), |s| s.to_string())
}

/// One exchange: the request, then recorded and candidate side by side,
/// differing values highlighted, what equivalences explained greyed.
fn example(page: &mut String, x: &Example, field: &str) {
    let _ = write!(
        page,
        "<div class=\"example\"><p class=\"request\"><code>{} {}</code> ({})</p><table class=\"sides\"><thead><tr><th></th>\
         <th>recorded</th><th>candidate</th></tr></thead><tbody><tr><td>status</td><td>{}</td><td>{}</td></tr>",
        escape(&x.method),
        escape(&x.uri),
        escape(&x.outcome),
        status(x.recorded_status),
        status(x.candidate_status)
    );
    for (path, kind, recorded, candidate) in &x.differences {
        let this = if field_of(path) == field { " this-field" } else { "" };
        let _ = write!(
            page,
            "<tr class=\"differs{this}\"><td><code>{}</code> <small>{}</small></td><td><mark class=\"differing\">{}</mark></td>\
             <td><mark class=\"differing\">{}</mark></td></tr>",
            escape(path),
            escape(kind),
            escape(&recorded.to_string()),
            escape(&candidate.to_string())
        );
    }
    for (path, by) in &x.explained {
        let _ = write!(
            page,
            "<tr class=\"equivalent\"><td><code>{}</code></td><td colspan=\"2\">set aside: {}</td></tr>",
            escape(path),
            escape(by)
        );
    }
    for (rule, n) in &x.equivalences {
        let _ = write!(
            page,
            "<tr class=\"equivalent\"><td colspan=\"3\">equal in form: {} ({n} difference{})</td></tr>",
            escape(rule),
            if *n == 1 { "" } else { "s" }
        );
    }
    page.push_str("</tbody></table></div>");
}
