//! Replay stage: ordered exchanges in (from the pipeline); each one that
//! may be replayed is sent to the candidate, its answer compared with the
//! recorded one ([`crate::diff`]), and an [`Outcome`] comes out per
//! captured exchange, to the `--out` JSON Lines and to the report.
//!
//! Replay is off the critical path: exchanges arrive over bounded queues.
//! From files (`topology::lanes`) the queues wait (nothing is lost);
//! live (`topology::dispatch`), a full queue drops the exchange and counts it, so capture
//! never waits for the candidate. Both schedulers call
//! [`Replayer::process`] for each exchange.

mod answer;
pub mod client;
pub mod config;
pub mod endpoint;
pub mod holdback;
mod http1;
pub mod load;
pub mod naming;
pub mod outcome;
mod replayer;
mod schedule;
pub mod settling;
mod tls;
pub mod triage;

pub use answer::{CandidateAnswer, ClientError};
pub use holdback::Holdback;
pub use outcome::{Explained, GAP_REASON, Outcome, OutcomeKind};
pub use replayer::{Current, Replayer, Sent};
pub use schedule::Schedule;
pub(crate) use schedule::{ConnectionPacer, Pacer, RateLimiter};
