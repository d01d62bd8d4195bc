//! The compiled form of a policy: one level trie per identity.
//!
//! Each identity gets a root; every rule that applies to it is a path of level edges from
//! that root. A node's edges, tried for each topic level:
//! * `literal` — exact text, a hash-map lookup (or a short list);
//! * guarded edges ([`Guard`]), in one list: `OneOf` — membership in a finite set of
//!   literals (`{a|b}`, `{x in set}`); `Slot` — a level of text and attributes
//!   (`{pid}_{aid}`): its text is rendered once per session when it is bound, then
//!   compared; `Pattern` — a level mixing text and attributes with sets and captures
//!   ([`level`]): built once here, shared by every session;
//! * `any` — `+` or `{+name}`.
//!
//! Rules end at a node as `exact` accepts, or as `hash` accepts when the template ends in
//! `#` (matching the node's own level and everything below). Identical prefixes share
//! nodes, so a decision visits O(levels × live branches) nodes, not O(rules). Each node
//! summarizes which actions its subtree allows and denies ([`Below`]), so a walk skips
//! subtrees with nothing for its action and a search for a deny skips those without one.
//! A node is at most 64 bytes (lists are boxed slices; the rare edge kinds share one), so
//! a policy of 100,000 rules keeps its quarter-million nodes in about 16 MB.
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
use crate::check::matches::AttrValues;
use crate::check::{ActionSet, IdentityId, Piece, RuleId, SharedStr};
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

/// A bound session's rendered slots: one text holding them end to end, and where each
/// starts and ends. Borrowed, so reading a slot never copies it.
#[derive(Clone, Copy, Debug)]
pub struct SlotTexts<'a> {
    text: &'a str,
    /// Slot `i` spans `bounds[i]..bounds[i + 1]`: one more bound than slots.
    bounds: &'a [u32],
}

impl<'a> SlotTexts<'a> {
    /// Slots stored end to end in `text`, slot `i` spanning `bounds[i]..bounds[i + 1]`.
    /// The bounds must be non-decreasing character boundaries of `text`, and there must
    /// be at least one.
    pub fn new(text: &'a str, bounds: &'a [u32]) -> SlotTexts<'a> {
        SlotTexts { text, bounds }
    }

    /// No slots (an identity without attribute-dependent levels).
    pub fn empty() -> SlotTexts<'static> {
        SlotTexts {
            text: "",
            bounds: &[0],
        }
    }

    /// The rendered text of `slot`.
    #[inline]
    pub fn get(&self, slot: SlotId) -> &'a str {
        let i = slot.0 as usize;
        &self.text[self.bounds[i] as usize..self.bounds[i + 1] as usize]
    }

    /// The rendered bytes of `slot`, for comparing: slicing bytes skips the character
    /// boundary checks of slicing a `str` (the bounds are boundaries anyway).
    #[inline]
    pub fn bytes(&self, slot: SlotId) -> &'a [u8] {
        let i = slot.0 as usize;
        &self.text.as_bytes()[self.bounds[i] as usize..self.bounds[i + 1] as usize]
    }

    /// How many slots there are.
    pub fn len(&self) -> usize {
        self.bounds.len().saturating_sub(1)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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

/// Literal edges: a short list scanned linearly, or a map once it grows. Boxed slices, not
/// vectors, so the enum is two words: most nodes have one literal edge or none. The texts
/// are the checked policy's own [`SharedStr`]s: an edge costs no allocation of its own.
#[derive(Clone, Debug)]
pub enum LiteralEdges {
    /// A short list, searched in order.
    Few(Box<[(SharedStr, NodeId)]>),
    /// A hash map, for nodes with many literal edges.
    Many(Box<FxHashMap<SharedStr, NodeId>>),
}

/// Above this many literal edges, a node switches to a hash map.
pub const LITERAL_LIST_MAX: usize = 8;

impl Default for LiteralEdges {
    fn default() -> Self {
        LiteralEdges::Few(Box::default())
    }
}

impl LiteralEdges {
    #[inline]
    pub(crate) fn get(&self, level: &str) -> Option<NodeId> {
        match self {
            LiteralEdges::Few(list) => list
                .iter()
                .find(|(k, _)| same_text(k, level))
                .map(|(_, n)| *n),
            LiteralEdges::Many(map) => map.get(level).copied(),
        }
    }

    pub(crate) fn insert(&mut self, level: &SharedStr, node: NodeId) {
        match self {
            LiteralEdges::Few(list) if list.len() < LITERAL_LIST_MAX => {
                push_boxed(list, (level.clone(), node))
            }
            LiteralEdges::Few(list) => {
                let mut map: FxHashMap<SharedStr, NodeId> =
                    std::mem::take(list).into_vec().into_iter().collect();
                map.insert(level.clone(), node);
                *self = LiteralEdges::Many(Box::new(map));
            }
            LiteralEdges::Many(map) => {
                map.insert(level.clone(), node);
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
        let mut edges: Vec<(&str, NodeId)> = self.iter().collect();
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

/// `a == b`, comparing bytes in place: levels are a few bytes long, and for those a loop
/// is cheaper than a call to `memcmp`.
#[inline]
pub fn same_text(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

/// `a == b` for bytes, compared in place like [`same_text`].
#[inline]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Appends to a boxed slice (a node's edges and accepts are built once and then only read,
/// so they keep no spare capacity).
fn push_boxed<T>(slice: &mut Box<[T]>, item: T) {
    let mut items = std::mem::take(slice).into_vec();
    items.push(item);
    *slice = items.into_boxed_slice();
}

/// An edge that is neither a literal nor `+`: a finite set, a slot or a pattern level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// The level is one of a finite set of literals.
    OneOf(SetId),
    /// The level equals a slot of the session (text and attributes).
    Slot(SlotId),
    /// The level matches a pattern level.
    Pattern(PatternId),
}

/// Which actions some accept at or below a node grants (`allow`) or refuses (`deny`): a
/// walk skips a subtree that holds nothing for its action, and a search for a deny skips
/// one that holds no deny.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Below {
    /// Actions some allow rule at or below the node grants.
    pub allow: ActionSet,
    /// Actions some deny rule at or below the node refuses.
    pub deny: ActionSet,
}

impl Below {
    /// Every action of some accept below, allow or deny.
    #[inline]
    pub fn any(self) -> ActionSet {
        self.allow.union(self.deny)
    }

    /// The actions of `effect` below.
    #[inline]
    pub fn of(self, effect: Effect) -> ActionSet {
        match effect {
            Effect::Allow => self.allow,
            Effect::Deny => self.deny,
        }
    }

    fn add(&mut self, accept: &Accept) {
        match accept.effect {
            Effect::Allow => self.allow = self.allow.union(accept.actions),
            Effect::Deny => self.deny = self.deny.union(accept.actions),
        }
    }

    fn union(self, other: Below) -> Below {
        Below {
            allow: self.allow.union(other.allow),
            deny: self.deny.union(other.deny),
        }
    }
}

/// One state of the level trie, in 64 bytes: every list is a boxed slice (two words) and
/// the rare kinds of edge share one list.
#[derive(Clone, Debug, Default)]
pub struct Node {
    pub(crate) literal: LiteralEdges,
    /// Set, slot and pattern edges, each kind in the order it was added.
    pub(crate) guarded: Box<[(Guard, NodeId)]>,
    /// The rules whose template ends exactly here (the first `exact_len`), then those
    /// whose template ends here with `#`; each part in rule order.
    pub(crate) accepts: Box<[Accept]>,
    pub(crate) exact_len: u32,
    pub(crate) any: Option<NodeId>,
    /// What the accepts at or below this node hold: lets a walk skip subtrees.
    pub(crate) below: Below,
}

const _: () = assert!(std::mem::size_of::<Node>() <= 64);

impl Node {
    /// The literal edges.
    #[inline]
    pub fn literal(&self) -> &LiteralEdges {
        &self.literal
    }

    /// Set, slot and pattern edges.
    #[inline]
    pub fn guarded(&self) -> &[(Guard, NodeId)] {
        &self.guarded
    }

    /// The `+` edge.
    #[inline]
    pub fn any(&self) -> Option<NodeId> {
        self.any
    }

    /// Rules whose template ends exactly here.
    #[inline]
    pub fn exact(&self) -> &[Accept] {
        &self.accepts[..self.exact_len as usize]
    }

    /// Rules whose template ends here with `#`.
    #[inline]
    pub fn hash(&self) -> &[Accept] {
        &self.accepts[self.exact_len as usize..]
    }

    /// What the accepts at or below this node allow and deny.
    #[inline]
    pub fn below(&self) -> Below {
        self.below
    }

    /// Every action of every accept at or below this node.
    #[inline]
    pub fn actions_below(&self) -> ActionSet {
        self.below.any()
    }

    /// The target of a set, slot or pattern edge, if the node has it.
    pub fn guarded_target(&self, guard: Guard) -> Option<NodeId> {
        self.guarded.iter().find(|e| e.0 == guard).map(|e| e.1)
    }

    /// Every outgoing edge's target.
    pub fn targets(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.literal
            .iter()
            .map(|(_, n)| n)
            .chain(self.guarded.iter().map(|e| e.1))
            .chain(self.any)
    }

    pub(crate) fn add_literal(&mut self, level: &SharedStr, next: NodeId) {
        self.literal.insert(level, next);
    }

    pub(crate) fn add_guarded(&mut self, guard: Guard, next: NodeId) {
        push_boxed(&mut self.guarded, (guard, next));
    }

    pub(crate) fn set_any(&mut self, next: NodeId) {
        self.any = Some(next);
    }

    /// Adds an accept; rules are added in file order, so each part stays in rule order.
    pub(crate) fn add_accept(&mut self, accept: Accept, hash: bool) {
        let mut accepts = std::mem::take(&mut self.accepts).into_vec();
        if hash {
            accepts.push(accept);
        } else {
            accepts.insert(self.exact_len as usize, accept);
            self.exact_len += 1;
        }
        self.accepts = accepts.into_boxed_slice();
    }

    /// What this node's own accepts hold.
    pub(crate) fn own_below(&self) -> Below {
        let mut below = Below::default();
        for accept in self.accepts.iter() {
            below.add(accept);
        }
        below
    }

    /// Sets the summary of this node's accepts and its children's (see [`Self::below`]).
    pub(crate) fn set_below(&mut self, below: Below) {
        self.below = below;
    }
}

/// The summary a node must have: its own accepts' and its children's.
pub(crate) fn below_of(nodes: &[Node], node: &Node) -> Below {
    node.targets().fold(node.own_below(), |below, t| {
        below.union(nodes[t.0 as usize].below)
    })
}

/// A finite set of literals for a `one_of` edge.
#[derive(Clone, Debug)]
pub struct LiteralSet {
    values: SetValues,
    /// Some value does not start with `$` (so a leading wildcard level can reach it).
    pub has_plain_value: bool,
}

/// Up to this many values, a set is a list sorted by length; above, a hash set.
pub const SMALL_SET_MAX: usize = 32;

/// How a [`LiteralSet`] keeps its values.
#[derive(Clone, Debug)]
enum SetValues {
    /// A few values sorted by length, then text: a lookup compares lengths (one word each)
    /// and only the bytes of values of the level's length, which for a few short values
    /// costs less than hashing the level.
    Few(Box<[Box<str>]>),
    /// Many values: one hash and one probe.
    Many(FxHashSet<Box<str>>),
}

impl LiteralSet {
    /// The set of `values` (duplicates are kept once).
    pub fn new<'v>(values: impl IntoIterator<Item = &'v str>) -> LiteralSet {
        let mut list: Vec<Box<str>> = values.into_iter().map(Box::from).collect();
        list.sort_unstable_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        list.dedup();
        let has_plain_value = list.iter().any(|v| !v.starts_with('$'));
        let values = if list.len() <= SMALL_SET_MAX {
            SetValues::Few(list.into_boxed_slice())
        } else {
            SetValues::Many(list.into_iter().collect())
        };
        LiteralSet {
            values,
            has_plain_value,
        }
    }

    /// Whether `level` is one of the values.
    #[inline]
    pub fn contains(&self, level: &str) -> bool {
        match &self.values {
            SetValues::Few(list) => small_set_contains(list, level),
            SetValues::Many(set) => set.contains(level),
        }
    }

    /// The values, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let (few, many) = match &self.values {
            SetValues::Few(list) => (Some(list.iter().map(|v| &**v)), None),
            SetValues::Many(set) => (None, Some(set.iter().map(|v| &**v))),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        match &self.values {
            SetValues::Few(list) => list.len(),
            SetValues::Many(set) => set.len(),
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Membership in a list sorted by length: skip shorter values, compare the bytes of those
/// of the level's length, stop at the first longer one. The same answer as a hash set of
/// the values (the list holds exactly them), without hashing the level.
#[inline]
fn small_set_contains(sorted_by_len: &[Box<str>], level: &str) -> bool {
    for value in sorted_by_len {
        if value.len() > level.len() {
            return false;
        }
        if same_text(value, level) {
            return true;
        }
    }
    false
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
                Piece::Text(t) => Some(SlotPiece::Text(t.to_string())),
                Piece::Attr(a) => Some(SlotPiece::Attr(a.to_string())),
                Piece::Capture(_) | Piece::OneOf { .. } => None,
            })
            .collect::<Option<Vec<SlotPiece>>>()?;
        Some(SlotTemplate { pieces })
    }

    /// The text for these attributes, or the first attribute that is missing.
    pub fn render(&self, attrs: &(impl AttrValues + ?Sized)) -> Result<String, &str> {
        let mut text = String::with_capacity(self.rendered_len(attrs)?);
        self.render_into(attrs, &mut text)?;
        Ok(text)
    }

    /// How many bytes [`SlotTemplate::render`] gives, or the first attribute missing.
    pub fn rendered_len(&self, attrs: &(impl AttrValues + ?Sized)) -> Result<usize, &str> {
        self.pieces.iter().try_fold(0, |len, piece| match piece {
            SlotPiece::Text(t) => Ok(len + t.len()),
            SlotPiece::Attr(name) => Ok(len + attrs.value(name).ok_or(name.as_str())?.len()),
        })
    }

    /// Appends the text to `out`, or names the first attribute missing (`out` may then
    /// hold part of the text).
    pub fn render_into(
        &self,
        attrs: &(impl AttrValues + ?Sized),
        out: &mut String,
    ) -> Result<(), &str> {
        for piece in &self.pieces {
            match piece {
                SlotPiece::Text(t) => out.push_str(t),
                SlotPiece::Attr(name) => out.push_str(attrs.value(name).ok_or(name.as_str())?),
            }
        }
        Ok(())
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
            // The edge texts are shared with the checked policy: only the entries count.
            total += n.literal.len() * std::mem::size_of::<(SharedStr, NodeId)>();
            total += n.accepts.len() * std::mem::size_of::<Accept>();
            total += n.guarded.len() * std::mem::size_of::<(Guard, NodeId)>();
        }
        total
    }
}
