//! Passive HPACK decoding (RFC 7541): the header block fragments of one
//! direction of a connection go in, in order; each block's header fields
//! come out, each either known exactly or [`Field::Unknown`]. The decoder
//! keeps that direction's dynamic table.
//!
//! From the connection's start ([`Decoder::from_start`]) the table is
//! tracked exactly. Joined mid-connection or after a gap
//! ([`Decoder::joined`], [`Decoder::lose`]) the entries made before are
//! not known: entries inserted since are kept by their position from the
//! newest (which is what an index names, so they stay right however many
//! older entries there are), and any reference past them is unknown, never
//! guessed. The table is known whole again once nothing older can be left
//! in it: a size update that empties it, or known insertions whose sizes
//! fill the maximum size (RFC 7541 section 4.4 evicts the oldest first).
//!
//! Bounded: integers above 2^32 and strings past the block are errors, a
//! block's decoded size is capped and the kept table is capped; an error
//! leaves the table unknown (the rest of the block's insertions are lost).

use std::collections::VecDeque;

use super::huffman::{self, HuffmanError};

/// The table size a connection starts with (RFC 9113 section 6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;
/// Entry bytes kept per table at most, whatever size the peers agree on;
/// references to entries dropped by it are unknown.
const MAX_KEPT_TABLE: usize = 64 << 10;
/// Decoded bytes of one header block at most (names, values, 32 per field).
pub const MAX_BLOCK_DECODED: usize = 256 << 10;
/// What RFC 7541 section 4.1 adds to each entry's name and value length.
const ENTRY_OVERHEAD: usize = 32;

/// One decoded header field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    Known {
        name: Vec<u8>,
        value: Vec<u8>,
    },
    /// It referred to a table entry made before the capture could see it.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    #[error("header block ends inside a field")]
    Truncated,
    #[error("HPACK integer too large")]
    IntegerOverflow,
    #[error("HPACK index 0")]
    ZeroIndex,
    #[error("HPACK index {0} is past the table")]
    BadIndex(u64),
    #[error(transparent)]
    Huffman(#[from] HuffmanError),
    #[error("header block decodes past {MAX_BLOCK_DECODED} bytes")]
    TooLarge,
}

/// A dynamic table entry as far as it is known.
#[derive(Clone, Debug)]
enum Slot {
    Known {
        name: Vec<u8>,
        value: Vec<u8>,
    },
    /// Inserted with a name from an unknown entry: its size is at least
    /// its value's plus the overhead.
    Unknown {
        min_size: usize,
    },
}

impl Slot {
    fn size(&self) -> usize {
        match self {
            Slot::Known { name, value } => name.len() + value.len() + ENTRY_OVERHEAD,
            Slot::Unknown { min_size } => *min_size,
        }
    }
}

/// The decoder of one direction of a connection.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// Entries known to have been inserted, newest first.
    entries: VecDeque<Slot>,
    /// Sum of `entries`' sizes (a lower bound where a slot is unknown).
    size: usize,
    /// The table's maximum size, once known.
    max: Option<usize>,
    /// Older entries than `entries` may be in the table.
    unknown_older: bool,
}

impl Decoder {
    /// A decoder that saw the connection start: its table is empty.
    pub fn from_start() -> Self {
        Decoder { entries: VecDeque::new(), size: 0, max: Some(DEFAULT_TABLE_SIZE), unknown_older: false }
    }

    /// A decoder that joins a connection already going.
    pub fn joined() -> Self {
        let mut decoder = Self::from_start();
        decoder.lose();
        decoder
    }

    /// Forgets the table: a gap or an error hid insertions.
    pub fn lose(&mut self) {
        self.entries.clear();
        self.size = 0;
        self.max = None;
        self.unknown_older = true;
    }

    /// Whether every entry of the table is known.
    pub fn is_known(&self) -> bool {
        !self.unknown_older && self.entries.iter().all(|s| matches!(s, Slot::Known { .. }))
    }

    /// Decodes one whole header block (fragments joined). On error the
    /// table is lost.
    pub fn decode_block(&mut self, block: &[u8]) -> Result<Vec<Field>, HpackError> {
        let result = self.decode_fields(block);
        if result.is_err() {
            self.lose();
        }
        result
    }

    fn decode_fields(&mut self, block: &[u8]) -> Result<Vec<Field>, HpackError> {
        let mut input = Input { bytes: block, pos: 0 };
        let mut fields = Vec::new();
        let mut decoded = 0usize;
        while let Some(&first) = input.peek() {
            let field = if first & 0x80 != 0 {
                let index = input.integer(7)?;
                self.lookup(index)?
            } else if first & 0xc0 == 0x40 {
                self.literal(&mut input, 6, true)?
            } else if first & 0xe0 == 0x20 {
                let size = input.integer(5)?;
                self.resize(usize::try_from(size).unwrap_or(usize::MAX));
                continue;
            } else {
                // Never indexed (0001) and without indexing (0000) alike.
                self.literal(&mut input, 4, false)?
            };
            if let Field::Known { name, value } = &field {
                decoded += name.len() + value.len();
            }
            decoded += ENTRY_OVERHEAD;
            if decoded > MAX_BLOCK_DECODED {
                return Err(HpackError::TooLarge);
            }
            fields.push(field);
        }
        Ok(fields)
    }

    /// A literal field; with `index`, it is also inserted into the table.
    fn literal(&mut self, input: &mut Input, prefix: u32, index: bool) -> Result<Field, HpackError> {
        let name_index = input.integer(prefix)?;
        let name = if name_index == 0 {
            Some(input.string()?)
        } else {
            match self.lookup(name_index)? {
                Field::Known { name, .. } => Some(name),
                Field::Unknown => None,
            }
        };
        let value = input.string()?;
        if index {
            let slot = match &name {
                Some(name) => Slot::Known { name: name.clone(), value: value.clone() },
                None => Slot::Unknown { min_size: value.len() + ENTRY_OVERHEAD },
            };
            self.insert(slot);
        }
        Ok(match name {
            Some(name) => Field::Known { name, value },
            None => Field::Unknown,
        })
    }

    /// The field an index names: the static table, then the dynamic one.
    fn lookup(&self, index: u64) -> Result<Field, HpackError> {
        let index = usize::try_from(index).map_err(|_| HpackError::BadIndex(index))?;
        if index == 0 {
            return Err(HpackError::ZeroIndex);
        }
        if let Some((name, value)) = STATIC_TABLE.get(index - 1) {
            return Ok(Field::Known { name: name.as_bytes().to_vec(), value: value.as_bytes().to_vec() });
        }
        match self.entries.get(index - 1 - STATIC_TABLE.len()) {
            Some(Slot::Known { name, value }) => Ok(Field::Known { name: name.clone(), value: value.clone() }),
            Some(Slot::Unknown { .. }) => Ok(Field::Unknown),
            None if self.unknown_older => Ok(Field::Unknown),
            None => Err(HpackError::BadIndex(index as u64)),
        }
    }

    /// Adds an entry, evicting the oldest to make room (RFC 7541 4.4).
    fn insert(&mut self, slot: Slot) {
        let size = slot.size();
        match self.max {
            Some(max) if size > max => {
                // Too large for the table: it empties it.
                self.entries.clear();
                self.size = 0;
                self.unknown_older = false;
                return;
            }
            Some(max) => {
                self.evict_to(max - size);
                self.size += size;
                self.entries.push_front(slot);
                self.note_full(max);
            }
            None => {
                self.size += size;
                self.entries.push_front(slot);
            }
        }
        self.keep_bounded();
    }

    /// A dynamic table size update.
    fn resize(&mut self, max: usize) {
        self.max = Some(max);
        self.evict_to(max);
        self.note_full(max);
        self.keep_bounded();
    }

    /// Evicts the oldest entries until the table holds at most `room`.
    /// Older unknown entries go first: if the known ones alone exceed
    /// `room`, none of those is left.
    fn evict_to(&mut self, room: usize) {
        if self.size > room {
            self.unknown_older = false;
        }
        while self.size > room {
            let Some(oldest) = self.entries.pop_back() else { break };
            self.size -= oldest.size();
        }
    }

    /// With no room left for even one more entry beside the known ones,
    /// no older entry can still be there.
    fn note_full(&mut self, max: usize) {
        if self.size + ENTRY_OVERHEAD > max {
            self.unknown_older = false;
        }
    }

    /// Caps the memory kept: the oldest entries past the cap are dropped
    /// and become unknown.
    fn keep_bounded(&mut self) {
        while self.size > MAX_KEPT_TABLE {
            let Some(oldest) = self.entries.pop_back() else { break };
            self.size -= oldest.size();
            self.unknown_older = true;
        }
    }
}

/// A header block being read.
struct Input<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn peek(&self) -> Option<&u8> {
        self.bytes.get(self.pos)
    }

    fn next(&mut self) -> Result<u8, HpackError> {
        let byte = *self.bytes.get(self.pos).ok_or(HpackError::Truncated)?;
        self.pos += 1;
        Ok(byte)
    }

    /// An integer with an N-bit prefix (RFC 7541 section 5.1), at most 2^32.
    fn integer(&mut self, prefix: u32) -> Result<u64, HpackError> {
        let mask = (1u64 << prefix) - 1;
        let mut value = u64::from(self.next()?) & mask;
        if value < mask {
            return Ok(value);
        }
        let mut shift = 0;
        loop {
            let byte = self.next()?;
            value += u64::from(byte & 0x7f) << shift;
            if value > u64::from(u32::MAX) {
                return Err(HpackError::IntegerOverflow);
            }
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// A string literal (RFC 7541 section 5.2).
    fn string(&mut self) -> Result<Vec<u8>, HpackError> {
        let huffman = self.peek().is_some_and(|b| b & 0x80 != 0);
        let len = self.integer(7)? as usize;
        let rest = &self.bytes[self.pos..];
        if len > rest.len() {
            return Err(HpackError::Truncated);
        }
        let raw = &rest[..len];
        self.pos += len;
        if !huffman {
            return Ok(raw.to_vec());
        }
        let mut out = Vec::with_capacity(len + len / 2);
        huffman::decode(raw, &mut out, MAX_BLOCK_DECODED)?;
        Ok(out)
    }
}

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

#[cfg(test)]
mod tests;
