//! `assert WHO only "namespace", ...` and `assert WHO isolated by a, b` lines →
//! [`CheckedAssertion`]s.
//!
//! The namespaces are topic templates resolved exactly like a rule's (unknown identities,
//! attributes and sets are errors with their spans), so `topicguard verify` can match
//! topics against them with the same meaning. Checking an assertion proves nothing: it
//! only makes sure the property can be stated; [`crate::analysis::verify`] proves it.

use super::intern::Interner;
use super::rule::{resolve_who, topic_pattern};
use super::{Checked, CheckedAssertion};
use crate::ast;
use crate::diagnostic::{Code, Diagnostic};

/// Resolves one assertion; `None` (with errors pushed) if it names something unknown.
pub(super) fn resolve_assertion(
    checked: &Checked,
    interner: &mut Interner,
    assertion: &ast::Assertion,
    errors: &mut Vec<Diagnostic>,
) -> Option<CheckedAssertion> {
    let before = errors.len();
    let identities = resolve_who(checked, &assertion.who, errors);
    let namespaces: Vec<_> = assertion
        .namespaces
        .iter()
        .filter_map(|t| {
            let pattern = topic_pattern(checked, interner, t, &identities, errors)?;
            Some((checked.source.slice(t.span).to_string(), pattern))
        })
        .collect();
    for attr in &assertion.isolated_by {
        let missing: Vec<&str> = identities
            .iter()
            .map(|id| &checked.identities[id.0 as usize])
            .filter(|d| !d.binds_attr(&attr.text) || attr.text == "client")
            .map(|d| d.name.as_str())
            .collect();
        if !missing.is_empty() {
            errors.push(
                Diagnostic::error(
                    Code::CheckUnknownAttribute,
                    attr.span,
                    format!(
                        "`{}` is not an attribute of {}",
                        attr.text,
                        missing.join(", ")
                    ),
                )
                .with_label("unknown attribute")
                .with_help("name attributes the identities bind from their credentials"),
            );
        }
    }
    if errors[before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    Some(CheckedAssertion {
        identities,
        namespaces,
        isolated_by: assertion
            .isolated_by
            .iter()
            .map(|n| n.text.clone())
            .collect(),
        loc: checked.source.loc(assertion.span.start),
        span: assertion.span,
        text: checked.source.slice(assertion.span).trim().to_string(),
    })
}
