//! Binding a verified identity into a [`Session`] at CONNECT.
//!
//! Binding is where attribute values meet the policy, so it is where the identity-value
//! grammar is enforced: every attribute the identity kind declares must be present and
//! valid, `require` lines must hold, and the client id must equal the `client` template
//! (its captures become attributes). Then each attribute-dependent level is rendered once,
//! so deciding never formats strings. Binding never fails: a rejected identity gives a
//! session whose every decision is a deny carrying the [`BindError`].

use super::{Decision, Engine, Reason, Verdict};
use crate::automaton::SlotTemplate;
use crate::check::{AttrCheck, ClientPiece, IdentityDef, IdentityId, Piece, Require};
use crate::identity::Identity;
use crate::identity::attrs::{ValueError, validate_value};
use regex_automata::meta::Regex;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

/// Why an identity could not be bound.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum BindError {
    UnknownIdentity { kind: String },
    MissingAttribute { attr: String },
    UndeclaredAttribute { attr: String },
    BadValue { attr: String, reason: String },
    RequireEqual { left: String, right: String },
    RequireCheck { attr: String, check: String },
    ClientIdMismatch { client_id: String, template: String },
    SeparatorInValue { attr: String, separator: char },
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::UnknownIdentity { kind } => {
                write!(f, "the policy defines no identity `{kind}`")
            }
            BindError::MissingAttribute { attr } => write!(f, "attribute `{attr}` is missing"),
            BindError::UndeclaredAttribute { attr } => {
                write!(f, "attribute `{attr}` is not declared by this identity")
            }
            BindError::BadValue { attr, reason } => write!(f, "attribute `{attr}` {reason}"),
            BindError::RequireEqual { left, right } => {
                write!(f, "require {left} == {right} does not hold")
            }
            BindError::RequireCheck { attr, check } => {
                write!(f, "require {attr} is {check} does not hold")
            }
            BindError::SeparatorInValue { attr, separator } => write!(
                f,
                "attribute `{attr}` contains `{separator}`, which separates it from its neighbours in a template: another account's values could form the same topic"
            ),
            BindError::ClientIdMismatch {
                client_id,
                template,
            } => {
                write!(
                    f,
                    "client id `{client_id}` does not match the template `{template}`"
                )
            }
        }
    }
}

/// A pattern level with this session's attributes rendered in, compiled on first use.
///
/// Building a regex costs tens of microseconds; most sessions never touch most pattern
/// levels, so binding (every CONNECT) must not pay for them.
#[derive(Clone, Debug)]
pub(crate) struct LazyPattern {
    pieces: Vec<Piece>,
    first_level: bool,
    regex: OnceLock<Option<Regex>>,
}

impl LazyPattern {
    /// The compiled regex, or `None` if it cannot be built (then it never matches).
    fn regex(&self) -> Option<&Regex> {
        self.regex
            .get_or_init(|| crate::compile::level_regex(&self.pieces, self.first_level).ok())
            .as_ref()
    }
}

/// What a slot became for this session.
#[derive(Clone, Debug)]
pub(crate) enum SlotValue {
    /// The level must equal this text.
    Text(Box<str>),
    /// The level must match this regex.
    Pattern(LazyPattern),
    /// Could not be rendered: never matches.
    Never,
}

impl SlotValue {
    /// False when the slot could not be rendered for this session.
    pub(crate) fn can_match(&self) -> bool {
        !matches!(self, SlotValue::Never)
    }

    pub(crate) fn matches(&self, level: &str) -> bool {
        match self {
            SlotValue::Text(text) => &**text == level,
            SlotValue::Pattern(pattern) => pattern.regex().is_some_and(|r| r.is_match(level)),
            SlotValue::Never => false,
        }
    }
}

/// An identity bound to one engine for one connection.
#[derive(Clone, Debug)]
pub struct Session {
    engine_id: u64,
    identity: Option<IdentityId>,
    kind: String,
    client_id: String,
    attrs: BTreeMap<String, String>,
    pub(crate) slots: Vec<SlotValue>,
    error: Option<BindError>,
    expires_at: Option<u64>,
}

impl Session {
    pub(crate) fn engine_id(&self) -> u64 {
        self.engine_id
    }

    pub fn identity_id(&self) -> Option<IdentityId> {
        self.identity
    }

    /// The identity name this session was bound as.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The bound attributes, including `client` and client-template captures.
    pub fn attrs(&self) -> &BTreeMap<String, String> {
        &self.attrs
    }

    /// Why binding failed, if it did.
    pub fn error(&self) -> Option<&BindError> {
        self.error.as_ref()
    }

    /// When the credential expires (Unix seconds), if it does.
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }

    /// The deny every request gets when binding failed.
    pub(crate) fn rejection(&self) -> Option<Decision> {
        let error = self.error.as_ref()?;
        let reason = match error {
            BindError::ClientIdMismatch { .. } => Reason::ClientIdMismatch,
            _ => Reason::IdentityRejected,
        };
        Some(Decision {
            verdict: Verdict::ExplicitDeny,
            rule: None,
            reason,
        })
    }
}

pub(crate) fn bind(engine: &Engine, identity: &Identity, client_id: &str) -> Session {
    let mut session = Session {
        engine_id: engine.id(),
        identity: None,
        kind: identity.kind.clone(),
        client_id: client_id.to_string(),
        attrs: BTreeMap::new(),
        slots: Vec::new(),
        error: None,
        expires_at: identity.expires_at,
    };
    match engine.checked().identity(&identity.kind) {
        None => {
            session.error = Some(BindError::UnknownIdentity {
                kind: identity.kind.clone(),
            })
        }
        Some((id, def)) => match bind_attrs(def, identity, client_id) {
            Ok(attrs) => {
                session.identity = Some(id);
                session.slots = engine
                    .automaton()
                    .slots
                    .iter()
                    .map(|s| render_slot(s, &attrs))
                    .collect();
                session.attrs = attrs;
            }
            Err(error) => session.error = Some(error),
        },
    }
    session
}

fn bind_attrs(
    def: &IdentityDef,
    identity: &Identity,
    client_id: &str,
) -> Result<BTreeMap<String, String>, BindError> {
    let captures: Vec<&str> = def
        .client
        .iter()
        .filter_map(|p| match p {
            ClientPiece::Capture(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let mut attrs = BTreeMap::new();
    for (name, value) in &identity.attrs {
        if !def.binds_attr(name) || name == "client" || captures.contains(&name.as_str()) {
            return Err(BindError::UndeclaredAttribute { attr: name.clone() });
        }
        check_value(name, value)?;
        attrs.insert(name.clone(), value.clone());
    }
    for name in def
        .attrs
        .iter()
        .filter(|a| *a != "client" && !captures.contains(&a.as_str()))
    {
        if !attrs.contains_key(name) {
            return Err(BindError::MissingAttribute { attr: name.clone() });
        }
    }
    check_value("client", client_id)?;
    let captured = match_client(&def.client, &attrs, client_id).ok_or_else(|| {
        BindError::ClientIdMismatch {
            client_id: client_id.to_string(),
            template: client_template_text(&def.client),
        }
    })?;
    for (name, value) in captured {
        check_value(&name, &value)?;
        attrs.insert(name, value);
    }
    attrs.insert("client".to_string(), client_id.to_string());
    check_requires(&def.requires, &attrs)?;
    check_separators(&def.separators, &attrs)?;
    Ok(attrs)
}

fn check_value(attr: &str, value: &str) -> Result<(), BindError> {
    validate_value(value).map_err(|e: ValueError| BindError::BadValue {
        attr: attr.to_string(),
        reason: e.to_string(),
    })
}

fn check_separators(
    separators: &[(String, char)],
    attrs: &BTreeMap<String, String>,
) -> Result<(), BindError> {
    for (attr, separator) in separators {
        if attrs.get(attr).is_some_and(|v| v.contains(*separator)) {
            return Err(BindError::SeparatorInValue {
                attr: attr.clone(),
                separator: *separator,
            });
        }
    }
    Ok(())
}

fn check_requires(requires: &[Require], attrs: &BTreeMap<String, String>) -> Result<(), BindError> {
    for require in requires {
        match require {
            Require::Equal(a, b) if attrs.get(a) != attrs.get(b) => {
                return Err(BindError::RequireEqual {
                    left: a.clone(),
                    right: b.clone(),
                });
            }
            Require::InSet {
                attr, set, values, ..
            } if !attrs.get(attr).is_some_and(|v| values.contains(v)) => {
                return Err(BindError::RequireCheck {
                    attr: attr.clone(),
                    check: format!("in {set}"),
                });
            }
            Require::Check(a, check) if !attrs.get(a).is_some_and(|v| check.accepts(v)) => {
                let name = match check {
                    AttrCheck::Eui64 => "eui64",
                    AttrCheck::Uuid => "uuid",
                };
                return Err(BindError::RequireCheck {
                    attr: a.clone(),
                    check: name.to_string(),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// The client template as written, for messages.
pub fn client_template_text(pieces: &[ClientPiece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            ClientPiece::Text(t) => t.clone(),
            ClientPiece::Attr(a) => format!("{{{a}}}"),
            ClientPiece::Capture(c) => format!("{{+{c}}}"),
        })
        .collect()
}

/// Matches a client id against its template; returns the captures, or `None`.
///
/// Attributes and text must match exactly; a capture takes the shortest non-empty run
/// that lets the rest match (templates never put two captures side by side).
pub fn match_client(
    pieces: &[ClientPiece],
    attrs: &BTreeMap<String, String>,
    id: &str,
) -> Option<Vec<(String, String)>> {
    let mut captures = Vec::new();
    match_pieces(pieces, attrs, id, &mut captures).then_some(captures)
}

fn match_pieces(
    pieces: &[ClientPiece],
    attrs: &BTreeMap<String, String>,
    rest: &str,
    out: &mut Vec<(String, String)>,
) -> bool {
    let Some((first, tail)) = pieces.split_first() else {
        return rest.is_empty();
    };
    match first {
        ClientPiece::Text(t) => rest
            .strip_prefix(t.as_str())
            .is_some_and(|r| match_pieces(tail, attrs, r, out)),
        ClientPiece::Attr(a) => {
            let value = attrs.get(a).map(String::as_str).unwrap_or("");
            !value.is_empty()
                && rest
                    .strip_prefix(value)
                    .is_some_and(|r| match_pieces(tail, attrs, r, out))
        }
        ClientPiece::Capture(name) => {
            for (end, _) in rest
                .char_indices()
                .skip(1)
                .chain(std::iter::once((rest.len(), ' ')))
            {
                if end == 0 {
                    continue;
                }
                let mark = out.len();
                out.push((name.clone(), rest[..end].to_string()));
                if match_pieces(tail, attrs, &rest[end..], out) {
                    return true;
                }
                out.truncate(mark);
            }
            false
        }
    }
}

fn render_slot(slot: &SlotTemplate, attrs: &BTreeMap<String, String>) -> SlotValue {
    let mut rendered = Vec::with_capacity(slot.pieces.len());
    for piece in &slot.pieces {
        match piece {
            Piece::Attr(name) => match attrs.get(name) {
                Some(value) => rendered.push(Piece::Text(value.clone())),
                None => return SlotValue::Never,
            },
            other => rendered.push(other.clone()),
        }
    }
    if slot.is_literal() {
        let text: String = rendered
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                _ => "",
            })
            .collect();
        return SlotValue::Text(text.into());
    }
    SlotValue::Pattern(LazyPattern {
        pieces: rendered,
        first_level: slot.first_level,
        regex: OnceLock::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces() -> Vec<ClientPiece> {
        vec![
            ClientPiece::Text("svc:".into()),
            ClientPiece::Attr("sid".into()),
            ClientPiece::Text(":".into()),
            ClientPiece::Capture("instance".into()),
        ]
    }

    #[test]
    fn client_template_captures_the_rest() {
        let attrs = BTreeMap::from([("sid".to_string(), "lights".to_string())]);
        let got = match_client(&pieces(), &attrs, "svc:lights:7").unwrap();
        assert_eq!(got, [("instance".to_string(), "7".to_string())]);
        assert!(match_client(&pieces(), &attrs, "svc:lights:").is_none());
        assert!(match_client(&pieces(), &attrs, "svc:locks:7").is_none());
    }
}
