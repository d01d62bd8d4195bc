//! Explanations: the full answer to a request, for people and logs.
//!
//! [`explain`] decides the request with the engine, then gathers every matching rule with
//! its `file:line` and text, the levels the deciding rule captured, and a sentence for the
//! cases a rule list cannot say (bind errors, subscribe containment, a retain that no rule
//! allows). It is off the hot path and may allocate; it never changes a decision.

use super::session::Session;
use super::walk::{AllMatches, collect, decide_topic, filtered, walk};
use super::{Decision, Engine, Explanation, Reason, Request, RuleRef, Verdict};
use crate::ast::{Action, Effect};
use crate::check::RuleId;
use crate::mqtt::topic::check_name;

fn rule_ref(engine: &Engine, id: RuleId) -> RuleRef {
    let rule = engine.checked().rule(id);
    RuleRef {
        id,
        label: rule.label.clone(),
        effect: rule.effect,
        loc: rule.loc.clone(),
        text: rule.text.clone(),
    }
}

/// Every rule for `action` matching a topic, in file order.
fn all_matches(engine: &Engine, session: &Session, topic: &str, action: Action) -> Vec<RuleId> {
    let Some(id) = session.identity_id() else {
        return Vec::new();
    };
    let auto = engine.automaton();
    let mut all = AllMatches::default();
    if action == Action::Connect {
        collect(&auto.connect[id.0 as usize], action, &mut all);
    } else if check_name(topic, engine.limits().topic_bounds()).is_ok() {
        walk(
            auto,
            session,
            auto.roots[id.0 as usize],
            topic,
            action,
            &mut all,
        );
    }
    all.rules.sort_unstable();
    all.rules
}

/// The full explanation of a request.
pub(crate) fn explain(engine: &Engine, session: &Session, request: Request<'_>) -> Explanation {
    let decision = engine.decide(session, request);
    let mut matched: Vec<RuleId> = match request {
        Request::Connect => all_matches(engine, session, "", Action::Connect),
        Request::Publish { topic, retain } => {
            let mut rules = all_matches(engine, session, topic, Action::Publish);
            if retain {
                rules.extend(all_matches(engine, session, topic, Action::Retain));
            }
            rules
        }
        Request::Receive { topic } => {
            let mut rules = all_matches(engine, session, topic, Action::Receive);
            if filtered(engine, session) {
                let subscribe = all_matches(engine, session, topic, Action::Subscribe);
                let denies = subscribe
                    .into_iter()
                    .filter(|r| engine.checked().rule(*r).effect == Effect::Deny);
                rules.extend(denies);
            }
            rules
        }
        Request::Subscribe { .. } => decision.rule.into_iter().collect(),
    };
    matched.sort_unstable();
    matched.dedup();
    let refs: Vec<RuleRef> = matched.into_iter().map(|r| rule_ref(engine, r)).collect();
    let (denies, allows): (Vec<RuleRef>, Vec<RuleRef>) =
        refs.into_iter().partition(|r| r.effect == Effect::Deny);
    let deciding = decision.rule.map(|r| rule_ref(engine, r));
    let captures = match (decision.rule, request) {
        (Some(rule), Request::Publish { topic, .. } | Request::Receive { topic }) => {
            let pattern = engine.checked().rule(rule).topic.as_ref();
            pattern
                .and_then(|p| crate::check::matches::match_topic(p, topic, session.attrs()))
                .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let detail = match (session.error(), request) {
        (Some(error), _) => Some(error.to_string()),
        (None, Request::Subscribe { filter }) => Some(detail(engine, session, filter, &decision)),
        (
            None,
            Request::Publish {
                topic,
                retain: true,
            },
        ) if decision.verdict == Verdict::ImplicitDeny
            && decide_topic(engine, session, topic, Action::Publish).is_allowed() =>
        {
            Some("publish is allowed, but no rule allows retain on this topic".to_string())
        }
        (None, Request::Receive { .. })
            if deciding_action(engine, decision.rule) == Some(Action::Subscribe) =>
        {
            Some(
                "a `deny subscribe` rule matches this topic: under `subscriptions filtered`, what subscribe denies is never delivered"
                    .to_string(),
            )
        }
        _ => None,
    };
    Explanation {
        identity: session.kind().to_string(),
        client_id: session.client_id().to_string(),
        action: request.action(),
        topic: request.topic().map(str::to_string),
        decision,
        deciding,
        denies,
        allows,
        captures,
        detail,
    }
}

/// `Subscribe` when the deciding rule is a subscribe rule that does not name `receive`.
fn deciding_action(engine: &Engine, rule: Option<RuleId>) -> Option<Action> {
    let actions = engine.checked().rule(rule?).actions;
    (actions.contains(Action::Subscribe) && !actions.contains(Action::Receive))
        .then_some(Action::Subscribe)
}

/// A sentence for explanations of subscribe decisions.
pub(crate) fn detail(
    engine: &Engine,
    session: &Session,
    filter: &str,
    decision: &Decision,
) -> String {
    let filtered = filtered(engine, session);
    match (decision.verdict, decision.reason) {
        (Verdict::Allowed, Reason::FilteredSubscription) => {
            format!("`{filter}` overlaps allowed topics; each delivery is checked against receive")
        }
        (Verdict::Allowed, _) => {
            format!("every topic `{filter}` can match is allowed for subscribe")
        }
        (Verdict::ExplicitDeny, Reason::Rules) => {
            format!("some topic `{filter}` can match is denied")
        }
        (Verdict::ImplicitDeny, _) if filtered => {
            format!("no topic `{filter}` can match is allowed for subscribe")
        }
        (Verdict::ImplicitDeny, _) => {
            format!(
                "not every topic `{filter}` can match is allowed for subscribe (subscribe means containment)"
            )
        }
        (_, reason) => reason.to_string(),
    }
}
