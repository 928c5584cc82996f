//! Writes the seed corpora of the packet targets from the captures in
//! `pcaps/`: `make_seeds PCAP_DIR SEED_DIR`. For each capture: a few frames
//! (decode), its segments as records (reassembly) and the server's first
//! stream (answer). Small on purpose: AFL mutates small seeds best.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use shadowtap::capture::CaptureFile;
use shadowtap::decode::{FLAG_SYN, decode, linktype};
use shadowtap_fuzz::{Record, encode};

const FRAMES_PER_CAPTURE: usize = 4;
const MAX_SEED: usize = 6 << 10;
const DECODE_LINKTYPES: [i32; 10] = [
    linktype::NULL,
    linktype::ETHERNET,
    linktype::RAW_OLD,
    linktype::RAW_OLD_BSD,
    linktype::RAW,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
];

/// One TCP connection's numbering: first sequence number seen each way.
struct Conn {
    index: u8,
    client: SocketAddr,
    isn: [Option<u32>; 2],
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, pcaps, seeds] = &args[..] else {
        eprintln!("usage: make_seeds PCAP_DIR SEED_DIR");
        std::process::exit(2);
    };
    let mut paths: Vec<_> = std::fs::read_dir(pcaps).expect("pcap dir").map(|e| e.expect("entry").path()).collect();
    paths.retain(|p| p.extension().is_some_and(|e| e == "pcap"));
    paths.sort();
    for dir in ["decode", "reassembly", "answer"] {
        std::fs::create_dir_all(Path::new(seeds).join(dir)).expect("seed dir");
    }
    for path in paths {
        let name = path.file_stem().expect("name").to_string_lossy().into_owned();
        seeds_of(&path, &name, Path::new(seeds));
    }
}

fn seeds_of(path: &Path, name: &str, seeds: &Path) {
    let mut file = CaptureFile::open(path).expect("capture");
    let mut conns: HashMap<(SocketAddr, SocketAddr), Conn> = HashMap::new();
    let mut frames = 0;
    let mut records = vec![1u8]; // mode: server port known, default limits
    let mut answer = vec![0u8]; // mode: GET, default limits, 1-byte chunks... set below
    answer[0] = 63 << 2; // 64-byte chunks
    let mut last_ts = None;
    while let Some(frame) = file.next_frame().expect("frame") {
        let Ok(packet) = decode(frame.linktype, frame.data) else { continue };
        if frames < FRAMES_PER_CAPTURE && (packet.has(FLAG_SYN) || !packet.payload.is_empty()) {
            let pick = DECODE_LINKTYPES.iter().position(|&l| l == frame.linktype).expect("supported") as u8;
            let mut seed = vec![pick];
            seed.extend_from_slice(frame.data);
            std::fs::write(seeds.join("decode").join(format!("{name}-{frames}")), seed).expect("write");
            frames += 1;
        }
        let key = if packet.src <= packet.dst { (packet.src, packet.dst) } else { (packet.dst, packet.src) };
        let next_index = conns.len() as u8;
        let conn = conns.entry(key).or_insert_with(|| Conn {
            index: next_index,
            client: if packet.has(FLAG_SYN) || packet.dst.port() < packet.src.port() { packet.src } else { packet.dst },
            isn: [None, None],
        });
        if conn.index > 3 || records.len() > MAX_SEED {
            continue;
        }
        let dir = usize::from(packet.src != conn.client);
        let isn = *conn.isn[dir].get_or_insert(packet.seq);
        let peer_isn = conn.isn[1 - dir].unwrap_or(packet.ack.wrapping_sub(1));
        let (Ok(seq_off), Ok(ack_off)) =
            (u16::try_from(packet.seq.wrapping_sub(isn)), u16::try_from(packet.ack.wrapping_sub(peer_isn)))
        else {
            continue;
        };
        let steps = last_ts.map_or(0, |last: i64| ((frame.ts - last) / 10_000_000).clamp(0, 255) as u8);
        last_ts = Some(frame.ts);
        let record = Record { dir: dir as u8, conn: conn.index, flags: packet.flags, seq_off, ack_off, steps };
        encode(&mut records, &record, packet.payload);
        if conn.index == 0 && dir == 1 && answer.len() < MAX_SEED {
            answer.extend_from_slice(packet.payload);
        }
    }
    std::fs::write(seeds.join("reassembly").join(name), records).expect("write");
    if answer.len() > 1 {
        std::fs::write(seeds.join("answer").join(name), answer).expect("write");
    }
}
