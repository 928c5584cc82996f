//! Inputs the fuzz targets (`fuzz/`, `scripts/fuzz`) found crashing, or
//! that pin a target's check, replayed through the same public entry
//! points so that a fix cannot silently regress.

use std::path::Path;

/// The diff's JSON parser accepts, rejects and builds exactly what
/// serde_json does (what the `json_tree` target checks), on its seeds.
#[test]
fn json_tree_agrees_with_serde_json_on_the_fuzz_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/json_tree");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let ours = shadowtap::diff::parse_json_for_fuzzing(&bytes).ok();
        let theirs = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
        assert_eq!(ours, theirs);
        seen += 1;
    }
    assert!(seen >= 4);
}
