//! SUBSCRIBE: a filter is granted only if every topic it can match is allowed.
//!
//! The filter is walked through the automaton symbolically. A literal level steps like a
//! topic; `+` stands for every possible level at once; `#` for every continuation.
//!
//! * **Deny overlap** (existential): if some topic of the filter matches a deny rule, the
//!   filter is explicitly denied. `+` follows every edge; `#` searches the whole subtree.
//! * **Allow coverage** (universal): every topic of the filter must match an allow rule.
//!   For `+`, the binding case is a level value that no literal, set or pattern mentions
//!   (there are always infinitely many: every pattern needs some literal text), which only
//!   `+` edges accept; any mentioned value reaches a superset of those nodes, so covering
//!   the `+` edges is necessary and sufficient. `#` is covered only by a `#` allow.
//!
//! `$share/<group>/` is stripped first; a filter's leading `+` or `#` never reaches a `$`
//! topic. Identities with `subscriptions filtered` get the broader check instead: granted
//! when some topic of the filter is allowed, denied only when all of it is denied; their
//! deliveries are then filtered by `receive`. Work is bounded by
//! [`crate::compile::Limits::subscribe_budget`]; past it the answer is a deny.

use super::session::Session;
use super::topic::{check_filter, split_shared};
use super::walk::{States, invalid_topic, step};
use super::{Decision, Engine, Reason, Verdict};
use crate::ast::{Action, Effect};
use crate::automaton::{Accept, Automaton, Node, NodeId};
use crate::check::RuleId;
use smallvec::SmallVec;

const ACTION: Action = Action::Subscribe;

struct Containment<'a> {
    auto: &'a Automaton,
    session: &'a Session,
    levels: SmallVec<[&'a str; 16]>,
    budget: usize,
    exhausted: bool,
}

pub(crate) fn decide_subscribe(engine: &Engine, session: &Session, filter: &str) -> Decision {
    let inner = match split_shared(filter)
        .and_then(|(_, f)| check_filter(f, engine.limits()).map(|()| f))
    {
        Ok(inner) => inner,
        Err(e) => return invalid_topic(e),
    };
    let Some(id) = session.identity_id() else {
        return Decision::invalid(Reason::IdentityRejected);
    };
    let filtered = engine.checked().identities[id.0 as usize].filtered_subscriptions;
    let auto = engine.automaton();
    let mut cx = Containment {
        auto,
        session,
        levels: inner.split('/').collect(),
        budget: engine.limits().subscribe_budget,
        exhausted: false,
    };
    let root: States = SmallVec::from_elem(auto.roots[id.0 as usize], 1);
    let decision = if filtered {
        cx.filtered(&root)
    } else {
        cx.contained(&root)
    };
    if cx.exhausted {
        Decision::invalid(Reason::TooComplex)
    } else {
        decision
    }
}

fn decision(verdict: Verdict, rule: Option<RuleId>, reason: Reason) -> Decision {
    Decision {
        verdict,
        rule,
        reason,
    }
}

impl Containment<'_> {
    fn contained(&mut self, root: &States) -> Decision {
        if let Some(rule) = self.overlap(root, 0, Effect::Deny) {
            return decision(Verdict::ExplicitDeny, Some(rule), Reason::Rules);
        }
        match self.covered(root, 0, Effect::Allow) {
            Some(rule) => decision(Verdict::Allowed, Some(rule), Reason::Rules),
            None => decision(Verdict::ImplicitDeny, None, Reason::NoRuleMatched),
        }
    }

    fn filtered(&mut self, root: &States) -> Decision {
        if let Some(rule) = self.covered(root, 0, Effect::Deny) {
            return decision(Verdict::ExplicitDeny, Some(rule), Reason::Rules);
        }
        match self.overlap(root, 0, Effect::Allow) {
            Some(rule) => decision(Verdict::Allowed, Some(rule), Reason::FilteredSubscription),
            None => decision(Verdict::ImplicitDeny, None, Reason::NoRuleMatched),
        }
    }

    /// Charges `n` units of work; false once the budget is spent.
    fn spend(&mut self, n: usize) -> bool {
        if self.budget < n {
            self.exhausted = true;
            return false;
        }
        self.budget -= n;
        true
    }

    /// A root's `#` rules apply unless the filter's first level is a `$` literal.
    fn hash_applies(&self, i: usize) -> bool {
        i > 0 || !self.levels[0].starts_with('$')
    }

    /// Some rule of `effect` matching every topic of the filter from level `i`.
    fn covered(&mut self, states: &[NodeId], i: usize, effect: Effect) -> Option<RuleId> {
        if !self.spend(states.len()) {
            return None;
        }
        if self.hash_applies(i) {
            if let Some(rule) = live(self.auto, states)
                .filter_map(|n| first_rule(&n.hash, effect))
                .min()
            {
                return Some(rule);
            }
        }
        let Some(&level) = self.levels.get(i) else {
            return live(self.auto, states)
                .filter_map(|n| first_rule(&n.exact, effect))
                .min();
        };
        let mut next: States = SmallVec::new();
        match level {
            "#" => return None,
            "+" => next.extend(live(self.auto, states).filter_map(|n| n.any)),
            literal => {
                let first_dollar = i == 0 && literal.starts_with('$');
                for node in live(self.auto, states) {
                    step(
                        self.auto,
                        self.session,
                        node,
                        literal,
                        first_dollar,
                        &mut next,
                    );
                }
            }
        }
        if next.is_empty() {
            None
        } else {
            self.covered(&next, i + 1, effect)
        }
    }

    /// The first rule of `effect` matching some topic of the filter from level `i`.
    fn overlap(&mut self, states: &[NodeId], i: usize, effect: Effect) -> Option<RuleId> {
        if !self.spend(states.len()) {
            return None;
        }
        let mut best = if self.hash_applies(i) {
            live(self.auto, states)
                .filter_map(|n| first_rule(&n.hash, effect))
                .min()
        } else {
            None
        };
        let Some(&level) = self.levels.get(i) else {
            let exact = live(self.auto, states)
                .filter_map(|n| first_rule(&n.exact, effect))
                .min();
            return min(best, exact);
        };
        let mut next: States = SmallVec::new();
        match level {
            "#" => {
                let below = self.subtree(states, i == 0, effect);
                let here = if i > 0 {
                    live(self.auto, states)
                        .filter_map(|n| first_rule(&n.exact, effect))
                        .min()
                } else {
                    None
                };
                return min(best, min(below, here));
            }
            "+" => {
                for node in live(self.auto, states) {
                    self.every_edge(node, i == 0, &mut next);
                }
            }
            literal => {
                let first_dollar = i == 0 && literal.starts_with('$');
                for node in live(self.auto, states) {
                    step(
                        self.auto,
                        self.session,
                        node,
                        literal,
                        first_dollar,
                        &mut next,
                    );
                }
            }
        }
        if !next.is_empty() {
            best = min(best, self.overlap(&next, i + 1, effect));
        }
        best
    }

    /// Every child some level value can reach (at the first level, not `$` values).
    fn every_edge(&self, node: &Node, first: bool, out: &mut States) {
        let auto = self.auto;
        for (text, next) in node.literal.sorted() {
            if !(first && text.starts_with('$')) {
                out.push(next);
            }
        }
        for (set, next) in &node.one_of {
            if !first || auto.sets[set.0 as usize].has_plain_value {
                out.push(*next);
            }
        }
        for (slot, next) in &node.slot {
            let dollar_only =
                first && crate::compile::dollar_only(&auto.slots[slot.0 as usize].pieces);
            if !dollar_only && self.session.slots[slot.0 as usize].can_match() {
                out.push(*next);
            }
        }
        for (pattern, next) in &node.pattern {
            if !(first && auto.patterns[pattern.0 as usize].dollar_only) {
                out.push(*next);
            }
        }
        out.extend(node.any);
    }

    /// The first rule of `effect` strictly below `states` (one level or more deeper).
    fn subtree(&mut self, states: &[NodeId], first: bool, effect: Effect) -> Option<RuleId> {
        let mut stack: Vec<NodeId> = Vec::new();
        let mut children: States = SmallVec::new();
        for node in live(self.auto, states) {
            self.every_edge(node, first, &mut children);
        }
        stack.extend(children.drain(..));
        let mut best = None;
        while let Some(id) = stack.pop() {
            if !self.spend(1) {
                return None;
            }
            let node = self.auto.node(id);
            if !node.actions_below.contains(ACTION) {
                continue;
            }
            best = min(
                best,
                min(
                    first_rule(&node.exact, effect),
                    first_rule(&node.hash, effect),
                ),
            );
            self.every_edge(node, false, &mut children);
            stack.extend(children.drain(..));
        }
        best
    }
}

/// The nodes among `states` that hold some subscribe rule at or below them.
fn live<'a>(auto: &'a Automaton, states: &'a [NodeId]) -> impl Iterator<Item = &'a Node> + 'a {
    states
        .iter()
        .map(move |s| auto.node(*s))
        .filter(|n| n.actions_below.contains(ACTION))
}

/// The first rule of `effect` for subscribe among `accepts`.
fn first_rule(accepts: &[Accept], effect: Effect) -> Option<RuleId> {
    accepts
        .iter()
        .find(|a| a.effect == effect && a.actions.contains(ACTION))
        .map(|a| a.rule)
}

fn min(a: Option<RuleId>, b: Option<RuleId>) -> Option<RuleId> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// A sentence for explanations of subscribe decisions.
pub(crate) fn detail(
    _engine: &Engine,
    _session: &Session,
    filter: &str,
    decision: &Decision,
) -> String {
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
        (Verdict::ImplicitDeny, _) => {
            format!(
                "not every topic `{filter}` can match is allowed for subscribe (subscribe means containment)"
            )
        }
        (_, reason) => reason.to_string(),
    }
}
