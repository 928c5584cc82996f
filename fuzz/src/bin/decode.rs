//! Frame decoding: byte 0 picks a supported link type, the rest is the
//! frame. Checks that a decoded payload lies inside the frame.

use shadowtap::decode::{decode, linktype};

const LINKTYPES: [i32; 10] = [
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

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((&pick, frame)) = data.split_first() else { return };
        let linktype = LINKTYPES[usize::from(pick) % LINKTYPES.len()];
        if let Ok(packet) = decode(linktype, frame) {
            let frame_range = frame.as_ptr_range();
            let payload_range = packet.payload.as_ptr_range();
            assert!(frame_range.start <= payload_range.start && payload_range.end <= frame_range.end);
        }
    });
}
