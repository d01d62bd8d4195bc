//! SUBSCRIBE's fast path for a filter whose only wildcards are `+` levels (no `#`), for
//! identities without `subscriptions filtered`.
//!
//! The containment search (`subscribe::by_containment`) runs two searches, each a
//! recursion keeping one `SmallVec` of nodes per level: the deny overlap (a `+` follows
//! every edge that leads to a subscribe deny) and the allow coverage (a `+` follows the
//! `+` edge only). Without `#` neither ever branches: each holds one set of nodes per
//! level, so both are loops here over two [`Live`] lists, the levels cut as they are
//! walked instead of collected first. Every step, filter and accept list is the general
//! path's, in the same order, so the decision (and the first rule cited) is the same.
//!
//! Cost: the nodes live at each level, like a publish walk (twice: once per search).
//! The work is counted as the general path charges it to
//! [`crate::compile::Limits::subscribe_budget`]; when that is more than the budget, the
//! general path decides (it alone says where it runs out). Never used for a filter with
//! `#` or for `subscriptions filtered` identities: those keep the general path.

use super::filter_steps::{ACTION, decision, every_edge, first_rule, min};
use super::walk::{Live, Targets, step};
use super::{Decision, Reason, Verdict};
use crate::ast::Effect;
use crate::automaton::{Automaton, NodeId};
use crate::check::RuleId;
use crate::mqtt::topic::levels;

use super::session::Session;

/// The containment decision for `filter` (valid, `$share/` stripped, wildcards only `+`
/// levels), or `None` when the general path could have run out of `budget` on it.
pub(super) fn plus_levels(
    auto: &Automaton,
    session: &Session,
    root: NodeId,
    filter: &str,
    budget: usize,
) -> Option<Decision> {
    let mut work = 0;
    let mut lists = (Live::new(), Live::new());
    if let Some(rule) = first_deny(auto, session, root, filter, &mut lists, &mut work) {
        return (work <= budget)
            .then(|| decision(Verdict::ExplicitDeny, Some(rule), Reason::Rules));
    }
    let allow = coverage(auto, session, root, filter, &mut lists, &mut work);
    (work <= budget).then(|| match allow {
        Some(rule) => decision(Verdict::Allowed, Some(rule), Reason::Rules),
        None => decision(Verdict::ImplicitDeny, None, Reason::NoRuleMatched),
    })
}

/// The deny overlap: the first subscribe deny some topic of the filter matches. A `+`
/// follows every edge whose subtree holds a subscribe deny (`every_edge`); a literal
/// steps like a topic. Adds the nodes it visited, level by level, to `work`.
fn first_deny(
    auto: &Automaton,
    session: &Session,
    root: NodeId,
    filter: &str,
    (first, second): &mut (Live, Live),
    work: &mut usize,
) -> Option<RuleId> {
    let dollar = filter.starts_with('$');
    first.clear();
    first.push(root);
    let (mut states, mut next) = (first, second);
    let mut best = None;
    for (i, level) in levels(filter).enumerate() {
        let first_dollar = i == 0 && dollar;
        // `+` alone: the empty level would be the empty topic, which is no topic name.
        let whole_topic = i == 0 && filter.len() == 1;
        let live = states.as_slice();
        *work += live.len();
        next.clear();
        for &s in live {
            let node = auto.node(s);
            if !node.below().of(Effect::Deny).contains(ACTION) {
                continue;
            }
            if !first_dollar {
                best = min(best, first_rule(node.hash(), Effect::Deny));
            }
            if level == "+" {
                every_edge(auto, session, node, i == 0, whole_topic, Effect::Deny, next);
            } else {
                step(auto, session, node, level, first_dollar, next);
            }
        }
        std::mem::swap(&mut states, &mut next);
        if states.as_slice().is_empty() {
            return best;
        }
    }
    let live = states.as_slice();
    *work += live.len();
    for &s in live {
        let node = auto.node(s);
        if node.below().of(Effect::Deny).contains(ACTION) {
            let here = min(
                first_rule(node.hash(), Effect::Deny),
                first_rule(node.exact(), Effect::Deny),
            );
            best = min(best, here);
        }
    }
    best
}

/// The allow coverage: the first subscribe allow met on the way, if every topic of the
/// filter matches one. A `+` follows only `+` edges (a value no rule mentions is the
/// binding case: any other reaches a superset of its nodes), so the filter's topics are
/// one path, covered as soon as a rule is met on it (a `#` allow on the way covers
/// everything below it). Adds the nodes it visited, level by level, to `work`.
fn coverage(
    auto: &Automaton,
    session: &Session,
    root: NodeId,
    filter: &str,
    (first, second): &mut (Live, Live),
    work: &mut usize,
) -> Option<RuleId> {
    let dollar = filter.starts_with('$');
    first.clear();
    first.push(root);
    let (mut states, mut next) = (first, second);
    let mut best = None;
    for (i, level) in levels(filter).enumerate() {
        let first_dollar = i == 0 && dollar;
        let live = states.as_slice();
        *work += live.len();
        next.clear();
        for &s in live {
            let node = auto.node(s);
            if !node.actions_below().contains(ACTION) {
                continue;
            }
            if !first_dollar {
                best = min(best, first_rule(node.hash(), Effect::Allow));
            }
            if !node.below().of(Effect::Allow).contains(ACTION) {
                continue;
            }
            if level == "+" {
                if let Some(any) = node.any() {
                    next.push(any);
                }
            } else {
                step(auto, session, node, level, first_dollar, next);
            }
        }
        std::mem::swap(&mut states, &mut next);
        if states.as_slice().is_empty() {
            // Covered only by a `#` allow met on the way.
            return best;
        }
    }
    let live = states.as_slice();
    *work += live.len();
    let mut ending = None;
    for &s in live {
        let node = auto.node(s);
        if node.actions_below().contains(ACTION) {
            let here = min(
                first_rule(node.hash(), Effect::Allow),
                first_rule(node.exact(), Effect::Allow),
            );
            ending = min(ending, here);
        }
    }
    min(best, ending)
}
