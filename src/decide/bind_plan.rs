//! What binding needs of one identity, resolved once per engine: the sorted names of the
//! attributes its sessions hold, each slot's pieces as literal text or an index into
//! those names, and the client-id template (its text parts and attribute indices when it
//! captures nothing, and the template as written, shared, for the mismatch error).
//!
//! With a plan, binding fills a fixed-size array of values by index (no sort, no lookup of
//! a slot's attributes by name), matches a capture-free client-id template by comparing
//! its parts in place (no list of parts built per bind), sizes the session's text in one
//! pass over lengths, and renders each slot once. A plan costs one boxed name per
//! attribute and one piece per slot or client-template piece; it is built with the engine
//! and only read afterwards. It must never decide
//! anything itself: which attributes are allowed, present and valid is still checked by
//! binding, in the same order as before, and a slot piece whose attribute a session can
//! never hold stays a piece that rejects the session.

use crate::automaton::{SlotPiece, SlotTemplate};
use crate::check::{ClientPiece, IdentityDef, template_text};
use std::sync::Arc;

/// One identity's bind plan (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct BindPlan {
    /// Every attribute name a session of the identity can hold (its declared attributes,
    /// its client-template captures and `client`), sorted by bytes, each once.
    names: Box<[Box<str>]>,
    /// Where `client` is in `names`.
    client: usize,
    /// The names a credential must carry (the declared attributes but `client` and the
    /// captures), sorted by bytes, each with its index in `names`.
    credential: Box<[(Box<str>, usize)]>,
    /// Each slot's pieces, in slot order.
    slots: Box<[Box<[PlanPiece]>]>,
    /// How many slot pieces read each name's value, by index in `names`.
    slot_uses: Box<[u32]>,
    /// The length of the slots' literal text, all slots together.
    slot_text_len: usize,
    /// Whether a slot piece names an attribute no session holds (every bind is refused).
    slot_unbound: bool,
    /// The names, end to end, in order: what a session whose every name is bound copies.
    names_text: Box<str>,
    /// The identity's separators (see `IdentityDef::separators`), in the same order, each
    /// attribute as its index in `names` (`None`: no session holds it, so no value can
    /// contain the separator).
    separators: Box<[(Option<usize>, char)]>,
    /// The client-id template's parts when it captures nothing (`None`: it captures, and
    /// binding matches it with [`crate::check::matches::match_client`]).
    client_parts: Option<Box<[ClientPart]>>,
    /// The client-id template as written (`m:{pid}_{+jti}`), for the mismatch error.
    client_template: Arc<str>,
}

/// A part of a capture-free client-id template, resolved against a [`BindPlan`]'s names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ClientPart {
    /// Literal text.
    Text(Box<str>),
    /// The value of the attribute at this index of the plan's names (`None`: a name no
    /// session holds, which matches no client id).
    Value(Option<usize>),
}

/// A piece of a slot, resolved against a [`BindPlan`]'s names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PlanPiece {
    /// Literal text.
    Text(Box<str>),
    /// The value of the attribute at this index of the plan's names.
    Value(usize),
    /// An attribute no session of the identity can hold: rendering it rejects the session.
    Unbound(Box<str>),
}

impl BindPlan {
    /// The plan for an identity and its slots.
    pub(crate) fn new(def: &IdentityDef, slots: &[SlotTemplate]) -> BindPlan {
        let mut names: Vec<Box<str>> = def.attrs.iter().map(|a| a.as_str().into()).collect();
        names.extend(def.client.iter().filter_map(|piece| match piece {
            ClientPiece::Capture(name) => Some(name.as_str().into()),
            _ => None,
        }));
        names.push("client".into());
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        names.dedup();
        let client = names
            .binary_search_by(|n| n.as_bytes().cmp(b"client".as_slice()))
            .unwrap_or(0);
        let mut plan = BindPlan {
            names: names.into_boxed_slice(),
            client,
            credential: Box::new([]),
            slots: Box::new([]),
            slot_uses: Box::new([]),
            slot_text_len: 0,
            slot_unbound: false,
            names_text: Box::from(""),
            separators: Box::new([]),
            client_parts: None,
            client_template: template_text(&def.client).into(),
        };
        let captures: Vec<&str> = def
            .client
            .iter()
            .filter_map(|piece| match piece {
                ClientPiece::Capture(name) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        plan.credential = plan
            .names
            .iter()
            .enumerate()
            .filter(|(_, n)| &***n != "client" && !captures.contains(&&***n) && def.binds_attr(n))
            .map(|(i, n)| (n.clone(), i))
            .collect();
        plan.separators = def
            .separators
            .iter()
            .map(|(attr, separator)| (plan.index(attr), *separator))
            .collect();
        plan.slots = slots
            .iter()
            .map(|slot| slot.pieces.iter().map(|p| plan.piece(p)).collect())
            .collect();
        let mut slot_uses = vec![0u32; plan.names.len()];
        for piece in plan.slots.iter().flat_map(|slot| slot.iter()) {
            match piece {
                PlanPiece::Text(text) => plan.slot_text_len += text.len(),
                PlanPiece::Value(i) => slot_uses[*i] += 1,
                PlanPiece::Unbound(_) => plan.slot_unbound = true,
            }
        }
        plan.slot_uses = slot_uses.into_boxed_slice();
        plan.names_text = plan.names.concat().into_boxed_str();
        plan.client_parts = def
            .client
            .iter()
            .map(|piece| match piece {
                ClientPiece::Text(text) => Some(ClientPart::Text(text.as_str().into())),
                ClientPiece::Attr(name) => Some(ClientPart::Value(plan.index(name))),
                ClientPiece::Capture(_) => None,
            })
            .collect();
        plan
    }

    fn piece(&self, piece: &SlotPiece) -> PlanPiece {
        match piece {
            SlotPiece::Text(text) => PlanPiece::Text(text.as_str().into()),
            SlotPiece::Attr(name) => match self.index(name) {
                Some(i) => PlanPiece::Value(i),
                None => PlanPiece::Unbound(name.as_str().into()),
            },
        }
    }

    /// The attribute names, sorted by bytes.
    pub(crate) fn names(&self) -> &[Box<str>] {
        &self.names
    }

    /// Where `name` is among the names, if a session can hold it.
    pub(crate) fn index(&self, name: &str) -> Option<usize> {
        self.names
            .binary_search_by(|n| n.as_bytes().cmp(name.as_bytes()))
            .ok()
    }

    /// The names a credential must carry, sorted, each with its index among the names.
    pub(crate) fn credential(&self) -> &[(Box<str>, usize)] {
        &self.credential
    }

    /// Where `client` is among the names.
    pub(crate) fn client(&self) -> usize {
        self.client
    }

    /// The separators, as (index of the attribute, separator), in the identity's order.
    pub(crate) fn separators(&self) -> &[(Option<usize>, char)] {
        &self.separators
    }

    /// Each slot's pieces, in slot order.
    pub(crate) fn slots(&self) -> &[Box<[PlanPiece]>] {
        &self.slots
    }

    /// How many slot pieces read each name's value, by index among the names.
    pub(crate) fn slot_uses(&self) -> &[u32] {
        &self.slot_uses
    }

    /// The length of the slots' literal text, all slots together.
    pub(crate) fn slot_text_len(&self) -> usize {
        self.slot_text_len
    }

    /// Whether a slot piece names an attribute no session of the identity holds.
    pub(crate) fn slot_unbound(&self) -> bool {
        self.slot_unbound
    }

    /// The names, end to end, in order.
    pub(crate) fn names_text(&self) -> &str {
        &self.names_text
    }

    /// The client-id template's parts, if it captures nothing.
    pub(crate) fn client_parts(&self) -> Option<&[ClientPart]> {
        self.client_parts.as_deref()
    }

    /// The client-id template as written.
    pub(crate) fn client_template(&self) -> &Arc<str> {
        &self.client_template
    }
}
