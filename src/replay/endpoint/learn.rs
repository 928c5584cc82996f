//! Endpoint templates learned from the traffic: request paths in (method
//! and path, query already dropped), a [`Learned`] tree out that names any
//! path and lists the templates with their counts and examples.
//!
//! Observation builds a tree of path positions per method (bounded: a cap
//! on values per position and on nodes in all; values beyond go to one
//! overflow branch, which marks the position as variable). Learning is a
//! pure function of the multiset of paths observed, so two runs, two hosts
//! or two halves of a capture with the same traffic shape get the same
//! names: decisions come from counts and structure, ties are broken by
//! sorting, never by arrival order.
//!
//! A position becomes a variable (`{id}`, `{slug}`, `{name}`) when
//! - its values are many and each rare: at least [`MANY`] distinct values,
//!   or at least [`SOME`] with more than [`RARE_PERCENT`]% of the paths
//!   through it carrying a value seen at most [`RARE`] times (a few
//!   subreddits read thousands of times stay literal; post ids and user
//!   names come and go);
//! - or at least three of its values lead to the same shape with a literal
//!   in it (`/r/golang/comments/{id}` and `/r/rust/comments/{id}`: `{name}`),
//!   which REST collections (`/users/{id}`, `/posts/{id}`: no literal after
//!   them) and versions (`v1`, `v2`) do not.
//!
//! A position seen fewer than [`EVIDENCE`] times is not decided by counts;
//! there, as everywhere, strong classes ([`super::classify`]) apply and a
//! slug after a placeholder is `{slug}`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::classify;
use super::distinct::Distinct;

/// Distinct values that make a position variable whatever the counts.
pub const MANY: usize = 64;
/// Distinct values needed before rarity can make a position variable.
pub const SOME: usize = 4;
/// A value seen at most this often is rare (seen once: Good-Turing's estimate
/// of the chance that the next value is new).
pub const RARE: u64 = 1;
/// Share of the paths through a position (percent) carrying rare values
/// above which the position is variable.
pub const RARE_PERCENT: u64 = 30;
/// Paths through a position needed to decide it from counts.
pub const EVIDENCE: u64 = 24;

/// Memory bounds of a learner.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Values kept per position; more make it variable (overflow branch).
    pub values_per_position: usize,
    /// Positions kept in all; beyond, new values go to overflow branches.
    pub nodes: usize,
    /// Segments of a path learned; the rest is named by classes only.
    pub depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { values_per_position: 4 * MANY, nodes: 50_000, depth: 24 }
    }
}

/// Longest segment kept as a key (longer ones are cut, deterministically).
const MAX_KEY: usize = 128;
/// Example paths kept per template.
const EXAMPLES: usize = 3;
/// Distinct raw paths counted exactly per template (estimated beyond).
const RAW_EXACT: usize = 128;
/// Positions from the root where shared shapes are looked for.
const SHAPE_DEPTH: usize = 6;
/// The overflow branch's key (not a possible segment: segments have no `/`).
const OVERFLOW: &str = "/overflow";

/// Paths ending at a prefix: how many, how many distinct, some examples.
#[derive(Clone, Debug)]
pub struct Ends {
    pub count: u64,
    pub raw: Distinct,
    /// The lexicographically smallest few, so examples do not depend on order.
    pub examples: Vec<String>,
}

impl Default for Ends {
    fn default() -> Self {
        Ends { count: 0, raw: Distinct::new(RAW_EXACT), examples: Vec::new() }
    }
}

impl Ends {
    fn add(&mut self, path: &str) {
        self.count += 1;
        self.raw.insert(path);
        let example = &path[..path.floor_char_boundary(160)];
        if let Err(at) = self.examples.binary_search_by(|e| e.as_str().cmp(example))
            && at < EXAMPLES
        {
            self.examples.insert(at, example.to_string());
            self.examples.truncate(EXAMPLES);
        }
    }

    fn merge(&mut self, other: &Ends) {
        self.count += other.count;
        self.raw.merge(&other.raw);
        let mut all: BTreeSet<String> = self.examples.drain(..).collect();
        all.extend(other.examples.iter().cloned());
        self.examples = all.into_iter().take(EXAMPLES).collect();
    }
}

#[derive(Default)]
struct Node {
    /// Paths through this prefix that go on (have a next segment).
    through: u64,
    /// Paths ending here: without, with a trailing slash.
    ends: [Option<Box<Ends>>; 2],
    children: HashMap<Box<str>, Node>,
}

/// Paths observed so far, bounded.
pub struct Learner {
    roots: BTreeMap<String, Node>,
    nodes: usize,
    limits: Limits,
}

impl Default for Learner {
    fn default() -> Self {
        Learner::new(Limits::default())
    }
}

impl Learner {
    pub fn new(limits: Limits) -> Learner {
        Learner { roots: BTreeMap::new(), nodes: 0, limits }
    }

    /// One request path (no query) of `method`.
    pub fn observe(&mut self, method: &str, path: &str) {
        let raw: Vec<&str> = super::split_path(path).collect();
        let segments = classify::normalise(&raw);
        let limits = self.limits;
        let root = match self.roots.get_mut(method) {
            Some(root) => root,
            None => self.roots.entry(method.to_string()).or_default(),
        };
        let mut node = root;
        for segment in segments.iter().take(limits.depth) {
            node.through += 1;
            let key = &segment[..segment.floor_char_boundary(MAX_KEY)];
            let key = if node.children.contains_key(key) {
                key
            } else if node.children.len() >= limits.values_per_position
                || (self.nodes >= limits.nodes && !node.children.is_empty())
            {
                // A new value where there are many already: the overflow
                // branch (one per position, so at most twice the nodes).
                OVERFLOW
            } else if self.nodes >= limits.nodes {
                // All nodes in use and nothing known past here: the rest
                // of this path is named by classes only.
                return;
            } else {
                key
            };
            if !node.children.contains_key(key) {
                self.nodes += 1;
            }
            node = node.children.entry(key.into()).or_default();
        }
        let slash = usize::from(path.ends_with('/') || path.is_empty());
        node.ends[slash].get_or_insert_default().add(path);
    }

    /// The templates the paths so far imply. A pure function of the
    /// multiset of paths observed (within the bounds).
    pub fn learn(&self) -> Learned {
        self.learn_after(&Learned::default())
    }

    /// Learns again, keeping every position `previous` found variable
    /// variable (the daemon: names only ever get more general while it
    /// runs, never split again as counts move).
    pub fn learn_after(&self, previous: &Learned) -> Learned {
        let roots = self
            .roots
            .iter()
            .map(|(method, node)| (method.clone(), decide(&[node], false, 0, previous.roots.get(method))))
            .collect();
        Learned { roots }
    }
}

/// What a prefix's next position is, and what ends at the prefix.
#[derive(Clone, Debug, Default)]
pub struct Prefix {
    ends: [Option<Ends>; 2],
    next: Next,
}

#[derive(Clone, Debug, Default)]
enum Next {
    #[default]
    Nothing,
    /// Every value is the same placeholder.
    Variable { name: &'static str, child: Box<Prefix> },
    /// Each value its own branch (slugs after a placeholder as `{slug}`).
    Literal(BTreeMap<String, Prefix>),
}

/// One learned template, for people: `shadowtap endpoints`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearnedTemplate {
    pub template: String,
    pub count: u64,
    /// Distinct raw paths (exact up to 128, estimated beyond).
    pub raw_paths: u64,
    pub examples: Vec<String>,
}

/// Learned templates: names paths, lists templates.
#[derive(Clone, Debug, Default)]
pub struct Learned {
    roots: BTreeMap<String, Prefix>,
}

/// Decides the position after the prefix shared by `nodes` (one node,
/// or several merged into a variable one level up).
fn decide(nodes: &[&Node], after_placeholder: bool, depth: usize, previous: Option<&Prefix>) -> Prefix {
    let mut ends: [Option<Ends>; 2] = [None, None];
    for node in nodes {
        for (slot, theirs) in ends.iter_mut().zip(&node.ends) {
            if let Some(theirs) = theirs {
                slot.get_or_insert_default().merge(theirs);
            }
        }
    }
    // The values at this position, sorted: the same order on every host.
    let mut values: BTreeMap<&str, Vec<&Node>> = BTreeMap::new();
    for node in nodes {
        for (key, child) in &node.children {
            values.entry(key).or_default().push(child);
        }
    }
    if values.is_empty() {
        return Prefix { ends, next: Next::Nothing };
    }
    let next = match previous.map(|p| &p.next) {
        Some(Next::Variable { child, .. }) => variable(&values, depth, Some(child)),
        _ if is_variable_by_counts(&values) => variable(&values, depth, None),
        previous_next => {
            let previous = match previous_next {
                Some(Next::Literal(branches)) => Some(branches),
                _ => None,
            };
            let literal = literal_branches(&values, after_placeholder, depth, previous);
            // Deciding a branch both ways doubles the work per level: only
            // near the root, where names of things sit in real APIs.
            if depth < SHAPE_DEPTH && shares_a_shape(&literal) {
                variable(&values, depth, None)
            } else {
                Next::Literal(literal)
            }
        }
    };
    Prefix { ends, next }
}

fn through(nodes: &[&Node]) -> u64 {
    nodes.iter().map(|n| n.through + n.ends.iter().flatten().map(|e| e.count).sum::<u64>()).sum()
}

/// Many distinct values, or several and each rare. Placeholders (values
/// a class recognised) count as values never seen before: beside them,
/// values seen once are ids the classes missed (`iftfj7`); a value read
/// often (`/users/me`) stays literal.
fn is_variable_by_counts(values: &BTreeMap<&str, Vec<&Node>>) -> bool {
    if values.contains_key(OVERFLOW) {
        return true;
    }
    let (mut literals, mut literal_paths, mut rare_paths, mut placeholder_paths, mut all_rare) = (0, 0, 0, 0, true);
    for (value, nodes) in values {
        let n = through(nodes);
        if classify::is_placeholder(value) {
            placeholder_paths += n;
        } else {
            literals += 1;
            literal_paths += n;
            if n <= RARE {
                rare_paths += n;
            } else {
                all_rare = false;
            }
        }
    }
    if literals >= MANY {
        return true;
    }
    if literal_paths + placeholder_paths < EVIDENCE || literals == 0 {
        return false;
    }
    (placeholder_paths > 0 && all_rare) || (literals >= SOME && rare_paths * 100 > literal_paths * RARE_PERCENT)
}

fn variable(values: &BTreeMap<&str, Vec<&Node>>, depth: usize, previous: Option<&Prefix>) -> Next {
    let weighted = values.iter().filter(|(v, _)| **v != OVERFLOW).map(|(v, nodes)| (*v, through(nodes)));
    let name = classify::variable_name(weighted);
    let all: Vec<&Node> = values.values().flatten().copied().collect();
    Next::Variable { name, child: Box::new(decide(&all, true, depth + 1, previous)) }
}

/// Each value its own branch; slugs after a placeholder share `{slug}`.
fn literal_branches(
    values: &BTreeMap<&str, Vec<&Node>>,
    after_placeholder: bool,
    depth: usize,
    previous: Option<&BTreeMap<String, Prefix>>,
) -> BTreeMap<String, Prefix> {
    let mut groups: BTreeMap<&str, Vec<&Node>> = BTreeMap::new();
    for (value, nodes) in values {
        groups.entry(shown_literal(value, after_placeholder)).or_default().extend(nodes);
    }
    groups
        .into_iter()
        .map(|(value, nodes)| {
            let previous = previous.and_then(|p| p.get(value));
            (value.to_string(), decide(&nodes, classify::is_placeholder(value), depth + 1, previous))
        })
        .collect()
}

/// How a value at a literal position is named.
fn shown_literal(value: &str, after_placeholder: bool) -> &str {
    if after_placeholder && classify::is_slug(value) { "{slug}" } else { value }
}

/// At least three values (not versions, not placeholders) whose branches
/// have one shape, with a literal in it: the values are names of things
/// (subreddits, owners) with the same routes under each. A branch with
/// too few paths to show its shape does not count against it.
fn shares_a_shape(branches: &BTreeMap<String, Prefix>) -> bool {
    let named: Vec<&Prefix> =
        branches.iter().filter(|(v, _)| !classify::is_placeholder(v) && !is_version(v)).map(|(_, p)| p).collect();
    if named.len() < 3 || named.len() * 5 < branches.len() * 4 {
        return false;
    }
    let shapes: Vec<(BTreeSet<String>, u64)> = named.iter().map(|p| suffixes(p)).collect();
    // The suffixes most branches have; one of them must contain a literal.
    let mut seen: BTreeMap<&String, usize> = BTreeMap::new();
    for (shape, _) in &shapes {
        for suffix in shape {
            *seen.entry(suffix).or_default() += 1;
        }
    }
    let common: BTreeSet<&String> = seen.iter().filter(|(_, n)| **n * 2 >= shapes.len()).map(|(s, _)| *s).collect();
    let has_literal =
        |s: &str| s.split('/').filter(|x| !x.is_empty()).any(|x| !classify::is_placeholder(x) && x != "$");
    if !common.iter().any(|s| has_literal(s)) {
        return false;
    }
    let fits = |shape: &BTreeSet<String>| shape.iter().any(|s| common.contains(s));
    shapes.iter().filter(|(shape, _)| fits(shape)).count() >= 3
        && shapes.iter().all(|(shape, paths)| fits(shape) || *paths < EVIDENCE)
}

fn is_version(v: &str) -> bool {
    v.len() >= 2 && v.starts_with(['v', 'V']) && v[1..].bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// The templates under a prefix, relative to it (`/comments/{id}/$/`),
/// and the paths under it.
fn suffixes(prefix: &Prefix) -> (BTreeSet<String>, u64) {
    let (mut out, mut paths) = (BTreeSet::new(), 0);
    walk(prefix, &mut String::new(), &mut |text, ends| {
        out.insert(text.to_string());
        paths += ends.count;
    });
    (out, paths)
}

/// Calls `f` with the path text of every prefix where paths end (`$` marks
/// the end, `$/` with a trailing slash) and what ends there.
fn walk(prefix: &Prefix, text: &mut String, f: &mut dyn FnMut(&str, &Ends)) {
    for (slash, ends) in prefix.ends.iter().enumerate() {
        if let Some(ends) = ends {
            let len = text.len();
            text.push_str(if slash == 1 { "/$/" } else { "/$" });
            f(text, ends);
            text.truncate(len);
        }
    }
    let len = text.len();
    match &prefix.next {
        Next::Nothing => {}
        Next::Variable { name, child } => {
            text.push('/');
            text.push_str(name);
            walk(child, text, f);
        }
        Next::Literal(children) => {
            for (value, child) in children {
                text.push('/');
                text.push_str(value);
                walk(child, text, f);
                text.truncate(len);
            }
        }
    }
    text.truncate(len);
}

impl Learned {
    /// The endpoint name of a path: learned positions first, classes for
    /// what learning never saw.
    pub fn name(&self, method: &str, path: &str) -> String {
        let raw: Vec<&str> = super::split_path(path).collect();
        let segments = classify::normalise(&raw);
        let mut out = String::with_capacity(path.len() + method.len() + 1);
        out.push_str(method);
        out.push(' ');
        let mut prefix = self.roots.get(method);
        let mut after_placeholder = false;
        for segment in &segments {
            let shown: Cow<str> = match prefix.map(|p| &p.next) {
                Some(Next::Variable { name, child }) => {
                    prefix = Some(child);
                    Cow::Borrowed(name)
                }
                Some(Next::Literal(children)) => {
                    let shown = shown_literal(segment, after_placeholder);
                    prefix = children.get(&shown[..shown.floor_char_boundary(MAX_KEY)]);
                    Cow::Borrowed(shown)
                }
                _ => {
                    prefix = None;
                    Cow::Borrowed(shown_literal(segment, after_placeholder))
                }
            };
            after_placeholder = classify::is_placeholder(&shown);
            out.push('/');
            out.push_str(&shown);
        }
        if path.is_empty() || path.ends_with('/') {
            out.push('/');
        }
        out
    }

    /// Every learned template with its counts and examples, most used first.
    pub fn templates(&self) -> Vec<LearnedTemplate> {
        let mut out = Vec::new();
        for (method, root) in &self.roots {
            walk(root, &mut String::new(), &mut |text, ends| {
                let path = match text.strip_suffix("/$/") {
                    Some(p) => format!("{p}/"),
                    None => text.strip_suffix("/$").unwrap_or(text).to_string(),
                };
                let path = if path.is_empty() { "/".to_string() } else { path };
                out.push(LearnedTemplate {
                    template: format!("{method} {path}"),
                    count: ends.count,
                    raw_paths: ends.raw.count().min(ends.count),
                    examples: ends.examples.clone(),
                });
            });
        }
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.template.cmp(&b.template)));
        out
    }
}

#[cfg(test)]
#[path = "learn_tests.rs"]
mod tests;
