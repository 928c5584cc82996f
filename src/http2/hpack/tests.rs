use super::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    digits.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap()).collect()
}

fn known(pairs: &[(&str, &str)]) -> Vec<Field> {
    pairs.iter().map(|(n, v)| Field::Known { name: n.as_bytes().to_vec(), value: v.as_bytes().to_vec() }).collect()
}

const C3: [&str; 3] = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
];

const C4: [&str; 3] = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
];

fn c3_lists() -> [Vec<Field>; 3] {
    let base = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")];
    let mut second = base.to_vec();
    second.push(("cache-control", "no-cache"));
    [
        known(&base),
        known(&second),
        known(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ]),
    ]
}

#[test]
fn rfc_7541_c3_requests_without_huffman() {
    let mut decoder = Decoder::from_start();
    for (block, want) in C3.iter().zip(c3_lists()) {
        assert_eq!(decoder.decode_block(&hex(block)).unwrap(), want);
    }
    assert_eq!(decoder.size, 164, "table size after C.3.3");
    assert!(decoder.is_known());
}

#[test]
fn rfc_7541_c4_requests_with_huffman() {
    let mut decoder = Decoder::from_start();
    for (block, want) in C4.iter().zip(c3_lists()) {
        assert_eq!(decoder.decode_block(&hex(block)).unwrap(), want);
    }
    assert_eq!(decoder.size, 164);
}

/// The header lists of RFC 7541 C.5 and C.6 (the same, encoded without
/// and with Huffman), decoded with a 256-byte table.
fn check_responses(blocks: [&str; 3]) {
    let date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
    let date2 = "Mon, 21 Oct 2013 20:13:22 GMT";
    let location = "https://www.example.com";
    let wants = [
        known(&[(":status", "302"), ("cache-control", "private"), ("date", date1), ("location", location)]),
        known(&[(":status", "307"), ("cache-control", "private"), ("date", date1), ("location", location)]),
        known(&[
            (":status", "200"),
            ("cache-control", "private"),
            ("date", date2),
            ("location", location),
            ("content-encoding", "gzip"),
            ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"),
        ]),
    ];
    let mut decoder = Decoder::from_start();
    // The examples run with a 256-byte table; say so the way a peer would.
    decoder.decode_block(&[0x3f, 0xe1, 0x01]).unwrap();
    for (block, want) in blocks.iter().zip(wants) {
        assert_eq!(decoder.decode_block(&hex(block)).unwrap(), want);
    }
    assert_eq!(decoder.size, 215, "table size after the third response");
    assert_eq!(decoder.entries.len(), 3);
}

#[test]
fn rfc_7541_c5_responses_with_eviction() {
    check_responses([
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
         6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
         3d31",
    ]);
}

#[test]
fn rfc_7541_c6_responses_with_huffman_and_eviction() {
    check_responses([
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ]);
}

#[test]
fn joined_late_marks_references_to_older_entries_unknown() {
    let mut decoder = Decoder::joined();
    let got = decoder.decode_block(&hex(C3[2])).unwrap();
    let mut want = known(&[(":method", "GET"), (":scheme", "https"), (":path", "/index.html")]);
    want.push(Field::Unknown);
    want.extend(known(&[("custom-key", "custom-value")]));
    assert_eq!(got, want);
    // The entry it inserted is known by its position from the newest.
    assert_eq!(decoder.decode_block(&[0xbe]).unwrap(), known(&[("custom-key", "custom-value")]));
    assert_eq!(decoder.decode_block(&[0xbf]).unwrap(), vec![Field::Unknown]);
    assert!(!decoder.is_known());
}

#[test]
fn literal_named_by_an_unknown_entry_inserts_an_unknown_entry() {
    let mut decoder = Decoder::joined();
    // 0x40 | 63: incremental indexing, name from dynamic index 63 (unknown).
    let got = decoder.decode_block(&hex("7f00 0176")).unwrap();
    assert_eq!(got, vec![Field::Unknown]);
    assert_eq!(decoder.decode_block(&[0xbe]).unwrap(), vec![Field::Unknown]);
}

#[test]
fn size_update_to_zero_makes_the_table_known() {
    let mut decoder = Decoder::joined();
    decoder.decode_block(&[0x20]).unwrap();
    assert!(decoder.is_known());
    assert_eq!(decoder.decode_block(&[0xbe]), Err(HpackError::BadIndex(62)), "the table is empty: nothing to refer to");
}

#[test]
fn known_insertions_filling_the_table_make_it_known() {
    let mut decoder = Decoder::joined();
    // A size update to 100 (not 0): older entries may still fit beside.
    decoder.decode_block(&hex("3f45")).unwrap();
    assert!(!decoder.is_known());
    // "aaaa"="bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb": 4 + 40 + 32 = 76; 76 + 32 > 100.
    let mut block = hex("4004 6161 6161 28");
    block.extend([b'b'; 40]);
    decoder.decode_block(&block).unwrap();
    assert!(decoder.is_known());
    assert_eq!(decoder.decode_block(&[0xbf]), Err(HpackError::BadIndex(63)));
}

#[test]
fn an_entry_larger_than_the_table_empties_it() {
    let mut decoder = Decoder::joined();
    decoder.decode_block(&hex("3f11")).unwrap(); // max 48
    let mut block = hex("4001 6110");
    block.extend([b'v'; 16]); // 1 + 16 + 32 = 49 > 48
    decoder.decode_block(&block).unwrap();
    assert!(decoder.is_known());
    assert_eq!(decoder.entries.len(), 0);
}

#[test]
fn bad_input_is_an_error_and_loses_the_table() {
    let cases: [(&str, HpackError); 5] = [
        ("80", HpackError::ZeroIndex),
        ("ff", HpackError::Truncated),
        ("ff ff ff ff ff ff 0f", HpackError::IntegerOverflow),
        ("40 7f", HpackError::Truncated),
        ("00 01 61 8a ff", HpackError::Truncated),
    ];
    for (block, err) in cases {
        let mut decoder = Decoder::from_start();
        assert_eq!(decoder.decode_block(&hex(block)), Err(err), "{block}");
        assert!(!decoder.is_known(), "{block}: the table is lost after an error");
    }
    let mut decoder = Decoder::from_start();
    assert_eq!(decoder.decode_block(&[0xbe]), Err(HpackError::BadIndex(62)));
    // A huge string length is refused without allocating it.
    assert_eq!(Decoder::from_start().decode_block(&hex("00 7f ff ff ff 0f")), Err(HpackError::Truncated));
}

#[test]
fn the_kept_table_is_bounded() {
    let mut decoder = Decoder::from_start();
    decoder.decode_block(&hex("3f e1 ff 3f")).unwrap(); // a 1 MiB table
    let mut block = Vec::new();
    for _ in 0..200 {
        block.extend(hex("4001 617f e906"));
        block.extend([b'x'; 1000]);
    }
    decoder.decode_block(&block).unwrap();
    assert!(decoder.size <= MAX_KEPT_TABLE);
    assert_eq!(decoder.decode_block(&[0xbe]).unwrap(), known(&[("a", &"x".repeat(1000))]));
    let far = hex("ff 80 01"); // index 127 + 128 = 255: dropped by the bound
    assert_eq!(decoder.decode_block(&far).unwrap(), vec![Field::Unknown]);
}
