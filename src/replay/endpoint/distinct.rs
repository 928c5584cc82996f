//! Distinct values counted in bounded memory: strings in, a count out,
//! exact up to a capacity and estimated beyond (the k smallest hashes, a
//! "KMV" sketch). Mergeable (replay lanes, learner subtrees) and the same
//! for the same values in any order, on any host: the hash is fixed.

#[derive(Clone, Debug)]
pub struct Distinct {
    capacity: usize,
    /// Sorted, at most `capacity` (8 bytes a value: cheaper than a set).
    smallest: Vec<u64>,
}

impl Distinct {
    pub fn new(capacity: usize) -> Distinct {
        Distinct { capacity: capacity.max(2), smallest: Vec::new() }
    }

    pub fn insert(&mut self, value: &str) {
        self.insert_hash(stable_hash(value));
    }

    fn insert_hash(&mut self, h: u64) {
        let full = self.smallest.len() >= self.capacity;
        if full && self.smallest.last().is_some_and(|&max| h >= max) {
            return;
        }
        if let Err(at) = self.smallest.binary_search(&h) {
            self.smallest.insert(at, h);
            if full {
                self.smallest.pop();
            }
        }
    }

    pub fn merge(&mut self, other: &Distinct) {
        for &h in &other.smallest {
            self.insert_hash(h);
        }
    }

    /// Exact below the capacity; beyond, (k-1) / (k-th smallest hash as a
    /// fraction of the hash space), within a few percent for k in the
    /// hundreds.
    pub fn count(&self) -> u64 {
        match self.smallest.last() {
            Some(&max) if self.smallest.len() >= self.capacity => {
                let fraction = (max as f64 + 1.0) / 18_446_744_073_709_551_616.0;
                ((self.smallest.len() - 1) as f64 / fraction).round() as u64
            }
            _ => self.smallest.len() as u64,
        }
    }
}

/// FNV-1a with a final mix (splitmix64): fixed across runs and hosts,
/// and spread evenly enough for the sketch.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_capacity_close_beyond_and_mergeable() {
        let mut small = Distinct::new(64);
        for i in 0..50 {
            small.insert(&format!("/p/{}", i % 40));
        }
        assert_eq!(small.count(), 40);
        let (mut a, mut b) = (Distinct::new(256), Distinct::new(256));
        for i in 0..20_000 {
            if i % 2 == 0 { &mut a } else { &mut b }.insert(&format!("/user/{i}/about.json"));
        }
        a.merge(&b);
        let n = a.count() as f64;
        assert!((n - 20_000.0).abs() < 20_000.0 * 0.15, "{n}");
    }
}
