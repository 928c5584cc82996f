//! The `shadowtap` command: argument parsing and the binary's edges (exit
//! codes, stderr summaries). Everything else lives in the library.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use shadowtap::pipeline::{self, Summary};
use shadowtap::replay::config::Config;
use shadowtap::replay::endpoint::scan;
use shadowtap::topology::build::{self, Consumer, SourceChoice};
use shadowtap::topology::saved::replay_pipeline;
use shadowtap::topology::{Flags, OutcomeSink};

#[derive(Parser)]
#[command(
    name = "shadowtap",
    version,
    about = "Tap-compare from the wire: rebuild HTTP exchanges from captured traffic, replay them to a candidate, diff the answers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every HTTP request/response exchange in captures as JSON Lines.
    Pairs(PairsArgs),
    /// Replay captured requests to a candidate and compare its answers.
    Replay(ReplayArgs),
    /// The live tap daemon: capture on an interface, replay, compare, report.
    Run(RunArgs),
    /// Write what the eBPF source sees to a pcapng (synthesised TCP/IP,
    /// one connection per socket) until SIGINT/SIGTERM or --duration.
    Record(RecordArgs),
    /// Learn endpoint templates from captures; print them as `[[endpoints]]`
    /// configuration with counts and example paths.
    Endpoints(EndpointsArgs),
    /// Print the cutover verdict of a report; exit 0 only when every named
    /// endpoint (all by default) is ready.
    Verdict(VerdictArgs),
    /// Merge reports (several hosts, several runs) into one, judged again.
    Report(ReportArgs),
    /// What the daemon keeps across restarts: show it, or reset it.
    State(StateArgs),
    /// Start a legacy and a candidate service on loopback, capture traffic
    /// to the legacy one, replay it to the candidate and show the report.
    Demo(DemoArgs),
}

#[derive(Args)]
struct ReplayArgs {
    /// pcap or pcapng files (optionally .gz), read in order as one stream.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Base URL of the candidate service (http:// or https://).
    #[arg(long, value_name = "URL")]
    candidate: Option<String>,
    /// TOML configuration (rules, writes, templates, latency margin).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// JSON Lines of outcomes, one per captured exchange (default stdout).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Per-endpoint report as JSON.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Requests in flight to the candidate at most (default: no more than
    /// the recording had in flight at each point; 0 asks for that too).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    concurrency: Option<usize>,
    /// Requests per second at most.
    #[arg(long, value_name = "PER_SEC", allow_negative_numbers = true)]
    rate: Option<f64>,
    /// Replay at the captured pace times FACTOR (default: as fast as allowed).
    #[arg(long, value_name = "FACTOR", allow_negative_numbers = true)]
    pace: Option<f64>,
    /// Replay threads, each with its own connections (default: one per two
    /// cores, at most 4: the rest is left to the capture reading and to a
    /// candidate on the same host).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    lanes: Option<u16>,
    #[command(flatten)]
    triage: TriageArgs,
    #[command(flatten)]
    capture: CaptureArgs,
}

/// What tells real diffs from noise, races and writes; shared by `replay` and `run`.
#[derive(Args, Default)]
struct TriageArgs {
    /// A second legacy instance: where it disagrees with production, it is noise.
    #[arg(long, value_name = "URL")]
    secondary: Option<String>,
    /// The live legacy service (reads only): diffs are re-checked there for races.
    #[arg(long, value_name = "URL")]
    primary: Option<String>,
    /// Replay writes on this endpoint (it writes to the candidate's sister datastores), e.g. "POST /api/comments".
    #[arg(long = "allow-writes", value_name = "TEMPLATE")]
    allow_writes: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    /// TOML configuration (default /etc/shadowtap/shadowtap.toml when it exists).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where traffic is seen: pcap (packets on --interface) or ebpf (the
    /// reads and writes of the --pid/--unit processes, HTTPS as plaintext).
    #[arg(long, value_name = "pcap|ebpf")]
    source: Option<String>,
    /// Interface to capture on (e.g. eth0, lo, any).
    #[arg(long, value_name = "IF")]
    interface: Option<String>,
    /// eBPF: a process of the legacy service (its children, now and later, too).
    #[arg(long = "pid", value_name = "PID")]
    pids: Vec<u32>,
    /// eBPF: a systemd unit of the legacy service (its cgroup: new workers too).
    #[arg(long = "unit", value_name = "NAME.service")]
    units: Vec<String>,
    /// eBPF: a unix socket path the legacy service listens on.
    #[arg(long = "unix", value_name = "PATH")]
    unix: Vec<String>,
    /// eBPF: HTTPS plaintext through libssl (auto) or TLS connections skipped (off).
    #[arg(long, value_name = "auto|off")]
    tls: Option<String>,
    /// Server port(s) of the legacy service.
    #[arg(long = "port", value_name = "N", allow_negative_numbers = true)]
    ports: Vec<u16>,
    /// eBPF: also write what the source sees to this pcapng.
    #[arg(long, value_name = "FILE.pcapng")]
    record: Option<PathBuf>,
    /// BPF filter instead of the one built from the ports.
    #[arg(long, value_name = "BPF")]
    filter: Option<String>,
    /// Base URL of the candidate service.
    #[arg(long, value_name = "URL")]
    candidate: Option<String>,
    /// Outcome JSON Lines, appended (reopened on SIGHUP).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Report JSON, rewritten every interval and at shutdown.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics and /healthz.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Replay this percentage of connections (whole connections, by flow hash).
    #[arg(long, value_name = "PERCENT", allow_negative_numbers = true)]
    sample: Option<f64>,
    /// Keep the evidence here across restarts (default: $STATE_DIRECTORY).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Discard the kept evidence and start over.
    #[arg(long)]
    fresh: bool,
    #[command(flatten)]
    triage: TriageArgs,
}

/// `shadowtap state show|reset`.
#[derive(Args)]
struct StateArgs {
    #[command(subcommand)]
    action: StateAction,
}

#[derive(Subcommand)]
enum StateAction {
    /// Print what the daemon keeps across restarts, and since when.
    Show {
        /// The state directory (default: $STATE_DIRECTORY, else /var/lib/shadowtap).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Discard the kept evidence: the daemon starts over at its next start.
    Reset {
        /// The state directory (default: $STATE_DIRECTORY, else /var/lib/shadowtap).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
}

#[derive(Args)]
struct RecordArgs {
    /// Only ebpf records here (a pcap capture is already one: tcpdump -w).
    #[arg(long, value_name = "ebpf")]
    source: String,
    /// TOML configuration ([ebpf], [capture] ports and max_flows).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A process of the legacy service (its children, now and later, too).
    #[arg(long = "pid", value_name = "PID")]
    pids: Vec<u32>,
    /// A systemd unit of the legacy service (its cgroup: new workers too).
    #[arg(long = "unit", value_name = "NAME.service")]
    units: Vec<String>,
    /// A unix socket path the legacy service listens on.
    #[arg(long = "unix", value_name = "PATH")]
    unix: Vec<String>,
    /// HTTPS plaintext through libssl (auto) or TLS connections skipped (off).
    #[arg(long, value_name = "auto|off")]
    tls: Option<String>,
    /// Server port(s) of the legacy service.
    #[arg(long = "port", value_name = "N", allow_negative_numbers = true)]
    ports: Vec<u16>,
    /// The pcapng to write (replaced if it exists).
    #[arg(long, value_name = "FILE.pcapng")]
    out: PathBuf,
    /// Stop after this many seconds (default: at SIGINT or SIGTERM).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    duration: Option<f64>,
}

#[derive(Args)]
struct VerdictArgs {
    /// A report written by `replay --report` or `run --report`.
    #[arg(required_unless_present = "prometheus", conflicts_with = "prometheus")]
    report: Option<PathBuf>,
    /// Judge every tap this Prometheus scrapes instead (http://host:port).
    #[arg(long, value_name = "URL")]
    prometheus: Option<String>,
    /// With --prometheus: the span of the taps' traffic judged, e.g. 1h, 30m, 7d.
    #[arg(long, value_name = "DURATION", default_value = "1h", requires = "prometheus")]
    window: String,
    /// With --prometheus: judge with this configuration's [verdict] and
    /// [latency] instead of the criteria the taps report.
    #[arg(long, value_name = "FILE", requires = "prometheus")]
    config: Option<PathBuf>,
    /// Endpoint template(s) to judge, e.g. "GET /api/users/{id}".
    #[arg(long = "endpoint", value_name = "TEMPLATE")]
    endpoints: Vec<String>,
}

#[derive(Args)]
struct ReportArgs {
    /// Reports written by `replay --report` or `run --report`.
    #[arg(required = true, value_name = "REPORT")]
    reports: Vec<PathBuf>,
    /// Write the merged report as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the report as one self-contained HTML page here.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write the report's examples (from --outcomes) as HAR 1.2 here.
    #[arg(long, value_name = "FILE")]
    har: Option<PathBuf>,
    /// Outcome lines (`--out` of replay or run) for the HTML page's
    /// examples and outcomes over time.
    #[arg(long = "outcomes", value_name = "FILE.jsonl")]
    outcomes: Vec<PathBuf>,
    /// Judge with this configuration's [verdict] and [latency] instead of
    /// the reports' own criteria.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the verdict and exit as `shadowtap verdict` does.
    #[arg(long)]
    verdict: bool,
    /// With --verdict: endpoint template(s) to judge (default all).
    #[arg(long = "endpoint", value_name = "TEMPLATE", requires = "verdict")]
    endpoints: Vec<String>,
}

#[derive(Args)]
struct DemoArgs {
    /// Exchanges to send to the legacy service.
    #[arg(long, default_value_t = 300, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    requests: usize,
    /// Use the bundled capture instead of capturing live on lo.
    #[arg(long)]
    offline: bool,
    /// Port of the legacy service (default: any free port).
    #[arg(long, default_value_t = 0)]
    legacy_port: u16,
}

#[derive(Args, Clone)]
struct CaptureArgs {
    /// Server port(s); without, any connection that starts like HTTP counts.
    #[arg(long = "port", value_name = "N", allow_negative_numbers = true)]
    ports: Vec<u16>,
    /// Body bytes kept per message (the rest is counted, not kept;
    /// default 1 MiB, `[capture] body_limit`).
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true)]
    body_limit: Option<usize>,
    /// Reassembly shards (threads); default: one per core (`replay`: one).
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256), allow_negative_numbers = true)]
    shards: Option<usize>,
}

#[derive(Args)]
struct EndpointsArgs {
    /// pcap or pcapng files (optionally .gz), read in order as one stream.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Write the templates here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Configuration whose templates are left out (they already name their requests).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    capture: CaptureArgs,
}

#[derive(Args)]
struct PairsArgs {
    /// pcap or pcapng files (optionally .gz), read in order as one stream.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format: JSON Lines, or one HAR 1.2 document.
    #[arg(long, value_enum, default_value_t = PairsFormat::Jsonl)]
    format: PairsFormat,
    /// Secret header values (credentials, cookies, `[redact] headers`) and
    /// JSON body fields (`[redact] json_paths`) as keyed hashes; without
    /// it JSON Lines show the capture as it is (HAR is always redacted).
    #[arg(long)]
    redact: bool,
    /// TOML configuration (its `[redact]` headers for `--redact`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    capture: CaptureArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PairsFormat {
    Jsonl,
    Har,
}

/// Exchanges are allocated on shard threads and freed on replay workers;
/// glibc's allocator serialises that on arena locks (about a fifth of
/// replay's CPU in profiles), mimalloc frees across threads cheaply.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if is_bad_value(&e) => {
            // clap adds a blank line and a hint: bad input is one line here.
            let rendered = e.render().to_string();
            eprintln!("{}", rendered.lines().next().unwrap_or("error: bad value"));
            return ExitCode::from(2);
        }
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHADOWTAP_LOG")
                .unwrap_or_else(|_| default_log_level(&cli.command).into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Pairs(args) => pairs(args),
        Command::Replay(args) => replay(args),
        Command::Run(args) => shadowtap::daemon::run(run_flags(args)).map(|_| ExitCode::SUCCESS),
        Command::Record(args) => record(args),
        Command::Endpoints(args) => endpoints(args),
        Command::Verdict(args) => verdict(args),
        Command::Report(args) => merge_reports(args),
        Command::State(args) => state(args),
        Command::Demo(args) => {
            shadowtap::demo::run(args.requests, args.offline, args.legacy_port).map(|_| ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shadowtap: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The daemon tells what it does (info); one-shot commands speak only on trouble.
fn default_log_level(command: &Command) -> &'static str {
    if matches!(command, Command::Run(_) | Command::Record(_)) { "info" } else { "warn" }
}

/// A flag's value that does not parse or is out of its range (clap's
/// message for it is self-contained on its first line).
fn is_bad_value(e: &clap::Error) -> bool {
    matches!(e.kind(), clap::error::ErrorKind::InvalidValue | clap::error::ErrorKind::ValueValidation)
}

/// Each command's flags, for the one table of flags to config keys
/// (`topology::flags`).
impl CaptureArgs {
    fn flags(&self) -> Flags {
        Flags { ports: self.ports.clone(), body_limit: self.body_limit, ..Default::default() }
    }
}

impl TriageArgs {
    fn onto(self, flags: Flags) -> Flags {
        Flags { secondary: self.secondary, primary: self.primary, allow_writes: self.allow_writes, ..flags }
    }
}

fn run_flags(args: RunArgs) -> Flags {
    let flags = Flags {
        config: args.config,
        source: args.source,
        interface: args.interface,
        pids: args.pids,
        units: args.units,
        unix: args.unix,
        tls: args.tls,
        record: args.record,
        ports: args.ports,
        filter: args.filter,
        candidate: args.candidate,
        out: args.out,
        report: args.report,
        metrics: args.metrics,
        sample: args.sample,
        state_dir: args.state_dir,
        fresh: args.fresh,
        ..Default::default()
    };
    args.triage.onto(flags)
}

/// `state show` / `state reset`.
fn state(args: StateArgs) -> anyhow::Result<ExitCode> {
    use shadowtap::state::cli;
    let text = match args.action {
        StateAction::Show { state_dir } => cli::show(&cli::dir_or_default(state_dir))?,
        StateAction::Reset { state_dir } => cli::reset(&cli::dir_or_default(state_dir))?,
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// The longest `record --duration` (larger overflows a Duration's seconds).
const MAX_RECORD_S: f64 = 366.0 * 86_400.0;

/// `record`: the eBPF source to a pcapng; one summary line on stderr.
fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    match args.source.as_str() {
        "ebpf" => {}
        "pcap" => anyhow::bail!("record --source pcap: a packet capture is already a pcap, use tcpdump -w FILE"),
        other => anyhow::bail!("--source {other:?}: record takes ebpf"),
    }
    let duration = match args.duration {
        Some(s) if !(s > 0.0 && s <= MAX_RECORD_S) => {
            anyhow::bail!("--duration {s}: must be a number of seconds above 0, at most {MAX_RECORD_S} (a year)")
        }
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    let flags = Flags {
        config: args.config,
        pids: args.pids,
        units: args.units,
        unix: args.unix,
        tls: args.tls,
        ports: args.ports,
        ..Default::default()
    };
    let config = flags.load(None)?;
    let summary = shadowtap::ebpf::record::command::record(
        &config.ebpf,
        &config.capture.ports,
        config.capture.max_flows,
        &args.out,
        duration,
    )?;
    eprintln!("{summary} to {}", args.out.display());
    // A recording with holes the writer made is not the traffic seen.
    Ok(if summary.recorded.write_errors > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

fn replay_flags(args: &mut ReplayArgs) -> Flags {
    let flags = Flags {
        config: args.config.clone(),
        candidate: args.candidate.clone(),
        concurrency: args.concurrency,
        rate: args.rate,
        pace: args.pace,
        out: args.out.clone(),
        report: args.report.clone(),
        ..args.capture.flags()
    };
    std::mem::take(&mut args.triage).onto(flags)
}

/// The pipeline of a command without a configuration file: the flags on
/// the defaults.
fn files_pipeline(files: &[PathBuf], capture: &CaptureArgs, config: &Config) -> pipeline::Running {
    let source = SourceChoice::Files(files.to_vec());
    let pipeline = build::pipeline_config(config, &source, Consumer::Print, capture.shards);
    pipeline::start(pipeline::Source::Files(files.to_vec()), pipeline)
}

fn pairs(args: PairsArgs) -> anyhow::Result<ExitCode> {
    let total_bytes: u64 = args.files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let config = Flags { config: args.config.clone(), ..args.capture.flags() }.load(None)?;
    let running = files_pipeline(&args.files, &args.capture, &config);
    let progress = ProgressBar::start(running.progress.clone(), total_bytes);
    let stdout = std::io::stdout().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4);
    let exchanges = running.exchanges.clone();
    // A HAR file is made to be shared: always redacted.
    let redact = args.redact || matches!(args.format, PairsFormat::Har);
    let exchanges = if redact { shadowtap::redact::exchanges(exchanges) } else { exchanges };
    let written = match args.format {
        PairsFormat::Jsonl => shadowtap::jsonl::write_ordered(exchanges, &mut out, workers),
        PairsFormat::Har => shadowtap::har::write_har(exchanges, &mut out).map(|_| ()),
    };
    let flushed = out.flush();
    drop(out);
    let (summary, error) = running.finish();
    progress.stop();
    let unusable = error.is_some() && summary.capture.packets == 0;
    if !unusable {
        print_summary(&summary);
    }
    if let Some(e) = written.err().or(flushed.err())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e).context("writing exchanges to stdout");
    }
    if let Some(error) = error {
        eprintln!("shadowtap: {error}");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(s: &Summary) {
    let c = &s.capture;
    let r = &s.reassembly;
    let h = &s.http;
    eprintln!(
        "packets {} ({} bytes), tcp segments {}, skipped frames: not tcp {}, ip fragments {}, malformed {}",
        c.packets, c.bytes, c.tcp_segments, c.not_tcp, c.fragments, c.malformed
    );
    eprintln!(
        "connections {} (http {}, not http {}, tunnels {}), exchanges {}, unanswered requests {}, responses without request {}",
        r.connections,
        h.http_connections,
        h.non_http_connections,
        h.tunnels,
        h.exchanges,
        h.unanswered,
        h.orphan_responses
    );
    eprintln!(
        "gaps {} ({} bytes, {} exchanges marked), out-of-order segments {}, retransmitted segments {}, malformed http messages {}",
        r.gaps, r.gap_bytes, h.gap_exchanges, r.out_of_order, r.retransmitted, h.malformed
    );
    eprintln!(
        "dropped by memory bounds: {} bytes, {} holes given up early, {} connections not tracked, {} messages cut short, {} exchanges released out of order",
        r.bound_dropped_bytes + h.reading_cut_bytes,
        r.bound_gaps,
        r.flows_refused,
        h.reading_cut,
        s.order_forced
    );
    eprintln!(
        "requests waiting for answers: at most {} at once, {} sent out unanswered by the bound, {} later answers to them set aside",
        h.peak_waiting, h.sent_out_unanswered, h.answers_to_sent_out
    );
    let h2 = &h.http2;
    if h2.connections > 0 {
        eprintln!(
            "http/2: connections {}, streams {} ({} dropped by the bound), headers incomplete {}, resets {}, push promises {}, answers without request {}, malformed {} ({} bytes passed over)",
            h2.connections,
            h2.streams,
            h2.streams_dropped,
            h2.headers_incomplete,
            h2.resets,
            h2.push_promises,
            h2.orphan_responses,
            h2.malformed,
            h2.resync_bytes
        );
    }
}

/// A progress line on stderr while a long file is read, only when stderr is
/// a terminal (never in pipes or logs).
struct ProgressBar {
    bar: Option<indicatif::ProgressBar>,
    ticker: Option<std::thread::JoinHandle<()>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ProgressBar {
    fn start(progress: std::sync::Arc<pipeline::Progress>, total: u64) -> ProgressBar {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if !std::io::stderr().is_terminal() || total < (16 << 20) {
            return ProgressBar { bar: None, ticker: None, stop };
        }
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let (bar2, stop2) = (bar.clone(), stop.clone());
        let ticker = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                bar2.set_position(progress.bytes_read.load(Ordering::Relaxed));
                bar2.set_message(format!("{} exchanges", progress.exchanges.load(Ordering::Relaxed)));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        ProgressBar { bar: Some(bar), ticker: Some(ticker), stop }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker {
            let _ = t.join();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

fn replay(mut args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let flags = replay_flags(&mut args);
    let mut config = match &flags.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    // `[output]` is the daemon's: a saved capture's outcomes go where
    // this command's flags say (stdout by default), never to its files.
    config.output = Default::default();
    flags.apply(&mut config)?;
    let schedule = build::schedule(&config, args.lanes.map_or(0, usize::from));
    let options = build::report_options(&config);
    let replayer = build::replayer(&config)?;
    let source = SourceChoice::Files(args.files.clone());
    if config.naming.learn {
        // Names must be final before the first outcome: learn them first.
        let scan_config = build::pipeline_config(&config, &source, Consumer::Print, args.capture.shards);
        let scanned = scan::scan(args.files.clone(), scan_config, replayer.templates());
        replayer.names.set(scanned.learner.learn());
    }
    let (sink, table_to_stderr): (OutcomeSink, bool) = match &config.output.out {
        Some(path) => {
            let file = std::fs::File::create(path).with_context(|| format!("{}: cannot create", path.display()))?;
            (Box::new(std::io::BufWriter::new(file)), false)
        }
        None => (Box::new(std::io::BufWriter::new(std::io::stdout())), true),
    };
    let no_stop = Default::default();
    let running = build::start_pipeline(&config, source, Consumer::Lanes, args.capture.shards, no_stop)?;
    let finished = replay_pipeline(running, replayer, schedule, sink, options)?;
    if let Some(path) = &config.output.report {
        let json = serde_json::to_string_pretty(&finished.report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("{}: cannot write report", path.display()))?;
    }
    let table = shadowtap::report::table(&finished.report);
    if table_to_stderr {
        eprint!("{table}");
    } else {
        print!("{table}");
    }
    if let Some(error) = finished.capture_error {
        eprintln!("shadowtap: {error}");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn endpoints(args: EndpointsArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let mut config = config;
    args.capture.flags().apply(&mut config)?;
    let source = SourceChoice::Files(args.files.clone());
    let pipeline = build::pipeline_config(&config, &source, Consumer::Print, args.capture.shards);
    let scanned = scan::scan(args.files.clone(), pipeline, &config.templates());
    if let Some(error) = &scanned.error
        && scanned.summary.capture.packets == 0
    {
        eprintln!("shadowtap: {error}");
        return Ok(ExitCode::from(2));
    }
    let sources: Vec<String> = args.files.iter().map(|f| f.display().to_string()).collect();
    let toml = scan::to_toml(&scanned.learner.learn(), &sources.join(", "), scanned.learned_from);
    match &args.out {
        Some(path) => std::fs::write(path, toml).with_context(|| format!("{}: cannot write", path.display()))?,
        None => print!("{toml}"),
    }
    if let Some(error) = scanned.error {
        eprintln!("shadowtap: {error}");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn verdict(args: VerdictArgs) -> anyhow::Result<ExitCode> {
    let Some(report) = &args.report else { return fleet_verdict(&args) };
    // Bytes, not a string: a binary file (a capture given by mistake) is
    // "not a shadowtap report", not "cannot read: ... valid UTF-8".
    let bytes = std::fs::read(report).with_context(|| format!("{}: cannot read", report.display()))?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{}: not a shadowtap report", report.display()))?;
    let verdicts = shadowtap::report::verdicts(&json, &args.endpoints)
        .with_context(|| format!("{}: not a shadowtap report", report.display()))?;
    Ok(print_verdicts(&verdicts))
}

/// `verdict --prometheus`: the fleet's endpoints, judged as a report's are.
fn fleet_verdict(args: &VerdictArgs) -> anyhow::Result<ExitCode> {
    let url = args.prometheus.as_deref().context("give a report or --prometheus URL")?;
    let window_s = shadowtap::fleet::parse_window(&args.window).map_err(anyhow::Error::msg)?;
    let criteria = match &args.config {
        Some(path) => Some(shadowtap::report::Criteria::of_config(&Config::load(path)?)),
        None => None,
    };
    let endpoints = shadowtap::fleet::judge(&shadowtap::fleet::FleetQuery { url, window_s, criteria })?;
    Ok(print_verdicts(&shadowtap::fleet::verdicts(&endpoints, &args.endpoints)))
}

/// The verdict table; exit 0 only when every verdict is ready.
fn print_verdicts(verdicts: &[shadowtap::report::Verdict]) -> ExitCode {
    let width = verdicts.iter().map(|v| v.endpoint.len()).max().unwrap_or(8).clamp(8, 60);
    println!("{:<width$}  {:<5}  why", "endpoint", "ready");
    for v in verdicts {
        println!("{:<width$}  {:<5}  {}", v.endpoint, if v.ready { "yes" } else { "NO" }, v.why);
    }
    let all_ready = !verdicts.is_empty() && verdicts.iter().all(|v| v.ready);
    println!("{}", if all_ready { "verdict: ready to turn the old service off" } else { "verdict: not ready" });
    if all_ready { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

fn merge_reports(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let criteria = match &args.config {
        Some(path) => Some(shadowtap::report::Criteria::of_config(&Config::load(path)?)),
        None => None,
    };
    let mut merger = shadowtap::report::merge::Merger::default();
    for path in &args.reports {
        let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        merger.add(&path.display().to_string(), &bytes)?;
    }
    let merged = merger.finish(criteria.as_ref())?;
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&merged)?;
        std::fs::write(path, json + "\n").with_context(|| format!("{}: cannot write", path.display()))?;
    }
    if args.html.is_some() || args.har.is_some() {
        let wanted = shadowtap::html::wanted_fields(&merged);
        let mut evidence = shadowtap::html::examples::Evidence::default();
        for outcomes in &args.outcomes {
            let file = std::fs::File::open(outcomes).with_context(|| format!("{}: cannot read", outcomes.display()))?;
            evidence
                .read(std::io::BufReader::new(file), &wanted)
                .with_context(|| format!("{}: cannot read", outcomes.display()))?;
        }
        if let Some(path) = &args.html {
            let page = shadowtap::html::render(&merged, &evidence, "shadowtap report");
            std::fs::write(path, page).with_context(|| format!("{}: cannot write", path.display()))?;
        }
        if let Some(path) = &args.har {
            let har = serde_json::to_string_pretty(&shadowtap::har::examples::examples_har(&evidence))? + "\n";
            std::fs::write(path, har).with_context(|| format!("{}: cannot write", path.display()))?;
        }
    }
    if !args.verdict {
        print!("{}", shadowtap::report::table(&merged));
        return Ok(ExitCode::SUCCESS);
    }
    let verdicts = shadowtap::report::verdicts(&serde_json::to_value(&merged)?, &args.endpoints)
        .context("the merged report cannot be read back")?;
    Ok(print_verdicts(&verdicts))
}
