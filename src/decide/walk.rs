//! The hot path: walking a topic through the automaton, level by level.
//!
//! A walk keeps the set of live nodes (a trie, so no node is ever reached twice) and, for
//! each level, follows every edge that matches: literal, set, slot, pattern, `+`. `#`
//! accepts are collected on the way, exact accepts at the end. Subtrees that hold no rule
//! for the requested action are skipped. A `$` topic's first level is never matched by
//! `+`, `#` or a leading capture. The walk allocates nothing for fewer than nine live
//! nodes.

use super::session::Session;
use super::{Decision, Engine, Reason, Verdict};
use crate::ast::{Action, Effect};
use crate::automaton::{Accept, Automaton, Guard, Node, NodeId, same_text};
use crate::check::RuleId;
use crate::mqtt::topic::{TopicError, check_name, levels};
use smallvec::SmallVec;

/// Receives the accepts a walk finds.
pub(crate) trait Collector {
    fn accept(&mut self, accept: &Accept);
}

/// Keeps only the first deny and the first allow (rule ids are file order).
#[derive(Default)]
pub(crate) struct FirstMatch {
    deny: Option<RuleId>,
    allow: Option<RuleId>,
}

impl Collector for FirstMatch {
    fn accept(&mut self, a: &Accept) {
        let slot = match a.effect {
            Effect::Deny => &mut self.deny,
            Effect::Allow => &mut self.allow,
        };
        if slot.is_none_or(|r| a.rule < r) {
            *slot = Some(a.rule);
        }
    }
}

impl FirstMatch {
    pub(crate) fn decision(&self) -> Decision {
        match (self.deny, self.allow) {
            (Some(rule), _) => Decision {
                verdict: Verdict::ExplicitDeny,
                rule: Some(rule),
                reason: Reason::Rules,
            },
            (None, Some(rule)) => Decision {
                verdict: Verdict::Allowed,
                rule: Some(rule),
                reason: Reason::Rules,
            },
            (None, None) => Decision {
                verdict: Verdict::ImplicitDeny,
                rule: None,
                reason: Reason::NoRuleMatched,
            },
        }
    }
}

/// Keeps every matching rule.
#[derive(Default)]
pub(crate) struct AllMatches {
    pub(crate) rules: Vec<RuleId>,
}

impl Collector for AllMatches {
    fn accept(&mut self, a: &Accept) {
        if !self.rules.contains(&a.rule) {
            self.rules.push(a.rule);
        }
    }
}

pub(crate) type States = SmallVec<[NodeId; 8]>;

/// Follows every edge of `node` that matches `level` into `out`.
#[inline]
pub(crate) fn step(
    auto: &Automaton,
    session: &Session,
    node: &Node,
    level: &str,
    first_dollar: bool,
    out: &mut States,
) {
    if let Some(next) = node.literal().get(level) {
        out.push(next);
    }
    for &(guard, next) in node.guarded() {
        let matched = match guard {
            Guard::OneOf(set) => auto.sets[set.0 as usize].values.contains(level),
            Guard::Slot(slot) => same_text(session.slots().get(slot), level),
            Guard::Pattern(pattern) => {
                auto.patterns[pattern.0 as usize].matches(level, &auto.sets, session.slots())
            }
        };
        if matched {
            out.push(next);
        }
    }
    if !first_dollar {
        if let Some(next) = node.any() {
            out.push(next);
        }
    }
}

pub(crate) fn collect(accepts: &[Accept], action: Action, c: &mut impl Collector) {
    for a in accepts {
        if a.actions.contains(action) {
            c.accept(a);
        }
    }
}

/// Walks a (valid) topic name from `root`, reporting every rule for `action` that matches.
pub(crate) fn walk(
    auto: &Automaton,
    session: &Session,
    root: NodeId,
    topic: &str,
    action: Action,
    c: &mut impl Collector,
) {
    let dollar = topic.starts_with('$');
    let mut states: States = SmallVec::new();
    states.push(root);
    let mut next: States = SmallVec::new();
    for (i, level) in levels(topic).enumerate() {
        let first_dollar = i == 0 && dollar;
        next.clear();
        for &s in &states {
            let node = auto.node(s);
            if !node.actions_below().contains(action) {
                continue;
            }
            if !first_dollar {
                collect(node.hash(), action, c);
            }
            step(auto, session, node, level, first_dollar, &mut next);
        }
        std::mem::swap(&mut states, &mut next);
        if states.is_empty() {
            return;
        }
    }
    for &s in &states {
        let node = auto.node(s);
        collect(node.exact(), action, c);
        collect(node.hash(), action, c);
    }
}

fn invalid(error: TopicError) -> Decision {
    Decision::invalid(match error {
        TopicError::TooLong | TopicError::TooManyLevels => Reason::TopicTooLarge,
        TopicError::UnsupportedShare => Reason::UnsupportedSharedSubscription,
        _ => Reason::InvalidTopic,
    })
}

pub(crate) fn invalid_topic(error: TopicError) -> Decision {
    invalid(error)
}

/// Publish-like decision for one action on a topic name.
pub(crate) fn decide_topic(
    engine: &Engine,
    session: &Session,
    topic: &str,
    action: Action,
) -> Decision {
    if let Err(e) = check_name(topic, engine.limits().topic_bounds()) {
        return invalid(e);
    }
    let Some(id) = session.identity_id() else {
        return Decision::invalid(Reason::IdentityRejected);
    };
    let auto = engine.automaton();
    let mut first = FirstMatch::default();
    walk(
        auto,
        session,
        auto.roots[id.0 as usize],
        topic,
        action,
        &mut first,
    );
    first.decision()
}

/// Keeps only the deny rules it is given.
pub(crate) struct DeniesOnly<'c, C>(pub(crate) &'c mut C);

impl<C: Collector> Collector for DeniesOnly<'_, C> {
    fn accept(&mut self, accept: &Accept) {
        if accept.effect == Effect::Deny {
            self.0.accept(accept);
        }
    }
}

/// True when the session's identity has `subscriptions filtered`.
pub(crate) fn filtered(engine: &Engine, session: &Session) -> bool {
    session
        .identity_id()
        .is_some_and(|id| engine.checked().identities[id.0 as usize].filtered_subscriptions)
}

/// A delivery. Under `subscriptions filtered` a subscription may be broader than what
/// `subscribe` allows, so a delivery is also denied by every `deny subscribe` rule that
/// matches its topic: a deny always bites.
pub(crate) fn decide_receive(engine: &Engine, session: &Session, topic: &str) -> Decision {
    if !filtered(engine, session) {
        return decide_topic(engine, session, topic, Action::Receive);
    }
    if let Err(e) = check_name(topic, engine.limits().topic_bounds()) {
        return invalid(e);
    }
    let Some(id) = session.identity_id() else {
        return Decision::invalid(Reason::IdentityRejected);
    };
    let auto = engine.automaton();
    let root = auto.roots[id.0 as usize];
    let mut first = FirstMatch::default();
    walk(auto, session, root, topic, Action::Receive, &mut first);
    walk(
        auto,
        session,
        root,
        topic,
        Action::Subscribe,
        &mut DeniesOnly(&mut first),
    );
    first.decision()
}

/// A publish; a retained publish must also be allowed for `retain`.
pub(crate) fn decide_publish(
    engine: &Engine,
    session: &Session,
    topic: &str,
    retain: bool,
) -> Decision {
    let publish = decide_topic(engine, session, topic, Action::Publish);
    if !retain {
        return publish;
    }
    combine(
        publish,
        decide_topic(engine, session, topic, Action::Retain),
    )
}

/// Both must allow; an explicit deny outranks an implicit one.
pub(crate) fn combine(a: Decision, b: Decision) -> Decision {
    match (a.verdict, b.verdict) {
        (Verdict::ExplicitDeny, _) => a,
        (_, Verdict::ExplicitDeny) => b,
        (Verdict::ImplicitDeny, _) => a,
        (_, Verdict::ImplicitDeny) => b,
        _ => a,
    }
}

/// CONNECT: the client id was matched at bind; connect rules decide the rest.
pub(crate) fn decide_connect(engine: &Engine, session: &Session) -> Decision {
    let Some(id) = session.identity_id() else {
        return Decision::invalid(Reason::IdentityRejected);
    };
    let mut first = FirstMatch::default();
    collect(
        &engine.automaton().connect[id.0 as usize],
        Action::Connect,
        &mut first,
    );
    first.decision()
}
