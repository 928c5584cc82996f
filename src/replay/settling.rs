//! The daemon's outcomes held while endpoint names settle (see
//! [`super::naming`]): finished outcomes in; out, the same outcomes under
//! their final names, once names have settled (or when the hold is full).

use std::collections::VecDeque;

use super::outcome::Outcome;
use super::replayer::Replayer;

/// Outcomes held at most while names settle; beyond, the oldest goes out
/// under the names known then.
pub const MAX_HELD: usize = 10_000;

/// The daemon's outcomes, held while names settle.
#[derive(Default)]
pub struct Settling {
    held: VecDeque<Outcome>,
}

impl Settling {
    /// Takes a finished outcome; returns those that may go out now, each
    /// under its final name.
    pub fn offer(&mut self, outcome: Outcome, replayer: &Replayer) -> Vec<Outcome> {
        self.held.push_back(outcome);
        if replayer.names.is_settled() {
            return self.drain(replayer);
        }
        if self.held.len() > MAX_HELD {
            return self.held.pop_front().map(|o| named(o, replayer)).into_iter().collect();
        }
        Vec::new()
    }

    /// What may go out on a clock tick (names settled by time).
    pub fn tick(&mut self, replayer: &Replayer) -> Vec<Outcome> {
        replayer.names.settle_if_due(&replayer.config().naming);
        if replayer.names.is_settled() { self.drain(replayer) } else { Vec::new() }
    }

    /// Everything held, named with what is known.
    pub fn drain(&mut self, replayer: &Replayer) -> Vec<Outcome> {
        self.held.drain(..).map(|o| named(o, replayer)).collect()
    }
}

fn named(mut outcome: Outcome, replayer: &Replayer) -> Outcome {
    outcome.endpoint = replayer.names.name(&outcome.method, &outcome.uri, replayer.templates());
    outcome
}
