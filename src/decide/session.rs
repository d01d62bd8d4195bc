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
//! client id (see [`crate::check::matches::match_client`]); a template without captures
//! is compared part by part from the identity's bind plan, in time linear in the client id.
//! Plain ASCII values and client ids are judged by a byte table (`plain`), anything else
//! by the grammars themselves.

use super::bind_plan::{BindPlan, ClientPart, PlanPiece};
use super::{Decision, Engine, Reason, Verdict};
use crate::automaton::{SlotTexts, same_text};
use crate::check::matches::{AttrValues, Captures, match_client};
use crate::check::{AttrCheck, IdentityDef, IdentityId, Require};
use crate::identity::Identity;
use crate::value::{ValueError, validate_client_id, validate_value};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

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
        /// The identity's client-id template, as written (shared with the engine's bind
        /// plan: a refused bind copies no template text).
        template: Arc<str>,
    },
    /// The session's attribute values and rendered levels together pass 4 GiB.
    SessionTooLarge {
        /// Their length in bytes.
        bytes: usize,
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
            BindError::SessionTooLarge { bytes } => write!(
                f,
                "the attribute values and the levels rendered from them come to {bytes} bytes (limit 4 GiB)"
            ),
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
///
/// Everything a session knows is in one text, end to end: the identity name, the client
/// id, the rendered slots, then the attribute values and then their names (each sorted by
/// name; the `client` attribute's value is the client id, not a copy of it). `offsets` says where
/// each piece ends (an attribute: where its name and value start and end). So binding
/// allocates two blocks whatever the identity (three when the client template captures),
/// and an idle session holds no map nodes.
#[derive(Clone, Debug)]
pub struct Session {
    engine_id: u64,
    identity: Option<IdentityId>,
    slot_count: u32,
    text: Box<str>,
    /// `[kind end, client id end, slot ends…, (name start, name end, value start,
    /// value end) per attribute…]`, byte offsets into `text`.
    offsets: Box<[u32]>,
    error: Option<Box<BindError>>,
    expires_at: Option<u64>,
}

/// A bound session's attributes (including `client` and client-template captures),
/// sorted by name; look one up with [`Attrs::get`] or walk them with [`Attrs::iter`].
#[derive(Clone, Copy, Debug)]
pub struct Attrs<'a> {
    text: &'a str,
    spans: &'a [u32],
}

impl<'a> Attrs<'a> {
    /// The value of attribute `name`, if bound.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = (low + high) / 2;
            let s = &self.spans[middle * 4..middle * 4 + 4];
            match self.text[s[0] as usize..s[1] as usize].cmp(name) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(&self.text[s[2] as usize..s[3] as usize]),
            }
        }
        None
    }

    /// The attributes as (name, value), sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let text = self.text;
        self.spans.chunks_exact(4).map(move |s| {
            (
                &text[s[0] as usize..s[1] as usize],
                &text[s[2] as usize..s[3] as usize],
            )
        })
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.spans.len() / 4
    }

    /// Whether there are none (an unbound session).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// A copy as a map, for code that keeps or combines attribute sets (analysis, tests).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }
}

impl AttrValues for Attrs<'_> {
    fn value(&self, name: &str) -> Option<&str> {
        self.get(name)
    }
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
        &self.text[..self.offsets[0] as usize]
    }

    /// The client id the session was bound with.
    pub fn client_id(&self) -> &str {
        &self.text[self.offsets[0] as usize..self.offsets[1] as usize]
    }

    /// The bound attributes, including `client` and client-template captures (none when
    /// binding failed).
    pub fn attrs(&self) -> Attrs<'_> {
        Attrs {
            text: &self.text,
            spans: &self.offsets[2 + self.slot_count as usize..],
        }
    }

    /// The identity's slots, rendered (see [`crate::automaton::SlotTemplate`]).
    pub(crate) fn slots(&self) -> SlotTexts<'_> {
        // The client id's end is where the first slot starts.
        SlotTexts::new(&self.text, &self.offsets[1..2 + self.slot_count as usize])
    }

    /// Why binding failed, if it did.
    pub fn error(&self) -> Option<&BindError> {
        self.error.as_deref()
    }

    /// When the credential expires (Unix seconds), if it does.
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }

    /// The deny every request gets when binding failed.
    pub(crate) fn rejection(&self) -> Option<Decision> {
        let error = self.error.as_deref()?;
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
    let bound = match engine.checked().identity(&identity.kind) {
        None => Err(BindError::UnknownIdentity {
            kind: identity.kind.clone(),
        }),
        Some((id, def)) => bind_identity(engine, id, def, identity, client_id),
    };
    bound.unwrap_or_else(|error| rejected(engine, identity, client_id, error))
}

/// The session of an identity that could not be bound: its kind and client id, no
/// attributes, no slots, and the error every decision denies with.
fn rejected(engine: &Engine, identity: &Identity, client_id: &str, error: BindError) -> Session {
    // Two copies into one block (cheaper than `concat`'s general join).
    let mut text = String::with_capacity(identity.kind.len() + client_id.len());
    text.push_str(&identity.kind);
    text.push_str(client_id);
    Session {
        engine_id: engine.id(),
        identity: None,
        slot_count: 0,
        text: text.into_boxed_str(),
        offsets: Box::new([
            offset(identity.kind.len()),
            offset(identity.kind.len() + client_id.len()),
        ]),
        error: Some(Box::new(error)),
        expires_at: identity.expires_at,
    }
}

/// A bind's values by the index of their names in the identity's [`BindPlan`]; looked
/// up by name for the `require` and separator checks (linear: the list is short).
struct PlanValues<'p, 'a> {
    names: &'p [Box<str>],
    values: &'p [Option<&'a str>],
}

impl AttrValues for PlanValues<'_, '_> {
    fn value(&self, name: &str) -> Option<&str> {
        let i = self.names.iter().position(|n| same_text(n, name))?;
        self.values[i]
    }
}

fn bind_identity(
    engine: &Engine,
    id: IdentityId,
    def: &IdentityDef,
    identity: &Identity,
    client_id: &str,
) -> Result<Session, BindError> {
    let Some(plan) = engine.bind_plan(id) else {
        return Err(BindError::UnknownIdentity {
            kind: identity.kind.clone(),
        });
    };
    let names = plan.names();
    // Declared before the values so that it is dropped after them: they borrow from it
    // (a `Vec`'s drop may not outlive what it borrows).
    #[allow(clippy::needless_late_init)]
    let captured: Captures;
    // One value per name of the plan, filled by index: the credential's, then the
    // captures', then the client id (of one name, the last written wins, as a map's insert
    // would). Every name written is one of the plan's: the credential's are declared, the
    // captures are the template's. On the stack for up to eight names.
    let mut on_stack: [Option<&str>; 8] = [None; 8];
    let mut on_heap: Vec<Option<&str>>;
    let by_index: &mut [Option<&str>] = match on_stack.get_mut(..names.len()) {
        Some(values) => values,
        None => {
            on_heap = vec![None; names.len()];
            &mut on_heap
        }
    };
    fill_credential(plan, identity, by_index)?;
    check_client_part("client", client_id)?;
    let credential = PlanValues {
        names,
        values: by_index,
    };
    let mismatch = || BindError::ClientIdMismatch {
        client_id: client_id.to_string(),
        template: Arc::clone(plan.client_template()),
    };
    match plan.client_parts() {
        // Text and attributes only: one comparison from the left decides, and there is
        // nothing captured.
        Some(parts) if matches_parts(parts, by_index, client_id) => {}
        Some(_) => return Err(mismatch()),
        None => {
            captured = match_client(&def.client, &credential, client_id).ok_or_else(mismatch)?;
            for (name, value) in &captured {
                check_client_part(name, value)?;
                if let Some(i) = names.iter().position(|n| same_text(n, name)) {
                    by_index[i] = Some(value);
                }
            }
        }
    }
    by_index[plan.client()] = Some(client_id);
    let values = PlanValues {
        names,
        values: by_index,
    };
    check_requires(&def.requires, &values)?;
    check_planned_separators(plan, by_index)?;
    let (text, offsets) = layout(&identity.kind, client_id, plan, by_index)?;
    Ok(Session {
        engine_id: engine.id(),
        identity: Some(id),
        slot_count: offset(plan.slots().len()),
        text,
        offsets,
        error: None,
        expires_at: identity.expires_at,
    })
}

/// Whether a capture-free client-id template's `parts` spell exactly `client_id`, each
/// attribute part by its value in `values` (a missing or empty value matches nothing):
/// what [`match_client`] answers for such a template, without building its list of parts.
fn matches_parts(parts: &[ClientPart], values: &[Option<&str>], client_id: &str) -> bool {
    let mut rest = client_id.as_bytes();
    for part in parts {
        let expected = match part {
            ClientPart::Text(text) => text.as_bytes(),
            ClientPart::Value(index) => match index.and_then(|i| values[i]) {
                Some(value) if !value.is_empty() => value.as_bytes(),
                _ => return false,
            },
        };
        match rest.split_at_checked(expected.len()) {
            // Compared in place: the parts are a few bytes long, and for those a loop is
            // cheaper than a call to `memcmp`.
            Some((head, tail)) if head.iter().zip(expected).all(|(a, b)| a == b) => rest = tail,
            _ => return false,
        }
    }
    rest.is_empty()
}

/// Fills `values` with the credential's attribute values, each declared and valid, every
/// declared one present (the `client` attribute and client-template captures come from the
/// client id). The credential's names and the plan's are both sorted, so one walk over the
/// two finds each; the error is the first name, in the credential's order, that is not
/// declared or whose value is invalid, then the first declared name missing.
fn fill_credential<'a>(
    plan: &BindPlan,
    identity: &'a Identity,
    values: &mut [Option<&'a str>],
) -> Result<(), BindError> {
    let expected = plan.credential();
    let mut next = 0;
    for (name, value) in &identity.attrs {
        while next < expected.len() && !same_text(&expected[next].0, name) {
            next += 1;
        }
        let Some((_, index)) = expected.get(next) else {
            return Err(BindError::UndeclaredAttribute { attr: name.clone() });
        };
        check_value(name, value)?;
        values[*index] = Some(value);
        next += 1;
    }
    // Each name matched a different expected one, so all are there when the counts agree.
    if identity.attrs.len() < expected.len()
        && let Some((name, _)) = expected
            .iter()
            .find(|(name, _)| !identity.attrs.contains_key(&**name))
    {
        return Err(BindError::MissingAttribute {
            attr: name.to_string(),
        });
    }
    Ok(())
}

/// The session's text and offsets (see [`Session`]): one allocation each. `values` holds
/// the value of each of the plan's names, by index. The text is sized from the plan's
/// counts (its slots' literal text, how often each value is rendered) in one pass over
/// the values; a value a slot needs and does not have, or a slot piece no session can
/// fill, rejects the session with the first such piece in slot order.
fn layout(
    kind: &str,
    client_id: &str,
    plan: &BindPlan,
    values: &[Option<&str>],
) -> Result<(Box<str>, Box<[u32]>), BindError> {
    let (names, client, uses) = (plan.names(), plan.client(), plan.slot_uses());
    let mut len = kind.len() + client_id.len() + plan.slot_text_len();
    let (mut count, mut incomplete) = (0, plan.slot_unbound());
    for (i, value) in values.iter().enumerate() {
        match value {
            Some(value) => {
                let copies = uses[i] as usize + usize::from(i != client);
                len += value.len() * copies + names[i].len();
                count += 1;
            }
            None => incomplete |= uses[i] > 0,
        }
    }
    if incomplete && let Some(error) = first_missing(plan, values) {
        return Err(error);
    }
    if u32::try_from(len).is_err() {
        return Err(BindError::SessionTooLarge { bytes: len });
    }
    let mut text = String::with_capacity(len);
    let mut offsets = Vec::with_capacity(2 + plan.slots().len() + 4 * count);
    text.push_str(kind);
    offsets.push(offset(text.len()));
    text.push_str(client_id);
    offsets.push(offset(text.len()));
    for slot in plan.slots() {
        for piece in slot.iter() {
            match piece {
                PlanPiece::Text(t) => text.push_str(t),
                // Present: `first_missing` returned otherwise.
                PlanPiece::Value(i) => text.push_str(values[*i].unwrap_or_default()),
                PlanPiece::Unbound(_) => {}
            }
        }
        offsets.push(offset(text.len()));
    }
    // The values (the client id's is already there), then their names, both in name order.
    let mut value_at = text.len();
    for (i, value) in values.iter().enumerate() {
        if let (true, Some(value)) = (i != client, value) {
            text.push_str(value);
        }
    }
    let mut name_at = text.len();
    if count == names.len() {
        text.push_str(plan.names_text());
    } else {
        for (name, _) in names.iter().zip(values).filter(|(_, v)| v.is_some()) {
            text.push_str(name);
        }
    }
    for (i, (name, value)) in names.iter().zip(values).enumerate() {
        let Some(value) = value else { continue };
        offsets.push(offset(name_at));
        name_at += name.len();
        offsets.push(offset(name_at));
        if i == client {
            offsets.extend([offsets[0], offsets[1]]);
        } else {
            offsets.push(offset(value_at));
            value_at += value.len();
            offsets.push(offset(value_at));
        }
    }
    Ok((text.into_boxed_str(), offsets.into_boxed_slice()))
}

/// The first slot piece, in slot order, whose value `values` lacks or that no session can
/// fill, as the error that rejects the session.
fn first_missing(plan: &BindPlan, values: &[Option<&str>]) -> Option<BindError> {
    plan.slots()
        .iter()
        .flat_map(|slot| slot.iter())
        .find_map(|piece| match piece {
            PlanPiece::Text(_) => None,
            PlanPiece::Value(i) => values[*i].is_none().then(|| missing(&plan.names()[*i])),
            PlanPiece::Unbound(name) => Some(missing(name)),
        })
}

/// A byte offset into a session's text, which [`layout`] keeps below 4 GiB.
fn offset(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// A slot naming an attribute the session does not have could not be decided, so the
/// whole session is rejected instead (the checker makes sure every attribute a rule of
/// the identity uses is bound).
fn missing(attr: &str) -> BindError {
    BindError::MissingAttribute {
        attr: attr.to_string(),
    }
}

fn check_value(attr: &str, value: &str) -> Result<(), BindError> {
    if plain::is_plain_value(value) {
        return Ok(());
    }
    validate_value(value).map_err(|e: ValueError| BindError::BadValue {
        attr: attr.to_string(),
        reason: e.to_string(),
    })
}

/// The client id and its captures follow the client-id grammar (spaces and any UTF-8
/// allowed; never `/ + #`, control characters or a leading `$`).
fn check_client_part(attr: &str, value: &str) -> Result<(), BindError> {
    if plain::is_plain_client_part(value) {
        return Ok(());
    }
    validate_client_id(value).map_err(|e: ValueError| BindError::BadValue {
        attr: attr.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
fn check_separators(
    separators: &[(String, char)],
    attrs: &impl AttrValues,
) -> Result<(), BindError> {
    for (attr, separator) in separators {
        if attrs.value(attr).is_some_and(|v| v.contains(*separator)) {
            return Err(BindError::SeparatorInValue {
                attr: attr.clone(),
                separator: *separator,
            });
        }
    }
    Ok(())
}

/// [`check_separators`] by index: the same checks in the same order, so the same error.
fn check_planned_separators(plan: &BindPlan, values: &[Option<&str>]) -> Result<(), BindError> {
    for &(index, separator) in plan.separators() {
        let value = index.and_then(|i| values[i]);
        if value.is_some_and(|v| contains_char(v, separator)) {
            let attr = index.map_or("", |i| &plan.names()[i]);
            return Err(BindError::SeparatorInValue {
                attr: attr.to_string(),
                separator,
            });
        }
    }
    Ok(())
}

/// `text.contains(c)`, for an ASCII `c` by a loop over the bytes (values are a few bytes
/// long, and for those a loop is cheaper than a call to `memchr`).
fn contains_char(text: &str, c: char) -> bool {
    match u8::try_from(c) {
        Ok(byte) if byte.is_ascii() => text.bytes().any(|b| b == byte),
        _ => text.contains(c),
    }
}

fn check_requires(requires: &[Require], attrs: &impl AttrValues) -> Result<(), BindError> {
    for require in requires {
        match require {
            Require::Equal(a, b) if attrs.value(a) != attrs.value(b) => {
                return Err(BindError::RequireEqual {
                    left: a.clone(),
                    right: b.clone(),
                });
            }
            Require::InSet {
                attr, set, values, ..
            } if attrs
                .value(attr)
                .is_none_or(|v| values.binary_search_by(|x| x.as_str().cmp(v)).is_err()) =>
            {
                return Err(BindError::RequireCheck {
                    attr: attr.clone(),
                    check: format!("in {set}"),
                });
            }
            Require::Check(a, check) if !attrs.value(a).is_some_and(|v| check.accepts(v)) => {
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

impl Session {
    /// Bytes this session holds on the heap (its text and offsets).
    pub fn heap_bytes(&self) -> usize {
        self.text.len() + std::mem::size_of_val(&*self.offsets)
    }
}

mod plain;
#[cfg(test)]
mod reference_bind;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::source::Source;

    const POLICY: &str = "identity mobile from jwt {\n    trust \"idp\"\n    issuer \"https://idp.example.com/\"\n\
        \x20   audience \"iot\"\n    algorithms ES256\n    pid = claim \"pid\"\n    aid = claim \"aid\"\n\
        \x20   client \"m:{pid}_{aid}:{+jti}\"\n}\n\
        identity svc from anonymous {\n    client \"svc\"\n}\n\
        set services = lights, locks\n\
        allow mobile, svc connect\n\
        allow mobile publish \"c/{pid}_{aid}/{sid in services}/{client}/{+rid}\"\n\
        allow mobile publish \"s/{aid}-x/{jti}\"\n";

    /// The most a bound session may take in its own struct: a map, owned strings or an
    /// inline error would each pass it.
    const MAX_SESSION_BYTES: usize = 96;

    fn engine() -> Engine {
        let policy = Policy::from_source(&Source::new("p", POLICY)).expect("valid");
        Engine::new(&policy.checked).expect("compiles")
    }

    fn mobile(engine: &Engine, client_id: &str) -> Session {
        let attrs = BTreeMap::from([
            ("pid".to_string(), "P1".to_string()),
            ("aid".to_string(), "A1".to_string()),
        ]);
        engine.bind(&Identity::asserted("mobile", attrs), client_id)
    }

    #[test]
    fn a_session_stays_small() {
        let size = std::mem::size_of::<Session>();
        println!("Session: {size} bytes");
        assert!(size <= MAX_SESSION_BYTES, "Session is {size} bytes");
    }

    #[test]
    fn a_bound_session_holds_one_text_and_its_offsets() {
        let engine = engine();
        let session = mobile(&engine, "m:P1_A1:J7");
        assert_eq!(session.error(), None);
        // "mobile" + the client id + the slots + the names and values, client's not again.
        let text = session.text.len();
        let slots: usize = (0..session.slots().len())
            .map(|i| {
                session
                    .slots()
                    .get(crate::automaton::SlotId(i as u32))
                    .len()
            })
            .sum();
        let names_and_values = "aid".len() + 2 + "client".len() + "jti".len() + 2 + "pid".len() + 2;
        assert_eq!(
            text,
            "mobile".len() + "m:P1_A1:J7".len() + slots + names_and_values
        );
        assert_eq!(session.heap_bytes(), text + 4 * session.offsets.len());
        println!("heap per session: {} bytes", session.heap_bytes());
        assert!(
            session.heap_bytes() <= 160,
            "{} bytes",
            session.heap_bytes()
        );
    }

    #[test]
    fn attributes_read_back_sorted_with_the_client_id_and_its_captures() {
        let engine = engine();
        let session = mobile(&engine, "m:P1_A1:J7");
        assert_eq!(session.kind(), "mobile");
        assert_eq!(session.client_id(), "m:P1_A1:J7");
        let attrs: Vec<(&str, &str)> = session.attrs().iter().collect();
        assert_eq!(
            attrs,
            [
                ("aid", "A1"),
                ("client", "m:P1_A1:J7"),
                ("jti", "J7"),
                ("pid", "P1")
            ]
        );
        for (name, value) in &attrs {
            assert_eq!(session.attrs().get(name), Some(*value));
        }
        assert_eq!(session.attrs().get("sid"), None);
        assert_eq!(session.attrs().get(""), None);
        assert_eq!(session.attrs().get("zzz"), None);
        assert_eq!(session.attrs().len(), 4);
    }

    #[test]
    fn slots_render_each_attribute_dependent_text() {
        let engine = engine();
        let session = mobile(&engine, "m:P1_A1:J7");
        let slots: Vec<&str> = (0..session.slots().len())
            .map(|i| session.slots().get(crate::automaton::SlotId(i as u32)))
            .collect();
        for expected in ["P1_A1", "m:P1_A1:J7", "A1-x", "J7"] {
            assert!(slots.contains(&expected), "{expected} not in {slots:?}");
        }
        let allowed = |topic| {
            engine
                .decide(&session, super::super::Request::publish(topic))
                .verdict
        };
        assert_eq!(allowed("c/P1_A1/locks/m:P1_A1:J7/r1"), Verdict::Allowed);
        assert_eq!(allowed("s/A1-x/J7"), Verdict::Allowed);
        assert_ne!(allowed("c/P1_A2/locks/m:P1_A1:J7/r1"), Verdict::Allowed);
        assert_ne!(allowed("s/A1-x/J8"), Verdict::Allowed);
    }

    #[test]
    fn a_rejected_session_keeps_its_kind_and_client_id_and_has_no_attributes() {
        let engine = engine();
        let session = mobile(&engine, "m:P2_A1:J7");
        assert!(matches!(
            session.error(),
            Some(BindError::ClientIdMismatch { .. })
        ));
        assert_eq!(
            (session.kind(), session.client_id()),
            ("mobile", "m:P2_A1:J7")
        );
        assert!(session.attrs().is_empty());
        assert!(session.slots().is_empty());
        let unknown = engine.bind(
            &Identity::asserted("robot", BTreeMap::<String, String>::new()),
            "r",
        );
        assert_eq!((unknown.kind(), unknown.client_id()), ("robot", "r"));
        assert_eq!(
            engine
                .decide(&unknown, super::super::Request::Connect)
                .verdict,
            Verdict::ExplicitDeny
        );
    }

    #[test]
    fn an_identity_without_slots_binds_with_only_its_client() {
        let engine = engine();
        let session = engine.bind(
            &Identity::asserted("svc", BTreeMap::<String, String>::new()),
            "svc",
        );
        assert_eq!(session.error(), None);
        assert_eq!(
            session.attrs().iter().collect::<Vec<_>>(),
            [("client", "svc")]
        );
    }
}
