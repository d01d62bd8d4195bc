//! The attribute values the analysis tries: a finite set of valuations that stands for
//! every credential an identity could present.
//!
//! A decision sees an attribute value only as text compared with the templates' text at
//! the level where the attribute is rendered; the checker keeps every attribute between
//! text or the level's edge and its value free of its separators, and
//! [`super::fragment`] refuses the one construct where a value could still meet another
//! pattern's text part-way. What can change a decision is then: which attributes are
//! equal, whether a value equals a piece of the texts at its levels, and whether it passes
//! the identity's `require` lines. The valuations are built from exactly those: for every
//! set partition of the attributes that are rendered or compared, one fresh value per
//! block (`f1`, `f2`, ..., none a substring of any text; a passing value for a block with
//! `is eui64`, `is uuid` or `in SET`), and in turn every substring of the texts at the
//! block's levels (and one value per class of the attribute-free capture patterns there)
//! and the values that pass its requirements. An attribute seen only through `{client}`
//! takes texts only from what the client template can render. For isolation,
//! [`pair_valuations`] partitions both sessions' attributes together. The argument is in
//! docs/policy-language.md, section 11.4.
//!
//! Cost: the product of the candidate counts, bounded by [`MAX_VALUATIONS`].

use super::AnalysisError;
use crate::check::{AttrCheck, Checked, ClientPiece, IdentityDef, LevelPattern, Piece, Require};
use crate::decide::reference::template::{Item, Level, Template};
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
    super::fragment::check(defs)?;
    let (captures, classes) = attribute_classes(defs);
    let is_capture = |class: &[String]| captures.contains(&class[0]);
    // Classes whose equality with each other can matter: rendered somewhere, or named by
    // a `require a == b`. Each set partition of them is tried, a fresh value per block.
    let (related, alone): (Vec<Vec<String>>, Vec<Vec<String>>) =
        classes.into_iter().partition(|class| relevant(defs, class));
    // Blocks take `f1`, `f2`, ... in order; attributes no decision compares take the rest.
    let mut block_fresh = fresh_values(defs, related.len().max(1) + alone.len());
    let rest = block_fresh.split_off(related.len().max(1));
    let alone_choices: Vec<Vec<String>> = alone
        .iter()
        .zip(rest)
        .map(|(class, own)| candidates(defs, class, purpose, vec![own], 0))
        .collect();
    let partitions = set_partitions(related.len());
    let mut budget = 0usize;
    let mut plans: Vec<Plan> = Vec::new();
    for partition in &partitions {
        let blocks: Vec<Vec<String>> = partition
            .iter()
            .map(|block| block.iter().flat_map(|&i| related[i].clone()).collect())
            .collect();
        let choices: Vec<Vec<String>> = blocks
            .iter()
            .enumerate()
            .map(|(k, block)| candidates(defs, block, purpose, vec![block_fresh[k].clone()], k))
            .chain(alone_choices.iter().cloned())
            .collect();
        let count = choices
            .iter()
            .try_fold(1usize, |n, c| n.checked_mul(c.len().max(1)));
        budget = count
            .and_then(|c| budget.checked_add(c))
            .unwrap_or(usize::MAX);
        if budget > MAX_VALUATIONS {
            return Err(AnalysisError::TooComplex(format!(
                "more than {MAX_VALUATIONS} attribute valuations for identity `{}`",
                defs[0].1.name
            )));
        }
        let mut named = blocks;
        named.extend(alone.iter().cloned());
        plans.push((named, choices));
    }
    // In the order made (fresh values first, so witnesses read `f1` where they can).
    let mut made = Vec::new();
    for (named, choices) in &plans {
        product(named, choices, &is_capture, &mut made);
    }
    let mut seen = BTreeSet::new();
    made.retain(|v| seen.insert(v.clone()));
    Ok(made)
}

/// Every pair of sessions of one identity, for isolation: each set partition of both
/// sessions' related attributes together (so any attribute of one may equal or differ
/// from any of the other), a fresh value per block (a passing value when the block must
/// pass a requirement). Unrelated attributes take one value in both.
pub fn pair_valuations(
    defs: &[(&Checked, &IdentityDef)],
) -> Result<Vec<(Valuation, Valuation)>, AnalysisError> {
    let singles = valuations(defs, Purpose::Isolation)?;
    let Some(base) = singles.first() else {
        return Ok(Vec::new());
    };
    let (captures, related) = related_classes(defs);
    let n = related.len();
    if n > 5 {
        return Err(AnalysisError::TooComplex(format!(
            "more than 5 attributes to compare between two sessions of identity `{}`",
            defs[0].1.name
        )));
    }
    let fresh = fresh_values(defs, 2 * n);
    let mut out = Vec::new();
    for partition in set_partitions(2 * n) {
        // Each block: its fresh (or passing) value, then the texts it can equal.
        let choices: Vec<Vec<String>> = partition
            .iter()
            .enumerate()
            .map(|(k, block)| {
                let members: Vec<String> =
                    block.iter().flat_map(|&v| related[v % n].clone()).collect();
                candidates(defs, &members, Purpose::Verify, vec![fresh[k].clone()], k)
            })
            .collect();
        let mut index = vec![0usize; choices.len()];
        loop {
            if out.len() > MAX_VALUATIONS {
                return Err(AnalysisError::TooComplex(format!(
                    "more than {MAX_VALUATIONS} pairs of sessions of identity `{}`",
                    defs[0].1.name
                )));
            }
            let mut pair = [base.clone(), base.clone()];
            for (k, block) in partition.iter().enumerate() {
                let Some(value) = choices[k].get(index[k]) else {
                    continue;
                };
                for &v in block {
                    for member in &related[v % n] {
                        let map = if captures.contains(member) {
                            &mut pair[v / n].captures
                        } else {
                            &mut pair[v / n].credential
                        };
                        map.insert(member.clone(), value.clone());
                    }
                }
            }
            let [a, b] = pair;
            out.push((a, b));
            let mut k = 0;
            loop {
                if k == choices.len() {
                    break;
                }
                index[k] += 1;
                if index[k] < choices[k].len() {
                    break;
                }
                index[k] = 0;
                k += 1;
            }
            if k == choices.len() {
                break;
            }
        }
    }
    Ok(out)
}

/// The client captures, and every class of attributes that must take one value: the
/// credential's attributes grouped by `require a == b`, then each capture on its own.
fn attribute_classes(defs: &[(&Checked, &IdentityDef)]) -> (BTreeSet<String>, Vec<Vec<String>>) {
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
    let mut classes = equal_classes(defs, &credential);
    classes.extend(captures.iter().map(|c| vec![c.clone()]));
    (captures, classes)
}

/// The client captures, and the classes of equal attributes whose values can matter.
fn related_classes(defs: &[(&Checked, &IdentityDef)]) -> (BTreeSet<String>, Vec<Vec<String>>) {
    let (captures, classes) = attribute_classes(defs);
    let related = classes.into_iter().filter(|c| relevant(defs, c)).collect();
    (captures, related)
}

/// The blocks of one partition (each a list of attributes) and each block's values.
type Plan = (Vec<Vec<String>>, Vec<Vec<String>>);

/// Every combination of one value per block.
fn product(
    named: &[Vec<String>],
    choices: &[Vec<String>],
    is_capture: &dyn Fn(&[String]) -> bool,
    out: &mut Vec<Valuation>,
) {
    let mut index = vec![0usize; choices.len()];
    loop {
        let mut valuation = Valuation {
            credential: BTreeMap::new(),
            captures: BTreeMap::new(),
        };
        for (k, block) in named.iter().enumerate() {
            let Some(value) = choices[k].get(index[k]) else {
                continue;
            };
            for member in block {
                let capture = is_capture(std::slice::from_ref(member));
                let map = if capture {
                    &mut valuation.captures
                } else {
                    &mut valuation.credential
                };
                map.insert(member.clone(), value.clone());
            }
        }
        out.push(valuation);
        let mut k = 0;
        loop {
            if k == choices.len() {
                return;
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

/// Every partition of `0..n` into blocks (Bell(n) of them), each block ascending.
fn set_partitions(n: usize) -> Vec<Vec<Vec<usize>>> {
    let mut out: Vec<Vec<Vec<usize>>> = vec![Vec::new()];
    for i in 0..n {
        let mut next = Vec::new();
        for partition in &out {
            for b in 0..partition.len() {
                let mut with = partition.clone();
                with[b].push(i);
                next.push(with);
            }
            let mut alone = partition.clone();
            alone.push(vec![i]);
            next.push(alone);
        }
        out = next;
    }
    out
}

/// Whether a class's equality with other values can change a decision: it is rendered in
/// a topic (or through `{client}`), or a `require a == b` names it.
fn relevant(defs: &[(&Checked, &IdentityDef)], class: &[String]) -> bool {
    let rendered = defs
        .iter()
        .any(|(checked, def)| !levels_of(checked, def, class).is_empty());
    let compared = defs
        .iter()
        .flat_map(|(_, d)| d.requires.iter())
        .any(|r| matches!(r, Require::Equal(a, b) if class.contains(a) || class.contains(b)));
    rendered || compared
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

/// The values one block of equal attributes (or captures) takes: `own` (its fresh value,
/// made to pass the block's requirements when only binding sessions matter), values that
/// pass `is eui64`, `is uuid` and `in SET`, and where the block is rendered every
/// substring of the texts at those levels and one value per class of the capture
/// patterns there.
fn candidates(
    defs: &[(&Checked, &IdentityDef)],
    class: &[String],
    purpose: Purpose,
    own: Vec<String>,
    rank: usize,
) -> Vec<String> {
    let mut checks: Vec<AttrCheck> = Vec::new();
    let mut in_sets: Vec<&[String]> = Vec::new();
    for (_, def) in defs {
        for require in &def.requires {
            match require {
                Require::Check(a, check) if class.contains(a) => checks.push(*check),
                Require::InSet { attr, values, .. } if class.contains(attr) => in_sets.push(values),
                _ => {}
            }
        }
    }
    let passes = |v: &str| {
        checks.iter().all(|c| c.accepts(v))
            && in_sets
                .iter()
                .all(|set| set.binary_search(&v.to_string()).is_ok())
    };
    let used = defs
        .iter()
        .any(|(checked, def)| !levels_of(checked, def, class).is_empty());
    let mut texts: BTreeSet<String> = BTreeSet::new();
    if used && purpose != Purpose::Isolation {
        for (checked, def) in defs {
            for j in direct_levels(checked, def, class) {
                level_substrings_near(checked, def, j, Some(class), &mut texts);
            }
            // Through `{client}` the block is seen inside the whole client id: only texts
            // the client template can render say anything about its value.
            let skeleton = client_skeleton(def);
            for j in levels_of(checked, def, class) {
                let mut at_level = BTreeSet::new();
                level_substrings_near(checked, def, j, Some(class), &mut at_level);
                let rendered = at_level
                    .iter()
                    .filter(|t| skeleton.matches(t, false, &BTreeMap::new()));
                for text in rendered.cloned().collect::<Vec<_>>() {
                    add_substrings(&text, &mut texts);
                }
            }
        }
    }
    // A stand-in for every value equal to no text: fresh, or when the block must pass a
    // requirement, a passing value that is none of the texts.
    let mut generic: Vec<String> = Vec::new();
    let seed = own.first().cloned().unwrap_or_else(|| "f".into());
    let fresh_passing = |check: &AttrCheck| -> String {
        let n: u64 = seed
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        match check {
            AttrCheck::Eui64 => format!("{:016x}", 0x0123_4567_89ab_0000_u64 ^ (n & 0xffff)),
            AttrCheck::Uuid => format!("123e4567-e89b-42d3-a456-{:012x}", n & 0xffff_ffff),
        }
    };
    if let Some(set) = in_sets.first() {
        generic.extend(
            set.iter()
                .filter(|v| !texts.contains(*v) && passes(v))
                .skip(rank)
                .take(1)
                .cloned(),
        );
    } else if let Some(check) = checks.first() {
        generic.push(fresh_passing(check));
    }
    let constrained = !checks.is_empty() || !in_sets.is_empty();
    let mut out: Vec<String> = Vec::new();
    if purpose == Purpose::Diff || !constrained {
        out.extend(own);
    }
    out.extend(generic);
    if purpose == Purpose::Diff {
        out.extend(in_sets.iter().flat_map(|s| s.iter().take(2).cloned()));
    }
    out.extend(
        texts
            .into_iter()
            .filter(|t| purpose == Purpose::Diff || passes(t)),
    );
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

/// `count` fresh values (`f1`, `f2`, ...), none of them a substring of any text the
/// identity's templates use.
fn fresh_values(defs: &[(&Checked, &IdentityDef)], count: usize) -> Vec<String> {
    let mut texts = BTreeSet::new();
    for (checked, def) in defs {
        for j in 0..64 {
            level_substrings(checked, def, j, &mut texts);
        }
    }
    (1..=count)
        .map(|k| {
            let mut value = format!("f{k}");
            while texts.contains(&value) {
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

/// The client template as a level pattern, every attribute and capture a capture.
fn client_skeleton(def: &IdentityDef) -> Level<'_> {
    Level::Pieces(
        def.client
            .iter()
            .map(|p| match p {
                ClientPiece::Text(t) => Item::Text(t),
                ClientPiece::Attr(_) | ClientPiece::Capture(_) => Item::Capture,
            })
            .collect(),
    )
}

/// The level indexes where an attribute of `class` is itself rendered.
fn direct_levels(checked: &Checked, def: &IdentityDef, class: &[String]) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for pattern in patterns(checked, def) {
        for (j, level) in pattern.levels.iter().enumerate() {
            if let LevelPattern::Pieces(pieces) = level
                && pieces
                    .iter()
                    .any(|p| matches!(p, Piece::Attr(a) if class.iter().any(|c| c == a)))
            {
                out.insert(j);
            }
        }
    }
    out
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

/// Every substring (up to [`MAX_TEXT`] bytes) of the fixed texts at level `j` of an
/// identity's templates: whole literals, set and alternative values, text pieces; and one
/// value per class of the capture patterns at that level (`k{+e}` stands for every value
/// starting with `k`). A value equal to none of these is, to every pattern at the level,
/// like a fresh one.
fn level_substrings(checked: &Checked, def: &IdentityDef, j: usize, out: &mut BTreeSet<String>) {
    level_substrings_near(checked, def, j, None, out)
}

/// [`level_substrings`] from the patterns that can match a topic together with one that
/// renders `near` at level `j` (every pattern when `near` is `None`): two patterns with
/// different literals at an earlier level never match one topic.
fn level_substrings_near(
    checked: &Checked,
    def: &IdentityDef,
    j: usize,
    near: Option<&[String]>,
    out: &mut BTreeSet<String>,
) {
    let all = patterns(checked, def);
    let renders = |p: &crate::check::TopicPattern| {
        near.is_none_or(|class| {
            matches!(p.levels.get(j), Some(LevelPattern::Pieces(pieces))
                if pieces.iter().any(|x| matches!(x, Piece::Attr(a) if class.iter().any(|c| c == a) || a == "client")))
        })
    };
    let anchors: Vec<&crate::check::TopicPattern> =
        all.iter().copied().filter(|p| renders(p)).collect();
    let together = |p: &crate::check::TopicPattern| {
        anchors.iter().any(|a| {
            (0..j).all(|i| match (a.levels.get(i), p.levels.get(i)) {
                (Some(LevelPattern::Literal(x)), Some(LevelPattern::Literal(y))) => x == y,
                _ => true,
            })
        })
    };
    let mut add = |text: &str| add_substrings(text, out);
    let mut captured: Vec<Template<'_>> = Vec::new();
    for pattern in all.into_iter().filter(|p| together(p)) {
        match pattern.levels.get(j) {
            Some(LevelPattern::Literal(text)) => add(text),
            Some(LevelPattern::Pieces(pieces)) => {
                for piece in pieces.iter() {
                    match piece {
                        Piece::Text(text) => add(text),
                        Piece::OneOf { values, .. } => values.iter().for_each(|v| add(v)),
                        _ => {}
                    }
                }
                let free = !pieces.iter().any(|p| matches!(p, Piece::Attr(_)));
                if free && pieces.iter().any(|p| matches!(p, Piece::Capture(_))) {
                    captured.push(Template::new(pattern));
                }
            }
            _ => {}
        }
    }
    if !captured.is_empty() {
        let none = BTreeMap::new();
        let levels: Vec<super::classes::Bound<'_, '_>> =
            captured.iter().map(|t| (&t.levels[j], &none)).collect();
        // Never past its bound: `fragment::check` ran the walk of a superset first.
        if let Ok(values) = super::classes::level_values(&levels, false) {
            out.extend(
                values
                    .into_iter()
                    .filter(|v| !v.is_empty() && v.chars().all(is_value_char)),
            );
        }
    }
}

/// Adds every substring of `text` made of value characters.
fn add_substrings(text: &str, out: &mut BTreeSet<String>) {
    if text.len() > MAX_TEXT {
        return;
    }
    for (a, _) in text.char_indices() {
        for (b, c) in text[a..].char_indices() {
            let word = &text[a..a + b + c.len_utf8()];
            if word.chars().all(is_value_char) {
                out.insert(word.to_string());
            }
        }
    }
}

/// Texts longer than this are not cut into substrings.
const MAX_TEXT: usize = 64;
