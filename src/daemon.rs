//! `shadowtap run`: the live tap daemon. Capture on an interface, the same
//! pipeline and replay as `replay`, plus what a service on a legacy host
//! needs: outputs that survive logrotate, a periodic report, Prometheus
//! metrics, signals (TERM/INT drain and exit, HUP reload), and systemd
//! readiness and watchdog. Capture never waits: a replay that falls behind
//! loses exchanges at a bounded queue, counted.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::mpsc;

use crate::capture::{LiveCapture, LiveCounters, LiveOptions};
use crate::exchange::Exchange;
use crate::metrics::Metrics;
use crate::pipeline::{self, Progress, Source};
use crate::replay::config::Config;
use crate::replay::naming::Settling;
use crate::replay::triage::Holdback;
use crate::replay::{Current, Outcome, Replayed};
use crate::report::{Report, ReportOptions};

mod setup;

pub use setup::{DEFAULT_CONFIG, Overrides, capture_filter, load_config};
use setup::{margin_of, replayer_of, schedule_of};

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
    reload: AtomicBool,
    reopen: AtomicBool,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
    live: Arc<LiveCounters>,
}

impl Shared {
    fn refresh_metrics(&self) {
        self.metrics.refresh(
            &self.progress,
            &self.live,
            self.queue.upgrade().map_or(0, |tx| (tx.max_capacity() - tx.capacity()) as i64),
            self.queue_drops.load(Ordering::Relaxed),
        );
    }

    fn write_report(&self) {
        let Some(path) = self.report_path.lock().unwrap_or_else(|e| e.into_inner()).clone() else { return };
        let json = self.report_json();
        if let Err(e) = write_atomically(&path, &serde_json::to_vec_pretty(&json).unwrap_or_default()) {
            tracing::error!(path = %path.display(), "cannot write report: {e}");
        }
    }

    /// The report as it stands (for the report file and `/report`).
    fn report_json(&self) -> crate::report::ReportJson {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        report.replay_queue_drops = self.queue_drops.load(Ordering::Relaxed);
        report.load.kernel_drops = self.live.kernel_dropped.load(Ordering::Relaxed);
        report.load.packets = self.progress.packets.load(Ordering::Relaxed);
        report.load.sample_percent = Some(self.progress.sample_basis_points.load(Ordering::Relaxed) as f64 / 100.0);
        let mut options = self.options.lock().unwrap_or_else(|e| e.into_inner()).clone();
        options.noise = self.current.get().noise.snapshot();
        report.to_json(&options)
    }
}

/// Writes beside the target and renames, so readers never see half a report.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn open_out(path: &Option<PathBuf>) -> std::io::Result<Box<dyn Write + Send>> {
    match path {
        Some(p) if p.as_os_str() != "-" => {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(p)?;
            Ok(Box::new(std::io::BufWriter::new(file)))
        }
        _ => Ok(Box::new(std::io::BufWriter::new(std::io::stdout()))),
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(overrides: Overrides) -> anyhow::Result<()> {
    let config = load_config(&overrides)?;
    let filter = capture_filter(&config);
    let interface = config.capture.interface.clone().unwrap_or_default();
    let stop = Arc::new(AtomicBool::new(false));
    let options = LiveOptions {
        interface: interface.clone(),
        filter: filter.clone(),
        snaplen: config.capture.snaplen,
        buffer_bytes: config.capture.buffer_mb.saturating_mul(1 << 20),
        promiscuous: config.capture.promiscuous,
    };
    let replayer = replayer_of(&config)?;
    let mut out = open_out(&config.output.out).with_context(|| format!("opening {:?}", config.output.out))?;
    let live = LiveCapture::open(&options, stop.clone())?;
    let live_counters = live.counters.clone();
    tracing::info!(%interface, %filter, candidate = config.candidate.url.as_deref().unwrap_or(""), "capturing");
    let mut pipeline_config = pipeline::Config { ordered: false, block_when_full: false, ..Default::default() };
    pipeline_config.http.ports = config.capture.ports.clone();
    pipeline_config.http.body_limit = config.capture.body_limit;
    pipeline_config.sample_percent = config.capture.sample_percent;
    let shards = pipeline_config.shards.max(1);
    pipeline_config.limits = crate::reassembly::Limits {
        per_flow_ooo_bytes: config.capture.max_flow_buffer_kb << 10,
        shard_ooo_bytes: (config.capture.max_buffer_mb << 20) / shards,
        max_flows: (config.capture.max_flows / shards).max(1),
        idle_timeout_ns: config.capture.idle_timeout_s as i64 * 1_000_000_000,
        reorder_window_ns: config.capture.reorder_window_ms as i64 * 1_000_000,
    };
    let running = pipeline::start(Source::Live(live), pipeline_config);
    let current = Arc::new(Current::new(replayer));
    let (tx, rx) = mpsc::channel::<Vec<Exchange>>(config.daemon.queue.max(1));
    let shared = Arc::new(Shared {
        metrics: Metrics::new(),
        report: Mutex::new(Report::default()),
        options: Mutex::new(ReportOptions::new(margin_of(&config), config.verdict.clone())),
        current: current.clone(),
        report_path: Mutex::new(config.output.report.clone()),
        queue: tx.downgrade(),
        queue_drops: AtomicU64::new(0),
        reload: AtomicBool::new(false),
        reopen: AtomicBool::new(false),
        stop: stop.clone(),
        progress: running.progress.clone(),
        live: live_counters,
    });
    spawn_signal_thread(shared.clone())?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().thread_name("replay").build()?;
    let feeder = spawn_feeder(running.exchanges.clone(), tx, shared.clone())?;
    let drain = Duration::from_secs(config.daemon.drain_timeout_s);
    runtime.block_on(async {
        if let Some(listen) = &config.metrics.listen {
            let listener =
                tokio::net::TcpListener::bind(listen).await.with_context(|| format!("metrics on {listen}"))?;
            tokio::spawn(serve_metrics(listener, shared.clone()));
        }
        let (out_tx, out_rx) = mpsc::channel::<Replayed>(1024);
        tokio::spawn(crate::replay::run(current.clone(), rx, out_tx, schedule_of(&config)));
        let collector = tokio::spawn(collect(
            out_rx,
            shared.clone(),
            current.clone(),
            std::mem::replace(&mut out, Box::new(std::io::sink())),
            config.output.out.clone(),
        ));
        tokio::spawn(report_every(Duration::from_secs(config.output.report_interval_s.max(1)), shared.clone()));
        tokio::spawn(reload_on_hup(overrides.clone(), config.clone(), current.clone(), shared.clone()));
        notify_ready_and_watch(shared.clone());
        while !shared.stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        tracing::info!("stopping: draining the pipeline and replays");
        if tokio::time::timeout(drain, collector).await.is_err() {
            tracing::warn!(seconds = drain.as_secs(), "drain timed out; exiting with replays still in flight");
        }
        Ok::<_, anyhow::Error>(())
    })?;
    shared.write_report();
    drop(runtime);
    let _ = feeder.join();
    let (summary, error) = running.finish();
    tracing::info!(
        packets = summary.capture.packets,
        exchanges = summary.http.exchanges,
        queue_drops = shared.queue_drops.load(Ordering::Relaxed),
        "stopped"
    );
    if let Some(error) = error {
        bail!(error);
    }
    Ok(())
}

fn spawn_signal_thread(shared: Arc<Shared>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for signal in signals.forever() {
            if signal == SIGHUP {
                shared.reload.store(true, Ordering::Relaxed);
                shared.reopen.store(true, Ordering::Relaxed);
            } else {
                shared.stop.store(true, Ordering::Relaxed);
                break;
            }
        }
    })?;
    Ok(())
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
                    Err(mpsc::error::TrySendError::Full(mut dropped)) => {
                        shared.queue_drops.fetch_add(1, Ordering::Relaxed);
                        // Thin evidence behind its endpoint: the report says so.
                        if let Some(exchange) = dropped.pop() {
                            let endpoint = shared.current.get().endpoint(&exchange);
                            shared.report.lock().unwrap_or_else(|e| e.into_inner()).add_queue_drop(&endpoint);
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
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

/// Writes outcomes line by line (flushed whenever the queue is empty),
/// folds them into the report and metrics, and reopens the file on SIGHUP.
async fn collect(
    mut rx: mpsc::Receiver<Replayed>,
    shared: Arc<Shared>,
    current: Arc<Current>,
    mut out: Box<dyn Write + Send>,
    path: Option<PathBuf>,
) {
    // Diffs of endpoints whose noise is not known yet wait here (bounded,
    // at most [noise] warmup_max_s), then are judged again.
    let mut hold = Holdback::default();
    // Outcomes wait here first, until endpoint names are learned.
    let mut settling = Settling::default();
    let mut names_seen = current.get().names.generation();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let replayer = current.get();
        let ready = tokio::select! {
            received = rx.recv() => match received {
                Some((outcome, sample)) => {
                    // The load is known now, under the name the outcome has
                    // now (the report renames it with the endpoint once
                    // names settle); the outcome may be held back.
                    if let Some(sample) = sample {
                        shared.report.lock().unwrap_or_else(|e| e.into_inner()).load.add(&outcome.endpoint, &sample);
                    }
                    named_then_judged(settling.offer(outcome, &replayer), &mut hold, &replayer)
                }
                None => break,
            },
            _ = tick.tick() => {
                rename_report_endpoints(&shared, &replayer, &mut names_seen);
                let mut ready = named_then_judged(settling.tick(&replayer), &mut hold, &replayer);
                ready.extend(hold.expired(&replayer));
                ready
            }
        };
        for outcome in ready {
            emit(&outcome, &shared, &mut out, &path);
        }
        if rx.is_empty() {
            let _ = out.flush();
        }
    }
    let replayer = current.get();
    replayer.names.settle_now();
    let settled = named_then_judged(settling.drain(&replayer), &mut hold, &replayer);
    for outcome in settled.iter().chain(&hold.drain(&replayer)) {
        emit(outcome, &shared, &mut out, &path);
    }
    rename_report_endpoints(&shared, &replayer, &mut names_seen);
    let _ = out.flush();
}

/// Outcomes out of the naming hold (final names) go through the noise
/// warm-up hold, which counts samples per final endpoint.
fn named_then_judged(named: Vec<Outcome>, hold: &mut Holdback, replayer: &crate::replay::Replayer) -> Vec<Outcome> {
    named.into_iter().flat_map(|o| hold.offer(o, replayer)).collect()
}

/// Learning made names more general: the report's endpoints follow.
fn rename_report_endpoints(shared: &Shared, replayer: &crate::replay::Replayer, seen: &mut u64) {
    let generation = replayer.names.generation();
    if generation != *seen && replayer.names.is_settled() {
        *seen = generation;
        let mut report = shared.report.lock().unwrap_or_else(|e| e.into_inner());
        report.rename(|name| replayer.names.rename(name, replayer.templates()));
    }
}

/// One outcome to the metrics, the report and the --out file.
fn emit(outcome: &Outcome, shared: &Shared, out: &mut Box<dyn Write + Send>, path: &Option<PathBuf>) {
    if shared.reopen.swap(false, Ordering::Relaxed) {
        let _ = out.flush();
        match open_out(path) {
            Ok(reopened) => *out = reopened,
            Err(e) => tracing::error!("cannot reopen {:?}: {e}", path),
        }
    }
    shared.metrics.observe(outcome);
    shared.report.lock().unwrap_or_else(|e| e.into_inner()).add(outcome);
    let line = serde_json::to_vec(outcome).unwrap_or_default();
    if out.write_all(&line).and_then(|_| out.write_all(b"\n")).is_err() {
        tracing::error!("cannot write outcome");
    }
}

async fn report_every(interval: Duration, shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        shared.write_report();
    }
}

/// On SIGHUP: reload the configuration. A new candidate, rules and sampling
/// take effect for new exchanges; flows in progress are kept. An invalid
/// file is refused and the old configuration stays.
async fn reload_on_hup(overrides: Overrides, mut active: Config, current: Arc<Current>, shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !shared.reload.swap(false, Ordering::Relaxed) {
            continue;
        }
        let reloaded = load_config(&overrides).and_then(|c| replayer_of(&c).map(|r| (c, r)));
        match reloaded {
            Err(e) => tracing::error!("reload refused, keeping the running configuration: {e:#}"),
            Ok((config, replayer)) => {
                if config.capture.interface != active.capture.interface
                    || capture_filter(&config) != capture_filter(&active)
                {
                    tracing::warn!("interface and capture filter changes need a restart; the rest is reloaded");
                }
                current.set(replayer);
                shared.progress.set_sample_percent(config.capture.sample_percent);
                *shared.options.lock().unwrap_or_else(|e| e.into_inner()) =
                    ReportOptions::new(margin_of(&config), config.verdict.clone());
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

fn notify_ready_and_watch(shared: Arc<Shared>) {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let Some(period) = sd_notify::watchdog_enabled() else { return };
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period / 2);
        while !shared.stop.load(Ordering::Relaxed) {
            ticker.tick().await;
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        }
    });
}

async fn serve_metrics(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    use http_body_util::Full;
    while let Ok((stream, _)) = listener.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let shared = shared.clone();
                async move {
                    let (status, body, content_type) = match req.uri().path() {
                        "/metrics" => {
                            shared.refresh_metrics();
                            (200, shared.metrics.render(), "application/openmetrics-text; version=1.0.0; charset=utf-8")
                        }
                        "/healthz" => (200, "ok\n".to_string(), "text/plain"),
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
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
    }
}
