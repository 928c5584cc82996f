//! Endpoint names: method plus a path template, so that `/api/users/42`
//! and `/api/users/7` are one endpoint in the report. Numeric segments,
//! UUIDs and long hex strings become `{id}`; the query is dropped.
//! Templates given in the config win over the automatic ones.

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

fn is_placeholder(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

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

/// The endpoint an exchange belongs to.
pub fn endpoint_of(method: &str, uri: &str, templates: &[Template]) -> String {
    let path = path_of(uri);
    if let Some(t) = templates.iter().find(|t| t.matches(method, path)) {
        return t.text.clone();
    }
    let mut out = String::with_capacity(path.len() + method.len() + 1);
    out.push_str(method);
    out.push(' ');
    for segment in split_path(path) {
        out.push('/');
        out.push_str(if looks_like_id(segment) { "{id}" } else { segment });
    }
    if path.is_empty() || path.ends_with('/') {
        out.push('/');
    }
    out
}

fn looks_like_id(segment: &str) -> bool {
    let all_digits = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
    let long_hex = segment.len() >= 16 && segment.bytes().all(|b| b.is_ascii_hexdigit());
    all_digits || long_hex || is_uuid(segment)
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
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
