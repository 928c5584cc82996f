//! Content-Encoding decoding: `gzip`/`x-gzip`, `deflate` (zlib-wrapped or
//! raw), `br`, `identity`, several in a row (`Content-Encoding: gzip, br`
//! means gzip was applied first, so br is undone first). Any failure (unknown
//! coding, corrupt data, output over [`MAX_DECODED_BYTES`]) gives back the
//! raw bytes undecoded.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

/// Upper bound on a decoded body, against decompression bombs.
pub(crate) const MAX_DECODED_BYTES: u64 = 256 * 1024 * 1024;

/// A body after Content-Encoding decoding.
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    pub(crate) bytes: Cow<'a, [u8]>,
    /// At least one coding was actually undone.
    pub(crate) was_decoded: bool,
}

/// Undoes the codings listed in `content_encoding`, or returns `body` as is.
pub(crate) fn decode_body<'a>(body: &'a [u8], content_encoding: Option<&str>) -> Decoded<'a> {
    let raw = Decoded { bytes: Cow::Borrowed(body), was_decoded: false };
    let codings = codings_to_undo(content_encoding.unwrap_or(""));
    if codings.is_empty() {
        return raw;
    }
    let mut bytes = body.to_vec();
    for coding in codings.iter().rev() {
        match decode_one(&bytes, coding) {
            Some(decoded) => bytes = decoded,
            None => return raw,
        }
    }
    Decoded { bytes: Cow::Owned(bytes), was_decoded: true }
}

/// The codings in application order, lowercase, without `identity`.
fn codings_to_undo(header: &str) -> Vec<String> {
    header.split(',').map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty() && c != "identity").collect()
}

fn decode_one(bytes: &[u8], coding: &str) -> Option<Vec<u8>> {
    match coding {
        "gzip" | "x-gzip" => read_all(MultiGzDecoder::new(bytes)),
        "deflate" => read_all(ZlibDecoder::new(bytes)).or_else(|| read_all(DeflateDecoder::new(bytes))),
        "br" => read_all(brotli::Decompressor::new(bytes, 8192)),
        _ => None,
    }
}

/// Reads a decoder to its end; `None` on error or when over the size bound.
fn read_all(reader: impl Read) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    reader.take(MAX_DECODED_BYTES + 1).read_to_end(&mut out).ok()?;
    (out.len() as u64 <= MAX_DECODED_BYTES).then_some(out)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Encoders used by the tests to build encoded bodies.
    use std::io::Write;

    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    pub(crate) fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    pub(crate) fn brotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(data).unwrap();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    const DATA: &[u8] = b"{\"hello\": \"world\", \"n\": [1, 2, 3]}";

    fn decoded(body: &[u8], coding: &str) -> (Vec<u8>, bool) {
        let d = decode_body(body, Some(coding));
        (d.bytes.into_owned(), d.was_decoded)
    }

    #[test]
    fn each_coding_decodes() {
        assert_eq!(decoded(&gzip(DATA), "gzip"), (DATA.to_vec(), true));
        assert_eq!(decoded(&gzip(DATA), "X-GZIP"), (DATA.to_vec(), true));
        assert_eq!(decoded(&zlib(DATA), "deflate"), (DATA.to_vec(), true));
        assert_eq!(decoded(&raw_deflate(DATA), "deflate"), (DATA.to_vec(), true));
        assert_eq!(decoded(&brotli(DATA), "br"), (DATA.to_vec(), true));
    }

    #[test]
    fn stacked_codings_are_undone_last_first() {
        let body = brotli(&gzip(DATA));
        assert_eq!(decoded(&body, "gzip, br"), (DATA.to_vec(), true));
        assert_eq!(decoded(&gzip(DATA), "identity, gzip"), (DATA.to_vec(), true));
    }

    #[test]
    fn identity_or_absent_is_untouched() {
        assert_eq!(decoded(DATA, "identity"), (DATA.to_vec(), false));
        let d = decode_body(DATA, None);
        assert!(!d.was_decoded);
        assert!(matches!(d.bytes, Cow::Borrowed(_)));
    }

    #[test]
    fn failures_give_back_raw_bytes() {
        assert_eq!(decoded(DATA, "gzip"), (DATA.to_vec(), false));
        assert_eq!(decoded(DATA, "br"), (DATA.to_vec(), false));
        assert_eq!(decoded(&gzip(DATA), "compress"), (gzip(DATA), false));
        assert_eq!(decoded(&gzip(DATA), "br, gzip"), (gzip(DATA), false));
        assert_eq!(decoded(b"", "gzip"), (Vec::new(), false));
    }
}
