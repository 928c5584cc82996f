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

/// The `http2` target's checks (HPACK and whole connections) hold on its
/// seeds (blocks of RFC 7541 Appendix C, the connection of
/// pcaps/h2c-nghttp.pcap from its start and joined late), and on those
/// seeds cut and corrupted a byte at a time.
#[test]
fn http2_checks_hold_on_the_fuzz_seeds_and_their_mutations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/http2");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        // Whole blocks decoded, or nghttp's four streams as exchanges (the
        // joined copy starts inside the client's first frames, before its
        // HEADERS, and on the server's side after its SETTINGS).
        let want = match name {
            "hpack-c3" => 3,
            "hpack-c4-joined" => 2,
            _ => 4,
        };
        assert_eq!(shadowtap::http2::fuzzing::check(&bytes), want, "{name}");
        for at in (1..bytes.len()).step_by(7) {
            let _ = shadowtap::http2::fuzzing::check(&bytes[..at]);
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x5a;
            let _ = shadowtap::http2::fuzzing::check(&flipped);
        }
        seen += 1;
    }
    assert!(seen >= 4);
}
