//! Rule labels: `@id("mobile-requests")`, a rule's stable name.
//!
//! A label names a rule for explanations, test files (`rule = "mobile-requests"`),
//! coverage, `diff` and the broker's decision log, so that a citation survives edits that
//! move the rule to another line. The label grammar is small on purpose — an ASCII letter,
//! then ASCII letters, digits, `-`, `_`, `.` or `:`, at most [`MAX_LABEL_BYTES`] bytes — so a
//! label is safe in a log line, a JSON string and a shell argument. Labels are unique in a
//! policy. This module only judges label text; it never matches a topic.

use crate::ast;
use crate::diagnostic::{Code, Diagnostic};
use crate::source::{Source, Span};
use rustc_hash::FxHashMap;

/// The longest label, in bytes.
pub const MAX_LABEL_BYTES: usize = 64;

/// True when `text` follows the label grammar: an ASCII letter, then ASCII letters,
/// digits, `-`, `_`, `.` or `:`, [`MAX_LABEL_BYTES`] bytes at most.
pub fn is_label(text: &str) -> bool {
    let mut chars = text.chars();
    text.len() <= MAX_LABEL_BYTES
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// The labels seen so far in a policy, and where each is written.
#[derive(Debug, Default)]
pub(super) struct Labels {
    seen: FxHashMap<String, Span>,
}

impl Labels {
    /// Judges a rule's label: its grammar and that no earlier rule has it. Returns the
    /// label when it is good.
    pub(super) fn check(
        &mut self,
        source: &Source,
        rule: &ast::Rule,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<String> {
        let label = rule.label.as_ref()?;
        if !is_label(&label.text) {
            errors.push(
                Diagnostic::error(
                    Code::CheckBadLabel,
                    label.span,
                    format!("`{}` is not a valid rule label", label.text.escape_default()),
                )
                .with_label("this label")
                .with_help(format!(
                    "a label starts with an ASCII letter and continues with ASCII letters, digits, `-`, `_`, `.` or `:`, {MAX_LABEL_BYTES} bytes at most: `@id(\"mobile-requests\")`"
                )),
            );
            return None;
        }
        if let Some(first) = self.seen.get(&label.text) {
            errors.push(
                Diagnostic::error(
                    Code::CheckDuplicateLabel,
                    label.span,
                    format!("the label `{}` is already used", label.text),
                )
                .with_label("second use")
                .with_help(format!(
                    "labels name one rule each: the rule at line {} has it; give this rule another label",
                    source.loc(first.start).line
                )),
            );
            return None;
        }
        self.seen.insert(label.text.clone(), label.span);
        Some(label.text.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_grammar() {
        for good in ["a", "mobile-requests", "m.req_2:x", &"a".repeat(64)] {
            assert!(is_label(good), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "-a",
            "a b",
            "a/b",
            "a\"b",
            "a\u{e9}",
            "a\n",
            &"a".repeat(65),
        ] {
            assert!(!is_label(bad), "{bad:?}");
        }
    }
}
