//! Quantiles of a Prometheus histogram summed over taps, read as
//! `histogram_quantile` reads them: cumulative bucket counts by upper
//! bound in, the quantile out, interpolated linearly inside its bucket
//! (from 0 in the first). In the `+Inf` bucket it is the largest finite
//! bound: latencies beyond the buckets are reported at their top.

/// `buckets`: `(upper bound, cumulative count)`, any order, `+Inf` among
/// them. `None` when empty or without `+Inf`.
pub fn histogram_quantile(q: f64, buckets: &[(f64, u64)]) -> Option<f64> {
    let mut buckets = buckets.to_vec();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (last_bound, total) = *buckets.last()?;
    if last_bound != f64::INFINITY || total == 0 || buckets.len() < 2 {
        return None;
    }
    // Counts summed from scrapes taken at slightly different times may
    // dip; cumulative counts never do.
    for i in 1..buckets.len() {
        buckets[i].1 = buckets[i].1.max(buckets[i - 1].1);
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let b = buckets.iter().position(|(_, count)| *count as f64 >= rank)?;
    if b == buckets.len() - 1 {
        return Some(buckets[b - 1].0);
    }
    let (start, below) = if b == 0 { (0.0, 0) } else { (buckets[b - 1].0, buckets[b - 1].1) };
    let (end, count) = (buckets[b].0, buckets[b].1 - below);
    if b == 0 && end <= 0.0 {
        return Some(end);
    }
    if count == 0 {
        return Some(end);
    }
    Some(start + (end - start) * ((rank - below as f64) / count as f64))
}

#[cfg(test)]
mod tests {
    use super::histogram_quantile;

    #[test]
    fn interpolates_inside_the_bucket_as_prometheus_does() {
        // 10 at or below 1, 10 more in (1, 2], none above.
        let b = [(1.0, 10), (2.0, 20), (f64::INFINITY, 20)];
        assert_eq!(histogram_quantile(0.5, &b), Some(1.0));
        assert_eq!(histogram_quantile(0.75, &b), Some(1.5));
        assert_eq!(histogram_quantile(0.25, &b), Some(0.5));
        // Beyond the finite buckets: the largest finite bound.
        assert_eq!(histogram_quantile(0.99, &[(1.0, 1), (f64::INFINITY, 10)]), Some(1.0));
        assert_eq!(histogram_quantile(0.5, &[(1.0, 0), (f64::INFINITY, 0)]), None);
        assert_eq!(histogram_quantile(0.5, &[(1.0, 3)]), None);
    }
}
