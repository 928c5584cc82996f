//! The TOML configuration shared by `replay` and `run`: candidate, what may
//! be replayed, comparison rules (global and per endpoint) and the latency
//! margin. Errors name the file and line; numbers are range-checked
//! (`check.rs`).

use std::path::Path;

use serde::Deserialize;

use super::endpoint::Template;
use crate::diff::CompareRules;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub candidate: CandidateConfig,
    pub replay: ReplayConfig,
    pub compare: CompareRules,
    pub latency: LatencyConfig,
    /// Per-endpoint templates and rules, first match wins.
    pub endpoints: Vec<EndpointConfig>,
    /// Endpoint templates learned from the traffic.
    pub naming: NamingConfig,
    /// Other legacy instances used to tell noise and races from bugs.
    pub legacy: LegacyConfig,
    pub noise: NoiseConfig,
    pub verdict: VerdictConfig,
    /// The live daemon's own sections (`shadowtap run`).
    pub capture: CaptureConfig,
    pub output: OutputConfig,
    pub metrics: MetricsConfig,
    pub daemon: DaemonConfig,
    /// What the eBPF source watches (`[capture] source = "ebpf"`).
    pub ebpf: crate::ebpf::EbpfConfig,
    /// Secrets kept out of every output (`[redact]`).
    pub redact: crate::redact::RedactConfig,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LegacyConfig {
    /// A second legacy instance: each replayed request also goes there,
    /// and where it disagrees with the recorded answer is noise.
    pub secondary: Option<String>,
    /// The live legacy service (reads only): a diff is re-checked there,
    /// and if production's answer moved, the diff is a race.
    pub primary: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoiseConfig {
    /// Learn noise from production answering the same request differently
    /// within `repeat_window_s`.
    pub from_repeats: bool,
    pub repeat_window_s: u64,
    /// A field is noise when candidate-diff rate <= noise rate * (1 +
    /// relative_percent/100) + absolute_percent/100 ...
    pub relative_percent: f64,
    pub absolute_percent: f64,
    /// ... and production disagreed with itself there at least this often.
    pub min_samples: u64,
    /// Noise is learned as traffic flows, so the first answers of an
    /// endpoint are judged before anything is known about it. A diff on an
    /// endpoint with fewer production-against-production samples than this
    /// is held back and judged again once it has them (or when replay
    /// ends, or after `warmup_max_s`). 0: judge at once.
    pub warmup_samples: u64,
    /// Longest a diff is held back (live; a file is judged by its end).
    pub warmup_max_s: u64,
    /// Request headers that cannot change an answer: two exchanges that
    /// differ only there are the same request for noise from repeats.
    /// Every other header counts (conditionals, Range, Accept-Encoding,
    /// Prefer, Authorization, Cookie always do).
    pub repeat_ignore_headers: Vec<String>,
}

impl Default for NoiseConfig {
    fn default() -> Self {
        NoiseConfig {
            from_repeats: true,
            repeat_window_s: 60,
            relative_percent: 20.0,
            absolute_percent: 3.0,
            min_samples: 1,
            warmup_samples: 10,
            warmup_max_s: 5,
            repeat_ignore_headers: DEFAULT_REPEAT_IGNORE_HEADERS.iter().map(|h| h.to_string()).collect(),
        }
    }
}

/// Headers that cannot change an answer, left out of the same-request key
/// by default (`[noise] repeat_ignore_headers`): tracing and correlation
/// ids, the client's name, the connection's management, our own marker.
pub const DEFAULT_REPEAT_IGNORE_HEADERS: &[&str] = &[
    "user-agent",
    "connection",
    "keep-alive",
    "content-length",
    "x-request-id",
    "x-correlation-id",
    "request-id",
    "traceparent",
    "tracestate",
    "baggage",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "uber-trace-id",
    "x-amzn-trace-id",
    "x-cloud-trace-context",
    "sentry-trace",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "x-shadowtap-replay",
];

/// Endpoint names learned from the traffic (configured templates win).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamingConfig {
    /// Learn templates (`replay`: from a scan of the files first; `run`: as
    /// traffic flows). false: configured templates and value classes only.
    pub learn: bool,
    /// `run`: outcomes wait until this many requests were learned from (or
    /// `settle_s` passed), then go out under their learned names.
    pub settle_exchanges: u64,
    pub settle_s: u64,
    /// Files of `[[endpoints]]` (as `shadowtap endpoints --out` writes
    /// them), added after this file's own; relative to this file.
    pub include: Vec<std::path::PathBuf>,
}

impl Default for NamingConfig {
    fn default() -> Self {
        NamingConfig { learn: true, settle_exchanges: 1000, settle_s: 5, include: Vec::new() }
    }
}

/// When an endpoint is ready for cutover.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerdictConfig {
    /// Compared exchanges (match, noise or race) needed at least.
    pub min_compared: u64,
    pub max_diff: u64,
    pub max_error: u64,
    /// Replay's in flight above production's by more than this factor:
    /// the candidate's latency is reported but not judged (not ready).
    pub max_load_ratio: f64,
    /// A request sent later than this after it was due (with `--pace`: the
    /// captured pace; live: production's answer) counts as started late.
    pub late_start_ms: u64,
    /// Share of an endpoint's requests started late above which its
    /// evidence is too thin for readiness.
    pub max_late_percent: f64,
    /// Share of an endpoint's exchanges lost to queue drops and capture
    /// gaps (and of packets to kernel drops) above which it is not ready.
    pub max_lost_percent: f64,
}

impl Default for VerdictConfig {
    fn default() -> Self {
        VerdictConfig {
            min_compared: 100,
            max_diff: 0,
            max_error: 0,
            max_load_ratio: 2.0,
            late_start_ms: 1000,
            max_late_percent: 1.0,
            max_lost_percent: 1.0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureConfig {
    /// "pcap" (libpcap on `interface`) or "ebpf" (the `[ebpf]` processes' sockets).
    pub source: String,
    pub interface: Option<String>,
    /// Server ports of the legacy service.
    pub ports: Vec<u16>,
    /// BPF filter; empty: built from the ports.
    pub filter: String,
    pub snaplen: i32,
    pub buffer_mb: i32,
    pub promiscuous: bool,
    pub sample_percent: f64,
    pub body_limit: usize,
    /// Connections tracked at once, in all; beyond, new ones are not
    /// tracked (counted). Bounds memory under a flood of half-open
    /// connections.
    pub max_flows: usize,
    /// A connection with no packet for this long is closed.
    pub idle_timeout_s: u64,
    /// Out-of-order bytes held per connection direction, and in all.
    pub max_flow_buffer_kb: usize,
    pub max_buffer_mb: usize,
    /// How long a hole the peer acknowledged past is still waited for (a
    /// mirror port can show an ACK before the data it acknowledges).
    pub reorder_window_ms: u64,
    /// Requests waiting for their answers, per connection and (bytes) in
    /// all; past either bound the oldest come out unanswered (counted).
    pub max_waiting_per_connection: usize,
    pub max_waiting_mb: usize,
    /// Bytes of messages still arriving (partial heads and bodies), in
    /// all; past it the connection whose message grew is cut (counted).
    pub max_reading_mb: usize,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            source: "pcap".into(),
            interface: None,
            ports: Vec::new(),
            filter: String::new(),
            snaplen: 262_144,
            buffer_mb: 64,
            promiscuous: false,
            sample_percent: 100.0,
            body_limit: 1 << 20,
            max_flows: 500_000,
            idle_timeout_s: 120,
            max_flow_buffer_kb: 2048,
            max_buffer_mb: 128,
            reorder_window_ms: 50,
            max_waiting_per_connection: crate::http::DEFAULT_MAX_WAITING_PER_CONN,
            max_waiting_mb: crate::http::DEFAULT_MAX_WAITING_MB,
            max_reading_mb: crate::http::DEFAULT_MAX_READING_MB,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    /// Outcome JSON Lines, appended; reopened on SIGHUP.
    pub out: Option<std::path::PathBuf>,
    /// Report JSON, rewritten every interval and at shutdown.
    pub report: Option<std::path::PathBuf>,
    pub report_interval_s: u64,
    /// Endpoints kept in the report and in the noise model; beyond, the
    /// least-seen are evicted (counted; report ones into "(other)").
    pub max_endpoints: usize,
    /// Fields kept per endpoint (differing fields in the report, learned
    /// noise); beyond, the least-seen are evicted (counted).
    pub max_fields: usize,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig { out: None, report: None, report_interval_s: 60, max_endpoints: 2000, max_fields: 500 }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address for Prometheus `/metrics` and `/healthz`.
    pub listen: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// Exchanges waiting for replay; beyond, dropped and counted.
    pub queue: usize,
    /// Time allowed to drain the pipeline and replays at shutdown.
    pub drain_timeout_s: u64,
    /// Where the daemon keeps its evidence across restarts (`crate::state`);
    /// unset: `$STATE_DIRECTORY` (systemd's `StateDirectory=`), else none.
    pub state_dir: Option<std::path::PathBuf>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig { queue: 4096, drain_timeout_s: 10, state_dir: None }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CandidateConfig {
    pub url: Option<String>,
    /// Host header sent to the candidate: "candidate" (its own authority),
    /// "keep" (as captured), or a literal host.
    pub host_header: String,
    /// Header added to every replayed request so the candidate (and the
    /// daemon's own capture) can tell replays apart.
    pub marker_header: String,
    pub marker_value: String,
    pub timeout_ms: u64,
    /// Requests in flight to the candidate at most; 0 (the default): no
    /// more than production had in flight at that point of the recording.
    pub concurrency: usize,
    /// Requests per second at most (0: no limit).
    pub rate: f64,
    /// 0: as fast as the limits allow; otherwise replay at the captured
    /// pace times this factor (2 = twice as fast).
    pub pace: f64,
    /// PEM certificates trusted for https candidates besides the webpki
    /// roots (a private CA). Read when the client is built; "" = none.
    pub ca_file: Option<std::path::PathBuf>,
    /// Which client speaks to an http candidate (https always goes
    /// through hyper).
    pub http_client: HttpClient,
    /// When Host is rewritten: tell the candidate what production was
    /// asked for (`X-Forwarded-Host`, `X-Forwarded-Proto`), unless the
    /// recorded request already says, so it can build production's URLs.
    pub forwarded_headers: bool,
}

/// The client for http candidates.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HttpClient {
    /// shadowtap's own: one write per request, the answer read with the
    /// capture's framing code (both sides parsed alike), cheapest per
    /// request.
    #[default]
    Shadowtap,
    /// hyper's pooled client, as for https: a second opinion when a
    /// candidate's answers look misread.
    Hyper,
}

impl Default for CandidateConfig {
    fn default() -> Self {
        CandidateConfig {
            url: None,
            host_header: "candidate".into(),
            marker_header: "X-Shadowtap-Replay".into(),
            marker_value: "1".into(),
            timeout_ms: 10_000,
            concurrency: 0,
            rate: 0.0,
            pace: 0.0,
            ca_file: None,
            http_client: HttpClient::Shadowtap,
            forwarded_headers: true,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayConfig {
    /// Methods replayed everywhere (safe ones by default).
    pub methods: Vec<String>,
    /// Endpoint templates whose writes go to the candidate's own sister
    /// datastores, so they may be replayed (e.g. "POST /api/comments").
    pub allow_writes: Vec<String>,
    /// JSON pointers of server-generated identifiers (besides fields named
    /// `id`, `uuid` or `*_id`, which are recognised by name).
    pub id_fields: Vec<String>,
    /// JSON pointers (or `header:<name>`) of other values a write
    /// generates: tokens, validators (besides `ETag` and fields named
    /// `token`, `nonce`, `etag`, `*_token`). Set aside and mapped like ids.
    pub generated_fields: Vec<String>,
    /// How far outside its exchange's time window a generated time may lie
    /// (clocks of the candidate's or the datastore's hosts).
    pub generated_time_tolerance_ms: u64,
    /// Generated values (ids, tokens, times) and validators remembered,
    /// each; beyond, the oldest are evicted (counted).
    pub max_mapped_values: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            methods: crate::semantics::SAFE_METHODS.iter().map(|m| m.to_string()).collect(),
            allow_writes: Vec::new(),
            id_fields: Vec::new(),
            generated_fields: Vec::new(),
            generated_time_tolerance_ms: 2000,
            max_mapped_values: 100_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyConfig {
    /// An endpoint is flagged when the candidate's p99 exceeds the recorded
    /// p99 by more than this share and by more than `p99_margin_ms`.
    pub p99_margin_percent: f64,
    pub p99_margin_ms: f64,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        LatencyConfig { p99_margin_percent: 20.0, p99_margin_ms: 5.0 }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointConfig {
    /// "METHOD /path/{placeholder}".
    pub template: String,
    pub ignore_paths: Vec<String>,
    pub unordered_arrays: Vec<String>,
    pub ignore_headers: Vec<String>,
    /// Writes on this endpoint go to sister datastores: replay them.
    pub allow_writes: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path}:{line}: {reason}")]
    Invalid { path: String, line: usize, reason: String },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Unreadable { path: path.display().to_string(), reason: e.to_string() })?;
        let mut config = Config::parse(&text, &path.display().to_string())?;
        let base = path.parent().unwrap_or(Path::new("."));
        for include in config.naming.include.clone() {
            let included = Config::load_endpoints(&base.join(include))?;
            config.endpoints.extend(included);
        }
        // The first file loaded says what this process redacts.
        crate::redact::install(&config.redact);
        Ok(config)
    }

    /// The `[[endpoints]]` of an included file (nothing else is allowed there).
    fn load_endpoints(path: &Path) -> Result<Vec<EndpointConfig>, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Unreadable { path: name.clone(), reason: e.to_string() })?;
        let config = Config::parse(&text, &name)?;
        if toml::from_str::<OnlyEndpoints>(&text).is_err() {
            return Err(ConfigError::Invalid {
                path: name,
                line: 1,
                reason: "only [[endpoints]] may be included".into(),
            });
        }
        Ok(config.endpoints)
    }

    pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
        let invalid = |line: usize, reason: String| ConfigError::Invalid { path: name.to_string(), line, reason };
        let config: Config = toml::from_str(text).map_err(|e| {
            let start = e.span().map_or(0, |span| span.start.min(text.len()));
            let line =
                unknown_field_line(text, start, e.message()).unwrap_or_else(|| text[..start].lines().count().max(1));
            invalid(line, e.message().to_string())
        })?;
        for endpoint in &config.endpoints {
            if Template::parse(&endpoint.template).is_none() {
                let line = line_of(text, &endpoint.template);
                return Err(invalid(
                    line,
                    format!("bad endpoint template {:?} (want \"METHOD /path/{{id}}\")", endpoint.template),
                ));
            }
        }
        for write in &config.replay.allow_writes {
            if Template::parse(write).is_none() {
                return Err(invalid(line_of(text, write), format!("bad allow_writes template {write:?}")));
            }
        }
        config.check().map_err(|e| invalid(check::key_line(text, e.section, e.key), e.to_string()))?;
        Ok(config)
    }

    pub fn templates(&self) -> Vec<Template> {
        self.endpoints.iter().filter_map(|e| Template::parse(&e.template)).collect()
    }

    /// Comparison rules for an endpoint: global rules plus its own.
    pub fn rules_for(&self, endpoint: &str) -> CompareRules {
        let mut rules = self.compare.clone();
        if let Some(e) =
            self.endpoints.iter().find(|e| Template::parse(&e.template).is_some_and(|t| t.text == endpoint))
        {
            rules.ignore_paths.extend(e.ignore_paths.iter().cloned());
            rules.unordered_arrays.extend(e.unordered_arrays.iter().cloned());
            rules.ignore_headers.extend(e.ignore_headers.iter().cloned());
        }
        rules
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // only checked for its shape
struct OnlyEndpoints {
    #[serde(default)]
    endpoints: Vec<toml::Value>,
}

/// For "unknown field `x`" the parser points at the table; the line of
/// the key itself is more useful.
fn unknown_field_line(text: &str, from: usize, message: &str) -> Option<usize> {
    let field = message.strip_prefix("unknown field `")?.split('`').next()?;
    let before = text[..from].lines().count().saturating_sub(1);
    text.lines()
        .enumerate()
        .skip(before)
        .find(|(_, l)| {
            let l = l.trim_start();
            l.starts_with(field) && l[field.len()..].trim_start().starts_with('=')
        })
        .map(|(i, _)| i + 1)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).map_or(1, |i| i + 1)
}

mod check;
pub use check::OutOfRange;

#[cfg(test)]
mod tests;
