//! A light, borrowing JSON document tree and its strict (RFC 8259) parser.
//!
//! Building a `serde_json::Value` with `preserve_order` and
//! `arbitrary_precision` allocates a hash map per object and a `String` per
//! number and key, which made parsing (and dropping) ~30x slower than scanning.
//! [`Node`] borrows keys, strings and number texts from the body (copying only
//! strings with escapes) and keeps object members in a `Vec`, in document
//! order. Only the parts that end up in a [`super::Difference`] are converted
//! to `serde_json::Value` ([`Node::to_value`]).
//!
//! The parser accepts exactly what `serde_json` accepts for a `Value`: same
//! grammar, paired surrogates only, nesting depth at most [`MAX_DEPTH`],
//! duplicate keys resolved like `serde_json` with `preserve_order` (the last
//! value wins, at the first key's position).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Number, Value};

/// Deepest accepted nesting of arrays/objects, the same as `serde_json`'s.
pub(crate) const MAX_DEPTH: usize = 127;

/// Objects up to this many members check duplicate keys pairwise; larger ones hash.
const PAIRWISE_DUPLICATE_CHECK_LIMIT: usize = 16;

pub(crate) type Member<'a> = (Cow<'a, str>, Node<'a>);

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node<'a> {
    Null,
    Bool(bool),
    /// The number's text exactly as written.
    Number(&'a str),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    /// Members in document order, keys unique.
    Object(Vec<Member<'a>>),
}

/// Why a body is not JSON (the caller then compares it as text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParseError {
    #[error("not UTF-8")]
    NotUtf8,
    #[error("invalid JSON at byte {0}")]
    Invalid(usize),
    #[error("nesting deeper than {MAX_DEPTH} at byte {0}")]
    TooDeep(usize),
}

/// Parses a whole JSON document (surrounding whitespace allowed).
pub(crate) fn parse(bytes: &[u8]) -> Result<Node<'_>, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ParseError::NotUtf8)?;
    let mut parser = Parser { text, pos: 0, pending_items: Vec::new(), pending_members: Vec::new() };
    let node = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos != text.len() {
        return Err(ParseError::Invalid(parser.pos));
    }
    Ok(node)
}

impl Node<'_> {
    /// Both nodes have the same JSON type.
    pub(crate) fn same_type(&self, other: &Node<'_>) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }

    /// Converts to a `serde_json::Value` (numbers keep their exact text).
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(text) => number_value(text),
            Node::String(s) => Value::String(s.to_string()),
            Node::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Object(members) => {
                Value::Object(members.iter().map(|(k, v)| (k.to_string(), v.to_value())).collect::<Map<_, _>>())
            }
        }
    }
}

fn number_value(text: &str) -> Value {
    text.parse::<Number>().map(Value::Number).unwrap_or_else(|_| Value::String(text.to_owned()))
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    /// Elements of the arrays being parsed, innermost last; moved into an
    /// exactly sized `Vec` when their array closes (avoids regrowing one `Vec`
    /// per array).
    pending_items: Vec<Node<'a>>,
    /// The same for object members.
    pending_members: Vec<Member<'a>>,
}

impl<'a> Parser<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn invalid<T>(&self) -> Result<T, ParseError> {
        Err(ParseError::Invalid(self.pos))
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect_literal(&mut self, literal: &str) -> Result<(), ParseError> {
        if self.bytes()[self.pos..].starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            Ok(())
        } else {
            self.invalid()
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node<'a>, ParseError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Node::String),
            Some(b't') => self.expect_literal("true").map(|_| Node::Bool(true)),
            Some(b'f') => self.expect_literal("false").map(|_| Node::Bool(false)),
            Some(b'n') => self.expect_literal("null").map(|_| Node::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Node::Number),
            _ => self.invalid(),
        }
    }

    fn check_depth(&self, depth: usize) -> Result<(), ParseError> {
        if depth > MAX_DEPTH { Err(ParseError::TooDeep(self.pos)) } else { Ok(()) }
    }

    /// After `{`: members separated by `,`, then `}`.
    fn object(&mut self, depth: usize) -> Result<Node<'a>, ParseError> {
        self.check_depth(depth)?;
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Node::Object(Vec::new()));
        }
        let first = self.pending_members.len();
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return self.invalid();
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return self.invalid();
            }
            self.pos += 1;
            let value = self.value(depth)?;
            self.pending_members.push((key, value));
            if self.end_of_container(b'}')? {
                break;
            }
        }
        let members: Vec<Member<'a>> = self.pending_members.drain(first..).collect();
        Ok(Node::Object(without_duplicate_keys(members)))
    }

    /// After `[`: values separated by `,`, then `]`.
    fn array(&mut self, depth: usize) -> Result<Node<'a>, ParseError> {
        self.check_depth(depth)?;
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Node::Array(Vec::new()));
        }
        let first = self.pending_items.len();
        loop {
            let item = self.value(depth)?;
            self.pending_items.push(item);
            if self.end_of_container(b']')? {
                return Ok(Node::Array(self.pending_items.drain(first..).collect()));
            }
        }
    }

    /// After a member or element: `true` at the closing bracket, `false` at `,`.
    fn end_of_container(&mut self, close: u8) -> Result<bool, ParseError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(true)
            }
            _ => self.invalid(),
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, returned as its text.
    fn number(&mut self) -> Result<&'a str, ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return self.invalid(),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.require_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.require_digits()?;
        }
        Ok(&self.text[start..self.pos])
    }

    fn skip_digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn require_digits(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        self.skip_digits();
        if self.pos == start { self.invalid() } else { Ok(()) }
    }

    /// At `"`: the unescaped string, borrowed when it has no escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, ParseError> {
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Borrowed(&self.text[start..self.pos - 1]));
                }
                Some(b'\\') => return self.escaped_string(start).map(Cow::Owned),
                Some(0x00..=0x1f) | None => return self.invalid(),
                Some(_) => self.pos += 1,
            }
        }
    }

    /// Continues a string from its first backslash, unescaping into a new `String`.
    fn escaped_string(&mut self, start: usize) -> Result<String, ParseError> {
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            let run_start = self.pos;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run_start..self.pos]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                _ => return self.invalid(),
            }
        }
    }

    /// After `\`: one escape, surrogate pairs joined; lone surrogates are errors.
    fn escape(&mut self) -> Result<char, ParseError> {
        let Some(c) = self.peek() else {
            return self.invalid();
        };
        self.pos += 1;
        let simple = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => return self.invalid(),
        };
        Ok(simple)
    }

    /// After `\u`: four hex digits, and a second `\uXXXX` for a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        let first = self.hex4()?;
        if !(0xD800..=0xDFFF).contains(&first) {
            return char::from_u32(first).map_or_else(|| self.invalid(), Ok);
        }
        if first >= 0xDC00 || !self.bytes()[self.pos..].starts_with(b"\\u") {
            return self.invalid();
        }
        self.pos += 2;
        let second = self.hex4()?;
        if !(0xDC00..=0xDFFF).contains(&second) {
            return self.invalid();
        }
        let code = 0x1_0000 + ((first - 0xD800) << 10) + (second - 0xDC00);
        char::from_u32(code).map_or_else(|| self.invalid(), Ok)
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let digits = self.bytes().get(self.pos..self.pos + 4);
        let value = digits.and_then(|d| d.iter().try_fold(0u32, |acc, &b| Some(acc * 16 + (b as char).to_digit(16)?)));
        match value {
            Some(v) => {
                self.pos += 4;
                Ok(v)
            }
            None => self.invalid(),
        }
    }
}

/// Resolves duplicate keys like `serde_json` (`preserve_order`): the last
/// value wins, at the position of the first occurrence.
fn without_duplicate_keys(members: Vec<Member<'_>>) -> Vec<Member<'_>> {
    if !has_duplicate_keys(&members) {
        return members;
    }
    let mut position_of_key: HashMap<Cow<'_, str>, usize> = HashMap::with_capacity(members.len());
    let mut unique: Vec<Member<'_>> = Vec::with_capacity(members.len());
    for (key, value) in members {
        match position_of_key.get(&key) {
            Some(&position) => unique[position].1 = value,
            None => {
                position_of_key.insert(key.clone(), unique.len());
                unique.push((key, value));
            }
        }
    }
    unique
}

fn has_duplicate_keys(members: &[Member<'_>]) -> bool {
    if members.len() <= PAIRWISE_DUPLICATE_CHECK_LIMIT {
        return members.iter().enumerate().any(|(i, (key, _))| members[..i].iter().any(|(k, _)| k == key));
    }
    let mut seen = HashSet::with_capacity(members.len());
    !members.iter().all(|(key, _)| seen.insert(key.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde(text: &str) -> Option<Value> {
        serde_json::from_str(text).ok()
    }

    fn ours(text: &str) -> Option<Value> {
        parse(text.as_bytes()).ok().map(|n| n.to_value())
    }

    #[test]
    fn accepts_and_rejects_like_serde_json() {
        let cases = [
            r#"{"a": [1, -0.5e+3, true, false, null, "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"]}"#,
            " [ ] ",
            "{}",
            "0",
            "-0",
            "1E400",
            "123456789012345678901234567890",
            r#"{"a":1,"a":2,"b":3,"a":4}"#,
            r#""\u0000""#,
            "01",
            "1.",
            ".5",
            "+1",
            "-",
            "1e",
            "1e+",
            "[1,]",
            "{\"a\":1,}",
            "[1 2]",
            "{\"a\" 1}",
            "{1:2}",
            "\"\t\"",
            r#""\x""#,
            r#""\ud83d""#,
            r#""\ude00""#,
            r#""\ud83d\u0041""#,
            r#""\u12""#,
            "tru",
            "nul",
            "[",
            "\"abc",
            "",
            " ",
            "1 2",
            "[]]",
        ];
        for case in cases {
            assert_eq!(ours(case), serde(case), "{case:?}");
        }
    }

    #[test]
    fn duplicate_keys_keep_first_position_and_last_value() {
        let node = parse(br#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(
            node,
            Node::Object(vec![(Cow::Borrowed("a"), Node::Number("3")), (Cow::Borrowed("b"), Node::Number("2")),])
        );
        let many: String = (0..40).map(|i| format!("\"k{}\":{i},", i % 20)).collect();
        let text = format!("{{{}\"end\":0}}", many);
        assert_eq!(ours(&text), serde(&text));
    }

    #[test]
    fn depth_limit_matches_serde_json() {
        for depth in [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            assert_eq!(ours(&text).is_some(), serde(&text).is_some(), "depth {depth}");
        }
        let deep = "[".repeat(100_000);
        assert!(matches!(parse(deep.as_bytes()), Err(ParseError::TooDeep(_))));
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let node = parse(br#"["plain", "esc\n"]"#).unwrap();
        let Node::Array(items) = node else { panic!() };
        assert!(matches!(&items[0], Node::String(Cow::Borrowed("plain"))));
        assert!(matches!(&items[1], Node::String(Cow::Owned(s)) if s == "esc\n"));
    }

    #[test]
    fn non_utf8_is_rejected() {
        assert_eq!(parse(b"\"\xff\""), Err(ParseError::NotUtf8));
    }
}
