//! The fragment the analysis decides exactly, and the refusal outside it.
//!
//! Attribute values are tried as described in [`super::witness`]: per equality partition a
//! fresh value per block, and every substring of the texts at the levels where the value is
//! rendered. That stands for every value only while a value is compared with the other
//! patterns of its level as a whole: the checker already keeps an attribute away from
//! captures, sets and other attributes (text or the level's edge on both sides) and keeps
//! its value free of the characters that separate it. What remains is one construct: a
//! level where one pattern renders an attribute (or `{client}`) whose value may contain a
//! character that another pattern of the same identity puts as text at that level
//! (`{b}` against `{a}_x`: `b` equal to `a`'s value followed by `_x` is a class no
//! substring or fresh value stands for). [`check`] finds it and the analysis stops with
//! [`AnalysisError::Inexact`], naming the rule or assertion and its `file:line:col`,
//! rather than answer from a part. It also runs, once, the product walks that give
//! attribute candidates, so their bound stops the analysis here rather than leave a
//! candidate out later. Cost: patterns² per level plus those walks; it decides nothing.

use super::AnalysisError;
use crate::check::{Checked, IdentityDef, LevelPattern, Piece, TopicPattern};
use crate::decide::reference::template::Template;

/// One template of an identity and where it is written.
struct Placed<'c> {
    pattern: &'c TopicPattern,
    location: String,
}

/// `Ok` when every template of the identity (in each policy of `defs`) is in the fragment.
pub fn check(defs: &[(&Checked, &IdentityDef)]) -> Result<(), AnalysisError> {
    let mut placed: Vec<Placed<'_>> = Vec::new();
    for (checked, def) in defs {
        let Some((id, _)) = checked.identity(&def.name) else {
            continue;
        };
        for rule in checked.rules.iter().filter(|r| r.applies_to(id)) {
            if let Some(pattern) = &rule.topic {
                placed.push(Placed {
                    pattern,
                    location: rule.loc.to_string(),
                });
            }
        }
        for assertion in checked
            .assertions
            .iter()
            .filter(|a| a.identities.contains(&id))
        {
            for (_, pattern) in &assertion.namespaces {
                placed.push(Placed {
                    pattern,
                    location: assertion.loc.to_string(),
                });
            }
        }
    }
    budget_capture_walks(&placed)?;
    // A separator holds only if every policy compared reserves it.
    let reserved = |attr: &str, c: char| {
        defs.iter()
            .all(|(_, d)| d.separators.iter().any(|(a, s)| a == attr && *s == c))
    };
    for p in &placed {
        for (j, level) in p.pattern.levels.iter().enumerate() {
            let LevelPattern::Pieces(pieces) = level else {
                continue;
            };
            for attr in pieces.iter().filter_map(|x| match x {
                Piece::Attr(a) => Some(a.as_str()),
                _ => None,
            }) {
                for other in &placed {
                    let Some(LevelPattern::Pieces(theirs)) = other.pattern.levels.get(j) else {
                        continue;
                    };
                    if theirs == pieces {
                        continue;
                    }
                    let text: Option<char> = theirs
                        .iter()
                        .filter_map(|x| match x {
                            Piece::Text(t) => Some(t.chars()),
                            _ => None,
                        })
                        .flatten()
                        .find(|&c| attr == "client" || !reserved(attr, c));
                    if let Some(c) = text {
                        return Err(AnalysisError::Inexact {
                            what: format!(
                                "`{{{attr}}}` at level {} may contain `{c}`, which {} puts beside other values at that level",
                                j + 1,
                                other.location
                            ),
                            location: p.location.clone(),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// Runs, once per level, the product walk of the attribute-free capture patterns whose
/// classes give attribute candidates ([`super::witness`]); past its bound the analysis
/// stops here. The candidates walk subsets of these patterns, whose product states are
/// projections of these, so they stay within the bound.
fn budget_capture_walks(placed: &[Placed<'_>]) -> Result<(), AnalysisError> {
    let depth = placed
        .iter()
        .map(|p| p.pattern.levels.len())
        .max()
        .unwrap_or(0);
    let none = std::collections::BTreeMap::new();
    for j in 0..depth {
        let templates: Vec<Template<'_>> = placed
            .iter()
            .filter(|p| match p.pattern.levels.get(j) {
                Some(LevelPattern::Pieces(pieces)) => {
                    !pieces.iter().any(|x| matches!(x, Piece::Attr(_)))
                        && pieces.iter().any(|x| matches!(x, Piece::Capture(_)))
                }
                _ => false,
            })
            .map(|p| Template::new(p.pattern))
            .collect();
        if templates.is_empty() {
            continue;
        }
        let levels: Vec<super::classes::Bound<'_, '_>> =
            templates.iter().map(|t| (&t.levels[j], &none)).collect();
        super::classes::level_values(&levels, false)?;
    }
    Ok(())
}
