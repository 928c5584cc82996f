//! Hashing of what a sender chooses. In: a connection's key (its two
//! endpoints) or a socket source's connection id. Out: the hasher of the
//! tables keyed by connection, and the direction-independent hash that
//! picks a connection's shard and decides whether it is sampled.
//!
//! Both are seeded at random once per process (foldhash, a fast hash with a
//! secret seed), and each table also gets a seed of its own. With an
//! unseeded hash (FxHash, as before), 4-tuples worked out offline to
//! collide pile up in one bucket of a flow table (every look-up then walks
//! them all) or in one shard; with a secret seed no such set can be worked
//! out in advance.
//!
//! The shard hash is the same in every thread of a run, so both directions
//! and every packet of a connection meet in one shard, and `--sample` keeps
//! the same connections for the whole run (a SIGHUP that changes the share
//! included). It differs from one run, or one tap, to the next: each run
//! samples its own random share of connections, which is all sampling is
//! for (a fixed, known seed would let a sender choose to be sampled out).

use std::collections::HashMap;
use std::hash::BuildHasher;

use foldhash::SharedSeed;
use foldhash::fast::{RandomState, SeedableRandomState};

use super::FlowKey;

/// The hasher of tables keyed by what a sender chooses: seeded per process
/// and per table.
pub type SeededState = RandomState;

/// A table keyed by connection.
pub type FlowMap<V> = HashMap<FlowKey, V, SeededState>;

/// The process's shard hasher: its random seed, no per-table part, so that
/// every thread computes the same hash for a connection.
fn shard_hasher() -> SeedableRandomState {
    SeedableRandomState::with_seed(0, SharedSeed::global_random())
}

impl FlowKey {
    /// Direction-independent hash (the key puts the lower endpoint first),
    /// so both directions land in one shard.
    pub fn hash64(&self) -> u64 {
        shard_hasher().hash_one(self)
    }

    /// The same for a socket source's connection id, so sampling and
    /// sharding work alike for both kinds of source.
    pub fn hash_u64(id: u64) -> u64 {
        shard_hasher().hash_one(id)
    }
}

#[cfg(test)]
mod tests;
