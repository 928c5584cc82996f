//! Byte-stream stage for sources that see sockets, not packets (eBPF):
//! per connection, chunks of each direction at known byte offsets go in;
//! the same [`Handler`] calls as from TCP reassembly come out (open with
//! the client known, data in order, gaps, close). Nothing is reordered:
//! the source delivers each connection's chunks in order, so a chunk
//! that starts past where the last one ended means bytes were lost (a
//! ring buffer drop, a cut call), and that is a gap, never joined.
//!
//! One [`Streams`] per shard, owned by its thread, like the reassembler;
//! connections are bounded in number and closed when idle (counted).

use std::net::SocketAddr;

use rustc_hash::FxHashMap;

use crate::exchange::Nanos;
use crate::reassembly::{Dir, FlowKey, Handler};

/// Which way a chunk went: to the server (requests) or to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toward {
    Server,
    Client,
}

/// One thing that happened on a connection.
#[derive(Debug)]
pub enum StreamEvent<'a> {
    Open {
        client: SocketAddr,
        server: SocketAddr,
    },
    Data {
        toward: Toward,
        off: u64,
        bytes: &'a [u8],
    },
    /// `len` bytes at `off` were never seen.
    Skip {
        toward: Toward,
        off: u64,
        len: u64,
    },
    /// Closed after `to_server` and `to_client` bytes.
    Close {
        to_server: u64,
        to_client: u64,
    },
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_conns: usize,
    pub idle_timeout_ns: Nanos,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub opened: u64,
    /// Connections whose open was never seen (a lost event): their
    /// addresses are stand-ins and their first bytes may be missing.
    pub opened_unseen: u64,
    pub refused: u64,
    pub chunks: u64,
    pub bytes: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub idle_closed: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.opened += o.opened;
        self.opened_unseen += o.opened_unseen;
        self.refused += o.refused;
        self.chunks += o.chunks;
        self.bytes += o.bytes;
        self.gaps += o.gaps;
        self.gap_bytes += o.gap_bytes;
        self.idle_closed += o.idle_closed;
    }
}

struct Conn<H> {
    handler: H,
    /// The flow direction of client-to-server bytes.
    to_server: Dir,
    /// Next expected offset, per flow direction.
    next: [u64; 2],
    last_seen: Nanos,
}

pub struct Streams<H: Handler> {
    conns: FxHashMap<u64, Conn<H>>,
    limits: Limits,
    pub stats: Stats,
}

impl<H: Handler> Streams<H> {
    pub fn new(limits: Limits) -> Self {
        Streams { conns: FxHashMap::default(), limits, stats: Stats::default() }
    }

    pub fn active(&self) -> usize {
        self.conns.len()
    }

    /// Applies one event of connection `id` at time `ts`. `stand_in`
    /// gives addresses for a connection whose open was not seen.
    pub fn event(
        &mut self,
        ctx: &mut H::Ctx,
        id: u64,
        ts: Nanos,
        event: StreamEvent<'_>,
        stand_in: impl FnOnce() -> (SocketAddr, SocketAddr),
    ) {
        match event {
            StreamEvent::Open { client, server } => {
                if let Some(old) = self.conns.remove(&id) {
                    close(ctx, old, ts);
                }
                self.open(ctx, id, client, server, ts);
            }
            StreamEvent::Close { to_server, to_client } => {
                if let Some(mut conn) = self.conns.remove(&id) {
                    let (s, c) = (conn.to_server, 1 - conn.to_server);
                    gap_to(&mut self.stats, ctx, &mut conn, s, to_server, ts);
                    gap_to(&mut self.stats, ctx, &mut conn, c, to_client, ts);
                    close(ctx, conn, ts);
                }
            }
            StreamEvent::Data { toward, off, bytes } => {
                if !self.ensure_open(ctx, id, ts, stand_in) {
                    return;
                }
                let Streams { conns, stats, .. } = self;
                let conn = conns.get_mut(&id).expect("just ensured");
                let dir = dir_of(conn, toward);
                conn.last_seen = ts;
                gap_to(stats, ctx, conn, dir, off, ts);
                // Bytes already delivered (never from eBPF; kept safe) are cut.
                let skip = conn.next[dir].saturating_sub(off).min(bytes.len() as u64) as usize;
                let bytes = &bytes[skip..];
                stats.chunks += 1;
                stats.bytes += bytes.len() as u64;
                if !bytes.is_empty() && conn.handler.wants_data() {
                    conn.handler.on_data(ctx, dir, bytes, ts);
                }
                conn.next[dir] = conn.next[dir].max(off + (skip + bytes.len()) as u64);
            }
            StreamEvent::Skip { toward, off, len } => {
                if !self.ensure_open(ctx, id, ts, stand_in) {
                    return;
                }
                let Streams { conns, stats, .. } = self;
                let conn = conns.get_mut(&id).expect("just ensured");
                let dir = dir_of(conn, toward);
                conn.last_seen = ts;
                gap_to(stats, ctx, conn, dir, off.saturating_add(len), ts);
            }
        }
    }

    fn open(&mut self, ctx: &mut H::Ctx, id: u64, client: SocketAddr, server: SocketAddr, ts: Nanos) -> bool {
        if self.conns.len() >= self.limits.max_conns {
            self.stats.refused += 1;
            return false;
        }
        let (key, to_server) = FlowKey::of(client, server);
        let handler = H::open(ctx, key, Some(to_server));
        self.conns.insert(id, Conn { handler, to_server, next: [0, 0], last_seen: ts });
        self.stats.opened += 1;
        true
    }

    /// Opens the connection with stand-in addresses if its open was lost;
    /// false when the table is full.
    fn ensure_open(
        &mut self,
        ctx: &mut H::Ctx,
        id: u64,
        ts: Nanos,
        stand_in: impl FnOnce() -> (SocketAddr, SocketAddr),
    ) -> bool {
        if self.conns.contains_key(&id) {
            return true;
        }
        let (client, server) = stand_in();
        let opened = self.open(ctx, id, client, server, ts);
        self.stats.opened_unseen += opened as u64;
        opened
    }

    /// Closes connections silent for longer than the idle timeout (a
    /// process that exited closes its sockets without a close call).
    pub fn expire_idle(&mut self, ctx: &mut H::Ctx, now: Nanos) {
        let timeout = self.limits.idle_timeout_ns;
        let idle: Vec<u64> =
            self.conns.iter().filter(|(_, c)| now.saturating_sub(c.last_seen) > timeout).map(|(id, _)| *id).collect();
        for id in idle {
            if let Some(conn) = self.conns.remove(&id) {
                self.stats.idle_closed += 1;
                close(ctx, conn, now);
            }
        }
    }

    pub fn close_all(&mut self, ctx: &mut H::Ctx, now: Nanos) {
        for (_, conn) in self.conns.drain() {
            close(ctx, conn, now);
        }
    }
}

/// Bytes between what was delivered and `upto` were lost: a gap.
fn gap_to<H: Handler>(stats: &mut Stats, ctx: &mut H::Ctx, conn: &mut Conn<H>, dir: Dir, upto: u64, ts: Nanos) {
    if upto > conn.next[dir] {
        let len = upto - conn.next[dir];
        stats.gaps += 1;
        stats.gap_bytes += len;
        conn.handler.on_gap(ctx, dir, len, ts);
        conn.next[dir] = upto;
    }
}

fn dir_of<H>(conn: &Conn<H>, toward: Toward) -> Dir {
    match toward {
        Toward::Server => conn.to_server,
        Toward::Client => 1 - conn.to_server,
    }
}

fn close<H: Handler>(ctx: &mut H::Ctx, mut conn: Conn<H>, ts: Nanos) {
    conn.handler.on_fin(ctx, 1 - conn.to_server, ts);
    conn.handler.on_close(ctx, ts);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what a handler is told.
    struct Log;
    #[derive(Default)]
    struct Seen(Vec<String>);

    impl Handler for Log {
        type Ctx = Seen;
        fn open(ctx: &mut Seen, key: FlowKey, client: Option<Dir>) -> Self {
            ctx.0.push(format!("open {} client={client:?}", key.endpoint(client.unwrap())));
            Log
        }
        fn on_data(&mut self, ctx: &mut Seen, dir: Dir, data: &[u8], _ts: Nanos) {
            ctx.0.push(format!("data {dir} {}", String::from_utf8_lossy(data)));
        }
        fn on_gap(&mut self, ctx: &mut Seen, dir: Dir, len: u64, _ts: Nanos) {
            ctx.0.push(format!("gap {dir} {len}"));
        }
        fn on_fin(&mut self, ctx: &mut Seen, dir: Dir, _ts: Nanos) {
            ctx.0.push(format!("fin {dir}"));
        }
        fn on_close(&mut self, ctx: &mut Seen, _ts: Nanos) {
            ctx.0.push("close".into());
        }
        fn wants_data(&self) -> bool {
            true
        }
    }

    fn streams() -> Streams<Log> {
        Streams::new(Limits { max_conns: 2, idle_timeout_ns: 1000 })
    }

    const CLIENT: &str = "127.0.0.2:40000";
    const SERVER: &str = "127.0.0.1:80";

    fn no_stand_in() -> (SocketAddr, SocketAddr) {
        panic!("no stand-in expected")
    }

    fn open(s: &mut Streams<Log>, ctx: &mut Seen, id: u64) {
        let (client, server) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
        s.event(ctx, id, 0, StreamEvent::Open { client, server }, no_stand_in);
    }

    #[test]
    fn chunks_in_order_reach_the_handler_and_a_jump_is_a_gap() {
        let (mut s, mut ctx) = (streams(), Seen::default());
        open(&mut s, &mut ctx, 1);
        s.event(&mut ctx, 1, 1, StreamEvent::Data { toward: Toward::Server, off: 0, bytes: b"GET" }, no_stand_in);
        s.event(&mut ctx, 1, 2, StreamEvent::Data { toward: Toward::Server, off: 10, bytes: b"xy" }, no_stand_in);
        s.event(&mut ctx, 1, 3, StreamEvent::Close { to_server: 14, to_client: 0 }, no_stand_in);
        // The client (127.0.0.2) sorts after the server (127.0.0.1): flow dir 1.
        assert_eq!(
            ctx.0,
            ["open 127.0.0.2:40000 client=Some(1)", "data 1 GET", "gap 1 7", "data 1 xy", "gap 1 2", "fin 0", "close"]
        );
        assert_eq!((s.stats.gaps, s.stats.gap_bytes, s.active()), (2, 9, 0));
    }

    #[test]
    fn a_lost_open_gets_stand_in_addresses_and_a_full_table_refuses() {
        let (mut s, mut ctx) = (streams(), Seen::default());
        let stand_in = || ("10.0.0.2:1".parse().unwrap(), "10.0.0.1:2".parse().unwrap());
        s.event(&mut ctx, 7, 1, StreamEvent::Data { toward: Toward::Client, off: 0, bytes: b"HTTP" }, stand_in);
        assert_eq!(s.stats.opened_unseen, 1);
        open(&mut s, &mut ctx, 8);
        open(&mut s, &mut ctx, 9);
        assert_eq!((s.stats.refused, s.active()), (1, 2));
    }

    #[test]
    fn idle_connections_are_closed_and_counted() {
        let (mut s, mut ctx) = (streams(), Seen::default());
        open(&mut s, &mut ctx, 1);
        s.expire_idle(&mut ctx, 500);
        assert_eq!(s.active(), 1);
        s.expire_idle(&mut ctx, 5000);
        assert_eq!((s.active(), s.stats.idle_closed), (0, 1));
    }

    proptest::proptest! {
        /// However a stream is cut into chunks and whichever chunks are
        /// lost, the handler gets every delivered byte once, in order, and
        /// a gap exactly where (and as long as) bytes were lost, the end
        /// included: lost bytes are never silently joined.
        #[test]
        fn delivered_bytes_and_gaps_account_for_the_whole_stream(
            cuts in proptest::collection::vec((1usize..40, proptest::bool::weighted(0.25)), 1..30),
        ) {
            let (mut s, mut ctx) = (streams(), Seen::default());
            open(&mut s, &mut ctx, 1);
            let (mut off, mut expected, mut lost_run, mut gaps) = (0u64, String::new(), 0u64, Vec::new());
            for (i, (len, lost)) in cuts.iter().enumerate() {
                let chunk: String = (0..*len).map(|j| (b'a' + ((i + j) % 26) as u8) as char).collect();
                if *lost {
                    lost_run += *len as u64;
                } else {
                    if lost_run > 0 {
                        gaps.push(lost_run);
                        lost_run = 0;
                    }
                    expected.push_str(&chunk);
                    let event = StreamEvent::Data { toward: Toward::Client, off, bytes: chunk.as_bytes() };
                    s.event(&mut ctx, 1, i as i64, event, no_stand_in);
                }
                off += *len as u64;
            }
            if lost_run > 0 {
                gaps.push(lost_run);
            }
            s.event(&mut ctx, 1, 99, StreamEvent::Close { to_server: 0, to_client: off }, no_stand_in);
            let delivered: String = ctx.0.iter().filter_map(|l| l.strip_prefix("data 0 ")).collect();
            let seen_gaps: Vec<u64> =
                ctx.0.iter().filter_map(|l| l.strip_prefix("gap 0 ")).map(|n| n.parse().unwrap()).collect();
            proptest::prop_assert_eq!(delivered, expected);
            proptest::prop_assert_eq!(seen_gaps, gaps);
        }
    }
}
