//! Unit tests of the reassembly stage: ordering, wrapping, holes, bounds,
//! and the reordering window for holes acknowledged past.

use super::*;
use crate::decode::FLAG_FIN;

/// Collects each direction's bytes, with `#` for every gap.
#[derive(Default)]
struct Collect {
    bytes: [Vec<u8>; 2],
    fins: [bool; 2],
    closed: bool,
}

impl Handler for Collect {
    type Ctx = ();
    fn open(_: &mut (), _: FlowKey, _: Option<Dir>) -> Self {
        Collect::default()
    }
    fn on_data(&mut self, _: &mut (), dir: Dir, data: &[u8], _: Nanos) {
        self.bytes[dir].extend_from_slice(data);
    }
    fn on_gap(&mut self, _: &mut (), dir: Dir, _: u64, _: Nanos) {
        self.bytes[dir].push(b'#');
    }
    fn on_fin(&mut self, _: &mut (), dir: Dir, _: Nanos) {
        self.fins[dir] = true;
    }
    fn on_close(&mut self, _: &mut (), _: Nanos) {
        self.closed = true;
    }
    fn wants_data(&self) -> bool {
        true
    }
}

fn seg(seq: u32, flags: u8, payload: &[u8]) -> Segment<'_> {
    Segment {
        src: "10.0.0.2:5000".parse().unwrap(),
        dst: "10.0.0.1:80".parse().unwrap(),
        seq,
        ack: 0,
        flags,
        ts: 1,
        payload,
    }
}

fn stream_of(r: &Reassembler<Collect>) -> Vec<u8> {
    let flow = r.flows.values().next().unwrap();
    flow.handler.bytes[1].clone()
}

#[test]
fn out_of_order_and_duplicate_segments_come_out_in_order_once() {
    let mut r = Reassembler::<Collect>::new(Limits::default());
    r.segment(&mut (), &seg(100, FLAG_SYN, b""));
    r.segment(&mut (), &seg(107, 0, b"world"));
    r.segment(&mut (), &seg(101, 0, b"hello "));
    r.segment(&mut (), &seg(101, 0, b"hello "));
    r.segment(&mut (), &seg(104, 0, b"lo wo"));
    assert_eq!(stream_of(&r), b"hello world");
    assert_eq!(r.stats.out_of_order, 1);
    assert_eq!(r.stats.retransmitted, 2);
}

#[test]
fn sequence_numbers_wrap_around_zero() {
    let mut r = Reassembler::<Collect>::new(Limits::default());
    r.segment(&mut (), &seg(u32::MAX - 2, FLAG_SYN, b""));
    r.segment(&mut (), &seg(u32::MAX - 1, 0, b"ab"));
    r.segment(&mut (), &seg(1, 0, b"cd"));
    r.segment(&mut (), &seg(0, 0, b"X"));
    assert_eq!(stream_of(&r), b"abXcd");
}

/// The server's ACK of `ack` (bytes of the client's stream), at `ts`.
fn server_ack(ack: u32, ts: Nanos) -> Segment<'static> {
    let mut seg = seg(9000, FLAG_ACK, b"");
    std::mem::swap(&mut seg.src, &mut seg.dst);
    seg.ack = ack;
    seg.ts = ts;
    seg
}

fn at(ts: Nanos, mut segment: Segment<'_>) -> Segment<'_> {
    segment.ts = ts;
    segment
}

const MS: Nanos = 1_000_000;

#[test]
fn an_acknowledged_hole_becomes_a_gap_once_the_reordering_window_passed() {
    let mut r = Reassembler::<Collect>::new(Limits::default());
    r.segment(&mut (), &seg(100, FLAG_SYN, b""));
    r.segment(&mut (), &seg(101, 0, b"aa"));
    r.segment(&mut (), &seg(105, 0, b"cc"));
    r.segment(&mut (), &server_ack(107, 10 * MS));
    assert_eq!(stream_of(&r), b"aa", "still within the window");
    r.segment(&mut (), &server_ack(107, 10 * MS + DEFAULT_REORDER_WINDOW_NS));
    assert_eq!(stream_of(&r), b"aa#cc");
    assert_eq!(r.stats.gap_bytes, 2);
}

#[test]
fn a_zero_window_gives_the_hole_up_at_the_first_ack() {
    let mut r = Reassembler::<Collect>::new(Limits { reorder_window_ns: 0, ..Limits::default() });
    r.segment(&mut (), &seg(100, FLAG_SYN, b""));
    r.segment(&mut (), &seg(101, 0, b"aa"));
    r.segment(&mut (), &seg(105, 0, b"cc"));
    r.segment(&mut (), &server_ack(107, 1));
    assert_eq!(stream_of(&r), b"aa#cc");
}

/// Nothing held beyond the hole (the lost bytes were the stream's tail):
/// with a zero window the ACK past them is enough, without waiting for close.
#[test]
fn a_zero_window_gives_a_lost_tail_up_at_the_ack() {
    for (window, expected) in [(0, &b"aa#"[..]), (DEFAULT_REORDER_WINDOW_NS, &b"aa"[..])] {
        let mut r = Reassembler::<Collect>::new(Limits { reorder_window_ns: window, ..Limits::default() });
        r.segment(&mut (), &seg(100, FLAG_SYN, b""));
        r.segment(&mut (), &seg(101, 0, b"aa"));
        r.segment(&mut (), &server_ack(107, 1));
        assert_eq!(stream_of(&r), expected, "window {window}");
    }
}

/// Mirror port: the server's ACK reaches the capture before the client's
/// data it acknowledges, which comes a few milliseconds later.
#[test]
fn data_captured_after_its_ack_within_the_window_fills_the_hole() {
    let mut r = Reassembler::<Collect>::new(Limits::default());
    r.segment(&mut (), &at(0, seg(100, FLAG_SYN, b"")));
    r.segment(&mut (), &at(MS, seg(101, 0, b"aa")));
    r.segment(&mut (), &at(2 * MS, seg(105, 0, b"cc")));
    r.segment(&mut (), &server_ack(107, 3 * MS));
    r.segment(&mut (), &server_ack(107, 4 * MS));
    r.segment(&mut (), &at(5 * MS, seg(103, 0, b"bb")));
    assert_eq!(stream_of(&r), b"aabbcc");
    assert_eq!((r.stats.gaps, r.stats.gap_bytes), (0, 0));
}

#[test]
fn a_quiet_flow_gives_its_acknowledged_hole_up_at_the_sweep() {
    let mut r = Reassembler::<Collect>::new(Limits::default());
    r.segment(&mut (), &at(0, seg(100, FLAG_SYN, b"")));
    r.segment(&mut (), &at(0, seg(101, 0, b"aa")));
    r.segment(&mut (), &at(0, seg(105, 0, b"cc")));
    r.segment(&mut (), &server_ack(107, 0));
    r.expire_idle(&mut (), 2_000 * MS);
    assert_eq!(stream_of(&r), b"aa#cc");
    assert_eq!(r.active_flows(), 1);
}

proptest::proptest! {
    /// Whatever order a mirror port shows the segments in, within the
    /// reordering window, with the peer's ACKs of each segment possibly
    /// captured before the segment itself: the stream comes out whole, no
    /// gap.
    #[test]
    fn reordering_within_the_window_never_makes_a_gap(
        sizes in proptest::collection::vec(1usize..50, 1..20),
        delays in proptest::collection::vec(0i64..40, 20),
        ack_early in proptest::collection::vec(proptest::bool::ANY, 20),
    ) {
        let payload: Vec<u8> = (0..sizes.iter().sum::<usize>()).map(|i| b'a' + (i % 26) as u8).collect();
        // (capture time, data segment start and end, or an ACK up to end)
        type Event = (Nanos, Option<(usize, usize)>, u32);
        let mut events: Vec<Event> = Vec::new();
        let mut start = 0;
        for (i, size) in sizes.iter().enumerate() {
            let sent = (i as i64 + 1) * MS;
            let end = start + size;
            let seen = sent + delays[i] * MS;
            events.push((seen, Some((start, end)), 0));
            // The ACK follows the data on the wire; captured via another
            // path it may come first, but never later than the window.
            let ack_at = if ack_early[i] { sent } else { seen + MS };
            events.push((ack_at, None, 101 + end as u32));
            start = end;
        }
        events.sort_by_key(|e| e.0);
        let mut r = Reassembler::<Collect>::new(Limits::default());
        r.segment(&mut (), &at(0, seg(100, FLAG_SYN, b"")));
        for (ts, data, ack) in events {
            match data {
                Some((s, e)) => r.segment(&mut (), &at(ts, seg(101 + s as u32, FLAG_ACK, &payload[s..e]))),
                None => r.segment(&mut (), &server_ack(ack, ts)),
            }
        }
        proptest::prop_assert_eq!(stream_of(&r), payload);
        proptest::prop_assert_eq!(r.stats.gaps, 0);
    }
}

#[test]
fn fin_then_close_flushes_and_removes_the_flow() {
    let mut r = Reassembler::<Collect>::new(Limits::default());
    r.segment(&mut (), &seg(100, FLAG_SYN, b""));
    r.segment(&mut (), &seg(101, FLAG_FIN, b"bye"));
    assert_eq!(r.active_flows(), 1);
    let mut fin = seg(500, FLAG_FIN | FLAG_ACK, b"");
    std::mem::swap(&mut fin.src, &mut fin.dst);
    r.segment(&mut (), &fin);
    assert_eq!(r.active_flows(), 0);
}

/// Found by tests/reassembly_props.rs: a duplicate of the request that
/// arrived after both FINs opened a new, mid-stream connection, and the
/// HTTP stage emitted the request a second time, unanswered.
#[test]
fn a_late_copy_of_a_closed_connections_data_opens_nothing() {
    let mut r = Reassembler::<Collect>::new(Limits::default());
    r.segment(&mut (), &seg(u32::MAX - 1, FLAG_SYN, b""));
    r.segment(&mut (), &seg(u32::MAX, FLAG_FIN, b"request"));
    let mut fin = seg(500, FLAG_FIN | FLAG_ACK, b"");
    std::mem::swap(&mut fin.src, &mut fin.dst);
    r.segment(&mut (), &fin);
    assert_eq!(r.active_flows(), 0);
    // Its sequence numbers wrapped; the copy ends at the FIN.
    r.segment(&mut (), &seg(u32::MAX, FLAG_ACK, b"request"));
    assert_eq!((r.active_flows(), r.stats.connections), (0, 1));
    // A new SYN on the same addresses is a new connection.
    r.segment(&mut (), &seg(7, FLAG_SYN, b""));
    r.segment(&mut (), &seg(8, 0, b"again"));
    assert_eq!(stream_of(&r), b"again");
    assert_eq!(r.stats.connections, 2);
}

#[test]
fn per_flow_bound_gives_up_the_hole_and_counts_it() {
    let limits = Limits { per_flow_ooo_bytes: 8, ..Limits::default() };
    let mut r = Reassembler::<Collect>::new(limits);
    r.segment(&mut (), &seg(100, FLAG_SYN, b""));
    r.segment(&mut (), &seg(111, 0, b"12345"));
    r.segment(&mut (), &seg(116, 0, b"67890"));
    assert_eq!(stream_of(&r), b"#1234567890");
    assert_eq!(r.stats.bound_gaps, 1);
}
