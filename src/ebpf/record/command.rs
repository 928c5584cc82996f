//! `shadowtap record`: the eBPF source alone, written to a pcapng (no
//! pipeline, no candidate). In: what to watch, the output path, an
//! optional duration. Out: the file, and a [`Summary`] once SIGINT or
//! SIGTERM came or the duration passed.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{RecordError, RecordStats, Recorder};
use crate::ebpf::{EbpfCapture, EbpfConfig, EbpfError};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Ebpf(#[from] EbpfError),
    #[error("cannot watch for SIGINT and SIGTERM: {0}")]
    Signals(std::io::Error),
}

/// What a recording did, for its one summary line.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub recorded: RecordStats,
    pub ring_buffer_drops: u64,
    pub chunks_cut: u64,
    /// Ring-buffer records with no event's layout.
    pub malformed: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.recorded;
        write!(
            f,
            "recorded {} connections, {} events, {} bytes ({} packets); ring buffer drops {}, chunks cut {}, \
             connections evicted {}, write errors {}, malformed records {}",
            r.connections,
            r.events,
            r.bytes,
            r.packets,
            self.ring_buffer_drops,
            self.chunks_cut,
            r.evicted,
            r.write_errors,
            self.malformed
        )
    }
}

/// Records until SIGINT/SIGTERM or until `duration` has passed.
pub fn record(
    config: &EbpfConfig,
    ports: &[u16],
    max_conns: usize,
    out: &Path,
    duration: Option<Duration>,
) -> Result<Summary, CommandError> {
    let stop = Arc::new(AtomicBool::new(false));
    // Before the capture opens: from then on a signal stops, never kills.
    stop_on_signals(stop.clone()).map_err(CommandError::Signals)?;
    config.check().map_err(EbpfError::Target)?;
    // Created first: a path that cannot be written fails before attaching.
    let recorder = RefCell::new(Recorder::create(out, max_conns)?);
    let capture = EbpfCapture::open(config, ports, 100.0, stop.clone())?;
    tracing::info!(out = %out.display(), "recording");
    let deadline = duration.map(|d| Instant::now() + d);
    let mut malformed = 0;
    let mut last_flush = Instant::now();
    capture.run(
        |event| match event {
            Ok(event) => recorder.borrow_mut().record(&event, capture.unix_ns(event.ts())),
            Err(crate::ebpf::Malformed) => malformed += 1,
        },
        |_now| {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                stop.store(true, Ordering::Relaxed);
            }
            // What was seen reaches the file within a second.
            if last_flush.elapsed() >= Duration::from_secs(1) {
                recorder.borrow_mut().flush();
                last_flush = Instant::now();
            }
        },
    )?;
    let counters = &capture.counters;
    Ok(Summary {
        recorded: recorder.into_inner().finish(),
        ring_buffer_drops: counters.ring_buffer_drops.load(Ordering::Relaxed),
        chunks_cut: counters.chunks_cut.load(Ordering::Relaxed),
        malformed,
    })
}

/// Sets `stop` at the first SIGINT or SIGTERM (a thread of its own).
fn stop_on_signals(stop: Arc<AtomicBool>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (mut interrupt, mut terminate) = {
        let _entered = runtime.enter();
        (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?)
    };
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        });
        stop.store(true, Ordering::Relaxed);
    })?;
    Ok(())
}
