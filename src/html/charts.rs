//! Inline SVG charts for the HTML report: latency distributions (recorded
//! against candidate, from the report's histograms) and outcomes over time.
//! Drawn here as text so the page needs no script library and works offline.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

const WIDTH: f64 = 420.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 24.0;

/// Points of a cumulative distribution: (latency µs, share at or below).
fn cdf(h: &Histogram<u64>) -> Vec<(u64, f64)> {
    let mut points = Vec::new();
    for i in 0..=100 {
        // Denser towards the tail, where regressions show.
        let q = 1.0 - (1.0 - f64::from(i) / 100.0).powi(2);
        points.push((h.value_at_quantile(q).max(1), q));
    }
    points
}

/// Both sides' distributions as cumulative curves on a log latency axis,
/// one SVG per endpoint (`class="latency-plot"`).
pub fn latency_plot(endpoint: &str, recorded: Option<&Histogram<u64>>, candidate: Option<&Histogram<u64>>) -> String {
    let sides: Vec<(&str, Vec<(u64, f64)>)> = [("rec", recorded), ("cand", candidate)]
        .into_iter()
        .filter_map(|(class, h)| h.filter(|h| !h.is_empty()).map(|h| (class, cdf(h))))
        .collect();
    let mut svg = format!(
        r#"<svg class="latency-plot" data-endpoint="{}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="latency distributions">"#,
        super::escape(endpoint)
    );
    if sides.is_empty() {
        let _ = write!(svg, r#"<text x="{LEFT}" y="{}" class="axis">nothing compared</text></svg>"#, HEIGHT / 2.0);
        return svg;
    }
    let all = sides.iter().flat_map(|(_, p)| p.iter().map(|(us, _)| *us));
    let (lo, hi) = all.fold((u64::MAX, 1), |(lo, hi), us| (lo.min(us), hi.max(us)));
    let (lo, hi) = ((lo as f64).log10().floor(), ((hi as f64).log10().ceil()).max((lo as f64).log10().floor() + 1.0));
    let x = |us: u64| LEFT + ((us as f64).log10() - lo) / (hi - lo) * (WIDTH - LEFT - 30.0);
    let y = |q: f64| (HEIGHT - BOTTOM) - q * (HEIGHT - BOTTOM - 10.0);
    axes(&mut svg, lo as i32, hi as i32, &x, &y);
    for (class, points) in &sides {
        let path: Vec<String> = points.iter().map(|(us, q)| format!("{:.1},{:.1}", x(*us), y(*q))).collect();
        let _ = write!(svg, r#"<polyline class="{class}" fill="none" points="{}"/>"#, path.join(" "));
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="22" class="legend rec">recorded</text><text x="{}" y="36" class="legend cand">candidate</text></svg>"#,
        WIDTH - 80.0,
        WIDTH - 80.0
    );
    svg
}

/// Decades of latency on x (µs, ms, s), shares on y.
fn axes(svg: &mut String, lo: i32, hi: i32, x: &dyn Fn(u64) -> f64, y: &dyn Fn(f64) -> f64) {
    let (base, right) = (HEIGHT - BOTTOM, WIDTH - 10.0);
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" y1="{base}" x2="{right}" y2="{base}"/><line class="axis" x1="{LEFT}" y1="10" x2="{LEFT}" y2="{base}"/>"#
    );
    for decade in lo..=hi {
        let us = 10u64.saturating_pow(decade.max(0) as u32);
        let label = match us {
            us if us >= 1_000_000 => format!("{}s", us / 1_000_000),
            us if us >= 1_000 => format!("{}ms", us / 1_000),
            us => format!("{us}µs"),
        };
        let _ = write!(
            svg,
            r#"<text class="axis" x="{:.1}" y="{}" text-anchor="middle">{label}</text>"#,
            x(us),
            HEIGHT - 6.0
        );
    }
    for (q, label) in [(0.5, "p50"), (0.9, "p90"), (0.99, "p99")] {
        let (yq, right) = (y(q), WIDTH - 10.0);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{right}" y1="{yq:.1}" y2="{yq:.1}"/><text class="axis" x="2" y="{:.1}">{label}</text>"#,
            yq + 3.0
        );
    }
}

/// Outcome counts per time bucket, stacked (`class="timeline"`).
pub fn timeline(buckets: &[(String, [u64; super::OUTCOMES.len()])]) -> String {
    let peak = buckets.iter().map(|(_, c)| c.iter().sum::<u64>()).max().unwrap_or(0).max(1) as f64;
    let width = 720.0;
    let bar = (width - LEFT) / buckets.len().max(1) as f64;
    let mut svg = format!(
        r#"<svg class="timeline" viewBox="0 0 {width} {HEIGHT}" width="{width}" height="{HEIGHT}" role="img" aria-label="outcomes over time">"#
    );
    for (i, (label, counts)) in buckets.iter().enumerate() {
        let mut top = HEIGHT - BOTTOM;
        for (kind, n) in super::OUTCOMES.iter().zip(counts) {
            let h = *n as f64 / peak * (HEIGHT - BOTTOM - 10.0);
            top -= h;
            if *n > 0 {
                let _ = write!(
                    svg,
                    r#"<rect class="o-{kind}" x="{:.1}" y="{top:.1}" width="{:.1}" height="{h:.1}"><title>{} {kind} {n}</title></rect>"#,
                    LEFT + i as f64 * bar,
                    (bar - 1.0).max(1.0),
                    super::escape(label)
                );
            }
        }
    }
    if let (Some(first), Some(last)) = (buckets.first(), buckets.last()) {
        let _ = write!(
            svg,
            r#"<text class="axis" x="{LEFT}" y="{}">{}</text><text class="axis" x="{}" y="{}" text-anchor="end">{}</text>"#,
            HEIGHT - 6.0,
            super::escape(&first.0),
            width - 4.0,
            HEIGHT - 6.0,
            super::escape(&last.0)
        );
    }
    let _ = write!(svg, r#"<text class="axis" x="2" y="14">{peak}</text></svg>"#);
    svg
}
