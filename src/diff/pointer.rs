//! JSON pointers (RFC 6901): building them while walking a document, and
//! matching the walk position against configured pointer patterns with
//! wildcards (`*` = any one segment, `**` = any number of segments).
//!
//! Patterns are matched incrementally: each node of the walk carries a
//! [`Scope`] holding the partial matches ("states") alive at that node, so the
//! cost per node is proportional to the number of live states, usually zero.

/// The pointer of the node being visited, grown and shrunk during the walk.
#[derive(Debug, Default)]
pub(crate) struct PointerBuf {
    text: String,
}

impl PointerBuf {
    /// Appends `/key` (escaped) and returns the mark to [`Self::truncate`] back to.
    pub(crate) fn push_key(&mut self, key: &str) -> usize {
        let mark = self.text.len();
        self.text.push('/');
        escape_segment_into(key, &mut self.text);
        mark
    }

    /// Appends `/index` and returns the mark to [`Self::truncate`] back to.
    pub(crate) fn push_index(&mut self, index: usize) -> usize {
        use std::fmt::Write;
        let mark = self.text.len();
        let _ = write!(self.text, "/{index}");
        mark
    }

    pub(crate) fn truncate(&mut self, mark: usize) {
        self.text.truncate(mark);
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

/// Escapes one reference token: `~` → `~0`, `/` → `~1`.
pub(crate) fn escape_segment_into(segment: &str, out: &mut String) {
    if !segment.contains(['~', '/']) {
        out.push_str(segment);
        return;
    }
    for c in segment.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            other => out.push(other),
        }
    }
}

/// Reverses [`escape_segment_into`]: `~1` → `/`, then `~0` → `~`.
pub(crate) fn unescape_segment(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// One step of the walk: into an object member or an array element.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// An exact key; `index` is set when the key is also a canonical array index.
    Literal { key: String, index: Option<usize> },
    /// `*`: any one key or index.
    AnyOne,
    /// `**`: any number of segments, zero included.
    AnyDepth,
}

impl Segment {
    fn parse(raw: &str) -> Segment {
        match raw {
            "*" => Segment::AnyOne,
            "**" => Segment::AnyDepth,
            _ => {
                let key = unescape_segment(raw);
                let index = parse_array_index(&key);
                Segment::Literal { key, index }
            }
        }
    }

    fn matches(&self, step: Step<'_>) -> bool {
        match (self, step) {
            (Segment::AnyOne | Segment::AnyDepth, _) => true,
            (Segment::Literal { key, .. }, Step::Key(k)) => key == k,
            (Segment::Literal { index, .. }, Step::Index(i)) => *index == Some(i),
        }
    }
}

/// `0`, `17`, but not `017` or `-1` (RFC 6901 array index syntax).
fn parse_array_index(key: &str) -> Option<usize> {
    let canonical = key == "0" || (!key.starts_with('0') && !key.is_empty());
    if canonical && key.bytes().all(|b| b.is_ascii_digit()) { key.parse().ok() } else { None }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PatternKind {
    Ignore,
    Unordered,
}

#[derive(Clone, Debug)]
struct Pattern {
    kind: PatternKind,
    segments: Vec<Segment>,
}

impl Pattern {
    /// `""` is the whole document; a missing leading `/` is tolerated.
    fn parse(kind: PatternKind, text: &str) -> Pattern {
        let body = text.strip_prefix('/').unwrap_or(text);
        let segments = if text.is_empty() { Vec::new() } else { body.split('/').map(Segment::parse).collect() };
        Pattern { kind, segments }
    }
}

/// A partial match: `position` segments of pattern `pattern` are matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    pattern: usize,
    position: usize,
}

/// What the patterns say about one node of the walk.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scope {
    states: Vec<State>,
    /// The node is at or below an ignored path.
    pub(crate) ignored: bool,
    /// The node is exactly at an unordered-array path.
    pub(crate) unordered: bool,
}

/// The compiled `ignore_paths` and `unordered_arrays` patterns.
#[derive(Clone, Debug, Default)]
pub(crate) struct PatternSet {
    patterns: Vec<Pattern>,
}

impl PatternSet {
    pub(crate) fn new(ignore_paths: &[String], unordered_arrays: &[String]) -> PatternSet {
        let ignore = ignore_paths.iter().map(|p| Pattern::parse(PatternKind::Ignore, p));
        let unordered = unordered_arrays.iter().map(|p| Pattern::parse(PatternKind::Unordered, p));
        PatternSet { patterns: ignore.chain(unordered).collect() }
    }

    /// The scope of the document root.
    pub(crate) fn root_scope(&self) -> Scope {
        let starts = (0..self.patterns.len()).map(|pattern| State { pattern, position: 0 });
        self.scope_from(false, starts)
    }

    /// The scope of the child reached from `parent` by `step`.
    pub(crate) fn child_scope(&self, parent: &Scope, step: Step<'_>) -> Scope {
        if parent.states.is_empty() {
            return Scope { states: Vec::new(), ignored: parent.ignored, unordered: false };
        }
        let advanced = parent.states.iter().filter_map(|state| self.advance(*state, step));
        self.scope_from(parent.ignored, advanced)
    }

    /// Moves one state over one step; `None` when the pattern no longer matches.
    fn advance(&self, state: State, step: Step<'_>) -> Option<State> {
        let segment = self.patterns[state.pattern].segments.get(state.position)?;
        match segment {
            Segment::AnyDepth => Some(state),
            other if other.matches(step) => Some(State { position: state.position + 1, ..state }),
            _ => None,
        }
    }

    /// Builds a scope from states, closing over `**` matching zero segments.
    fn scope_from(&self, parent_ignored: bool, states: impl Iterator<Item = State>) -> Scope {
        let mut scope = Scope { states: Vec::new(), ignored: parent_ignored, unordered: false };
        for state in states {
            self.add_with_closure(&mut scope, state);
        }
        scope
    }

    fn add_with_closure(&self, scope: &mut Scope, mut state: State) {
        loop {
            if scope.states.contains(&state) {
                return;
            }
            scope.states.push(state);
            let pattern = &self.patterns[state.pattern];
            match pattern.segments.get(state.position) {
                Some(Segment::AnyDepth) => state.position += 1,
                Some(_) => return,
                None => {
                    match pattern.kind {
                        PatternKind::Ignore => scope.ignored = true,
                        PatternKind::Unordered => scope.unordered = true,
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope_at(set: &PatternSet, steps: &[Step<'_>]) -> Scope {
        steps.iter().fold(set.root_scope(), |scope, step| set.child_scope(&scope, *step))
    }

    fn ignore_set(patterns: &[&str]) -> PatternSet {
        let owned: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        PatternSet::new(&owned, &[])
    }

    #[test]
    fn pointer_escapes_tilde_and_slash() {
        let mut buf = PointerBuf::default();
        let mark = buf.push_key("a/b~c");
        buf.push_index(3);
        assert_eq!(buf.as_str(), "/a~1b~0c/3");
        buf.truncate(mark);
        assert_eq!(buf.as_str(), "");
        assert_eq!(unescape_segment("a~1b~0c~01"), "a/b~c~1");
    }

    #[test]
    fn star_matches_one_segment_only() {
        let set = ignore_set(&["/items/*/updated_at"]);
        use Step::*;
        assert!(scope_at(&set, &[Key("items"), Index(4), Key("updated_at")]).ignored);
        assert!(scope_at(&set, &[Key("items"), Index(4), Key("updated_at"), Key("x")]).ignored);
        assert!(!scope_at(&set, &[Key("items"), Index(4), Key("name")]).ignored);
        assert!(!scope_at(&set, &[Key("items"), Key("updated_at")]).ignored);
        assert!(!scope_at(&set, &[Key("items"), Index(1), Index(2), Key("updated_at")]).ignored);
    }

    #[test]
    fn double_star_matches_any_depth_including_zero() {
        let set = ignore_set(&["/**/etag"]);
        use Step::*;
        assert!(scope_at(&set, &[Key("etag")]).ignored);
        assert!(scope_at(&set, &[Key("a"), Index(0), Key("b"), Key("etag")]).ignored);
        assert!(!scope_at(&set, &[Key("a"), Key("etags")]).ignored);
    }

    #[test]
    fn literal_index_and_escaped_keys_match() {
        let set = ignore_set(&["/list/0", "/a~1b"]);
        use Step::*;
        assert!(scope_at(&set, &[Key("list"), Index(0)]).ignored);
        assert!(!scope_at(&set, &[Key("list"), Index(1)]).ignored);
        assert!(scope_at(&set, &[Key("a/b")]).ignored);
        assert!(!scope_at(&set, &[Key("a~1b")]).ignored);
    }

    #[test]
    fn empty_pattern_is_the_whole_document() {
        let set = ignore_set(&[""]);
        assert!(set.root_scope().ignored);
    }

    #[test]
    fn unordered_applies_exactly_at_the_path() {
        let set = PatternSet::new(&[], &["/tags".to_string()]);
        use Step::*;
        assert!(scope_at(&set, &[Key("tags")]).unordered);
        assert!(!scope_at(&set, &[Key("tags"), Index(0)]).unordered);
        assert!(!set.root_scope().unordered);
    }
}
