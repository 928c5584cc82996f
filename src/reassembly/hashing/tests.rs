//! The flow table's and the shard's hashes are seeded: keys worked out to
//! collide under the unseeded FxHash spread out, and the seed differs from
//! one process to the next while every thread of one agrees.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::*;

/// Client `n` (10.x.y.z, a port from n) to the one server 10.0.0.1:80.
fn key(n: u32) -> FlowKey {
    let ip = Ipv4Addr::from(0x0a00_0000 | (n >> 8) & 0x00ff_ffff);
    let client = SocketAddr::new(IpAddr::V4(ip), 1024 + (n & 0xff) as u16);
    FlowKey::of(client, "10.0.0.1:80".parse().unwrap()).0
}

/// The first `count` keys that `hash` sends to bucket 0 of a table of
/// `buckets` buckets (a power of two), as an attacker who knows the hash
/// would pick them.
fn crafted(count: usize, buckets: u64, hash: impl Fn(&FlowKey) -> u64) -> Vec<FlowKey> {
    (0..).map(key).filter(|k| hash(k) & (buckets - 1) == 0).take(count).collect()
}

/// The shard hash before it was seeded: FxHash, high bits folded in.
fn unseeded_shard_hash(key: &FlowKey) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    key.hash(&mut hasher);
    let h = hasher.finish();
    h ^ (h >> 29) ^ (h >> 47)
}

/// How many of `keys` share the fullest of `buckets` buckets under `hash`.
fn fullest_bucket(keys: &[FlowKey], buckets: u64, hash: impl Fn(&FlowKey) -> u64) -> usize {
    let mut counts = vec![0usize; buckets as usize];
    for k in keys {
        counts[(hash(k) & (buckets - 1)) as usize] += 1;
    }
    counts.into_iter().max().unwrap_or(0)
}

#[test]
fn keys_that_share_a_bucket_under_fxhash_spread_in_the_flow_table() {
    // hashbrown picks a bucket from the hash's low bits.
    const BUCKETS: u64 = 4096;
    let keys = crafted(256, BUCKETS, |k| rustc_hash::FxBuildHasher.hash_one(k));
    assert_eq!(fullest_bucket(&keys, BUCKETS, |k| rustc_hash::FxBuildHasher.hash_one(k)), 256);
    let table = FlowMap::<()>::default();
    let fullest = fullest_bucket(&keys, BUCKETS, |k| table.hasher().hash_one(k));
    // 256 keys over 4096 buckets: a bucket holds more than 4 with odds
    // far below one in a million.
    assert!(fullest <= 4, "{fullest} of 256 crafted keys share one bucket of the flow table");
}

#[test]
fn keys_that_share_a_shard_under_fxhash_spread_over_the_shards() {
    const SHARDS: u64 = 16;
    let keys = crafted(512, SHARDS, unseeded_shard_hash);
    assert_eq!(fullest_bucket(&keys, SHARDS, unseeded_shard_hash), 512);
    let fullest = fullest_bucket(&keys, SHARDS, FlowKey::hash64);
    // 32 expected per shard; 70 is more than six standard deviations off.
    assert!(fullest < 70, "{fullest} of 512 crafted keys land in one shard");
}

const PRINT_HASH: &str = "SHADOWTAP_TEST_PRINT_FLOW_HASH";

/// Helper of the next test, run by it in a process of its own.
#[test]
fn prints_the_shard_hash_when_asked() {
    if std::env::var_os(PRINT_HASH).is_some() {
        println!("shard-hash={} {}", key(7).hash64(), FlowKey::hash_u64(7));
    }
}

fn shard_hashes_in_a_new_process() -> String {
    let name = "reassembly::hashing::tests::prints_the_shard_hash_when_asked";
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(PRINT_HASH, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // The harness prints the test's name on the same line.
    let printed = stdout.split("shard-hash=").nth(1).and_then(|rest| rest.lines().next());
    printed.unwrap_or_else(|| panic!("no hash printed: {stdout}")).to_string()
}

#[test]
fn the_shard_hash_agrees_across_threads_and_changes_from_one_run_to_the_next() {
    let here = format!("{} {}", key(7).hash64(), FlowKey::hash_u64(7));
    let other_thread = std::thread::spawn(|| format!("{} {}", key(7).hash64(), FlowKey::hash_u64(7)));
    assert_eq!(other_thread.join().unwrap(), here);
    let (run1, run2) = (shard_hashes_in_a_new_process(), shard_hashes_in_a_new_process());
    assert_ne!(run1, run2, "two runs hashed the same connection alike");
}
