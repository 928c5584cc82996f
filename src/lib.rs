//! shadowtap: tap-compare from the wire. See ARCHITECTURE.md for the
//! data flow; each module is one stage.

pub mod bounded;
pub mod calendar;
pub mod capture;
pub mod daemon;
pub mod decode;
pub mod demo;
pub mod diff;
pub mod ebpf;
pub mod exchange;
pub mod fleet;
pub mod har;
pub mod html;
pub mod http;
pub mod http2;
pub mod jsonl;
pub mod metrics;
pub mod pipeline;
pub mod reassembly;
pub mod redact;
pub mod replay;
pub mod report;
pub mod semantics;
pub mod state;
pub mod streams;
pub mod topology;
