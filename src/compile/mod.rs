//! Checked rules → an [`Automaton`]: one level trie per identity.
//!
//! Each rule is inserted once per identity it applies to. Each level becomes the cheapest
//! edge that can match it: a literal, a finite set, an attribute slot rendered per
//! session, a regex-automata pattern (only for levels that mix text, sets and captures),
//! or `+`. Equal levels at the same node share one edge, so rules with a common prefix
//! share states and a decision's cost does not grow with the rule count.
//!
//! Every size is bounded by [`Limits`]; exceeding one is a typed [`CompileError`] naming
//! the rule, never an out-of-memory. A single regex over whole topics is deliberately not
//! used: with thousands of rules it can need gigabytes, while one small regex per distinct
//! level pattern stays small.

use crate::ast::Action;
use crate::automaton::*;
use crate::check::{ActionSet, Checked, CheckedRule, LevelPattern, Piece};
use crate::source::Loc;
use regex_automata::meta::Regex;
use rustc_hash::{FxHashMap, FxHashSet};

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
        given: usize,
        limit: usize,
    },
    #[error("{loc}: the rule is {given} bytes long; the limit is {limit}")]
    #[diagnostic(code(topicguard::compile::rule_too_long))]
    RuleTooLong {
        loc: Loc,
        given: usize,
        limit: usize,
    },
    #[error("{loc}: a level lists {given} alternatives; the limit is {limit}")]
    #[diagnostic(code(topicguard::compile::too_many_alternatives))]
    TooManyAlternatives {
        loc: Loc,
        given: usize,
        limit: usize,
    },
    #[error("the automaton needs more than {limit} nodes")]
    #[diagnostic(
        code(topicguard::compile::too_many_nodes),
        help("split the policy or raise the limit")
    )]
    TooManyNodes { limit: usize },
    #[error("{loc}: the level pattern could not be compiled: {message}")]
    #[diagnostic(code(topicguard::compile::pattern))]
    Pattern { loc: Loc, message: String },
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
    set_index: FxHashMap<Vec<String>, SetId>,
    slot_index: FxHashMap<SlotTemplate, SlotId>,
    pattern_index: FxHashMap<(Vec<Piece>, bool), PatternId>,
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
                slots: Vec::new(),
                patterns: Vec::new(),
                connect: vec![Vec::new(); identities],
                rule_count: 0,
            },
            set_index: FxHashMap::default(),
            slot_index: FxHashMap::default(),
            pattern_index: FxHashMap::default(),
        }
    }

    fn insert_rule(&mut self, rule: &CheckedRule) -> Result<(), CompileError> {
        if rule.text.len() > self.limits.max_rule_bytes {
            return Err(CompileError::RuleTooLong {
                loc: rule.loc.clone(),
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
                given: topic.levels.len(),
                limit: self.limits.max_template_levels,
            });
        }
        if topic.levels == [LevelPattern::Literal(String::new())] && !topic.hash {
            // `""` matches only the empty topic, which is no topic name: it never matches.
            return Ok(());
        }
        for id in &rule.identities {
            let mut at = self.automaton.roots[id.0 as usize];
            for (i, level) in topic.levels.iter().enumerate() {
                at = self.child(at, level, i == 0, rule)?;
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
    ) -> Result<NodeId, CompileError> {
        let edge = self.edge_for(level, first, rule)?;
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
                        given: values.len(),
                        limit: self.limits.max_alternatives,
                    });
                }
            }
        }
        if level.uses_attrs() {
            return Ok(Edge::Slot(self.intern_slot(pieces, first)));
        }
        if let [Piece::OneOf { values, .. }] = pieces.as_slice() {
            return Ok(Edge::OneOf(self.intern_set(values)));
        }
        self.intern_pattern(pieces, first, rule).map(Edge::Pattern)
    }

    fn intern_set(&mut self, values: &[String]) -> SetId {
        let mut key: Vec<String> = values.to_vec();
        key.sort_unstable();
        if let Some(id) = self.set_index.get(&key) {
            return *id;
        }
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

    fn intern_slot(&mut self, pieces: &[Piece], first: bool) -> SlotId {
        let template = SlotTemplate {
            pieces: pieces.to_vec(),
            first_level: first,
        };
        if let Some(id) = self.slot_index.get(&template) {
            return *id;
        }
        let id = SlotId(self.automaton.slots.len() as u32);
        self.automaton.slots.push(template.clone());
        self.slot_index.insert(template, id);
        id
    }

    fn intern_pattern(
        &mut self,
        pieces: &[Piece],
        first: bool,
        rule: &CheckedRule,
    ) -> Result<PatternId, CompileError> {
        let key = (pieces.to_vec(), first);
        if let Some(id) = self.pattern_index.get(&key) {
            return Ok(*id);
        }
        let regex = level_regex(pieces, first).map_err(|message| CompileError::Pattern {
            loc: rule.loc.clone(),
            message,
        })?;
        let id = PatternId(self.automaton.patterns.len() as u32);
        self.automaton.patterns.push(Pattern {
            pieces: pieces.to_vec(),
            first_level: first,
            regex,
            dollar_only: dollar_only(pieces),
        });
        self.pattern_index.insert(key, id);
        Ok(id)
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

/// True when every string the pieces can match starts with `$`.
pub fn dollar_only(pieces: &[Piece]) -> bool {
    match pieces.first() {
        Some(Piece::Text(t)) => t.starts_with('$'),
        Some(Piece::OneOf { values, .. }) => values.iter().all(|v| v.starts_with('$')),
        _ => false,
    }
}

/// Builds the anchored regex for one level. Attributes must already be rendered to text.
///
/// A capture matches any run of characters, possibly empty. In the first level of a topic
/// a leading capture may not begin with `$`, so wildcards never reach `$` topics.
pub fn level_regex(pieces: &[Piece], first_level: bool) -> Result<Regex, String> {
    let mut source = String::from("^(?s:");
    for (i, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Text(text) => source.push_str(&regex_syntax::escape(text)),
            Piece::Attr(name) => return Err(format!("attribute `{name}` was not rendered")),
            Piece::Capture(_) if i == 0 && first_level => source.push_str("(?:[^$].*)?"),
            Piece::Capture(_) => source.push_str(".*"),
            Piece::OneOf { values, .. } => {
                let escaped: Vec<String> = values.iter().map(|v| regex_syntax::escape(v)).collect();
                source.push_str("(?:");
                source.push_str(&escaped.join("|"));
                source.push(')');
            }
        }
    }
    source.push_str(")$");
    Regex::new(&source).map_err(|e| e.to_string())
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
