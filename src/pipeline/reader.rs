//! The reader thread: capture and decode, one frame at a time, then each
//! segment appended to its shard's batch (payloads copied into one buffer
//! per batch). Hands batches on every `batch_frames` frames and when a
//! live capture goes quiet; waits for slow shards on files, holds or drops
//! (counted) when live.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::{Batch, CaptureStats, ChunkKind, ChunkMeta, Config, Progress, SegMeta, Source};
use crate::capture::{CaptureError, CaptureFile};
use crate::decode::{self, Skip};
use crate::exchange::Nanos;
use crate::reassembly::FlowKey;

pub(super) struct Reader {
    txs: Vec<Sender<Batch>>,
    free: Vec<Receiver<Batch>>,
    pending: Vec<Batch>,
    config: Config,
    pub(super) stats: CaptureStats,
    progress: Arc<Progress>,
    since_flush: usize,
    clock: Nanos,
    bytes_before_file: u64,
    /// Cached from `progress` at each flush, so the per-packet path reads
    /// no shared memory.
    sample_basis_points: u64,
}

impl Reader {
    pub(super) fn new(
        txs: Vec<Sender<Batch>>,
        free: Vec<Receiver<Batch>>,
        config: Config,
        progress: Arc<Progress>,
    ) -> Self {
        let pending = (0..txs.len()).map(|_| Batch::default()).collect();
        let sample_basis_points = progress.sample_basis_points.load(Ordering::Relaxed);
        Reader {
            txs,
            free,
            pending,
            config,
            stats: CaptureStats::default(),
            progress,
            since_flush: 0,
            clock: i64::MIN,
            bytes_before_file: 0,
            sample_basis_points,
        }
    }

    pub(super) fn run(&mut self, source: Source) -> Option<CaptureError> {
        match source {
            Source::Files(paths) => {
                for path in paths {
                    if let Err(e) = self.read_file(&path) {
                        return Some(e);
                    }
                }
                None
            }
            Source::Live(mut live) => self.read_live(&mut live).err(),
            Source::Ebpf(mut capture) => {
                let recorder = capture.recorder.take();
                self.read_ebpf(&capture, recorder).err()
            }
        }
    }

    /// The eBPF source: events in ring order, each to the shard of its
    /// connection (and to the recorder, if any); batches handed on when
    /// full and every few ms.
    fn read_ebpf(
        &mut self,
        capture: &crate::ebpf::EbpfCapture,
        recorder: Option<Box<crate::ebpf::record::FileRecorder>>,
    ) -> Result<(), CaptureError> {
        let mut sample_in_kernel = self.sample_basis_points;
        let this = std::cell::RefCell::new(self);
        let recorder = std::cell::RefCell::new(recorder);
        let mut last_flush = i64::MIN;
        let mut last_record_flush = i64::MIN;
        let ran = capture.run(
            |event| match event {
                Ok(event) => {
                    let ts = capture.unix_ns(event.ts());
                    if let Some(recorder) = recorder.borrow_mut().as_mut() {
                        recorder.record(&event, ts);
                    }
                    let mut reader = this.borrow_mut();
                    reader.take_event(&event, ts);
                    if reader.since_flush >= reader.config.batch_frames {
                        reader.flush_all();
                    }
                }
                Err(crate::ebpf::Malformed) => this.borrow_mut().stats.malformed += 1,
            },
            |now| {
                let mut reader = this.borrow_mut();
                reader.clock = reader.clock.max(now);
                if now.saturating_sub(last_flush) >= EBPF_FLUSH_NS {
                    last_flush = now;
                    reader.flush_all();
                    // A reload changed --sample: the kernel decides it.
                    if reader.sample_basis_points != sample_in_kernel {
                        sample_in_kernel = reader.sample_basis_points;
                        capture.set_sample(sample_in_kernel);
                    }
                }
                // What was recorded reaches the file within a second.
                if now.saturating_sub(last_record_flush) >= 1_000_000_000
                    && let Some(recorder) = recorder.borrow_mut().as_mut()
                {
                    last_record_flush = now;
                    recorder.flush();
                }
            },
        );
        if let Some(recorder) = recorder.into_inner() {
            let s = recorder.finish();
            tracing::info!(
                connections = s.connections,
                events = s.events,
                bytes = s.bytes,
                packets = s.packets,
                evicted = s.evicted,
                write_errors = s.write_errors,
                "recording closed"
            );
        }
        ran?;
        Ok(())
    }

    /// Appends one eBPF event to its connection's shard batch.
    fn take_event(&mut self, event: &crate::ebpf::Event<'_>, ts: Nanos) {
        use crate::ebpf::{Event, Side, stand_in_addresses};
        use crate::streams::Toward;
        let toward = |side: Side| if side == Side::ToServer { Toward::Server } else { Toward::Client };
        self.stats.packets += 1;
        self.since_flush += 1;
        self.clock = self.clock.max(ts);
        let conn = event.conn();
        // Sampling was decided in the kernel, when the connection opened.
        let hash = crate::reassembly::FlowKey::hash_u64(conn);
        let (kind, bytes): (ChunkKind, &[u8]) = match event {
            Event::Open { server, client, .. } => {
                let (client, server) = stand_in_addresses(conn, server, client);
                (ChunkKind::Open { client, server }, &[])
            }
            Event::Data { side, off, bytes, .. } => (ChunkKind::Data { toward: toward(*side), off: *off }, bytes),
            Event::Skip { side, off, len, .. } => {
                (ChunkKind::Skip { toward: toward(*side), off: *off, len: *len }, &[])
            }
            Event::Close { to_server, to_client, .. } => {
                (ChunkKind::Close { to_server: *to_server, to_client: *to_client }, &[])
            }
        };
        self.stats.bytes += bytes.len() as u64;
        self.stats.tcp_segments += 1;
        let shard = crate::reassembly::shard_of_hash(hash, self.txs.len());
        let batch = &mut self.pending[shard];
        let start = batch.data.len() as u32;
        batch.data.extend_from_slice(bytes);
        batch.chunks.push(ChunkMeta { conn, ts, kind, start, len: bytes.len() as u32 });
    }

    fn read_file(&mut self, path: &std::path::Path) -> Result<(), CaptureError> {
        let mut file = CaptureFile::open(path)?;
        self.stats.files += 1;
        let size = file.size();
        while let Some(frame) = file.next_frame()? {
            self.take_frame(frame.ts, frame.linktype, frame.data);
            if self.since_flush >= self.config.batch_frames {
                let position = file.position().unwrap_or(0).min(size);
                self.progress.bytes_read.store(self.bytes_before_file + position, Ordering::Relaxed);
                self.flush_all();
            }
        }
        self.bytes_before_file += size;
        self.progress.bytes_read.store(self.bytes_before_file, Ordering::Relaxed);
        Ok(())
    }

    fn read_live(&mut self, live: &mut crate::capture::LiveCapture) -> Result<(), CaptureError> {
        loop {
            match live.next_frame()? {
                crate::capture::LiveEvent::Frame(frame) => {
                    self.take_frame(frame.ts, frame.linktype, frame.data);
                    if self.since_flush >= self.config.batch_frames {
                        self.flush_all();
                    }
                }
                crate::capture::LiveEvent::Idle(now) => {
                    self.clock = self.clock.max(now);
                    self.flush_all();
                }
                crate::capture::LiveEvent::Stop => return Ok(()),
            }
        }
    }

    /// Decodes one frame and appends its segment to its shard's batch.
    fn take_frame(&mut self, ts: Nanos, linktype: i32, data: &[u8]) {
        self.stats.packets += 1;
        self.stats.bytes += data.len() as u64;
        self.since_flush += 1;
        self.clock = self.clock.max(ts);
        let packet = match decode::decode(linktype, data) {
            Ok(packet) => packet,
            Err(skip) => {
                self.count_skip(skip);
                return;
            }
        };
        self.stats.tcp_segments += 1;
        let (key, _) = FlowKey::of(packet.src, packet.dst);
        let hash = key.hash64();
        if self.sample_basis_points < 10_000 && !sampled_in(hash, self.sample_basis_points) {
            self.stats.sampled_out += 1;
            return;
        }
        let shard = crate::reassembly::shard_of_hash(hash, self.txs.len());
        let batch = &mut self.pending[shard];
        let start = batch.data.len() as u32;
        batch.data.extend_from_slice(packet.payload);
        batch.segs.push(SegMeta {
            src: packet.src,
            dst: packet.dst,
            seq: packet.seq,
            ack: packet.ack,
            flags: packet.flags,
            ts,
            start,
            len: packet.payload.len() as u32,
        });
    }

    fn count_skip(&mut self, skip: Skip) {
        match skip {
            Skip::Malformed => self.stats.malformed += 1,
            Skip::NotTcp => self.stats.not_tcp += 1,
            Skip::Fragment => self.stats.fragments += 1,
            Skip::UnsupportedLink => self.stats.unsupported_link += 1,
        }
    }

    /// Hands every shard its batch (even an empty one: it carries the clock).
    pub(super) fn flush_all(&mut self) {
        self.since_flush = 0;
        self.progress.packets.store(self.stats.packets, Ordering::Relaxed);
        self.progress.bytes.store(self.stats.bytes, Ordering::Relaxed);
        self.progress.shard_drops.store(self.stats.shard_drops, Ordering::Relaxed);
        self.sample_basis_points = self.progress.sample_basis_points.load(Ordering::Relaxed);
        for shard in 0..self.txs.len() {
            let fresh = self.free[shard].try_recv().unwrap_or_default();
            let mut batch = std::mem::replace(&mut self.pending[shard], fresh);
            batch.clock = self.clock;
            if self.config.block_when_full {
                let _ = self.txs[shard].send(batch);
                continue;
            }
            match self.txs[shard].try_send(batch) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                // A shard not scheduled in time: keep its batch growing here,
                // up to a bound, rather than lose it; an empty batch (a clock
                // tick) is simply sent later.
                Err(TrySendError::Full(batch)) if batch.data.len() < LIVE_HOLD_BYTES => {
                    self.pending[shard] = batch;
                }
                Err(TrySendError::Full(batch)) => {
                    self.stats.shard_drops += 1;
                    self.stats.shard_dropped_segments += (batch.segs.len() + batch.chunks.len()) as u64;
                }
            }
        }
    }
}

/// How often the eBPF reader hands batches on when events trickle in.
const EBPF_FLUSH_NS: Nanos = 5_000_000;

/// Payload bytes the live reader may hold for one shard that is behind,
/// before it drops (and counts) the batch.
const LIVE_HOLD_BYTES: usize = 32 << 20;

/// Keeps a connection when its hash falls in the sampled share, so both
/// directions and every packet of a connection are kept or dropped together.
fn sampled_in(hash: u64, basis_points: u64) -> bool {
    (hash >> 11) % 10_000 < basis_points
}
