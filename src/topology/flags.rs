//! The one table of command-line flags to configuration keys. Every
//! command that has a flag means the same by it: the flag, when given,
//! replaces (or, for lists of routes, extends) the key of the file, once,
//! here. In: the file's [`Config`] and the flags given; out: the
//! configuration in force.
//!
//! | flag              | key                        | commands        |
//! |-------------------|----------------------------|-----------------|
//! | `--candidate`     | `[candidate] url`          | replay, run     |
//! | `--concurrency`   | `[candidate] concurrency`  | replay          |
//! | `--rate`          | `[candidate] rate`         | replay          |
//! | `--pace`          | `[candidate] pace`         | replay          |
//! | `--secondary`     | `[legacy] secondary`       | replay, run     |
//! | `--primary`       | `[legacy] primary`         | replay, run     |
//! | `--allow-writes`  | `[replay] allow_writes` (+)| replay, run     |
//! | `--source`        | `[capture] source`         | run             |
//! | `--interface`     | `[capture] interface`      | run             |
//! | `--pid`           | `[ebpf] pids`              | run, record     |
//! | `--unit`          | `[ebpf] units`             | run, record     |
//! | `--unix`          | `[ebpf] unix`              | run, record     |
//! | `--tls`           | `[ebpf] tls`               | run, record     |
//! | `--record`        | `[ebpf] record`            | run             |
//! | `--port`          | `[capture] ports`          | pairs, replay, run, endpoints, record |
//! | `--filter`        | `[capture] filter`         | run             |
//! | `--sample`        | `[capture] sample_percent` | run             |
//! | `--body-limit`    | `[capture] body_limit`     | pairs, replay, endpoints |
//! | `--out`           | `[output] out`             | replay, run     |
//! | `--report`        | `[output] report`          | replay, run     |
//! | `--metrics`       | `[metrics] listen`         | run             |
//!
//! `--lanes` and `--shards` have no key: they size this process's threads.

use std::path::{Path, PathBuf};

use crate::replay::config::Config;

/// The flags given on the command line (`None`, empty: not given).
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub candidate: Option<String>,
    pub concurrency: Option<usize>,
    pub rate: Option<f64>,
    pub pace: Option<f64>,
    pub secondary: Option<String>,
    pub primary: Option<String>,
    pub allow_writes: Vec<String>,
    pub source: Option<String>,
    pub interface: Option<String>,
    pub pids: Vec<u32>,
    pub units: Vec<String>,
    pub unix: Vec<String>,
    pub tls: Option<String>,
    pub record: Option<PathBuf>,
    pub ports: Vec<u16>,
    pub filter: Option<String>,
    pub sample: Option<f64>,
    pub body_limit: Option<usize>,
    pub out: Option<PathBuf>,
    pub report: Option<PathBuf>,
    pub metrics: Option<String>,
}

impl Flags {
    /// The table: each flag given replaces its key (`--allow-writes`
    /// adds routes to the file's). A bad route template is an error.
    pub fn apply(&self, c: &mut Config) -> anyhow::Result<()> {
        set(&mut c.candidate.url, &self.candidate);
        set_value(&mut c.candidate.concurrency, self.concurrency);
        set_value(&mut c.candidate.rate, self.rate);
        set_value(&mut c.candidate.pace, self.pace);
        set(&mut c.legacy.secondary, &self.secondary);
        set(&mut c.legacy.primary, &self.primary);
        crate::replay::endpoint::check_templates(&self.allow_writes).map_err(anyhow::Error::msg)?;
        c.replay.allow_writes.extend(self.allow_writes.iter().cloned());
        set_value(&mut c.capture.source, self.source.clone());
        set(&mut c.capture.interface, &self.interface);
        replace_list(&mut c.ebpf.pids, &self.pids);
        replace_list(&mut c.ebpf.units, &self.units);
        replace_list(&mut c.ebpf.unix, &self.unix);
        set_value(&mut c.ebpf.tls, self.tls.clone());
        set(&mut c.ebpf.record, &self.record);
        if !self.ports.is_empty() {
            c.capture.ports = self.ports.clone();
        }
        set_value(&mut c.capture.filter, self.filter.clone());
        set_value(&mut c.capture.sample_percent, self.sample);
        set_value(&mut c.capture.body_limit, self.body_limit);
        set(&mut c.output.out, &self.out);
        set(&mut c.output.report, &self.report);
        set(&mut c.metrics.listen, &self.metrics);
        Ok(())
    }

    /// The configuration in force: `--config` (else `default_file` when
    /// it exists, else the defaults), then the flags.
    pub fn load(&self, default_file: Option<&Path>) -> anyhow::Result<Config> {
        let path = self.config.clone().or_else(|| default_file.filter(|p| p.exists()).map(Path::to_path_buf));
        let mut config = match &path {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        self.apply(&mut config)?;
        Ok(config)
    }
}

fn replace_list<T: Clone>(key: &mut Vec<T>, flag: &[T]) {
    if !flag.is_empty() {
        *key = flag.to_vec();
    }
}

fn set<T: Clone>(key: &mut Option<T>, flag: &Option<T>) {
    if flag.is_some() {
        key.clone_from(flag);
    }
}

fn set_value<T>(key: &mut T, flag: Option<T>) {
    if let Some(value) = flag {
        *key = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_given_replace_their_keys_and_the_rest_stays() {
        let mut c = Config::parse(
            "[candidate]\nurl = \"http://a:1\"\nconcurrency = 8\n[capture]\nports = [80]\nbody_limit = 10\n\
             [replay]\nallow_writes = [\"POST /a\"]\n",
            "c",
        )
        .unwrap();
        let flags = Flags {
            concurrency: Some(3),
            body_limit: Some(99),
            allow_writes: vec!["PUT /b/{id}".into()],
            ..Default::default()
        };
        flags.apply(&mut c).unwrap();
        assert_eq!(c.candidate.url.as_deref(), Some("http://a:1"));
        assert_eq!(c.candidate.concurrency, 3);
        assert_eq!(c.capture.ports, vec![80]);
        assert_eq!(c.capture.body_limit, 99);
        assert_eq!(c.replay.allow_writes, vec!["POST /a", "PUT /b/{id}"]);
        let bad = Flags { allow_writes: vec!["nonsense".into()], ..Default::default() };
        assert!(bad.apply(&mut c).is_err());
    }
}
