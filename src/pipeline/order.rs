//! The order stage: shard outputs (exchanges plus watermarks) in, the
//! exchanges out in request-time order, released once every shard's
//! watermark has passed them, or forced out (counted) when what is held
//! exceeds its byte bound.

use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender};

use super::{Config, Progress, ShardOut};
use crate::exchange::{Exchange, Nanos};

/// Heap entry: earliest request first, then arrival order.
struct Queued {
    ts: Nanos,
    seq: u64,
    exchange: Exchange,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.seq) == (other.ts, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.ts, other.seq).cmp(&(self.ts, self.seq))
    }
}

pub(super) fn run_order(
    shards: usize,
    rx: Receiver<ShardOut>,
    tx: Sender<Vec<Exchange>>,
    config: Config,
    progress: Arc<Progress>,
) -> (u64, u64) {
    let mut watermarks = vec![Nanos::MIN; shards];
    let mut heap = BinaryHeap::new();
    let mut held_bytes = 0usize;
    let (mut seq, mut forced, mut late) = (0u64, 0u64, 0u64);
    let mut released_up_to = Nanos::MIN;
    let mut released = 0u64;
    for msg in rx {
        watermarks[msg.shard] = watermarks[msg.shard].max(msg.watermark);
        if !config.ordered {
            released += msg.exchanges.len() as u64;
            progress.exchanges.store(released, Ordering::Relaxed);
            if !msg.exchanges.is_empty() && tx.send(msg.exchanges).is_err() {
                break;
            }
            continue;
        }
        for exchange in msg.exchanges {
            held_bytes += exchange.approx_bytes();
            seq += 1;
            heap.push(Queued { ts: exchange.request.ts, seq, exchange });
        }
        let limit = watermarks.iter().copied().min().unwrap_or(Nanos::MAX);
        let mut ready = Vec::new();
        while let Some(top) = heap.peek() {
            let over_budget = held_bytes > config.order_buffer_bytes;
            if top.ts > limit && !over_budget {
                break;
            }
            let queued = heap.pop().expect("peeked");
            if top_is_forced(queued.ts, limit) {
                forced += 1;
            }
            if queued.ts < released_up_to {
                late += 1;
            }
            released_up_to = released_up_to.max(queued.ts);
            held_bytes -= queued.exchange.approx_bytes();
            ready.push(queued.exchange);
        }
        released += ready.len() as u64;
        progress.exchanges.store(released, Ordering::Relaxed);
        if !send_in_chunks(&tx, ready) {
            break;
        }
    }
    (forced, late)
}

/// Exchanges per batch handed to the consumer.
const RELEASE_CHUNK: usize = 256;

/// Hands `ready` on in chunks, so that consumers holding a few batches in
/// flight hold a bounded amount of memory. Each exchange is moved once
/// (splitting the rest off after each chunk copied it again: quadratic
/// when a shard hands over many at once). False when the consumer is gone.
fn send_in_chunks(tx: &Sender<Vec<Exchange>>, ready: Vec<Exchange>) -> bool {
    let mut ready = ready.into_iter().peekable();
    while ready.peek().is_some() {
        let chunk: Vec<Exchange> = ready.by_ref().take(RELEASE_CHUNK).collect();
        if tx.send(chunk).is_err() {
            return false;
        }
    }
    true
}

fn top_is_forced(ts: Nanos, limit: Nanos) -> bool {
    ts > limit
}
