//! `shadowtap run`: the live tap daemon. Capture on an interface, the same
//! pipeline and replay as `replay`, plus what a service on a legacy host
//! needs: outputs that survive logrotate, a periodic report, Prometheus
//! metrics, signals (TERM/INT drain and exit, HUP reload; `tokio::signal`, one
//! shutdown signal every task watches, tasks in a `JoinSet`), and systemd
//! readiness and watchdog. Capture never waits: a replay that falls behind
//! loses exchanges at a bounded queue, counted.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::capture::LiveCounters;
use crate::exchange::Exchange;
use crate::metrics::Metrics;
use crate::pipeline::{self, Progress, Source};
use crate::replay::Current;
use crate::replay::config::Config;
use crate::report::{Report, ReportOptions};
use crate::topology::build::{self, capture_filter};
use crate::topology::dispatch::{self, Replayed};
use crate::topology::{Consumer, Flags, OutcomeSink, SourceChoice};

mod health;
mod kept;
mod loop_guard;
mod outcomes;
mod setup;
mod test_hooks;

use outcomes::OutcomeWriter;
pub use setup::{DEFAULT_CONFIG, load_config};

/// The command line of `run`: see [`crate::topology::flags`].
pub type Overrides = Flags;

/// What the daemon's tasks share.
struct Shared {
    metrics: Metrics,
    report: Mutex<Report>,
    options: Mutex<ReportOptions>,
    current: Arc<Current>,
    report_path: Mutex<Option<PathBuf>>,
    /// The replay queue, measured at each scrape. (The feeder used to store
    /// its depth after each batch, so the gauge stayed at the last burst's
    /// size forever once traffic stopped.) Weak: it must not keep the queue
    /// open at shutdown.
    queue: mpsc::WeakSender<Vec<Exchange>>,
    queue_drops: AtomicU64,
    progress: Arc<Progress>,
    live: Arc<LiveCounters>,
    /// Counters of the eBPF source, when it is the source.
    ebpf: Option<Arc<crate::ebpf::EbpfCounters>>,
    /// What `/healthz` and the watchdog go by.
    health: Arc<health::Health>,
    /// The evidence kept across restarts (`crate::state`).
    kept: kept::Kept,
}

impl Shared {
    fn refresh_metrics(&self) {
        self.metrics.refresh(
            &self.progress,
            &self.live,
            self.queue.upgrade().map_or(0, |tx| (tx.max_capacity() - tx.capacity()) as i64),
            self.queue_drops.load(Ordering::Relaxed),
        );
        self.metrics.refresh_losses(self.current.loops(), self.health.lines_lost());
        if let Some(ebpf) = &self.ebpf {
            self.metrics.refresh_ebpf(ebpf, &self.progress);
        }
        let criteria = crate::report::Criteria::of(&self.options.lock().unwrap_or_else(|e| e.into_inner()));
        let report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        let figures = report.figures(&criteria.verdict, crate::metrics::evidence::FIELDS_EXPORTED);
        self.metrics.refresh_evidence_figures(&self.kept.since_start(figures), &criteria);
        let mut evicted = report.evicted();
        crate::bounded::add_evicted(&mut evicted, &self.current.get().evicted());
        self.metrics.refresh_evictions(&evicted);
    }

    /// Writes the report file and the kept state (each when there is one).
    fn write_report(&self) {
        let path = self.report_path.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if path.is_none() && !self.kept.keeps() {
            return;
        }
        let json = self.report_json();
        if let Some(path) = path
            && let Err(e) = write_atomically(&path, &serde_json::to_vec_pretty(&json).unwrap_or_default())
        {
            tracing::error!(path = %path.display(), "cannot write report: {e}");
        }
        if let Err(e) = self.kept.save(&json, &self.report, &self.current.get()) {
            tracing::error!("cannot keep the state: {e}");
        }
    }

    /// The report as it stands (for the report file and `/report`).
    fn report_json(&self) -> crate::report::ReportJson {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        // Live counters restart at zero; the report goes on from what was kept.
        let carried = &self.kept.carried;
        report.replay_queue_drops = carried.queue_drops + self.queue_drops.load(Ordering::Relaxed);
        report.replay_loops = carried.loops + self.current.loops();
        report.load.kernel_drops = carried.kernel_drops + self.live.kernel_dropped.load(Ordering::Relaxed);
        report.load.packets = carried.packets + self.progress.packets.load(Ordering::Relaxed);
        report.load.sample_percent = Some(self.progress.sample_basis_points.load(Ordering::Relaxed) as f64 / 100.0);
        let mut options = self.options.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let replayer = self.current.get();
        options.noise = replayer.noise.snapshot();
        options.evicted = replayer.evicted();
        crate::bounded::add_evicted(&mut options.evicted, &carried.evicted);
        let mut json = report.to_json(&options);
        self.kept.finish(&mut json);
        json
    }
}

/// Writes beside the target and renames, so readers never see half a report.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn open_out(path: &Option<PathBuf>) -> std::io::Result<OutcomeSink> {
    match path {
        Some(p) if p.as_os_str() != "-" => {
            // Unbuffered: the writer thread batches, and must know which
            // lines a failed write lost.
            Ok(Box::new(std::fs::OpenOptions::new().create(true).append(true).open(p)?))
        }
        _ => Ok(Box::new(std::io::stdout())),
    }
}

/// Runs the daemon until SIGTERM or SIGINT (or until one of its tasks
/// panics: an error).
pub fn run(flags: Flags) -> anyhow::Result<()> {
    let config = load_config(&flags)?;
    let filter = capture_filter(&config);
    let interface = config.capture.interface.clone().unwrap_or_default();
    // The capture thread's stop (libpcap polls on a thread of its own).
    let stop = Arc::new(AtomicBool::new(false));
    let replayer = build::replayer(&config)?;
    let (kept, report) = kept::Kept::open(&config, flags.fresh, &replayer)?;
    let out = open_out(&config.output.out).with_context(|| format!("opening {:?}", config.output.out))?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().thread_name("replay").build()?;
    // Before the capture opens: from then on TERM drains, never kills.
    let signals = {
        let _runtime = runtime.enter();
        Signals::listen()?
    };
    let source_choice = SourceChoice::live(&config);
    let pipeline_config = build::pipeline_config(&config, &source_choice, Consumer::Dispatch, None);
    let source = source_choice.open(&config, stop.clone())?;
    let (live_counters, ebpf_counters) = match &source {
        Source::Live(live) => (live.counters.clone(), None),
        Source::Ebpf(ebpf) => (Arc::default(), Some(ebpf.counters.clone())),
        Source::Files(_) => (Arc::default(), None),
    };
    match &source {
        Source::Ebpf(_) => {
            tracing::info!(source = "ebpf", candidate = config.candidate.url.as_deref().unwrap_or(""), "capturing")
        }
        _ => {
            tracing::info!(%interface, %filter, candidate = config.candidate.url.as_deref().unwrap_or(""), "capturing")
        }
    }
    let running = pipeline::start(source, pipeline_config);
    let current = Arc::new(Current::new(replayer));
    let (tx, rx) = mpsc::channel::<Vec<Exchange>>(config.daemon.queue.max(1));
    let shared = Arc::new(Shared {
        metrics: if ebpf_counters.is_some() { Metrics::new().with_ebpf() } else { Metrics::new() },
        report: Mutex::new(report),
        options: Mutex::new(build::report_options(&config)),
        current: current.clone(),
        report_path: Mutex::new(config.output.report.clone()),
        queue: tx.downgrade(),
        queue_drops: AtomicU64::new(0),
        progress: running.progress.clone(),
        live: live_counters,
        ebpf: ebpf_counters,
        health: Arc::default(),
        kept,
    });
    // At once: the restart is counted, and an unwritable state directory
    // is an error now rather than evidence lost later.
    shared.kept.save(&shared.report_json(), &shared.report, &shared.current.get())?;
    let writer = OutcomeWriter::start(out, config.output.out.clone(), shared.health.clone())?;
    let feeder = spawn_feeder(running.exchanges.clone(), tx, shared.clone())?;
    let served = runtime.block_on(serve(&flags, &config, shared.clone(), rx, &writer, signals, &stop));
    // Also on an error: the capture stops, the pipeline drains, and what
    // was replayed is reported.
    stop.store(true, Ordering::Relaxed);
    shared.write_report();
    drop(runtime);
    writer.finish();
    let _ = feeder.join();
    let (summary, error) = running.finish();
    tracing::info!(
        packets = summary.capture.packets,
        exchanges = summary.http.exchanges,
        queue_drops = shared.queue_drops.load(Ordering::Relaxed),
        "stopped"
    );
    served?;
    if let Some(error) = error {
        bail!(error);
    }
    let lost = shared.health.lines_lost();
    if lost > 0 {
        bail!("{lost} outcome lines could not be written to {:?} (see the log)", config.output.out);
    }
    Ok(())
}

/// The daemon's tasks, in one `JoinSet`, until TERM or INT (HUP reloads):
/// then the capture stops, and the pipeline, the dispatcher and the
/// collector drain (at most `[daemon] drain_timeout_s`) before the
/// periodic tasks are told to stop and every task is awaited. A task that
/// panics is noticed: logged, and the daemon stops with an error.
async fn serve(
    flags: &Flags,
    config: &Config,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Vec<Exchange>>,
    writer: &OutcomeWriter,
    mut signals: Signals,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let (shutdown_tx, shutdown) = watch::channel(false);
    let (reload_tx, reload_rx) = mpsc::channel::<()>(1);
    let mut tasks = JoinSet::new();
    if let Some(listen) = &config.metrics.listen {
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("metrics on {listen}"))?;
        tasks.spawn(serve_metrics(listener, shared.clone(), shutdown.clone()));
    }
    let (out_tx, out_rx) = mpsc::channel::<Replayed>(1024);
    let dispatcher = dispatch::run(shared.current.clone(), rx, out_tx, build::schedule(config, 0));
    let dispatcher = tasks.spawn(test_hooks::dispatcher(dispatcher, shared.progress.clone())).id();
    let collector =
        Some(tasks.spawn(outcomes::collect(out_rx, shared.clone(), shared.current.clone(), writer.sender())).id());
    let interval = Duration::from_secs(config.output.report_interval_s.max(1));
    tasks.spawn(report_every(interval, shared.clone(), shutdown.clone()));
    tasks.spawn(reload_on_hup(flags.clone(), config.clone(), shared.clone(), reload_rx, shutdown.clone()));
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    if let Some(period) = sd_notify::watchdog_enabled() {
        tasks.spawn(watchdog(period, shared.clone(), shutdown.clone()));
    }
    let mut ended = Ended { collector, dispatcher: Some(dispatcher), ..Default::default() };
    loop {
        tokio::select! {
            _ = signals.terminate.recv() => break,
            _ = signals.interrupt.recv() => break,
            _ = signals.hangup.recv() => {
                writer.reopen.store(true, Ordering::Relaxed);
                // A reload already waiting covers this one too.
                let _ = reload_tx.try_send(());
            }
            Some(task) = tasks.join_next_with_id() => {
                let panicked = ended.note(task);
                if let Some(why) = ended.dispatcher_gone.take() {
                    // Replay stopped while the daemon runs: /healthz and
                    // the watchdog say so (systemd restarts it).
                    tracing::error!("{why}");
                    shared.health.dispatcher_ended(why);
                }
                if panicked {
                    break;
                }
            }
        }
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    tracing::info!("stopping: draining the pipeline and replays");
    stop.store(true, Ordering::Relaxed);
    let drain = Duration::from_secs(config.daemon.drain_timeout_s);
    let drained = tokio::time::timeout(drain, async {
        while !ended.collected {
            let Some(task) = tasks.join_next_with_id().await else { break };
            ended.note(task);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(seconds = drain.as_secs(), "drain timed out; exiting with replays still in flight");
        tasks.abort_all();
    }
    let _ = shutdown_tx.send(true);
    while let Some(task) = tasks.join_next_with_id().await {
        ended.note(task);
    }
    match ended.panicked {
        Some(what) => bail!("a daemon task panicked: {what}"),
        None => shared.health.dispatcher_problem().map_or(Ok(()), |why| bail!(why)),
    }
}

/// The signals the daemon acts on (`tokio::signal`: no thread of its own).
struct Signals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
}

impl Signals {
    /// Starts listening (inside the runtime): from now on these signals
    /// are delivered here instead of ending the process.
    fn listen() -> std::io::Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }
}

/// What the daemon's finished tasks said.
#[derive(Default)]
struct Ended {
    collector: Option<tokio::task::Id>,
    /// The collector is done: every outcome was written.
    collected: bool,
    /// The first panic, if a task panicked (logged as it is noticed).
    panicked: Option<String>,
    dispatcher: Option<tokio::task::Id>,
    /// Why the replay dispatcher ended, once it did (taken by the caller).
    dispatcher_gone: Option<String>,
}

impl Ended {
    /// Notes a finished task; true when it panicked.
    fn note(&mut self, task: Result<(tokio::task::Id, ()), tokio::task::JoinError>) -> bool {
        let id = task.as_ref().map_or_else(|e| e.id(), |(id, _)| *id);
        self.collected |= Some(id) == self.collector;
        if Some(id) == self.dispatcher {
            self.dispatcher_gone = Some(match &task {
                Err(e) if e.is_panic() => format!("the replay dispatcher panicked: {e}"),
                _ => "the replay dispatcher ended: exchanges are no longer replayed (dropped, counted)".into(),
            });
        }
        let Err(error) = task else { return false };
        if !error.is_panic() {
            return false;
        }
        tracing::error!("a daemon task panicked: {error}");
        self.panicked.get_or_insert(error.to_string());
        true
    }
}

/// Hands exchanges from the pipeline to replay; a full queue drops and counts.
fn spawn_feeder(
    exchanges: crossbeam_channel::Receiver<Vec<Exchange>>,
    tx: mpsc::Sender<Vec<Exchange>>,
    shared: Arc<Shared>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("replay-feed".into()).spawn(move || {
        for batch in exchanges.iter() {
            for exchange in batch {
                note_if_late(&exchange, &shared);
                // One exchange per slot: the queue bound and the drop count
                // are in exchanges.
                match tx.try_send(vec![exchange]) {
                    Ok(()) => {}
                    // Full: replay fell behind. Closed: the dispatcher is
                    // gone (/healthz says so). Either way lost, counted.
                    Err(
                        mpsc::error::TrySendError::Full(mut dropped) | mpsc::error::TrySendError::Closed(mut dropped),
                    ) => {
                        shared.queue_drops.fetch_add(1, Ordering::Relaxed);
                        // Thin evidence behind its endpoint: the report says so.
                        if let Some(exchange) = dropped.pop() {
                            let endpoint = shared.current.get().endpoint(&exchange);
                            shared.report.lock().unwrap_or_else(|e| e.into_inner()).add_queue_drop(&endpoint);
                        }
                    }
                }
            }
        }
    })
}

/// An exchange the pipeline delivered more than `[verdict] late_start_ms`
/// after production answered it (the daemon's own lag: capture buffering,
/// CPU) is counted late against its endpoint. Time waiting in the replay
/// queue is not: that is waiting for the candidate (its full queue drops,
/// counted apart).
fn note_if_late(exchange: &Exchange, shared: &Shared) {
    let replayer = shared.current.get();
    let late_after = replayer.config().verdict.late_start_ms as i64 * 1_000_000;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
    let due = exchange.response.as_ref().map_or(exchange.request.ts, |r| r.ts);
    if now - due > late_after && replayer.will_replay(exchange) {
        let endpoint = replayer.endpoint(exchange);
        shared.report.lock().unwrap_or_else(|e| e.into_inner()).load.add_late(&endpoint);
    }
}

/// Writes the report every `interval` (on a blocking thread: file writes
/// stay off the async workers) until shutdown.
async fn report_every(interval: Duration, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let shared = shared.clone();
        let _ = tokio::task::spawn_blocking(move || shared.write_report()).await;
    }
}

/// On SIGHUP: reload the configuration. A new candidate, rules and sampling
/// take effect for new exchanges; flows in progress are kept. An invalid
/// file is refused and the old configuration stays. Reading the file,
/// building the client (CA file) and the filter (DNS) block: they run on
/// a blocking thread.
async fn reload_on_hup(
    flags: Flags,
    mut active: Config,
    shared: Arc<Shared>,
    mut reloads: mpsc::Receiver<()>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            Some(()) = reloads.recv() => {}
            _ = shutdown.changed() => return,
        }
        let (flags, previous) = (flags.clone(), active.clone());
        let reloaded = tokio::task::spawn_blocking(move || {
            let config = load_config(&flags)?;
            let replayer = build::replayer(&config)?;
            let refilter = config.capture.interface != previous.capture.interface
                || capture_filter(&config) != capture_filter(&previous);
            Ok::<_, anyhow::Error>((config, replayer, refilter))
        })
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("reload failed: {e}")));
        match reloaded {
            Err(e) => tracing::error!("reload refused, keeping the running configuration: {e:#}"),
            Ok((config, replayer, refilter)) => {
                if refilter {
                    tracing::warn!("interface and capture filter changes need a restart; the rest is reloaded");
                }
                shared.current.set(replayer);
                shared.progress.set_sample_percent(config.capture.sample_percent);
                *shared.options.lock().unwrap_or_else(|e| e.into_inner()) = build::report_options(&config);
                *shared.report_path.lock().unwrap_or_else(|e| e.into_inner()) = config.output.report.clone();
                tracing::info!(
                    candidate = config.candidate.url.as_deref().unwrap_or(""),
                    sample = config.capture.sample_percent,
                    "configuration reloaded"
                );
                active = config;
            }
        }
    }
}

/// Tells systemd's watchdog we are alive, twice per period, until
/// shutdown, and only while replay works (`Health::watchdog_ok`): a daemon
/// whose dispatcher is gone is restarted by systemd.
async fn watchdog(period: Duration, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(period / 2);
    loop {
        tokio::select! {
            _ = ticker.tick() => if shared.health.watchdog_ok() {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Connections the metrics listener keeps open; a new one past this
/// closes the oldest, so idle or slow clients cannot lock out a scrape.
const METRICS_MAX_CONNECTIONS: usize = 64;
/// A metrics connection that sends no complete request head for this long
/// (new, or idle between keep-alive requests) is closed.
const METRICS_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `/metrics` and `/healthz` until shutdown; its connections are
/// tasks of its own set, dropped (cancelled) with it, at most
/// [`METRICS_MAX_CONNECTIONS`], each closed after
/// [`METRICS_IDLE_TIMEOUT`] without a request.
async fn serve_metrics(listener: tokio::net::TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    use http_body_util::Full;
    let mut connections = JoinSet::new();
    // Oldest first.
    let mut open: std::collections::VecDeque<tokio::task::AbortHandle> = std::collections::VecDeque::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => return,
            },
            // Finished connections are reaped as they end.
            Some(_) = connections.join_next() => {
                open.retain(|c| !c.is_finished());
                continue;
            }
            _ = shutdown.changed() => return,
        };
        open.retain(|c| !c.is_finished());
        if open.len() >= METRICS_MAX_CONNECTIONS
            && let Some(oldest) = open.pop_front()
        {
            oldest.abort();
        }
        let shared = shared.clone();
        let handle = connections.spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let shared = shared.clone();
                async move {
                    let (status, body, content_type) = match req.uri().path() {
                        "/metrics" => {
                            shared.refresh_metrics();
                            (200, shared.metrics.render(), "application/openmetrics-text; version=1.0.0; charset=utf-8")
                        }
                        "/healthz" => match shared.health.problem() {
                            None => (200, "ok\n".to_string(), "text/plain"),
                            Some(why) => (503, format!("unhealthy: {why}\n"), "text/plain"),
                        },
                        "/report" => {
                            let evidence = crate::html::examples::Evidence::default();
                            let page = crate::html::render(&shared.report_json(), &evidence, "shadowtap live report");
                            (200, page, "text/html; charset=utf-8")
                        }
                        _ => (404, "not found\n".to_string(), "text/plain"),
                    };
                    let mut response = hyper::Response::new(Full::new(bytes::Bytes::from(body)));
                    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
                    response
                        .headers_mut()
                        .insert("content-type", hyper::header::HeaderValue::from_static(content_type));
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(METRICS_IDLE_TIMEOUT)
                .serve_connection(io, service)
                .await;
        });
        open.push_back(handle);
    }
}
