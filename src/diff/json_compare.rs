//! JSON value comparison, one [`super::Difference`] per leaf difference,
//! located by a JSON pointer.
//!
//! Equivalences (each counted under its rule name when it made a raw
//! difference disappear): object key order (`key_order`, once per object pair
//! with the same keys in another order), numbers by exact decimal value
//! (`number_format`), RFC 3339 timestamps as instants (`timestamp_instant`),
//! configured unordered arrays as multisets (`unordered_array`, once per array
//! whose order differed), `null` vs absent member (`null_equals_missing`).
//! Differences at or below an `ignore_paths` pattern go to `ignored` instead;
//! no equivalence is counted inside ignored parts.
//!
//! The documents are [`Node`] trees (see [`super::json_tree`]); only reported
//! values are converted to `serde_json::Value`.
//!
//! One recursive [`Walker`] does both the recording walk and the yes/no
//! "probe" used to match unordered array elements, so both apply exactly the
//! same rules. Cost is linear in the document size, except unordered arrays:
//! they are first matched pairwise (same position first, which is linear when
//! the order barely changed) within a budget of
//! [`PAIRWISE_BASE_BUDGET`] + 4 × (total length) candidate checks; past that
//! budget, by hashing canonical forms (see [`super::canonical`]).

use std::collections::HashMap;

use serde_json::Value;

use super::canonical::canonical_form;
use super::json_tree::{Member, Node};
use super::number;
use super::pointer::{PatternSet, PointerBuf, Scope, Step};
use super::rules::rule_names::{KEY_ORDER, NULL_EQUALS_MISSING, NUMBER_FORMAT, TIMESTAMP_INSTANT, UNORDERED_ARRAY};
use super::timestamp;
use super::{CompareRules, Comparison, DiffKind};

/// Candidate checks allowed to pairwise matching of one unordered array,
/// on top of 4 per element; beyond, canonical-form hashing takes over.
pub(crate) const PAIRWISE_BASE_BUDGET: usize = 100_000;

/// Objects with more members than this get a hash index for key lookups.
const LINEAR_KEY_LOOKUP_LIMIT: usize = 12;

/// Compares two parsed JSON bodies into `out`.
pub(crate) fn compare_json(recorded: &Node<'_>, candidate: &Node<'_>, rules: &CompareRules, out: &mut Comparison) {
    let patterns = PatternSet::new(&rules.ignore_paths, &rules.unordered_arrays);
    let root = patterns.root_scope();
    let mut walker = Walker { rules, patterns: &patterns, sink: Sink::Record { out, path: PointerBuf::default() } };
    walker.walk(recorded, candidate, &root);
}

/// Where the walk's findings go.
enum Sink<'o> {
    /// Differences, ignored paths and equivalence counts are written to `out`.
    Record { out: &'o mut Comparison, path: PointerBuf },
    /// Only "is there any (non-ignored) difference?"; stops at the first.
    Probe { differs: bool },
}

struct Walker<'r, 'o> {
    rules: &'r CompareRules,
    patterns: &'r PatternSet,
    sink: Sink<'o>,
}

/// How recorded array elements were paired with candidate elements.
struct Matching {
    /// (recorded index, candidate index), in recorded order.
    pairs: Vec<(usize, usize)>,
    unmatched_recorded: Vec<usize>,
    unmatched_candidate: Vec<usize>,
}

impl Matching {
    fn complete(&self) -> bool {
        self.unmatched_recorded.is_empty() && self.unmatched_candidate.is_empty()
    }

    fn kept_positions(&self) -> bool {
        self.pairs.iter().all(|(i, j)| i == j)
    }
}

impl<'r> Walker<'r, '_> {
    fn walk(&mut self, recorded: &Node<'_>, candidate: &Node<'_>, scope: &Scope) {
        if self.probing() && scope.ignored {
            return;
        }
        match (recorded, candidate) {
            (Node::Object(a), Node::Object(b)) => self.walk_objects(a, b, scope),
            (Node::Array(a), Node::Array(b)) if scope.unordered => self.walk_unordered_arrays(a, b, scope),
            (Node::Array(a), Node::Array(b)) => self.walk_arrays_in_order(a, b, scope),
            (Node::Number(a), Node::Number(b)) => self.compare_numbers(a, b, recorded, candidate, scope),
            (Node::String(a), Node::String(b)) => self.compare_strings(a, b, recorded, candidate, scope),
            (Node::Bool(a), Node::Bool(b)) if a != b => {
                self.report(DiffKind::Changed, Some(recorded), Some(candidate), scope)
            }
            _ if recorded.same_type(candidate) => {}
            _ => self.report(DiffKind::Type, Some(recorded), Some(candidate), scope),
        }
    }

    // ----- objects -------------------------------------------------------

    fn walk_objects(&mut self, a: &[Member<'_>], b: &[Member<'_>], scope: &Scope) {
        if same_key_sequence(a, b) {
            self.walk_members_pairwise(a, b, scope);
        } else {
            self.walk_members_by_key(a, b, scope);
        }
    }

    /// Same keys in the same order: no lookups needed.
    fn walk_members_pairwise(&mut self, a: &[Member<'_>], b: &[Member<'_>], scope: &Scope) {
        for ((key, recorded), (_, candidate)) in a.iter().zip(b) {
            self.visit_member(key, Some(recorded), Some(candidate), scope);
            if self.done() {
                return;
            }
        }
    }

    fn walk_members_by_key(&mut self, a: &[Member<'_>], b: &[Member<'_>], scope: &Scope) {
        let candidate_index = KeyIndex::new(b);
        let mut found_in_candidate = 0;
        for (key, recorded) in a {
            let candidate = candidate_index.get(key);
            found_in_candidate += usize::from(candidate.is_some());
            self.visit_member(key, Some(recorded), candidate, scope);
            if self.done() {
                return;
            }
        }
        if found_in_candidate < b.len() {
            let recorded_index = KeyIndex::new(a);
            for (key, candidate) in b.iter().filter(|(key, _)| recorded_index.get(key).is_none()) {
                self.visit_member(key, None, Some(candidate), scope);
                if self.done() {
                    return;
                }
            }
        }
        // Keys are unique, so this means: same key set, in another order.
        if found_in_candidate == a.len() && a.len() == b.len() {
            self.count(KEY_ORDER, scope);
        }
    }

    fn visit_member(&mut self, key: &str, recorded: Option<&Node<'_>>, candidate: Option<&Node<'_>>, scope: &Scope) {
        let step = Step::Key(key);
        let child = self.patterns.child_scope(scope, step);
        let mark = self.enter(step);
        match (recorded, candidate) {
            (Some(a), Some(b)) => self.walk(a, b, &child),
            (Some(a), None) => self.member_absent(DiffKind::Missing, a, &child),
            (None, Some(b)) => self.member_absent(DiffKind::Extra, b, &child),
            (None, None) => {}
        }
        self.leave(mark);
    }

    /// A member present on one side only (`kind` is Missing or Extra).
    fn member_absent(&mut self, kind: DiffKind, present: &Node<'_>, scope: &Scope) {
        if present.is_null() && self.rules.null_equals_missing {
            self.count(NULL_EQUALS_MISSING, scope);
        } else {
            self.report_one_sided(kind, present, scope);
        }
    }

    // ----- arrays --------------------------------------------------------

    fn walk_arrays_in_order(&mut self, a: &[Node<'_>], b: &[Node<'_>], scope: &Scope) {
        for (index, (recorded, candidate)) in a.iter().zip(b).enumerate() {
            self.visit_element(index, recorded, candidate, scope);
            if self.done() {
                return;
            }
        }
        for (index, recorded) in a.iter().enumerate().skip(b.len()) {
            self.visit_lone_element(DiffKind::Missing, index, recorded, scope);
        }
        for (index, candidate) in b.iter().enumerate().skip(a.len()) {
            self.visit_lone_element(DiffKind::Extra, index, candidate, scope);
        }
    }

    fn visit_element(&mut self, index: usize, recorded: &Node<'_>, candidate: &Node<'_>, scope: &Scope) {
        let step = Step::Index(index);
        let child = self.patterns.child_scope(scope, step);
        let mark = self.enter(step);
        self.walk(recorded, candidate, &child);
        self.leave(mark);
    }

    /// An element at `index` on one side that has no partner on the other.
    fn visit_lone_element(&mut self, kind: DiffKind, index: usize, value: &Node<'_>, scope: &Scope) {
        let step = Step::Index(index);
        let child = self.patterns.child_scope(scope, step);
        let mark = self.enter(step);
        self.report_one_sided(kind, value, &child);
        self.leave(mark);
    }

    /// Multiset comparison: unmatched recorded elements are `missing` at their
    /// recorded index, unmatched candidate elements `extra` at theirs.
    fn walk_unordered_arrays(&mut self, a: &[Node<'_>], b: &[Node<'_>], scope: &Scope) {
        let budget = PAIRWISE_BASE_BUDGET + 4 * (a.len() + b.len());
        let matching =
            self.match_pairwise(a, b, scope, budget).unwrap_or_else(|| self.match_by_canonical_form(a, b, scope));
        if self.probing() {
            if !matching.complete() {
                self.report(DiffKind::Changed, None, None, scope);
            }
            return;
        }
        for &index in &matching.unmatched_recorded {
            self.visit_lone_element(DiffKind::Missing, index, &a[index], scope);
        }
        for &index in &matching.unmatched_candidate {
            self.visit_lone_element(DiffKind::Extra, index, &b[index], scope);
        }
        // Matched pairs are equivalent; walking them counts their inner
        // equivalences and lists their ignored differences.
        for &(i, j) in &matching.pairs {
            self.visit_element(i, &a[i], &b[j], scope);
        }
        if matching.complete() && !matching.kept_positions() && !self.equal_in_order(a, b, scope) {
            self.count(UNORDERED_ARRAY, scope);
        }
    }

    /// Greedy matching, trying the same position first. Greedy is exact here
    /// because the element equivalence is transitive. `None` when more than
    /// `budget` candidates would have to be checked.
    fn match_pairwise(&self, a: &[Node<'_>], b: &[Node<'_>], scope: &Scope, mut budget: usize) -> Option<Matching> {
        let mut used = vec![false; b.len()];
        let mut matching =
            Matching { pairs: Vec::new(), unmatched_recorded: Vec::new(), unmatched_candidate: Vec::new() };
        for (i, recorded) in a.iter().enumerate() {
            let child = self.patterns.child_scope(scope, Step::Index(i));
            let same_position_first = (i < b.len()).then_some(i).into_iter().chain(0..b.len());
            let mut partner = None;
            for j in same_position_first {
                budget = budget.checked_sub(1)?;
                if !used[j] && self.probe_equal(recorded, &b[j], &child) {
                    partner = Some(j);
                    break;
                }
            }
            match partner {
                Some(j) => {
                    used[j] = true;
                    matching.pairs.push((i, j));
                }
                None => matching.unmatched_recorded.push(i),
            }
        }
        matching.unmatched_candidate = (0..b.len()).filter(|&j| !used[j]).collect();
        Some(matching)
    }

    /// Matching by equal canonical forms (linear expected time).
    fn match_by_canonical_form(&self, a: &[Node<'_>], b: &[Node<'_>], scope: &Scope) -> Matching {
        let canonical_of = |values: &[Node<'_>]| -> Vec<String> {
            values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let child = self.patterns.child_scope(scope, Step::Index(i));
                    canonical_form(v, &child, self.patterns, self.rules)
                })
                .collect()
        };
        let recorded_forms = canonical_of(a);
        let candidate_forms = canonical_of(b);
        // For each form, candidate indices in descending order (pop gives the smallest).
        let mut waiting: HashMap<&str, Vec<usize>> = HashMap::new();
        for (j, form) in candidate_forms.iter().enumerate().rev() {
            waiting.entry(form.as_str()).or_default().push(j);
        }
        let mut matching =
            Matching { pairs: Vec::new(), unmatched_recorded: Vec::new(), unmatched_candidate: Vec::new() };
        let mut used = vec![false; b.len()];
        for (i, form) in recorded_forms.iter().enumerate() {
            match waiting.get_mut(form.as_str()).and_then(Vec::pop) {
                Some(j) => {
                    used[j] = true;
                    matching.pairs.push((i, j));
                }
                None => matching.unmatched_recorded.push(i),
            }
        }
        matching.unmatched_candidate = (0..b.len()).filter(|&j| !used[j]).collect();
        matching
    }

    /// Would the arrays compare equal position by position?
    fn equal_in_order(&self, a: &[Node<'_>], b: &[Node<'_>], scope: &Scope) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).enumerate().all(|(i, (x, y))| {
                let child = self.patterns.child_scope(scope, Step::Index(i));
                self.probe_equal(x, y, &child)
            })
    }

    // ----- leaves --------------------------------------------------------

    fn compare_numbers(&mut self, a: &str, b: &str, recorded: &Node<'_>, candidate: &Node<'_>, scope: &Scope) {
        if a == b {
            return;
        }
        if self.rules.numbers_by_value && number::same_value(a, b) {
            self.count(NUMBER_FORMAT, scope);
        } else {
            self.report(DiffKind::Changed, Some(recorded), Some(candidate), scope);
        }
    }

    fn compare_strings(&mut self, a: &str, b: &str, recorded: &Node<'_>, candidate: &Node<'_>, scope: &Scope) {
        if a == b {
            return;
        }
        if self.rules.timestamps_as_instants && timestamp::same_instant(a, b) {
            self.count(TIMESTAMP_INSTANT, scope);
        } else {
            self.report(DiffKind::Changed, Some(recorded), Some(candidate), scope);
        }
    }

    // ----- sink plumbing -------------------------------------------------

    fn probing(&self) -> bool {
        matches!(self.sink, Sink::Probe { .. })
    }

    /// A probe that already found a difference has nothing more to learn.
    fn done(&self) -> bool {
        matches!(self.sink, Sink::Probe { differs: true })
    }

    /// Are `a` and `b` equivalent under all rules? (No side effects.)
    fn probe_equal(&self, a: &Node<'_>, b: &Node<'_>, scope: &Scope) -> bool {
        let mut probe = Walker { rules: self.rules, patterns: self.patterns, sink: Sink::Probe { differs: false } };
        probe.walk(a, b, scope);
        !probe.done()
    }

    fn enter(&mut self, step: Step<'_>) -> usize {
        match (&mut self.sink, step) {
            (Sink::Record { path, .. }, Step::Key(key)) => path.push_key(key),
            (Sink::Record { path, .. }, Step::Index(index)) => path.push_index(index),
            (Sink::Probe { .. }, _) => 0,
        }
    }

    fn leave(&mut self, mark: usize) {
        if let Sink::Record { path, .. } = &mut self.sink {
            path.truncate(mark);
        }
    }

    fn count(&mut self, rule: &'static str, scope: &Scope) {
        if let Sink::Record { out, .. } = &mut self.sink
            && !scope.ignored
        {
            out.count_equivalence(rule);
        }
    }

    fn report_one_sided(&mut self, kind: DiffKind, present: &Node<'_>, scope: &Scope) {
        match kind {
            DiffKind::Missing => self.report(kind, Some(present), None, scope),
            _ => self.report(kind, None, Some(present), scope),
        }
    }

    /// A difference at the current path: listed in `ignored` when the scope is
    /// ignored, recorded otherwise (absent sides become `null`).
    fn report(&mut self, kind: DiffKind, recorded: Option<&Node<'_>>, candidate: Option<&Node<'_>>, scope: &Scope) {
        match &mut self.sink {
            Sink::Probe { differs } => *differs |= !scope.ignored,
            Sink::Record { out, path } if scope.ignored => out.ignored.push(path.as_str().to_owned()),
            Sink::Record { out, path } => {
                let value = |v: Option<&Node<'_>>| v.map_or(Value::Null, Node::to_value);
                out.push_difference(path.as_str(), kind, value(recorded), value(candidate));
            }
        }
    }
}

/// Test hook: (unmatched recorded, unmatched candidate) counts when the root
/// arrays are matched pairwise or by canonical form, to check both agree.
#[cfg(test)]
pub(crate) fn unmatched_counts(
    a: &[Node<'_>],
    b: &[Node<'_>],
    rules: &CompareRules,
    by_canonical_form: bool,
) -> (usize, usize) {
    let patterns = PatternSet::new(&rules.ignore_paths, &rules.unordered_arrays);
    let walker = Walker { rules, patterns: &patterns, sink: Sink::Probe { differs: false } };
    let root = patterns.root_scope();
    let matching = if by_canonical_form {
        walker.match_by_canonical_form(a, b, &root)
    } else {
        walker.match_pairwise(a, b, &root, usize::MAX).expect("unlimited budget")
    };
    (matching.unmatched_recorded.len(), matching.unmatched_candidate.len())
}

/// Same keys in the same order (usual for answers from similar serializers).
fn same_key_sequence(a: &[Member<'_>], b: &[Member<'_>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((x, _), (y, _))| x == y)
}

/// Key lookup in an object's members: linear for small objects, hashed otherwise.
enum KeyIndex<'m, 'a> {
    Linear(&'m [Member<'a>]),
    Hashed(HashMap<&'m str, &'m Node<'a>>),
}

impl<'m, 'a> KeyIndex<'m, 'a> {
    fn new(members: &'m [Member<'a>]) -> Self {
        if members.len() <= LINEAR_KEY_LOOKUP_LIMIT {
            return KeyIndex::Linear(members);
        }
        let map = members.iter().map(|(k, v)| (k.as_ref(), v)).collect();
        KeyIndex::Hashed(map)
    }

    fn get(&self, key: &str) -> Option<&'m Node<'a>> {
        match self {
            KeyIndex::Linear(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            KeyIndex::Hashed(map) => map.get(key).copied(),
        }
    }
}
