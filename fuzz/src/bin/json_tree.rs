//! The diff's JSON tree parser against serde_json, whose grammar it
//! promises to accept exactly: same verdict on every input, and the same
//! document when both accept.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let ours = shadowtap::diff::parse_json_for_fuzzing(data);
        let theirs = serde_json::from_slice::<serde_json::Value>(data);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "the tree differs from serde_json's"),
            (Err(_), Err(_)) => {}
            _ => panic!("accepts differ: ours {ours:?}, serde_json {theirs:?}"),
        }
    });
}
