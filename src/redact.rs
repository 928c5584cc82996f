//! Secrets out of every output. In: values about to be written (outcome
//! lines, the report's noise examples, the HTML and HAR views, `pairs
//! --redact`); out: the same with each secret value replaced by
//! `[redacted:xxxxxxxx]`, the first 4 bytes of HMAC-SHA256(key, value) in
//! hex. Equal values get equal redactions, so "the two session cookies
//! differ" still shows; the value itself never does.
//!
//! Secret: the headers Authorization, Proxy-Authorization, Cookie,
//! Set-Cookie and `[redact] headers`; the body fields at `[redact]
//! json_paths` (JSON pointers, `*` one segment, `**` any number, a field
//! below a listed one is secret too). The key is `[redact] key` when set
//! (the same on every tap of a fleet makes redactions comparable across
//! hosts and runs), else random per run. Redaction is only ever applied to
//! what goes out: the candidate is sent the real values.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crossbeam_channel::Receiver;

use crate::exchange::{Exchange, Header, Payload};

/// Headers that are secret whatever the configuration says.
pub const SECRET_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "set-cookie"];

/// What a redacted value starts with.
pub const MARK: &str = "[redacted";

/// `[redact]` in the configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactConfig {
    /// More header names to redact (any case), besides [`SECRET_HEADERS`].
    pub headers: Vec<String>,
    /// JSON pointers of body fields to redact.
    pub json_paths: Vec<String>,
    /// HMAC key; empty: a random key per run.
    pub key: String,
}

/// The configured secrets and the key.
pub struct Redactor {
    headers: Vec<String>,
    json_paths: Vec<Vec<String>>,
    key: [u8; 64],
}

static INSTALLED: OnceLock<Redactor> = OnceLock::new();

/// Sets the process's redactor from the configuration; the first call
/// wins (one configuration per process).
pub fn install(config: &RedactConfig) {
    let _ = INSTALLED.set(Redactor::new(config));
}

/// The process's redactor: the installed one, else the defaults with a
/// per-run key.
pub fn redactor() -> &'static Redactor {
    INSTALLED.get_or_init(|| Redactor::new(&RedactConfig::default()))
}

impl Redactor {
    pub fn new(config: &RedactConfig) -> Redactor {
        let mut headers: Vec<String> = SECRET_HEADERS.iter().map(|h| h.to_string()).collect();
        headers.extend(config.headers.iter().map(|h| h.trim().to_ascii_lowercase()));
        let json_paths = config.json_paths.iter().map(|p| segments(p).map(str::to_string).collect()).collect();
        let key = if config.key.is_empty() { random_key() } else { block_key(config.key.as_bytes()) };
        Redactor { headers, json_paths, key }
    }

    pub fn is_secret_header(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Is a difference's path (`header:Name`, or a JSON pointer into the
    /// body) one whose values are secret?
    pub fn is_secret_path(&self, path: &str) -> bool {
        match path.strip_prefix("header:") {
            Some(name) => self.is_secret_header(name),
            None => {
                path.starts_with('/') && self.json_paths.iter().any(|p| covers(p, &segments(path).collect::<Vec<_>>()))
            }
        }
    }

    /// `[redacted:xxxxxxxx]` for `value`'s bytes.
    pub fn redact_text(&self, value: &[u8]) -> String {
        let mac = self.hmac(value);
        format!("{MARK}:{:02x}{:02x}{:02x}{:02x}]", mac[0], mac[1], mac[2], mac[3])
    }

    /// A JSON value as shown: absent (`null`) stays absent, an already
    /// redacted string stays as it is, anything else is redacted (a string
    /// by its text, other values by their JSON).
    pub fn redact_value(&self, value: &Value) -> Value {
        match value {
            Value::Null => Value::Null,
            Value::String(s) if is_redacted(s) => value.clone(),
            Value::String(s) => Value::String(self.redact_text(s.as_bytes())),
            other => Value::String(self.redact_text(other.to_string().as_bytes())),
        }
    }

    /// `value` at difference path `path`, redacted when the path is secret.
    pub fn shown(&self, path: &str, value: &Value) -> Value {
        if self.is_secret_path(path) { self.redact_value(value) } else { value.clone() }
    }

    /// Headers with secret values redacted; borrowed when none is secret.
    pub fn headers<'a>(&self, headers: &'a [Header]) -> Cow<'a, [Header]> {
        if !headers.iter().any(|(n, _)| self.is_secret_header(n)) {
            return Cow::Borrowed(headers);
        }
        let redacted = headers
            .iter()
            .map(|(n, v)| {
                let v = if self.is_secret_header(n) && !is_redacted(v) {
                    self.redact_text(v.as_bytes())
                } else {
                    v.clone()
                };
                (n.clone(), v)
            })
            .collect();
        Cow::Owned(redacted)
    }

    fn redact_payload(&self, payload: &mut Payload) {
        if let Cow::Owned(headers) = self.headers(&payload.headers) {
            payload.headers = headers;
        }
        if let Some(body) = self.json_body(&payload.body) {
            payload.body = body;
        }
    }

    /// A JSON body with the values at `json_paths` redacted, written again
    /// (compact); `None` when nothing is configured, it is not JSON (or was
    /// cut at the body limit), or nothing in it is secret.
    fn json_body(&self, body: &[u8]) -> Option<Vec<u8>> {
        if self.json_paths.is_empty() {
            return None;
        }
        let mut tree: Value = serde_json::from_slice(body).ok()?;
        let mut changed = false;
        self.redact_tree(&mut tree, &mut Vec::new(), &mut changed);
        changed.then(|| serde_json::to_vec(&tree).ok()).flatten()
    }

    /// Depth is bounded by serde_json's parser (128 levels).
    fn redact_tree(&self, value: &mut Value, path: &mut Vec<String>, changed: &mut bool) {
        let here: Vec<&str> = path.iter().map(String::as_str).collect();
        if self.json_paths.iter().any(|p| covers(p, &here)) {
            *value = self.redact_value(value);
            *changed = true;
            return;
        }
        let mut visit = |segment: String, child: &mut Value| {
            path.push(segment);
            self.redact_tree(child, path, changed);
            path.pop();
        };
        match value {
            Value::Object(members) => {
                for (key, child) in members.iter_mut() {
                    visit(key.replace('~', "~0").replace('/', "~1"), child);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter_mut().enumerate() {
                    visit(index.to_string(), child);
                }
            }
            _ => {}
        }
    }

    /// HMAC-SHA256 (RFC 2104) with the 64-byte block key.
    fn hmac(&self, message: &[u8]) -> [u8; 32] {
        let pad = |byte: u8| self.key.map(|k| k ^ byte);
        let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
        Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
    }
}

/// `pairs --redact` (and HAR): the exchanges of `batches` with their
/// secret header values and JSON body fields redacted, on a thread of their own (bounded like the pipeline's
/// channels, so nothing piles up).
pub fn exchanges(batches: Receiver<Vec<Exchange>>) -> Receiver<Vec<Exchange>> {
    let (tx, rx) = crossbeam_channel::bounded(4);
    std::thread::spawn(move || {
        let redactor = redactor();
        for mut batch in batches {
            for exchange in &mut batch {
                redactor.redact_payload(&mut exchange.request.payload);
                if let Some(response) = &mut exchange.response {
                    redactor.redact_payload(&mut response.payload);
                }
                if let Some(h2) = exchange.http2.as_deref_mut() {
                    // HTTP/2 trailers are header fields too.
                    for trailers in [&mut h2.request_trailers, &mut h2.response_trailers] {
                        if let Cow::Owned(redacted) = redactor.headers(trailers) {
                            *trailers = redacted;
                        }
                    }
                }
            }
            if tx.send(batch).is_err() {
                // The writer is gone; drain so the pipeline can finish.
                continue;
            }
        }
    });
    rx
}

/// A value this module already redacted (outcome lines read back by
/// `report`).
pub fn is_redacted(text: &str) -> bool {
    text.starts_with(MARK) && text.ends_with(']')
}

/// A pointer's reference tokens (`/a/b` → `a`, `b`); `""` has none.
fn segments(pointer: &str) -> impl Iterator<Item = &str> {
    pointer.split('/').skip(1)
}

/// Does `pattern` match `path` or one of its ancestors? `*` is any one
/// segment, `**` any number.
fn covers(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => true,
        Some((first, rest)) if first == "**" => (0..=path.len()).any(|skip| covers(rest, &path[skip..])),
        Some((first, rest)) => match path.split_first() {
            Some((segment, tail)) if first == "*" || first == segment => covers(rest, tail),
            _ => false,
        },
    }
}

/// RFC 2104: a key longer than the block is hashed; shorter is padded.
fn block_key(key: &[u8]) -> [u8; 64] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    block
}

/// 64 random bytes from the kernel; should it fail, the time and pid (still
/// unknown to whoever reads the output).
fn random_key() -> [u8; 64] {
    let mut key = [0u8; 64];
    // SAFETY: getrandom(2) writes at most key.len() bytes into key.
    let got = unsafe { libc::getrandom(key.as_mut_ptr().cast(), key.len(), 0) };
    if got != key.len() as isize {
        let fallback = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        key = block_key(&Sha256::digest(fallback.as_bytes()));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(toml: &str) -> Redactor {
        Redactor::new(&toml::from_str(toml).unwrap())
    }

    #[test]
    fn equal_values_redact_equal_and_different_differ() {
        let r = redactor("key = \"k\"");
        let a = r.redact_text(b"session=aaa");
        assert_eq!(a, r.redact_text(b"session=aaa"));
        assert_ne!(a, r.redact_text(b"session=aab"));
        assert!(is_redacted(&a) && a.len() == "[redacted:]".len() + 8, "{a}");
        assert_ne!(a, redactor("key = \"other\"").redact_text(b"session=aaa"), "keyed");
    }

    #[test]
    fn http2_trailers_are_redacted_like_headers() {
        let mut exchange = crate::exchange::test_get("/", &[("cookie", "a=1")], b"");
        exchange.http2 = Some(Box::new(crate::exchange::Http2Info {
            response_trailers: vec![("set-cookie".into(), "s=secret".into()), ("grpc-status".into(), "0".into())],
            ..Default::default()
        }));
        let (tx, rx) = crossbeam_channel::bounded(1);
        tx.send(vec![exchange]).unwrap();
        drop(tx);
        let out = exchanges(rx).recv().unwrap();
        let trailers = &out[0].http2.as_ref().unwrap().response_trailers;
        assert!(is_redacted(&trailers[0].1), "{trailers:?}");
        assert_eq!(trailers[1].1, "0");
        assert!(is_redacted(&out[0].request.payload.headers[0].1));
    }

    #[test]
    fn hmac_is_rfc_4231() {
        // RFC 4231 test case 2.
        let r = redactor("key = \"Jefe\"");
        let mac = r.hmac(b"what do ya want for nothing?");
        assert_eq!(mac[..4], [0x5b, 0xdc, 0xc1, 0x46]);
    }

    #[test]
    fn secret_paths_are_headers_and_configured_pointers() {
        let r =
            redactor("headers = [\"X-Api-Key\"]\njson_paths = [\"/session\", \"/users/*/token\", \"/**/password\"]");
        for secret in [
            "header:Cookie",
            "header:set-cookie",
            "header:x-api-key",
            "/session",
            "/session/id",
            "/users/3/token",
            "/a/b/password",
        ] {
            assert!(r.is_secret_path(secret), "{secret}");
        }
        for open in ["header:Content-Type", "/sessions", "/users/3/name", "", "status", "/users/token"] {
            assert!(!r.is_secret_path(open), "{open}");
        }
        assert_eq!(r.shown("/name", &Value::from("x")), Value::from("x"));
        assert_eq!(r.shown("/session", &Value::Null), Value::Null, "absent stays absent");
        let body = br#"{"session":{"id":"s1"},"users":[{"token":"t","name":"n"}],"a":{"password":"p"}}"#;
        let redacted: Value = serde_json::from_slice(&r.json_body(body).unwrap()).unwrap();
        assert_eq!(redacted["users"][0]["name"], "n");
        for secret in [&redacted["session"], &redacted["users"][0]["token"], &redacted["a"]["password"]] {
            assert!(secret.as_str().is_some_and(is_redacted), "{redacted}");
        }
        assert_eq!(r.json_body(br#"{"name":"n"}"#), None, "nothing secret: the body as it was");
        assert_eq!(r.json_body(b"not json"), None);
        let once = r.shown("/session", &Value::from(12));
        assert_eq!(r.shown("/session", &once), once, "redacting twice changes nothing");
    }
}
