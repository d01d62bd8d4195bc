//! Pattern levels: a level that mixes text with sets or captures is cut into a head and a
//! tail of text and attributes (slots) around an attribute-free middle, built once here from
//! regex-syntax `Hir` and shared by every pattern level with the same middle; a middle over
//! [`Limits::max_pattern_bytes`](super::Limits) is a [`CompileError`] naming the rule.

use super::builder::Builder;
use super::limits::CompileError;
use crate::automaton::level::{self, MiddleError};
use crate::automaton::*;
use crate::check::{CheckedRule, IdentityId, Piece};
use regex_automata::meta::Regex;

impl Builder<'_> {
    /// A head or tail: plain text, or a slot of `identity` when it has attributes.
    pub(super) fn affix(
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

    pub(super) fn intern_pattern(
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

    pub(super) fn middle_regex(
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
}
