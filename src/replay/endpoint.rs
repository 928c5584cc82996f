//! Endpoint names: method plus a path template, so that `/api/users/42`
//! and `/api/users/7` are one endpoint in the report. The query is
//! dropped. Templates given in the config win; then templates learned
//! from the traffic ([`learn`]); then value classes recognised in any
//! path ([`classify`]: numbers, UUIDs, long hex and base36/62 ids are
//! `{id}`, and dates, e-mails and tokens have their own placeholders).

pub mod classify;
pub mod distinct;
pub mod learn;
pub mod scan;

pub use learn::{Learned, Learner};

/// A configured template such as `GET /api/users/{id}`: `{anything}`
/// matches one path segment, `*` as the method matches any method.
#[derive(Clone, Debug)]
pub struct Template {
    pub text: String,
    method: String,
    segments: Vec<String>,
}

impl Template {
    pub fn parse(text: &str) -> Option<Template> {
        let (method, path) = text.trim().split_once(' ')?;
        let path = path.trim();
        if !path.starts_with('/') {
            return None;
        }
        Some(Template {
            text: format!("{} {}", method.to_ascii_uppercase(), path),
            method: method.to_ascii_uppercase(),
            segments: split_path(path).map(str::to_string).collect(),
        })
    }

    pub fn matches(&self, method: &str, path: &str) -> bool {
        if self.method != "*" && !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let mut segments = split_path(path);
        for want in &self.segments {
            match segments.next() {
                Some(got) if is_placeholder(want) || want == got => {}
                _ => return false,
            }
        }
        segments.next().is_none()
    }
}

use classify::is_placeholder;

fn split_path(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// The path of a request target, without query or fragment; an absolute
/// URI (proxy form) is reduced to its path.
pub fn path_of(uri: &str) -> &str {
    let without_query = uri.split(['?', '#']).next().unwrap_or("");
    match without_query.find("://") {
        Some(scheme_end) => {
            let after = &without_query[scheme_end + 3..];
            after.find('/').map_or("/", |i| &after[i..])
        }
        None => without_query,
    }
}

/// Checks templates given on the command line.
pub fn check_templates(templates: &[String]) -> Result<(), String> {
    match templates.iter().find(|t| Template::parse(t).is_none()) {
        Some(bad) => Err(format!("bad endpoint template {bad:?} (want \"METHOD /path/{{id}}\")")),
        None => Ok(()),
    }
}

/// Path and query of a request target (origin form), for sending it on.
pub fn path_and_query(uri: &str) -> &str {
    let without_fragment = uri.split('#').next().unwrap_or("");
    let rest = match without_fragment.find("://") {
        Some(scheme_end) => {
            let after = &without_fragment[scheme_end + 3..];
            after.find(['/', '?']).map_or("/", |i| &after[i..])
        }
        None => without_fragment,
    };
    if rest.is_empty() || rest == "*" { "/" } else { rest }
}

/// The endpoint an exchange belongs to, without learned templates.
pub fn endpoint_of(method: &str, uri: &str, templates: &[Template]) -> String {
    name_with(&Learned::default(), method, uri, templates)
}

/// The endpoint of a request: a configured template, else the learned
/// name (which falls back to value classes).
pub fn name_with(learned: &Learned, method: &str, uri: &str, templates: &[Template]) -> String {
    let path = path_of(uri);
    match templates.iter().find(|t| t.matches(method, path)) {
        Some(t) => t.text.clone(),
        None => learned.name(method, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_uuids_and_hex_become_placeholders_and_the_query_goes() {
        assert_eq!(endpoint_of("GET", "/api/users/42?x=1", &[]), "GET /api/users/{id}");
        assert_eq!(endpoint_of("GET", "/o/123e4567-e89b-12d3-a456-426614174000/items", &[]), "GET /o/{id}/items");
        assert_eq!(endpoint_of("GET", "/blob/0123456789abcdef0123", &[]), "GET /blob/{id}");
        assert_eq!(endpoint_of("GET", "/v2/users", &[]), "GET /v2/users");
        assert_eq!(endpoint_of("GET", "/", &[]), "GET /");
        assert_eq!(endpoint_of("GET", "http://h.example/a/1", &[]), "GET /a/{id}");
    }

    #[test]
    fn configured_templates_win() {
        let templates = vec![Template::parse("GET /api/users/{name}").unwrap()];
        assert_eq!(endpoint_of("GET", "/api/users/alice", &templates), "GET /api/users/{name}");
        assert_eq!(endpoint_of("POST", "/api/users/alice", &templates), "POST /api/users/alice");
    }
}
