//! Shared by the fuzz targets: how an input's bytes become TCP segments
//! (and how `make-seeds` turns a capture's segments into such bytes).
//!
//! Segment records, one after another:
//!
//! ```text
//! byte 0   bit 0: direction (0 client→server, 1 server→client)
//!          bits 1-2: which of 4 client connections (client port 40000+n)
//!          bits 3-7: FIN, SYN, RST, PSH, ACK
//! 1..3     sequence offset (u16 LE) from that direction's initial number
//! 3..5     acknowledgement offset (u16 LE) from the peer's initial number
//! 5        time since the previous segment, in 10 ms steps
//! 6        payload length (the rest of the input if shorter)
//! 7..      payload
//! ```

use std::net::SocketAddr;

use shadowtap::decode::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};

pub const FLAG_PSH: u8 = 0x08;
const FLAG_BITS: [u8; 5] = [FLAG_FIN, FLAG_SYN, FLAG_RST, FLAG_PSH, FLAG_ACK];

/// Initial sequence numbers: the client's wraps past zero after 256 bytes.
pub const ISN: [u32; 2] = [0xffff_ff00, 1000];
pub const SERVER_PORT: u16 = 80;
pub const RECORD_HEAD: usize = 7;
pub const STEP_NS: i64 = 10_000_000;

/// One segment decoded from a record.
pub struct Seg<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// Capture time, from the start.
    pub ts: i64,
    pub payload: &'a [u8],
}

fn server() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], SERVER_PORT))
}

fn client(conn: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 2], 40000 + u16::from(conn)))
}

/// The segments an input describes (a trailing partial head is ignored).
pub fn segments(mut data: &[u8]) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    let mut ts: i64 = 1_000_000_000;
    while data.len() >= RECORD_HEAD {
        let head = data[0];
        let dir = usize::from(head & 1);
        let conn = (head >> 1) & 3;
        let flags =
            FLAG_BITS.iter().enumerate().filter(|(i, _)| head & (8 << i) != 0).fold(0, |acc, (_, bit)| acc | bit);
        let seq_off = u16::from_le_bytes([data[1], data[2]]);
        let ack_off = u16::from_le_bytes([data[3], data[4]]);
        ts += i64::from(data[5]) * STEP_NS;
        let len = usize::from(data[6]).min(data.len() - RECORD_HEAD);
        let payload = &data[RECORD_HEAD..RECORD_HEAD + len];
        data = &data[RECORD_HEAD + len..];
        let (src, dst) = if dir == 0 { (client(conn), server()) } else { (server(), client(conn)) };
        out.push(Seg {
            src,
            dst,
            seq: ISN[dir].wrapping_add(u32::from(seq_off)),
            ack: ISN[1 - dir].wrapping_add(u32::from(ack_off)),
            flags,
            ts,
            payload,
        });
    }
    out
}

/// One segment as `make_seeds` writes it: offsets from the initial
/// numbers, time since the previous segment in 10 ms steps.
pub struct Record {
    pub dir: u8,
    pub conn: u8,
    pub flags: u8,
    pub seq_off: u16,
    pub ack_off: u16,
    pub steps: u8,
}

/// Appends the records of one segment (several when the payload is longer
/// than 255 bytes).
pub fn encode(out: &mut Vec<u8>, record: &Record, payload: &[u8]) {
    let flag_bits = FLAG_BITS
        .iter()
        .enumerate()
        .filter(|(_, bit)| record.flags & **bit != 0)
        .fold(0u8, |acc, (i, _)| acc | (8 << i));
    let head = (record.dir & 1) | ((record.conn & 3) << 1) | flag_bits;
    let mut chunks: Vec<&[u8]> = payload.chunks(255).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let mut seq = record.seq_off;
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(head);
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&record.ack_off.to_le_bytes());
        out.push(if i == 0 { record.steps } else { 0 });
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
        seq = seq.wrapping_add(chunk.len() as u16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_segments_read_back() {
        let mut bytes = Vec::new();
        let syn = Record { dir: 0, conn: 2, flags: FLAG_SYN, seq_off: 0, ack_off: 0, steps: 3 };
        encode(&mut bytes, &syn, b"");
        let data = Record { dir: 1, conn: 2, flags: FLAG_ACK | FLAG_PSH, seq_off: 1, ack_off: 1, steps: 0 };
        encode(&mut bytes, &data, &[7u8; 300]);
        let segs = segments(&bytes);
        assert_eq!(segs.len(), 3);
        assert_eq!(segs[0].flags, FLAG_SYN);
        assert_eq!(segs[0].seq, ISN[0]);
        assert_eq!(segs[0].src.port(), 40002);
        assert_eq!(segs[1].flags, FLAG_ACK | FLAG_PSH);
        assert_eq!(segs[1].payload.len(), 255);
        assert_eq!(segs[2].seq, ISN[1].wrapping_add(256));
        assert_eq!(segs[2].payload.len(), 45);
        assert_eq!(segs[2].ts, segs[1].ts);
    }
}
