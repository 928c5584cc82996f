//! Bounds on the maps whose keys the traffic chooses (endpoint names, JSON
//! field paths, generated ids, validators). In: a map at its bound and how
//! to rank its entries; out: the keys to evict (the least-seen, or the
//! oldest, as each owner decides), so one more key fits. Owners count what
//! they evict under one of the [`MAP_NAMES`]; the report shows the counts
//! (`evicted`) and the daemon exports `shadowtap_evicted_total{map}`.
//!
//! Nothing stops learning at a bound: a new key always gets in, by pushing
//! the lowest-ranked eighth of the map out. Evicting in batches keeps the
//! cost amortised (one O(n) selection per n/8 new keys) where evicting one
//! key per insert would scan the whole map each time under a flood of new
//! keys.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// The label of each bounded map, in `shadowtap_evicted_total{map}` and in
/// the report's `evicted`.
pub const MAP_NAMES: [&str; 7] = [
    "report_endpoints",
    "report_fields",
    "noise_endpoints",
    "noise_fields",
    "repeats",
    "generated_values",
    "validators",
];

/// Evictions per map (see [`MAP_NAMES`]).
pub type Evicted = BTreeMap<&'static str, u64>;

/// Every map's count, zero where nothing was evicted (so a reader sees
/// every bound, not only those that were hit).
pub fn evicted_zero() -> Evicted {
    MAP_NAMES.iter().map(|name| (*name, 0)).collect()
}

/// Adds `other`'s counts into `into`.
pub fn add_evicted(into: &mut Evicted, other: &Evicted) {
    for (name, n) in other {
        *into.entry(name).or_default() += n;
    }
}

/// The keys to evict so that one more entry fits under `max`: none while
/// there is room, else the lowest-ranked `len - max + 1 + max / 8`.
pub fn victims<'a, K, V, R>(
    entries: impl Iterator<Item = (&'a K, &'a V)>,
    len: usize,
    max: usize,
    rank: impl Fn(&K, &V) -> R,
) -> Vec<K>
where
    K: Clone + 'a,
    V: 'a,
    R: Ord,
{
    if len < max {
        return Vec::new();
    }
    let evict = (len + 1 - max + max / 8).min(len);
    let mut ranked: Vec<(R, &K)> = entries.map(|(k, v)| (rank(k, v), k)).collect();
    if evict < ranked.len() {
        ranked.select_nth_unstable_by(evict, |a, b| a.0.cmp(&b.0));
    }
    ranked.truncate(evict);
    ranked.into_iter().map(|(_, k)| k.clone()).collect()
}

/// Longest key kept as it is; longer ones are cut (see [`capped_key`]).
pub const KEY_BYTES: usize = 200;

/// A key of at most about [`KEY_BYTES`]: a longer one (a JSON path made of
/// huge keys) is cut and given a hash of the whole, so distinct long keys
/// stay distinct while the map's bytes stay bounded by its entries. The
/// hash is fixed (not seeded): lanes, runs and hosts must agree on names.
pub fn capped_key(key: &str) -> std::borrow::Cow<'_, str> {
    if key.len() <= KEY_BYTES {
        return std::borrow::Cow::Borrowed(key);
    }
    let mut h = std::hash::DefaultHasher::new();
    key.hash(&mut h);
    let cut = key.floor_char_boundary(KEY_BYTES - 20);
    std::borrow::Cow::Owned(format!("{}…#{:016x}", &key[..cut], h.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn room_is_made_by_evicting_the_lowest_ranked_eighth() {
        let map: HashMap<u32, u64> = (0..16).map(|k| (k, u64::from(k))).collect();
        assert!(victims(map.iter(), map.len(), 17, |_, v| *v).is_empty(), "room left: nothing evicted");
        let mut gone = victims(map.iter(), map.len(), 16, |_, v| *v);
        gone.sort();
        assert_eq!(gone, [0, 1, 2], "one to fit plus an eighth of 16, the least seen");
        let mut gone = victims(map.iter(), map.len(), 10, |_, v| *v);
        gone.sort();
        assert_eq!(gone, (0..8).collect::<Vec<_>>(), "over the bound (a lowered bound): down to it, less an eighth");
    }

    #[test]
    fn long_keys_are_cut_but_stay_distinct() {
        let (a, b) = ("x".repeat(5000) + "a", "x".repeat(5000) + "b");
        let (ca, cb) = (capped_key(&a), capped_key(&b));
        assert!(ca.len() <= KEY_BYTES && cb.len() <= KEY_BYTES, "{} {}", ca.len(), cb.len());
        assert_ne!(ca, cb);
        assert_eq!(capped_key("/short/path"), "/short/path");
        let wide = "é".repeat(300);
        assert!(capped_key(&wide).len() <= KEY_BYTES, "cut on a char boundary");
    }
}
