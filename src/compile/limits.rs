//! The size limits of compiling and deciding ([`Limits`]) and the error for a policy that
//! is valid but does not fit them ([`CompileError`], each with the rule's location as a
//! field). This module must never build anything.

use crate::diagnostic::Diagnostic;
use crate::source::{Loc, Span};

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

impl Limits {
    /// The size bounds a decision applies to topics and filters.
    pub fn topic_bounds(&self) -> crate::mqtt::topic::Bounds {
        crate::mqtt::topic::Bounds {
            max_bytes: self.max_topic_bytes,
            max_levels: self.max_topic_levels,
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
