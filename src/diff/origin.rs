//! The Host the tool rewrote, undone. Replay sends the candidate its own
//! address as Host (the default), so a candidate that builds absolute URLs
//! from the Host answers `Location: http://127.0.0.1:34785/new` where
//! production, asked for `api.example.com`, said `http://api.example.com/new`.
//! The tool made that substitution itself, so comparison undoes it: the
//! candidate's origin, where it appears in URL-valued headers or anywhere in
//! a decoded body (plain, or with JSON's escaped slashes), is read as
//! production's (`host_rewrite`, counted per occurrence). A link to another
//! path still differs.

use std::borrow::Cow;

use memchr::memmem;

/// Response headers whose values are URLs.
const URL_HEADERS: [&str; 3] = ["location", "content-location", "link"];

/// The candidate's origin as it may appear in its answers, and production's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginRewrite {
    /// `http://127.0.0.1:34785`: the candidate's scheme and the Host it was sent.
    pub candidate: String,
    /// `http://api.example.com`: the recorded request's scheme and Host.
    pub recorded: String,
}

impl OriginRewrite {
    /// `bytes` with the candidate's origin read as production's, and how many
    /// times it was; borrowed as is when it does not appear.
    pub(crate) fn apply<'a>(&self, bytes: Cow<'a, [u8]>) -> (Cow<'a, [u8]>, u64) {
        let escaped = |s: &str| s.replace('/', "\\/");
        let mut count = 0;
        let mut bytes = bytes;
        for (from, to) in
            [(self.candidate.clone(), self.recorded.clone()), (escaped(&self.candidate), escaped(&self.recorded))]
        {
            if from.is_empty() || memmem::find(&bytes, from.as_bytes()).is_none() {
                continue;
            }
            let (replaced, n) = replace_all(&bytes, from.as_bytes(), to.as_bytes());
            bytes = Cow::Owned(replaced);
            count += n;
        }
        (bytes, count)
    }

    /// The candidate's headers with URL values read as production's, and how
    /// many replacements that took; borrowed when there were none.
    pub(crate) fn apply_to_headers<'a>(&self, headers: &'a [(String, String)]) -> (Cow<'a, [(String, String)]>, u64) {
        let is_url_header = |name: &str| URL_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name.trim()));
        let needs = headers.iter().any(|(n, v)| is_url_header(n) && v.contains(&self.candidate));
        if !needs {
            return (Cow::Borrowed(headers), 0);
        }
        let mut count = 0;
        let rewritten = headers
            .iter()
            .map(|(name, value)| {
                if !is_url_header(name) {
                    return (name.clone(), value.clone());
                }
                count += value.matches(self.candidate.as_str()).count() as u64;
                (name.clone(), value.replace(&self.candidate, &self.recorded))
            })
            .collect();
        (Cow::Owned(rewritten), count)
    }
}

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(haystack.len() + to.len());
    let mut count = 0;
    let mut at = 0;
    for found in memmem::find_iter(haystack, from) {
        out.extend_from_slice(&haystack[at..found]);
        out.extend_from_slice(to);
        at = found + from.len();
        count += 1;
    }
    out.extend_from_slice(&haystack[at..]);
    (out, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite() -> OriginRewrite {
        OriginRewrite { candidate: "http://127.0.0.1:34785".into(), recorded: "http://api.example.com".into() }
    }

    #[test]
    fn the_candidates_origin_reads_as_productions_in_bodies_plain_and_json_escaped() {
        let body = br#"{"self":"http://127.0.0.1:34785/api/items/1","up":"http:\/\/127.0.0.1:34785\/api"}"#;
        let (out, n) = rewrite().apply(Cow::Borrowed(&body[..]));
        assert_eq!(n, 2);
        assert_eq!(&*out, br#"{"self":"http://api.example.com/api/items/1","up":"http:\/\/api.example.com\/api"}"#);
        let (out, n) = rewrite().apply(Cow::Borrowed(&b"no links"[..]));
        assert!(matches!(out, Cow::Borrowed(_)) && n == 0);
    }

    #[test]
    fn only_url_headers_are_rewritten() {
        let headers = vec![
            ("Location".to_string(), "http://127.0.0.1:34785/new".to_string()),
            ("X-Debug".to_string(), "http://127.0.0.1:34785".to_string()),
        ];
        let (out, n) = rewrite().apply_to_headers(&headers);
        assert_eq!(n, 1);
        assert_eq!(out[0].1, "http://api.example.com/new");
        assert_eq!(out[1].1, "http://127.0.0.1:34785");
    }
}
