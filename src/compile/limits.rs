//! The size limits of compiling and deciding ([`Limits`]) and the error for a policy that
//! is valid but does not fit them ([`CompileError`], each with the rule's location as a
//! field). This module must never build anything.

use crate::diagnostic::{Code, Diagnostic};
use crate::source::{Loc, Span};
use std::fmt;

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

/// A policy that is valid but too large to compile within [`Limits`]. Errors about one
/// rule carry its location (`loc`, `span`) as fields; [`CompileError::message`] never
/// contains it, and `Display` puts it in front (`t.policy:6:1: the rule is ...`).
#[derive(Debug)]
pub enum CompileError {
    /// More rules than [`Limits::max_rules`].
    TooManyRules {
        /// Rules in the policy.
        given: usize,
        /// The limit.
        limit: usize,
    },
    /// A topic template with more levels than [`Limits::max_template_levels`].
    TemplateTooDeep {
        /// Where the rule is.
        loc: Loc,
        /// The rule's span.
        span: Span,
        /// Levels in the template.
        given: usize,
        /// The limit.
        limit: usize,
    },
    /// A rule longer than [`Limits::max_rule_bytes`].
    RuleTooLong {
        /// Where the rule is.
        loc: Loc,
        /// The rule's span.
        span: Span,
        /// Bytes in the rule.
        given: usize,
        /// The limit.
        limit: usize,
    },
    /// A level with more alternatives than [`Limits::max_alternatives`].
    TooManyAlternatives {
        /// Where the rule is.
        loc: Loc,
        /// The rule's span.
        span: Span,
        /// Alternatives in the level.
        given: usize,
        /// The limit.
        limit: usize,
    },
    /// An automaton of more than [`Limits::max_nodes`] nodes.
    TooManyNodes {
        /// The limit.
        limit: usize,
    },
    /// A level pattern larger than [`Limits::max_pattern_bytes`].
    PatternTooLarge {
        /// Where the rule is.
        loc: Loc,
        /// The rule's span.
        span: Span,
        /// The limit.
        limit: usize,
    },
    /// A level pattern the regex engine refused.
    Pattern {
        /// Where the rule is.
        loc: Loc,
        /// The rule's span.
        span: Span,
        /// What the regex engine said.
        message: String,
    },
}

impl CompileError {
    /// Where the rule this error is about is, if it is about one rule.
    pub fn loc(&self) -> Option<&Loc> {
        self.rule_at().map(|(loc, _)| loc)
    }

    /// The span of the rule this error is about, if it is about one rule.
    pub fn span(&self) -> Option<Span> {
        self.rule_at().map(|(_, span)| span)
    }

    fn rule_at(&self) -> Option<(&Loc, Span)> {
        match self {
            CompileError::TooManyRules { .. } | CompileError::TooManyNodes { .. } => None,
            CompileError::TemplateTooDeep { loc, span, .. }
            | CompileError::RuleTooLong { loc, span, .. }
            | CompileError::TooManyAlternatives { loc, span, .. }
            | CompileError::PatternTooLarge { loc, span, .. }
            | CompileError::Pattern { loc, span, .. } => Some((loc, *span)),
        }
    }

    /// What is wrong, without the location.
    pub fn message(&self) -> String {
        match self {
            CompileError::TooManyRules { given, limit } => {
                format!("the policy has {given} rules; the limit is {limit}")
            }
            CompileError::TemplateTooDeep { given, limit, .. } => {
                format!("the topic template has {given} levels; the limit is {limit}")
            }
            CompileError::RuleTooLong { given, limit, .. } => {
                format!("the rule is {given} bytes long; the limit is {limit}")
            }
            CompileError::TooManyAlternatives { given, limit, .. } => {
                format!("a level lists {given} alternatives; the limit is {limit}")
            }
            CompileError::TooManyNodes { limit } => {
                format!("the automaton needs more than {limit} nodes")
            }
            CompileError::PatternTooLarge { limit, .. } => {
                format!("a level pattern of this rule needs more than {limit} bytes")
            }
            CompileError::Pattern { message, .. } => {
                format!("the level pattern could not be compiled: {message}")
            }
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> Code {
        match self {
            CompileError::TooManyRules { .. } => Code::CompileTooManyRules,
            CompileError::TooManyNodes { .. } => Code::CompileTooManyNodes,
            CompileError::TemplateTooDeep { .. } => Code::CompileTemplateTooDeep,
            CompileError::RuleTooLong { .. } => Code::CompileRuleTooLong,
            CompileError::TooManyAlternatives { .. } => Code::CompileTooManyAlternatives,
            CompileError::PatternTooLarge { .. } => Code::CompilePatternTooLarge,
            CompileError::Pattern { .. } => Code::CompilePattern,
        }
    }

    fn help(&self) -> Option<&'static str> {
        match self {
            CompileError::TooManyNodes { .. } => Some("split the policy into several files"),
            CompileError::PatternTooLarge { .. } => Some(
                "give the set a level of its own, or split it: a lone set in a level (`{v in big}`, `{pid}_{v in big}`) needs no pattern",
            ),
            _ => None,
        }
    }

    /// The error as a diagnostic of the policy file, at the rule it names (if any).
    pub fn to_diagnostic(&self) -> Diagnostic {
        let diagnostic =
            Diagnostic::error(self.code(), self.span().unwrap_or_default(), self.message());
        match self.help() {
            Some(help) => diagnostic.with_help(help),
            None => diagnostic,
        }
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.loc() {
            Some(loc) => write!(f, "{loc}: {}", self.message()),
            None => f.write_str(&self.message()),
        }
    }
}

impl std::error::Error for CompileError {}

impl miette::Diagnostic for CompileError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        CompileError::help(self).map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
}
