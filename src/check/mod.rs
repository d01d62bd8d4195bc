//! Parsed AST → [`Checked`] policy: every name resolved, every template normalized.
//!
//! The checker reports all problems in one run: unknown identities, attributes and sets,
//! duplicate names, `#` that is not the last level, ambiguous captures, connect rules with
//! topics, identity blocks without a client template. [`lint`] adds warnings for rules that
//! can never match and allow rules wholly shadowed by a deny. The checker never matches a
//! topic and never looks at credentials.

pub mod lint;
pub mod model;

pub use model::*;

use crate::ast::{
    self, Action, AttrSource, IdentityKind, IdentityLine, IdentityStatement, Item, Part, Who,
};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::source::Source;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The result of a successful check: the model plus its warnings.
#[derive(Clone, Debug)]
pub struct CheckOutput {
    pub checked: Checked,
    pub warnings: Diagnostics,
}

/// Certificate fields an attribute may come from.
pub const CERTIFICATE_FIELDS: &[&str] = &[
    "san.dirname.O",
    "san.dirname.OU",
    "san.dirname.CN",
    "san.uri",
    "san.dns",
    "subject.CN",
    "subject.O",
    "subject.OU",
    "subject.UID",
    "subject.serialNumber",
];

/// Settings each identity kind understands.
fn known_settings(kind: IdentityKind) -> &'static [&'static str] {
    match kind {
        IdentityKind::Jwt => &[
            "issuer",
            "audience",
            "algorithms",
            "leeway",
            "subscriptions",
        ],
        IdentityKind::Certificate => &["issuer", "subscriptions"],
        IdentityKind::Anonymous => &["subscriptions"],
    }
}

/// Checks a parsed policy. Errors and warnings are all collected; any error fails.
pub fn check(source: &Source, policy: &ast::Policy) -> Result<CheckOutput, Diagnostics> {
    let mut checker = Checker::new(source, policy);
    for item in &policy.items {
        if let Item::Rule(rule) = item {
            checker.rule(rule);
        }
    }
    checker.finish()
}

/// A check in steps: declarations first, then one rule at a time, in file order.
///
/// [`check`] is this over a whole AST; a loader that parses rules one by one (see
/// [`crate::parse::split`]) uses it to keep only the checked form of each rule.
pub struct Checker {
    checked: Checked,
    errors: Vec<Diagnostic>,
}

impl Checker {
    /// Resolves the identities and sets of `declarations` (its rules are ignored).
    pub fn new(source: &Source, declarations: &ast::Policy) -> Checker {
        let mut errors = Vec::new();
        let identities = identities(source, declarations, &mut errors);
        let sets = sets(declarations, &mut errors);
        Checker {
            checked: Checked {
                source: source.clone(),
                identities,
                sets,
                rules: Vec::new(),
            },
            errors,
        }
    }

    /// Resolves the next rule of the file.
    pub fn rule(&mut self, rule: &ast::Rule) {
        if let Some(r) = resolve_rule(&self.checked, rule, &mut self.errors) {
            self.checked.rules.push(r);
        }
    }

    /// All errors, or the checked policy with its warnings.
    pub fn finish(self) -> Result<CheckOutput, Diagnostics> {
        let Checker {
            mut checked,
            errors,
        } = self;
        checked.rules.shrink_to_fit();
        for i in 0..checked.identities.len() {
            checked.identities[i].separators = attribute_separators(&checked, IdentityId(i as u16));
        }
        let mut diagnostics = Diagnostics::new(checked.source.clone());
        diagnostics.items = errors;
        if diagnostics.has_errors() {
            diagnostics.sort();
            return Err(diagnostics);
        }
        diagnostics.items.extend(lint::lint(&checked));
        diagnostics.sort();
        Ok(CheckOutput {
            checked,
            warnings: diagnostics,
        })
    }
}

fn identities(
    source: &Source,
    policy: &ast::Policy,
    errors: &mut Vec<Diagnostic>,
) -> Vec<IdentityDef> {
    let mut out: Vec<IdentityDef> = Vec::new();
    for identity in policy.items.iter().filter_map(|i| match i {
        Item::Identity(d) => Some(d),
        _ => None,
    }) {
        if let Some(first) = out.iter().find(|d| d.name == identity.name.text) {
            let loc = first.span;
            errors.push(
                Diagnostic::error(
                    "check::duplicate-identity",
                    identity.name.span,
                    format!("identity `{}` is defined twice", identity.name.text),
                )
                .with_label("second definition")
                .with_help(format!(
                    "the first definition is at {}; rename or merge them",
                    source.loc(loc.start)
                )),
            );
            continue;
        }
        if identity.name.text == "any" {
            errors.push(Diagnostic::error(
                "check::reserved-name",
                identity.name.span,
                "`any` is reserved: it means every identity in rules",
            ));
        }
        if out.len() >= 64 {
            errors.push(Diagnostic::error(
                "check::too-many-identities",
                identity.name.span,
                "a policy may define at most 64 identities",
            ));
            continue;
        }
        out.push(identity_def(identity, errors));
    }
    out
}

fn identity_def(identity: &ast::Identity, errors: &mut Vec<Diagnostic>) -> IdentityDef {
    let mut def = IdentityDef {
        name: identity.name.text.clone(),
        kind: identity.kind,
        span: identity.name.span,
        attrs: Vec::new(),
        binds: Vec::new(),
        extracts: Vec::new(),
        requires: Vec::new(),
        client: Vec::new(),
        settings: Vec::new(),
        filtered_subscriptions: false,
        separators: Vec::new(),
    };
    let mut bound: Vec<(String, crate::source::Span)> = Vec::new();
    let bind_name = |bound: &mut Vec<(String, crate::source::Span)>,
                     name: &ast::Name,
                     errors: &mut Vec<Diagnostic>| {
        if name.text == "client" {
            errors.push(Diagnostic::error(
                "check::reserved-name",
                name.span,
                "`client` is reserved: it is the verified client id",
            ));
        } else if bound.iter().any(|(n, _)| *n == name.text) {
            errors.push(
                Diagnostic::error(
                    "check::duplicate-attribute",
                    name.span,
                    format!(
                        "attribute `{}` is bound twice in identity `{}`",
                        name.text, identity.name.text
                    ),
                )
                .with_help("each attribute must come from exactly one place"),
            );
        } else {
            bound.push((name.text.clone(), name.span));
        }
    };
    let mut client = None;
    let mut requires = Vec::new();
    for line in &identity.lines {
        let IdentityLine::Statement { statement, .. } = line else {
            continue;
        };
        match statement {
            IdentityStatement::Client(template) => {
                if client.is_some() {
                    errors.push(Diagnostic::error(
                        "check::duplicate-client",
                        template.span,
                        "a second `client` template",
                    ));
                }
                client = Some(template);
            }
            IdentityStatement::Bind { attr, source, .. } => {
                check_source(identity.kind, source, errors);
                bind_name(&mut bound, attr, errors);
                def.binds.push((attr.text.clone(), source.clone()));
            }
            IdentityStatement::Extract {
                source, template, ..
            } => {
                check_source(identity.kind, source, errors);
                let pieces = client_pieces(template, errors);
                for part in template.levels.iter().flat_map(|l| &l.parts) {
                    if let Part::Attr { name } = part {
                        bind_name(&mut bound, name, errors);
                    }
                }
                check_adjacent_captures(&pieces, template, errors);
                def.extracts.push((source.clone(), pieces));
            }
            IdentityStatement::RequireEq { left, right, .. } => {
                requires.push((left, Some(right), None))
            }
            IdentityStatement::RequireIs { attr, check, .. } => {
                requires.push((attr, None, Some(check)))
            }
            IdentityStatement::Setting { key, values, .. } => {
                setting(&mut def, key, values, errors)
            }
        }
    }
    if identity.kind == IdentityKind::Anonymous && !def.binds.is_empty() {
        errors.push(Diagnostic::error(
            "check::anonymous-binds",
            identity.name.span,
            "an anonymous identity has no credential to bind attributes from",
        ));
    }
    let Some(client) = client else {
        errors.push(
            Diagnostic::error("check::missing-client", identity.name.span, format!("identity `{}` has no `client` template", identity.name.text))
                .with_help("every identity needs `client \"...\"`: CONNECT is allowed only with exactly that client id"),
        );
        return finish_attrs(def, bound);
    };
    def.client = client_pieces(client, errors);
    check_adjacent_captures(&def.client, client, errors);
    for part in client.levels.iter().flat_map(|l| &l.parts) {
        match part {
            Part::Capture { name } => bind_name(&mut bound, name, errors),
            Part::Attr { name }
                if name.text != "client" && !bound.iter().any(|(b, _)| *b == name.text) =>
            {
                errors.push(unknown_attr(name, &identity.name.text, &bound));
            }
            Part::Attr { name } if name.text == "client" => {
                errors.push(Diagnostic::error(
                    "check::client-in-client",
                    name.span,
                    "the client template cannot refer to `{client}` itself",
                ));
            }
            _ => {}
        }
    }
    for (attr, other, check) in requires {
        for name in std::iter::once(attr).chain(other) {
            if !bound.iter().any(|(b, _)| *b == name.text) {
                errors.push(unknown_attr(name, &identity.name.text, &bound));
            }
        }
        if let Some(other) = other {
            def.requires
                .push(Require::Equal(attr.text.clone(), other.text.clone()));
        }
        if let Some(check) = check {
            match AttrCheck::parse(&check.text) {
                Some(c) => def.requires.push(Require::Check(attr.text.clone(), c)),
                None => errors.push(
                    Diagnostic::error(
                        "check::unknown-check",
                        check.span,
                        format!("unknown check `{}`", check.text),
                    )
                    .with_help("known checks: eui64, uuid"),
                ),
            }
        }
    }
    finish_attrs(def, bound)
}

fn finish_attrs(mut def: IdentityDef, bound: Vec<(String, crate::source::Span)>) -> IdentityDef {
    let mut attrs: BTreeSet<String> = bound.into_iter().map(|(n, _)| n).collect();
    attrs.insert("client".to_string());
    def.attrs = attrs.into_iter().collect();
    def
}

fn setting(
    def: &mut IdentityDef,
    key: &ast::Name,
    values: &[ast::Value],
    errors: &mut Vec<Diagnostic>,
) {
    let known = known_settings(def.kind);
    if !known.contains(&key.text.as_str()) {
        errors.push(
            Diagnostic::error(
                "check::unknown-setting",
                key.span,
                format!("`{}` is not a setting of a {} identity", key.text, def.kind),
            )
            .with_help(format!("known settings: {}", known.join(", "))),
        );
        return;
    }
    if def.settings.iter().any(|(k, _)| *k == key.text) {
        errors.push(Diagnostic::error(
            "check::duplicate-setting",
            key.span,
            format!("`{}` is set twice", key.text),
        ));
        return;
    }
    let texts: Vec<String> = values.iter().map(|v| v.text.clone()).collect();
    match key.text.as_str() {
        "subscriptions" => match texts.as_slice() {
            [v] if v == "filtered" => def.filtered_subscriptions = true,
            [v] if v == "contained" => {}
            _ => errors.push(Diagnostic::error(
                "check::bad-setting",
                key.span,
                "`subscriptions` is `contained` (the default) or `filtered`",
            )),
        },
        "algorithms" => {
            for v in values {
                if ![
                    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                    "EdDSA", "HS256", "HS384", "HS512",
                ]
                .contains(&v.text.as_str())
                {
                    errors.push(
                        Diagnostic::error("check::unknown-algorithm", v.span, format!("unknown JWT algorithm `{}`", v.text))
                            .with_help("use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, or HS256/384/512 with an explicit shared secret"),
                    );
                }
            }
        }
        "leeway" if texts.len() != 1 || texts[0].parse::<u32>().map_or(true, |s| s > 300) => {
            errors.push(Diagnostic::error(
                "check::bad-setting",
                key.span,
                "`leeway` is a number of seconds from 0 to 300",
            ));
        }
        "leeway" => {}
        _ if texts.len() != 1 => {
            errors.push(Diagnostic::error(
                "check::bad-setting",
                key.span,
                format!("`{}` takes exactly one value", key.text),
            ));
        }
        _ => {}
    }
    def.settings.push((key.text.clone(), texts));
}

fn check_source(kind: IdentityKind, source: &AttrSource, errors: &mut Vec<Diagnostic>) {
    match (kind, source) {
        (IdentityKind::Jwt, AttrSource::Claim { name, span }) => {
            if name.is_empty() {
                errors.push(Diagnostic::error("check::bad-source", *span, "empty claim name"));
            }
        }
        (IdentityKind::Certificate, AttrSource::Field { path, span }) => {
            if !CERTIFICATE_FIELDS.contains(&path.as_str()) {
                errors.push(
                    Diagnostic::error("check::bad-source", *span, format!("unknown certificate field `{path}`"))
                        .with_help(format!("known fields: {}", CERTIFICATE_FIELDS.join(", "))),
                );
            }
        }
        (kind, source) => errors.push(
            Diagnostic::error("check::bad-source", source.span(), format!("a {kind} identity cannot take attributes from here"))
                .with_help("jwt identities use `claim \"name\"`; certificate identities use fields such as `san.dirname.O`"),
        ),
    }
}

/// Client-id and extraction templates: text, attributes and captures only.
fn client_pieces(template: &ast::Template, errors: &mut Vec<Diagnostic>) -> Vec<ClientPiece> {
    let mut pieces = Vec::new();
    for part in template.levels.iter().flat_map(|l| &l.parts) {
        match part {
            Part::Text { text, span } => {
                if let Some(c) = text
                    .chars()
                    .find(|c| !crate::identity::attrs::is_value_char(*c))
                {
                    errors.push(
                        Diagnostic::error("check::bad-client-text", *span, format!("`{}` may not appear in a client id or extraction template", c.escape_default()))
                            .with_help("client ids are used as topic levels: no `/`, `+`, `#`, `$`, spaces or non-ASCII"),
                    );
                }
                pieces.push(ClientPiece::Text(text.clone()));
            }
            Part::Attr { name } => pieces.push(ClientPiece::Attr(name.text.clone())),
            Part::Capture { name } => pieces.push(ClientPiece::Capture(name.text.clone())),
            other => errors.push(Diagnostic::error(
                "check::bad-client-part",
                other.span(),
                "client and extraction templates hold only text, `{attr}` and `{+capture}`",
            )),
        }
    }
    pieces
}

fn check_adjacent_captures(
    pieces: &[ClientPiece],
    template: &ast::Template,
    errors: &mut Vec<Diagnostic>,
) {
    let free = |p: &ClientPiece| !matches!(p, ClientPiece::Text(_));
    if let Some(ClientPiece::Attr(attr)) = pieces.windows(2).find_map(|w| match (&w[0], &w[1]) {
        (ClientPiece::Attr(_), b) if free(b) => Some(&w[0]),
        (a, ClientPiece::Attr(_)) if free(a) => Some(&w[1]),
        _ => None,
    }) {
        errors.push(ambiguous_attr(attr, template.span));
    } else if pieces.windows(2).any(|w| free(&w[0]) && free(&w[1])) {
        errors.push(
            Diagnostic::error(
                "check::ambiguous-template",
                template.span,
                "two values side by side with no text between them",
            )
            .with_help("put a separator between them, e.g. `{a}:{b}`, so the split is unambiguous"),
        );
    }
}

fn sets(policy: &ast::Policy, errors: &mut Vec<Diagnostic>) -> Vec<SetDef> {
    let mut out: Vec<SetDef> = Vec::new();
    for set in policy.items.iter().filter_map(|i| match i {
        Item::Set(s) => Some(s),
        _ => None,
    }) {
        if out.iter().any(|s| s.name == set.name.text) {
            errors.push(Diagnostic::error(
                "check::duplicate-set",
                set.name.span,
                format!("set `{}` is defined twice", set.name.text),
            ));
            continue;
        }
        let mut values: Vec<String> = Vec::new();
        for value in &set.values {
            if value.text.is_empty()
                || value
                    .text
                    .chars()
                    .any(|c| matches!(c, '/' | '+' | '#' | '\0') || c.is_control())
            {
                errors.push(
                    Diagnostic::error("check::bad-set-value", value.span, format!("set value `{}` is not a literal topic level", value.text.escape_default()))
                        .with_help("set values are non-empty level text: no `/`, `+`, `#` or control characters"),
                );
            } else if values.contains(&value.text) {
                errors.push(Diagnostic::warning(
                    "check::duplicate-set-value",
                    value.span,
                    format!("`{}` is listed twice", value.text),
                ));
            } else {
                values.push(value.text.clone());
            }
        }
        out.push(SetDef {
            name: set.name.text.clone(),
            values: values.into(),
            span: set.name.span,
        });
    }
    out
}

fn unknown_attr(
    name: &ast::Name,
    identity: &str,
    bound: &[(String, crate::source::Span)],
) -> Diagnostic {
    let known: Vec<&str> = bound.iter().map(|(n, _)| n.as_str()).collect();
    Diagnostic::error(
        "check::unknown-attribute",
        name.span,
        format!("identity `{identity}` binds no attribute `{}`", name.text),
    )
    .with_label("unknown attribute")
    .with_help(format!(
        "attributes of `{identity}`: {}; write `{{+{}}}` for a free capture",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ") + ", client"
        },
        name.text
    ))
}

fn resolve_rule(
    checked: &Checked,
    rule: &ast::Rule,
    errors: &mut Vec<Diagnostic>,
) -> Option<CheckedRule> {
    let before = errors.len();
    let identities = resolve_who(checked, &rule.who, errors);
    let mut actions = ActionSet::default();
    for (action, span) in &rule.actions {
        if actions.contains(*action) {
            errors.push(Diagnostic::warning(
                "check::duplicate-action",
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
                Diagnostic::error("check::connect-with-topic", t.span, "`connect` takes no topic")
                    .with_help("the client id is checked against the identity's `client` template; write connect as its own rule: `allow mobile connect`"),
            );
            None
        }
        (None, false) => {
            errors.push(
                Diagnostic::error(
                    "check::missing-topic",
                    rule.span,
                    "this rule needs a topic template",
                )
                .with_help("e.g. `allow mobile publish \"c/{pid}/#\"`"),
            );
            None
        }
        (None, true) => None,
        (Some(t), false) => topic_pattern(checked, t, &identities, errors),
    };
    if errors[before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    let loc = checked.source.loc(rule.span.start);
    let mut identities = identities;
    identities.shrink_to_fit();
    Some(CheckedRule {
        id: RuleId(checked.rules.len() as u32),
        effect: rule.effect,
        identities,
        actions,
        topic,
        loc,
        span: rule.span,
        text: checked.source.slice(rule.span).trim().to_string(),
    })
}

fn resolve_who(checked: &Checked, who: &Who, errors: &mut Vec<Diagnostic>) -> Vec<IdentityId> {
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
                                "check::unknown-identity",
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

fn topic_pattern(
    checked: &Checked,
    template: &ast::Template,
    who: &[IdentityId],
    errors: &mut Vec<Diagnostic>,
) -> Option<TopicPattern> {
    let mut levels = Vec::new();
    let mut hash = false;
    let count = template.levels.len();
    for (i, level) in template.levels.iter().enumerate() {
        if let [Part::Hash { span }] = level.parts.as_slice() {
            if i + 1 != count {
                errors.push(
                    Diagnostic::error(
                        "check::hash-not-last",
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
        levels.push(level_pattern(checked, level, who, errors)?);
    }
    levels.shrink_to_fit();
    Some(TopicPattern { levels, hash })
}

fn level_pattern(
    checked: &Checked,
    level: &ast::Level,
    who: &[IdentityId],
    errors: &mut Vec<Diagnostic>,
) -> Option<LevelPattern> {
    match level.parts.as_slice() {
        [] => return Some(LevelPattern::Literal(String::new())),
        [Part::Plus { .. }] => return Some(LevelPattern::Any { capture: None }),
        [Part::Capture { name }] => {
            return Some(LevelPattern::Any {
                capture: Some(name.text.clone()),
            });
        }
        [Part::Text { text, .. }] => return Some(LevelPattern::Literal(text.clone())),
        _ => {}
    }
    let mut pieces: Vec<Piece> = Vec::new();
    for part in &level.parts {
        let piece = match part {
            Part::Text { text, .. } => Piece::Text(text.clone()),
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
                Piece::Attr(name.text.clone())
            }
            Part::Capture { name } => Piece::Capture(name.text.clone()),
            Part::SetRef { capture, set, .. } => {
                match checked.sets.iter().find(|s| s.name == set.text) {
                    Some(def) if def.values.is_empty() => {
                        errors.push(Diagnostic::error(
                            "check::empty-set",
                            set.span,
                            format!("set `{}` is empty, so this rule can never match", set.text),
                        ));
                        return None;
                    }
                    Some(def) => Piece::OneOf {
                        capture: Some(capture.text.clone()),
                        values: def.values.clone(),
                    },
                    None => {
                        let known: Vec<&str> =
                            checked.sets.iter().map(|s| s.name.as_str()).collect();
                        errors.push(
                            Diagnostic::error(
                                "check::unknown-set",
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
                let mut values: Vec<String> = Vec::new();
                for item in items {
                    if !values.contains(&item.text) {
                        values.push(item.text.clone());
                    }
                }
                Piece::OneOf {
                    capture: None,
                    values: Arc::from(values),
                }
            }
            Part::Plus { span } | Part::Hash { span } => {
                errors.push(Diagnostic::error(
                    "check::wildcard-in-level",
                    *span,
                    "a wildcard must be a whole level",
                ));
                return None;
            }
        };
        match (pieces.last_mut(), piece) {
            (Some(Piece::Text(prev)), Piece::Text(next)) => prev.push_str(&next),
            (Some(Piece::Capture(_)), Piece::Capture(_)) => {
                errors.push(
                    Diagnostic::error(
                        "check::ambiguous-template",
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
    if let Some(attr) = unseparated_attr(&pieces) {
        errors.push(ambiguous_attr(&attr, level.span));
        return None;
    }
    pieces.shrink_to_fit();
    Some(LevelPattern::Pieces(pieces))
}

/// The first attribute that touches a capture, a set, alternatives or another attribute.
///
/// `{pid}{+x}` or `{a|ab}{pid}` would let one account's values produce another account's
/// levels; literal text on both sides (or the level's edge) keeps every split unique, once
/// values are kept free of the separating characters (see [`attribute_separators`]).
fn unseparated_attr(pieces: &[Piece]) -> Option<String> {
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

fn ambiguous_attr(attr: &str, span: crate::source::Span) -> Diagnostic {
    Diagnostic::error(
        "check::ambiguous-template",
        span,
        format!("attribute `{{{attr}}}` touches a capture, a set or another attribute"),
    )
    .with_label("no literal text between them")
    .with_help("separate it with literal text, e.g. `{pid}_{aid}` or `{pid}-{+rid}`, so one account's values can never form another account's topic")
}

/// For each attribute, the characters its values may not contain, so that every template
/// of the identity splits back into its values in exactly one way.
///
/// Ambiguity needs text between two values: in `{pid}_{aid}`, `P1` + `A1_B` and `P1_A1` +
/// `B` would both render `P1_A1_B`. For each literal text between two variable pieces,
/// the attribute before it may not contain the text's first character (the split is then
/// found from the left); if the piece before is a capture or a set, the attribute after it
/// may not contain the text's last character (the split is found from the right). Text
/// anchored at either end of a level needs no rule.
pub fn attribute_separators(checked: &Checked, identity: IdentityId) -> Vec<(String, char)> {
    let def = &checked.identities[identity.0 as usize];
    let mut out: Vec<(String, char)> = Vec::new();
    let mut add = |pieces: Vec<Piece>| {
        for window in pieces.windows(3) {
            let [before, Piece::Text(text), after] = window else {
                continue;
            };
            if matches!(before, Piece::Text(_)) || matches!(after, Piece::Text(_)) {
                continue;
            }
            let rule = match (before, after) {
                (Piece::Attr(name), _) => text.chars().next().map(|c| (name.clone(), c)),
                (_, Piece::Attr(name)) => text.chars().last().map(|c| (name.clone(), c)),
                _ => None,
            };
            if let Some(rule) = rule {
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
                ClientPiece::Text(t) => Piece::Text(t.clone()),
                ClientPiece::Attr(a) | ClientPiece::Capture(a) => Piece::Attr(a.clone()),
            })
            .collect()
    };
    add(as_pieces(&def.client));
    for (_, extract) in &def.extracts {
        add(as_pieces(extract));
    }
    for rule in checked.rules.iter().filter(|r| r.applies_to(identity)) {
        for level in rule.topic.iter().flat_map(|t| &t.levels) {
            if let LevelPattern::Pieces(pieces) = level {
                add(pieces.clone());
            }
        }
    }
    out.sort();
    out
}
