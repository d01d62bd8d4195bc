//! Identity blocks → [`IdentityDef`]s: attribute bindings, extractions, requires, the
//! client template and settings.
//!
//! Every attribute must come from exactly one place; names that are reserved (`client`,
//! `any`), sources a kind cannot have, unknown settings and ambiguous templates are errors.
//! The `trust` setting names the anchors (CA set, JWKS) an identity's credentials verify
//! with; two identities of one kind that share anchors and that nothing but a credential's
//! own claims could tell apart are an error (see [`shared_trust`]). This module never looks
//! at a credential.

use super::messages::{ambiguous_attr, unknown_attr};
use super::*;
use crate::ast::{self, AttrSource, IdentityKind, IdentityLine, IdentityStatement, Item, Part};
use crate::diagnostic::Diagnostic;
use crate::source::Source;
use std::collections::BTreeSet;
use std::sync::Arc;

pub(super) fn identities(
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
    shared_trust(&out, errors);
    out
}

/// The longest `trust` label.
pub const MAX_TRUST_LABEL_BYTES: usize = 64;

/// A `trust` label: 1 to 64 bytes of lowercase ASCII letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit. The same grammar is used where configuration maps
/// labels to files (`--trust LABEL=FILE`, `[trust.LABEL]`).
pub fn is_trust_label(label: &str) -> bool {
    let mut bytes = label.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    first_ok
        && label.len() <= MAX_TRUST_LABEL_BYTES
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

/// Two identities of one kind whose credentials verify with the same anchors (the same
/// `trust` label, or both none) must differ in what the verifier checks: for certificates the
/// `issuer` setting, for JWTs the `audience`, or the `issuer` when both set one. Otherwise a
/// credential that fits one fits the other: an error. Both without a label and told apart
/// only by those claims: a warning, because the default anchors are often several
/// authorities pooled together, and then any of them can claim the other's names.
fn shared_trust(defs: &[IdentityDef], errors: &mut Vec<Diagnostic>) {
    for (i, first) in defs.iter().enumerate() {
        for second in &defs[i + 1..] {
            if first.kind != second.kind
                || first.kind == IdentityKind::Anonymous
                || first.trust_label() != second.trust_label()
            {
                continue;
            }
            let shared = match first.trust_label() {
                Some(label) => format!("the trust label `{label}`"),
                None => "the default trust anchors (neither has a `trust` label)".to_string(),
            };
            let pair = format!("`{}` and `{}`", first.name, second.name);
            if indistinguishable(first, second) {
                errors.push(
                    Diagnostic::error(
                        "check::indistinguishable-identities",
                        second.span,
                        format!("identities {pair} share {shared} and nothing tells their credentials apart"),
                    )
                    .with_label("a credential for one also verifies as the other")
                    .with_help(match first.kind {
                        IdentityKind::Jwt => "give each its own `trust` label (its own JWKS), or different `audience` values (and `issuer` on both, if they differ)",
                        _ => "give each its own `trust` label (its own CA), or different `issuer` values naming the CA that issues each",
                    }),
                );
            } else if first.trust_label().is_none() {
                errors.push(
                    Diagnostic::warning(
                        "check::shared-default-trust",
                        second.span,
                        format!("identities {pair} share {shared}: they are told apart only by names in the credential"),
                    )
                    .with_label("told apart by issuer or audience names only")
                    .with_help("if their credentials come from different authorities, give each its own `trust` label: any CA or key one of them trusts can otherwise claim the other's names"),
                );
            }
        }
    }
}

/// Whether every credential one identity accepts could also verify as the other, given
/// that both use the same anchors.
fn indistinguishable(first: &IdentityDef, second: &IdentityDef) -> bool {
    let issuer = (
        first.setting_value("issuer"),
        second.setting_value("issuer"),
    );
    match first.kind {
        // `audience` unset means "the token carries no `aud`", so it is a value too; an
        // unset `issuer` accepts every `iss`, so it overlaps any issuer.
        IdentityKind::Jwt => {
            first.setting_value("audience") == second.setting_value("audience")
                && (issuer.0 == issuer.1 || issuer.0.is_none() || issuer.1.is_none())
        }
        _ => issuer.0 == issuer.1,
    }
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
        client_span: identity.name.span,
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
                let pieces = client_pieces(template, Grammar::Attribute, errors);
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
            IdentityStatement::RequireIn { attr, set, .. } => {
                requires.push((attr, None, None));
                def.requires.push(Require::InSet {
                    attr: attr.text.clone(),
                    set: set.text.clone(),
                    span: set.span,
                    values: Arc::from(Vec::new()),
                });
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
    def.client = client_pieces(client, Grammar::ClientId, errors);
    def.client_span = client.span;
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
        "trust" => match texts.as_slice() {
            [label] if is_trust_label(label) => {}
            [label] => errors.push(
                Diagnostic::error(
                    "check::bad-trust-label",
                    values.first().map_or(key.span, |v| v.span),
                    format!("`{}` is not a trust label", label.escape_default()),
                )
                .with_help(format!("a trust label is 1 to {MAX_TRUST_LABEL_BYTES} lowercase letters, digits, `-`, `_` or `.`, starting with a letter or digit, e.g. `trust \"partner-a\"`")),
            ),
            _ => errors.push(Diagnostic::error(
                "check::bad-setting",
                key.span,
                "`trust` names exactly one trust label: the anchors this identity's credentials verify with",
            )),
        },
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

/// Which value grammar a template's text must follow (see [`crate::identity::attrs`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grammar {
    /// Extraction templates split verified attribute values: strict printable ASCII.
    Attribute,
    /// Client templates: any UTF-8 but `/ + #` and control characters, no leading `$`.
    ClientId,
}

/// Client-id and extraction templates: text, attributes and captures only.
fn client_pieces(
    template: &ast::Template,
    grammar: Grammar,
    errors: &mut Vec<Diagnostic>,
) -> Vec<ClientPiece> {
    let mut pieces = Vec::new();
    for part in template.levels.iter().flat_map(|l| &l.parts) {
        match part {
            Part::Text { text, span } => {
                let allowed = |c: char| match grammar {
                    Grammar::Attribute => crate::identity::attrs::is_value_char(c),
                    Grammar::ClientId => crate::identity::attrs::is_client_char(c),
                };
                if let Some(c) = text.chars().find(|c| !allowed(*c)) {
                    let help = match grammar {
                        Grammar::Attribute => {
                            "extraction templates split attribute values: no `/`, `+`, `#`, `$`, spaces or non-ASCII"
                        }
                        Grammar::ClientId => {
                            "client ids are used as topic levels: no `/`, `+`, `#` or control characters"
                        }
                    };
                    let what = match grammar {
                        Grammar::Attribute => "an extraction template",
                        Grammar::ClientId => "a client template",
                    };
                    errors.push(
                        Diagnostic::error(
                            "check::bad-client-text",
                            *span,
                            format!("`{}` may not appear in {what}", c.escape_default()),
                        )
                        .with_help(help),
                    );
                } else if grammar == Grammar::ClientId && pieces.is_empty() && text.starts_with('$')
                {
                    errors.push(
                        Diagnostic::error(
                            "check::bad-client-text",
                            *span,
                            "a client id may not start with `$`",
                        )
                        .with_help("a client id is used as a topic level, and a topic starting with `$` is the broker's"),
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
