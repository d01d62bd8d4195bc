//! The reference interpreter: the obviously-correct oracle for the automaton.
//!
//! It evaluates the checked rules one by one, straight from their definition, with no
//! sharing, no precomputation and no cleverness. It is slow on purpose: O(rules) per topic,
//! and a subscription is judged by deciding a finite set of representative topics one by
//! one. Tests compare it with [`crate::Engine::decide`] on randomly generated policies and
//! requests (`tests/differential.rs`). It must never share matching code with the compiled
//! engine (`compile`, `walk`, `subscribe`), or the comparison would prove nothing.
//!
//! Semantics (`docs/policy-language.md` §3):
//! * a session whose identity was rejected at bind denies everything, with the reason its
//!   bind error gives;
//! * a topic or filter that is not valid MQTT is denied before any rule is consulted
//!   (judged with the default [`Limits`]);
//! * connect, publish, retain, receive: a rule matches when it applies to the session's
//!   identity, names the action and (except connect) its template matches the topic. Deny
//!   wins: the deciding rule is the first (lowest id) matching deny, else the first matching
//!   allow, else no rule matched. A retained publish needs both `publish` and `retain`.
//!   For an identity with `subscriptions filtered`, a receive also counts the matching
//!   `deny subscribe` rules as matching denies;
//! * subscribe: [`representatives`] gives topics that stand for every topic the filter can
//!   match, each decided as above for `subscribe`. By default (containment) the filter is
//!   denied if some topic is denied and granted only if every topic is allowed. An identity
//!   with `subscriptions filtered` is denied only if every topic is denied, and granted
//!   (deliveries then filtered by `receive`) if some topic is allowed.

use super::topic::{TopicError, check_filter, check_name, split_shared};
use super::{Decision, Reason, Request, Session, Verdict};
use crate::ast::{Action, Effect};
use crate::check::matches::match_topic;
use crate::check::{Checked, CheckedRule, IdentityId, LevelPattern, Piece, RuleId};
use crate::compile::Limits;
use std::collections::BTreeMap;

/// The level value no rule mentions: only `+`-like levels match it.
pub const FRESH: &str = "\u{E000}fresh";

/// What a free capture holds in a pattern level's witness: a private-use character that no
/// literal mentions, so the witness matches no more than the pattern forces it to.
pub const FILLER: &str = "\u{E001}";

/// Past this many representative topics a subscription is denied as too complex.
pub const MAX_REPRESENTATIVES: usize = 200_000;

/// Decides a request straight from the checked rules.
pub fn decide(checked: &Checked, session: &Session, request: Request<'_>) -> Decision {
    if let Some(rejected) = session.rejection() {
        return rejected;
    }
    let Some(identity) = session.identity_id() else {
        return deny_invalid(Reason::IdentityRejected);
    };
    let attrs = session.attrs();
    match request {
        Request::Connect => first_match(relevant_rules(checked, identity, Action::Connect)),
        Request::Publish { topic, retain } => {
            let publish = decide_topic(checked, identity, attrs, topic, Action::Publish);
            if !retain {
                return publish;
            }
            let retained = decide_topic(checked, identity, attrs, topic, Action::Retain);
            both_must_allow(publish, retained)
        }
        Request::Receive { topic } => {
            let filtered = checked.identities[identity.0 as usize].filtered_subscriptions;
            decide_receive(checked, identity, attrs, topic, filtered)
        }
        Request::Subscribe { filter } => {
            let filtered = checked.identities[identity.0 as usize].filtered_subscriptions;
            decide_subscribe(checked, identity, attrs, filter, filtered)
        }
    }
}

/// The rules that apply to `identity` and name `action`, in file order.
fn relevant_rules(checked: &Checked, identity: IdentityId, action: Action) -> Vec<&CheckedRule> {
    checked
        .rules
        .iter()
        .filter(|rule| rule.applies_to(identity) && rule.actions.contains(action))
        .collect()
}

/// Deny wins: the first matching deny, else the first matching allow, else none.
fn first_match(matching: Vec<&CheckedRule>) -> Decision {
    let lowest = |effect| {
        matching
            .iter()
            .filter(|r| r.effect == effect)
            .map(|r| r.id)
            .min()
    };
    match (lowest(Effect::Deny), lowest(Effect::Allow)) {
        (Some(rule), _) => by_rules(Verdict::ExplicitDeny, Some(rule)),
        (None, Some(rule)) => by_rules(Verdict::Allowed, Some(rule)),
        (None, None) => nothing_matched(),
    }
}

fn by_rules(verdict: Verdict, rule: Option<RuleId>) -> Decision {
    Decision {
        verdict,
        rule,
        reason: Reason::Rules,
    }
}

fn nothing_matched() -> Decision {
    Decision {
        verdict: Verdict::ImplicitDeny,
        rule: None,
        reason: Reason::NoRuleMatched,
    }
}

fn deny_invalid(reason: Reason) -> Decision {
    Decision {
        verdict: Verdict::ExplicitDeny,
        rule: None,
        reason,
    }
}

/// The deny an unacceptable topic or filter gets.
fn invalid_topic(error: TopicError) -> Decision {
    deny_invalid(match error {
        TopicError::TooLong | TopicError::TooManyLevels => Reason::TopicTooLarge,
        TopicError::UnsupportedShare => Reason::UnsupportedSharedSubscription,
        _ => Reason::InvalidTopic,
    })
}

/// A retained publish: both must allow. An explicit deny outranks an implicit one; between
/// equals the publish decision is the answer.
fn both_must_allow(publish: Decision, retain: Decision) -> Decision {
    let rank = |d: &Decision| match d.verdict {
        Verdict::ExplicitDeny => 0,
        Verdict::ImplicitDeny => 1,
        Verdict::Allowed => 2,
    };
    if rank(&retain) < rank(&publish) {
        retain
    } else {
        publish
    }
}

/// Publish, retain or receive on one topic name.
fn decide_topic(
    checked: &Checked,
    identity: IdentityId,
    attrs: &BTreeMap<String, String>,
    topic: &str,
    action: Action,
) -> Decision {
    if let Err(error) = check_name(topic, &Limits::default()) {
        return invalid_topic(error);
    }
    let mut rules = relevant_rules(checked, identity, action);
    rules.retain(|rule| rule_matches(rule, topic, attrs));
    first_match(rules)
}

/// A delivery: the receive rules decide, and under `subscriptions filtered` every
/// `deny subscribe` rule matching the topic denies it too.
fn decide_receive(
    checked: &Checked,
    identity: IdentityId,
    attrs: &BTreeMap<String, String>,
    topic: &str,
    filtered: bool,
) -> Decision {
    if let Err(error) = check_name(topic, &Limits::default()) {
        return invalid_topic(error);
    }
    let mut rules = relevant_rules(checked, identity, Action::Receive);
    if filtered {
        let subscribe = relevant_rules(checked, identity, Action::Subscribe);
        rules.extend(subscribe.into_iter().filter(|r| r.effect == Effect::Deny));
    }
    rules.retain(|rule| rule_matches(rule, topic, attrs));
    first_match(rules)
}

fn rule_matches(rule: &CheckedRule, topic: &str, attrs: &BTreeMap<String, String>) -> bool {
    rule.topic
        .as_ref()
        .is_some_and(|pattern| match_topic(pattern, topic, attrs).is_some())
}

/// One representative topic of a filter, decided.
struct Judged {
    /// Every wildcard level of the filter holds [`FRESH`] in this topic.
    fresh: bool,
    deny: Option<RuleId>,
    allow: Option<RuleId>,
}

impl Judged {
    fn allowed(&self) -> bool {
        self.deny.is_none() && self.allow.is_some()
    }
}

/// SUBSCRIBE: every representative topic of the filter decided as a topic.
fn decide_subscribe(
    checked: &Checked,
    identity: IdentityId,
    attrs: &BTreeMap<String, String>,
    filter: &str,
    filtered: bool,
) -> Decision {
    let valid = split_shared(filter)
        .and_then(|(_, inner)| check_filter(inner, &Limits::default()).map(|()| inner));
    let inner = match valid {
        Ok(inner) => inner,
        Err(error) => return invalid_topic(error),
    };
    let rules = relevant_rules(checked, identity, Action::Subscribe);
    let Some(topics) = representatives(inner, &rules, attrs) else {
        return deny_invalid(Reason::TooComplex);
    };
    let judged: Vec<Judged> = topics
        .iter()
        .map(|(topic, fresh)| {
            let lowest = |effect| {
                rules
                    .iter()
                    .filter(|r| r.effect == effect && rule_matches(r, topic, attrs))
                    .map(|r| r.id)
                    .min()
            };
            Judged {
                fresh: *fresh,
                deny: lowest(Effect::Deny),
                allow: lowest(Effect::Allow),
            }
        })
        .collect();
    if judged.is_empty() {
        nothing_matched()
    } else if filtered {
        filtered_verdict(&judged)
    } else {
        contained_verdict(&judged)
    }
}

/// Containment: denied (by the first deny of any topic) if some topic is denied; granted
/// if every topic is allowed, citing the first allow of the topics no rule mentions.
fn contained_verdict(judged: &[Judged]) -> Decision {
    if let Some(deny) = judged.iter().filter_map(|j| j.deny).min() {
        return by_rules(Verdict::ExplicitDeny, Some(deny));
    }
    if judged.iter().all(Judged::allowed) {
        let allow = judged
            .iter()
            .filter(|j| j.fresh)
            .filter_map(|j| j.allow)
            .min();
        return by_rules(Verdict::Allowed, allow);
    }
    nothing_matched()
}

/// Filtered: denied if every topic is denied, citing the first deny of the topics no rule
/// mentions; granted if some topic is allowed, citing the first allow of an allowed topic.
fn filtered_verdict(judged: &[Judged]) -> Decision {
    if judged.iter().all(|j| j.deny.is_some()) {
        let deny = judged
            .iter()
            .filter(|j| j.fresh)
            .filter_map(|j| j.deny)
            .min();
        return by_rules(Verdict::ExplicitDeny, deny);
    }
    let allowed = judged.iter().filter(|j| j.allowed());
    match allowed.filter_map(|j| j.allow).min() {
        Some(rule) => Decision {
            verdict: Verdict::Allowed,
            rule: Some(rule),
            reason: Reason::FilteredSubscription,
        },
        None => nothing_matched(),
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
/// [`level_pool`]: what each rule's level `j` matches with its captures filled with
/// [`FILLER`], and [`FRESH`]. At level `j` only the rules' level-`j` patterns look at the
/// value, so every other value behaves like one of these. At level 0, values starting with
/// `$` are left out: a leading wildcard never matches a `$` topic. A trailing `#` stands
/// for the parent topic (unless the filter is only `#`) and for 1 to `K` more levels drawn
/// the same way, `K` one more than the longest template: deeper topics are matched only by
/// `#` templates, exactly as the `K`-level ones are. The empty topic is left out: it is no
/// topic name.
pub fn representatives(
    filter: &str,
    rules: &[&CheckedRule],
    attrs: &BTreeMap<String, String>,
) -> Option<Vec<(String, bool)>> {
    let levels: Vec<&str> = filter.split('/').collect();
    let (prefix, hash) = match levels.split_last() {
        Some((&"#", prefix)) => (prefix, true),
        _ => (levels.as_slice(), false),
    };
    let wild = |j: usize| LevelChoice {
        values: level_pool(rules, j, attrs),
        wild: true,
    };
    let mut choices: Vec<LevelChoice> = Vec::new();
    for (j, level) in prefix.iter().enumerate() {
        choices.push(match *level {
            "+" => wild(j),
            literal => LevelChoice {
                values: vec![literal.to_string()],
                wild: false,
            },
        });
    }
    let mut lengths = vec![prefix.len()];
    if hash {
        let longest = rules.iter().filter_map(|r| r.topic.as_ref());
        let k = longest.map(|t| t.levels.len()).max().unwrap_or(0) + 1;
        let shortest = prefix.len().max(1);
        lengths = (shortest..=prefix.len() + k).collect();
        choices.extend((prefix.len()..prefix.len() + k).map(wild));
    }
    let count: usize = lengths
        .iter()
        .map(|&n| {
            choices[..n]
                .iter()
                .map(|c| c.values.len())
                .product::<usize>()
        })
        .sum();
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

/// The values a wildcard at level `j` takes: [`FRESH`], and every text some rule's level
/// `j` matches when its captures hold [`FILLER`] (all alternatives of a set). At level 0,
/// no value starting with `$`.
pub fn level_pool(
    rules: &[&CheckedRule],
    j: usize,
    attrs: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut pool = vec![FRESH.to_string()];
    let patterns = rules
        .iter()
        .filter_map(|r| r.topic.as_ref())
        .filter_map(|t| t.levels.get(j));
    for pattern in patterns {
        for value in witnesses(pattern, attrs) {
            let leading_dollar = j == 0 && value.starts_with('$');
            if !leading_dollar && !pool.contains(&value) {
                pool.push(value);
            }
        }
    }
    pool
}

/// Texts a level pattern matches: a literal; every combination of a pattern's pieces with
/// captures filled with [`FILLER`]. `+` gives none (every value matches it). A pattern
/// naming an attribute the session lacks gives none (it matches nothing).
fn witnesses(pattern: &LevelPattern, attrs: &BTreeMap<String, String>) -> Vec<String> {
    let pieces = match pattern {
        LevelPattern::Any { .. } => return Vec::new(),
        LevelPattern::Literal(text) => return vec![text.clone()],
        LevelPattern::Pieces(pieces) => pieces,
    };
    let mut texts = vec![String::new()];
    for piece in pieces {
        let options: Vec<&str> = match piece {
            Piece::Text(text) => vec![text.as_str()],
            Piece::Attr(name) => match attrs.get(name) {
                Some(value) => vec![value.as_str()],
                None => return Vec::new(),
            },
            Piece::Capture(_) => vec![FILLER],
            Piece::OneOf { values, .. } => values.iter().map(String::as_str).collect(),
        };
        texts = texts
            .iter()
            .flat_map(|t| options.iter().map(move |o| format!("{t}{o}")))
            .collect();
    }
    texts
}
