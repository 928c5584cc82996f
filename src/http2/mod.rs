//! HTTP/2 seen passively on the wire (RFC 9113, cleartext h2c): a
//! connection's two byte streams go in, one exchange per stream comes out.
//! [`hpack`] decodes header blocks, tolerating a capture that joined late.

pub mod conn;
pub mod frames;
pub mod fuzzing;
pub mod hpack;
pub mod huffman;
mod stream;

pub use conn::{H2Conn, Out, PREFACE, StartClock, Stats};
