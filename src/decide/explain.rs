//! Explanations: the full answer to a request, for people and logs.
//!
//! [`explain`] decides the request with the engine, then gathers every matching rule with
//! its `file:line` and text, the levels the deciding rule captured, and a sentence for the
//! cases a rule list cannot say (bind errors, subscribe containment, a retain that no rule
//! allows). It is off the hot path and may allocate; it never changes a decision.

use super::denial::{self, Nearest};
use super::session::Session;
use super::walk::{AllMatches, collect, decide_topic, filtered, walk};
use super::{Decision, Engine, Explanation, Reason, Request, RuleRef, Verdict};
use crate::ast::{Action, Effect};
use crate::check::RuleId;
use crate::mqtt::topic::{check_name, split_shared};

fn rule_ref(engine: &Engine, id: RuleId) -> RuleRef {
    let rule = engine.checked().rule(id);
    RuleRef {
        id,
        label: rule.label.as_deref().map(str::to_string),
        effect: rule.effect,
        loc: rule.loc.clone(),
        text: rule.text().to_string(),
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
                .and_then(|p| crate::check::matches::match_topic(p, topic, &session.attrs()))
                .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let missing = match request {
        Request::Publish {
            topic,
            retain: true,
        } if decision.verdict == Verdict::ImplicitDeny && session.error().is_none() => {
            [Action::Publish, Action::Retain]
                .into_iter()
                .filter(|a| !decide_topic(engine, session, topic, *a).is_allowed())
                .collect()
        }
        _ => Vec::new(),
    };
    let (witness, nearest) = denial(engine, session, request, &decision);
    let detail = match (session.error(), request) {
        (Some(error), _) => Some(error.to_string()),
        (None, Request::Subscribe { filter }) => Some(detail(engine, session, filter, &decision)),
        (None, Request::Publish { retain: true, .. }) if !missing.is_empty() => {
            Some(retain_detail(&missing).to_string())
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
        witness,
        nearest,
        missing,
    }
}

/// The sentence for a retained publish denied for want of `missing` grants.
fn retain_detail(missing: &[Action]) -> &'static str {
    match missing {
        [Action::Retain] => {
            "publish is allowed, but no rule allows retain on this topic (a retained publish needs both)"
        }
        [Action::Publish] => {
            "retain is allowed, but no rule allows publish on this topic (a retained publish needs both)"
        }
        _ => "neither publish nor retain is allowed on this topic (a retained publish needs both)",
    }
}

/// The witness topic of a denied subscribe, and the nearest allow rule of an implicit
/// deny (see [`super::denial`]).
fn denial(
    engine: &Engine,
    session: &Session,
    request: Request<'_>,
    decision: &Decision,
) -> (Option<String>, Option<Nearest>) {
    if session.error().is_some() || decision.is_allowed() {
        return (None, None);
    }
    let cite = |id| rule_ref(engine, id);
    let (topic, action) = match request {
        Request::Connect => return (None, None),
        Request::Subscribe { filter } => match split_shared(filter) {
            Ok((_, inner)) => (inner, Action::Subscribe),
            Err(_) => return (None, None),
        },
        Request::Publish { topic, retain } => {
            let retain_missing =
                retain && decide_topic(engine, session, topic, Action::Publish).is_allowed();
            (
                topic,
                if retain_missing {
                    Action::Retain
                } else {
                    Action::Publish
                },
            )
        }
        Request::Receive { topic } => (topic, Action::Receive),
    };
    let witness = match (request, decision.verdict, decision.rule) {
        (Request::Subscribe { .. }, Verdict::ImplicitDeny, _) => {
            denial::uncovered_topic(engine, session, topic)
        }
        (Request::Subscribe { .. }, Verdict::ExplicitDeny, Some(deny)) => {
            denial::denied_topic(engine, session, topic, deny)
        }
        _ => None,
    };
    let nearest = (decision.verdict == Verdict::ImplicitDeny)
        .then(|| denial::nearest(engine, session, topic, action, cite))
        .flatten();
    (witness, nearest)
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
