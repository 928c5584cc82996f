//! The staged pipeline that turns frames into ordered exchanges:
//!
//! ```text
//! reader (capture + decode) ──batches──▶ shard 0..N (reassembly + HTTP)
//!                                            │ exchanges + watermark
//!                                            ▼
//!                                   order (merge by request time) ──▶ consumer
//! ```
//!
//! In: capture sources. Out: batches of [`Exchange`] on a bounded channel,
//! ordered by request start time, and a [`Summary`] when done. Every stage
//! is a thread that owns its state; stages talk over bounded crossbeam
//! channels carrying batches, so there is no lock on the per-packet path.
//! A connection is in exactly one shard (direction-independent flow hash).
//!
//! Ordering: each shard reports, with its exchanges, a watermark (no later
//! exchange from it can have started earlier: its oldest unfinished request,
//! or the capture clock). The order stage releases what is older than every
//! shard's watermark; a bound on what it holds forces release if a request
//! stays unanswered for long (counted).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::capture::CaptureError;
use crate::exchange::{Exchange, Nanos};
use crate::http;
use crate::reassembly::{self, Reassembler, Segment};
use crate::streams::{self, StreamEvent, Streams, Toward};

mod order;
mod reader;

use order::run_order;
use reader::Reader;

#[derive(Clone, Debug)]
pub struct Config {
    pub shards: usize,
    pub http: http::Config,
    pub limits: reassembly::Limits,
    /// Frames read between two hand-offs to the shards.
    pub batch_frames: usize,
    /// Batches that may wait in front of each shard.
    pub shard_queue: usize,
    /// Release exchanges in request-time order (files); live mode does not
    /// need the wait.
    pub ordered: bool,
    /// Bytes of finished exchanges the order stage may hold.
    pub order_buffer_bytes: usize,
    /// Batches of released exchanges that may wait for the consumer.
    pub release_queue: usize,
    /// When a shard's queue is full: wait (files, nothing lost) or drop the
    /// batch and count it (live: capture must never wait).
    pub block_when_full: bool,
    /// Keep only connections whose flow hash falls in this percentage.
    pub sample_percent: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            shards: std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 16),
            http: http::Config::default(),
            limits: reassembly::Limits::default(),
            batch_frames: 2048,
            shard_queue: 8,
            ordered: true,
            order_buffer_bytes: 64 << 20,
            release_queue: 16,
            block_when_full: true,
            sample_percent: 100.0,
        }
    }
}

impl Config {
    /// Small batches and short queues, for a consumer slower than the
    /// pipeline (replay): the reader then runs only a little ahead of it,
    /// and the memory it cycles through stays small and warm instead of
    /// the whole file being read ahead into fresh pages.
    pub fn with_short_queues(self) -> Config {
        Config { batch_frames: 512, shard_queue: 2, release_queue: 2, ..self }
    }
}

/// Counters of the reader (capture and decode).
#[derive(Clone, Debug, Default)]
pub struct CaptureStats {
    pub files: u64,
    pub packets: u64,
    pub bytes: u64,
    pub tcp_segments: u64,
    pub not_tcp: u64,
    pub fragments: u64,
    pub malformed: u64,
    pub unsupported_link: u64,
    pub sampled_out: u64,
    /// Batches (and their segments) dropped because a shard was behind.
    pub shard_drops: u64,
    pub shard_dropped_segments: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub capture: CaptureStats,
    pub reassembly: reassembly::Stats,
    /// Byte streams of the eBPF source (instead of reassembly).
    pub streams: streams::Stats,
    pub http: http::Stats,
    /// Exchanges released before older ones could be ruled out, because the
    /// order stage reached its memory bound.
    pub order_forced: u64,
    /// Exchanges released after a newer one already was (capture time went
    /// backwards in the input).
    pub order_late: u64,
}

/// Live state shared with the outside while the pipeline runs: progress
/// and gauges (written once per batch, never per packet), and the sampling
/// share, which a daemon reload may change.
#[derive(Debug)]
pub struct Progress {
    pub bytes_read: AtomicU64,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub exchanges: AtomicU64,
    /// Batches dropped because a shard was behind (live mode).
    pub shard_drops: AtomicU64,
    /// Per shard: connections tracked, out-of-order bytes held.
    pub active_flows: Vec<AtomicU64>,
    pub buffered_bytes: Vec<AtomicU64>,
    /// Per shard: connections not tracked (flow table full), and bytes
    /// thrown away by a memory bound.
    pub flows_refused: Vec<AtomicU64>,
    pub bound_dropped_bytes: Vec<AtomicU64>,
    /// Per shard: requests waiting for answers, and those sent out
    /// unanswered by the bound on them.
    pub waiting_requests: Vec<AtomicU64>,
    pub sent_out_unanswered: Vec<AtomicU64>,
    /// Share of connections kept, in hundredths of a percent (10000 = all).
    pub sample_basis_points: AtomicU64,
}

impl Progress {
    pub fn new(shards: usize, sample_percent: f64) -> Progress {
        Progress {
            bytes_read: AtomicU64::new(0),
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            exchanges: AtomicU64::new(0),
            shard_drops: AtomicU64::new(0),
            active_flows: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            buffered_bytes: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            flows_refused: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            bound_dropped_bytes: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            waiting_requests: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            sent_out_unanswered: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            sample_basis_points: AtomicU64::new(percent_to_basis_points(sample_percent)),
        }
    }

    pub fn set_sample_percent(&self, percent: f64) {
        self.sample_basis_points.store(percent_to_basis_points(percent), Ordering::Relaxed);
    }

    pub fn total(counters: &[AtomicU64]) -> u64 {
        counters.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

fn percent_to_basis_points(percent: f64) -> u64 {
    (percent.clamp(0.0, 100.0) * 100.0).round() as u64
}

/// Where the reader takes frames from.
pub enum Source {
    Files(Vec<PathBuf>),
    Live(crate::capture::LiveCapture),
    /// Sockets of watched processes (byte streams, not packets).
    Ebpf(Box<crate::ebpf::EbpfCapture>),
}

/// A running pipeline: take exchanges from `exchanges`, then `finish`.
pub struct Running {
    pub exchanges: Receiver<Vec<Exchange>>,
    pub progress: Arc<Progress>,
    reader: JoinHandle<(CaptureStats, Option<CaptureError>)>,
    shards: Vec<JoinHandle<(reassembly::Stats, streams::Stats, http::Stats)>>,
    order: JoinHandle<(u64, u64)>,
}

impl Running {
    /// Waits for every stage; returns the summary and the error that stopped
    /// the reader, if any (what was read before it was still processed).
    pub fn finish(self) -> (Summary, Option<CaptureError>) {
        let Running { exchanges, reader, shards, order, .. } = self;
        // A consumer that stopped early (a replay lane died) must not leave
        // the order stage blocked on a full queue, and with it every stage.
        drop(exchanges);
        let mut summary = Summary::default();
        let (capture, error) = reader.join().expect("reader thread panicked");
        summary.capture = capture;
        for shard in shards {
            let (r, st, h) = shard.join().expect("shard thread panicked");
            summary.reassembly.add(&r);
            summary.streams.add(&st);
            summary.http.add(&h);
        }
        let (forced, late) = order.join().expect("order thread panicked");
        summary.order_forced = forced;
        summary.order_late = late;
        (summary, error)
    }
}

/// Segment metadata in a batch; the payload is `data[start..start+len]`.
struct SegMeta {
    src: std::net::SocketAddr,
    dst: std::net::SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    ts: Nanos,
    start: u32,
    len: u32,
}

/// A byte-stream event in a batch (eBPF source); its bytes, if any, are
/// `data[start..start+len]`.
struct ChunkMeta {
    conn: u64,
    ts: Nanos,
    kind: ChunkKind,
    start: u32,
    len: u32,
}

#[derive(Clone, Copy)]
enum ChunkKind {
    Open { client: std::net::SocketAddr, server: std::net::SocketAddr },
    Data { toward: Toward, off: u64 },
    Skip { toward: Toward, off: u64, len: u64 },
    Close { to_server: u64, to_client: u64 },
}

/// What the reader hands a shard: segments (packet sources) or chunks
/// (socket sources) with their payloads packed in one buffer (one
/// allocation per batch, reused), and the capture clock.
#[derive(Default)]
struct Batch {
    segs: Vec<SegMeta>,
    chunks: Vec<ChunkMeta>,
    data: Vec<u8>,
    clock: Nanos,
}

struct ShardOut {
    shard: usize,
    exchanges: Vec<Exchange>,
    /// No exchange this shard sends later started before this time.
    watermark: Nanos,
}

pub fn start(source: Source, config: Config) -> Running {
    let shards = config.shards.max(1);
    let progress = Arc::new(Progress::new(shards, config.sample_percent));
    let (out_tx, out_rx) = bounded::<ShardOut>(shards * 4);
    let (done_tx, done_rx) = bounded::<Vec<Exchange>>(config.release_queue);
    let mut shard_txs = Vec::new();
    let mut free_rxs = Vec::new();
    let mut shard_handles = Vec::new();
    for shard in 0..shards {
        let (tx, rx) = bounded::<Batch>(config.shard_queue);
        let (free_tx, free_rx) = bounded::<Batch>(config.shard_queue + 2);
        shard_txs.push(tx);
        free_rxs.push(free_rx);
        let out = out_tx.clone();
        let cfg = config.clone();
        let shard_progress = progress.clone();
        let handle = std::thread::Builder::new()
            .name(format!("shard-{shard}"))
            .spawn(move || run_shard(shard, rx, free_tx, out, cfg, shard_progress))
            .expect("spawn shard");
        shard_handles.push(handle);
    }
    drop(out_tx);
    let reader_progress = progress.clone();
    let reader_cfg = config.clone();
    let reader = std::thread::Builder::new()
        .name("reader".into())
        .spawn(move || {
            let mut reader = Reader::new(shard_txs, free_rxs, reader_cfg, reader_progress);
            let error = reader.run(source);
            reader.flush_all();
            (reader.stats, error)
        })
        .expect("spawn reader");
    let order_progress = progress.clone();
    let order = std::thread::Builder::new()
        .name("order".into())
        .spawn(move || run_order(shards, out_rx, done_tx, config, order_progress))
        .expect("spawn order");
    Running { exchanges: done_rx, progress, reader, shards: shard_handles, order }
}

// ---- shards -------------------------------------------------------------

fn run_shard(
    shard: usize,
    rx: Receiver<Batch>,
    free: Sender<Batch>,
    out: Sender<ShardOut>,
    config: Config,
    progress: Arc<Progress>,
) -> (reassembly::Stats, streams::Stats, http::Stats) {
    let mut ctx = http::Ctx::new(config.http.clone());
    let mut reassembler = Reassembler::<http::Conn>::new(config.limits.clone());
    let stream_limits =
        streams::Limits { max_conns: config.limits.max_flows, idle_timeout_ns: config.limits.idle_timeout_ns };
    let mut streams = Streams::<http::Conn>::new(stream_limits);
    let mut clock = i64::MIN;
    let mut watermark = Nanos::MIN;
    for mut batch in rx {
        for meta in &batch.segs {
            let payload = &batch.data[meta.start as usize..(meta.start + meta.len) as usize];
            let segment = Segment {
                src: meta.src,
                dst: meta.dst,
                seq: meta.seq,
                ack: meta.ack,
                flags: meta.flags,
                ts: meta.ts,
                payload,
            };
            reassembler.segment(&mut ctx, &segment);
            if ctx.out.len() >= MAX_EXCHANGES_PER_MESSAGE {
                // A batch of pipelined requests can make tens of thousands
                // of exchanges: handed on in parts, so that what waits in
                // the channel stays bounded (the watermark moves at the end).
                let exchanges = std::mem::take(&mut ctx.out);
                let _ = out.send(ShardOut { shard, exchanges, watermark });
            }
        }
        for chunk in &batch.chunks {
            let bytes = &batch.data[chunk.start as usize..(chunk.start + chunk.len) as usize];
            streams.event(&mut ctx, chunk.conn, chunk.ts, stream_event(chunk.kind, bytes), || {
                let unknown = crate::ebpf::Endpoint::Unix(String::new());
                crate::ebpf::stand_in_addresses(chunk.conn, &unknown, &unknown)
            });
        }
        clock = clock.max(batch.clock);
        reassembler.expire_idle(&mut ctx, clock);
        streams.expire_idle(&mut ctx, clock);
        batch.segs.clear();
        batch.chunks.clear();
        batch.data.clear();
        let _ = free.try_send(batch);
        let active = reassembler.active_flows() + streams.active();
        progress.active_flows[shard].store(active as u64, Ordering::Relaxed);
        progress.buffered_bytes[shard].store(reassembler.buffered_bytes() as u64, Ordering::Relaxed);
        progress.flows_refused[shard].store(reassembler.stats.flows_refused, Ordering::Relaxed);
        let bound_dropped = reassembler.stats.bound_dropped_bytes + ctx.stats.reading_cut_bytes;
        progress.bound_dropped_bytes[shard].store(bound_dropped, Ordering::Relaxed);
        progress.waiting_requests[shard].store(ctx.pending.parked() as u64, Ordering::Relaxed);
        progress.sent_out_unanswered[shard].store(ctx.stats.sent_out_unanswered, Ordering::Relaxed);
        watermark = watermark.max(ctx.pending.oldest().map_or(clock, |oldest| oldest.min(clock)));
        let exchanges = std::mem::take(&mut ctx.out);
        let _ = out.send(ShardOut { shard, exchanges, watermark });
    }
    reassembler.close_all(&mut ctx);
    reassembler.update_gauges();
    streams.close_all(&mut ctx, clock);
    let exchanges = std::mem::take(&mut ctx.out);
    let _ = out.send(ShardOut { shard, exchanges, watermark: Nanos::MAX });
    (reassembler.stats, streams.stats, ctx.stats)
}

/// Exchanges a shard hands on in one message at most (but for one segment's).
const MAX_EXCHANGES_PER_MESSAGE: usize = 4096;

fn stream_event(kind: ChunkKind, bytes: &[u8]) -> StreamEvent<'_> {
    match kind {
        ChunkKind::Open { client, server } => StreamEvent::Open { client, server },
        ChunkKind::Data { toward, off } => StreamEvent::Data { toward, off, bytes },
        ChunkKind::Skip { toward, off, len } => StreamEvent::Skip { toward, off, len },
        ChunkKind::Close { to_server, to_client } => StreamEvent::Close { to_server, to_client },
    }
}
