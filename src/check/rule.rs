//! Rules → [`CheckedRule`]s: identities resolved, actions collected, topic templates
//! normalized into [`TopicPattern`]s, sets expanded.
//!
//! Also computes, per identity, the characters each attribute may not contain so that no
//! two accounts' values can render the same topic ([`attribute_separators`]). This module
//! never matches a topic.

use super::intern::Interner;
use super::messages::{ambiguous_attr, floating_attr_error, unknown_attr};
use super::*;
use crate::ast::{self, Part, Who};
use crate::diagnostic::{Code, Diagnostic};
use crate::source::Span;
use rustc_hash::FxHashSet;
use std::borrow::Cow;
use std::sync::Arc;

pub(super) fn resolve_rule(
    checked: &Checked,
    interner: &mut Interner,
    rule: &ast::Rule,
    errors: &mut Vec<Diagnostic>,
) -> Option<CheckedRule> {
    let before = errors.len();
    let identities = resolve_who(checked, &rule.who, errors);
    let mut actions = ActionSet::default();
    for (action, span) in &rule.actions {
        if actions.contains(*action) {
            errors.push(Diagnostic::warning(
                Code::CheckDuplicateAction,
                *span,
                format!("`{action}` is listed twice"),
            ));
        }
        actions.insert(*action);
    }
    let connect = actions.contains(Action::Connect);
    let topic = match (&rule.template, connect) {
        (Some(t), true) => {
            errors.push(
                Diagnostic::error(Code::CheckConnectWithTopic, t.span, "`connect` takes no topic")
                    .with_help("the client id is checked against the identity's `client` template; write connect as its own rule: `allow mobile connect`"),
            );
            None
        }
        (None, false) => {
            errors.push(
                Diagnostic::error(
                    Code::CheckMissingTopic,
                    rule.span,
                    "this rule needs a topic template",
                )
                .with_help("e.g. `allow mobile publish \"c/{pid}/#\"`"),
            );
            None
        }
        (None, true) => None,
        (Some(t), false) => topic_pattern(checked, interner, t, &identities, errors),
    };
    if errors[before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    let body = match &rule.label {
        Some(label) => Span::new(label.span.end, rule.span.end),
        None => rule.span,
    };
    Some(CheckedRule::new(
        RuleId(checked.rules.len() as u32),
        rule.effect,
        actions,
        interner.identities(&identities),
        topic,
        checked.source.loc(rule.span.start),
        rule.span,
        checked.source.text_arc(),
        trimmed(checked.source.text(), body),
    ))
}

/// `span` without the whitespace at its ends (empty if out of range).
fn trimmed(text: &str, span: Span) -> Span {
    let Some(inner) = text.get(span.start..span.end) else {
        return Span::new(span.start, span.start);
    };
    let start = span.start + (inner.len() - inner.trim_start().len());
    Span::new(start, start + inner.trim().len())
}

pub(super) fn resolve_who(
    checked: &Checked,
    who: &Who,
    errors: &mut Vec<Diagnostic>,
) -> Vec<IdentityId> {
    match who {
        Who::Any(_) => (0..checked.identities.len())
            .map(|i| IdentityId(i as u16))
            .collect(),
        Who::Identities(names) => {
            let mut ids = Vec::new();
            for name in names {
                match checked.identity(&name.text) {
                    Some((id, _)) if !ids.contains(&id) => ids.push(id),
                    Some(_) => {}
                    None => {
                        let known: Vec<&str> =
                            checked.identities.iter().map(|d| d.name.as_str()).collect();
                        errors.push(
                            Diagnostic::error(
                                Code::CheckUnknownIdentity,
                                name.span,
                                format!("no identity named `{}`", name.text),
                            )
                            .with_label("unknown identity")
                            .with_help(format!(
                                "defined identities: {}",
                                if known.is_empty() {
                                    "none".into()
                                } else {
                                    known.join(", ")
                                }
                            )),
                        );
                    }
                }
            }
            ids
        }
    }
}

pub(super) fn topic_pattern(
    checked: &Checked,
    interner: &mut Interner,
    template: &ast::Template,
    who: &[IdentityId],
    errors: &mut Vec<Diagnostic>,
) -> Option<TopicPattern> {
    let count = template.levels.len();
    // Sized once: a trailing `#` is not a level of the pattern.
    let ends_in_hash = template
        .levels
        .last()
        .is_some_and(|level| matches!(level.parts.as_slice(), [Part::Hash { .. }]));
    let mut levels = Vec::with_capacity(count - usize::from(ends_in_hash));
    let mut hash = false;
    for (i, level) in template.levels.iter().enumerate() {
        if let [Part::Hash { span }] = level.parts.as_slice() {
            if i + 1 != count {
                errors.push(
                    Diagnostic::error(
                        Code::CheckHashNotLast,
                        *span,
                        "`#` must be the last level of a topic template",
                    )
                    .with_label("followed by more levels")
                    .with_help("use `+` to match exactly one level"),
                );
            }
            hash = true;
            continue;
        }
        levels.push(level_pattern(checked, interner, level, who, errors)?);
    }
    Some(TopicPattern {
        levels: levels.into_boxed_slice(),
        hash,
    })
}

fn level_pattern(
    checked: &Checked,
    interner: &mut Interner,
    level: &ast::Level,
    who: &[IdentityId],
    errors: &mut Vec<Diagnostic>,
) -> Option<LevelPattern> {
    match level.parts.as_slice() {
        [] => return Some(LevelPattern::Literal(interner.text(""))),
        [Part::Plus { .. }] => return Some(LevelPattern::Any { capture: None }),
        [Part::Capture { name }] => {
            return Some(LevelPattern::Any {
                capture: Some(interner.text(&name.text)),
            });
        }
        [Part::Text { text, .. }] => return Some(LevelPattern::Literal(interner.text(text))),
        _ => {}
    }
    // Adjacent text parts are joined into one piece before it is interned.
    // A lone text part is interned as it is; only a run of several is copied to join it.
    let mut pieces: Vec<Piece> = Vec::with_capacity(level.parts.len());
    let mut pending_text: Option<Cow<'_, str>> = None;
    for part in &level.parts {
        if let Part::Text { text, .. } = part {
            match &mut pending_text {
                None => pending_text = Some(Cow::Borrowed(text)),
                Some(joined) => joined.to_mut().push_str(text),
            }
            continue;
        }
        if let Some(text) = pending_text.take() {
            pieces.push(Piece::Text(interner.text(&text)));
        }
        let piece = match part {
            Part::Text { .. } => continue,
            Part::Attr { name } => {
                for id in who {
                    let def = &checked.identities[id.0 as usize];
                    if !def.binds_attr(&name.text) {
                        let bound: Vec<(String, crate::source::Span)> = def
                            .attrs
                            .iter()
                            .filter(|a| *a != "client")
                            .map(|a| (a.clone(), name.span))
                            .collect();
                        errors.push(unknown_attr(name, &def.name, &bound));
                        return None;
                    }
                }
                Piece::Attr(interner.text(&name.text))
            }
            Part::Capture { name } => Piece::Capture(interner.text(&name.text)),
            Part::SetRef { capture, set, .. } => {
                match checked.sets.iter().find(|s| s.name == set.text) {
                    Some(def) if def.values.is_empty() => {
                        errors.push(Diagnostic::error(
                            Code::CheckEmptySet,
                            set.span,
                            format!("set `{}` is empty, so this rule can never match", set.text),
                        ));
                        return None;
                    }
                    Some(def) => Piece::OneOf {
                        capture: Some(interner.text(&capture.text)),
                        values: def.values.clone(),
                    },
                    None => {
                        let known: Vec<&str> =
                            checked.sets.iter().map(|s| s.name.as_str()).collect();
                        errors.push(
                            Diagnostic::error(
                                Code::CheckUnknownSet,
                                set.span,
                                format!("no set named `{}`", set.text),
                            )
                            .with_help(format!(
                                "defined sets: {}",
                                if known.is_empty() {
                                    "none".into()
                                } else {
                                    known.join(", ")
                                }
                            )),
                        );
                        return None;
                    }
                }
            }
            Part::Alternatives { items, .. } => {
                let mut seen: FxHashSet<&str> = FxHashSet::default();
                let values: Vec<String> = items
                    .iter()
                    .filter(|item| seen.insert(&item.text))
                    .map(|item| item.text.clone())
                    .collect();
                Piece::OneOf {
                    capture: None,
                    values: interner.alternatives(values),
                }
            }
            Part::Plus { span } | Part::Hash { span } => {
                errors.push(Diagnostic::error(
                    Code::CheckWildcardInLevel,
                    *span,
                    "a wildcard must be a whole level",
                ));
                return None;
            }
        };
        match (pieces.last(), piece) {
            (Some(Piece::Capture(_)), Piece::Capture(_)) => {
                errors.push(
                    Diagnostic::error(
                        Code::CheckAmbiguousTemplate,
                        level.span,
                        "two free captures side by side in one level",
                    )
                    .with_help("put literal text between them, e.g. `{+a}_{+b}`"),
                );
                return None;
            }
            (_, piece) => pieces.push(piece),
        }
    }
    if let Some(text) = pending_text {
        pieces.push(Piece::Text(interner.text(&text)));
    }
    if let Some(attr) = unseparated_attr(&pieces) {
        errors.push(ambiguous_attr(&attr, level.span));
        return None;
    }
    if let Some(attr) = floating_attr(&pieces) {
        errors.push(floating_attr_error(&attr, level.span));
        return None;
    }
    Some(LevelPattern::Pieces(interner.pieces(pieces)))
}

/// The first attribute that touches a capture, a set, alternatives or another attribute.
///
/// `{pid}{+x}` or `{a|ab}{pid}` would let one account's values produce another account's
/// levels; literal text on both sides (or the level's edge) keeps every split unique, once
/// values are kept free of the separating characters (see [`attribute_separators`]).
fn unseparated_attr(pieces: &[Piece]) -> Option<SharedStr> {
    let is_text = |p: Option<&Piece>| p.is_none_or(|p| matches!(p, Piece::Text(_)));
    (0..pieces.len()).find_map(|i| match &pieces[i] {
        Piece::Attr(name)
            if !is_text(i.checked_sub(1).map(|j| &pieces[j])) || !is_text(pieces.get(i + 1)) =>
        {
            Some(name.clone())
        }
        _ => None,
    })
}

/// The first attribute with a capture or a set somewhere on each side in its level.
///
/// Such an attribute is anchored to neither end of the level, so it can be read at several
/// places: `{+a}:{pid}:{+b}` matches `x:P1:P2:y` for the account `P1` and for `P2`, and the
/// level would belong to both.
fn floating_attr(pieces: &[Piece]) -> Option<SharedStr> {
    let cut = split(pieces)?;
    cut.middle.iter().find_map(|p| match p {
        Piece::Attr(name) => Some(name.clone()),
        _ => None,
    })
}

/// For each attribute, the characters its values may not contain, so that every template
/// of the identity splits back into its values in exactly one way.
///
/// Ambiguity needs text between two values: in `{pid}_{aid}`, `P1` + `A1_B` and `P1_A1` +
/// `B` would both render `P1_A1_B`. For each literal text between two variable pieces,
/// the attribute before it may not contain the text's first character (the split is then
/// found from the left); if the piece before is a capture or a set, the attribute after it
/// may not contain the text's last character (the split is found from the right). After
/// the last capture or set of a level, the split can only be found from the right, so
/// there every attribute after a text also may not contain the text's last character
/// (`{+x}_{pid}_{aid}`: `aid` may not contain `_`). Text anchored at either end of a level
/// needs no rule; no attribute has a capture or a set on both sides (the checker refuses
/// it), so every attribute is found from one end.
pub fn attribute_separators(checked: &Checked, identity: IdentityId) -> Vec<(String, char)> {
    let def = &checked.identities[identity.0 as usize];
    let mut out: Vec<(String, char)> = Vec::new();
    let mut add = |pieces: &[Piece]| {
        let tail_start = pieces.iter().rposition(is_variable).map(|last| last + 1);
        for (at, window) in pieces.windows(3).enumerate() {
            let [before, Piece::Text(text), after] = window else {
                continue;
            };
            if matches!(before, Piece::Text(_)) || matches!(after, Piece::Text(_)) {
                continue;
            }
            let from_left = match before {
                Piece::Attr(name) => text.chars().next().map(|c| (name.to_string(), c)),
                _ => None,
            };
            let from_right = match (before, after) {
                (Piece::Attr(_), Piece::Attr(_)) if tail_start.is_none_or(|t| at < t) => None,
                (_, Piece::Attr(name)) => text.chars().last().map(|c| (name.to_string(), c)),
                _ => None,
            };
            for rule in from_left.into_iter().chain(from_right) {
                if !out.contains(&rule) {
                    out.push(rule);
                }
            }
        }
    };
    let as_pieces = |client: &[ClientPiece]| -> Vec<Piece> {
        client
            .iter()
            .map(|p| match p {
                ClientPiece::Text(t) => Piece::Text(t.into()),
                ClientPiece::Attr(a) | ClientPiece::Capture(a) => Piece::Attr(a.into()),
            })
            .collect()
    };
    add(&as_pieces(&def.client));
    for (_, extract) in &def.extracts {
        add(&as_pieces(extract));
    }
    // Equal piece sequences are one shared allocation: each is looked at once.
    let mut seen: FxHashSet<*const Piece> = FxHashSet::default();
    for rule in checked.rules.iter().filter(|r| r.applies_to(identity)) {
        for level in rule.topic.iter().flat_map(|t| &t.levels) {
            if let LevelPattern::Pieces(pieces) = level
                && seen.insert(Arc::as_ptr(pieces).cast::<Piece>())
            {
                add(pieces);
            }
        }
    }
    out.sort();
    out
}
