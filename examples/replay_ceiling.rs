//! How fast can the replay client stack (tokio + hyper, 2 worker threads,
//! like `shadowtap replay`) send GETs to a server, with nothing else going
//! on: no capture reading, no comparison, no outcome writing. A ceiling to
//! compare `bench/replay.sh`'s figures with.
//!
//! ```sh
//! cargo run --release --example replay_ceiling -- http://127.0.0.1:PORT \
//!     [--mode pool|conn] [--concurrency 32] [--requests 100000] [--threads 2] [PATH...]
//! ```
//!
//! - `pool`: hyper-util's legacy `Client` (keep-alive pool), as
//!   `src/replay/client.rs` uses it, one `tokio::spawn` per request under a
//!   semaphore, like `topology::dispatch::run`;
//! - `conn`: C long-lived tasks, each owning one `hyper::client::conn::http1`
//!   connection and sending its share of the requests in a loop.
//!
//! Paths default to the ones `bench/replay.sh` serves
//! (`/api/users/1..50.json`, `/api/products/1..20.json`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

struct Args {
    base: String,
    mode: String,
    concurrency: usize,
    requests: usize,
    threads: usize,
    paths: Vec<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        base: String::new(),
        mode: "pool".into(),
        concurrency: 32,
        requests: 100_000,
        threads: 2,
        paths: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match a.as_str() {
            "--mode" => args.mode = value("--mode"),
            "--concurrency" => args.concurrency = value("--concurrency").parse().expect("a number"),
            "--requests" => args.requests = value("--requests").parse().expect("a number"),
            "--threads" => args.threads = value("--threads").parse().expect("a number"),
            p if p.starts_with('/') => args.paths.push(p.to_string()),
            u if args.base.is_empty() => args.base = u.trim_end_matches('/').to_string(),
            other => panic!("unexpected argument {other:?}"),
        }
    }
    assert!(!args.base.is_empty(), "usage: replay_ceiling http://HOST:PORT [--mode pool|conn] ...");
    if args.paths.is_empty() {
        args.paths = (1..=50)
            .map(|i| format!("/api/users/{i}.json"))
            .chain((1..=20).map(|i| format!("/api/products/{i}.json")))
            .collect();
    }
    args
}

async fn run_pool(args: &Args, uris: Arc<Vec<Uri>>) -> usize {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let permits = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let bytes = Arc::new(AtomicUsize::new(0));
    for i in 0..args.requests {
        let permit = permits.clone().acquire_owned().await.expect("open");
        let (client, uris, bytes) = (client.clone(), uris.clone(), bytes.clone());
        tokio::spawn(async move {
            let uri = uris[i % uris.len()].clone();
            let response = client.get(uri).await.expect("request");
            let body = response.into_body().collect().await.expect("body").to_bytes();
            bytes.fetch_add(body.len(), Ordering::Relaxed);
            drop(permit);
        });
    }
    let _ = permits.acquire_many(args.concurrency as u32).await.expect("open");
    bytes.load(Ordering::Relaxed)
}

async fn run_conn(args: &Args, uris: Arc<Vec<Uri>>) -> usize {
    let authority = uris[0].authority().expect("authority").to_string();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (uris, next, authority, total) = (uris.clone(), next.clone(), authority.clone(), args.requests);
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&authority).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            let mut bytes = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let uri = &uris[i % uris.len()];
                let request = hyper::Request::get(uri.path())
                    .header(hyper::header::HOST, authority.as_str())
                    .body(Empty::new())
                    .expect("request");
                sender.ready().await.expect("ready");
                let response = sender.send_request(request).await.expect("response");
                bytes += response.into_body().collect().await.expect("body").to_bytes().len();
            }
            bytes
        }));
    }
    let mut bytes = 0;
    for t in tasks {
        bytes += t.await.expect("task");
    }
    bytes
}

fn main() {
    let args = parse_args();
    let uris: Arc<Vec<Uri>> =
        Arc::new(args.paths.iter().map(|p| format!("{}{p}", args.base).parse().expect("a URL")).collect());
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build().expect("runtime");
    let started = Instant::now();
    let bytes = runtime.block_on(async {
        match args.mode.as_str() {
            "pool" => run_pool(&args, uris).await,
            "conn" => run_conn(&args, uris).await,
            other => panic!("--mode pool or conn, not {other:?}"),
        }
    });
    let secs = started.elapsed().as_secs_f64();
    println!(
        "mode {} concurrency {} threads {}: {} requests in {:.3} s = {:.0} requests/s ({:.1} MB of bodies)",
        args.mode,
        args.concurrency,
        args.threads,
        args.requests,
        secs,
        args.requests as f64 / secs,
        bytes as f64 / 1e6
    );
}
