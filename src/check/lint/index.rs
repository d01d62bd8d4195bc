//! An index of topic templates by their literal levels, so a lint compares a template only
//! with the templates that can contain it or meet it, instead of with every other one.
//!
//! Templates are kept in a trie whose edges are a level's literal text, or one "other" edge
//! for every level that is not a plain literal (`+`, `{pid}`, `{a|b}`, `x{+r}`). A query
//! walks the trie along its own levels and returns the ids of the templates it reached, in
//! increasing order. The answer is a *superset*: it leaves out only templates that
//! [`template_contains`](super::template_contains) or
//! [`templates_may_overlap`](super::grants::templates_may_overlap) would certainly reject
//! (a literal level of one template that the other's level can never be), so a lint that
//! checks every candidate with the exact relation reports exactly what the pairwise search
//! reported. Building costs one trie node per distinct literal prefix; it borrows the
//! templates and never changes them.

use super::{MAX_EXPANSION, finite_literals};
use crate::check::{LevelPattern, Piece, TopicPattern};
use rustc_hash::FxHashMap;
use smallvec::{SmallVec, smallvec};

/// Topic templates indexed by their literal levels; ids are the caller's (rule positions).
///
/// Compact, because it lives beside the whole checked policy while the lints run: 16
/// bytes a node, one map for every literal edge, one list entry per template.
#[derive(Default)]
pub(super) struct TemplateIndex<'a> {
    nodes: Vec<Node>,
    /// The literal edges: (parent node, level text) → child node.
    literal: FxHashMap<(u32, &'a str), u32>,
    /// The templates ending at a node, as linked lists: (id, next entry).
    ended: Vec<(u32, u32)>,
}

/// The nodes a query has reached: a few, so they stay off the heap.
type Frontier = SmallVec<[u32; 8]>;

/// No node, no entry.
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Node {
    /// The first entry of the templates whose levels end at this node's depth.
    ended: u32,
    /// The child for every level that is not a plain literal.
    other: u32,
    /// The children by a plain literal level, as a linked list through `next_literal`.
    first_literal: u32,
    next_literal: u32,
}

impl Default for Node {
    fn default() -> Node {
        Node {
            ended: NONE,
            other: NONE,
            first_literal: NONE,
            next_literal: NONE,
        }
    }
}

/// Which edges of a node a query level follows, besides the "other" edge (always followed).
enum Step<'t> {
    /// The literal edge of this value.
    One(&'t str),
    /// The literal edges of these values (none: the "other" edge alone).
    Values(Vec<String>),
    /// Every literal edge.
    Anything,
}

impl<'a> TemplateIndex<'a> {
    /// Adds `topic` under `id`.
    pub(super) fn insert(&mut self, topic: &'a TopicPattern, id: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(Node::default());
        }
        let mut at = 0u32;
        for level in &topic.levels {
            at = match level {
                LevelPattern::Literal(text) => self.literal_child(at, text),
                _ => self.other_child(at),
            };
        }
        let node = &mut self.nodes[at as usize];
        self.ended.push((id, node.ended));
        node.ended = (self.ended.len() - 1) as u32;
    }

    fn literal_child(&mut self, at: u32, text: &'a str) -> u32 {
        if let Some(&child) = self.literal.get(&(at, text)) {
            return child;
        }
        let child = self.nodes.len() as u32;
        let parent = &mut self.nodes[at as usize];
        let sibling = std::mem::replace(&mut parent.first_literal, child);
        self.nodes.push(Node {
            next_literal: sibling,
            ..Node::default()
        });
        self.literal.insert((at, text), child);
        child
    }

    fn other_child(&mut self, at: u32) -> u32 {
        let existing = self.nodes[at as usize].other;
        if existing != NONE {
            return existing;
        }
        let child = self.nodes.len() as u32;
        self.nodes.push(Node::default());
        self.nodes[at as usize].other = child;
        child
    }

    /// Appends the ids of the templates ending at node `at`.
    fn ended_at(&self, at: u32, out: &mut Vec<u32>) {
        let mut entry = self.nodes[at as usize].ended;
        while entry != NONE {
            let (id, next) = self.ended[entry as usize];
            out.push(id);
            entry = next;
        }
    }

    /// The children of node `at` by a plain literal level.
    fn literal_children(&self, at: u32) -> impl Iterator<Item = u32> + '_ {
        let mut child = self.nodes[at as usize].first_literal;
        std::iter::from_fn(move || {
            (child != NONE).then(|| {
                let this = child;
                child = self.nodes[this as usize].next_literal;
                this
            })
        })
    }

    /// Ids of every template that may contain `inner`: a template with a plain literal
    /// level contains `inner` only if `inner`'s level there is that one literal, and a
    /// template longer than `inner` never contains it.
    pub(super) fn may_contain(&self, inner: &TopicPattern) -> Vec<u32> {
        let mut out = Vec::new();
        if self.nodes.is_empty() {
            return out;
        }
        let (mut frontier, mut next): (Frontier, Frontier) = (smallvec![0u32], SmallVec::new());
        for level in &inner.levels {
            let step = contained_step(level);
            self.advance(&mut frontier, &mut next, &step, &mut out);
        }
        for &at in &frontier {
            self.ended_at(at, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Ids of every template that may share a topic with `query`: where both have a level,
    /// a plain literal level of the template must be one of the values `query`'s level can
    /// take; a template longer than `query` meets it only if `query` ends in `#`.
    pub(super) fn may_overlap(&self, query: &TopicPattern) -> Vec<u32> {
        let mut out = Vec::new();
        if self.nodes.is_empty() {
            return out;
        }
        let (mut frontier, mut next): (Frontier, Frontier) = (smallvec![0u32], SmallVec::new());
        for level in &query.levels {
            let step = overlap_step(level);
            self.advance(&mut frontier, &mut next, &step, &mut out);
        }
        for &at in &frontier {
            if query.hash {
                self.subtree(at, &mut out);
            } else {
                self.ended_at(at, &mut out);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// One level down: collects the ids ending at the frontier's nodes, and moves the
    /// frontier to the children `step` and the "other" edge lead to. `next` is scratch
    /// space, so a query keeps two frontiers (on the stack while they are small), not one per
    /// level.
    fn advance(
        &self,
        frontier: &mut Frontier,
        next: &mut Frontier,
        step: &Step,
        out: &mut Vec<u32>,
    ) {
        next.clear();
        for &at in frontier.iter() {
            self.ended_at(at, out);
            match step {
                Step::One(value) => next.extend(self.literal.get(&(at, *value)).copied()),
                Step::Values(values) => {
                    for value in values {
                        if let Some(&child) = self.literal.get(&(at, value.as_str())) {
                            next.push(child);
                        }
                    }
                }
                Step::Anything => next.extend(self.literal_children(at)),
            }
            let other = self.nodes[at as usize].other;
            if other != NONE {
                next.push(other);
            }
        }
        std::mem::swap(frontier, next);
    }

    /// Every id at or below node `at`.
    fn subtree(&self, at: u32, out: &mut Vec<u32>) {
        let mut stack = vec![at];
        while let Some(at) = stack.pop() {
            self.ended_at(at, out);
            stack.extend(self.literal_children(at));
            let other = self.nodes[at as usize].other;
            if other != NONE {
                stack.push(other);
            }
        }
    }
}

/// For containment: a template's literal level `o` contains `level` only if every value
/// of `level` is `o`: a level of exactly one value follows that literal edge, a level of
/// several values or of unknown ones (`+`, `{pid}`, `{+r}`) none, and a level of no value
/// at all (which any level contains) every edge.
///
/// Counts the values without expanding them: only a level of exactly one value builds it.
fn contained_step(level: &LevelPattern) -> Step<'_> {
    match level {
        LevelPattern::Literal(text) => Step::One(text),
        LevelPattern::Any { .. } => Step::Values(Vec::new()),
        LevelPattern::Pieces(pieces) => match value_count(pieces) {
            Some(Count::Zero) => Step::Anything,
            Some(Count::One) => Step::Values(vec![the_one_value(pieces)]),
            Some(Count::Many) | None => Step::Values(Vec::new()),
        },
    }
}

/// How many distinct values a level of pieces has.
enum Count {
    Zero,
    One,
    Many,
}

/// The number of distinct values [`finite_literals`] would give for these pieces, and
/// `None` where it gives none (an attribute, a capture, more than `MAX_EXPANSION`
/// literals on the way). Two choices of one set differ, so they give different
/// literals whatever the other pieces are: the values are many as soon as one set holds
/// two different values, and none when a set is empty.
fn value_count(pieces: &[Piece]) -> Option<Count> {
    let (mut literals, mut many) = (1usize, false);
    for piece in pieces {
        let (choices, different) = match piece {
            Piece::Text(_) => (1, false),
            Piece::OneOf { values, .. } => (values.len(), values.iter().any(|v| *v != values[0])),
            Piece::Attr(_) | Piece::Capture(_) => return None,
        };
        if literals * choices > MAX_EXPANSION {
            return None;
        }
        literals *= choices;
        many |= different;
    }
    Some(match (literals, many) {
        (0, _) => Count::Zero,
        (_, false) => Count::One,
        (_, true) => Count::Many,
    })
}

/// The value of pieces of one value: their texts and each set's (only) value, in order.
fn the_one_value(pieces: &[Piece]) -> String {
    let mut value = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => value.push_str(text),
            Piece::OneOf { values, .. } => value.push_str(&values[0]),
            Piece::Attr(_) | Piece::Capture(_) => {}
        }
    }
    value
}

/// For overlap: a template's literal level `o` meets `level` only if `level` can be `o`;
/// a level of unknown values (or none) follows every edge.
fn overlap_step(level: &LevelPattern) -> Step<'_> {
    match level_values(level) {
        Some(Step::Values(values)) if values.is_empty() => Step::Anything,
        Some(step) => step,
        None => Step::Anything,
    }
}

/// The distinct values of a level (`One` or `Values`), when they are a small finite set.
fn level_values(level: &LevelPattern) -> Option<Step<'_>> {
    match level {
        LevelPattern::Literal(text) => Some(Step::One(text)),
        LevelPattern::Any { .. } => None,
        LevelPattern::Pieces(pieces) => {
            if pieces
                .iter()
                .any(|p| matches!(p, Piece::Attr(_) | Piece::Capture(_)))
            {
                return None;
            }
            let mut values = finite_literals(level)?;
            values.sort_unstable();
            values.dedup();
            Some(Step::Values(values))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::grants::templates_may_overlap;
    use super::super::samples::Sample;
    use super::super::template_contains;
    use super::*;

    /// A step as comparable data.
    fn described(step: Step) -> (u8, Vec<String>) {
        match step {
            Step::One(value) => (0, vec![value.to_string()]),
            Step::Values(values) => (1, values),
            Step::Anything => (2, Vec::new()),
        }
    }

    /// The containment step from the expanded, sorted, deduplicated values.
    fn expanded_contained_step(level: &LevelPattern) -> Step<'_> {
        match level_values(level) {
            Some(Step::Values(values)) if values.is_empty() => Step::Anything,
            Some(Step::Values(values)) if values.len() == 1 => Step::Values(values),
            Some(Step::One(value)) => Step::One(value),
            _ => Step::Values(Vec::new()),
        }
    }

    /// Counting a level's values gives the step that expanding them gives, on sampled
    /// templates and on levels of one repeated value, of an empty set and past the
    /// expansion limit.
    #[test]
    fn counted_steps_are_the_expanded_steps() {
        let set = |values: &[&str]| Piece::OneOf {
            capture: None,
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        let text = |t: &str| Piece::Text(t.into());
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let big = Piece::OneOf {
            capture: None,
            values: many.into(),
        };
        let levels = [
            vec![text("a"), set(&["b", "b"])],
            vec![set(&["x"]), text("-"), set(&["y", "y"])],
            vec![set(&["x", "y"]), text("z")],
            vec![set(&[]), text("z")],
            vec![big.clone(), big.clone(), set(&[])],
            vec![big.clone(), set(&[]), big.clone()],
            vec![set(&["a", "ab"]), set(&["b", ""])],
            vec![text("a"), Piece::Attr("pid".into())],
        ];
        let mut all: Vec<LevelPattern> = levels
            .into_iter()
            .map(|pieces| LevelPattern::Pieces(pieces.into()))
            .collect();
        for pattern in Sample::new(0x9E37_79B9_7F4A_7C15, 200).patterns() {
            all.extend(pattern.levels.iter().cloned());
        }
        for level in &all {
            assert_eq!(
                described(contained_step(level)),
                described(expanded_contained_step(level)),
                "{level:?}"
            );
        }
    }

    /// The index never leaves out a template the exact relations accept: on sampled
    /// templates, every containing (overlapping) template is among the candidates.
    #[test]
    fn candidates_include_every_related_template() {
        for seed in [
            0x9E37_79B9_7F4A_7C15,
            0x2545_F491_4F6C_DD1D,
            0xD1B5_4A32_D192_ED03,
        ] {
            let sample = Sample::new(seed, 200);
            let patterns = sample.patterns();
            let mut index = TemplateIndex::default();
            for (id, pattern) in patterns.iter().enumerate() {
                index.insert(pattern, id as u32);
            }
            let (mut contained, mut overlapping, mut pruned) = (0, 0, 0);
            for query in &patterns {
                let containers = index.may_contain(query);
                let meeting = index.may_overlap(query);
                assert!(containers.is_sorted() && meeting.is_sorted());
                for (id, other) in patterns.iter().enumerate() {
                    let id = id as u32;
                    if template_contains(other, query) {
                        contained += 1;
                        assert!(containers.contains(&id), "{other:?} contains {query:?}");
                    }
                    if templates_may_overlap(query, other) {
                        overlapping += 1;
                        assert!(meeting.contains(&id), "{other:?} meets {query:?}");
                    }
                    pruned += usize::from(!meeting.contains(&id));
                }
            }
            assert!(contained > 1000 && overlapping > 1000, "too few relations");
            assert!(pruned > 1000, "the index rules nothing out: {pruned}");
        }
    }

    /// Levels that are one value written as a set, or no value, are not literal edges.
    #[test]
    fn single_and_empty_value_levels_follow_the_right_edges() {
        assert!(
            matches!(contained_step(&LevelPattern::Any { capture: None }), Step::Values(v) if v.is_empty())
        );
        assert!(matches!(
            overlap_step(&LevelPattern::Any { capture: None }),
            Step::Anything
        ));
        let literal = LevelPattern::Literal("a".into());
        assert!(matches!(contained_step(&literal), Step::One("a")));
        assert!(matches!(overlap_step(&literal), Step::One("a")));
    }
}
