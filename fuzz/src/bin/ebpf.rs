//! The eBPF ring-buffer record parser, fed records as the ring hands them
//! (each a u16 LE length, then its bytes). Checks that a data event's bytes
//! lie inside its record.

use shadowtap::ebpf::{Event, parse};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let mut rest = data;
        while rest.len() >= 2 {
            let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
            let record = &rest[2..2 + len];
            rest = &rest[2 + len..];
            if let Ok(Event::Data { bytes, .. }) = parse(record) {
                let outer = record.as_ptr_range();
                let inner = bytes.as_ptr_range();
                assert!(outer.start <= inner.start && inner.end <= outer.end);
            }
        }
    });
}
