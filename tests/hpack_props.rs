//! Property tests of the passive HPACK decoder against an independent
//! encoder (httlib-hpack): generated header lists with every representation
//! (indexed, literal with/without/never indexing, Huffman or not) and
//! dynamic table size updates are encoded block by block, then
//! - decoded from the connection's start: exactly the lists;
//! - decoded after dropping the first K blocks (a capture that joined
//!   late): every field is either exactly right or unknown, never wrong,
//!   and the table becomes known again once a size update empties it;
//! - any block cut at any byte: an error or a prefix of its list, no panic.

use httlib_hpack::Encoder;
use proptest::prelude::*;
use shadowtap::http2::hpack::{Decoder, Field};

type Pair = (Vec<u8>, Vec<u8>);

/// One block: an optional size update first, then fields with flags.
#[derive(Clone, Debug)]
struct Block {
    size_update: Option<u32>,
    fields: Vec<(Pair, u8)>,
}

/// Names and values from small pools so that entries get reused (and so
/// referenced by index), with static-table names among them.
fn pair() -> impl Strategy<Value = Pair> {
    let names =
        prop::sample::select(vec![":method", ":path", ":status", "content-type", "x-a", "x-bb", "cookie", "date"]);
    let values = prop_oneof![
        prop::sample::select(vec!["GET", "POST", "/", "/a/b", "200", "text/plain", "v", ""])
            .prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..300),
    ];
    (names, values).prop_map(|(n, v)| (n.as_bytes().to_vec(), v))
}

fn flags() -> impl Strategy<Value = u8> {
    // HUFFMAN_NAME 0x1, HUFFMAN_VALUE 0x2, WITH_INDEXING 0x4, NEVER_INDEXED 0x8,
    // BEST_FORMAT 0x10; indexing and never-indexed exclude each other.
    (0u8..4, prop::sample::select(vec![0u8, 0x4, 0x8]), any::<bool>())
        .prop_map(|(huffman, index, best)| huffman | index | if best { 0x10 } else { 0 })
}

fn block() -> impl Strategy<Value = Block> {
    let update = prop_oneof![
        6 => Just(None),
        1 => Just(Some(0)),
        2 => (0u32..5000).prop_map(Some),
    ];
    (update, prop::collection::vec((pair(), flags()), 0..12))
        .prop_map(|(size_update, fields)| Block { size_update, fields })
}

fn encode(blocks: &[Block]) -> Vec<Vec<u8>> {
    let mut encoder = Encoder::default();
    blocks
        .iter()
        .map(|block| {
            let mut dst = Vec::new();
            if let Some(size) = block.size_update {
                encoder.update_max_dynamic_size(size, &mut dst).expect("a size update");
            }
            for ((name, value), flags) in &block.fields {
                encoder.encode((name.clone(), value.clone(), *flags), &mut dst).expect("an encodable field");
            }
            dst
        })
        .collect()
}

fn wanted(block: &Block) -> Vec<Field> {
    block.fields.iter().map(|((name, value), _)| Field::Known { name: name.clone(), value: value.clone() }).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoded_from_the_start_gives_exactly_the_lists(blocks in prop::collection::vec(block(), 1..20)) {
        let mut decoder = Decoder::from_start();
        for (bytes, block) in encode(&blocks).iter().zip(&blocks) {
            prop_assert_eq!(decoder.decode_block(bytes).expect("a valid block"), wanted(block));
            prop_assert!(decoder.is_known());
        }
    }

    #[test]
    fn joined_late_every_field_is_right_or_unknown(blocks in prop::collection::vec(block(), 1..24), skip in 0usize..12) {
        let encoded = encode(&blocks);
        let mut decoder = Decoder::joined();
        let mut emptied = false;
        for (bytes, block) in encoded.iter().zip(&blocks).skip(skip) {
            let got = decoder.decode_block(bytes).expect("a valid block: unknown references are not errors");
            emptied |= block.size_update == Some(0);
            let want = wanted(block);
            prop_assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                prop_assert!(g == w || *g == Field::Unknown, "wrong field {:?}, want {:?}", g, w);
                if emptied {
                    prop_assert_eq!(g, w, "after a size update to 0 everything is known");
                }
            }
        }
        if emptied {
            prop_assert!(decoder.is_known());
        }
    }

    #[test]
    fn a_block_cut_anywhere_is_an_error_or_a_prefix(blocks in prop::collection::vec(block(), 1..10), cut in any::<prop::sample::Index>()) {
        let encoded = encode(&blocks);
        let mut decoder = Decoder::from_start();
        for (bytes, block) in encoded.iter().zip(&blocks) {
            if !bytes.is_empty() {
                let at = cut.index(bytes.len());
                if let Ok(got) = decoder.clone().decode_block(&bytes[..at]) {
                    let want = wanted(block);
                    prop_assert!(got.len() <= want.len() && got[..] == want[..got.len()], "cut at {}: {:?}", at, got);
                }
            }
            decoder.decode_block(bytes).expect("a valid block");
        }
    }

    #[test]
    fn any_bytes_decode_without_panic(blocks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..8)) {
        let mut decoder = Decoder::from_start();
        let mut joined = Decoder::joined();
        for bytes in &blocks {
            let _ = decoder.decode_block(bytes);
            let _ = joined.decode_block(bytes);
        }
    }
}
