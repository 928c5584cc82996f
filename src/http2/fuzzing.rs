//! The check the `http2` fuzz target (fuzz/) and its regression test run:
//! arbitrary bytes into the HPACK decoder or a whole HTTP/2 connection,
//! and what must hold whatever they are (no panic, bounds kept, every
//! request start handed back). Byte 0 chooses the mode:
//!
//! - bit 0 clear: HPACK. Bit 1: a decoder that joined late. The rest is
//!   blocks, each a length byte then that many bytes.
//! - bit 0 set: a connection. Bit 1: joined late (else from its start,
//!   the client's first bytes a preface). The rest is records: a byte
//!   whose bit 7 is the direction (set: from the server), bit 6 a gap
//!   before, bits 0-5 a length, then that many bytes.

use super::conn::{H2Conn, Out, PREFACE, StartClock, Stats};
use super::hpack::{Decoder, Field, MAX_BLOCK_DECODED};
use crate::exchange::{Exchange, Nanos};

const BODY_LIMIT: usize = 64;
const MAX_STREAMS: usize = 4;

#[derive(Default)]
struct Clock(i64);

impl StartClock for Clock {
    fn started(&mut self, _: Nanos) {
        self.0 += 1;
    }
    fn finished(&mut self, _: Nanos) {
        self.0 -= 1;
    }
}

/// Panics if an invariant breaks. Returns how many header blocks decoded
/// (HPACK) or exchanges came out (a connection).
pub fn check(data: &[u8]) -> usize {
    let Some((&mode, rest)) = data.split_first() else { return 0 };
    if mode & 1 == 0 { check_hpack(mode & 2 != 0, rest) } else { check_conn(mode & 2 != 0, rest) }
}

fn check_hpack(joined: bool, mut rest: &[u8]) -> usize {
    let mut decoded_blocks = 0;
    let mut decoder = if joined { Decoder::joined() } else { Decoder::from_start() };
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (block, next) = tail.split_at(len);
        rest = next;
        if let Ok(fields) = decoder.decode_block(block) {
            decoded_blocks += 1;
            let decoded: usize = fields
                .iter()
                .map(|f| match f {
                    Field::Known { name, value } => name.len() + value.len() + 32,
                    Field::Unknown => 32,
                })
                .sum();
            assert!(decoded <= MAX_BLOCK_DECODED);
            if !joined && decoder.is_known() {
                assert!(fields.iter().all(|f| *f != Field::Unknown), "unknown field from a known table");
            }
        }
    }
    decoded_blocks
}

fn check_conn(joined: bool, mut rest: &[u8]) -> usize {
    let (mut exchanges, mut stats, mut clock) = (Vec::<Exchange>::new(), Stats::default(), Clock::default());
    let client = "127.0.0.1:1".parse().expect("an address");
    let server = "127.0.0.1:2".parse().expect("an address");
    let mut out = Out {
        exchanges: &mut exchanges,
        stats: &mut stats,
        clock: &mut clock,
        body_limit: BODY_LIMIT,
        max_streams: MAX_STREAMS,
    };
    let mut conn =
        if joined { H2Conn::joined(&mut out, client, server) } else { H2Conn::from_start(&mut out, client, server) };
    if !joined {
        conn.on_data(&mut out, true, PREFACE, 0);
    }
    let mut ts = 1;
    while let Some((&record, tail)) = rest.split_first() {
        let len = usize::from(record & 0x3f).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        rest = next;
        let from_client = record & 0x80 == 0;
        if record & 0x40 != 0 {
            conn.on_gap(&mut out, from_client);
        }
        conn.on_data(&mut out, from_client, bytes, ts);
        ts += 1;
    }
    conn.on_close(&mut out);
    assert_eq!(clock.0, 0, "every request start handed back");
    for e in &exchanges {
        for payload in [Some(&e.request.payload), e.response.as_ref().map(|r| &r.payload)].into_iter().flatten() {
            assert!(payload.body.len() <= BODY_LIMIT);
            assert!(payload.body.len() as u64 <= payload.body_len);
        }
    }
    exchanges.len()
}
