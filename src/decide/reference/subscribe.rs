//! SUBSCRIBE in the reference interpreter: a filter is judged by deciding, one by one, a
//! finite set of topics that stand for every topic it can match ([`representatives`]).
//!
//! By default (containment, section 6.5) the filter is denied if some topic is denied and
//! granted only if every topic is allowed. An identity with `subscriptions filtered` is
//! denied only if every topic is denied, and granted if some topic is allowed.
//!
//! Cost: the number of representative topics times the rules, capped at
//! [`MAX_REPRESENTATIVES`] topics (past it the filter is denied as too complex).

use super::template::{Item, Level, Template};
use crate::check::RuleId;
use std::collections::{BTreeMap, HashSet};

/// The level value no rule mentions: only `+`-like levels match it.
pub const FRESH: &str = "\u{E000}fresh";

/// What a free capture holds in a pattern level's witness: a private-use character that no
/// literal mentions, so the witness matches no more than the pattern forces it to.
pub const FILLER: &str = "\u{E001}";

/// Past this many representative topics a subscription is denied as too complex.
pub const MAX_REPRESENTATIVES: usize = 200_000;

/// One representative topic of a filter, decided for `subscribe`.
pub struct Judged {
    /// Every wildcard level of the filter holds [`FRESH`] in this topic.
    pub fresh: bool,
    /// The first matching deny rule.
    pub deny: Option<RuleId>,
    /// The first matching allow rule.
    pub allow: Option<RuleId>,
}

impl Judged {
    pub(crate) fn allowed(&self) -> bool {
        self.deny.is_none() && self.allow.is_some()
    }
}

/// The values one filter level may take: a literal is itself; a wildcard level takes every
/// value of a pool, and is remembered as wild.
struct LevelChoice {
    values: Vec<String>,
    wild: bool,
}

/// The topics that stand for every topic a valid (unshared) filter can match, each with
/// whether all its wildcard levels hold [`FRESH`]; `None` past [`MAX_REPRESENTATIVES`].
///
/// A literal filter level is itself. A `+` at level `j` takes every value of
/// [`level_pool`]. A trailing `#` stands for the parent topic (unless the filter is only
/// `#`) and for 1 to `K` more levels drawn the same way, `K` one more than the longest
/// template: deeper topics are matched only by `#` templates, exactly as the `K`-level
/// ones are. The empty topic is left out: it is no topic name.
pub fn representatives(
    filter: &str,
    templates: &[&Template<'_>],
    attrs: &BTreeMap<String, String>,
) -> Option<Vec<(String, bool)>> {
    let levels: Vec<&str> = filter.split('/').collect();
    let (prefix, hash) = match levels.split_last() {
        Some((&"#", prefix)) => (prefix, true),
        _ => (levels.as_slice(), false),
    };
    let wild =
        |j: usize| level_pool(templates, j, attrs).map(|values| LevelChoice { values, wild: true });
    let mut choices: Vec<LevelChoice> = Vec::new();
    for (j, level) in prefix.iter().enumerate() {
        choices.push(match *level {
            "+" => wild(j)?,
            literal => LevelChoice {
                values: vec![literal.to_string()],
                wild: false,
            },
        });
    }
    let mut lengths = vec![prefix.len()];
    if hash {
        let longest = templates.iter().map(|t| t.levels.len()).max().unwrap_or(0);
        let k = longest + 1;
        let shortest = prefix.len().max(1);
        lengths = (shortest..=prefix.len() + k).collect();
        for j in prefix.len()..prefix.len() + k {
            choices.push(wild(j)?);
        }
    }
    let mut count: usize = 0;
    for &n in &lengths {
        let topics = choices[..n]
            .iter()
            .try_fold(1usize, |product, c| product.checked_mul(c.values.len()));
        count = count.checked_add(topics?)?;
    }
    if count > MAX_REPRESENTATIVES {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for n in lengths {
        enumerate(&choices[..n], &mut Vec::new(), true, &mut out);
    }
    out.retain(|(topic, _)| !topic.is_empty());
    Some(out)
}

/// Every combination of one value per level, joined into a topic.
fn enumerate(
    choices: &[LevelChoice],
    chosen: &mut Vec<String>,
    fresh: bool,
    out: &mut Vec<(String, bool)>,
) {
    let Some((first, rest)) = choices.split_first() else {
        out.push((chosen.join("/"), fresh));
        return;
    };
    for value in &first.values {
        chosen.push(value.clone());
        let still_fresh = fresh && (!first.wild || value == FRESH);
        enumerate(rest, chosen, still_fresh, out);
        chosen.pop();
    }
}

/// The values a wildcard at level `j` takes.
///
/// Candidates: [`FRESH`], and every text some template's level `j` matches when its
/// captures hold [`FILLER`] (every value of a set). At level 0, no value starting with `$`:
/// a leading wildcard never matches a `$` topic. Only the templates' level-`j` patterns
/// look at the value at level `j`, so two candidates that the same patterns match are
/// interchangeable in every topic: one per such class is kept, the first found ([`FRESH`]
/// for the class no pattern but `+` matches). A 10,000-value set thus adds one value, not
/// 10,000, unless other patterns tell its values apart. `None` when a pattern has more
/// than [`MAX_REPRESENTATIVES`] witnesses (several large sets in one level).
pub fn level_pool(
    templates: &[&Template<'_>],
    j: usize,
    attrs: &BTreeMap<String, String>,
) -> Option<Vec<String>> {
    let patterns: Vec<&Level<'_>> = templates.iter().filter_map(|t| t.levels.get(j)).collect();
    let mut candidates = vec![FRESH.to_string()];
    for pattern in &patterns {
        candidates.extend(witnesses(pattern, attrs)?);
    }
    let mut classes: HashSet<Vec<bool>> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut kept = Vec::new();
    for value in candidates {
        if (j == 0 && value.starts_with('$')) || seen.contains(&value) {
            continue;
        }
        let class: Vec<bool> = patterns
            .iter()
            .map(|p| p.matches(&value, j == 0, attrs))
            .collect();
        if classes.insert(class) {
            kept.push(value.clone());
        }
        seen.insert(value);
    }
    Some(kept)
}

/// Texts a level pattern matches: a literal; every combination of a pattern's pieces with
/// captures filled with [`FILLER`]. `+` gives none (every value matches it). A pattern
/// naming an attribute the session lacks gives none (it matches nothing). `None` past
/// [`MAX_REPRESENTATIVES`] texts.
fn witnesses(pattern: &Level<'_>, attrs: &BTreeMap<String, String>) -> Option<Vec<String>> {
    let items = match pattern {
        Level::Any => return Some(Vec::new()),
        Level::Literal(text) => return Some(vec![text.to_string()]),
        Level::Pieces(items) => items,
    };
    let mut texts = vec![String::new()];
    for item in items {
        let options: Vec<&str> = match item {
            Item::Text(text) => vec![text],
            Item::Attr(name) => match attrs.get(*name) {
                Some(value) => vec![value.as_str()],
                None => return Some(Vec::new()),
            },
            Item::Capture => vec![FILLER],
            Item::Choice(choice) => choice.listed.clone(),
        };
        if texts.len().saturating_mul(options.len()) > MAX_REPRESENTATIVES {
            return None;
        }
        texts = texts
            .iter()
            .flat_map(|t| options.iter().map(move |o| format!("{t}{o}")))
            .collect();
    }
    Some(texts)
}
