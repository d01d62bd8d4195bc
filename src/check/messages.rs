//! Diagnostics that more than one checking step raises, worded in one place.

use crate::ast;
use crate::diagnostic::Diagnostic;

pub(super) fn unknown_attr(
    name: &ast::Name,
    identity: &str,
    bound: &[(String, crate::source::Span)],
) -> Diagnostic {
    let mut known: Vec<&str> = bound.iter().map(|(n, _)| n.as_str()).collect();
    known.push("client");
    let listed = format!("attributes of `{identity}`: {}", known.join(", "));
    let help = match super::suggest::closest_name(&name.text, known.iter().copied()) {
        Some(near) => format!("did you mean `{{{near}}}`? {listed}"),
        None => listed,
    };
    Diagnostic::error(
        "check::unknown-attribute",
        name.span,
        format!("identity `{identity}` binds no attribute `{}`", name.text),
    )
    .with_label("unknown attribute")
    .with_help(help)
}

pub(super) fn ambiguous_attr(attr: &str, span: crate::source::Span) -> Diagnostic {
    Diagnostic::error(
        "check::ambiguous-template",
        span,
        format!("attribute `{{{attr}}}` touches a capture, a set or another attribute"),
    )
    .with_label("no literal text between them")
    .with_help("separate it with literal text, e.g. `{pid}_{aid}` or `{pid}-{+rid}`, so one account's values can never form another account's topic")
}

pub(super) fn floating_attr_error(attr: &str, span: crate::source::Span) -> Diagnostic {
    Diagnostic::error(
        "check::ambiguous-template",
        span,
        format!("attribute `{{{attr}}}` has a capture or a set on each side"),
    )
    .with_label("anchored to neither end of the level")
    .with_help("one level could then hold two accounts' values (`{+a}:{pid}:{+b}` matches `x:P1:P2:y` for `P1` and for `P2`); put the attribute before every capture and set (`{pid}:{+a}`) or after them (`{+a}:{pid}`), or give it a level of its own")
}
