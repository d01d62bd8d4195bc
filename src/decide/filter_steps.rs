//! The steps the two containment paths of a subscribe share: where a `+` level leads
//! from a node (`every_edge`), the first subscribe rule of an effect in an accept list,
//! the earlier of two rules, and a decision naming its rule.
//!
//! Used by `subscribe` (the recursive containment search) and `plus_levels` (its loops for
//! filters of `+` levels and a trailing `#`), so both take exactly the same steps. Costs: one pass over a node's
//! edges or an accept list; nothing is allocated. It must never decide on its own: the
//! callers own the order of the searches and the budget.

use super::session::Session;
use super::walk::Targets;
use super::{Decision, Reason, Verdict};
use crate::ast::{Action, Effect};
use crate::automaton::{Accept, Automaton, Guard, Node, NodeId};
use crate::check::RuleId;

/// The action every step here is about.
pub(super) const ACTION: Action = Action::Subscribe;

/// A decision by `rule` (or by none).
pub(super) fn decision(verdict: Verdict, rule: Option<RuleId>, reason: Reason) -> Decision {
    Decision {
        verdict,
        rule,
        reason,
    }
}

/// Every child of `node` some level value can reach (at the first level, not `$` values;
/// when `whole_topic`, not the empty level: the empty topic is no topic name) that holds a
/// subscribe rule of `effect` at or below it.
pub(super) fn every_edge(
    auto: &Automaton,
    session: &Session,
    node: &Node,
    first: bool,
    whole_topic: bool,
    effect: Effect,
    out: &mut impl Targets,
) {
    let holds = |next: NodeId| auto.node(next).below().of(effect).contains(ACTION);
    for (text, next) in node.literal().iter() {
        let unreachable = (first && text.starts_with('$')) || (whole_topic && text.is_empty());
        if !unreachable && holds(next) {
            out.push(next);
        }
    }
    for &(guard, next) in node.guarded() {
        let reachable = !first
            || match guard {
                Guard::OneOf(set) => auto.sets[set.0 as usize].has_plain_value,
                Guard::Slot(slot) => !session.slots().get(slot).starts_with('$'),
                Guard::Pattern(pattern) => !auto.patterns[pattern.0 as usize].dollar_only,
            };
        if reachable && holds(next) {
            out.push(next);
        }
    }
    if let Some(next) = node.any().filter(|&next| holds(next)) {
        out.push(next);
    }
}

/// The first rule of `effect` for subscribe among `accepts`.
pub(super) fn first_rule(accepts: &[Accept], effect: Effect) -> Option<RuleId> {
    accepts
        .iter()
        .find(|a| a.effect == effect && a.actions.contains(ACTION))
        .map(|a| a.rule)
}

/// The earlier of two rules (file order), either or both possibly absent.
pub(super) fn min(a: Option<RuleId>, b: Option<RuleId>) -> Option<RuleId> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
