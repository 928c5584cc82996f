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

use crate::replay::config::{Config, OutOfRange};

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
    /// `run --state-dir`: `[daemon] state_dir`.
    pub state_dir: Option<PathBuf>,
    /// `run --fresh`: discard the kept state and start over.
    pub fresh: bool,
}

impl Flags {
    /// The table: each flag given replaces its key (`--allow-writes`
    /// adds routes to the file's). A bad route template or a number out
    /// of range (`Config::check`, the flag named) is an error.
    pub fn apply(&self, c: &mut Config) -> anyhow::Result<()> {
        self.check_zero_factors()?;
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
        set(&mut c.daemon.state_dir, &self.state_dir);
        c.check().map_err(|e| anyhow::anyhow!(self.name_the_flag(e)))
    }

    /// A key out of range, told as the flag when the value came from one.
    fn name_the_flag(&self, e: OutOfRange) -> String {
        let given = match (e.section, e.key) {
            ("candidate", "concurrency") => self.concurrency.is_some().then_some("--concurrency"),
            ("candidate", "rate") => self.rate.is_some().then_some("--rate"),
            ("candidate", "pace") => self.pace.is_some().then_some("--pace"),
            ("capture", "sample_percent") => self.sample.is_some().then_some("--sample"),
            ("capture", "body_limit") => self.body_limit.is_some().then_some("--body-limit"),
            ("capture", "ports") => (!self.ports.is_empty()).then_some("--port"),
            ("ebpf", "pids") => (!self.pids.is_empty()).then_some("--pid"),
            _ => None,
        };
        match given {
            Some(flag) => format!("{flag} {}: {}", e.value, e.want),
            None => e.to_string(),
        }
    }

    /// In the file, 0 means "no limit" / "as fast as allowed" (the
    /// defaults); on the command line it is a mistake: leave the flag out.
    fn check_zero_factors(&self) -> anyhow::Result<()> {
        if self.rate == Some(0.0) {
            anyhow::bail!("--rate 0: must be above 0 requests per second (leave --rate out for no limit)");
        }
        if self.pace == Some(0.0) {
            anyhow::bail!("--pace 0: must be a factor above 0 (leave --pace out to replay as fast as allowed)");
        }
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

    /// A flag out of range is named as the flag; a zero rate or pace on
    /// the command line is refused (in the file it means "no limit").
    #[test]
    fn flags_out_of_range_are_named_as_flags() {
        let cases = [
            (Flags { rate: Some(1e-20), ..Default::default() }, "--rate 1e-20: must be from 0.001"),
            (Flags { pace: Some(f64::NAN), ..Default::default() }, "--pace NaN: must be from 0.001"),
            (Flags { pace: Some(0.0), ..Default::default() }, "--pace 0: must be a factor above 0"),
            (Flags { rate: Some(0.0), ..Default::default() }, "--rate 0: must be above 0"),
            (Flags { concurrency: Some(1 << 40), ..Default::default() }, "--concurrency 1099511627776: must be"),
            (Flags { sample: Some(-1.0), ..Default::default() }, "--sample -1.0: must be from 0 to 100"),
            (Flags { body_limit: Some(usize::MAX), ..Default::default() }, "--body-limit 18446744073709551615"),
            (Flags { ports: vec![80, 0], ..Default::default() }, "--port 0: a server port"),
            (Flags { pids: vec![0], ..Default::default() }, "--pid 0: a process id"),
        ];
        for (flags, want) in cases {
            let err = flags.apply(&mut Config::default()).unwrap_err().to_string();
            assert!(err.starts_with(want), "{want}: {err}");
        }
        let fine = Flags { rate: Some(0.001), pace: Some(1000.0), sample: Some(0.0), ..Default::default() };
        fine.apply(&mut Config::default()).unwrap();
    }
}
