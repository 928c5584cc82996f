//! Half-open connections: flows opened by a SYN that have carried no data
//! yet, in the order they opened. In: each flow opened without data. Out:
//! when the flow table is full, the oldest flow still without data, which
//! gives its place to the new connection.
//!
//! Why: a SYN flood (spoofed sources that never complete the handshake)
//! otherwise fills the table with connections that will never carry a
//! byte, and every legitimate connection opened during the flood is refused
//! until the flood's flows idle out: its requests are never compared. A
//! flow without data has nothing to lose when it is let go (no request is
//! half-read); should it carry data after all, it is picked up again
//! mid-stream like any connection joined late.
//!
//! Kept as a queue of keys checked lazily (a key whose flow closed or
//! carried data is skipped when it comes up), compacted when it grows past
//! twice the table, so each open costs O(1) amortised and the queue stays
//! within a small multiple of the table.

use std::collections::VecDeque;

use super::{FlowKey, FlowMap};

#[derive(Default)]
pub(super) struct HalfOpen {
    order: VecDeque<FlowKey>,
}

impl HalfOpen {
    /// `key` was just opened without data; `is_half_open` tells whether a
    /// queued key still is (used when the queue is compacted).
    pub(super) fn opened(&mut self, key: FlowKey, max_flows: usize, is_half_open: impl Fn(&FlowKey) -> bool) {
        self.order.push_back(key);
        if self.order.len() > 2 * max_flows.max(64) {
            self.compact(is_half_open);
        }
    }

    /// The oldest queued flow that is still half-open, taken off the queue.
    pub(super) fn take_oldest(&mut self, is_half_open: impl Fn(&FlowKey) -> bool) -> Option<FlowKey> {
        while let Some(key) = self.order.pop_front() {
            if is_half_open(&key) {
                return Some(key);
            }
        }
        None
    }

    /// Drops the keys of flows gone or past their handshake, and repeats
    /// of a key (a 4-tuple reopened), keeping the first.
    fn compact(&mut self, is_half_open: impl Fn(&FlowKey) -> bool) {
        let mut seen: FlowMap<()> = FlowMap::default();
        self.order.retain(|key| is_half_open(key) && seen.insert(*key, ()).is_none());
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Dir, Handler, Limits, Reassembler, Segment};
    use crate::decode::{FLAG_ACK, FLAG_SYN};
    use crate::exchange::Nanos;

    /// Each closed connection's client port and the bytes its client sent.
    type Closed = Vec<(u16, Vec<u8>)>;

    struct Client {
        port: u16,
        bytes: Vec<u8>,
    }

    impl Handler for Client {
        type Ctx = Closed;
        fn open(_: &mut Closed, key: super::FlowKey, _: Option<Dir>) -> Self {
            Client { port: key.a.port().max(key.b.port()), bytes: Vec::new() }
        }
        fn on_data(&mut self, _: &mut Closed, _: Dir, data: &[u8], _: Nanos) {
            self.bytes.extend_from_slice(data);
        }
        fn on_gap(&mut self, _: &mut Closed, _: Dir, _: u64, _: Nanos) {}
        fn on_fin(&mut self, _: &mut Closed, _: Dir, _: Nanos) {}
        fn on_close(&mut self, closed: &mut Closed, _: Nanos) {
            closed.push((self.port, std::mem::take(&mut self.bytes)));
        }
        fn wants_data(&self) -> bool {
            true
        }
    }

    /// A segment from client port `port` (above the server's 80) to the server.
    fn from(port: u16, seq: u32, flags: u8, payload: &[u8]) -> Segment<'_> {
        Segment {
            src: format!("10.0.0.2:{port}").parse().unwrap(),
            dst: "10.0.0.1:80".parse().unwrap(),
            seq,
            ack: 0,
            flags,
            ts: 1,
            payload,
        }
    }

    fn table(max_flows: usize) -> Reassembler<Client> {
        Reassembler::new(Limits { max_flows, ..Limits::default() })
    }

    #[test]
    fn a_table_full_of_half_open_flows_still_takes_a_new_connection() {
        let (mut r, mut closed) = (table(4), Closed::new());
        for port in 1000..1010 {
            r.segment(&mut closed, &from(port, 7, FLAG_SYN, b""));
        }
        assert_eq!((r.active_flows(), r.stats.flows_refused), (4, 6));
        r.segment(&mut closed, &from(2000, 100, FLAG_SYN, b""));
        r.segment(&mut closed, &from(2000, 101, FLAG_ACK, b"GET / HTTP/1.1\r\n\r\n"));
        r.close_all(&mut closed);
        let got: Vec<_> = closed.iter().filter(|(_, bytes)| !bytes.is_empty()).collect();
        assert_eq!(got, [&(2000, b"GET / HTTP/1.1\r\n\r\n".to_vec())]);
        assert_eq!(r.stats.flows_refused, 7);
    }

    #[test]
    fn flows_that_carried_data_are_never_let_go() {
        let (mut r, mut closed) = (table(2), Closed::new());
        for port in [1000, 1001] {
            r.segment(&mut closed, &from(port, 7, FLAG_SYN, b""));
            r.segment(&mut closed, &from(port, 8, FLAG_ACK, b"GET"));
        }
        r.segment(&mut closed, &from(3000, 7, FLAG_SYN, b""));
        r.segment(&mut closed, &from(3000, 8, FLAG_ACK, b"late"));
        assert_eq!((r.active_flows(), r.stats.flows_refused), (2, 2));
        assert!(closed.is_empty(), "nothing closed: {closed:?}");
        for port in [1000, 1001] {
            r.segment(&mut closed, &from(port, 11, FLAG_ACK, b" /"));
        }
        r.close_all(&mut closed);
        closed.sort();
        assert_eq!(closed, [(1000, b"GET /".to_vec()), (1001, b"GET /".to_vec())]);
    }

    #[test]
    fn the_queue_stays_within_a_small_multiple_of_the_table() {
        let (mut r, mut closed) = (table(64), Closed::new());
        for i in 0..100_000u32 {
            // Some flows get past the handshake, most never do.
            let port = 1024 + (i % 60_000) as u16;
            r.segment(&mut closed, &from(port, i, FLAG_SYN, b""));
            if i % 7 == 0 {
                r.segment(&mut closed, &from(port, i + 1, FLAG_ACK, b"x"));
            }
            assert!(r.half_open.len() <= 2 * 64 + 1, "{} queued at {i}", r.half_open.len());
        }
        assert!(r.active_flows() <= 64);
    }
}
