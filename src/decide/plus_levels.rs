//! SUBSCRIBE's fast path for a filter whose wildcards are `+` levels and at most a
//! trailing `#`, for identities without `subscriptions filtered`.
//!
//! The containment search (`subscribe::by_containment`) runs two searches, each a
//! recursion keeping one `SmallVec` of nodes per level: the deny overlap (a `+` follows
//! every edge that leads to a subscribe deny, a `#` searches the subtree) and the allow
//! coverage (a `+`, and each level a `#` adds, follows the `+` edge only). For these
//! filters neither ever branches: each holds one set of nodes per level, so both are loops
//! here over two [`Live`] lists, the levels cut as they are walked instead of collected
//! first; the deny overlap's `#` is one depth-first pass over the nodes that lead to a
//! subscribe deny, the coverage's `#` a chain of `+` edges. An identity with no subscribe
//! deny skips the deny loop (the general path visits its root and finds nothing). Every
//! step, filter and accept list is the general path's, in the same order, so the decision
//! (and the first rule cited) is the same.
//!
//! Cost: the nodes live at each level, like a publish walk (twice: once per search), plus
//! under a `#` the nodes that lead to a subscribe deny and the chain of `+` edges. The
//! work is counted as the general path charges it to
//! [`crate::compile::Limits::subscribe_budget`] (the `#` passes stop as soon as it is past
//! the budget); past it the general path decides (it alone says where it runs out). Never
//! used for `subscriptions filtered` identities: those keep the general path.

use super::filter_steps::{ACTION, decision, every_edge, first_rule, min};
use super::walk::{Live, States, Targets, step};
use super::{Decision, Reason, Verdict};
use crate::ast::Effect;
use crate::automaton::{Accept, Automaton, Node, NodeId};
use crate::check::RuleId;
use crate::mqtt::topic::{Levels, levels_before_hash};

use super::session::Session;

/// The containment decision for `filter` (valid, `$share/` stripped, wildcards only `+`
/// levels and at most a trailing `#`), or `None` when the general path could have run out
/// of `budget` on it.
pub(super) fn plus_levels(
    auto: &Automaton,
    session: &Session,
    root: NodeId,
    filter: &str,
    budget: usize,
) -> Option<Decision> {
    let mut work = 0;
    let mut lists = (Live::new(), Live::new());
    let (body, hash) = levels_before_hash(filter);
    let filter = Filter {
        text: filter,
        body,
        hash,
    };
    let deny = first_deny(auto, session, root, &filter, &mut lists, &mut work, budget)?;
    if let Some(rule) = deny {
        return (work <= budget)
            .then(|| decision(Verdict::ExplicitDeny, Some(rule), Reason::Rules));
    }
    let allow = coverage(auto, session, root, &filter, &mut lists, &mut work, budget)?;
    (work <= budget).then(|| match allow {
        (true, Some(rule)) => decision(Verdict::Allowed, Some(rule), Reason::Rules),
        _ => decision(Verdict::ImplicitDeny, None, Reason::NoRuleMatched),
    })
}

/// A filter as the loops take it: its text, its levels before a trailing `#`, and whether
/// it has one.
struct Filter<'a> {
    text: &'a str,
    body: Levels<'a>,
    hash: bool,
}

/// The deny overlap: the first subscribe deny some topic of the filter matches. A `+`
/// follows every edge whose subtree holds a subscribe deny (`every_edge`); a literal
/// steps like a topic. Adds the nodes it visited, level by level, to `work`.
fn first_deny(
    auto: &Automaton,
    session: &Session,
    root: NodeId,
    filter: &Filter<'_>,
    (first, second): &mut (Live, Live),
    work: &mut usize,
    budget: usize,
) -> Option<Option<RuleId>> {
    if !auto.node(root).below().of(Effect::Deny).contains(ACTION) {
        // No subscribe deny at all (the common case): the general path visits the root at
        // the first level and finds nothing to follow, whatever the level is.
        *work += 1;
        return Some(None);
    }
    let dollar = filter.text.starts_with('$');
    first.clear();
    first.push(root);
    let (mut states, mut next) = (first, second);
    let mut best = None;
    let (hash, text) = (filter.hash, filter.text);
    for (i, level) in filter.body.clone().enumerate() {
        let first_dollar = i == 0 && dollar;
        // `+` alone: the empty level would be the empty topic, which is no topic name.
        let whole_topic = i == 0 && text.len() == 1;
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
            return Some(best);
        }
    }
    let live = states.as_slice();
    *work += live.len();
    if hash {
        let (first, parent) = (text == "#", has_parent(text));
        let below = deny_subtree(auto, session, live, first, parent, work, budget)?;
        return Some(min(best, below));
    }
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
    Some(best)
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
    filter: &Filter<'_>,
    (first, second): &mut (Live, Live),
    work: &mut usize,
    budget: usize,
) -> Option<(bool, Option<RuleId>)> {
    let dollar = filter.text.starts_with('$');
    first.clear();
    first.push(root);
    let (mut states, mut next) = (first, second);
    let mut best = None;
    let (hash, text) = (filter.hash, filter.text);
    for (i, level) in filter.body.clone().enumerate() {
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
            return Some((best.is_some(), best));
        }
    }
    let live = states.as_slice();
    *work += live.len();
    if hash {
        // A `#` allow met before covers it all, else every depth below must be covered.
        let parent = has_parent(text);
        let (all, rule) = continuations(auto, states, next, parent, work, budget)?;
        return Some((best.is_some() || all, min(best, rule)));
    }
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
    let best = min(best, ending);
    Some((best.is_some(), best))
}

/// Whether a trailing `#` stands for the parent topic too: not when it is the whole
/// filter, nor after the one empty level (`/#`: the empty topic is no topic name).
fn has_parent(filter: &str) -> bool {
    filter != "#" && filter != "/#"
}

/// The deny overlap at a trailing `#` (`first`: it is the first level; `parent`: see
/// [`has_parent`]): the `#` denies of the `live` nodes, their exact denies when there is a
/// parent topic, and every deny strictly below them — each node that leads to a subscribe
/// deny visited once, depth first, charged one unit to `work`. `None` as soon as `work`
/// is past `budget` (the general path then decides, and runs out).
#[inline(never)]
fn deny_subtree(
    auto: &Automaton,
    session: &Session,
    live: &[NodeId],
    first: bool,
    parent: bool,
    work: &mut usize,
    budget: usize,
) -> Option<Option<RuleId>> {
    let mut best = None;
    let mut pending = States::new();
    for &s in live {
        let node = auto.node(s);
        if !node.below().of(Effect::Deny).contains(ACTION) {
            continue;
        }
        best = min(best, first_rule(node.hash(), Effect::Deny));
        if parent {
            best = min(best, first_rule(node.exact(), Effect::Deny));
        }
        every_edge(
            auto,
            session,
            node,
            first,
            false,
            Effect::Deny,
            &mut pending,
        );
    }
    while let Some(id) = pending.pop() {
        *work += 1;
        if *work > budget {
            return None;
        }
        let node = auto.node(id);
        best = min(best, first_rule(node.exact(), Effect::Deny));
        best = min(best, first_rule(node.hash(), Effect::Deny));
        every_edge(
            auto,
            session,
            node,
            false,
            false,
            Effect::Deny,
            &mut pending,
        );
    }
    Some(best)
}

/// The allow coverage at a trailing `#` (`states` live at its level, `parent` as for
/// [`deny_subtree`]): every depth from the parent topic down is a topic of the filter,
/// the deeper ones reached over `+` edges only, and each must be matched by an exact
/// allow at that depth or a `#` allow at or above it, possibly by different rules.
/// Whether all are, and the first allow met. `None` as soon as `work` is past `budget`.
#[inline(never)]
fn continuations(
    auto: &Automaton,
    states: &mut Live,
    next: &mut Live,
    parent: bool,
    work: &mut usize,
    budget: usize,
) -> Option<(bool, Option<RuleId>)> {
    let first_of = |live: &Live, accepts: fn(&Node) -> &[Accept]| {
        live.as_slice()
            .iter()
            .map(|&s| auto.node(s))
            .filter(|n| n.actions_below().contains(ACTION))
            .filter_map(|n| first_rule(accepts(n), Effect::Allow))
            .min()
    };
    let mut best = first_of(states, Node::hash);
    let mut hash_seen = best.is_some();
    let mut all = true;
    if parent {
        let exact = first_of(states, Node::exact);
        all &= hash_seen || exact.is_some();
        best = min(best, exact);
    }
    let (mut states, mut next) = (states, next);
    loop {
        next.clear();
        for &s in states.as_slice() {
            let node = auto.node(s);
            if node.below().of(Effect::Allow).contains(ACTION) {
                if let Some(any) = node.any() {
                    next.push(any);
                }
            }
        }
        std::mem::swap(&mut states, &mut next);
        let depth = states.as_slice().len();
        if depth == 0 {
            return Some((all && hash_seen, best));
        }
        *work += depth;
        if *work > budget {
            return None;
        }
        let hash = first_of(states, Node::hash);
        let exact = first_of(states, Node::exact);
        hash_seen |= hash.is_some();
        all &= hash_seen || exact.is_some();
        best = min(best, min(hash, exact));
    }
}
