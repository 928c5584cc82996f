//! A tiny "items" JSON service (hyper 1 + hyper-util, like `src/demo.rs`)
//! for the verdict tests, and a blocking keep-alive HTTP/1.1 client to send
//! it traffic.
//!
//! Routes:
//! - `GET /items/{id}`: `{"id","name","price","request_id","served_at"}`,
//!   where `request_id` is random hex and `served_at` the time of the answer
//!   (RFC 3339, nanoseconds): two answers to the same request never agree
//!   there, which is the noise the tests want shadowtap to learn. 404 when
//!   missing.
//! - `POST /items` with `{"name","price"}`: 201 `{"id","name","price",
//!   "created_at"}`, the id from the datastore's sequence (legacy 500001...,
//!   candidate 100001...), `created_at` the time of the write, which `GET`
//!   answers carry too (seeded items: 2024-01-01). How an instance writes
//!   times is its [`Stamps`]: production in whole seconds with `Z`, the
//!   candidate with `+00:00` (both right); a candidate can be given a
//!   clock an hour off, or stamp the time into another field (both bugs).
//! - `PUT /admin/items/{id}` with `{"price"}`: changes the price (the tests
//!   use it between capture and replay; it is never captured).
//!
//! A datastore ([`Store`]) is shared by the instances given the same one:
//! the legacy primary and its secondary share one; the candidate has its own
//! sister store. Every instance logs `METHOD /path` of what it was asked.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

pub const LEGACY_FIRST_ID: u64 = 500_001;
pub const CANDIDATE_FIRST_ID: u64 = 100_001;

#[derive(Clone, Debug)]
pub struct Item {
    pub name: String,
    pub price: u64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// How an instance writes the times it stamps.
#[derive(Clone, Copy, Debug)]
pub struct Stamps {
    /// `2026-11-28T16:25:25Z` (false) or `2026-11-28T16:25:25+00:00` (true).
    pub offset_form: bool,
    /// Added to the clock when stamping a write (a bug when not 0).
    pub clock_offset_s: i64,
    /// The field the time goes to (a bug when not `created_at`).
    pub field: &'static str,
}

impl Stamps {
    pub const PRODUCTION: Stamps = Stamps { offset_form: false, clock_offset_s: 0, field: "created_at" };
    pub const CANDIDATE: Stamps = Stamps { offset_form: true, ..Stamps::PRODUCTION };

    fn format(&self, t: chrono::DateTime<chrono::Utc>) -> String {
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, !self.offset_form)
    }
}

fn seeded_time() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_704_067_200, 0).expect("2024-01-01")
}

/// One datastore: the items and the id sequence.
#[derive(Debug)]
pub struct Db {
    pub items: HashMap<u64, Item>,
    pub next_id: u64,
}

pub type Store = Arc<Mutex<Db>>;

/// A store holding `item {id}` at price `id * 10` for each id, whose
/// sequence starts at `first_id`.
pub fn seeded(first_id: u64, ids: impl IntoIterator<Item = u64>) -> Store {
    let items = ids
        .into_iter()
        .map(|id| (id, Item { name: format!("item {id}"), price: id * 10, created_at: seeded_time() }))
        .collect();
    Arc::new(Mutex::new(Db { items, next_id: first_id }))
}

struct State {
    store: Store,
    log: Arc<Mutex<Vec<String>>>,
    /// Planted regression: `name` uppercased for ids divisible by 5.
    regression: bool,
    stamps: Stamps,
    answers: AtomicU64,
}

/// A running instance; it lives as long as the test process.
pub struct Service {
    pub addr: SocketAddr,
    pub url: String,
    pub store: Store,
    log: Arc<Mutex<Vec<String>>>,
}

impl Service {
    /// Starts an instance on 127.0.0.1 (any free port) over `store`, on its
    /// own runtime thread; with `regression`, the planted bug is on (a
    /// "fixed" candidate is one started without it).
    pub fn start(store: Store, regression: bool) -> Service {
        Service::start_stamped(store, regression, Stamps::PRODUCTION)
    }

    /// [`Service::start`], writing times as `stamps` says.
    pub fn start_stamped(store: Store, regression: bool, stamps: Stamps) -> Service {
        let log = Arc::new(Mutex::new(Vec::new()));
        let answers = AtomicU64::new(0);
        let state = Arc::new(State { store: store.clone(), log: log.clone(), regression, stamps, answers });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                while let Ok((stream, _)) = listener.accept().await {
                    let state = state.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        let addr = rx.recv().unwrap();
        Service { addr, url: format!("http://{addr}"), store, log }
    }

    /// `METHOD /path` of every request this instance was asked, in order.
    pub fn seen(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

async fn handle(state: Arc<State>, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    state.log.lock().unwrap().push(format!("{method} {path}"));
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let id = |s: &str| s.parse::<u64>().ok();
    let not_found = (404, json!({"error": "not found"}));
    let (status, json) = match (method.as_str(), segments.as_slice()) {
        ("GET", ["items", n]) => match id(n)
            .and_then(|n| state.store.lock().unwrap().items.get(&n).map(|i| (n, i.clone())))
        {
            Some((n, item)) => {
                let name = if state.regression && n.is_multiple_of(5) { item.name.to_uppercase() } else { item.name };
                let answer = state.answers.fetch_add(1, Ordering::Relaxed);
                let request_id = format!("{:016x}", std::hash::RandomState::new().hash_one((answer, n)));
                let served_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                let created_at = state.stamps.format(item.created_at);
                let answer = json!({"id": n, "name": name, "price": item.price, "request_id": request_id,
                    "served_at": served_at, state.stamps.field: created_at});
                (200, answer)
            }
            None => not_found,
        },
        ("POST", ["items"]) => match serde_json::from_slice::<Value>(&body) {
            Ok(v) if v["name"].is_string() && v["price"].is_u64() => {
                let created_at = chrono::Utc::now() + chrono::TimeDelta::seconds(state.stamps.clock_offset_s);
                let name = v["name"].as_str().unwrap().to_string();
                let item = Item { name, price: v["price"].as_u64().unwrap(), created_at };
                let mut db = state.store.lock().unwrap();
                let n = db.next_id;
                db.next_id += 1;
                db.items.insert(n, item.clone());
                let created_at = state.stamps.format(item.created_at);
                (201, json!({"id": n, "name": item.name, "price": item.price, state.stamps.field: created_at}))
            }
            _ => (400, json!({"error": "want {\"name\":string,\"price\":integer}"})),
        },
        ("PUT", ["admin", "items", n]) => {
            let price = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["price"].as_u64());
            let mut db = state.store.lock().unwrap();
            match (id(n).and_then(|n| db.items.get_mut(&n).map(|i| (n, i))), price) {
                (Some((n, item)), Some(price)) => {
                    item.price = price;
                    (200, json!({"id": n, "price": price}))
                }
                (None, _) => not_found,
                (_, None) => (400, json!({"error": "want {\"price\":integer}"})),
            }
        }
        _ => not_found,
    };
    let mut response = Response::new(Full::new(Bytes::from(json.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    Ok(response)
}

/// A blocking HTTP/1.1 client on one keep-alive connection: requests go
/// one after the other, so the capture holds them in this order.
pub struct Client {
    host: String,
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream.set_nodelay(true).unwrap();
        Client { host: addr.to_string(), reader: BufReader::new(stream) }
    }

    /// Sends one request; the answer's status and JSON body.
    pub fn request(&mut self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n", self.host);
        let body = body.map(Value::to_string).unwrap_or_default();
        if !body.is_empty() {
            head += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len());
        }
        let stream = self.reader.get_mut();
        stream.write_all(format!("{head}\r\n{body}").as_bytes()).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut bytes = vec![0; length];
        self.reader.read_exact(&mut bytes).unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub fn get(&mut self, path: &str) -> (u16, Value) {
        self.request("GET", path, None)
    }
}
