//! The demo's two services on loopback: a small "legacy" JSON service and
//! its "candidate" rewrite (answers equal in content, some only in another
//! form, and planted regressions), and the traffic sent to the legacy one.
//! Test fixtures use them too; nothing in the product depends on them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flavor {
    Legacy,
    Candidate,
}

/// The JSON answer of either service for a path.
pub fn answer(flavor: Flavor, method: &str, path_and_query: &str) -> (u16, String, &'static str) {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let legacy = flavor == Flavor::Legacy;
    match (method, segments.as_slice()) {
        ("GET", ["health"]) => (200, "ok\n".into(), "text/plain"),
        ("GET", ["api", "users", id]) => match id.parse::<u64>() {
            Ok(id) => (200, user(flavor, id), "application/json"),
            Err(_) => (404, r#"{"error":"not found"}"#.into(), "application/json"),
        },
        ("GET", ["api", "orders", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            if !legacy && id % 10 == 5 {
                // Planted regression: the rewrite fails on these orders.
                return (500, r#"{"error":"internal"}"#.into(), "application/json");
            }
            (200, format!(r#"{{"order":{id},"total":{}.50,"status":"shipped"}}"#, id * 3), "application/json")
        }
        ("GET", ["api", "products"]) => {
            let page: u64 = query.strip_prefix("page=").and_then(|p| p.parse().ok()).unwrap_or(1);
            let items: Vec<String> = (0..3)
                .map(|i| {
                    let id = page * 10 + i;
                    if legacy {
                        format!(r#"{{"id":{id},"price":{}.0,"currency":"EUR"}}"#, id + 5)
                    } else {
                        // Planted regression: the currency is gone; the
                        // price as 15 instead of 15.0 is only form.
                        format!(r#"{{"price":{},"id":{id}}}"#, id + 5)
                    }
                })
                .collect();
            (200, format!(r#"{{"page":{page},"items":[{}]}}"#, items.join(",")), "application/json")
        }
        ("GET", ["api", "search"]) => (200, format!(r#"{{"query":"{query}","hits":[]}}"#), "application/json"),
        ("POST", ["api", "comments"]) => (201, r#"{"id":500001,"created":true}"#.into(), "application/json"),
        _ => (404, r#"{"error":"not found"}"#.into(), "application/json"),
    }
}

fn user(flavor: Flavor, id: u64) -> String {
    match flavor {
        Flavor::Legacy => format!(
            r#"{{"id":{id},"name":"user{id}","email":"user{id}@example.com","created_at":"2024-01-15T10:30:00Z","rating":9,"tags":["a","b"]}}"#
        ),
        Flavor::Candidate => {
            // Same content, other form: keys reordered, +00:00 offset, 9.0.
            // Planted regression: every 7th user's email is wrong.
            let email =
                if id.is_multiple_of(7) { format!("user{id}@example.org") } else { format!("user{id}@example.com") };
            format!(
                r#"{{"rating":9.0,"tags":["a","b"],"created_at":"2024-01-15T12:30:00+02:00","email":"{email}","name":"user{id}","id":{id}}}"#
            )
        }
    }
}

async fn serve_one(flavor: Flavor, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().as_str().to_string();
    let target = req.uri().path_and_query().map_or("/".to_string(), |p| p.as_str().to_string());
    let _ = req.into_body().collect().await;
    if flavor == Flavor::Candidate && target.starts_with("/api/search") {
        // Planted latency regression.
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let (status, body, content_type) = answer(flavor, &method, &target);
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert("content-type", hyper::header::HeaderValue::from_static(content_type));
    headers.insert(
        "server",
        hyper::header::HeaderValue::from_static(if flavor == Flavor::Legacy { "legacy/1.0" } else { "rewrite/2.0" }),
    );
    Ok(response)
}

/// Starts a demo service on 127.0.0.1:`port` (0: any free port).
pub async fn start_service(flavor: Flavor, port: u16) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| serve_one(flavor, req));
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(addr)
}

/// The demo's traffic: a fixed mix of reads and a few writes.
pub fn demo_requests(n: usize) -> Vec<(&'static str, String)> {
    (0..n)
        .map(|i| match i % 10 {
            0..=3 => ("GET", format!("/api/users/{}", i % 50 + 1)),
            4 | 5 => ("GET", format!("/api/orders/{}", i % 40 + 1)),
            6 => ("GET", format!("/api/products?page={}", i % 5 + 1)),
            7 => ("GET", format!("/api/search?q=item{}", i % 9)),
            8 => ("GET", "/health".to_string()),
            _ => ("POST", "/api/comments".to_string()),
        })
        .collect()
}

/// Sends the demo traffic to `target` over a few keep-alive connections.
pub async fn send_traffic(target: SocketAddr, n: usize) {
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let requests = demo_requests(n);
    for chunk in requests.chunks(8) {
        let mut tasks = Vec::new();
        for (method, path) in chunk {
            let body = if *method == "POST" { Bytes::from_static(br#"{"text":"hello"}"#) } else { Bytes::new() };
            let request = Request::builder()
                .method(*method)
                .uri(format!("http://{target}{path}"))
                .header("content-type", "application/json")
                .body(Full::new(body))
                .expect("valid demo request");
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                if let Ok(response) = client.request(request).await {
                    let _ = response.into_body().collect().await;
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}
