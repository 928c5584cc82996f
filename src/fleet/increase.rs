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
    use super::stepped_increase;

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
