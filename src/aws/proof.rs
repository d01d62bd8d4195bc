//! The questions a plan asks about what topicguard allows, answered with automata.
//!
//! [`Bounds`] holds a lower and an upper bound of the requests topicguard allows for one
//! action, each written `valid ∧ ¬shared ∧ allow ∧ ¬deny` over four [`Lang`]s built from
//! [`super::model`]. For topics the bounds differ only in how a leading capture reads a
//! `$` level; for filters the lower bound is "contained in one allow rule (under
//! `subscriptions filtered`: touching one) and touching no deny" and the upper bound
//! "touching an allow rule (and, under containment, no deny)". Grants are proved against
//! the lower bound (what they grant must lie inside it), Deny statements against the upper
//! bound (what they remove must lie outside it). Each question is one bounded product
//! ([`super::lang::find`]).

use super::glob::Glob;
use super::lang::{self, Lang, LangError};
use super::model;
use super::shape::{Reading, Shape};
use crate::check::RuleId;

/// What kind of strings the bounds are about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Universe {
    /// Topic names (publish, receive).
    Topics,
    /// Topic filters (subscribe).
    Filters,
}

/// Lower and upper bounds of what topicguard allows for one action.
pub struct Bounds {
    universe: Universe,
    lower: [Lang; 4],
    upper: [Lang; 4],
}

/// A request a Deny would remove although topicguard allows it (`certain`) or may allow it
/// (filters touching an allow rule that are not provably granted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    pub(crate) example: String,
    pub(crate) certain: bool,
}

fn in_bound(m: &[bool]) -> bool {
    m[0] && !m[1] && m[2] && !m[3]
}

fn union(regexes: Vec<String>) -> Result<Lang, LangError> {
    Lang::union(&regexes)
}

impl Bounds {
    /// Topic names: publish, retain, receive. `extra_denies` count for the lower bound only
    /// (deny rules of another action that a newer reading applies to this one).
    pub fn topics(
        allows: &[Shape],
        denies: &[Shape],
        extra_denies: &[Shape],
    ) -> Result<Bounds, LangError> {
        let all_denies: Vec<Shape> = denies.iter().chain(extra_denies).cloned().collect();
        let set = |shapes: &[Shape], reading| {
            union(shapes.iter().map(|s| model::topics(s, reading)).collect())
        };
        let valid = || Lang::new(model::VALID_TOPIC);
        let shared = || Lang::new(model::SHARED);
        Ok(Bounds {
            universe: Universe::Topics,
            lower: [
                valid()?,
                shared()?,
                set(allows, Reading::Strict)?,
                set(&all_denies, Reading::Lenient)?,
            ],
            upper: [
                valid()?,
                shared()?,
                set(allows, Reading::Lenient)?,
                set(denies, Reading::Strict)?,
            ],
        })
    }

    /// Filters: subscribe. `filtered`: the identity has `subscriptions filtered`, under
    /// which a filter touching a deny may still be granted.
    pub fn filters(
        allows: &[Shape],
        denies: &[Shape],
        filtered: bool,
    ) -> Result<Bounds, LangError> {
        let valid = || Lang::new(&model::valid_filter());
        let shared = || Lang::new(model::SHARED);
        let overlap = |shapes: &[Shape], reading| {
            union(
                shapes
                    .iter()
                    .map(|s| model::overlapping_filters(s, reading))
                    .collect(),
            )
        };
        // Under containment, a filter touching a deny is denied and one ending in `#` needs
        // a rule ending in `#`; under `subscriptions filtered` touching an allow is enough.
        let (upper_allows, upper_denies) = if filtered {
            (
                overlap(allows, Reading::Lenient)?,
                Lang::new(lang::NOTHING)?,
            )
        } else {
            let possible = model::possibly_contained_filters(allows, Reading::Lenient);
            (Lang::new(&possible)?, overlap(denies, Reading::Strict)?)
        };
        // Surely granted: contained in one allow rule and touching no deny; under
        // `subscriptions filtered`, touching an allow rule and no deny (the topic they share
        // is allowed, so the engine grants the filter).
        let lower_allows = if filtered {
            overlap(allows, Reading::Strict)?
        } else {
            union(allows.iter().map(model::contained_filters).collect())?
        };
        Ok(Bounds {
            universe: Universe::Filters,
            lower: [
                valid()?,
                shared()?,
                lower_allows,
                overlap(denies, Reading::Lenient)?,
            ],
            upper: [valid()?, shared()?, upper_allows, upper_denies],
        })
    }

    /// What kind of strings the bounds are about.
    pub fn universe(&self) -> Universe {
        self.universe
    }

    /// True if `request` is inside the lower bound: topicguard allows it.
    pub fn surely_allowed(&self, request: &str) -> bool {
        let m: Vec<bool> = self.lower.iter().map(|l| l.contains(request)).collect();
        in_bound(&m)
    }

    /// False if `request` is outside the upper bound: topicguard denies it.
    pub fn maybe_allowed(&self, request: &str) -> bool {
        let m: Vec<bool> = self.upper.iter().map(|l| l.contains(request)).collect();
        in_bound(&m)
    }

    /// A request `deny` matches that topicguard may allow, if there is one.
    pub fn over_reach(&self, deny: &Lang) -> Result<Option<Removed>, LangError> {
        let [a, b, c, d] = &self.upper;
        let Some(maybe) = lang::find_readable(&[deny, a, b, c, d], |m| m[0] && in_bound(&m[1..]))?
        else {
            return Ok(None);
        };
        let [a, b, c, d] = &self.lower;
        let certain = lang::find_readable(&[deny, a, b, c, d], |m| m[0] && in_bound(&m[1..]))?;
        Ok(Some(match certain {
            Some(example) => Removed {
                example,
                certain: true,
            },
            None => Removed {
                example: maybe,
                certain: false,
            },
        }))
    }

    /// A valid request that `allow` grants, `deny` does not take back, and topicguard
    /// does not (provably) allow. A shared-subscription string is never provably allowed:
    /// AWS reads it whole, so granting one is always a leak.
    pub fn leak(&self, allow: &Lang, deny: &Lang) -> Result<Option<String>, LangError> {
        let [a, b, c, d] = &self.lower;
        lang::find_readable(&[allow, deny, a, b, c, d], |m| {
            m[0] && !m[1] && m[2] && !in_bound(&m[2..])
        })
    }

    /// A request topicguard allows (lower bound) that is not granted.
    pub fn missed(&self, allow: &Lang, deny: &Lang) -> Result<Option<String>, LangError> {
        let [a, b, c, d] = &self.lower;
        lang::find_readable(&[allow, deny, a, b, c, d], |m| {
            let granted = m[0] && !m[1];
            in_bound(&m[2..]) && !granted
        })
    }

    /// The first allow shape that allows `example`, to name its rule in a note.
    pub fn allowing_rule(&self, allows: &[Shape], example: &str) -> Option<RuleId> {
        allows.iter().find_map(|s| {
            let regex = match self.universe {
                Universe::Topics => model::topics(s, Reading::Lenient),
                Universe::Filters => model::contained_filters(s),
            };
            Lang::new(&regex)
                .ok()
                .filter(|l| l.contains(example))
                .map(|_| s.rule)
        })
    }
}

/// The language of one pattern.
pub fn one(glob: &Glob) -> Result<Lang, LangError> {
    Lang::new(&glob.regex())
}

/// The language of several patterns (nothing, for none).
pub fn union_of<'a>(globs: impl IntoIterator<Item = &'a Glob>) -> Result<Lang, LangError> {
    union(globs.into_iter().map(Glob::regex).collect())
}

/// True if some string is in `a` and not in `b`.
pub fn escapes(a: &Lang, b: &Lang) -> Result<bool, LangError> {
    Ok(lang::find(&[a, b], |m| m[0] && !m[1])?.is_some())
}
