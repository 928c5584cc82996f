//! Latency histograms in report JSON: HdrHistogram's V2 serialisation,
//! base64. In: the report's histograms (microseconds, 3 significant
//! digits); out: text any HdrHistogram library reads, and back. Reports
//! carry them so percentiles of merged reports are merged exactly rather
//! than averaged.

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};

/// Why a histogram read back from a report is refused.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("not base64")]
    Base64,
    #[error("not an HdrHistogram V2 serialisation")]
    Format,
    #[error("not a shadowtap latency histogram (precision or range)")]
    Shape,
}

/// The serialised histogram, or `None` when it holds nothing.
pub fn encode(h: &Histogram<u64>) -> Option<String> {
    if h.is_empty() {
        return None;
    }
    let mut bytes = Vec::new();
    V2Serializer::new().serialize(h, &mut bytes).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The V2 header: cookie, payload length, normalising offset, significant
/// figures, lowest discernible value, highest trackable value, ratio.
const HEADER_LEN: usize = 40;

/// The V2 (uncompressed) cookie, which [`V2Serializer`] writes.
const V2_COOKIE: u32 = 0x1c84_9313;

/// Reads a histogram back. Only the shape shadowtap writes is accepted
/// (3 significant digits, lowest discernible value 1): a header asking for
/// more precision would make the decoder allocate far more than the input.
pub fn decode(text: &str) -> Result<Histogram<u64>, HistogramError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| HistogramError::Base64)?;
    if bytes.len() < HEADER_LEN {
        return Err(HistogramError::Format);
    }
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let long = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    // The decoder allocates the payload length the header states before
    // reading: it must be what the input holds.
    let (cookie, payload_len) = (word(0), word(4) as usize);
    if cookie != V2_COOKIE || payload_len > bytes.len() - HEADER_LEN {
        return Err(HistogramError::Format);
    }
    let (sigfig, lowest, highest) = (word(12), long(16), long(24));
    if sigfig != 3 || lowest != 1 || highest < 2 {
        return Err(HistogramError::Shape);
    }
    let mut reader = &bytes[..];
    let mut h: Histogram<u64> = Deserializer::new().deserialize(&mut reader).map_err(|_| HistogramError::Format)?;
    h.auto(true);
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_survives_the_round_trip() {
        let mut h: Histogram<u64> = Histogram::new(3).unwrap();
        for us in [1, 250, 999, 1_000, 73_421, 2_000_000] {
            h.record(us).unwrap();
        }
        let back = decode(&encode(&h).unwrap()).unwrap();
        assert_eq!(back.len(), 6);
        for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(back.value_at_quantile(q), h.value_at_quantile(q), "q {q}");
        }
        assert!(encode(&Histogram::new(3).unwrap()).is_none(), "empty: nothing to carry");
    }

    #[test]
    fn garbage_and_other_shapes_are_refused() {
        assert!(matches!(decode("%%%"), Err(HistogramError::Base64)));
        assert!(matches!(decode("AAAA"), Err(HistogramError::Format)));
        let mut fine: Histogram<u64> = Histogram::new(5).unwrap();
        fine.record(10).unwrap();
        assert!(matches!(decode(&encode(&fine).unwrap()), Err(HistogramError::Shape)));
    }
}
