//! Decode stage: one captured frame in, a zero-copy view of its TCP segment
//! out (addresses, ports, sequence numbers, flags, and a slice of the payload
//! inside the frame), or the reason the frame carries nothing for us.
//!
//! Link layers: Ethernet (with 802.1Q / QinQ tags), Linux cooked capture v1
//! and v2 (`tcpdump -i any`), BSD loopback/null, OpenBSD loop, raw IP. TCP
//! checksums are not verified: a capture on the sending host sees them before
//! the NIC fills them in (checksum offload).

use std::net::{IpAddr, SocketAddr};

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

/// libpcap link-layer header types (LINKTYPE_*) we decode.
pub mod linktype {
    pub const NULL: i32 = 0;
    pub const ETHERNET: i32 = 1;
    pub const RAW_OLD: i32 = 12;
    pub const RAW_OLD_BSD: i32 = 14;
    pub const RAW: i32 = 101;
    pub const LOOP: i32 = 108;
    pub const LINUX_SLL: i32 = 113;
    pub const IPV4: i32 = 228;
    pub const IPV6: i32 = 229;
    pub const LINUX_SLL2: i32 = 276;
}

/// Whether a link type is one [`decode`] understands.
pub fn is_supported_linktype(linktype: i32) -> bool {
    use linktype::*;
    matches!(linktype, NULL | ETHERNET | RAW_OLD | RAW_OLD_BSD | RAW | LOOP | LINUX_SLL | IPV4 | IPV6 | LINUX_SLL2)
}

pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_SYN: u8 = 0x02;
pub const FLAG_RST: u8 = 0x04;
pub const FLAG_ACK: u8 = 0x10;

/// A TCP segment inside a captured frame. `payload` borrows the frame.
#[derive(Debug, Clone, Copy)]
pub struct TcpPacket<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: &'a [u8],
}

impl TcpPacket<'_> {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Why a frame yields no TCP segment; each is counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Link or network header could not be parsed.
    Malformed,
    /// Not IP (ARP, LLDP...) or an IP protocol other than TCP.
    NotTcp,
    /// An IPv4 or IPv6 fragment: we do not reassemble IP.
    Fragment,
    /// A link type we do not decode.
    UnsupportedLink,
}

/// Decodes one frame of the given link type.
pub fn decode(linktype: i32, frame: &[u8]) -> Result<TcpPacket<'_>, Skip> {
    let sliced = slice_link(linktype, frame)?;
    tcp_of(&sliced)
}

fn slice_link(linktype: i32, frame: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    use linktype::*;
    match linktype {
        ETHERNET => LaxSlicedPacket::from_ethernet(frame).map_err(|_| Skip::Malformed),
        LINUX_SLL => {
            let proto = be16_at(frame, 14).ok_or(Skip::Malformed)?;
            Ok(LaxSlicedPacket::from_ether_type(EtherType(proto), &frame[16..]))
        }
        LINUX_SLL2 => {
            let proto = be16_at(frame, 0).ok_or(Skip::Malformed)?;
            if frame.len() < 20 {
                return Err(Skip::Malformed);
            }
            Ok(LaxSlicedPacket::from_ether_type(EtherType(proto), &frame[20..]))
        }
        // The 4-byte family field is in the capturing host's byte order for
        // NULL and in network order for LOOP; the IP version nibble says the
        // same thing without guessing the byte order.
        NULL | LOOP => ip_slice(frame.get(4..).ok_or(Skip::Malformed)?),
        RAW | RAW_OLD | RAW_OLD_BSD | IPV4 | IPV6 => ip_slice(frame),
        _ => Err(Skip::UnsupportedLink),
    }
}

fn ip_slice(data: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    LaxSlicedPacket::from_ip(data).map_err(|_| Skip::Malformed)
}

fn be16_at(frame: &[u8], at: usize) -> Option<u16> {
    let bytes = frame.get(at..at + 2)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

fn tcp_of<'a>(sliced: &LaxSlicedPacket<'a>) -> Result<TcpPacket<'a>, Skip> {
    let (src_ip, dst_ip, payload) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            (IpAddr::V4(v4.header().source_addr()), IpAddr::V4(v4.header().destination_addr()), v4.payload())
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            (IpAddr::V6(v6.header().source_addr()), IpAddr::V6(v6.header().destination_addr()), v6.payload())
        }
        Some(LaxNetSlice::Arp(_)) => return Err(Skip::NotTcp),
        None => {
            return Err(if sliced.stop_err.is_some() { Skip::Malformed } else { Skip::NotTcp });
        }
    };
    if payload.fragmented {
        return Err(Skip::Fragment);
    }
    if payload.ip_number != etherparse::IpNumber::TCP {
        return Err(Skip::NotTcp);
    }
    match &sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => Ok(TcpPacket {
            src: SocketAddr::new(src_ip, tcp.source_port()),
            dst: SocketAddr::new(dst_ip, tcp.destination_port()),
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            flags: tcp_flags(tcp),
            payload: tcp.payload(),
        }),
        _ => Err(Skip::Malformed),
    }
}

fn tcp_flags(tcp: &etherparse::TcpSlice<'_>) -> u8 {
    let mut flags = 0;
    for (set, bit) in [(tcp.fin(), FLAG_FIN), (tcp.syn(), FLAG_SYN), (tcp.rst(), FLAG_RST), (tcp.ack(), FLAG_ACK)] {
        if set {
            flags |= bit;
        }
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_frame_v4(payload: &[u8]) -> Vec<u8> {
        let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(etherparse::VlanId::try_new(7).unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1234, 80, 1000, 65535)
            .ack(77);
        let mut out = Vec::new();
        builder.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn decodes_tcp_inside_a_vlan_tagged_ethernet_frame() {
        let frame = tcp_frame_v4(b"GET / HTTP/1.1\r\n\r\n");
        let packet = decode(linktype::ETHERNET, &frame).unwrap();
        assert_eq!(packet.src, "10.0.0.1:1234".parse().unwrap());
        assert_eq!(packet.dst, "10.0.0.2:80".parse().unwrap());
        assert_eq!(packet.seq, 1000);
        assert_eq!(packet.ack, 77);
        assert!(packet.has(FLAG_ACK) && !packet.has(FLAG_SYN));
        assert_eq!(packet.payload, b"GET / HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn decodes_linux_cooked_v2_and_null_loopback() {
        let frame = tcp_frame_v4(b"x");
        let ip = &frame[18..]; // after Ethernet (14) and one VLAN tag (4)
        let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0];
        sll2.extend_from_slice(ip);
        assert_eq!(decode(linktype::LINUX_SLL2, &sll2).unwrap().payload, b"x");
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(ip);
        assert_eq!(decode(linktype::NULL, &null).unwrap().payload, b"x");
    }

    #[test]
    fn garbage_is_skipped_not_panicking() {
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            for lt in [linktype::ETHERNET, linktype::LINUX_SLL, linktype::LINUX_SLL2, linktype::RAW] {
                let _ = decode(lt, &junk);
            }
        }
        assert_eq!(decode(9999, b"abc").unwrap_err(), Skip::UnsupportedLink);
    }
}
