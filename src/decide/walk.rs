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
use crate::automaton::{Accept, Automaton, Guard, Node, NodeId, same_bytes};
use crate::check::RuleId;
use crate::mqtt::topic::{TopicError, check_name, levels, name_levels};
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

/// Where [`step`] puts the nodes it reaches.
pub(crate) trait Targets {
    fn push(&mut self, node: NodeId);
}

impl Targets for States {
    #[inline]
    fn push(&mut self, node: NodeId) {
        SmallVec::push(self, node);
    }
}

/// How many live nodes a [`Live`] holds in place.
const LIVE_INLINE: usize = 8;

/// The live nodes of one level of a walk: up to [`LIVE_INLINE`] in place, all of them in
/// a vector past that (rare: in a trie a level holds more only where many edges match).
/// A push is one compare and one store, where a `SmallVec`'s also checks whether it has
/// spilled; the walk pushes once per edge followed, so that is most of what it does.
pub(crate) struct Live {
    len: usize,
    inline: [NodeId; LIVE_INLINE],
    spilled: Vec<NodeId>,
}

impl Live {
    pub(crate) fn new() -> Live {
        Live {
            len: 0,
            inline: [NodeId(0); LIVE_INLINE],
            spilled: Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[NodeId] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }

    #[inline]
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.spilled.clear();
    }

    #[cold]
    fn spill(&mut self, node: NodeId) {
        if self.spilled.is_empty() {
            self.spilled.extend_from_slice(&self.inline);
        }
        self.spilled.push(node);
    }
}

impl Targets for Live {
    #[inline]
    fn push(&mut self, node: NodeId) {
        if self.len < LIVE_INLINE {
            self.inline[self.len] = node;
            self.len += 1;
        } else {
            self.spill(node);
        }
    }
}

/// Follows every edge of `node` that matches `level` into `out`.
#[inline]
pub(crate) fn step(
    auto: &Automaton,
    session: &Session,
    node: &Node,
    level: &str,
    first_dollar: bool,
    out: &mut impl Targets,
) {
    if let Some(next) = node.literal().get(level) {
        out.push(next);
    }
    for &(guard, next) in node.guarded() {
        let matched = match guard {
            Guard::OneOf(set) => auto.sets[set.0 as usize].contains(level),
            Guard::Slot(slot) => same_bytes(session.slots().bytes(slot), level.as_bytes()),
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
/// Returns the work done: how many states were live, summed over the levels and the end.
pub(crate) fn walk(
    auto: &Automaton,
    session: &Session,
    root: NodeId,
    topic: &str,
    action: Action,
    c: &mut impl Collector,
) -> usize {
    let dollar = topic.starts_with('$');
    walk_levels(auto, session, root, dollar, &mut levels(topic), action, c)
}

/// [`walk`] over levels as they are cut (`dollar`: the first starts with `$`). Stops
/// taking levels once no node is live.
pub(crate) fn walk_levels<'t>(
    auto: &Automaton,
    session: &Session,
    root: NodeId,
    dollar: bool,
    levels: &mut impl Iterator<Item = &'t str>,
    action: Action,
    c: &mut impl Collector,
) -> usize {
    // Two buffers, swapped by reference after each level: swapping the vectors themselves
    // would copy both (40 bytes each) per level.
    let (mut first, mut second) = (Live::new(), Live::new());
    first.push(root);
    let (mut states, mut next) = (&mut first, &mut second);
    let mut work = 0;
    for (i, level) in levels.enumerate() {
        let first_dollar = i == 0 && dollar;
        let live = states.as_slice();
        work += live.len();
        next.clear();
        for &s in live {
            let node = auto.node(s);
            if !node.actions_below().contains(action) {
                continue;
            }
            if !first_dollar {
                collect(node.hash(), action, c);
            }
            step(auto, session, node, level, first_dollar, next);
        }
        std::mem::swap(&mut states, &mut next);
        if states.as_slice().is_empty() {
            return work;
        }
    }
    let live = states.as_slice();
    for &s in live {
        let node = auto.node(s);
        collect(node.exact(), action, c);
        collect(node.hash(), action, c);
    }
    work + live.len()
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
    let bounds = engine.limits().topic_bounds();
    let mut levels = match name_levels(topic, bounds) {
        Ok(levels) => levels,
        Err(e) => return invalid(e),
    };
    let Some(id) = session.identity_id() else {
        return match levels.finish(bounds) {
            Ok(()) => Decision::invalid(Reason::IdentityRejected),
            Err(e) => invalid(e),
        };
    };
    // The topic is checked as it is walked (one pass over its bytes); what the walk found
    // counts only once the whole topic is known to be valid.
    let auto = engine.automaton();
    let mut first = FirstMatch::default();
    let root = auto.roots[id.0 as usize];
    let dollar = topic.starts_with('$');
    walk_levels(auto, session, root, dollar, &mut levels, action, &mut first);
    match levels.finish(bounds) {
        Ok(()) => first.decision(),
        Err(e) => invalid(e),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_nodes_spill_past_their_inline_room_and_come_back() {
        let mut live = Live::new();
        let many: Vec<NodeId> = (0..20).map(NodeId).collect();
        for &node in &many {
            live.push(node);
        }
        assert_eq!(live.as_slice(), &many[..]);
        live.clear();
        assert!(live.as_slice().is_empty());
        for &node in &many[..3] {
            live.push(node);
        }
        assert_eq!(live.as_slice(), &many[..3]);
        for &node in &many[3..9] {
            live.push(node);
        }
        assert_eq!(live.as_slice(), &many[..9], "one past the inline room");
    }
}
