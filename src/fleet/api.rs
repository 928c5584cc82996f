//! A Prometheus server's HTTP query API (`/api/v1/query`), spoken over a
//! plain blocking TCP connection: a PromQL expression and an evaluation
//! time in, the result's series out (labels and values). HTTP/1.0, so the
//! server answers with one body and closes (no chunks, no keep-alive);
//! `http://` only.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

use super::FleetError;

/// Answers larger than this are refused rather than held in memory.
const MAX_ANSWER: u64 = 256 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

pub type Labels = BTreeMap<String, String>;

/// One series of an instant vector: its labels and value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

/// One series of a range vector: its labels and raw samples `(time, value)`.
#[derive(Debug, Clone)]
pub struct Samples {
    pub labels: Labels,
    pub values: Vec<(f64, f64)>,
}

/// Where the server is: `host:port` and the path its API hangs under.
pub struct Prometheus {
    url: String,
    authority: String,
    prefix: String,
}

impl Prometheus {
    /// `http://host[:port][/prefix]`.
    pub fn parse(url: &str) -> Result<Prometheus, FleetError> {
        let bad = |why: &str| FleetError::BadUrl { url: url.to_string(), why: why.to_string() };
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(bad("https is not supported: reach Prometheus over http (or a local proxy)"));
            }
            _ => return Err(bad("expected http://host:port")),
        };
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if authority.is_empty() || authority.contains('@') || path.contains(['?', '#']) {
            return Err(bad("expected http://host:port[/prefix], without credentials, query or fragment"));
        }
        let has_port =
            authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !authority.ends_with(']');
        let authority = if has_port { authority.to_string() } else { format!("{authority}:80") };
        let prefix = path.trim_end_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { format!("/{prefix}") };
        Ok(Prometheus { url: url.to_string(), authority, prefix })
    }

    /// The server's clock (evaluating `time()`), so every query of one
    /// verdict is evaluated at one instant whatever this host's clock says.
    pub fn now(&self) -> Result<f64, FleetError> {
        let data = self.query_data("time()", None)?;
        data.get("result")
            .and_then(|r| r.get(1))
            .and_then(number)
            .ok_or_else(|| self.not_prometheus("time() is not a scalar"))
    }

    /// An instant vector expression, evaluated at `at`.
    pub fn vector(&self, promql: &str, at: f64) -> Result<Vec<Sample>, FleetError> {
        let data = self.query_data(promql, Some(at))?;
        let series = data.get("result").and_then(Value::as_array).ok_or_else(|| self.not_prometheus("no result"))?;
        series
            .iter()
            .map(|s| {
                let value = s.get("value").and_then(|v| v.get(1)).and_then(number);
                Some(Sample { labels: labels(s)?, value: value? })
            })
            .collect::<Option<_>>()
            .ok_or_else(|| self.not_prometheus(&format!("{promql}: not an instant vector")))
    }

    /// A range vector selector (raw samples), evaluated at `at`.
    pub fn matrix(&self, promql: &str, at: f64) -> Result<Vec<Samples>, FleetError> {
        let data = self.query_data(promql, Some(at))?;
        let series = data.get("result").and_then(Value::as_array).ok_or_else(|| self.not_prometheus("no result"))?;
        series
            .iter()
            .map(|s| {
                let values = s.get("values")?.as_array()?;
                let values =
                    values.iter().map(|v| Some((v.get(0)?.as_f64()?, number(v.get(1)?)?))).collect::<Option<_>>()?;
                Some(Samples { labels: labels(s)?, values })
            })
            .collect::<Option<_>>()
            .ok_or_else(|| self.not_prometheus(&format!("{promql}: not a range vector")))
    }

    fn not_prometheus(&self, why: &str) -> FleetError {
        FleetError::NotPrometheus { url: self.url.clone(), why: why.to_string() }
    }

    /// The `data` of a successful answer; the server's error otherwise.
    fn query_data(&self, promql: &str, at: Option<f64>) -> Result<Value, FleetError> {
        let mut target = format!("{}/api/v1/query?query={}", self.prefix, percent_encode(promql));
        if let Some(at) = at {
            target.push_str(&format!("&time={at:.3}"));
        }
        let (status, body) = self.get(&target)?;
        let answer: Value = serde_json::from_slice(&body)
            .map_err(|_| self.not_prometheus(&format!("HTTP {status} without a JSON answer at {target}")))?;
        match answer.get("status").and_then(Value::as_str) {
            Some("success") => answer.get("data").cloned().ok_or_else(|| self.not_prometheus("success without data")),
            Some("error") => Err(FleetError::Query {
                url: self.url.clone(),
                query: promql.to_string(),
                error: answer.get("error").and_then(Value::as_str).unwrap_or("unknown error").to_string(),
            }),
            _ => Err(self.not_prometheus(&format!("HTTP {status}: not a query API answer"))),
        }
    }

    /// One GET: the status and the body.
    fn get(&self, target: &str) -> Result<(u16, Vec<u8>), FleetError> {
        let unreachable = |e: std::io::Error| FleetError::Unreachable { url: self.url.clone(), error: e.to_string() };
        let addrs: Vec<_> = self.authority.to_socket_addrs().map_err(unreachable)?.collect();
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let mut stream = stream.ok_or_else(|| unreachable(last))?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(unreachable)?;
        let host = &self.authority;
        let version = env!("CARGO_PKG_VERSION");
        let request = format!(
            "GET {target} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\nUser-Agent: shadowtap/{version}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).map_err(unreachable)?;
        self.read_answer(&mut stream).map_err(|e| match e {
            AnswerError::Io(e) => unreachable(e),
            AnswerError::Bad(why) => self.not_prometheus(why),
        })
    }

    /// Status and body: up to Content-Length when the server gives one (a
    /// server keeping the connection open must not hang us), else to the end.
    fn read_answer(&self, stream: &mut TcpStream) -> Result<(u16, Vec<u8>), AnswerError> {
        let mut answer = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&answer) {
                Ok(httparse::Status::Complete(head)) => {
                    let status = response.code.unwrap_or(0);
                    let length = response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<u64>().ok());
                    if length.is_some_and(|n| n > MAX_ANSWER) {
                        return Err(AnswerError::Bad("answer too large"));
                    }
                    let mut body = answer.split_off(head);
                    let wanted = length.unwrap_or(MAX_ANSWER + 1);
                    let have = body.len() as u64;
                    if have < wanted {
                        (&mut *stream).take(wanted - have).read_to_end(&mut body).map_err(AnswerError::Io)?;
                    }
                    if body.len() as u64 > MAX_ANSWER {
                        return Err(AnswerError::Bad("answer too large"));
                    }
                    body.truncate(wanted.min(body.len() as u64) as usize);
                    return Ok((status, body));
                }
                Ok(httparse::Status::Partial) if answer.len() < 64 * 1024 => {}
                _ => return Err(AnswerError::Bad("not an HTTP answer")),
            }
            let n = stream.read(&mut chunk).map_err(AnswerError::Io)?;
            if n == 0 {
                return Err(AnswerError::Bad("not an HTTP answer"));
            }
            answer.extend_from_slice(&chunk[..n]);
        }
    }
}

enum AnswerError {
    Io(std::io::Error),
    Bad(&'static str),
}

/// Prometheus writes sample values as strings ("12", "NaN", "+Inf").
fn number(v: &Value) -> Option<f64> {
    v.as_str()?.parse().ok()
}

fn labels(series: &Value) -> Option<Labels> {
    let metric = series.get("metric")?.as_object()?;
    metric.iter().map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect()
}

/// A query string value: unreserved characters as they are, the rest %XX.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A series selector naming every label of `labels` exactly.
pub fn selector(metric: &str, labels: &Labels) -> String {
    let matchers: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| {
            let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{metric}{{{}}}", matchers.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_with_an_optional_prefix() {
        let p = Prometheus::parse("http://127.0.0.1:9090/prom/").unwrap();
        assert_eq!((p.authority.as_str(), p.prefix.as_str()), ("127.0.0.1:9090", "/prom"));
        assert_eq!(Prometheus::parse("http://prometheus").unwrap().authority, "prometheus:80");
        assert_eq!(Prometheus::parse("http://[::1]:9090").unwrap().authority, "[::1]:9090");
        for bad in ["https://p:9090", "p:9090", "http://", "http://u:p@h:1", "http://h:1/?q=1", "ftp://h"] {
            assert!(Prometheus::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors_escape_label_values() {
        let labels: Labels = [("endpoint".to_string(), "GET /a\"b\\".to_string())].into();
        assert_eq!(selector("m", &labels), "m{endpoint=\"GET /a\\\"b\\\\\"}");
        assert_eq!(percent_encode("sum(m{a=\"b c\"})"), "sum%28m%7Ba%3D%22b%20c%22%7D%29");
    }
}
