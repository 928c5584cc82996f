//! The diff of two answers whose bodies come from the input. Byte 0 picks
//! each side's Content-Type and Content-Encoding, whether the statuses
//! differ and which rules apply; bytes 1-2 (u16 LE) where the recorded body
//! ends and the candidate's begins. Checks that an answer compared with
//! itself is equal (a wrong verdict either way is the worst bug).

use shadowtap::diff::{Answer, CompareRules, compare};

const CONTENT_TYPES: [Option<&str>; 4] =
    [Some("application/json"), Some("text/plain; charset=utf-8"), Some("application/octet-stream"), None];

fn headers(content_type: u8, gzip: bool) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    if let Some(value) = CONTENT_TYPES[usize::from(content_type & 3)] {
        headers.push(("Content-Type".to_owned(), value.to_owned()));
    }
    if gzip {
        headers.push(("Content-Encoding".to_owned(), "gzip".to_owned()));
    }
    headers
}

fn rules(lenient: bool) -> CompareRules {
    if !lenient {
        return CompareRules::default();
    }
    CompareRules {
        ignore_paths: vec!["/id".to_owned(), "/**/ts".to_owned()],
        unordered_arrays: vec!["/*".to_owned(), "/items/**".to_owned()],
        null_equals_missing: true,
        timestamps_as_instants: false,
        numbers_by_value: false,
        ..CompareRules::default()
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if data.len() < 3 {
            return;
        }
        let mode = data[0];
        let bodies = &data[3..];
        let split = usize::from(u16::from_le_bytes([data[1], data[2]])).min(bodies.len());
        let (recorded_body, candidate_body) = bodies.split_at(split);
        let recorded_headers = headers(mode, mode & 16 != 0);
        let candidate_headers = headers(mode >> 2, mode & 32 != 0);
        let recorded = Answer { status: 200, headers: &recorded_headers, body: recorded_body };
        let candidate = Answer {
            status: if mode & 64 != 0 { 500 } else { 200 },
            headers: &candidate_headers,
            body: candidate_body,
        };
        let rules = rules(mode & 128 != 0);
        let _ = compare(&recorded, &candidate, &rules);
        for answer in [&recorded, &candidate] {
            let same = compare(answer, answer, &rules);
            assert!(same.is_equal(), "an answer differs from itself: {:?}", same.differences);
        }
    });
}
