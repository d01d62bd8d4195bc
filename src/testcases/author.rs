//! Author safety: each case checked against its policy before any case runs. A case the
//! policy cannot answer as written — an identity it does not define, an attribute the
//! identity does not bind from its credential, a credential attribute left out where that
//! alone would deny — is an error naming the case and the nearest declared name, never a
//! passing denial; so is a `rule` label no rule has. Also renders the client id a case connects with by default.

use super::file::{Case, CaseAction, Expect, TestFileError};
use crate::check::{Checked, ClientPiece, closest_name, template_text};
use std::collections::BTreeMap;

/// Why a default client id could not be derived from the identity's client template.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientIdError {
    /// The policy has no such identity.
    #[error("the policy defines no identity `{identity}` (it defines: {known})")]
    UnknownIdentity {
        /// The identity.
        identity: String,
        /// The identities it defines.
        known: String,
    },
    #[error(
        "the client template `{template}` captures `{{+{capture}}}`, so the client id must be given"
    )]
    /// The client template has a capture, which has no value to fill in.
    HasCapture {
        /// The template.
        template: String,
        /// The capture.
        capture: String,
    },
    /// The client template needs an attribute the case does not give.
    #[error("the client template `{template}` needs attribute `{attr}`, which is not given")]
    MissingAttr {
        /// The template.
        template: String,
        /// The attribute.
        attr: String,
    },
}

/// Renders an identity's client template with the given attributes: the client id a
/// well-behaved client of that identity would connect with.
pub fn default_client_id(
    checked: &Checked,
    identity: &str,
    attrs: &BTreeMap<String, String>,
) -> Result<String, ClientIdError> {
    let Some((_, def)) = checked.identity(identity) else {
        let known: Vec<&str> = checked.identities.iter().map(|d| d.name.as_str()).collect();
        return Err(ClientIdError::UnknownIdentity {
            identity: identity.to_string(),
            known: known.join(", "),
        });
    };
    let template = || template_text(&def.client);
    let mut out = String::new();
    for piece in &def.client {
        match piece {
            ClientPiece::Text(text) => out.push_str(text),
            ClientPiece::Attr(attr) => match attrs.get(attr) {
                Some(value) => out.push_str(value),
                None => {
                    return Err(ClientIdError::MissingAttr {
                        template: template(),
                        attr: attr.clone(),
                    });
                }
            },
            ClientPiece::Capture(capture) => {
                return Err(ClientIdError::HasCapture {
                    template: template(),
                    capture: capture.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// What is wrong with a case for this policy: an unknown identity, attributes the
/// identity does not bind from its credential, credential attributes left out (except by
/// a `connect` case expecting a denial), a client id that cannot be derived. Each problem
/// is one error.
pub fn case_errors(case: &Case, checked: &Checked) -> Vec<TestFileError> {
    let error = |message: String| TestFileError::Case {
        loc: case.loc.clone(),
        case: case.name.clone(),
        message,
    };
    let Some((_, def)) = checked.identity(&case.identity) else {
        let known: Vec<&str> = checked.identities.iter().map(|d| d.name.as_str()).collect();
        let near = closest_name(&case.identity, known.iter().copied())
            .map_or(String::new(), |n| format!("did you mean `{n}`? "));
        return vec![error(format!(
            "the policy defines no identity `{}`; {near}it defines: {}",
            case.identity,
            known.join(", ")
        ))];
    };
    let template = template_text(&def.client);
    let captured = |name: &str| {
        def.client
            .iter()
            .any(|p| matches!(p, ClientPiece::Capture(c) if c == name))
    };
    let credential: Vec<&str> = def
        .attrs
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "client" && !captured(a))
        .collect();
    let mut errors = Vec::new();
    if let Some(label) = &case.rule
        && !checked
            .rules
            .iter()
            .any(|r| r.label.as_deref() == Some(label.as_str()))
    {
        let labels: Vec<&str> = checked
            .rules
            .iter()
            .filter_map(|r| r.label.as_deref())
            .collect();
        let near = closest_name(label, labels.iter().copied())
            .map_or(String::new(), |n| format!("did you mean `{n}`? "));
        errors.push(error(format!(
            "no rule is labelled `{label}`; {near}labels: {}",
            listed(&labels)
        )));
    }
    for name in case.attrs.keys() {
        let message = if name == "client" {
            "`client` is the client id: give it as `client_id`, not in `attrs`".to_string()
        } else if captured(name) {
            format!(
                "`{name}` is captured from the client id by the template `{template}`: give `client_id` instead of `attrs.{name}`"
            )
        } else if !credential.contains(&name.as_str()) {
            let near = closest_name(name, credential.iter().copied())
                .map_or(String::new(), |n| format!("did you mean `{n}`? "));
            format!(
                "identity `{}` binds no attribute `{name}`; {near}it binds: {}",
                def.name,
                listed(&credential)
            )
        } else {
            continue;
        };
        errors.push(error(message));
    }
    let refused_connect = case.action == CaseAction::Connect && case.expect != Expect::Allow;
    for name in credential.iter().filter(|a| !case.attrs.contains_key(**a)) {
        if !refused_connect {
            errors.push(error(format!(
                "identity `{}` binds `{name}` from its credential, but `attrs` does not give it: only a `connect` case expecting a denial may leave an attribute out (to show such a credential is refused); any other case would be denied for that alone",
                def.name
            )));
        }
    }
    if errors.is_empty() && case.client_id.is_none() {
        if let Err(e) = default_client_id(checked, &case.identity, &case.attrs) {
            errors.push(error(format!(
                "cannot derive the client id: {e}; give `client_id`"
            )));
        }
    }
    errors
}

/// Names for a message; `none` when there are none.
fn listed(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}
