//! Output stage for `pairs`: ordered batches of exchanges in, JSON Lines
//! out. Rendering JSON costs more than everything before it (body text
//! must be escaped byte by byte), so batches are rendered on worker
//! threads and written back in their original order.

use std::collections::BTreeMap;
use std::io::Write;

use crossbeam_channel::{Receiver, bounded};

mod exchange_line;

/// Renders each batch's items as JSON Lines on `workers` threads and
/// writes them to `out` in input order. Memory stays bounded: at most a few
/// batches per worker are in flight. On a write error the remaining input
/// is still drained (so upstream stages can finish) and the error returned.
pub fn write_ordered<T, W>(batches: Receiver<Vec<T>>, out: &mut W, workers: usize) -> std::io::Result<()>
where
    T: JsonLine + Send,
    W: Write,
{
    let workers = workers.max(1);
    let (work_tx, work_rx) = bounded::<(u64, Vec<T>)>(workers * 2);
    let (done_tx, done_rx) = bounded::<(u64, Vec<u8>)>(workers * 2);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (work_rx, done_tx) = (work_rx.clone(), done_tx.clone());
            scope.spawn(move || {
                for (seq, batch) in work_rx {
                    if done_tx.send((seq, render(&batch))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        scope.spawn(move || {
            for (seq, batch) in batches.iter().enumerate() {
                if work_tx.send((seq as u64, batch)).is_err() {
                    break;
                }
            }
        });
        let mut waiting = BTreeMap::new();
        let mut next = 0u64;
        let mut result = Ok(());
        for (seq, bytes) in done_rx {
            waiting.insert(seq, bytes);
            while let Some(bytes) = waiting.remove(&next) {
                next += 1;
                if result.is_ok() {
                    result = out.write_all(&bytes);
                }
            }
        }
        result
    })
}

/// Something that renders itself as one line of JSON.
pub trait JsonLine {
    fn write_json_line(&self, out: &mut Vec<u8>);
}

impl JsonLine for crate::exchange::Exchange {
    fn write_json_line(&self, out: &mut Vec<u8>) {
        exchange_line::write_exchange_line(self, out)
    }
}

fn render<T: JsonLine>(batch: &[T]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(batch.len() * 1024);
    for item in batch {
        item.write_json_line(&mut bytes);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    impl JsonLine for u32 {
        fn write_json_line(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(format!("{self}\n").as_bytes());
        }
    }

    #[test]
    fn batches_come_out_in_input_order_whatever_the_workers_do() {
        let (tx, rx) = bounded(4);
        std::thread::spawn(move || {
            for b in 0..200u32 {
                // Uneven batch sizes make workers finish out of order.
                let batch: Vec<u32> = (0..(b % 7) * 50).map(|i| b * 10_000 + i).collect();
                tx.send(batch).unwrap();
            }
        });
        let mut out = Vec::new();
        write_ordered(rx, &mut out, 3).unwrap();
        let got: Vec<u32> = String::from_utf8(out).unwrap().lines().map(|l| l.parse().unwrap()).collect();
        let want: Vec<u32> = (0..200u32).flat_map(|b| (0..(b % 7) * 50).map(move |i| b * 10_000 + i)).collect();
        assert_eq!(got, want);
    }
}
