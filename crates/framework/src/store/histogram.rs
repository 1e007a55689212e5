//! The fixed log-scale histogram every pool records wait and run times in: bucket `i`
//! counts durations in `(2^((i-1)/4), 2^(i/4)]` milliseconds (bucket 0 everything up to
//! 1 ms, the last everything above about 70 minutes). The bounds are the same in every
//! process, so histograms of several pools merge by adding their counts.

use std::time::Duration;

/// How many buckets a histogram has: 4 per doubling from 1 ms to 2^22 ms, and one for
/// longer durations.
pub(crate) const BUCKETS: usize = 90;

/// Buckets per doubling: each bound is about 19% above the one before.
const PER_DOUBLING: f64 = 4.0;

/// The bucket `d` falls in.
pub(crate) fn bucket(d: Duration) -> usize {
    let ms = d.as_secs_f64() * 1000.0;
    if ms <= 1.0 {
        return 0;
    }
    let i = (PER_DOUBLING * ms.log2()).ceil();
    (i as usize).min(BUCKETS - 1)
}

/// The upper bound of bucket `i`, in seconds (the last bucket's lower bound: it has none).
fn upper_bound(i: usize) -> f64 {
    let i = i.min(BUCKETS - 2);
    2f64.powf(i as f64 / PER_DOUBLING) / 1000.0
}

/// Add `other`'s counts into `into` (the longer of the two sets the length).
pub(crate) fn merge(into: &mut Vec<u64>, other: &[u64]) {
    if into.len() < other.len() {
        into.resize(other.len(), 0);
    }
    for (sum, n) in into.iter_mut().zip(other) {
        *sum += n;
    }
}

/// The `q` quantile (0 < q ≤ 1) of `counts`, in seconds: the upper bound of the bucket
/// holding the sample of rank ⌈q·n⌉, so at most 19% above the true value. `None` without
/// samples.
pub(crate) fn quantile(counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, n) in counts.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(upper_bound(i));
        }
    }
    Some(upper_bound(counts.len().saturating_sub(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_the_bucket_whose_bound_covers_them() {
        assert_eq!(bucket(Duration::ZERO), 0);
        assert_eq!(bucket(Duration::from_millis(1)), 0);
        assert_eq!(bucket(Duration::from_millis(2)), 4);
        for ms in [3, 50, 999, 60_000] {
            let i = bucket(Duration::from_millis(ms));
            let secs = ms as f64 / 1000.0;
            assert!(
                upper_bound(i) >= secs && upper_bound(i - 1) < secs,
                "{ms} ms"
            );
        }
        assert_eq!(bucket(Duration::from_secs(86_400)), BUCKETS - 1);
    }

    #[test]
    fn quantiles_read_the_cumulative_counts() {
        let mut counts = vec![0; BUCKETS];
        counts[bucket(Duration::from_millis(10))] = 90;
        counts[bucket(Duration::from_millis(500))] = 10;
        let p50 = quantile(&counts, 0.5).unwrap();
        assert!((0.010..0.012).contains(&p50), "{p50}");
        let p95 = quantile(&counts, 0.95).unwrap();
        assert!((0.5..0.6).contains(&p95), "{p95}");
        assert_eq!(quantile(&[0; BUCKETS], 0.5), None);
    }

    #[test]
    fn merging_adds_counts() {
        let mut a = vec![1, 2];
        merge(&mut a, &[1, 1, 5]);
        assert_eq!(a, [2, 3, 5]);
    }
}
