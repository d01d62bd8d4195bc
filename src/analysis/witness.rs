//! The attribute values the analysis tries: a finite set of valuations that stands for
//! every credential an identity could present.
//!
//! A decision sees an attribute value only as text compared with the templates' text at
//! the level where the attribute is rendered (a whole level, or one end of it with a
//! separator the value may not contain). What can change a decision is therefore only:
//! whether two attributes are equal, whether a value equals a literal the templates put
//! at the same level (a level literal, a set or alternative value, a word of a level's
//! text), and whether the value passes the identity's `require` lines. The candidates are
//! built from exactly those: two fresh values (`f1`, `f2`, never a literal of the policy)
//! shared by all attributes, so every pattern of equal and unequal attributes among up to
//! two classes occurs; every literal token of the levels the attribute (or `{client}`,
//! when the attribute is in the client template) appears at; and values that pass
//! `is eui64`, `is uuid` and `in SET`. An attribute no template level uses takes one
//! value (for [`Purpose::Verify`], one that passes its requirements). Attributes tied by a
//! `require a == b` that every policy states take the same value.
//!
//! Limits (stated in docs/policy-language.md): three attributes pairwise different
//! *and* each unequal to every literal occur only through tokens; a value that is a
//! proper prefix or suffix of a literal (not a whole token) is not tried.
//!
//! Cost: the product of the candidate counts, bounded by [`MAX_VALUATIONS`].

use super::AnalysisError;
use crate::check::{AttrCheck, Checked, ClientPiece, IdentityDef, LevelPattern, Piece, Require};
use crate::value::is_value_char;
use std::collections::{BTreeMap, BTreeSet};

/// Past this many valuations of one identity the analysis gives up.
pub const MAX_VALUATIONS: usize = 20_000;

/// What the valuations are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Only credentials that bind matter (a refused session allows nothing): literal
    /// tokens, values that pass requirements.
    Verify,
    /// Two sessions of one identity compared: fresh values and values that pass
    /// requirements only (general position).
    Isolation,
    /// Credentials that bind in one policy and not the other matter too.
    Diff,
}

/// One credential and client-id choice: what a connecting client presents.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Valuation {
    /// The credential's attributes.
    pub credential: BTreeMap<String, String>,
    /// What the client id puts where the client template captures.
    pub captures: BTreeMap<String, String>,
}

const FRESH: [&str; 2] = ["f1", "f2"];
const EUI64: [&str; 2] = ["0123456789abcdef", "fedcba9876543210"];
const UUID: [&str; 2] = [
    "123e4567-e89b-42d3-a456-426614174000",
    "123e4567-e89b-42d3-a456-426614174001",
];

/// The client id this valuation presents to an identity: its client template rendered.
/// `None` when the template names an attribute the credential lacks.
pub fn client_id(def: &IdentityDef, valuation: &Valuation) -> Option<String> {
    let mut out = String::new();
    for piece in &def.client {
        match piece {
            ClientPiece::Text(text) => out.push_str(text),
            ClientPiece::Attr(a) => out.push_str(valuation.credential.get(a)?),
            ClientPiece::Capture(c) => out.push_str(valuation.captures.get(c)?),
        }
    }
    Some(out)
}

/// Every valuation for one identity, as it is defined in each of `defs` (one policy for
/// verify, two for diff).
pub fn valuations(
    defs: &[(&Checked, &IdentityDef)],
    purpose: Purpose,
) -> Result<Vec<Valuation>, AnalysisError> {
    let captures: BTreeSet<String> = defs
        .iter()
        .flat_map(|(_, d)| d.client.iter())
        .filter_map(|p| match p {
            ClientPiece::Capture(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    let credential: BTreeSet<String> = defs
        .iter()
        .flat_map(|(_, d)| d.attrs.iter())
        .filter(|a| *a != "client" && !captures.contains(*a))
        .cloned()
        .collect();
    let classes = equal_classes(defs, &credential);
    let mut names: Vec<(String, bool)> = Vec::new();
    let mut choices: Vec<Vec<String>> = Vec::new();
    for class in &classes {
        names.push((class[0].clone(), false));
        choices.push(candidates(defs, class, purpose));
    }
    for capture in &captures {
        names.push((capture.clone(), true));
        choices.push(candidates(defs, std::slice::from_ref(capture), purpose));
    }
    let count = choices
        .iter()
        .try_fold(1usize, |n, c| n.checked_mul(c.len().max(1)));
    if count.is_none_or(|n| n > MAX_VALUATIONS) {
        return Err(AnalysisError::TooComplex(format!(
            "more than {MAX_VALUATIONS} attribute valuations for identity `{}`",
            defs[0].1.name
        )));
    }
    let mut out = Vec::new();
    let mut index = vec![0usize; choices.len()];
    loop {
        let mut valuation = Valuation {
            credential: BTreeMap::new(),
            captures: BTreeMap::new(),
        };
        for (k, (name, is_capture)) in names.iter().enumerate() {
            let Some(value) = choices[k].get(index[k]) else {
                continue;
            };
            if *is_capture {
                valuation.captures.insert(name.clone(), value.clone());
            } else {
                let class = classes.iter().find(|c| c[0] == *name).expect("a class");
                for member in class {
                    valuation.credential.insert(member.clone(), value.clone());
                }
            }
        }
        out.push(valuation);
        let mut k = 0;
        loop {
            if k == choices.len() {
                return Ok(out);
            }
            index[k] += 1;
            if index[k] < choices[k].len() {
                break;
            }
            index[k] = 0;
            k += 1;
        }
    }
}

/// Attributes that every policy requires to be equal share one value.
fn equal_classes(defs: &[(&Checked, &IdentityDef)], attrs: &BTreeSet<String>) -> Vec<Vec<String>> {
    let mut classes: Vec<Vec<String>> = attrs.iter().map(|a| vec![a.clone()]).collect();
    let everywhere = |a: &str, b: &str| {
        defs.iter().all(|(_, d)| {
            d.requires.iter().any(
                |r| matches!(r, Require::Equal(x, y) if (x == a && y == b) || (x == b && y == a)),
            )
        })
    };
    let pairs: Vec<(String, String)> = defs
        .iter()
        .flat_map(|(_, d)| d.requires.iter())
        .filter_map(|r| match r {
            Require::Equal(a, b) if everywhere(a, b) => Some((a.clone(), b.clone())),
            _ => None,
        })
        .collect();
    for (a, b) in pairs {
        let ia = classes.iter().position(|c| c.contains(&a));
        let ib = classes.iter().position(|c| c.contains(&b));
        if let (Some(ia), Some(ib)) = (ia, ib)
            && ia != ib
        {
            let moved = classes.remove(ia.max(ib));
            classes[ia.min(ib)].extend(moved);
        }
    }
    classes
}

/// The values one attribute (or one class of equal attributes, or a capture) takes.
fn candidates(
    defs: &[(&Checked, &IdentityDef)],
    class: &[String],
    purpose: Purpose,
) -> Vec<String> {
    let mut required: Vec<&'static str> = Vec::new();
    let mut in_sets: Vec<String> = Vec::new();
    for (_, def) in defs {
        for require in &def.requires {
            match require {
                Require::Check(a, AttrCheck::Eui64) if class.contains(a) => {
                    required.extend(EUI64);
                }
                Require::Check(a, AttrCheck::Uuid) if class.contains(a) => {
                    required.extend(UUID);
                }
                Require::InSet { attr, values, .. } if class.contains(attr) => {
                    in_sets.extend(values.iter().take(16).cloned());
                }
                _ => {}
            }
        }
    }
    let used = defs
        .iter()
        .any(|(checked, def)| !levels_of(checked, def, class).is_empty());
    let fresh = fresh_values(defs);
    let mut out: Vec<String> = required.iter().map(|s| s.to_string()).collect();
    out.extend(in_sets);
    let constrained = !out.is_empty();
    if purpose == Purpose::Diff || !constrained {
        out.extend(fresh.iter().take(if used { 2 } else { 1 }).cloned());
    }
    if used && purpose != Purpose::Isolation {
        let mut tokens: BTreeSet<String> = BTreeSet::new();
        for (checked, def) in defs {
            for j in levels_of(checked, def, class) {
                level_tokens(checked, def, j, &mut tokens);
            }
        }
        out.extend(tokens);
    }
    if !used && purpose != Purpose::Diff {
        out.truncate(1);
    }
    dedup(out)
}

fn dedup(values: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    values
        .into_iter()
        .filter(|v| seen.insert(v.clone()))
        .collect()
}

/// Two fresh values that no template mentions.
fn fresh_values(defs: &[(&Checked, &IdentityDef)]) -> Vec<String> {
    let mut literals = BTreeSet::new();
    for (checked, def) in defs {
        for j in 0..64 {
            level_tokens(checked, def, j, &mut literals);
        }
    }
    FRESH
        .iter()
        .map(|f| {
            let mut value = f.to_string();
            while literals.contains(&value) {
                value.push('0');
            }
            value
        })
        .collect()
}

/// The topic patterns of an identity's rules and assertions.
fn patterns<'c>(checked: &'c Checked, def: &IdentityDef) -> Vec<&'c crate::check::TopicPattern> {
    let id = checked.identity(&def.name).map(|(id, _)| id);
    let rules = checked
        .rules
        .iter()
        .filter(move |r| id.is_some_and(|id| r.applies_to(id)))
        .filter_map(|r| r.topic.as_ref());
    let asserted = checked
        .assertions
        .iter()
        .filter(move |a| id.is_some_and(|id| a.identities.contains(&id)))
        .flat_map(|a| a.namespaces.iter().map(|(_, p)| p));
    rules.chain(asserted).collect()
}

/// The level indexes where an attribute of `class` is rendered (directly, or through
/// `{client}` when the client template names it).
fn levels_of(checked: &Checked, def: &IdentityDef, class: &[String]) -> BTreeSet<usize> {
    let in_client = def.client.iter().any(|p| match p {
        ClientPiece::Attr(a) | ClientPiece::Capture(a) => class.contains(a),
        ClientPiece::Text(_) => false,
    });
    let names = |name: &str| class.iter().any(|c| c == name) || (in_client && name == "client");
    let mut out = BTreeSet::new();
    for pattern in patterns(checked, def) {
        for (j, level) in pattern.levels.iter().enumerate() {
            if let LevelPattern::Pieces(pieces) = level
                && pieces
                    .iter()
                    .any(|p| matches!(p, Piece::Attr(a) if names(a)))
            {
                out.insert(j);
            }
        }
    }
    out
}

/// Literal words at level `j` of an identity's templates: whole literals, set and
/// alternative values, text pieces, and their parts between non-alphanumeric characters.
fn level_tokens(checked: &Checked, def: &IdentityDef, j: usize, out: &mut BTreeSet<String>) {
    let mut add = |text: &str| {
        let mut words = vec![text.to_string()];
        words.extend(
            text.split(|c: char| !c.is_ascii_alphanumeric())
                .map(str::to_string),
        );
        for word in words {
            if !word.is_empty() && word.len() <= 64 && word.chars().all(is_value_char) {
                out.insert(word);
            }
        }
    };
    for pattern in patterns(checked, def) {
        match pattern.levels.get(j) {
            Some(LevelPattern::Literal(text)) => add(text),
            Some(LevelPattern::Pieces(pieces)) => {
                for piece in pieces {
                    match piece {
                        Piece::Text(text) => add(text),
                        Piece::OneOf { values, .. } => values.iter().take(64).for_each(|v| add(v)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}
