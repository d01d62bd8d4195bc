//! Why a request was denied, for explanations: a witness topic and the nearest rule.
//!
//! * A denied subscribe gets a *witness*: a topic the filter covers that shows the denial.
//!   For an implicit deny it is a topic no rule allows for subscribe (the filter's `+`
//!   levels and a trailing `#` filled with a fresh level such as `x`); for an explicit
//!   deny it is a topic both the filter and the deciding deny rule match (the filter's
//!   literal levels, the deny's own levels where the filter has wildcards). Every witness
//!   is checked before it is shown: the filter matches it and the engine denies it.
//! * An implicitly denied request gets the *nearest* allow rule for its action: the one
//!   whose template agrees with the topic or filter on the longest prefix of levels, then
//!   on the most levels overall (fewest differing levels), then the first in the file. A
//!   level agrees when the rule's level matches the request's literal level with the
//!   session's attributes, or both are `+`, or the rule's trailing `#` covers it.
//!
//! Off the hot path; allocates; never changes a decision.

use super::session::Session;
use super::walk::decide_topic;
use super::{Engine, RuleRef, Verdict};
use crate::ast::{Action, Effect};
use crate::check::matches::match_level;
use crate::check::{LevelPattern, Piece, RuleId, TopicPattern};
use crate::mqtt::topic::matches;

/// Levels tried in place of a filter's wildcards when looking for a witness topic.
const FRESH_LEVELS: [&str; 3] = ["x", "_", "0"];

/// The allow rule nearest to a denied request (see the module docs for "nearest").
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Nearest {
    /// The rule.
    pub rule: RuleRef,
    /// The action it was chosen for (`retain` when a retained publish lacks only that).
    pub action: Action,
    /// How many leading levels of the request the rule's template agrees with.
    pub matching_prefix: usize,
    /// How many levels differ (or are missing on one side).
    pub differing_levels: usize,
    /// The first level (from 1) where they differ, if any.
    pub first_difference: Option<usize>,
}

/// A topic under a denied filter that no rule allows for subscribe, if one of the tried
/// fillings of its wildcards is one.
pub(crate) fn uncovered_topic(engine: &Engine, session: &Session, filter: &str) -> Option<String> {
    let levels: Vec<&str> = filter.split('/').collect();
    let hash = levels.last() == Some(&"#");
    let fixed = &levels[..levels.len() - usize::from(hash)];
    for fresh in FRESH_LEVELS {
        let base: Vec<&str> = fixed
            .iter()
            .map(|l| if *l == "+" { fresh } else { *l })
            .collect();
        let mut candidates = vec![base.clone()];
        if hash {
            candidates.push([base.clone(), vec![fresh]].concat());
            candidates.push([base.clone(), vec![fresh, fresh]].concat());
        }
        for candidate in candidates.iter().filter(|c| !c.is_empty()) {
            let topic = candidate.join("/");
            if matches(filter, &topic)
                && decide_topic(engine, session, &topic, Action::Subscribe).verdict
                    == Verdict::ImplicitDeny
            {
                return Some(topic);
            }
        }
    }
    None
}

/// A topic under `filter` that the deny rule `deny` matches and the engine denies.
pub(crate) fn denied_topic(
    engine: &Engine,
    session: &Session,
    filter: &str,
    deny: RuleId,
) -> Option<String> {
    let pattern = engine.checked().rule(deny).topic.as_ref()?;
    let levels: Vec<&str> = filter.split('/').collect();
    let hash_at = levels.iter().position(|l| *l == "#");
    let fixed = hash_at.unwrap_or(levels.len());
    let length = if hash_at.is_some() {
        fixed.max(pattern.levels.len())
    } else {
        fixed
    };
    let topic: Vec<String> = (0..length)
        .map(|i| match levels.get(i) {
            Some(level) if i < fixed && *level != "+" => (*level).to_string(),
            _ => sample(pattern.levels.get(i), session),
        })
        .collect();
    let topic = topic.join("/");
    let denied =
        decide_topic(engine, session, &topic, Action::Subscribe).verdict == Verdict::ExplicitDeny;
    (!topic.is_empty() && matches(filter, &topic) && denied).then_some(topic)
}

/// A level value a template level matches: its text, the session's attribute values, the
/// first value of a set, `x` for a wildcard or capture.
fn sample(level: Option<&LevelPattern>, session: &Session) -> String {
    match level {
        Some(LevelPattern::Literal(text)) => text.to_string(),
        Some(LevelPattern::Pieces(pieces)) => pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.to_string(),
                Piece::Attr(name) => session.attrs().get(name).unwrap_or_default().to_string(),
                Piece::Capture(_) => "x".to_string(),
                Piece::OneOf { values, .. } => values.first().cloned().unwrap_or_default(),
            })
            .collect(),
        Some(LevelPattern::Any { .. }) | None => "x".to_string(),
    }
}

/// The allow rule for `action` nearest to `topic` (a topic name, or a filter for
/// subscribe), with the rule reference made by `cite`.
pub(crate) fn nearest(
    engine: &Engine,
    session: &Session,
    topic: &str,
    action: Action,
    cite: impl Fn(RuleId) -> RuleRef,
) -> Option<Nearest> {
    let identity = session.identity_id()?;
    let levels: Vec<&str> = topic.split('/').collect();
    let mut best: Option<(usize, usize, Option<usize>, RuleId)> = None;
    for rule in &engine.checked().rules {
        if rule.effect != Effect::Allow
            || !rule.actions.contains(action)
            || !rule.applies_to(identity)
        {
            continue;
        }
        let Some(pattern) = &rule.topic else {
            continue;
        };
        let (prefix, differing, first) = distance(pattern, &levels, session);
        let better =
            best.is_none_or(|(p, d, _, _)| (prefix, usize::MAX - differing) > (p, usize::MAX - d));
        if better {
            best = Some((prefix, differing, first, rule.id));
        }
    }
    let (matching_prefix, differing_levels, first_difference, id) = best?;
    Some(Nearest {
        rule: cite(id),
        action,
        matching_prefix,
        differing_levels,
        first_difference,
    })
}

/// (agreeing prefix, differing levels, first differing level from 1) of a template and a
/// request's levels.
fn distance(
    pattern: &TopicPattern,
    levels: &[&str],
    session: &Session,
) -> (usize, usize, Option<usize>) {
    let dollar = levels.first().is_some_and(|l| l.starts_with('$'));
    let mut prefix = 0;
    let mut differing = 0;
    let mut first = None;
    for i in 0..pattern.levels.len().max(levels.len()) {
        let agrees = match (pattern.levels.get(i), levels.get(i)) {
            (Some(LevelPattern::Any { .. }), Some(&"+")) => !(i == 0 && dollar),
            (Some(_), Some(&"+" | &"#")) => false,
            (Some(level), Some(text)) => match_level(
                level,
                text,
                i == 0 && dollar,
                &session.attrs(),
                &mut Vec::new(),
            ),
            (None, Some(_)) => pattern.hash,
            (Some(_), None) | (None, None) => false,
        };
        if agrees && first.is_none() {
            prefix += 1;
        } else if !agrees {
            differing += 1;
            first = first.or(Some(i + 1));
        }
    }
    (prefix, differing, first)
}
