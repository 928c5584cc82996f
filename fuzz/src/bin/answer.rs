//! The reader of the candidate's answer, fed an input's bytes in chunks.
//! Byte 0: bit 0 the request was HEAD, bit 1 small limits, bits 2-7 the
//! chunk size. Checks what `feed` reports against what it was given.

use shadowtap::http::answer::AnswerReader;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((&mode, bytes)) = data.split_first() else { return };
        let small = mode & 2 != 0;
        let (max_head, body_limit) = if small { (128, 16) } else { (64 << 10, 1 << 20) };
        let chunk = usize::from(mode >> 2) + 1;
        let mut reader = AnswerReader::new(mode & 1 != 0, max_head, body_limit);
        for piece in bytes.chunks(chunk) {
            match reader.feed(piece) {
                Ok(used) => {
                    assert!(used <= piece.len());
                    if used < piece.len() {
                        assert!(reader.is_done(), "bytes left unused before the answer ended");
                    }
                }
                Err(_) => return,
            }
            if reader.is_done() {
                break;
            }
        }
        if reader.end_of_stream().is_err() {
            assert!(!reader.is_done());
            return;
        }
        let answered = reader.finish().expect("an answer complete at end of stream");
        assert!(answered.body.len() <= body_limit, "body kept past the limit");
    });
}
