//! Metamorphic test of the rule "no real bug is ever explained away".
//!
//! For each seed, `tests/common/meta_world.rs` generates the data and the
//! regressions planted in the candidate (`meta_service.rs` serves them,
//! `meta_traffic.rs` generates and sends the traffic): a status change, a
//! changed field (value or type), a missing or `null` key, a feed in
//! another order, another user's answer, a missing or `null` key whose
//! value is noise, each on a resource the seed chooses. Production
//! (legacy and a secondary sharing its data) answers with real noise:
//! random request ids, a served-at clock, tags in random order (configured
//! as unordered), content-hash ETags with conditional requests, and
//! per-user answers under one URI. The candidate answers in another form
//! throughout (key order, `12.0`, `+00:00`).
//!
//! The traffic is captured on `lo` by tcpdump and, at the same time, by two
//! live daemons (`shadowtap run`, with and without `--secondary`); the
//! capture is then replayed (`shadowtap replay`, with and without
//! `--secondary`). In all four:
//! - every exchange whose answer shows a planted regression is `diff`, the
//!   planted path (or `status`) is in `differences` and not in `explained`;
//! - an exchange without one is never a diff at anything but noise fields
//!   (form never makes a bug);
//! - no token or session cookie reaches an output.
//!
//! How many sound exchanges stay `diff` (their noise was not known yet) is
//! printed per seed and mode, not asserted: it depends on what was learned
//! before each exchange, which at the default concurrency depends on
//! timing. The planted regressions must be found whatever was learned, so
//! no run needs `--concurrency 1`.
//!
//! On failure the message names the seed; `SHADOWTAP_META_SEED=N cargo
//! test --test metamorphic` runs one seed. Needs live capture (root or
//! CAP_NET_RAW and tcpdump): see common/needs.rs.

#[path = "common/meta_service.rs"]
mod meta_service;
#[path = "common/meta_traffic.rs"]
mod meta_traffic;
#[path = "common/meta_world.rs"]
mod meta_world;
#[path = "common/needs.rs"]
mod needs;
#[path = "common/tcpdump.rs"]
mod tcpdump;
#[path = "common/wait.rs"]
mod wait;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use meta_service::{Role, Service};
use meta_traffic::{Client, PROBE, Sent};
use meta_world::{Plan, Regression, Resource, World};
use serde_json::Value;
use tcpdump::Tcpdump;

const BIN: &str = env!("CARGO_BIN_EXE_shadowtap");
/// Generous: the tests run in parallel on a small, busy machine.
const DEADLINE: Duration = Duration::from_secs(40);
/// Random requests on top of every resource asked twice.
const EXTRA_ASKS: usize = 40;

/// Where production differs from itself: a sound exchange may differ here
/// (until the noise is learned), nowhere else.
const NOISE_PATHS: [&str; 3] = ["/request_id", "/served_at", "header:x-request-id"];

const CONFIG: &str = r#"
[[endpoints]]
template = "GET /api/things/{id}"
unordered_arrays = ["/tags"]

[[endpoints]]
template = "GET /api/users/{user}/feed"
"#;

// ---- the daemon ---------------------------------------------------------

/// `shadowtap run` on `lo`; killed on drop.
struct Daemon {
    child: Child,
    out: PathBuf,
    stderr: PathBuf,
}

impl Daemon {
    /// Starts the daemon for the legacy port and waits for its /healthz.
    fn start(dir: &Path, name: &str, config: &Path, legacy: &Service, candidate: &Service, extra: &[&str]) -> Daemon {
        let metrics = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let (out, stderr) = (dir.join(format!("{name}.jsonl")), dir.join(format!("{name}.stderr")));
        let port = legacy.addr.port().to_string();
        let child = Command::new(BIN)
            .args(["run", "--config", s(config), "--interface", "lo", "--port", &port])
            .args(["--candidate", &candidate.url, "--out", s(&out), "--metrics", &metrics.to_string()])
            .args(extra)
            .env("SHADOWTAP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut daemon = Daemon { child, out, stderr };
        wait::wait_for_within(DEADLINE, &format!("{name}'s /healthz"), || {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("{name} exited ({status}) before being ready:\n{}", daemon.stderr_text());
            }
            match http_get(metrics, "/healthz") {
                Ok(body) if body.trim() == "ok" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
        daemon
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Has written an outcome for a request to `uri`.
    fn has_outcome_for(&self, uri: &str) -> bool {
        std::fs::read_to_string(&self.out).unwrap_or_default().contains(&format!("\"uri\":\"{uri}\""))
    }

    /// Waits for `n` outcome lines besides probes (held diffs come out once
    /// their endpoint is warm, at the latest [noise] warmup_max_s later),
    /// then stops the daemon (SIGTERM) and reads them all.
    fn outcomes_after(&mut self, n: usize) -> Vec<Value> {
        let probe = format!("\"uri\":\"{PROBE}\"");
        wait::wait_for_within(DEADLINE, &format!("{n} outcomes in {}", self.out.display()), || {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            let got = text.lines().filter(|l| !l.contains(&probe)).count();
            if got >= n { Ok(()) } else { Err(format!("{got} so far; stderr:\n{}", self.stderr_text())) }
        });
        // SAFETY: kill(2) on our own child, not reaped yet.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
        let status = wait::wait_exit_within(DEADLINE, &mut self.child, "the daemon after SIGTERM");
        assert!(status.success(), "daemon exit: {status}\n{}", self.stderr_text());
        read_outcomes(&self.out)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One GET on its own connection; the body of a 200.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_string()),
        _ => Err(std::io::Error::other(format!("not a 200: {text:?}"))),
    }
}

// ---- replay -------------------------------------------------------------

/// `shadowtap replay PCAP --candidate URL ARGS...`, which must succeed.
fn replay(dir: &Path, name: &str, pcap: &Path, config: &Path, candidate: &Service, extra: &[&str]) -> Vec<Value> {
    let out = dir.join(format!("{name}.jsonl"));
    let report = dir.join(format!("{name}.report.json"));
    let result = Command::new(BIN)
        .arg("replay")
        .arg(pcap)
        .args(["--candidate", &candidate.url, "--config", s(config), "--out", s(&out), "--report", s(&report)])
        .args(extra)
        .output()
        .unwrap();
    assert!(result.status.success(), "replay {name}: {}", String::from_utf8_lossy(&result.stderr));
    read_outcomes(&out)
}

fn read_outcomes(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}"))).collect()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

// ---- judging ------------------------------------------------------------

/// Where a planted regression shows in this exchange's answer, if it
/// shows at all: the exchange must be a diff at one of these paths (and
/// not explain it). A conditional request for a thing whose data changed
/// gets the whole answer instead of production's `304`: a diff at its
/// status, or, compared with production's last full answer (README,
/// `not_modified`), at the planted path. A noisy key missing does not
/// change the data, so not the ETag: a `304`, as production's.
fn planted_paths(regression: &Regression, conditional: bool) -> Option<Vec<&'static str>> {
    let at = match regression {
        Regression::Status(_) => return Some(vec!["status"]),
        Regression::MissingNoisy(_) | Regression::NulledNoisy(_) if conditional => return None,
        Regression::Changed(path)
        | Regression::Retyped(path)
        | Regression::Missing(path)
        | Regression::Nulled(path)
        | Regression::MissingNoisy(path)
        | Regression::NulledNoisy(path) => path,
        Regression::Reordered => "/items/0/id",
        Regression::OtherUser => "/user",
    };
    Some(if conditional { vec![at, "status"] } else { vec![at] })
}

fn paths<'a>(line: &'a Value, field: &str) -> Vec<&'a str> {
    line[field].as_array().map(|a| a.iter().filter_map(|d| d["path"].as_str()).collect()).unwrap_or_default()
}

/// What one mode got right and wrong.
#[derive(Default)]
struct Tally {
    /// What went wrong, grouped (mode, resource, regression, request):
    /// how many exchanges, and the first one's outcome line.
    failures: BTreeMap<String, (usize, String)>,
    planted: usize,
    sound: usize,
    /// Sound exchanges that stayed `diff` at noise fields only, by endpoint.
    false_diffs: BTreeMap<String, usize>,
}

impl Tally {
    fn fail(&mut self, group: String, example: String) {
        self.failures.entry(group).or_insert((0, example)).0 += 1;
    }
}

/// Checks a run's outcome lines against what was sent and planted.
fn judge(mode: &str, mut lines: Vec<Value>, sent: &[Sent], plan: &Plan) -> Tally {
    let mut tally = Tally::default();
    // Probes are not part of the traffic (a daemon may have missed the first).
    lines.retain(|line| line["uri"] != PROBE);
    // Outcomes come in completion order; `ts` (fixed-width RFC 3339) sorts
    // as the capture does, and the requests went one after the other.
    lines.sort_by(|a, b| a["ts"].as_str().cmp(&b["ts"].as_str()));
    if lines.len() != sent.len() {
        tally.fail(format!("{mode}: {} outcomes for {} exchanges", lines.len(), sent.len()), String::new());
        return tally;
    }
    for (i, (line, sent)) in lines.iter().zip(sent).enumerate() {
        let (resource, conditional) = (sent.ask.resource, sent.conditional);
        let example = format!("exchange #{i}: {line}");
        if line["uri"] != sent.path.as_str() {
            tally.fail(format!("{mode}: outcomes out of order"), example);
            continue;
        }
        match plan.get(&resource) {
            Some(regression) => {
                let Some(want) = planted_paths(regression, conditional) else { continue };
                tally.planted += 1;
                let (real, explained) = (paths(line, "differences"), paths(line, "explained"));
                let shown = want.iter().any(|p| real.contains(p) && !explained.contains(p));
                if line["outcome"] != "diff" || !shown {
                    let group = format!(
                        "{mode}: {resource:?} planted {regression:?} (conditional: {conditional}), \
                         want a diff at one of {want:?}, not explained"
                    );
                    tally.fail(group, example);
                }
            }
            None => {
                tally.sound += 1;
                let real = paths(line, "differences");
                match line["outcome"].as_str() {
                    Some("match" | "noise") => {}
                    Some("diff") if real.iter().all(|p| NOISE_PATHS.contains(p)) => {
                        let endpoint = line["endpoint"].as_str().unwrap_or("?").to_string();
                        *tally.false_diffs.entry(endpoint).or_default() += 1;
                    }
                    _ => tally.fail(format!("{mode}: sound {resource:?}, yet not match/noise/diff at noise"), example),
                }
            }
        }
    }
    tally
}

/// No bearer token or session cookie in any file of `dir`.
fn secrets_kept(dir: &Path, world: &World) -> Vec<String> {
    let secrets: Vec<&str> = world.users.iter().flat_map(|u| [u.token.as_str(), u.session.as_str()]).collect();
    let mut leaks = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pcap") {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        leaks.extend(secrets.iter().filter(|s| text.contains(*s)).map(|s| format!("{s} in {}", path.display())));
    }
    leaks
}

// ---- the test -----------------------------------------------------------

fn check_seed(seed: u64) {
    let world = World::of(seed);
    let plan = meta_world::plan(seed, &world);
    let asks = meta_traffic::traffic(seed, &world, EXTRA_ASKS);
    let legacy = Service::start(world.clone(), Role::Production);
    let secondary = Service::start(world.clone(), Role::Production);
    let candidate = Service::start(world.clone(), Role::Candidate(plan.clone()));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("shadowtap.toml");
    std::fs::write(&config, CONFIG).unwrap();

    // One pass of traffic, captured by tcpdump and by both daemons at once.
    let pcap = dir.path().join("traffic.pcap");
    let mut tcpdump = Tcpdump::start(legacy.addr.port(), &pcap);
    let mut live = Daemon::start(dir.path(), "run", &config, &legacy, &candidate, &[]);
    let with_secondary = ["--secondary", secondary.url.as_str()];
    let mut live_secondary = Daemon::start(dir.path(), "run-secondary", &config, &legacy, &candidate, &with_secondary);
    // /healthz answers once the capture is open; the readers may take a
    // moment more on a busy machine: probe until both daemons saw a probe.
    let mut client = Client::connect(legacy.addr);
    let mut probes = 0;
    wait::wait_for_within(DEADLINE, &format!("seed {seed}: both daemons capturing"), || {
        client.probe();
        probes += 1;
        match (live.has_outcome_for(PROBE), live_secondary.has_outcome_for(PROBE)) {
            (true, true) => Ok(()),
            seen => Err(format!("seen by (run, run --secondary): {seen:?}")),
        }
    });
    let sent = client.send_all(&world, &asks);
    drop(client);
    let statuses: Vec<u16> = sent.iter().map(|s| s.status).filter(|s| *s != 200 && *s != 304).collect();
    assert!(statuses.is_empty(), "seed {seed}: production answered {statuses:?}");
    let captured = probes + sent.len();
    tcpdump.finish(captured);

    let runs = [
        ("run", live.outcomes_after(sent.len())),
        ("run --secondary", live_secondary.outcomes_after(sent.len())),
        ("replay", replay(dir.path(), "replay", &pcap, &config, &candidate, &[])),
        ("replay --secondary", replay(dir.path(), "replay-secondary", &pcap, &config, &candidate, &with_secondary)),
    ];
    let mut failures = Vec::new();
    let mut summary = format!("metamorphic seed {seed}: {} exchanges, planted {plan:?}", sent.len());
    for (mode, lines) in runs {
        let tally = judge(mode, lines, &sent, &plan);
        let false_diffs: usize = tally.false_diffs.values().sum();
        summary += &format!(
            "\n  {mode}: {} planted, {} sound of which {false_diffs} false diffs {:?}",
            tally.planted, tally.sound, tally.false_diffs
        );
        failures
            .extend(tally.failures.into_iter().map(|(group, (n, example))| format!("{group}: {n}x, e.g. {example}")));
    }
    failures.extend(secrets_kept(dir.path(), &world).into_iter().map(|leak| format!("secret leaked: {leak}")));
    // Straight to stderr (not captured by the harness): the false-diff rate
    // is worth seeing on every run.
    let _ = std::io::stderr().lock().write_all(format!("{summary}\n").as_bytes());
    assert!(
        failures.is_empty(),
        "seed {seed}: {} failures (rerun with SHADOWTAP_META_SEED={seed}):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The seeds run by default: between them every variant of regression
/// is planted (checked below).
const SEEDS: [u64; 3] = [1, 2, 41];

/// The seed to run instead of the fixed ones, if asked for.
fn chosen_seed() -> Option<u64> {
    std::env::var("SHADOWTAP_META_SEED").ok().map(|s| s.parse().expect("SHADOWTAP_META_SEED: a number"))
}

/// Runs `SEEDS[index]`, or with SHADOWTAP_META_SEED only that seed (in the
/// first of these tests).
fn run_seed(index: usize) {
    let seed = SEEDS[index];
    let Some(()) = needs::met(&format!("metamorphic::seed_{seed}"), needs::live_capture()) else { return };
    match chosen_seed() {
        Some(chosen) if index == 0 => check_seed(chosen),
        Some(_) => {}
        None => check_seed(seed),
    }
}

#[test]
fn seed_1() {
    run_seed(0);
}

#[test]
fn seed_2() {
    run_seed(1);
}

#[test]
fn seed_41() {
    run_seed(2);
}

/// The planted regressions themselves: each kind at least once per seed,
/// every variant in one of the seeds, and only where they can show.
#[test]
fn every_kind_of_regression_is_planted_for_every_seed() {
    let mut variants = std::collections::BTreeSet::new();
    for seed in SEEDS {
        let world = World::of(seed);
        let plan = meta_world::plan(seed, &world);
        let kinds: std::collections::BTreeSet<&str> = plan
            .values()
            .map(|r| match r {
                Regression::Status(_) => "status",
                Regression::Changed(_) | Regression::Retyped(_) => "changed",
                Regression::Missing(_) | Regression::Nulled(_) => "missing",
                Regression::Reordered => "reordered",
                Regression::OtherUser => "other_user",
                Regression::MissingNoisy(_) | Regression::NulledNoisy(_) => "missing_noisy",
            })
            .collect();
        assert_eq!(kinds.len(), 6, "seed {seed}: {plan:?}");
        assert!(plan.iter().all(|(r, g)| *g != Regression::Reordered || matches!(r, Resource::Feed(_))));
        assert!(plan.iter().all(|(r, g)| *g != Regression::OtherUser || !matches!(r, Resource::Thing(_))));
        assert!(plan.len() < world.resources().len() * 2 / 3, "seed {seed}: most resources must stay sound");
        variants.extend(plan.values().map(|r| format!("{r:?}").split('(').next().unwrap().to_string()));
    }
    assert_eq!(variants.len(), 9, "every variant planted by one of {SEEDS:?}: {variants:?}");
}
