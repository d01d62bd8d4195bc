//! Binding a verified identity into a [`Session`] at CONNECT.
//!
//! Binding is where attribute values meet the policy, so it is where the value grammars
//! are enforced: every attribute the identity kind declares must be present and valid
//! (the strict attribute-value grammar), `require` lines must hold, and the client id must
//! be a valid client id and equal the `client` template (its captures, parts of the client
//! id, become attributes). Then each of the identity's slots (the attribute-dependent
//! texts of its levels) is rendered once, so deciding never formats strings and never
//! builds a pattern: pattern levels are built once per policy and shared. Binding never
//! fails: a rejected identity gives a session whose every decision is a deny carrying the
//! [`BindError`]. Client-template matching costs O(client id × template) time whatever the
//! client id (see [`crate::check::matches::match_client`]).

use super::{Decision, Engine, Reason, Verdict};
use crate::automaton::SlotTemplate;
use crate::check::matches::match_client;
use crate::check::{AttrCheck, ClientPiece, IdentityDef, IdentityId, Require, template_text};
use crate::identity::Identity;
use crate::value::{ValueError, validate_client_id, validate_value};
use std::collections::BTreeMap;
use std::fmt;

/// Why an identity could not be bound.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum BindError {
    /// The policy declares no identity of this kind.
    UnknownIdentity {
        /// The identity kind the credential claims.
        kind: String,
    },
    /// A declared attribute is missing.
    MissingAttribute {
        /// The attribute.
        attr: String,
    },
    /// The credential carries an attribute the identity does not declare.
    UndeclaredAttribute {
        /// The attribute.
        attr: String,
    },
    /// An attribute value is outside the value grammar.
    BadValue {
        /// The attribute.
        attr: String,
        /// Why it is outside the grammar.
        reason: String,
    },
    /// A `require a == b` line does not hold.
    RequireEqual {
        /// The left attribute.
        left: String,
        /// The right attribute.
        right: String,
    },
    /// A `require a is check` line does not hold.
    RequireCheck {
        /// The attribute.
        attr: String,
        /// The check.
        check: String,
    },
    /// The client id does not match the identity's template.
    ClientIdMismatch {
        /// The client id.
        client_id: String,
        /// The identity's client-id template.
        template: String,
    },
    /// An attribute value contains a separator its template cuts on.
    SeparatorInValue {
        /// The attribute.
        attr: String,
        /// The separator.
        separator: char,
    },
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

/// An identity bound to one engine for one connection.
#[derive(Clone, Debug)]
pub struct Session {
    engine_id: u64,
    identity: Option<IdentityId>,
    kind: String,
    client_id: String,
    attrs: BTreeMap<String, String>,
    /// The identity's slots, rendered (see [`crate::automaton::SlotTemplate`]).
    pub(crate) slots: Box<[Box<str>]>,
    error: Option<BindError>,
    expires_at: Option<u64>,
}

impl Session {
    pub(crate) fn engine_id(&self) -> u64 {
        self.engine_id
    }

    /// The identity the session is bound as, if bound.
    pub fn identity_id(&self) -> Option<IdentityId> {
        self.identity
    }

    /// The identity name this session was bound as.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The client id the session was bound with.
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
        slots: Box::default(),
        error: None,
        expires_at: identity.expires_at,
    };
    match engine.checked().identity(&identity.kind) {
        None => {
            session.error = Some(BindError::UnknownIdentity {
                kind: identity.kind.clone(),
            })
        }
        Some((id, def)) => {
            let bound = bind_attrs(def, identity, client_id).and_then(|attrs| {
                let slots = engine.automaton().identity_slots(id);
                let rendered: Result<Box<[Box<str>]>, BindError> =
                    slots.iter().map(|s| render_slot(s, &attrs)).collect();
                rendered.map(|slots| (attrs, slots))
            });
            match bound {
                Ok((attrs, slots)) => {
                    session.identity = Some(id);
                    session.slots = slots;
                    session.attrs = attrs;
                }
                Err(error) => session.error = Some(error),
            }
        }
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
    check_client_part("client", client_id)?;
    let captured = match_client(&def.client, &attrs, client_id).ok_or_else(|| {
        BindError::ClientIdMismatch {
            client_id: client_id.to_string(),
            template: template_text(&def.client),
        }
    })?;
    for (name, value) in captured {
        check_client_part(&name, &value)?;
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

/// The client id and its captures follow the client-id grammar (spaces and any UTF-8
/// allowed; never `/ + #`, control characters or a leading `$`).
fn check_client_part(attr: &str, value: &str) -> Result<(), BindError> {
    validate_client_id(value).map_err(|e: ValueError| BindError::BadValue {
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
            } if attrs
                .get(attr)
                .is_none_or(|v| values.binary_search(v).is_err()) =>
            {
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

/// A slot's text for this session's attributes. A slot naming an attribute the session
/// does not have could not be decided, so the whole session is rejected instead (the
/// checker makes sure every attribute a rule of the identity uses is bound).
fn render_slot(
    slot: &SlotTemplate,
    attrs: &BTreeMap<String, String>,
) -> Result<Box<str>, BindError> {
    slot.render(attrs)
        .map(String::into_boxed_str)
        .map_err(|attr| BindError::MissingAttribute {
            attr: attr.to_string(),
        })
}
