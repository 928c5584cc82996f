//! A seeded JSON service for the metamorphic test (`tests/metamorphic.rs`):
//! the same code runs as the legacy primary, a secondary legacy instance
//! and a candidate with planted regressions.
//!
//! In: requests, and the seeded data and regressions of `meta_world.rs`
//! (which the test crate declares as `mod meta_world` too). Out: HTTP
//! answers that carry the noise production really has against itself, so
//! that shadowtap has something to learn:
//! - random request ids (`request_id` in the body, `X-Request-Id` header)
//!   and a served-at clock (`served_at`, nanoseconds), different on every
//!   answer of every instance;
//! - validators: `ETag` is a hash of the resource's data (same data, same
//!   ETag, on every instance), `Last-Modified` its update time; a request
//!   with a matching `If-None-Match` gets `304`;
//! - per-user answers: `/api/me` depends on the `session` cookie and
//!   `/api/users/{u}/feed` on the `Authorization` bearer token (one URI,
//!   different answers per user);
//! - arrays: a thing's `tags` come in a random order on every answer (the
//!   test configures them as unordered), a feed's `items` newest first
//!   (order matters).
//!
//! Routes: `GET /api/things/{id}`, `GET /api/users/{u}/feed`,
//! `GET /api/me`. The candidate answers in another form throughout (keys in
//! reverse order, whole numbers as `12.0`, times with `+00:00`): equal in
//! substance, never a diff. Its planted regressions ([`Regression`]) are
//! real bugs, each on one resource.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};

use super::meta_world::{Plan, Regression, Resource, THINGS, World};

/// What an instance is: production (legacy or secondary) or the candidate.
#[derive(Clone, Debug)]
pub enum Role {
    Production,
    /// Another form throughout, and these regressions.
    Candidate(Plan),
}

struct State {
    world: World,
    role: Role,
    answers: AtomicU64,
    log: Mutex<Vec<String>>,
}

/// A running instance; it lives as long as the test process.
pub struct Service {
    pub addr: SocketAddr,
    pub url: String,
    state: Arc<State>,
}

impl Service {
    /// Starts an instance on 127.0.0.1 (any free port) on its own runtime
    /// thread.
    pub fn start(world: World, role: Role) -> Service {
        let state = Arc::new(State { world, role, answers: AtomicU64::new(0), log: Mutex::new(Vec::new()) });
        let (tx, rx) = std::sync::mpsc::channel();
        let serving = state.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                while let Ok((stream, _)) = listener.accept().await {
                    let state = serving.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let state = state.clone();
                            async move { Ok::<_, Infallible>(handle(&state, &req)) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        let addr = rx.recv().unwrap();
        Service { addr, url: format!("http://{addr}"), state }
    }

    /// `GET /path` of every request this instance was asked, in order.
    pub fn seen(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }
}

fn header<'a>(req: &'a Request<hyper::body::Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The user a request speaks for: the bearer token for feeds, the
/// `session` cookie for `/api/me`.
fn user_of(world: &World, req: &Request<hyper::body::Incoming>, resource: Resource) -> Option<usize> {
    let users = &world.users;
    match resource {
        Resource::Feed(n) => {
            let token = header(req, "authorization")?.strip_prefix("Bearer ")?;
            (users[n].token == token).then_some(n)
        }
        Resource::Me(_) => {
            let cookies = header(req, "cookie")?;
            let session = cookies.split(';').find_map(|c| c.trim().strip_prefix("session="))?;
            users.iter().position(|u| u.session == session)
        }
        Resource::Thing(_) => None,
    }
}

/// Which resource a path names (`/api/me` is resolved by its cookie).
fn resource_of(world: &World, path: &str) -> Option<Resource> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "things", id] => id.parse().ok().filter(|id| (1..=THINGS).contains(id)).map(Resource::Thing),
        ["api", "users", name, "feed"] => world.users.iter().position(|u| u.name == *name).map(Resource::Feed),
        ["api", "me"] => Some(Resource::Me(usize::MAX)),
        _ => None,
    }
}

fn handle(state: &State, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    state.log.lock().unwrap().push(format!("{} {path}", req.method()));
    let world = &state.world;
    let resource = match resource_of(world, &path) {
        Some(Resource::Me(_)) => match user_of(world, req, Resource::Me(0)) {
            Some(n) => Resource::Me(n),
            None => return answer(401, json!({"error": "who are you?"}), Vec::new()),
        },
        Some(Resource::Feed(n)) if user_of(world, req, Resource::Feed(n)).is_none() => {
            return answer(401, json!({"error": "not your feed"}), Vec::new());
        }
        Some(resource) if req.method() == hyper::Method::GET => resource,
        _ => return answer(404, json!({"error": "not found"}), Vec::new()),
    };
    let regression = match &state.role {
        Role::Candidate(plan) => plan.get(&resource),
        Role::Production => None,
    };
    if let Some(Regression::Status(status)) = regression {
        return answer(*status, json!({"error": "something went wrong"}), Vec::new());
    }
    let mut data = match (regression, resource) {
        (Some(Regression::OtherUser), Resource::Feed(n)) => data_of(world, Resource::Feed((n + 1) % world.users.len())),
        (Some(Regression::OtherUser), Resource::Me(n)) => data_of(world, Resource::Me((n + 1) % world.users.len())),
        _ => data_of(world, resource),
    };
    if let Some(regression) = regression {
        plant(&mut data, regression);
    }
    let mut headers = Vec::new();
    if let Resource::Thing(id) = resource {
        let etag = etag_of(&data);
        let updated = world.things[id as usize - 1].updated;
        let last_modified = chrono::DateTime::from_timestamp(updated, 0).unwrap();
        headers.push(("last-modified", last_modified.format("%a, %d %b %Y %H:%M:%S GMT").to_string()));
        let fresh = header(req, "if-none-match") == Some(etag.as_str());
        headers.push(("etag", etag));
        if fresh {
            return with_request_id(state, Response::new(Full::new(Bytes::new())), 304, headers);
        }
    }
    let candidate = matches!(state.role, Role::Candidate(_));
    let body = render(state, data, regression, candidate);
    answer_from(state, 200, body, headers)
}

/// The resource's data, without noise, in production's form.
fn data_of(world: &World, resource: Resource) -> Map<String, Value> {
    let value = match resource {
        Resource::Thing(id) => {
            let t = &world.things[id as usize - 1];
            json!({"id": t.id, "name": t.name, "price": t.price, "stock": t.stock, "tags": t.tags,
                   "owner": t.owner})
        }
        Resource::Feed(n) => {
            let u = &world.users[n];
            let items: Vec<Value> = u.feed.iter().map(|(id, title)| json!({"id": id, "title": title})).collect();
            json!({"user": u.name, "items": items, "unread": u.unread})
        }
        Resource::Me(n) => {
            let u = &world.users[n];
            json!({"user": u.name, "display_name": u.display_name, "plan": u.plan})
        }
    };
    match value {
        Value::Object(map) => map,
        _ => unreachable!("objects above"),
    }
}

/// Applies a regression to the data (noise is added later, and a missing
/// noisy key is left out then).
fn plant(data: &mut Map<String, Value>, regression: &Regression) {
    match regression {
        Regression::Changed(path) => {
            let key = &path[1..];
            let wrong = match &data[key] {
                Value::Number(n) => json!(n.as_u64().unwrap() + 1),
                Value::String(s) => json!(format!("{s} (v2)")),
                other => panic!("no wrong value for {other}"),
            };
            data.insert(key.to_string(), wrong);
        }
        Regression::Retyped(path) => {
            let key = &path[1..];
            let text = data[key].to_string();
            data.insert(key.to_string(), json!(text));
        }
        Regression::Missing(path) => {
            data.remove(&path[1..]);
        }
        Regression::Nulled(path) => {
            data.insert(path[1..].to_string(), Value::Null);
        }
        Regression::Reordered => {
            if let Some(Value::Array(items)) = data.get_mut("items") {
                items.reverse();
            }
        }
        Regression::Status(_) | Regression::OtherUser | Regression::MissingNoisy(_) | Regression::NulledNoisy(_) => {}
    }
}

/// A hash of the data: the same data gives the same ETag on every instance
/// (and in every form).
fn etag_of(data: &Map<String, Value>) -> String {
    let mut h = std::hash::DefaultHasher::new();
    let sorted: BTreeMap<&String, String> = data.iter().map(|(k, v)| (k, v.to_string())).collect();
    sorted.hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

/// The answer's body: data plus noise, in the instance's form. Tags come
/// in a random order every time.
fn render(state: &State, mut data: Map<String, Value>, regression: Option<&Regression>, candidate: bool) -> Value {
    let n = state.answers.fetch_add(1, Ordering::Relaxed);
    let random = std::hash::RandomState::new();
    if let Some(Value::Array(tags)) = data.get_mut("tags") {
        tags.sort_by_key(|t| random.hash_one((n, t.as_str())));
    }
    let request_id = format!("{:016x}", random.hash_one(n));
    let served_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, !candidate);
    data.insert("request_id".into(), json!(request_id));
    data.insert("served_at".into(), json!(served_at));
    match regression {
        Some(Regression::MissingNoisy(path)) => {
            data.remove(&path[1..]);
        }
        Some(Regression::NulledNoisy(path)) => {
            data.insert(path[1..].to_string(), Value::Null);
        }
        _ => {}
    }
    if !candidate {
        return Value::Object(data);
    }
    // Another form, same substance: keys in reverse order, whole numbers
    // written as decimals.
    let mut other = Map::new();
    for (key, value) in data.into_iter().rev() {
        let value = match value {
            Value::Number(n) if n.is_u64() => json!(n.as_u64().unwrap() as f64),
            v => v,
        };
        other.insert(key, value);
    }
    Value::Object(other)
}

fn answer(status: u16, body: Value, headers: Vec<(&'static str, String)>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    response
}

fn answer_from(state: &State, status: u16, body: Value, headers: Vec<(&'static str, String)>) -> Response<Full<Bytes>> {
    with_request_id(state, answer(status, body, Vec::new()), status, headers)
}

/// Sets status and headers, plus a random `X-Request-Id` (noise).
fn with_request_id(
    state: &State,
    mut response: Response<Full<Bytes>>,
    status: u16,
    headers: Vec<(&'static str, String)>,
) -> Response<Full<Bytes>> {
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    let n = state.answers.fetch_add(1, Ordering::Relaxed);
    let id = format!("{:016x}", std::hash::RandomState::new().hash_one(n));
    response.headers_mut().insert("x-request-id", id.parse().unwrap());
    for (name, value) in headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}
