//! Learning from saved captures before replaying them: capture files in
//! (through the pipeline, bodies not kept, no ordering), a [`Learner`]
//! holding every request path out. `replay` scans first so that every
//! outcome, the noise learned per endpoint and the report use the final
//! names from the first exchange on; `shadowtap endpoints` prints what
//! the scan learned.
//!
//! Why a scan rather than learning while replaying: noise, the warm-up
//! hold and the per-endpoint rules are keyed by endpoint name while the
//! replay runs, so names must be final before the first comparison. The
//! scan reads the capture without keeping bodies or ordering exchanges,
//! several times faster than replay goes.

use std::path::PathBuf;

use super::{Learner, Template, path_of};
use crate::capture::CaptureError;
use crate::pipeline::{self, Source, Summary};

/// What a scan of capture files saw.
pub struct Scanned {
    pub learner: Learner,
    pub summary: Summary,
    pub error: Option<CaptureError>,
    /// Requests learned from (those a configured template names are not).
    pub learned_from: u64,
}

/// Reads `files` with `config` (ports, shards) and learns every request
/// path no configured template names.
pub fn scan(files: Vec<PathBuf>, mut config: pipeline::Config, templates: &[Template]) -> Scanned {
    config.http.body_limit = 0;
    config.ordered = false;
    let running = pipeline::start(Source::Files(files), config);
    let mut learner = Learner::default();
    let mut learned_from = 0;
    for batch in running.exchanges.iter() {
        for exchange in &batch {
            let (method, path) = (&exchange.request.method, path_of(&exchange.request.uri));
            if !templates.iter().any(|t| t.matches(method, path)) {
                learner.observe(method, path);
                learned_from += 1;
            }
        }
    }
    let (summary, error) = running.finish();
    Scanned { learner, summary, error, learned_from }
}

/// The learned templates as configuration people can pin: `[[endpoints]]`
/// entries, each with a comment giving its traffic and example paths.
/// Templates that overlap (`/users/me`, `/users/{id}`) are listed literal
/// first, because the first configured template that matches wins.
pub fn to_toml(learned: &super::Learned, source: &str, requests: u64) -> String {
    let mut templates = learned.templates();
    templates.sort_by(|a, b| specificity(&a.template).cmp(&specificity(&b.template)));
    let mut out = format!(
        "# Endpoint templates learned by `shadowtap endpoints` from {source}:\n\
         # {requests} requests, {} templates. Edit the names, keep the order\n\
         # (the first template that matches a request wins), add them to the\n\
         # configuration of every host.\n",
        templates.len()
    );
    for t in &templates {
        let examples: Vec<String> = t.examples.iter().map(|e| toml_comment(e)).collect();
        out.push_str(&format!(
            "\n# {} requests, {} distinct paths, e.g. {}\n[[endpoints]]\ntemplate = {}\n",
            t.count,
            t.raw_paths,
            examples.join(" "),
            toml_string(&t.template)
        ));
    }
    out
}

/// Sorts literal segments before placeholders, position by position.
fn specificity(template: &str) -> Vec<(bool, &str)> {
    let (method, path) = template.split_once(' ').unwrap_or(("", template));
    let mut key: Vec<(bool, &str)> = path.split('/').map(|s| (super::classify::is_placeholder(s), s)).collect();
    key.push((false, method));
    key
}

/// A TOML basic string (quotes, backslashes and control characters escaped).
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A path safe inside a comment line (no line breaks, no control characters).
fn toml_comment(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toml_loads_as_configuration_and_names_like_the_learner() {
        let mut learner = Learner::default();
        for i in 0..200 {
            learner.observe("GET", &format!("/api/users/{i}"));
            learner.observe("GET", "/api/users/me");
            learner.observe("GET", &format!("/user/{}{}/about.json", ["ann", "bob", "cy"][i % 3], i * 7));
        }
        learner.observe("GET", "/weird/\"quote\"\\");
        let learned = learner.learn();
        let text = to_toml(&learned, "x.pcap", 601);
        let config = crate::replay::config::Config::parse(&text, "learned.toml").unwrap();
        let templates = config.templates();
        assert_eq!(templates.len(), 4, "{text}");
        for path in ["/api/users/me", "/api/users/17", "/user/bob77/about.json", "/weird/\"quote\"\\"] {
            assert_eq!(
                super::super::endpoint_of("GET", path, &templates),
                learned.name("GET", path),
                "{path} in\n{text}"
            );
        }
        assert!(text.contains("# 200 requests, 1 distinct paths, e.g. /api/users/me\n"), "{text}");
    }
}
