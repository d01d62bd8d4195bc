//! `assert WHO only "namespace", ...` lines → [`CheckedAssertion`]s.
//!
//! The namespaces are topic templates resolved exactly like a rule's (unknown identities,
//! attributes and sets are errors with their spans), so `topicguard verify` can match
//! topics against them with the same meaning. Checking an assertion proves nothing: it
//! only makes sure the property can be stated; [`crate::analysis::verify`] proves it.

use super::rule::{resolve_who, topic_pattern};
use super::{Checked, CheckedAssertion};
use crate::ast;
use crate::diagnostic::Diagnostic;

/// Resolves one assertion; `None` (with errors pushed) if it names something unknown.
pub(super) fn resolve_assertion(
    checked: &Checked,
    assertion: &ast::Assertion,
    errors: &mut Vec<Diagnostic>,
) -> Option<CheckedAssertion> {
    let before = errors.len();
    let identities = resolve_who(checked, &assertion.who, errors);
    let namespaces: Vec<_> = assertion
        .namespaces
        .iter()
        .filter_map(|t| {
            let pattern = topic_pattern(checked, t, &identities, errors)?;
            Some((checked.source.slice(t.span).to_string(), pattern))
        })
        .collect();
    if errors[before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    Some(CheckedAssertion {
        identities,
        namespaces,
        loc: checked.source.loc(assertion.span.start),
        span: assertion.span,
        text: checked.source.slice(assertion.span).trim().to_string(),
    })
}
