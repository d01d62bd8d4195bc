//! Binding at CONNECT, written from the language reference (sections 2.2, 2.3 and 6.3) for
//! the reference interpreter: which identities and client ids are accepted, and what the
//! session's attributes are.
//!
//! The steps, in this order (the first that fails refuses the session):
//! 1. the policy defines the identity;
//! 2. every attribute the credential supplies is one the identity binds from its credential
//!    (not `client`, not a capture of the client template), and every such attribute is
//!    supplied; each value follows the value grammar;
//! 3. the client id follows the client-id grammar and equals the client template with the
//!    attributes filled in, each `{+capture}` taking the shortest non-empty run that lets
//!    the rest of the template match; the captured values follow the client-id grammar;
//! 4. every `require` holds;
//! 5. no attribute holds a character the checker reserved as its separator.
//!
//! The client template is matched with a table over (piece, position): which suffixes of
//! the client id the remaining pieces can match, computed once from the end, then read
//! from the start to pick each capture's end. O(pieces × id length); never backtracks.
//! This module must never share code with the compiled engine's binding
//! (`decide::session`): it is what that binding is tested against.

use crate::check::{AttrCheck, Checked, ClientPiece, IdentityDef, IdentityId, Require};
use crate::decide::Reason;
use crate::identity::Identity;
use std::collections::BTreeMap;
use std::fmt;

/// The longest attribute value or client id, in bytes.
pub const MAX_VALUE_BYTES: usize = 256;

/// A session as the reference interpreter binds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    /// The identity binds.
    Bound(Bound),
    /// The identity does not bind, and why.
    Refused(Refusal),
}

/// An accepted identity and its attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    /// The identity it bound as.
    pub identity: IdentityId,
    /// The credential's attributes, the client-template captures and `client`.
    pub attrs: BTreeMap<String, String>,
}

/// Why the reference interpreter refused to bind an identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The policy declares no identity of this kind.
    UnknownIdentity,
    /// The credential carries an attribute the identity does not declare.
    UndeclaredAttribute(String),
    /// A declared attribute is missing.
    MissingAttribute(String),
    /// An attribute value is outside the value grammar.
    BadValue {
        /// The attribute.
        attr: String,
        /// Why.
        why: &'static str,
    },
    /// The client id does not match the identity's template.
    ClientIdMismatch,
    /// A `require` line does not hold.
    Require(String),
    /// An attribute value contains a separator its template cuts on.
    Separator {
        /// The attribute.
        attr: String,
        /// The separator.
        separator: char,
    },
}

impl Refusal {
    /// The reason every decision of a refused session carries.
    pub fn reason(&self) -> Reason {
        match self {
            Refusal::ClientIdMismatch => Reason::ClientIdMismatch,
            _ => Reason::IdentityRejected,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownIdentity => f.write_str("the policy defines no such identity"),
            Refusal::UndeclaredAttribute(a) => write!(f, "`{a}` is not bound by the credential"),
            Refusal::MissingAttribute(a) => write!(f, "attribute `{a}` is missing"),
            Refusal::BadValue { attr, why } => write!(f, "`{attr}` {why}"),
            Refusal::ClientIdMismatch => f.write_str("the client id does not match the template"),
            Refusal::Require(what) => write!(f, "require {what} does not hold"),
            Refusal::Separator { attr, separator } => {
                write!(f, "`{attr}` contains its separator `{separator}`")
            }
        }
    }
}

impl Binding {
    /// The bound session, if binding succeeded.
    pub fn bound(&self) -> Option<&Bound> {
        match self {
            Binding::Bound(bound) => Some(bound),
            Binding::Refused(_) => None,
        }
    }
}

/// Binds a verified identity and the CONNECT client id.
pub fn bind(checked: &Checked, identity: &Identity, client_id: &str) -> Binding {
    let Some((id, def)) = checked.identity(&identity.kind) else {
        return Binding::Refused(Refusal::UnknownIdentity);
    };
    match bind_attrs(def, &identity.attrs, client_id) {
        Ok(attrs) => Binding::Bound(Bound {
            identity: id,
            attrs,
        }),
        Err(refusal) => Binding::Refused(refusal),
    }
}

fn bind_attrs(
    def: &IdentityDef,
    credential: &BTreeMap<String, String>,
    client_id: &str,
) -> Result<BTreeMap<String, String>, Refusal> {
    let captures: Vec<&str> = def
        .client
        .iter()
        .filter_map(|piece| match piece {
            ClientPiece::Capture(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let from_credential = |name: &str| {
        name != "client" && !captures.contains(&name) && def.attrs.iter().any(|a| a == name)
    };
    for (name, value) in credential {
        if !from_credential(name) {
            return Err(Refusal::UndeclaredAttribute(name.clone()));
        }
        grammar(name, value)?;
    }
    if let Some(missing) = def
        .attrs
        .iter()
        .find(|a| from_credential(a) && !credential.contains_key(*a))
    {
        return Err(Refusal::MissingAttribute(missing.clone()));
    }
    client_grammar("client", client_id)?;
    let captured =
        match_client(&def.client, credential, client_id).ok_or(Refusal::ClientIdMismatch)?;
    let mut attrs = credential.clone();
    for (name, value) in captured {
        client_grammar(&name, &value)?;
        attrs.insert(name, value);
    }
    attrs.insert("client".to_string(), client_id.to_string());
    for require in &def.requires {
        check_require(require, &attrs)?;
    }
    for (attr, separator) in &def.separators {
        if attrs.get(attr).is_some_and(|v| v.contains(*separator)) {
            return Err(Refusal::Separator {
                attr: attr.clone(),
                separator: *separator,
            });
        }
    }
    Ok(attrs)
}

/// The value grammar (section 6.3): 1 to 256 bytes of printable ASCII, without `/`, `+`,
/// `#` or `$` (so no space and no control character either).
fn grammar(attr: &str, value: &str) -> Result<(), Refusal> {
    let why = if value.is_empty() {
        Some("is empty")
    } else if value.len() > MAX_VALUE_BYTES {
        Some("is longer than 256 bytes")
    } else if !value.chars().all(|c| ('!'..='~').contains(&c)) {
        Some("holds a character outside printable ASCII")
    } else if value.contains(['/', '+', '#', '$']) {
        Some("holds a character reserved in MQTT topics")
    } else {
        None
    };
    match why {
        Some(why) => Err(Refusal::BadValue {
            attr: attr.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

/// The client-id grammar (sections 2.3 and 6.3): 1 to 256 bytes of any text but `/`, `+`,
/// `#` and control characters (C0, DEL and C1), not starting with `$`. Spaces and non-ASCII
/// letters are allowed: MQTT client ids may hold them.
fn client_grammar(attr: &str, value: &str) -> Result<(), Refusal> {
    let control = |c: char| c < ' ' || ('\u{7f}'..='\u{9f}').contains(&c);
    let why = if value.is_empty() {
        Some("is empty")
    } else if value.len() > MAX_VALUE_BYTES {
        Some("is longer than 256 bytes")
    } else if value.starts_with('$') {
        Some("starts with `$`")
    } else if value.chars().any(control) {
        Some("holds a control character")
    } else if value.contains(['/', '+', '#']) {
        Some("holds a character reserved in MQTT topics")
    } else {
        None
    };
    match why {
        Some(why) => Err(Refusal::BadValue {
            attr: attr.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

fn check_require(require: &Require, attrs: &BTreeMap<String, String>) -> Result<(), Refusal> {
    let value = |name: &str| attrs.get(name).map(String::as_str);
    let (holds, what) = match require {
        Require::Equal(a, b) => (
            value(a).is_some() && value(a) == value(b),
            format!("{a} == {b}"),
        ),
        Require::InSet {
            attr, set, values, ..
        } => (
            value(attr).is_some_and(|v| values.iter().any(|s| s == v)),
            format!("{attr} in {set}"),
        ),
        Require::Check(attr, AttrCheck::Eui64) => (
            value(attr).is_some_and(is_eui64),
            format!("{attr} is eui64"),
        ),
        Require::Check(attr, AttrCheck::Uuid) => {
            (value(attr).is_some_and(is_uuid), format!("{attr} is uuid"))
        }
    };
    if holds {
        Ok(())
    } else {
        Err(Refusal::Require(what))
    }
}

fn lower_hex(c: char) -> bool {
    c.is_ascii_digit() || ('a'..='f').contains(&c)
}

/// 16 lowercase hex digits, no separators.
fn is_eui64(value: &str) -> bool {
    value.len() == 16 && value.chars().all(lower_hex)
}

/// Lowercase hex in groups of 8-4-4-4-12 separated by `-`.
fn is_uuid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    let sizes: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    sizes == [8, 4, 4, 4, 12] && groups.iter().all(|g| g.chars().all(lower_hex))
}

/// Matches a client id against its template: the captures, or `None` if it does not match.
///
/// `rest[i][at]`: pieces `i..` match `id[at..]`, filled in from the last piece backwards;
/// then each capture, read from the left, ends at the first position after its start from
/// which the remaining pieces match (the shortest non-empty run).
pub fn match_client(
    pieces: &[ClientPiece],
    attrs: &BTreeMap<String, String>,
    id: &str,
) -> Option<Vec<(String, String)>> {
    let length = id.len();
    let mut rest = vec![vec![false; length + 1]; pieces.len() + 1];
    rest[pieces.len()][length] = true;
    for (i, piece) in pieces.iter().enumerate().rev() {
        let (done, todo) = rest.split_at_mut(i + 1);
        let (row, next) = (&mut done[i], &todo[0]);
        match fixed_text(piece, attrs) {
            Some(text) => {
                for at in 0..=length {
                    let fits = id.get(at..).is_some_and(|r| r.starts_with(text));
                    row[at] = fits && next[at + text.len()];
                }
            }
            None if matches!(piece, ClientPiece::Capture(_)) => {
                // Some end after `at` (a character boundary) from which the rest matches.
                let mut later = false;
                for at in (0..=length).rev() {
                    row[at] = later && id.is_char_boundary(at);
                    later |= next[at] && id.is_char_boundary(at);
                }
            }
            None => {} // an attribute the identity lacks: matches nothing
        }
    }
    if !rest[0][0] {
        return None;
    }
    let mut captures = Vec::new();
    let mut at = 0;
    for (i, piece) in pieces.iter().enumerate() {
        match (piece, fixed_text(piece, attrs)) {
            (_, Some(text)) => at += text.len(),
            (ClientPiece::Capture(name), None) => {
                let end =
                    (at + 1..=length).find(|&end| id.is_char_boundary(end) && rest[i + 1][end])?;
                captures.push((name.clone(), id[at..end].to_string()));
                at = end;
            }
            _ => return None,
        }
    }
    Some(captures)
}

/// The text a text or attribute piece must be; `None` for a capture or a missing attribute.
fn fixed_text<'a>(piece: &'a ClientPiece, attrs: &'a BTreeMap<String, String>) -> Option<&'a str> {
    match piece {
        ClientPiece::Text(text) => Some(text),
        ClientPiece::Attr(name) => attrs.get(name).map(String::as_str),
        ClientPiece::Capture(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> Vec<ClientPiece> {
        // `{x}` an attribute, `{+x}` a capture, the rest text: enough for these tests.
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(ClientPiece::Text(rest[..open].to_string()));
            }
            let close = rest[open..].find('}').expect("closed") + open;
            let name = &rest[open + 1..close];
            pieces.push(match name.strip_prefix('+') {
                Some(capture) => ClientPiece::Capture(capture.to_string()),
                None => ClientPiece::Attr(name.to_string()),
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(ClientPiece::Text(rest.to_string()));
        }
        pieces
    }

    fn captures(template_text: &str, id: &str) -> Option<Vec<String>> {
        let attrs = BTreeMap::from([("sid".to_string(), "lights".to_string())]);
        let found = match_client(&template(template_text), &attrs, id)?;
        Some(found.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
    }

    #[test]
    fn captures_take_the_shortest_non_empty_run() {
        assert_eq!(
            captures("svc:{sid}:{+i}", "svc:lights:7"),
            Some(vec!["i=7".into()])
        );
        assert_eq!(captures("svc:{sid}:{+i}", "svc:lights:"), None);
        assert_eq!(captures("svc:{sid}:{+i}", "svc:locks:7"), None);
        assert_eq!(
            captures("{+a}:{+b}", "x:y:z"),
            Some(vec!["a=x".into(), "b=y:z".into()])
        );
        assert_eq!(
            captures("{+a}::{+b}", "x:::y"),
            Some(vec!["a=x".into(), "b=:y".into()])
        );
        assert_eq!(captures("a{+c}", "a"), None);
        assert_eq!(captures("{sid}", "lights"), Some(Vec::new()));
        assert_eq!(captures("{sid}x", "lights"), None);
    }

    #[test]
    fn hostile_client_ids_cost_linear_time() {
        let hostile = format!("m{}x", ":".repeat(250));
        assert_eq!(captures("m{+c0}:{+c1}:{+c2}:{+c3}:{+c4}.", &hostile), None);
        let fits = format!("m{}.", ":".repeat(250));
        let got = captures("m{+c0}:{+c1}:{+c2}:{+c3}:{+c4}.", &fits).expect("matches");
        assert_eq!(got[..4], ["c0=:", "c1=:", "c2=:", "c3=:"]);
        assert_eq!(got[4], format!("c4={}", ":".repeat(250 - 8)));
    }

    #[test]
    fn the_value_grammar() {
        for good in ["P1", "a-b_c.d:e", &"x".repeat(256)] {
            assert!(grammar("a", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a/b",
            "+",
            "#",
            "$s",
            "a b",
            "é",
            "a\u{7f}",
            &"x".repeat(257),
        ] {
            assert!(grammar("a", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_client_id_grammar() {
        for good in ["P1", "my phone ü", "a$b", &"x".repeat(256), "📻"] {
            assert!(client_grammar("client", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "$SYS",
            "a/b",
            "+",
            "a#",
            "a\tb",
            "a\u{0}",
            "a\u{85}",
            &"x".repeat(257),
        ] {
            assert!(client_grammar("client", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn requirement_checks() {
        assert!(is_eui64("0123456789abcdef"));
        assert!(!is_eui64("0123456789ABCDEF"));
        assert!(is_uuid("550e8400-e29b-41d4-a716-446655440000"));
        assert!(!is_uuid("550e8400e29b-41d4-a716-446655440000-"));
    }
}
