//! Checked rules → an [`Automaton`]: one level trie per identity.
//!
//! Each rule is inserted once per identity it applies to. Each level becomes the cheapest
//! edge that can match it: a literal, a finite set, an attribute slot (text rendered once
//! per session), a pattern level ([`crate::automaton::level`]: built here, once, and
//! shared by every session), or `+`. Equal levels at the same node share one edge, so
//! rules with a common prefix share states and a decision's cost does not grow with the
//! rule count.
//!
//! Every size is bounded by [`Limits`]; exceeding one is a typed [`CompileError`] naming
//! the rule, never an out-of-memory, and `topicguard check` reports it like any other
//! error of the file. A single regex over whole topics is deliberately not used: with
//! thousands of rules it can need gigabytes, while one small regex per distinct level
//! pattern stays small.

use crate::ast::Action;
use crate::automaton::level::{self, MiddleError};
use crate::automaton::*;
use crate::check::{ActionSet, Checked, CheckedRule, IdentityId, LevelPattern, Piece};
use crate::diagnostic::Diagnostic;
use crate::source::{Loc, Span};
use regex_automata::meta::Regex;
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

/// Size limits for compiling and deciding.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Rules in one policy.
    pub max_rules: usize,
    /// Levels in one topic template.
    pub max_template_levels: usize,
    /// Bytes in one rule's text.
    pub max_rule_bytes: usize,
    /// Values in one `{a|b|...}` or set used in a level.
    pub max_alternatives: usize,
    /// Nodes in the whole automaton.
    pub max_nodes: usize,
    /// Levels in a topic or filter at decision time (more is a deny).
    pub max_topic_levels: usize,
    /// Bytes in a topic or filter at decision time (MQTT's own cap is 65,535).
    pub max_topic_bytes: usize,
    /// Node visits allowed when proving a subscription's containment (fail closed).
    pub subscribe_budget: usize,
    /// Bytes for the automata of one pattern level that mixes captures or sets with more
    /// text, sets or captures (a lone set or capture needs none).
    pub max_pattern_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_rules: 1_000_000,
            max_template_levels: 64,
            max_rule_bytes: 4096,
            max_alternatives: 100_000,
            max_nodes: 10_000_000,
            max_topic_levels: 128,
            max_topic_bytes: 65_535,
            subscribe_budget: 200_000,
            max_pattern_bytes: 16 << 20,
        }
    }
}

/// A policy that is valid but too large to compile within [`Limits`].
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CompileError {
    #[error("the policy has {given} rules; the limit is {limit}")]
    #[diagnostic(code(topicguard::compile::too_many_rules))]
    TooManyRules { given: usize, limit: usize },
    #[error("{loc}: the topic template has {given} levels; the limit is {limit}")]
    #[diagnostic(code(topicguard::compile::template_too_deep))]
    TemplateTooDeep {
        loc: Loc,
        span: Span,
        given: usize,
        limit: usize,
    },
    #[error("{loc}: the rule is {given} bytes long; the limit is {limit}")]
    #[diagnostic(code(topicguard::compile::rule_too_long))]
    RuleTooLong {
        loc: Loc,
        span: Span,
        given: usize,
        limit: usize,
    },
    #[error("{loc}: a level lists {given} alternatives; the limit is {limit}")]
    #[diagnostic(code(topicguard::compile::too_many_alternatives))]
    TooManyAlternatives {
        loc: Loc,
        span: Span,
        given: usize,
        limit: usize,
    },
    #[error("the automaton needs more than {limit} nodes")]
    #[diagnostic(
        code(topicguard::compile::too_many_nodes),
        help("split the policy or raise the limit")
    )]
    TooManyNodes { limit: usize },
    #[error("{loc}: a level pattern of this rule needs more than {limit} bytes")]
    #[diagnostic(
        code(topicguard::compile::pattern_too_large),
        help("split the set, or give the set a level of its own")
    )]
    PatternTooLarge { loc: Loc, span: Span, limit: usize },
    #[error("{loc}: the level pattern could not be compiled: {message}")]
    #[diagnostic(code(topicguard::compile::pattern))]
    Pattern {
        loc: Loc,
        span: Span,
        message: String,
    },
}

impl CompileError {
    /// The error as a diagnostic of the policy file, at the rule it names (if any).
    pub fn to_diagnostic(&self) -> Diagnostic {
        let message = self.to_string();
        let (code, span, help) = match self {
            CompileError::TooManyRules { .. } => ("compile::too-many-rules", None, None),
            CompileError::TooManyNodes { .. } => (
                "compile::too-many-nodes",
                None,
                Some("split the policy into several files"),
            ),
            CompileError::TemplateTooDeep { span, .. } => {
                ("compile::template-too-deep", Some(*span), None)
            }
            CompileError::RuleTooLong { span, .. } => ("compile::rule-too-long", Some(*span), None),
            CompileError::TooManyAlternatives { span, .. } => {
                ("compile::too-many-alternatives", Some(*span), None)
            }
            CompileError::PatternTooLarge { span, .. } => (
                "compile::pattern-too-large",
                Some(*span),
                Some(
                    "give the set a level of its own, or split it: a lone set in a level (`{v in big}`, `{pid}_{v in big}`) needs no pattern",
                ),
            ),
            CompileError::Pattern { span, .. } => ("compile::pattern", Some(*span), None),
        };
        // The location is shown by the diagnostic itself.
        let message = match message.split_once(": ") {
            Some((_, rest)) if span.is_some() => rest.to_string(),
            _ => message,
        };
        let diagnostic = Diagnostic::error(code, span.unwrap_or_default(), message);
        match help {
            Some(help) => diagnostic.with_help(help),
            None => diagnostic,
        }
    }
}

/// Compiles a checked policy.
pub fn compile(checked: &Checked, limits: &Limits) -> Result<Automaton, CompileError> {
    if checked.rules.len() > limits.max_rules {
        return Err(CompileError::TooManyRules {
            given: checked.rules.len(),
            limit: limits.max_rules,
        });
    }
    let mut builder = Builder::new(checked.identities.len(), limits);
    for rule in &checked.rules {
        builder.insert_rule(rule)?;
    }
    Ok(builder.finish(checked.rules.len()))
}

struct Builder<'a> {
    limits: &'a Limits,
    automaton: Automaton,
    /// Sets by the address of their values (every level naming one set shares them).
    set_by_address: FxHashMap<usize, SetId>,
    /// Sets by their sorted values.
    set_index: FxHashMap<Vec<String>, SetId>,
    /// Each identity's slots.
    slot_index: Vec<FxHashMap<SlotTemplate, SlotId>>,
    /// Pattern levels by owner (the identity, when the pattern has attributes), pieces and
    /// whether the level is the first.
    pattern_index: FxHashMap<(Option<IdentityId>, Vec<Piece>, bool), PatternId>,
    /// Middle regexes, shared by every pattern level with the same middle.
    regex_index: FxHashMap<Vec<Piece>, Regex>,
}

impl<'a> Builder<'a> {
    fn new(identities: usize, limits: &'a Limits) -> Builder<'a> {
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
            pattern_index: FxHashMap::default(),
            regex_index: FxHashMap::default(),
        }
    }

    fn insert_rule(&mut self, rule: &CheckedRule) -> Result<(), CompileError> {
        if rule.text.len() > self.limits.max_rule_bytes {
            return Err(CompileError::RuleTooLong {
                loc: rule.loc.clone(),
                span: rule.span,
                given: rule.text.len(),
                limit: self.limits.max_rule_bytes,
            });
        }
        let accept = Accept {
            rule: rule.id,
            effect: rule.effect,
            actions: rule.actions,
        };
        let Some(topic) = &rule.topic else {
            for id in &rule.identities {
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
        if topic.levels == [LevelPattern::Literal(String::new())] && !topic.hash {
            // `""` matches only the empty topic, which is no topic name: it never matches.
            return Ok(());
        }
        for &id in &rule.identities {
            let mut at = self.automaton.roots[id.0 as usize];
            for (i, level) in topic.levels.iter().enumerate() {
                at = self.child(at, level, i == 0, rule, id)?;
            }
            let node = &mut self.automaton.nodes[at.0 as usize];
            if topic.hash {
                node.hash.push(accept)
            } else {
                node.exact.push(accept)
            }
        }
        Ok(())
    }

    /// The node reached from `at` over `level`, created if needed.
    fn child(
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
            Edge::Any => node.any,
            Edge::Literal(text) => node.literal.get(text),
            Edge::OneOf(set) => node.one_of.iter().find(|e| e.0 == set).map(|e| e.1),
            Edge::Slot(slot) => node.slot.iter().find(|e| e.0 == slot).map(|e| e.1),
            Edge::Pattern(p) => node.pattern.iter().find(|e| e.0 == p).map(|e| e.1),
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
            Edge::Any => node.any = Some(next),
            Edge::Literal(text) => node.literal.insert(text, next),
            Edge::OneOf(set) => node.one_of.push((set, next)),
            Edge::Slot(slot) => node.slot.push((slot, next)),
            Edge::Pattern(p) => node.pattern.push((p, next)),
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
        for piece in pieces {
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
            None => self.intern_slot(identity, pieces, rule).map(Edge::Slot),
            Some(cut) => match (cut.head, cut.middle, cut.tail) {
                ([], [Piece::OneOf { values, .. }], []) => Ok(Edge::OneOf(self.intern_set(values))),
                _ => self
                    .intern_pattern(pieces, cut, first, rule, identity)
                    .map(Edge::Pattern),
            },
        }
    }

    fn intern_set(&mut self, values: &Arc<[String]>) -> SetId {
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
                self.automaton.sets.push(LiteralSet {
                    has_plain_value: key.iter().any(|v| !v.starts_with('$')),
                    values: key
                        .iter()
                        .map(|v| v.as_str().into())
                        .collect::<FxHashSet<Box<str>>>(),
                });
                self.set_index.insert(key, id);
                id
            }
        };
        self.set_by_address.insert(address, id);
        id
    }

    /// A slot of `identity` for text and attributes.
    fn intern_slot(
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

    /// A head or tail: plain text, or a slot of `identity` when it has attributes.
    fn affix(
        &mut self,
        identity: IdentityId,
        pieces: &[Piece],
        rule: &CheckedRule,
    ) -> Result<Affix, CompileError> {
        if pieces.iter().any(|p| matches!(p, Piece::Attr(_))) {
            return self.intern_slot(identity, pieces, rule).map(Affix::Slot);
        }
        let text: String = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        Ok(Affix::Text(text.into()))
    }

    fn intern_pattern(
        &mut self,
        pieces: &[Piece],
        cut: level::Split<'_>,
        first: bool,
        rule: &CheckedRule,
        identity: IdentityId,
    ) -> Result<PatternId, CompileError> {
        let owner = pieces
            .iter()
            .any(|p| matches!(p, Piece::Attr(_)))
            .then_some(identity);
        let key = (owner, pieces.to_vec(), first);
        if let Some(id) = self.pattern_index.get(&key) {
            return Ok(*id);
        }
        let middle = match cut.middle {
            [Piece::Capture(_)] => Middle::Any,
            [Piece::OneOf { values, .. }] => Middle::Set(self.intern_set(values)),
            middle => Middle::Regex(self.middle_regex(middle, rule)?),
        };
        let pattern = PatternLevel {
            pieces: pieces.to_vec(),
            head: self.affix(identity, cut.head, rule)?,
            middle,
            tail: self.affix(identity, cut.tail, rule)?,
            leading_capture: first
                && cut.head.is_empty()
                && matches!(cut.middle.first(), Some(Piece::Capture(_))),
            dollar_only: level::dollar_only(pieces),
        };
        let id = PatternId(self.automaton.patterns.len() as u32);
        self.automaton.patterns.push(pattern);
        self.pattern_index.insert(key, id);
        Ok(id)
    }

    fn middle_regex(
        &mut self,
        middle: &[Piece],
        rule: &CheckedRule,
    ) -> Result<Regex, CompileError> {
        if let Some(regex) = self.regex_index.get(middle) {
            return Ok(regex.clone());
        }
        let regex =
            level::middle_regex(middle, self.limits.max_pattern_bytes).map_err(|e| match e {
                MiddleError::TooLarge { limit } => CompileError::PatternTooLarge {
                    loc: rule.loc.clone(),
                    span: rule.span,
                    limit,
                },
                other => CompileError::Pattern {
                    loc: rule.loc.clone(),
                    span: rule.span,
                    message: other.to_string(),
                },
            })?;
        self.regex_index.insert(middle.to_vec(), regex.clone());
        Ok(regex)
    }

    fn finish(mut self, rule_count: usize) -> Automaton {
        self.automaton.rule_count = rule_count;
        // Children are always created after their parent, so one reverse pass suffices.
        for i in (0..self.automaton.nodes.len()).rev() {
            let node = &self.automaton.nodes[i];
            let mut below = ActionSet::default();
            for a in node.exact.iter().chain(&node.hash) {
                below = below.union(a.actions);
            }
            for t in node.targets() {
                below = below.union(self.automaton.nodes[t.0 as usize].actions_below);
            }
            self.automaton.nodes[i].actions_below = below;
        }
        self.automaton
    }
}

enum Edge<'l> {
    Any,
    Literal(&'l str),
    OneOf(SetId),
    Slot(SlotId),
    Pattern(PatternId),
}

/// The actions a rule grants or denies, for documentation output.
pub fn describe_actions(actions: ActionSet) -> String {
    let names: Vec<&str> = Action::ALL
        .iter()
        .filter(|a| actions.contains(**a))
        .map(|a| a.as_str())
        .collect();
    names.join(", ")
}
