//! The trie builder: inserts each checked rule into the trie of every identity it applies
//! to, choosing the cheapest edge per level (literal, set, slot, pattern, `+`) and interning
//! sets, slots and patterns so equal levels share one edge. Pattern levels are built in
//! [`super::patterns`]. Every size is checked against [`Limits`]; this module must never
//! build past one.

use super::limits::{CompileError, Limits};
use crate::automaton::level;
use crate::automaton::*;
use crate::check::{CheckedRule, IdentityId, LevelPattern, Piece, SharedStr};
use regex_automata::meta::Regex;
use rustc_hash::FxHashMap;
use std::sync::Arc;

pub(super) struct Builder<'a> {
    pub(super) limits: &'a Limits,
    pub(super) automaton: Automaton,
    /// Sets by the address of their values (every level naming one set shares them).
    pub(super) set_by_address: FxHashMap<usize, SetId>,
    /// Sets by their sorted values.
    pub(super) set_index: FxHashMap<Vec<String>, SetId>,
    /// Each identity's slots.
    pub(super) slot_index: Vec<FxHashMap<SlotTemplate, SlotId>>,
    /// Slots by identity and the address and length of their pieces: the checked rules
    /// outlive the builder and never change, and equal piece sequences share one
    /// allocation, so most slots are found here without building a [`SlotTemplate`].
    pub(super) slot_by_address: FxHashMap<(IdentityId, usize, usize), SlotId>,
    /// Pattern levels by owner (the identity, when the pattern has attributes), pieces and
    /// whether the level is the first.
    pub(super) pattern_index: FxHashMap<(Option<IdentityId>, Vec<Piece>, bool), PatternId>,
    /// Middle regexes, shared by every pattern level with the same middle.
    pub(super) regex_index: FxHashMap<Vec<Piece>, Regex>,
}

impl<'a> Builder<'a> {
    pub(super) fn new(identities: usize, limits: &'a Limits) -> Builder<'a> {
        let nodes = vec![Node::default(); identities];
        Builder {
            limits,
            automaton: Automaton {
                roots: (0..identities as u32).map(NodeId).collect(),
                nodes,
                sets: Vec::new(),
                slots: vec![Vec::new(); identities],
                patterns: Vec::new(),
                connect: vec![Vec::new(); identities],
                rule_count: 0,
            },
            set_by_address: FxHashMap::default(),
            set_index: FxHashMap::default(),
            slot_index: vec![FxHashMap::default(); identities],
            slot_by_address: FxHashMap::default(),
            pattern_index: FxHashMap::default(),
            regex_index: FxHashMap::default(),
        }
    }

    pub(super) fn insert_rule(&mut self, rule: &CheckedRule) -> Result<(), CompileError> {
        if rule.text().len() > self.limits.max_rule_bytes {
            return Err(CompileError::RuleTooLong {
                loc: rule.loc.clone(),
                span: rule.span,
                given: rule.text().len(),
                limit: self.limits.max_rule_bytes,
            });
        }
        let accept = Accept {
            rule: rule.id,
            effect: rule.effect,
            actions: rule.actions,
        };
        let Some(topic) = &rule.topic else {
            for id in rule.identities.iter() {
                self.automaton.connect[id.0 as usize].push(accept);
            }
            return Ok(());
        };
        if topic.levels.len() > self.limits.max_template_levels {
            return Err(CompileError::TemplateTooDeep {
                loc: rule.loc.clone(),
                span: rule.span,
                given: topic.levels.len(),
                limit: self.limits.max_template_levels,
            });
        }
        if matches!(&*topic.levels, [LevelPattern::Literal(t)] if t.is_empty()) && !topic.hash {
            // `""` matches only the empty topic, which is no topic name: it never matches.
            return Ok(());
        }
        for &id in rule.identities.iter() {
            let mut at = self.automaton.roots[id.0 as usize];
            for (i, level) in topic.levels.iter().enumerate() {
                at = self.child(at, level, i == 0, rule, id)?;
            }
            self.automaton.nodes[at.0 as usize].add_accept(accept, topic.hash);
        }
        Ok(())
    }

    /// The node reached from `at` over `level`, created if needed.
    pub(super) fn child(
        &mut self,
        at: NodeId,
        level: &LevelPattern,
        first: bool,
        rule: &CheckedRule,
        identity: IdentityId,
    ) -> Result<NodeId, CompileError> {
        let edge = self.edge_for(level, first, rule, identity)?;
        let node = &self.automaton.nodes[at.0 as usize];
        let existing = match edge {
            Edge::Any => node.any(),
            Edge::Literal(text) => node.literal().get(text),
            Edge::Guarded(guard) => node.guarded_target(guard),
        };
        if let Some(next) = existing {
            return Ok(next);
        }
        if self.automaton.nodes.len() >= self.limits.max_nodes {
            return Err(CompileError::TooManyNodes {
                limit: self.limits.max_nodes,
            });
        }
        let next = NodeId(self.automaton.nodes.len() as u32);
        self.automaton.nodes.push(Node::default());
        let node = &mut self.automaton.nodes[at.0 as usize];
        match edge {
            Edge::Any => node.set_any(next),
            Edge::Literal(text) => node.add_literal(text, next),
            Edge::Guarded(guard) => node.add_guarded(guard, next),
        }
        Ok(next)
    }

    /// The edge kind for a level, interning sets, slots and patterns.
    fn edge_for<'l>(
        &mut self,
        level: &'l LevelPattern,
        first: bool,
        rule: &CheckedRule,
        identity: IdentityId,
    ) -> Result<Edge<'l>, CompileError> {
        let pieces = match level {
            LevelPattern::Any { .. } => return Ok(Edge::Any),
            LevelPattern::Literal(text) => return Ok(Edge::Literal(text)),
            LevelPattern::Pieces(pieces) => pieces,
        };
        for piece in pieces.iter() {
            if let Piece::OneOf { values, .. } = piece {
                if values.len() > self.limits.max_alternatives {
                    return Err(CompileError::TooManyAlternatives {
                        loc: rule.loc.clone(),
                        span: rule.span,
                        given: values.len(),
                        limit: self.limits.max_alternatives,
                    });
                }
            }
        }
        match level::split(pieces) {
            None => self
                .intern_slot(identity, pieces, rule)
                .map(|slot| Edge::Guarded(Guard::Slot(slot))),
            Some(cut) => match (cut.head, cut.middle, cut.tail) {
                ([], [Piece::OneOf { values, .. }], []) => {
                    Ok(Edge::Guarded(Guard::OneOf(self.intern_set(values))))
                }
                _ => self
                    .intern_pattern(pieces, cut, first, rule, identity)
                    .map(|pattern| Edge::Guarded(Guard::Pattern(pattern))),
            },
        }
    }

    pub(super) fn intern_set(&mut self, values: &Arc<[String]>) -> SetId {
        let address = values.as_ptr() as usize;
        if let Some(id) = self.set_by_address.get(&address) {
            return *id;
        }
        let mut key: Vec<String> = values.to_vec();
        key.sort_unstable();
        let id = match self.set_index.get(&key) {
            Some(id) => *id,
            None => {
                let id = SetId(self.automaton.sets.len() as u32);
                self.automaton
                    .sets
                    .push(LiteralSet::new(key.iter().map(String::as_str)));
                self.set_index.insert(key, id);
                id
            }
        };
        self.set_by_address.insert(address, id);
        id
    }

    /// A slot of `identity` for text and attributes.
    pub(super) fn intern_slot(
        &mut self,
        identity: IdentityId,
        pieces: &[Piece],
        rule: &CheckedRule,
    ) -> Result<SlotId, CompileError> {
        let address = (identity, pieces.as_ptr() as usize, pieces.len());
        if let Some(id) = self.slot_by_address.get(&address) {
            return Ok(*id);
        }
        let id = self.intern_slot_template(identity, pieces, rule)?;
        self.slot_by_address.insert(address, id);
        Ok(id)
    }

    /// The slot of `pieces` for `identity`, found (or added) by its content.
    fn intern_slot_template(
        &mut self,
        identity: IdentityId,
        pieces: &[Piece],
        rule: &CheckedRule,
    ) -> Result<SlotId, CompileError> {
        let template = SlotTemplate::new(pieces).ok_or_else(|| CompileError::Pattern {
            loc: rule.loc.clone(),
            span: rule.span,
            message: "a slot holds a capture or a set".into(),
        })?;
        let index = &mut self.slot_index[identity.0 as usize];
        if let Some(id) = index.get(&template) {
            return Ok(*id);
        }
        let slots = &mut self.automaton.slots[identity.0 as usize];
        let id = SlotId(slots.len() as u32);
        slots.push(template.clone());
        index.insert(template, id);
        Ok(id)
    }

    pub(super) fn finish(mut self, rule_count: usize) -> Automaton {
        self.automaton.rule_count = rule_count;
        // Children are always created after their parent, so one reverse pass suffices.
        let nodes = &mut self.automaton.nodes;
        for i in (0..nodes.len()).rev() {
            let below = below_of(nodes, &nodes[i]);
            nodes[i].set_below(below);
        }
        self.automaton
    }
}

enum Edge<'l> {
    Any,
    Literal(&'l SharedStr),
    Guarded(Guard),
}
