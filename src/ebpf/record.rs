//! Recording what the eBPF source saw as a pcapng, so that saved traffic
//! of this source replays in tests like any capture. In: [`Event`]s in
//! ring order with their Unix times. Out: a pcapng of raw IP packets
//! (`LINKTYPE_RAW`, ns timestamps), one synthesised TCP connection per
//! socket:
//!
//! - open: SYN, SYN-ACK, ACK between the socket's addresses (unix sockets
//!   and lost opens through [`stand_in_addresses`], as the shards do);
//! - data: segments at sequence ISN + 1 + byte offset, acknowledging what
//!   the other direction has sent so far (split at 65000 bytes);
//! - skip (and bytes lost before a chunk): sequence space with no packet.
//!   The other side's next packet acknowledges past that hole, and a hole
//!   acknowledged past is final in a recording: the reassembler gives it
//!   up as a gap at once (see [`is_recording`]), as the live path does;
//! - close: FIN from the server, FIN from the client, the last ACK.
//!
//! Memory is per open connection only (removed at close), at most
//! `max_conns` of them: beyond, the oldest is forgotten (counted).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use rustc_hash::FxHashMap;

use super::{Endpoint, Event, Side, stand_in_addresses};

pub mod command;

/// The section header's user application of a recording; [`is_recording`]
/// looks for it.
pub const USER_APPLICATION: &str = "shadowtap record (eBPF source)";

/// Payload bytes per synthesised segment at most (an IPv4 packet holds 65535).
const MAX_SEGMENT: usize = 65000;

const FLAG_FIN: u8 = 1;
const FLAG_SYN: u8 = 2;
const FLAG_ACK: u8 = 0x10;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path}: cannot create: {reason}")]
    Create { path: String, reason: String },
    #[error("cannot write the pcapng header: {0}")]
    Header(String),
}

/// What a recorder did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordStats {
    pub connections: u64,
    pub events: u64,
    /// Payload bytes written (skipped bytes are not).
    pub bytes: u64,
    pub packets: u64,
    /// Connections forgotten to stay within the bound (no FIN written).
    pub evicted: u64,
    pub write_errors: u64,
}

/// One open connection: its addresses, and per direction (0: to the
/// server, 1: to the client) the initial sequence number and the offset
/// just past the last byte sent or skipped.
struct Conn {
    client: SocketAddr,
    server: SocketAddr,
    isn: [u32; 2],
    sent: [u64; 2],
    /// The key of this connection in `Recorder::age`.
    serial: u64,
}

impl Conn {
    fn seq(&self, dir: usize, off: u64) -> u32 {
        self.isn[dir].wrapping_add(1).wrapping_add(off as u32)
    }

    /// The acknowledgement the other side of `dir` sends: all of `dir` so far.
    fn ack_of(&self, dir: usize) -> u32 {
        self.seq(dir, self.sent[dir])
    }
}

/// A recorder writing to a file (buffered).
pub type FileRecorder = Recorder<BufWriter<std::fs::File>>;

/// Writes events as a pcapng; see the module doc.
pub struct Recorder<W: Write> {
    writer: PcapNgWriter<W>,
    conns: FxHashMap<u64, Conn>,
    /// Open connections by age (serial of their open), oldest first.
    age: BTreeMap<u64, u64>,
    next_serial: u64,
    max_conns: usize,
    packet: Vec<u8>,
    pub stats: RecordStats,
}

impl Recorder<BufWriter<std::fs::File>> {
    /// A recorder writing to a new file at `path` (replaced if it exists).
    pub fn create(path: &Path, max_conns: usize) -> Result<Self, RecordError> {
        let file = std::fs::File::create(path)
            .map_err(|e| RecordError::Create { path: path.display().to_string(), reason: e.to_string() })?;
        Recorder::new(BufWriter::with_capacity(1 << 20, file), max_conns)
    }
}

impl<W: Write> Recorder<W> {
    /// Writes the section header and the one interface (raw IP, ns times).
    pub fn new(out: W, max_conns: usize) -> Result<Self, RecordError> {
        let section = SectionHeaderBlock {
            options: vec![SectionHeaderOption::UserApplication(Cow::Borrowed(USER_APPLICATION))],
            ..Default::default()
        };
        let header = |e: pcap_file::PcapError| RecordError::Header(e.to_string());
        let mut writer = PcapNgWriter::with_section_header(out, section).map_err(header)?;
        let interface = InterfaceDescriptionBlock {
            linktype: DataLink::RAW,
            snaplen: 0,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Borrowed("shadowtap-ebpf")),
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        };
        writer.write_pcapng_block(interface).map_err(header)?;
        Ok(Recorder {
            writer,
            conns: FxHashMap::default(),
            age: BTreeMap::new(),
            next_serial: 0,
            max_conns: max_conns.max(1),
            packet: Vec::with_capacity(MAX_SEGMENT + 128),
            stats: RecordStats::default(),
        })
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// Records one event that happened at `ts` (Unix ns). Write errors are
    /// counted (and logged once), never returned: recording must not stop
    /// capture.
    pub fn record(&mut self, event: &Event<'_>, ts: i64) {
        self.stats.events += 1;
        let id = event.conn();
        match event {
            Event::Open { server, client, .. } => {
                if let Some(old) = self.forget(id) {
                    self.close(&old, ts);
                }
                self.open(id, server, client, ts);
            }
            Event::Data { side, off, bytes, .. } => {
                self.ensure_open(id, ts);
                self.data(id, dir_of(*side), *off, bytes, ts);
            }
            Event::Skip { side, off, len, .. } => {
                self.ensure_open(id, ts);
                self.hole(id, dir_of(*side), off.saturating_add(*len), ts);
            }
            // A close of a connection never seen has nothing to end (the
            // shards ignore it too).
            Event::Close { to_server, to_client, .. } => {
                if let Some(mut conn) = self.forget(id) {
                    conn.sent[0] = conn.sent[0].max(*to_server);
                    conn.sent[1] = conn.sent[1].max(*to_client);
                    self.close(&conn, ts);
                }
            }
        }
    }

    /// Flushes what is buffered; false (counted) when it could not be written.
    pub fn flush(&mut self) -> bool {
        let flushed = self.writer.get_mut().flush();
        self.note(flushed.map_err(pcap_file::PcapError::IoError).map(|_| 0))
    }

    /// Flushes and returns what was done. Connections still open stay
    /// open in the file (a reader closes them at its end).
    pub fn finish(mut self) -> RecordStats {
        self.flush();
        self.stats
    }

    fn open(&mut self, id: u64, server: &Endpoint, client: &Endpoint, ts: i64) {
        if self.conns.len() >= self.max_conns
            && let Some((_, oldest)) = self.age.pop_first()
        {
            self.conns.remove(&oldest);
            self.stats.evicted += 1;
        }
        let (client, server) = stand_in_addresses(id, server, client);
        let (client, server) = same_family(client, server);
        let serial = self.next_serial;
        self.next_serial += 1;
        let conn = Conn { client, server, isn: initial_sequence_numbers(id), sent: [0, 0], serial };
        self.stats.connections += 1;
        self.segment(&conn, 0, conn.isn[0], 0, FLAG_SYN, &[], ts);
        self.segment(&conn, 1, conn.isn[1], conn.isn[0].wrapping_add(1), FLAG_SYN | FLAG_ACK, &[], ts);
        self.segment(&conn, 0, conn.seq(0, 0), conn.seq(1, 0), FLAG_ACK, &[], ts);
        self.age.insert(serial, id);
        self.conns.insert(id, conn);
    }

    /// A connection whose open was lost gets stand-in addresses, as in the shards.
    fn ensure_open(&mut self, id: u64, ts: i64) {
        if !self.conns.contains_key(&id) {
            let unknown = Endpoint::Unix(String::new());
            self.open(id, &unknown, &unknown, ts);
        }
    }

    fn forget(&mut self, id: u64) -> Option<Conn> {
        let conn = self.conns.remove(&id)?;
        self.age.remove(&conn.serial);
        Some(conn)
    }

    fn data(&mut self, id: u64, dir: usize, off: u64, bytes: &[u8], ts: i64) {
        // Bytes lost before this chunk (a dropped event) are a hole too.
        self.hole(id, dir, off, ts);
        let Some(mut conn) = self.conns.remove(&id) else { return };
        let mut at = off;
        for piece in bytes.chunks(MAX_SEGMENT) {
            self.segment(&conn, dir, conn.seq(dir, at), conn.ack_of(1 - dir), FLAG_ACK, piece, ts);
            at += piece.len() as u64;
        }
        self.stats.bytes += bytes.len() as u64;
        conn.sent[dir] = conn.sent[dir].max(at);
        self.conns.insert(id, conn);
    }

    /// Direction `dir` moves on to `upto` with no bytes: sequence space
    /// with no packet, then the receiver's ACK past it (as TCP would send),
    /// so that a reader knows at once the bytes will never come.
    fn hole(&mut self, id: u64, dir: usize, upto: u64, ts: i64) {
        let Some(mut conn) = self.conns.remove(&id) else { return };
        if upto > conn.sent[dir] {
            conn.sent[dir] = upto;
            self.segment(&conn, 1 - dir, conn.ack_of(1 - dir), conn.ack_of(dir), FLAG_ACK, &[], ts);
        }
        self.conns.insert(id, conn);
    }

    fn close(&mut self, conn: &Conn, ts: i64) {
        let (to_server_end, to_client_end) = (conn.ack_of(0), conn.ack_of(1));
        self.segment(conn, 1, to_client_end, to_server_end, FLAG_FIN | FLAG_ACK, &[], ts);
        let after_fin = |seq: u32| seq.wrapping_add(1);
        self.segment(conn, 0, to_server_end, after_fin(to_client_end), FLAG_FIN | FLAG_ACK, &[], ts);
        self.segment(conn, 1, after_fin(to_client_end), after_fin(to_server_end), FLAG_ACK, &[], ts);
    }

    /// Writes one TCP segment of `dir` (0: client to server).
    #[allow(clippy::too_many_arguments)]
    fn segment(&mut self, conn: &Conn, dir: usize, seq: u32, ack: u32, flags: u8, payload: &[u8], ts: i64) {
        let (src, dst) = if dir == 0 { (conn.client, conn.server) } else { (conn.server, conn.client) };
        let ip = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => etherparse::PacketBuilder::ipv4(s.octets(), d.octets(), 64),
            (s, d) => etherparse::PacketBuilder::ipv6(v6(s).octets(), v6(d).octets(), 64),
        };
        let mut tcp = ip.tcp(src.port(), dst.port(), seq, u16::MAX);
        if flags & FLAG_SYN != 0 {
            tcp = tcp.syn();
        }
        if flags & FLAG_ACK != 0 {
            tcp = tcp.ack(ack);
        }
        if flags & FLAG_FIN != 0 {
            tcp = tcp.fin();
        }
        if !payload.is_empty() {
            tcp = tcp.psh();
        }
        self.packet.clear();
        if tcp.write(&mut self.packet, payload).is_err() {
            self.stats.write_errors += 1;
            return;
        }
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_nanos(ts.max(0) as u64),
            original_len: self.packet.len() as u32,
            data: Cow::Borrowed(&self.packet),
            options: Vec::new(),
        };
        let written = self.writer.write_pcapng_block(block);
        if self.note(written) {
            self.stats.packets += 1;
        }
    }

    /// Counts a failed write (the first one is logged); true when it went well.
    fn note(&mut self, result: Result<usize, pcap_file::PcapError>) -> bool {
        match result {
            Ok(_) => true,
            Err(e) => {
                if self.stats.write_errors == 0 {
                    tracing::error!("recording: cannot write: {e} (further errors are only counted)");
                }
                self.stats.write_errors += 1;
                false
            }
        }
    }
}

fn dir_of(side: Side) -> usize {
    match side {
        Side::ToServer => 0,
        Side::ToClient => 1,
    }
}

/// Distinct per connection, so a tool that follows streams by sequence
/// numbers never mixes two sockets that reused a stand-in address.
fn initial_sequence_numbers(id: u64) -> [u32; 2] {
    let mixed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    [(mixed >> 32) as u32, mixed as u32 ^ 0x5bd1_e995]
}

fn v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// One IP version for both ends (a packet has one): a v4 end beside a v6
/// one is written v4-mapped.
fn same_family(client: SocketAddr, server: SocketAddr) -> (SocketAddr, SocketAddr) {
    if client.is_ipv4() == server.is_ipv4() {
        return (client, server);
    }
    let mapped = |a: SocketAddr| SocketAddr::new(IpAddr::V6(v6(a.ip())), a.port());
    (mapped(client), mapped(server))
}

/// Whether `path` is a pcapng written by a [`Recorder`]: its packets were
/// synthesised in order, so a hole acknowledged past is final at once
/// (there is no capture reordering to wait for).
pub fn is_recording(path: &Path) -> bool {
    use std::io::Read;
    let Ok(file) = std::fs::File::open(path) else { return false };
    // The section header comes first and is small.
    let mut start = Vec::new();
    if file.take(64 << 10).read_to_end(&mut start).is_err() {
        return false;
    }
    let Ok((_, parser)) = pcap_file::pcapng::PcapNgParser::new(&start) else { return false };
    parser
        .section()
        .options
        .iter()
        .any(|o| matches!(o, SectionHeaderOption::UserApplication(a) if a == USER_APPLICATION))
}

#[cfg(test)]
mod tests;
