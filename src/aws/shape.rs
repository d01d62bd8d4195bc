//! A rule's topic template for one bound session: its attributes filled in with the
//! session's values, its sets and alternatives expanded into one [`Shape`] each.
//!
//! What is left in a shape is what AWS's policy language has to express: literal text, a
//! whole free level ([`Level::Any`], from `+` or `{+name}`), a level with free runs inside
//! it ([`Level::Glob`], from `dev-{+n}`), and a trailing `#`. Expansion is capped at
//! [`MAX_SHAPES_PER_RULE`] per rule, far more than ten policy documents can hold, so a huge
//! set fails with an error naming the rule instead of exhausting memory. This module reads
//! checked rules and attribute values; it never matches a request.

use crate::ast::{Action, Effect};
use crate::check::{Checked, CheckedRule, IdentityId, LevelPattern, Piece, RuleId};
use crate::source::Loc;
use std::collections::BTreeMap;

/// The most shapes one rule may expand to for one identity.
pub const MAX_SHAPES_PER_RULE: usize = 1024;

/// One expansion of a rule's template for one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    pub(crate) rule: RuleId,
    pub(crate) effect: Effect,
    pub(crate) levels: Vec<Level>,
    /// Ends with `#`: the parent topic and any deeper levels too.
    pub hash: bool,
}

/// One level of a shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// Exactly this text.
    Text(String),
    /// Any one level (`+`, `{+name}`); never a `$` level at the start of a topic.
    Any,
    /// Text and free runs within one level (`dev-{+n}`); at least one [`Part::Hole`].
    Glob(Vec<Part>),
}

/// A piece of a [`Level::Glob`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// Any run of characters within the level, possibly empty.
    Hole,
}

/// How a capture at the very start of a topic reads a level starting with `$`.
///
/// The language never lets a leading capture take a `$`; whether an *empty* leading
/// capture may sit before text that starts with `$` (`"{+c}$SYS/#"` against `$SYS/x`)
/// has been read both ways. The renderer uses the narrow reading for what it grants and
/// the wide one for what it must deny, so either reading is safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// Such a level never matches.
    Strict,
    /// It matches when the capture is empty.
    Lenient,
}

/// A rule expanded past [`MAX_SHAPES_PER_RULE`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "rule at {loc} expands to more than {MAX_SHAPES_PER_RULE} resources for this identity (its sets and alternatives multiply); AWS policy documents could not hold them"
)]
pub struct TooManyShapes {
    pub(crate) rule: RuleId,
    pub(crate) loc: Loc,
}

/// The shapes of every rule of `effect` that applies to `identity` and names `action`, in
/// file order. A rule naming an attribute the session lacks matches nothing and gives none.
pub fn shapes(
    checked: &Checked,
    identity: IdentityId,
    attrs: &BTreeMap<String, String>,
    action: Action,
    effect: Effect,
) -> Result<Vec<Shape>, TooManyShapes> {
    let mut out = Vec::new();
    let rules = checked
        .rules
        .iter()
        .filter(|r| r.effect == effect && r.applies_to(identity) && r.actions.contains(action));
    for rule in rules {
        out.extend(expand(rule, attrs)?);
    }
    Ok(out)
}

fn expand(
    rule: &CheckedRule,
    attrs: &BTreeMap<String, String>,
) -> Result<Vec<Shape>, TooManyShapes> {
    let too_many = || TooManyShapes {
        rule: rule.id,
        loc: rule.loc.clone(),
    };
    let Some(pattern) = &rule.topic else {
        return Ok(Vec::new());
    };
    let mut options = Vec::with_capacity(pattern.levels.len());
    for level in &pattern.levels {
        match level_options(level, attrs) {
            Options::Never => return Ok(Vec::new()),
            Options::TooMany => return Err(too_many()),
            Options::Some(levels) => options.push(levels),
        }
    }
    let mut count: usize = 1;
    for o in &options {
        count = count.saturating_mul(o.len());
    }
    if count > MAX_SHAPES_PER_RULE {
        return Err(too_many());
    }
    let mut combos: Vec<Vec<Level>> = vec![Vec::new()];
    for choices in options {
        combos = combos
            .into_iter()
            .flat_map(|prefix| {
                choices.iter().map(move |c| {
                    let mut next = prefix.clone();
                    next.push(c.clone());
                    next
                })
            })
            .collect();
    }
    Ok(combos
        .into_iter()
        .map(|levels| Shape {
            rule: rule.id,
            effect: rule.effect,
            levels,
            hash: pattern.hash,
        })
        .collect())
}

enum Options {
    Some(Vec<Level>),
    /// An attribute the session does not have: the rule matches nothing.
    Never,
    TooMany,
}

fn level_options(pattern: &LevelPattern, attrs: &BTreeMap<String, String>) -> Options {
    let pieces = match pattern {
        LevelPattern::Any { .. } => return Options::Some(vec![Level::Any]),
        LevelPattern::Literal(text) => return Options::Some(vec![Level::Text(text.to_string())]),
        LevelPattern::Pieces(pieces) => pieces,
    };
    let mut partials: Vec<Vec<Part>> = vec![Vec::new()];
    for piece in pieces.iter() {
        let texts: Vec<&str> = match piece {
            Piece::Text(text) => vec![text.as_str()],
            Piece::Attr(name) => match attrs.get(name.as_str()) {
                Some(value) => vec![value.as_str()],
                None => return Options::Never,
            },
            Piece::OneOf { values, .. } => values.iter().map(String::as_str).collect(),
            Piece::Capture(_) => {
                partials.iter_mut().for_each(|p| p.push(Part::Hole));
                continue;
            }
        };
        if partials.len().saturating_mul(texts.len()) > MAX_SHAPES_PER_RULE {
            return Options::TooMany;
        }
        partials = partials
            .into_iter()
            .flat_map(|p| {
                texts.iter().map(move |t| {
                    let mut next = p.clone();
                    next.push(Part::Text(t.to_string()));
                    next
                })
            })
            .collect();
    }
    Options::Some(partials.into_iter().map(normalize).collect())
}

/// Merges adjacent text; a level without holes is plain text.
fn normalize(parts: Vec<Part>) -> Level {
    let mut merged: Vec<Part> = Vec::new();
    for part in parts {
        match (merged.last_mut(), part) {
            (Some(Part::Text(prev)), Part::Text(next)) => prev.push_str(&next),
            (Some(Part::Hole), Part::Hole) => {}
            (_, part) => merged.push(part),
        }
    }
    merged.retain(|p| !matches!(p, Part::Text(t) if t.is_empty()));
    if merged.contains(&Part::Hole) {
        Level::Glob(merged)
    } else {
        Level::Text(
            merged
                .into_iter()
                .map(|p| match p {
                    Part::Text(t) => t,
                    Part::Hole => String::new(),
                })
                .collect(),
        )
    }
}

impl Level {
    /// Whether the level string `text` (no `/`) matches this level; `first`: it is the
    /// first level of the topic.
    pub fn matches(&self, text: &str, first: bool, reading: Reading) -> bool {
        let dollar = first && text.starts_with('$');
        match self {
            Level::Text(t) => t == text,
            Level::Any => !dollar,
            Level::Glob(parts) => match parts.split_first() {
                Some((Part::Hole, rest)) if dollar => {
                    reading == Reading::Lenient && parts_match(rest, text)
                }
                _ => parts_match(parts, text),
            },
        }
    }

    /// True if some level string matching this one can start a topic without `$`.
    pub fn can_start_plain(&self) -> bool {
        match self {
            Level::Text(t) => !t.starts_with('$'),
            Level::Any => true,
            Level::Glob(parts) => {
                !matches!(parts.first(), Some(Part::Text(t)) if t.starts_with('$'))
            }
        }
    }
}

fn parts_match(parts: &[Part], text: &str) -> bool {
    match parts.split_first() {
        None => text.is_empty(),
        Some((Part::Text(t), rest)) => text
            .strip_prefix(t.as_str())
            .is_some_and(|r| parts_match(rest, r)),
        Some((Part::Hole, rest)) => text
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(text.len()))
            .any(|i| parts_match(rest, &text[i..])),
    }
}

/// A shape holding at least every topic both `a` and `d` hold (perhaps more), or `None`
/// when they provably share none. Used to carry a deny rule over only where it cuts into
/// an allow rule.
pub fn intersect(a: &Shape, d: &Shape) -> Option<Shape> {
    let (na, nd) = (a.levels.len(), d.levels.len());
    let (length, hash) = match (a.hash, d.hash) {
        (false, false) if na == nd => (na, false),
        (true, false) if nd >= na => (nd, false),
        (false, true) if na >= nd => (na, false),
        (true, true) => (na.max(nd), true),
        _ => return None,
    };
    let mut levels = Vec::with_capacity(length);
    for i in 0..length {
        let level = match (a.levels.get(i), d.levels.get(i)) {
            (Some(x), Some(y)) => intersect_level(x, y, i == 0)?,
            (Some(x), None) | (None, Some(x)) => x.clone(),
            (None, None) => return None,
        };
        levels.push(level);
    }
    Some(Shape {
        rule: d.rule,
        effect: d.effect,
        levels,
        hash,
    })
}

fn intersect_level(x: &Level, y: &Level, first: bool) -> Option<Level> {
    match (x, y) {
        (Level::Text(t), other) | (other, Level::Text(t)) => other
            .matches(t, first, Reading::Lenient)
            .then(|| Level::Text(t.clone())),
        (Level::Any, other) | (other, Level::Any) => Some(other.clone()),
        (Level::Glob(_), Level::Glob(_)) => Some(y.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::source::Source;

    fn rendered(template: &str, attrs: &[(&str, &str)]) -> Vec<Vec<Level>> {
        let text = format!(
            "identity m from jwt {{\n    p = claim \"p\"\n    client \"c:{{p}}\"\n}}\nset s = x, y\nallow m publish \"{template}\"\n"
        );
        let policy = Policy::from_source(&Source::new("t.policy", text.as_str())).expect("valid");
        let attrs: BTreeMap<String, String> = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        shapes(
            &policy.checked,
            IdentityId(0),
            &attrs,
            Action::Publish,
            Effect::Allow,
        )
        .unwrap()
        .into_iter()
        .map(|s| s.levels)
        .collect()
    }

    #[test]
    fn attributes_are_filled_in_and_sets_expanded() {
        let got = rendered("a/{p}_{v in s}/{+r}/d-{+n}/{ok|no}", &[("p", "P*1")]);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0][1], Level::Text("P*1_x".into()));
        assert_eq!(got[0][2], Level::Any);
        assert_eq!(
            got[0][3],
            Level::Glob(vec![Part::Text("d-".into()), Part::Hole])
        );
        assert_eq!(got[3][4], Level::Text("no".into()));
    }

    #[test]
    fn a_missing_attribute_matches_nothing() {
        assert!(rendered("a/{p}", &[]).is_empty());
    }

    #[test]
    fn level_matching_follows_the_dollar_rule() {
        let lead = Level::Glob(vec![Part::Hole, Part::Text("$x".into())]);
        assert!(!lead.matches("$x", true, Reading::Strict));
        assert!(lead.matches("$x", true, Reading::Lenient));
        assert!(lead.matches("a$x", true, Reading::Strict));
        assert!(!Level::Any.matches("$s", true, Reading::Lenient));
        assert!(Level::Any.matches("$s", false, Reading::Strict));
    }
}
