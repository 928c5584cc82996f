//! The events of the BPF program's ring buffer, read in place: raw bytes
//! in, an [`Event`] view out (no copy of the data). The layout is the
//! `struct event` / `struct open_info` of `bpf/tap.bpf.c`; the two must
//! agree, which `a_data_event_is_read_in_place` and the live tests check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const HEADER_LEN: usize = 48;
const OPEN_INFO_LEN: usize = 144;

const EV_OPEN: u8 = 1;
const EV_DATA: u8 = 2;
const EV_CLOSE: u8 = 3;
const EV_SKIP: u8 = 4;

const FLAG_TLS: u8 = 1;
const FLAG_CUT: u8 = 2;

const AF_UNIX: u8 = 1;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// Which way bytes went, seen from the watched server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Read by the server: the requests.
    ToServer,
    /// Written by the server: the answers.
    ToClient,
}

/// Where a socket is bound: an IP address or a unix socket's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Ip(SocketAddr),
    /// The path of a unix socket ("" when unnamed; abstract names start with '@').
    Unix(String),
}

/// One record of the ring buffer. Times are the kernel's monotonic clock.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The watched process accepted a connection.
    Open { conn: u64, ts: u64, tgid: u32, fd: u32, server: Endpoint, client: Endpoint },
    /// Bytes of one direction, starting at byte `off` of that direction.
    Data { conn: u64, ts: u64, side: Side, off: u64, tls: bool, bytes: &'a [u8] },
    /// `len` bytes at `off` went by unread (sendfile, a call cut short,
    /// unreadable memory): a gap.
    Skip { conn: u64, ts: u64, side: Side, off: u64, len: u64, cut: bool },
    /// The socket was closed after this many bytes each way.
    Close { conn: u64, ts: u64, to_server: u64, to_client: u64 },
}

impl Event<'_> {
    pub fn conn(&self) -> u64 {
        match self {
            Event::Open { conn, .. }
            | Event::Data { conn, .. }
            | Event::Skip { conn, .. }
            | Event::Close { conn, .. } => *conn,
        }
    }

    pub fn ts(&self) -> u64 {
        match self {
            Event::Open { ts, .. } | Event::Data { ts, .. } | Event::Skip { ts, .. } | Event::Close { ts, .. } => *ts,
        }
    }
}

/// A record that does not have the layout of any event (a program and a
/// reader of different versions): counted and skipped.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

fn u16_at(raw: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([raw[at], raw[at + 1]])
}

fn u32_at(raw: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(raw[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(raw: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(raw[at..at + 8].try_into().expect("8 bytes"))
}

fn side_of(dir: u8) -> Side {
    if dir == 0 { Side::ToServer } else { Side::ToClient }
}

/// Reads one ring-buffer record.
pub fn parse(raw: &[u8]) -> Result<Event<'_>, Malformed> {
    if raw.len() < HEADER_LEN {
        return Err(Malformed);
    }
    let (kind, dir, flags, family) = (raw[0], raw[1], raw[2], raw[3]);
    let len = u32_at(raw, 4) as usize;
    let conn = u64_at(raw, 8);
    let ts = u64_at(raw, 16);
    let off = u64_at(raw, 24);
    let skip = u64_at(raw, 32);
    let body = &raw[HEADER_LEN..];
    if body.len() < len {
        return Err(Malformed);
    }
    match kind {
        EV_DATA => {
            Ok(Event::Data { conn, ts, side: side_of(dir), off, tls: flags & FLAG_TLS != 0, bytes: &body[..len] })
        }
        EV_SKIP => Ok(Event::Skip { conn, ts, side: side_of(dir), off, len: skip, cut: flags & FLAG_CUT != 0 }),
        EV_CLOSE => Ok(Event::Close { conn, ts, to_server: off, to_client: skip }),
        EV_OPEN if len >= OPEN_INFO_LEN => {
            let (server, client) = endpoints(family, &body[..OPEN_INFO_LEN])?;
            Ok(Event::Open { conn, ts, tgid: u32_at(raw, 40), fd: u32_at(raw, 44), server, client })
        }
        _ => Err(Malformed),
    }
}

/// `struct open_info`: lport, rport, laddr[16], raddr[16], path[108].
fn endpoints(family: u8, info: &[u8]) -> Result<(Endpoint, Endpoint), Malformed> {
    let lport = u16_at(info, 0);
    let rport = u16_at(info, 2);
    let (laddr, raddr) = (&info[4..20], &info[20..36]);
    match family {
        AF_INET => {
            let ip = |b: &[u8]| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
            Ok((Endpoint::Ip(SocketAddr::new(ip(laddr), lport)), Endpoint::Ip(SocketAddr::new(ip(raddr), rport))))
        }
        AF_INET6 => {
            let ip = |b: &[u8]| {
                let octets: [u8; 16] = b.try_into().expect("16 bytes");
                let v6 = Ipv6Addr::from(octets);
                // A v4 client of a dual-stack socket reads as ::ffff:a.b.c.d.
                v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
            };
            Ok((Endpoint::Ip(SocketAddr::new(ip(laddr), lport)), Endpoint::Ip(SocketAddr::new(ip(raddr), rport))))
        }
        AF_UNIX => {
            let raw = &info[36..144];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            let path = String::from_utf8_lossy(&raw[..end]).into_owned();
            Ok((Endpoint::Unix(path), Endpoint::Unix(String::new())))
        }
        _ => Err(Malformed),
    }
}

/// Addresses for a connection that has none (a unix socket, or one whose
/// open event was lost), so that outputs and recorded captures show one
/// distinct TCP connection per socket: servers of unix sockets are
/// 127.255.0.1:80, their clients 127.254.x.y:p, unique per connection id.
pub fn stand_in_addresses(conn: u64, server: &Endpoint, client: &Endpoint) -> (SocketAddr, SocketAddr) {
    // Unique for 2^24 connections: two address bytes and the port's low byte.
    let stand_in_client = || {
        let n = conn % (1 << 24);
        let ip = Ipv4Addr::new(127, 254, (n >> 16) as u8, (n >> 8) as u8);
        SocketAddr::new(IpAddr::V4(ip), 1024 + (n & 0xff) as u16)
    };
    let stand_in_server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 255, 0, 1)), 80);
    match (server, client) {
        (Endpoint::Ip(s), Endpoint::Ip(c)) => (*c, *s),
        (Endpoint::Ip(s), Endpoint::Unix(_)) => (stand_in_client(), *s),
        _ => (stand_in_client(), stand_in_server),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kind, dir, flags, family; then len, conn, off, skip.
    fn header(bytes: [u8; 4], len: u32, conn: u64, off: u64, skip: u64) -> Vec<u8> {
        let mut raw = bytes.to_vec();
        raw.extend_from_slice(&len.to_ne_bytes());
        for v in [conn, 77, off, skip] {
            raw.extend_from_slice(&v.to_ne_bytes());
        }
        raw.extend_from_slice(&9u32.to_ne_bytes());
        raw.extend_from_slice(&4u32.to_ne_bytes());
        raw
    }

    #[test]
    fn a_data_event_is_read_in_place() {
        let mut raw = header([EV_DATA, 1, FLAG_TLS, 0], 5, 3, 100, 0);
        raw.extend_from_slice(b"hello, and padding");
        let event = parse(&raw).unwrap();
        assert_eq!(event, Event::Data { conn: 3, ts: 77, side: Side::ToClient, off: 100, tls: true, bytes: b"hello" });
    }

    #[test]
    fn an_open_event_carries_both_addresses() {
        let mut raw = header([EV_OPEN, 0, 0, AF_INET], OPEN_INFO_LEN as u32, 8, 0, 0);
        let mut info = vec![0u8; OPEN_INFO_LEN];
        info[0..2].copy_from_slice(&8080u16.to_ne_bytes());
        info[2..4].copy_from_slice(&40000u16.to_ne_bytes());
        info[4..8].copy_from_slice(&[127, 0, 0, 1]);
        info[20..24].copy_from_slice(&[127, 0, 0, 2]);
        raw.extend_from_slice(&info);
        let Event::Open { server, client, tgid, fd, .. } = parse(&raw).unwrap() else { panic!("not an open") };
        assert_eq!(server, Endpoint::Ip("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(client, Endpoint::Ip("127.0.0.2:40000".parse().unwrap()));
        assert_eq!((tgid, fd), (9, 4));
    }

    #[test]
    fn a_unix_socket_gets_its_path_and_stand_in_addresses() {
        let mut raw = header([EV_OPEN, 0, 0, AF_UNIX], OPEN_INFO_LEN as u32, 8, 0, 0);
        let mut info = vec![0u8; OPEN_INFO_LEN];
        info[36..36 + 13].copy_from_slice(b"/run/app.sock");
        raw.extend_from_slice(&info);
        let Event::Open { server, client, .. } = parse(&raw).unwrap() else { panic!("not an open") };
        assert_eq!(server, Endpoint::Unix("/run/app.sock".into()));
        let (c1, s1) = stand_in_addresses(1, &server, &client);
        let (c2, s2) = stand_in_addresses(2, &server, &client);
        assert_eq!(s1, s2);
        assert_ne!(c1, c2, "each connection its own client address");
    }

    #[test]
    fn short_or_unknown_records_are_malformed() {
        assert_eq!(parse(&[1, 2, 3]), Err(Malformed));
        let raw = header([EV_DATA, 0, 0, 0], 10, 1, 0, 0);
        assert_eq!(parse(&raw), Err(Malformed), "length beyond the record");
        let raw = header([99, 0, 0, 0], 0, 1, 0, 0);
        assert_eq!(parse(&raw), Err(Malformed));
    }

    proptest::proptest! {
        /// Any bytes at all: a clean event or `Malformed`, never a panic
        /// (a program and a reader of different versions).
        #[test]
        fn any_record_parses_or_is_malformed(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = parse(&raw);
        }

        #[test]
        fn any_open_record_parses_or_is_malformed(family in 0u8..12, info in proptest::collection::vec(proptest::num::u8::ANY, 144)) {
            let mut raw = header([EV_OPEN, 0, 0, family], OPEN_INFO_LEN as u32, 1, 0, 0);
            raw.extend_from_slice(&info);
            let _ = parse(&raw);
        }
    }
}
