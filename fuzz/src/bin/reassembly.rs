//! TCP reassembly and the HTTP stage, fed the segments an input describes
//! (see the crate doc): reordering, overlaps, holes, FIN/RST at any point,
//! sequence wrap, idle expiry, bounds. Byte 0 picks the configuration.
//! Checks that nothing is left waiting once every flow is closed.

use shadowtap::http::{self, Conn, Ctx};
use shadowtap::reassembly::{Limits, Reassembler, Segment};
use shadowtap_fuzz::{SERVER_PORT, segments};

fn main() {
    afl::fuzz!(|data: &[u8]| run(data));
}

fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let small = mode & 2 != 0;
    let config = http::Config {
        body_limit: if small { 64 } else { 1 << 20 },
        ports: if mode & 1 != 0 { vec![SERVER_PORT] } else { Vec::new() },
        max_head: if small { 256 } else { 64 << 10 },
        // Small bounds reach the unanswered and cut-short paths.
        max_waiting_per_conn: if small { 3 } else { 1000 },
        max_waiting_bytes: if small { 1024 } else { 64 << 20 },
        max_reading_bytes: if small { 2048 } else { 128 << 20 },
    };
    let limits = Limits {
        per_flow_ooo_bytes: if small { 300 } else { 2 << 20 },
        shard_ooo_bytes: if small { 600 } else { 64 << 20 },
        max_flows: if mode & 4 != 0 { 2 } else { 500_000 },
        idle_timeout_ns: 1_000_000_000,
        reorder_window_ns: if mode & 8 != 0 { 0 } else { 50_000_000 },
    };
    let mut ctx = Ctx::new(config);
    let mut reassembler = Reassembler::<Conn>::new(limits);
    for seg in segments(rest) {
        let segment = Segment {
            src: seg.src,
            dst: seg.dst,
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            ts: seg.ts,
            payload: seg.payload,
        };
        reassembler.segment(&mut ctx, &segment);
        reassembler.expire_idle(&mut ctx, seg.ts);
    }
    reassembler.close_all(&mut ctx);
    assert_eq!(reassembler.active_flows(), 0);
    assert_eq!(reassembler.buffered_bytes(), 0, "out-of-order bytes held after every flow closed");
    assert_eq!(ctx.pending.oldest(), None, "a request still waits after every flow closed");
    let body_limit = ctx.config.body_limit;
    for exchange in &ctx.out {
        assert!(exchange.request.payload.body.len() <= body_limit, "request body kept past the limit");
        if let Some(response) = &exchange.response {
            assert!(response.payload.body.len() <= body_limit, "response body kept past the limit");
        }
    }
}
