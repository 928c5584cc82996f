//! HTTP/2: the HPACK decoder or a whole connection (frames, header blocks,
//! streams) fed arbitrary bytes; the checks are `shadowtap::http2::fuzzing`
//! (byte 0 chooses the mode, documented there).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = shadowtap::http2::fuzzing::check(data);
    });
}
