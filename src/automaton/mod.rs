//! The compiled form of a policy: one level trie per identity.
//!
//! Each identity gets a root; every rule that applies to it is a path of level edges from
//! that root. A node's edges, tried in order for each topic level:
//! * `literal` — exact text, a hash-map lookup (or a short list);
//! * `one_of` — membership in a finite set of literals (`{a|b}`, `{x in set}`);
//! * `slot` — a level of text and attributes (`{pid}_{aid}`): its text is rendered once per
//!   session when it is bound, then compared;
//! * `pattern` — a level mixing text and attributes with sets and captures ([`level`]):
//!   built once here, shared by every session;
//! * `any` — `+` or `{+name}`.
//!
//! Rules end at a node as `exact` accepts, or as `hash` accepts when the template ends in
//! `#` (matching the node's own level and everything below). Identical prefixes share
//! nodes, so a decision visits O(levels × live branches) nodes, not O(rules).
//!
//! The automaton is immutable once built, `Send + Sync`, and knows nothing of sessions,
//! tokio or pest. [`Automaton::verify`] checks its invariants; [`Automaton::dump`] prints a
//! stable text form used in snapshot tests.

mod dump;
pub mod level;
mod verify;

pub use level::{Affix, Middle, PatternLevel};
pub use verify::VerifyError;

use crate::ast::Effect;
use crate::check::{ActionSet, IdentityId, Piece, RuleId};
use rustc_hash::{FxHashMap, FxHashSet};

/// A node's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// A finite literal set's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SetId(pub u32);

/// An attribute-dependent text's index among its identity's slots; sessions render each
/// slot of their identity once, when they are bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotId(pub u32);

/// A compiled pattern level's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PatternId(pub u32);

/// A rule that ends at a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accept {
    pub(crate) rule: RuleId,
    pub(crate) effect: Effect,
    pub(crate) actions: ActionSet,
}

/// Literal edges: a short list scanned linearly, or a map once it grows.
#[derive(Clone, Debug)]
pub enum LiteralEdges {
    /// A short list, searched in order.
    Few(Vec<(Box<str>, NodeId)>),
    /// A hash map, for nodes with many literal edges.
    Many(FxHashMap<Box<str>, NodeId>),
}

/// Above this many literal edges, a node switches to a hash map.
pub const LITERAL_LIST_MAX: usize = 8;

impl Default for LiteralEdges {
    fn default() -> Self {
        LiteralEdges::Few(Vec::new())
    }
}

impl LiteralEdges {
    pub(crate) fn get(&self, level: &str) -> Option<NodeId> {
        match self {
            LiteralEdges::Few(list) => list.iter().find(|(k, _)| &**k == level).map(|(_, n)| *n),
            LiteralEdges::Many(map) => map.get(level).copied(),
        }
    }

    pub(crate) fn insert(&mut self, level: &str, node: NodeId) {
        match self {
            LiteralEdges::Few(list) if list.len() < LITERAL_LIST_MAX => {
                list.push((level.into(), node))
            }
            LiteralEdges::Few(list) => {
                let mut map: FxHashMap<Box<str>, NodeId> = list.drain(..).collect();
                map.insert(level.into(), node);
                *self = LiteralEdges::Many(map);
            }
            LiteralEdges::Many(map) => {
                map.insert(level.into(), node);
            }
        }
    }

    /// All edges in no particular order, without allocating (for walks).
    pub fn iter(&self) -> impl Iterator<Item = (&str, NodeId)> + '_ {
        let (few, many) = match self {
            LiteralEdges::Few(list) => (Some(list.iter().map(|(k, n)| (&**k, *n))), None),
            LiteralEdges::Many(map) => (None, Some(map.iter().map(|(k, n)| (&**k, *n)))),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }

    /// All edges, sorted by text (for dumps and verification).
    pub fn sorted(&self) -> Vec<(&str, NodeId)> {
        let mut edges: Vec<(&str, NodeId)> = match self {
            LiteralEdges::Few(list) => list.iter().map(|(k, n)| (&**k, *n)).collect(),
            LiteralEdges::Many(map) => map.iter().map(|(k, n)| (&**k, *n)).collect(),
        };
        edges.sort_unstable();
        edges
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            LiteralEdges::Few(list) => list.len(),
            LiteralEdges::Many(map) => map.len(),
        }
    }

    /// True when there are no literal edges.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One state of the level trie.
#[derive(Clone, Debug, Default)]
pub struct Node {
    pub(crate) literal: LiteralEdges,
    pub(crate) one_of: Vec<(SetId, NodeId)>,
    pub(crate) slot: Vec<(SlotId, NodeId)>,
    pub(crate) pattern: Vec<(PatternId, NodeId)>,
    pub(crate) any: Option<NodeId>,
    /// Rules whose template ends exactly here.
    pub(crate) exact: Vec<Accept>,
    /// Rules whose template ends here with `#`.
    pub(crate) hash: Vec<Accept>,
    /// Every action of every accept at or below this node: lets a walk skip subtrees.
    pub(crate) actions_below: ActionSet,
}

impl Node {
    /// Every outgoing edge's target.
    pub fn targets(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.literal
            .iter()
            .map(|(_, n)| n)
            .chain(self.one_of.iter().map(|e| e.1))
            .chain(self.slot.iter().map(|e| e.1))
            .chain(self.pattern.iter().map(|e| e.1))
            .chain(self.any)
    }
}

/// A finite set of literals for a `one_of` edge.
#[derive(Clone, Debug)]
pub struct LiteralSet {
    pub(crate) values: FxHashSet<Box<str>>,
    /// Some value does not start with `$` (so a leading wildcard level can reach it).
    pub has_plain_value: bool,
}

/// Text and attributes, rendered into plain text per session: a whole level, or the head
/// or tail of a [`PatternLevel`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SlotTemplate {
    pub(crate) pieces: Vec<SlotPiece>,
}

/// A piece of a [`SlotTemplate`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SlotPiece {
    /// Literal text.
    Text(String),
    /// The session's value of the named attribute.
    Attr(String),
}

impl SlotTemplate {
    /// The slot for text and attribute pieces; `None` if a piece is a capture or a set.
    pub fn new(pieces: &[Piece]) -> Option<SlotTemplate> {
        let pieces = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => Some(SlotPiece::Text(t.clone())),
                Piece::Attr(a) => Some(SlotPiece::Attr(a.clone())),
                Piece::Capture(_) | Piece::OneOf { .. } => None,
            })
            .collect::<Option<Vec<SlotPiece>>>()?;
        Some(SlotTemplate { pieces })
    }

    /// The text for these attributes, or the first attribute that is missing.
    pub fn render(
        &self,
        attrs: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, &str> {
        let mut text = String::new();
        for piece in &self.pieces {
            match piece {
                SlotPiece::Text(t) => text.push_str(t),
                SlotPiece::Attr(name) => text.push_str(attrs.get(name).ok_or(name.as_str())?),
            }
        }
        Ok(text)
    }
}

impl std::fmt::Display for SlotTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for piece in &self.pieces {
            match piece {
                SlotPiece::Text(t) => f.write_str(t)?,
                SlotPiece::Attr(a) => write!(f, "{{{a}}}")?,
            }
        }
        Ok(())
    }
}

/// The whole compiled policy.
#[derive(Clone, Debug)]
pub struct Automaton {
    /// One root per identity, indexed by `IdentityId`.
    pub(crate) roots: Vec<NodeId>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) sets: Vec<LiteralSet>,
    /// Each identity's slots, indexed by `IdentityId` then [`SlotId`].
    pub(crate) slots: Vec<Vec<SlotTemplate>>,
    /// Pattern levels; one whose head or tail is a slot belongs to that slot's identity.
    pub(crate) patterns: Vec<PatternLevel>,
    /// Connect rules per identity (no topic), in file order.
    pub(crate) connect: Vec<Vec<Accept>>,
    pub(crate) rule_count: usize,
}

impl Automaton {
    pub(crate) fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    /// The slots of one identity.
    pub fn identity_slots(&self, identity: IdentityId) -> &[SlotTemplate] {
        self.slots
            .get(identity.0 as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// Nodes of every identity's trie.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Finite literal sets (declared sets and `{a|b}` alternatives), each stored once.
    pub fn set_count(&self) -> usize {
        self.sets.len()
    }

    /// Pattern levels (text mixed with captures, sets or attributes), each built once.
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// Slots over every identity.
    pub fn slot_count(&self) -> usize {
        self.slots.iter().map(Vec::len).sum()
    }

    /// A rough count of heap bytes held, for limits and the performance docs.
    pub fn approx_heap_bytes(&self) -> usize {
        let node = std::mem::size_of::<Node>();
        let mut total = self.nodes.len() * node;
        for n in &self.nodes {
            total += n.literal.len() * (std::mem::size_of::<(Box<str>, NodeId)>() + 16);
            total += (n.exact.len() + n.hash.len()) * std::mem::size_of::<Accept>();
            total += (n.one_of.len() + n.slot.len() + n.pattern.len()) * 8;
        }
        total
    }
}
