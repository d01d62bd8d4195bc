//! The reference interpreter: the obviously-correct oracle for the compiled engine.
//!
//! It binds identities and evaluates the checked rules one by one, straight from the
//! language reference (`docs/policy-language.md`), with no sharing and no cleverness.
//! Tests compare it with [`crate::decide::Engine::bind`] and [`crate::decide::Engine::decide`] on random
//! policies and requests (`tests/differential.rs`) and on every policy test case
//! (`crate::testcases`). It must never use the compiled engine's code for anything the
//! engine decides: not `compile`, `automaton`, `decide::{walk, subscribe, topic, session}`
//! or `check::matches`, or the comparison would prove nothing. It has its own topic
//! validation ([`topic`]), template matching ([`template`]), client-id matching and value
//! grammar ([`bind`]). From the checked policy it takes only what the checker decided:
//! rules, templates, sets, identities and the separator characters each attribute may not
//! contain.
//!
//! Cost: slow but never exponential. A decision is O(rules × topic length × longest piece)
//! for publish, retain and receive; a subscription decides up to [`MAX_REPRESENTATIVES`]
//! representative topics one by one. Binding is O(client template × client id length).
//! [`Reference::new`] hashes each set once so that a level holding one of 10,000 values is
//! one lookup.
//!
//! Semantics:
//! * a session whose binding was refused denies everything: `client-id-mismatch` when the
//!   client id does not match its template, `identity-rejected` otherwise;
//! * a topic or filter that is not acceptable ([`topic`]) is denied before any rule is
//!   consulted, with `invalid-topic`, `topic-too-large` or
//!   `unsupported-shared-subscription`;
//! * connect, publish, retain, receive: a rule matches when it applies to the session's
//!   identity, names the action and (except connect) its template matches the topic. Deny
//!   wins: the deciding rule is the first (lowest id) matching deny, else the first
//!   matching allow, else no rule matched. A retained publish needs both `publish` and
//!   `retain`; between two denials the explicit one is reported, between equals the
//!   publish decision;
//! * receive for an identity with `subscriptions filtered`: `deny ... subscribe` rules
//!   that match the topic count as matching denies too, because a filtered identity's
//!   broad subscription is granted without them. So the decision is an explicit deny whose
//!   deciding rule is the first (lowest id) matching deny among its `receive` and
//!   `subscribe` deny rules, reason `rules` — the same shape as any other deny;
//! * subscribe: see [`subscribe`]: containment by default, `filtered` when the identity
//!   says so. Granted containment cites the first allow of the topics no rule mentions;
//!   a filtered grant cites the first allow of an allowed topic; a filtered deny (every
//!   topic denied) cites the first deny of the topics no rule mentions.

pub mod bind;
pub mod subscribe;
pub mod template;
pub mod topic;

pub use bind::{Binding, Bound, MAX_VALUE_BYTES, Refusal, match_client};
pub use subscribe::{FILLER, FRESH, Judged, MAX_REPRESENTATIVES, level_pool};

use super::{Decision, Reason, Request, Verdict};
use crate::ast::{Action, Effect};
use crate::check::{Checked, CheckedRule, IdentityId, RuleId};
use crate::identity::Identity;
use std::collections::BTreeMap;
use template::Template;

/// The reference interpreter over one checked policy.
#[derive(Debug)]
pub struct Reference<'c> {
    checked: &'c Checked,
    /// Each rule's template, by rule id (`None` for connect rules).
    templates: Vec<Option<Template<'c>>>,
}

impl<'c> Reference<'c> {
    /// The oracle over a checked policy.
    pub fn new(checked: &'c Checked) -> Reference<'c> {
        let templates = checked
            .rules
            .iter()
            .map(|rule| rule.topic.as_ref().map(Template::new))
            .collect();
        Reference { checked, templates }
    }

    /// The checked policy it interprets.
    pub fn checked(&self) -> &'c Checked {
        self.checked
    }

    /// Binds a verified identity and the CONNECT client id (see [`bind`]).
    pub fn bind(&self, identity: &Identity, client_id: &str) -> Binding {
        bind::bind(self.checked, identity, client_id)
    }

    /// Decides one request for a binding.
    pub fn decide(&self, binding: &Binding, request: Request<'_>) -> Decision {
        let bound = match binding {
            Binding::Bound(bound) => bound,
            Binding::Refused(refusal) => return refused(refusal.reason()),
        };
        let (identity, attrs) = (bound.identity, &bound.attrs);
        let on_topic = |topic: &str, action: Action| {
            first_match(self.matching(identity, action, Some(topic), attrs))
        };
        match request {
            Request::Connect => first_match(self.matching(identity, Action::Connect, None, attrs)),
            Request::Publish { topic, retain } => {
                if let Some(reason) = topic::name_refusal(topic) {
                    return refused(reason);
                }
                let publish = on_topic(topic, Action::Publish);
                if retain {
                    both_must_allow(publish, on_topic(topic, Action::Retain))
                } else {
                    publish
                }
            }
            Request::Receive { topic } => {
                if let Some(reason) = topic::name_refusal(topic) {
                    return refused(reason);
                }
                let mut rules = self.matching(identity, Action::Receive, Some(topic), attrs);
                if self.filtered(identity) {
                    let subscribe = self.matching(identity, Action::Subscribe, Some(topic), attrs);
                    rules.extend(subscribe.into_iter().filter(|r| r.effect == Effect::Deny));
                }
                first_match(rules)
            }
            Request::Subscribe { filter } => self.decide_subscribe(identity, attrs, filter),
        }
    }

    /// Does rule `rule`'s template match `topic` for a session with `attrs`?
    pub fn rule_matches(
        &self,
        rule: RuleId,
        topic: &str,
        attrs: &BTreeMap<String, String>,
    ) -> bool {
        self.templates[rule.0 as usize]
            .as_ref()
            .is_some_and(|template| template.matches(topic, attrs))
    }

    /// The representative topics of a valid (unshared) filter for these rules (see
    /// [`subscribe::representatives`]); `None` past [`MAX_REPRESENTATIVES`].
    pub fn representatives(
        &self,
        filter: &str,
        rules: &[RuleId],
        attrs: &BTreeMap<String, String>,
    ) -> Option<Vec<(String, bool)>> {
        let templates: Vec<&Template<'_>> = rules
            .iter()
            .filter_map(|r| self.templates[r.0 as usize].as_ref())
            .collect();
        subscribe::representatives(filter, &templates, attrs)
    }

    fn filtered(&self, identity: IdentityId) -> bool {
        self.checked.identities[identity.0 as usize].filtered_subscriptions
    }

    /// The rules that apply to `identity`, name `action` and match `topic` (all of them for
    /// connect), in file order.
    fn matching(
        &self,
        identity: IdentityId,
        action: Action,
        topic: Option<&str>,
        attrs: &BTreeMap<String, String>,
    ) -> Vec<&'c CheckedRule> {
        let checked: &'c Checked = self.checked;
        checked
            .rules
            .iter()
            .filter(|rule| rule.applies_to(identity) && rule.actions.contains(action))
            .filter(|rule| topic.is_none_or(|t| self.rule_matches(rule.id, t, attrs)))
            .collect()
    }

    /// SUBSCRIBE: every representative topic of the filter decided as a topic.
    fn decide_subscribe(
        &self,
        identity: IdentityId,
        attrs: &BTreeMap<String, String>,
        filter: &str,
    ) -> Decision {
        let judged_filter = match topic::filter_to_judge(filter) {
            Ok(inner) => inner,
            Err(reason) => return refused(reason),
        };
        let rules: Vec<&CheckedRule> = self
            .checked
            .rules
            .iter()
            .filter(|rule| rule.applies_to(identity) && rule.actions.contains(Action::Subscribe))
            .collect();
        let ids: Vec<RuleId> = rules.iter().map(|r| r.id).collect();
        let Some(topics) = self.representatives(judged_filter, &ids, attrs) else {
            return refused(Reason::TooComplex);
        };
        let judged: Vec<Judged> = topics
            .iter()
            .map(|(topic, fresh)| {
                let lowest = |effect| {
                    rules
                        .iter()
                        .filter(|r| r.effect == effect && self.rule_matches(r.id, topic, attrs))
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
        } else if self.filtered(identity) {
            filtered_verdict(&judged)
        } else {
            contained_verdict(&judged)
        }
    }
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
        (Some(rule), _) => by_rule(Verdict::ExplicitDeny, Some(rule)),
        (None, Some(rule)) => by_rule(Verdict::Allowed, Some(rule)),
        (None, None) => nothing_matched(),
    }
}

fn by_rule(verdict: Verdict, rule: Option<RuleId>) -> Decision {
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

/// An explicit deny that no rule decided: a refused session, topic or filter.
fn refused(reason: Reason) -> Decision {
    Decision {
        verdict: Verdict::ExplicitDeny,
        rule: None,
        reason,
    }
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

/// Containment: denied (by the first deny of any topic) if some topic is denied; granted
/// if every topic is allowed, citing the first allow of the topics no rule mentions.
fn contained_verdict(judged: &[Judged]) -> Decision {
    if let Some(deny) = judged.iter().filter_map(|j| j.deny).min() {
        return by_rule(Verdict::ExplicitDeny, Some(deny));
    }
    if judged.iter().all(Judged::allowed) {
        let allow = judged
            .iter()
            .filter(|j| j.fresh)
            .filter_map(|j| j.allow)
            .min();
        return by_rule(Verdict::Allowed, allow);
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
        return by_rule(Verdict::ExplicitDeny, deny);
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

#[cfg(test)]
mod tests {
    /// The oracle's sources name none of the compiled engine's matching code.
    #[test]
    fn the_oracle_shares_no_matching_code_with_the_engine() {
        let sources = [
            ("mod.rs", include_str!("mod.rs")),
            ("bind.rs", include_str!("bind.rs")),
            ("subscribe.rs", include_str!("subscribe.rs")),
            ("template.rs", include_str!("template.rs")),
            ("topic.rs", include_str!("topic.rs")),
        ];
        let forbidden = [
            "crate::compile",
            "crate::automaton",
            "decide::walk",
            "decide::subscribe",
            "decide::topic",
            "decide::session",
            "super::walk",
            "super::subscribe::",
            "super::topic::",
            "super::session",
            "check::matches",
            "crate::value",
            "mqtt::topic",
        ];
        for (file, text) in sources {
            let code = text.lines().filter(|l| {
                let l = l.trim_start();
                !l.starts_with("//") && !l.starts_with('"')
            });
            for line in code {
                for name in forbidden {
                    assert!(!line.contains(name), "reference/{file} uses {name}: {line}");
                }
            }
        }
    }
}
