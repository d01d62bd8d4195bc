//! The bind algorithm before bind plans, kept as the reference the plan-based bind is
//! compared with: it gathers the values in a list, sorts it by name, and renders each slot
//! twice (once to size the text, once into it), looking each attribute up by name.

use super::{BindError, Session, check_requires, check_separators, missing, offset};
use crate::automaton::{SlotTemplate, same_text};
use crate::check::matches::{AttrValues, match_client};
use crate::check::{ClientPiece, IdentityDef, template_text};
use crate::decide::Engine;
use crate::identity::Identity;
use crate::value::{validate_client_id, validate_value};
use smallvec::SmallVec;

/// [`super::bind`] with the reference algorithm.
pub(super) fn bind(engine: &Engine, identity: &Identity, client_id: &str) -> Session {
    let bound = match engine.checked().identity(&identity.kind) {
        None => Err(BindError::UnknownIdentity {
            kind: identity.kind.clone(),
        }),
        Some((id, def)) => bind_identity(engine, id, def, identity, client_id),
    };
    bound.unwrap_or_else(|error| super::rejected(engine, identity, client_id, error))
}

fn bind_identity<'i>(
    engine: &Engine,
    id: crate::check::IdentityId,
    def: &crate::check::IdentityDef,
    identity: &'i Identity,
    client_id: &str,
) -> Result<Session, BindError> {
    let credential: Values<'i> = credential_values(def, identity)?;
    check_client_part("client", client_id)?;
    let captured = match_client(&def.client, &Lookup(&credential), client_id).ok_or_else(|| {
        BindError::ClientIdMismatch {
            client_id: client_id.to_string(),
            template: template_text(&def.client).into(),
        }
    })?;
    // A new list (a `SmallVec` is invariant in its items, so it cannot take on the
    // captures' shorter lifetime); it lives on the stack.
    let mut values: Values<'_> = credential.iter().copied().collect();
    for (name, value) in &captured {
        check_client_part(name, value)?;
        values.push((name, value));
    }
    values.push(("client", client_id));
    // Sorted by name; of one name, the last pushed wins (as a map's insert would). The
    // names are a few bytes long: compared in place, not by calls to `memcmp`.
    values.sort_by(|a, b| a.0.bytes().cmp(b.0.bytes()));
    let mut i = 0;
    while i + 1 < values.len() {
        if same_text(values[i].0, values[i + 1].0) {
            values.remove(i);
        } else {
            i += 1;
        }
    }
    check_requires(&def.requires, &Lookup(&values))?;
    check_separators(&def.separators, &Lookup(&values))?;
    let slots = engine.automaton().identity_slots(id);
    let (text, offsets) = layout(&identity.kind, client_id, slots, &values)?;
    Ok(Session {
        engine_id: engine.id(),
        identity: Some(id),
        slot_count: offset(slots.len()),
        text,
        offsets,
        error: None,
        expires_at: identity.expires_at,
    })
}

/// The session's text and offsets (see [`Session`]), each slot rendered by its template.
fn layout(
    kind: &str,
    client_id: &str,
    slots: &[SlotTemplate],
    values: &[(&str, &str)],
) -> Result<(Box<str>, Box<[u32]>), BindError> {
    let lookup = Lookup(values);
    let mut len = kind.len() + client_id.len();
    for slot in slots {
        len += slot.rendered_len(&lookup).map_err(missing)?;
    }
    for (name, value) in values {
        len += name.len() + if *name == "client" { 0 } else { value.len() };
    }
    if u32::try_from(len).is_err() {
        return Err(BindError::SessionTooLarge { bytes: len });
    }
    let mut text = String::with_capacity(len);
    let mut offsets = Vec::with_capacity(2 + slots.len() + 4 * values.len());
    text.push_str(kind);
    offsets.push(offset(text.len()));
    text.push_str(client_id);
    offsets.push(offset(text.len()));
    for slot in slots {
        slot.render_into(&lookup, &mut text).map_err(missing)?;
        offsets.push(offset(text.len()));
    }
    // The values (the client id's is already there), then their names, by name.
    let mut value_spans = Vec::with_capacity(values.len());
    for (name, value) in values {
        if *name == "client" {
            value_spans.push((offsets[0], offsets[1]));
        } else {
            let start = offset(text.len());
            text.push_str(value);
            value_spans.push((start, offset(text.len())));
        }
    }
    for ((name, _), (start, end)) in values.iter().zip(value_spans) {
        offsets.push(offset(text.len()));
        text.push_str(name);
        offsets.extend([offset(text.len()), start, end]);
    }
    Ok((text.into_boxed_str(), offsets.into_boxed_slice()))
}

/// The identity's attribute values, borrowed from the credential, the client id and its
/// captures; sorted by name once complete.
type Values<'a> = SmallVec<[(&'a str, &'a str); 8]>;

/// Looks values up by name in a [`Values`] list (linear: it is short, and not yet sorted).
struct Lookup<'v, 'a>(&'v [(&'a str, &'a str)]);

impl AttrValues for Lookup<'_, '_> {
    fn value(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| same_text(n, name))
            .map(|(_, v)| *v)
    }
}

/// An attribute value against the value grammar, by [`validate_value`] alone (the bind's
/// own check judges plain ASCII itself first).
fn check_value(attr: &str, value: &str) -> Result<(), BindError> {
    validate_value(value).map_err(|e| BindError::BadValue {
        attr: attr.to_string(),
        reason: e.to_string(),
    })
}

/// A client id or capture against the client-id grammar, by [`validate_client_id`] alone.
fn check_client_part(attr: &str, value: &str) -> Result<(), BindError> {
    validate_client_id(value).map_err(|e| BindError::BadValue {
        attr: attr.to_string(),
        reason: e.to_string(),
    })
}

/// The credential's attribute values, each declared and valid, every declared one present
/// (the `client` attribute and client-template captures come from the client id).
fn credential_values<'a>(
    def: &IdentityDef,
    identity: &'a Identity,
) -> Result<Values<'a>, BindError> {
    let captures = || {
        def.client.iter().filter_map(|p| match p {
            ClientPiece::Capture(name) => Some(name.as_str()),
            _ => None,
        })
    };
    let mut values: Values<'a> = SmallVec::new();
    for (name, value) in &identity.attrs {
        if !def.binds_attr(name) || name == "client" || captures().any(|c| same_text(c, name)) {
            return Err(BindError::UndeclaredAttribute { attr: name.clone() });
        }
        check_value(name, value)?;
        values.push((name, value));
    }
    for name in def
        .attrs
        .iter()
        .filter(|a| *a != "client" && !captures().any(|c| same_text(c, a)))
    {
        if !values.iter().any(|(n, _)| same_text(n, name)) {
            return Err(BindError::MissingAttribute { attr: name.clone() });
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use crate::decide::{Engine, Session};
    use crate::identity::Identity;
    use crate::policy::Policy;
    use crate::source::Source;
    use std::collections::BTreeMap;

    /// Captures, a capture named like nothing declared, `client` in a slot, an attribute
    /// no slot uses, `require` lines of each kind, templates that make separators, and a
    /// client template of text (non-ASCII too) and attributes only.
    const POLICY: &str = "identity dev from jwt {\n    trust \"idp\"\n    issuer \"https://idp.example.com/\"\n\
        \x20   audience \"iot\"\n    algorithms ES256\n    t = claim \"t\"\n    d = claim \"d\"\n\
        \x20   m = claim \"m\"\n    require m in kinds\n    client \"{t}_{d}:{+inst}\"\n}\n\
        identity gw from jwt {\n    trust \"gw-idp\"\n    issuer \"https://idp.example.com/\"\n\
        \x20   audience \"iot\"\n    algorithms ES256\n    a = claim \"a\"\n    b = claim \"b\"\n\
        \x20   u = claim \"u\"\n    require a == b\n    require u is eui64\n    client \"gw-{+x}-{+y}\"\n}\n\
        identity mob from jwt {\n    trust \"mob-idp\"\n    issuer \"https://idp.example.com/\"\n\
        \x20   audience \"iot\"\n    algorithms ES256\n    p = claim \"p\"\n    q = claim \"q\"\n\
        \x20   client \"m·{p}_{q}:x\"\n}\n\
        identity svc from anonymous {\n    client \"svc\"\n}\n\
        set kinds = lights, locks\n\
        allow dev, gw, mob, svc connect\n\
        allow mob publish \"m/{p}_{q}/{client}\"\n\
        allow dev publish \"c/{t}_{d}/{client}/{inst}\"\n\
        allow dev publish \"s/{d}-x/{m}/{+r}\"\n\
        allow gw publish \"g/{a}:{x}/{y}/{client}\"\n";

    /// A small deterministic generator (splitmix64).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    const VALUES: &[&str] = &[
        "P1",
        "A1",
        "lights",
        "locks",
        "a_b",
        "a:b",
        "a-b",
        "",
        "x/y",
        "+",
        "#",
        "$s",
        "0011223344556677",
        "00112233445566zz",
        "é",
        "with space",
        "\u{0}",
    ];

    const NAMES: &[&str] = &[
        "t", "d", "m", "a", "b", "u", "p", "q", "client", "inst", "x", "y", "zz", "",
    ];

    /// Mostly the attributes `kind` declares, now and then another identity's.
    fn credential(rng: &mut Rng, kind: &str) -> BTreeMap<String, String> {
        let kind = if rng.next() % 8 == 0 {
            rng.pick(&["dev", "gw", "mob", "svc"])
        } else {
            kind
        };
        let wanted: &[&str] = match kind {
            "dev" => &["t", "d", "m"],
            "gw" => &["a", "b", "u"],
            "mob" => &["p", "q"],
            _ => &[],
        };
        let mut attrs = BTreeMap::new();
        for name in wanted {
            // Now and then an attribute is left out.
            if rng.next() % 16 != 0 {
                attrs.insert(name.to_string(), rng.pick(VALUES).to_string());
            }
        }
        if rng.next() % 8 == 0 {
            attrs.insert(rng.pick(NAMES).to_string(), rng.pick(VALUES).to_string());
        }
        if rng.next() % 2 == 0 {
            // Values that pass every check more often.
            let same = rng.pick(&["A1", "P1"]);
            for (name, value) in attrs.iter_mut() {
                *value = match name.as_str() {
                    "m" => rng.pick(&["lights", "locks"]).to_string(),
                    "u" => "0011223344556677".to_string(),
                    "a" | "b" => same.to_string(),
                    _ => value.clone(),
                };
            }
        }
        attrs
    }

    fn client_id(rng: &mut Rng, attrs: &BTreeMap<String, String>) -> String {
        let value = |name: &str| attrs.get(name).cloned().unwrap_or_default();
        match rng.next() % 5 {
            0 => format!("{}_{}:{}", value("t"), value("d"), rng.pick(VALUES)),
            // The capture-free template, often exact, else one byte or character off.
            4 => {
                let exact = format!("m·{}_{}:x", value("p"), value("q"));
                match rng.next() % 4 {
                    0 => exact,
                    1 => format!("{exact}x"),
                    2 => exact.replace('·', "."),
                    _ => exact.chars().skip(1).collect(),
                }
            }
            1 => format!("gw-{}-{}", rng.pick(VALUES), rng.pick(VALUES)),
            2 => rng
                .pick(&["svc", "svc ", "gw--", "_:", "P1_A1:"])
                .to_string(),
            _ => (0..rng.next() % 6)
                .map(|_| rng.pick(&["P1", "_", "A1", ":", "gw-", "-", "$", "/", "a_b"]))
                .collect(),
        }
    }

    fn same_session(new: &Session, old: &Session) -> bool {
        new.engine_id == old.engine_id
            && new.identity == old.identity
            && new.slot_count == old.slot_count
            && new.text == old.text
            && new.offsets == old.offsets
            && new.error == old.error
            && new.expires_at == old.expires_at
    }

    /// Which error wins when a bind has several, as the reference reports it: the
    /// credential in name order (not declared, or an invalid value), then a missing
    /// attribute, then the client id's grammar, its template, the captures' grammar, the
    /// `require` lines and the separators.
    #[test]
    fn the_first_error_is_the_reference_s_first() {
        let policy = Policy::from_source(&Source::new("p", POLICY)).expect("valid");
        let engine = Engine::new(&policy.checked).expect("compiles");
        // (credential, client id, the error's kind and attribute)
        type Case = (
            &'static [(&'static str, &'static str)],
            &'static str,
            &'static str,
        );
        let cases: &[Case] = &[
            (&[("d", "x/y"), ("zz", "v")], "P_D:i", "BadValue d"),
            (
                &[("c", "v"), ("d", "x/y")],
                "P_D:i",
                "UndeclaredAttribute c",
            ),
            (&[("d", "D"), ("t", "$t")], "$", "BadValue t"),
            (&[("d", "D"), ("t", "T")], "$", "MissingAttribute m"),
            (
                &[("d", "D"), ("m", "no"), ("t", "T")],
                "$",
                "BadValue client",
            ),
            (
                &[("d", "D"), ("m", "no"), ("t", "T")],
                "T_D",
                "ClientIdMismatch",
            ),
            (
                &[("d", "D"), ("m", "no"), ("t", "T")],
                "T_D:$i",
                "BadValue inst",
            ),
            (
                &[("d", "D:"), ("m", "no"), ("t", "T")],
                "T_D::i",
                "RequireCheck m",
            ),
            (
                &[("d", "D:"), ("m", "locks"), ("t", "T")],
                "T_D::i",
                "SeparatorInValue d",
            ),
            (&[("d", "D"), ("m", "locks"), ("t", "T")], "T_D:i", "bound"),
        ];
        for (attrs, client_id, expected) in cases {
            let identity = Identity::asserted("dev", attrs.iter().copied());
            let new = engine.bind(&identity, client_id);
            let old = super::bind(&engine, &identity, client_id);
            assert!(
                same_session(&new, &old),
                "{attrs:?} {client_id}: {new:?} / {old:?}"
            );
            let outcome = match new.error() {
                None => "bound".to_string(),
                Some(error) => {
                    let text = format!("{error:?}");
                    let kind = text
                        .split([' ', '{'])
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let attr = text
                        .split("attr: \"")
                        .nth(1)
                        .and_then(|rest| rest.split('"').next());
                    attr.map_or(kind.clone(), |a| format!("{kind} {a}"))
                }
            };
            assert_eq!(&outcome, expected, "{attrs:?} with client id {client_id:?}");
        }
    }

    #[test]
    fn the_planned_bind_gives_the_reference_bind_s_session() {
        let policy = Policy::from_source(&Source::new("p", POLICY)).expect("valid");
        let engine = Engine::new(&policy.checked).expect("compiles");
        let seed = std::env::var("TOPICGUARD_DIFF_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(7);
        let mut rng = Rng(seed);
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..20_000 {
            let kind = rng.pick(&["dev", "dev", "gw", "gw", "mob", "mob", "svc", "robot"]);
            let attrs = credential(&mut rng, kind);
            let client_id = client_id(&mut rng, &attrs);
            let identity = Identity::asserted(kind, attrs);
            let new = engine.bind(&identity, &client_id);
            let old = super::bind(&engine, &identity, &client_id);
            assert!(
                same_session(&new, &old),
                "{identity:?} with client id {client_id:?}:\nnew {new:?}\nold {old:?}"
            );
            let outcome = match new.error() {
                None => format!("{kind} bound"),
                Some(error) => format!("{error:?}")
                    .split([' ', '{'])
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            };
            *kinds.entry(outcome).or_default() += 1;
        }
        println!("{kinds:#?}");
        // The generator reaches every outcome, so the comparison covers each path.
        for outcome in [
            "dev bound",
            "gw bound",
            "mob bound",
            "svc bound",
            "UnknownIdentity",
            "MissingAttribute",
            "UndeclaredAttribute",
            "BadValue",
            "RequireEqual",
            "RequireCheck",
            "ClientIdMismatch",
            "SeparatorInValue",
        ] {
            assert!(
                kinds.get(outcome).is_some_and(|n| *n >= 5),
                "{outcome} reached too rarely: {kinds:?}"
            );
        }
    }
}
