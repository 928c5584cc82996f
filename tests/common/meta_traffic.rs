//! The metamorphic test's traffic: generated from the seed ([`traffic`]:
//! repeats, per-user requests, conditional requests) and sent by a
//! blocking keep-alive client that speaks for each user (bearer token or
//! session cookie) and remembers ETags for `If-None-Match`.
//! The test crate including it declares `mod meta_world` too.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::meta_world::{Resource, Rng, World};

/// One request of the generated traffic.
#[derive(Clone, Copy, Debug)]
pub struct Ask {
    pub resource: Resource,
    /// Sent with `If-None-Match` of the last ETag seen for it, if any.
    pub conditional: bool,
}

/// The traffic for a seed: every resource twice in a shuffled order, then
/// random ones; a third of them asked again at once (repeats, from which
/// shadowtap learns noise), some things asked conditionally.
pub fn traffic(seed: u64, world: &World, extra: usize) -> Vec<Ask> {
    let mut rng = Rng::new(seed.wrapping_mul(131).wrapping_add(3));
    let resources = world.resources();
    let mut order: Vec<Resource> = resources.iter().chain(&resources).copied().collect();
    rng.shuffle(&mut order);
    order.extend((0..extra).map(|_| rng.pick(&resources)));
    let mut asks = Vec::new();
    for resource in order {
        let conditional = matches!(resource, Resource::Thing(_)) && rng.chance(20);
        asks.push(Ask { resource, conditional });
        if rng.chance(33) {
            asks.push(Ask { resource, conditional });
        }
    }
    asks
}

/// The path [`Client::probe`] asks for.
pub const PROBE: &str = "/api/probe";

/// The request line's path of a resource.
pub fn path_of(world: &World, resource: Resource) -> String {
    match resource {
        Resource::Thing(id) => format!("/api/things/{id}"),
        Resource::Feed(n) => format!("/api/users/{}/feed", world.users[n].name),
        Resource::Me(_) => "/api/me".into(),
    }
}

/// What a sent request was, as the capture will show it.
#[derive(Clone, Debug)]
pub struct Sent {
    pub ask: Ask,
    pub path: String,
    /// `If-None-Match` was sent (an ETag was known).
    pub conditional: bool,
    pub status: u16,
}

/// A blocking HTTP/1.1 client on one keep-alive connection: requests go
/// one after the other, so the capture holds them in this order.
pub struct Client {
    host: String,
    reader: BufReader<TcpStream>,
    etags: BTreeMap<Resource, String>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream.set_nodelay(true).unwrap();
        Client { host: addr.to_string(), reader: BufReader::new(stream), etags: BTreeMap::new() }
    }

    /// Sends every ask, each with its user's credentials.
    pub fn send_all(&mut self, world: &World, asks: &[Ask]) -> Vec<Sent> {
        asks.iter().map(|ask| self.send(world, *ask)).collect()
    }

    fn send(&mut self, world: &World, ask: Ask) -> Sent {
        let path = path_of(world, ask.resource);
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n", self.host);
        match ask.resource {
            Resource::Feed(n) => head += &format!("Authorization: Bearer {}\r\n", world.users[n].token),
            Resource::Me(n) => head += &format!("Cookie: theme=dark; session={}\r\n", world.users[n].session),
            Resource::Thing(_) => {}
        }
        let etag = self.etags.get(&ask.resource).filter(|_| ask.conditional);
        if let Some(etag) = etag {
            head += &format!("If-None-Match: {etag}\r\n");
        }
        let conditional = etag.is_some();
        let (status, headers) = self.exchange(&head);
        if let Some(etag) = headers.get("etag") {
            self.etags.insert(ask.resource, etag.clone());
        }
        Sent { ask, path, conditional, status }
    }

    /// `GET /api/probe` (no such resource: a 404), to see that whoever
    /// captures is capturing before the traffic starts.
    pub fn probe(&mut self) {
        let head = format!("GET {PROBE} HTTP/1.1\r\nHost: {}\r\n", self.host);
        assert_eq!(self.exchange(&head).0, 404);
    }

    /// Sends a request head (no body), reads the answer: status, headers.
    fn exchange(&mut self, head: &str) -> (u16, BTreeMap<String, String>) {
        self.reader.get_mut().write_all(format!("{head}\r\n").as_bytes()).unwrap();
        let (status, headers) = self.read_head();
        let length = headers.get("content-length").map_or(0, |l| l.parse().unwrap());
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        (status, headers)
    }

    /// Status and headers (lowercase names) of the next answer.
    fn read_head(&mut self) -> (u16, BTreeMap<String, String>) {
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
        let mut headers = BTreeMap::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                return (status, headers);
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
            }
        }
    }
}
