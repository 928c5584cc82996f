//! `shadowtap demo`: the whole product in one minute, on loopback. A small
//! "legacy" JSON service and its "candidate" rewrite start here; the
//! candidate answers some requests only in another form (timestamp offset,
//! key order, `9` vs `9.0`: equal) and carries planted regressions (a wrong
//! field, a missing field, a 500, a slow endpoint). Traffic to the legacy
//! service is captured live on `lo` (or read from the bundled capture when
//! live capture is not permitted), replayed to the candidate, and the
//! report printed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;

use crate::pipeline::{self, Source};
use crate::replay::config::Config;
use crate::report;
use crate::topology::build::{self, Consumer, SourceChoice};
use crate::topology::saved::replay_pipeline;

mod services;

pub use services::{Flavor, answer, demo_requests, send_traffic, start_service};

fn bundled_capture() -> PathBuf {
    let beside_binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().map(|a| a.join("pcaps/demo.pcap")).find(|p| p.exists()));
    beside_binary.unwrap_or_else(|| PathBuf::from("pcaps/demo.pcap"))
}

/// Runs the demo; prints the report table to stdout.
pub fn run(requests: usize, offline: bool, legacy_port: u16) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (legacy, candidate) = runtime.block_on(async {
        let legacy = start_service(Flavor::Legacy, legacy_port).await?;
        let candidate = start_service(Flavor::Candidate, 0).await?;
        Ok::<_, std::io::Error>((legacy, candidate))
    })?;
    eprintln!("legacy service on http://{legacy}, candidate on http://{candidate}");
    let stop = Arc::new(AtomicBool::new(false));
    let mut config = Config::default();
    config.candidate.url = Some(format!("http://{candidate}"));
    config.candidate.concurrency = 4;
    let live = SourceChoice::Live { interface: "lo".into(), filter: format!("tcp port {}", legacy.port()) };
    let opened = if offline { None } else { Some(live.clone().open(&config, stop.clone())) };
    let (choice, source) = match opened {
        Some(Ok(source)) => {
            eprintln!(
                "capturing live on lo, tcp port {}; sending {requests} requests to the legacy service",
                legacy.port()
            );
            (live, source)
        }
        failed => {
            if let Some(Err(e)) = failed {
                eprintln!("live capture not possible ({e}); using the bundled capture");
            }
            let path = bundled_capture();
            eprintln!("replaying the bundled capture {}", path.display());
            let files = SourceChoice::Files(vec![path]);
            (files.clone(), files.open(&config, stop.clone())?)
        }
    };
    let is_live = matches!(source, Source::Live(_));
    let running = pipeline::start(source, build::pipeline_config(&config, &choice, Consumer::Lanes, None));
    if is_live {
        runtime.block_on(send_traffic(legacy, requests));
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let replayer = build::replayer(&config).context("candidate client")?;
    let schedule = build::schedule(&config, 0);
    let options = build::report_options(&config);
    let out_path = std::env::temp_dir().join("shadowtap-demo-outcomes.jsonl");
    let sink = Box::new(std::io::BufWriter::new(std::fs::File::create(&out_path)?));
    let finished = replay_pipeline(running, replayer, schedule, sink, options)?;
    drop(runtime);
    println!("{}", report::table(&finished.report));
    println!("every outcome, with its differences: {}", out_path.display());
    println!(
        "what to look for: the form-only differences (timestamp offsets, key order, 9 vs 9.0) are counted as equivalences, not diffs;"
    );
    println!(
        "the planted regressions show as diffs (/email, /items/*/currency, status 500) and SLOWER (search); POSTs are skipped."
    );
    Ok(())
}
