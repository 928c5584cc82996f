//! The topology: source → pipeline → replay → sinks, wired in one place,
//! the layer above every stage. Commands choose components; the builder
//! ([`build`]) makes them from the configuration in force, which the one
//! table of flags to keys ([`flags`]) made. Here too are the two
//! schedulers that drive the replayer ([`lanes`] for saved captures,
//! [`dispatch`] for the live daemon) and the session of a saved capture
//! ([`saved`]).

pub mod build;
pub mod dispatch;
pub mod flags;
pub mod lanes;
pub mod saved;

pub use build::{Consumer, SourceChoice};
pub use flags::Flags;

/// Where outcome lines go.
pub type OutcomeSink = Box<dyn std::io::Write + Send>;
