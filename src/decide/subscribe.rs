//! SUBSCRIBE: a filter is granted only if every topic it can match is allowed.
//!
//! The filter is walked through the automaton symbolically. A literal level steps like a
//! topic; `+` stands for every possible level at once; `#` for every continuation, the
//! parent topic included (except for a filter that is only `#`). The empty topic is no
//! topic name, so `+` alone never stands for it.
//!
//! * **Deny overlap** (existential): if some topic of the filter matches a deny rule, the
//!   filter is explicitly denied, citing the first such rule. `+` follows every edge; `#`
//!   searches the whole subtree.
//! * **Allow coverage** (universal): every topic of the filter must match an allow rule.
//!   For `+`, the binding case is a level value that no literal, set or pattern mentions
//!   (there are always infinitely many: every pattern needs some literal text), which only
//!   `+` edges accept; any mentioned value reaches a superset of those nodes, so covering
//!   the `+` edges is necessary and sufficient. Under `#` every depth is such a topic, and
//!   each depth may be covered by a different rule (`a` and `a/+/#` together cover `a/#`).
//!
//! A filter without wildcards selects one topic, so (for identities without `subscriptions
//! filtered`) it is decided by the publish walk for the subscribe action (`one_topic`):
//! the same answer for a third fewer instructions. One whose wildcards are `+` levels and at
//! most a trailing `#` never branches in either search (the deny overlap's `#` subtree is
//! one depth-first pass, the coverage's `#` a chain of `+` edges), so (for the same
//! identities) both run as loops over one set of nodes per level (`super::plus_levels`),
//! a sixth to a quarter fewer instructions. So the recursive search below decides only
//! for `subscriptions filtered` identities and where a fast path says the budget could
//! run out.
//!
//! `$share/<group>/` is stripped first; a filter's leading `+` or `#` never reaches a `$`
//! topic. Identities with `subscriptions filtered` get the broader check instead: denied
//! when every topic of the filter is denied (coverage by deny rules); granted when some
//! topic is allowed, i.e. matched by an allow rule and by no deny rule. That search tries,
//! for each `+`, every value the current edges mention and one that none mentions. Their
//! deliveries are then filtered by `receive`. Work is bounded by
//! [`crate::compile::Limits::subscribe_budget`]; past it the answer is a deny.

use super::filter_steps::{ACTION, decision, every_edge, first_rule, min};
use super::plus_levels::plus_levels;
use super::session::Session;
use super::walk::{FirstMatch, States, invalid_topic, step, walk};
use super::{Decision, Engine, Reason, Verdict};
use crate::ast::Effect;
use crate::automaton::{Accept, Automaton, Guard, Node, NodeId};
use crate::check::matches::AttrValues;
use crate::check::{Piece, RuleId};
use crate::mqtt::topic::{check_filter_wildcards, levels, split_shared};
use smallvec::SmallVec;

struct Containment<'a> {
    auto: &'a Automaton,
    session: &'a Session,
    levels: SmallVec<[&'a str; 16]>,
    budget: usize,
    exhausted: bool,
}

pub(crate) fn decide_subscribe(engine: &Engine, session: &Session, filter: &str) -> Decision {
    let (inner, wildcards) = match split_shared(filter).and_then(|(_, f)| {
        check_filter_wildcards(f, engine.limits().topic_bounds()).map(|w| (f, w))
    }) {
        Ok(checked) => checked,
        Err(e) => return invalid_topic(e),
    };
    let Some(id) = session.identity_id() else {
        return Decision::invalid(Reason::IdentityRejected);
    };
    let filtered = engine.checked().identities[id.0 as usize].filtered_subscriptions;
    let auto = engine.automaton();
    let root = auto.roots[id.0 as usize];
    let budget = engine.limits().subscribe_budget;
    if !filtered {
        // A valid filter's `#` can only be its whole last level.
        let fast = if wildcards {
            plus_levels(auto, session, root, inner, budget)
        } else {
            one_topic(auto, session, root, inner, budget)
        };
        if let Some(decision) = fast {
            return decision;
        }
    }
    by_containment(auto, session, root, inner, budget, filtered)
}

/// The fast path for a filter without wildcards (and an identity without `subscriptions
/// filtered`): such a filter selects exactly one topic, its own text, so "some topic of
/// the filter matches a deny rule" and "every topic of the filter matches an allow rule"
/// both mean "the topic matches the rule", and the containment decision is the publish
/// walk's for the subscribe action: the first deny, else the first allow, else none.
/// (Both take the same steps: the walk's first level skips `#` rules and wildcard edges
/// on a `$` topic exactly as the containment search's does.)
///
/// `None` when the containment search could have run out of `budget` on this filter (its
/// two searches each visit at most the states the walk visits): then only the general
/// path can say whether it would have, so it decides.
fn one_topic(
    auto: &Automaton,
    session: &Session,
    root: NodeId,
    topic: &str,
    budget: usize,
) -> Option<Decision> {
    let mut first = FirstMatch::default();
    let work = walk(auto, session, root, topic, ACTION, &mut first);
    (work.saturating_mul(2) <= budget).then(|| first.decision())
}

/// The general path: containment of the filter's topics (see the module docs).
fn by_containment(
    auto: &Automaton,
    session: &Session,
    root: NodeId,
    inner: &str,
    budget: usize,
    filtered: bool,
) -> Decision {
    let mut cx = Containment {
        auto,
        session,
        levels: levels(inner).collect(),
        budget,
        exhausted: false,
    };
    let root: States = SmallVec::from_elem(root, 1);
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

impl Containment<'_> {
    fn contained(&mut self, root: &States) -> Decision {
        if let Some(rule) = self.overlap(root, 0, Effect::Deny) {
            return decision(Verdict::ExplicitDeny, Some(rule), Reason::Rules);
        }
        match self.covered(root, 0, Effect::Allow) {
            (true, rule) => decision(Verdict::Allowed, rule, Reason::Rules),
            (false, _) => decision(Verdict::ImplicitDeny, None, Reason::NoRuleMatched),
        }
    }

    fn filtered(&mut self, root: &States) -> Decision {
        if let (true, rule) = self.covered(root, 0, Effect::Deny) {
            return decision(Verdict::ExplicitDeny, rule, Reason::Rules);
        }
        match self.some_allowed(root, 0, Seen::default(), false) {
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

    /// A `#` at level `i` also stands for the parent topic, unless there is none (the filter
    /// is only `#`) or it is the empty topic (`/#`), which is no topic name.
    fn has_parent(&self, i: usize) -> bool {
        i > 0 && !(i == 1 && self.levels[0].is_empty())
    }

    /// Whether every topic of the filter from level `i` matches a rule of `effect`, and the
    /// first such rule met on the way.
    ///
    /// Only the topics whose wildcard levels hold a value no rule mentions are followed
    /// (`+` edges only): any other value reaches a superset of their nodes, so they are
    /// the binding case. Under `#`, each depth is a topic of its own: every depth must be
    /// matched (a `#` rule on the way covers all deeper ones), possibly by different rules.
    fn covered(&mut self, states: &[NodeId], i: usize, effect: Effect) -> (bool, Option<RuleId>) {
        if !self.spend(states.len()) {
            return (false, None);
        }
        let here = if self.hash_applies(i) {
            first_of(self.auto, states, &|n| n.hash(), effect)
        } else {
            None
        };
        let Some(&level) = self.levels.get(i) else {
            let exact = first_of(self.auto, states, &|n| n.exact(), effect);
            return (here.is_some() || exact.is_some(), min(here, exact));
        };
        let mut next: States = SmallVec::new();
        match level {
            "#" => return self.covered_continuations(states, i, here, effect),
            "+" => next.extend(live_for(self.auto, states, effect).filter_map(Node::any)),
            literal => {
                let first_dollar = i == 0 && literal.starts_with('$');
                for node in live_for(self.auto, states, effect) {
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
        let (below, rule) = if next.is_empty() {
            (false, None)
        } else {
            self.covered(&next, i + 1, effect)
        };
        (here.is_some() || below, min(here, rule))
    }

    /// [`Self::covered`] for a trailing `#` at level `i`: the parent topic (unless the
    /// filter is only `#`), then one more level at a time over `+` edges until no node is
    /// left. `hashed`: the first `#` rule of `effect` already met at `states`.
    fn covered_continuations(
        &mut self,
        states: &[NodeId],
        i: usize,
        hashed: Option<RuleId>,
        effect: Effect,
    ) -> (bool, Option<RuleId>) {
        let mut best = hashed;
        let mut hash_seen = hashed.is_some();
        let mut all = true;
        if self.has_parent(i) {
            let exact = first_of(self.auto, states, &|n| n.exact(), effect);
            all &= hash_seen || exact.is_some();
            best = min(best, exact);
        }
        let mut current: States = states.iter().copied().collect();
        loop {
            let next: States = live_for(self.auto, &current, effect)
                .filter_map(Node::any)
                .collect();
            if next.is_empty() || !self.spend(next.len()) {
                return (all && hash_seen, best);
            }
            let hash = first_of(self.auto, &next, &|n| n.hash(), effect);
            let exact = first_of(self.auto, &next, &|n| n.exact(), effect);
            hash_seen |= hash.is_some();
            all &= hash_seen || exact.is_some();
            best = min(best, min(hash, exact));
            current = next;
        }
    }

    /// The first allow rule of some topic of the filter (from level `i`, `states` reached)
    /// that no deny rule matches. `seen`: what the levels so far decided for every topic
    /// extending them; `empty`: the levels so far are the one empty level.
    ///
    /// A `+` level tries each value the edges of `states` mention (every alternative, and
    /// patterns with their captures filled with a character no rule mentions) and one value
    /// no edge mentions: any other value reaches the same nodes as one of these.
    fn some_allowed(
        &mut self,
        states: &[NodeId],
        i: usize,
        seen: Seen,
        empty: bool,
    ) -> Option<RuleId> {
        if !self.spend(states.len()) {
            return None;
        }
        let mut seen = seen;
        if self.hash_applies(i) {
            seen.absorb(self.auto, states, |n| n.hash());
        }
        if seen.denied {
            return None;
        }
        let Some(&level) = self.levels.get(i) else {
            return if empty {
                None
            } else {
                seen.ending(self.auto, states)
            };
        };
        let values = match level {
            "#" => {
                let parent = if i > 0 && !empty {
                    seen.ending(self.auto, states)
                } else {
                    None
                };
                return min(parent, self.some_allowed_below(states, i, seen));
            }
            "+" => self.level_values(states, i == 0),
            literal => vec![literal.to_string()],
        };
        let mut best = None;
        for value in values {
            let next = self.step_all(states, &value, i == 0);
            best = min(
                best,
                self.some_allowed(&next, i + 1, seen, i == 0 && value.is_empty()),
            );
        }
        best
    }

    /// [`Self::some_allowed`] over the levels a trailing `#` at level `j` adds: one or more,
    /// each taking the values a `+` would.
    fn some_allowed_below(&mut self, states: &[NodeId], j: usize, seen: Seen) -> Option<RuleId> {
        let mut best = None;
        for value in self.level_values(states, j == 0) {
            let next = self.step_all(states, &value, j == 0);
            if !self.spend(next.len() + 1) {
                return None;
            }
            let mut seen = seen;
            seen.absorb(self.auto, &next, |n| n.hash());
            if seen.denied {
                continue;
            }
            let empty = j == 0 && value.is_empty();
            if live(self.auto, &next).next().is_none() {
                best = min(best, seen.allowed());
                continue;
            }
            if !empty {
                best = min(best, seen.ending(self.auto, &next));
            }
            best = min(best, self.some_allowed_below(&next, j + 1, seen));
        }
        best
    }

    /// Every node one level value reaches from `states`.
    fn step_all(&self, states: &[NodeId], value: &str, first: bool) -> States {
        let first_dollar = first && value.starts_with('$');
        let mut next: States = SmallVec::new();
        for node in live(self.auto, states) {
            step(
                self.auto,
                self.session,
                node,
                value,
                first_dollar,
                &mut next,
            );
        }
        next
    }

    /// The values worth trying for a wildcard level at `states`: what their edges mention,
    /// and [`UNMENTIONED`]. At the first level, none starting with `$`.
    /// Witnesses of pattern levels are charged to the budget: a level mixing large sets
    /// exhausts it (a deny) instead of being enumerated.
    fn level_values(&mut self, states: &[NodeId], first: bool) -> Vec<String> {
        let mut values = vec![UNMENTIONED.to_string()];
        for node in live(self.auto, states) {
            // Sorted and deduplicated below: the order here does not matter.
            values.extend(node.literal().iter().map(|(t, _)| t.to_string()));
            for &(guard, _) in node.guarded() {
                match guard {
                    Guard::OneOf(set) => {
                        let set = &self.auto.sets[set.0 as usize];
                        values.extend(set.iter().map(str::to_string));
                    }
                    Guard::Slot(slot) => values.push(self.session.slots().get(slot).to_string()),
                    Guard::Pattern(pattern) => {
                        let pieces = &self.auto.patterns[pattern.0 as usize].pieces;
                        let Some(texts) = witnesses(pieces, &self.session.attrs(), self.budget)
                        else {
                            self.exhausted = true;
                            self.budget = 0;
                            return values;
                        };
                        self.budget -= texts.len();
                        values.extend(texts);
                    }
                }
            }
        }
        values.sort_unstable();
        values.dedup();
        values.retain(|v| !(first && v.starts_with('$')));
        values
    }

    /// The first rule of `effect` matching some topic of the filter from level `i`.
    fn overlap(&mut self, states: &[NodeId], i: usize, effect: Effect) -> Option<RuleId> {
        if !self.spend(states.len()) {
            return None;
        }
        let mut best = if self.hash_applies(i) {
            live_for(self.auto, states, effect)
                .filter_map(|n| first_rule(n.hash(), effect))
                .min()
        } else {
            None
        };
        let Some(&level) = self.levels.get(i) else {
            let exact = live_for(self.auto, states, effect)
                .filter_map(|n| first_rule(n.exact(), effect))
                .min();
            return min(best, exact);
        };
        let mut next: States = SmallVec::new();
        match level {
            "#" => {
                let below = self.subtree(states, i == 0, effect);
                let here = if self.has_parent(i) {
                    live_for(self.auto, states, effect)
                        .filter_map(|n| first_rule(n.exact(), effect))
                        .min()
                } else {
                    None
                };
                return min(best, min(below, here));
            }
            "+" => {
                let only_level = i == 0 && self.levels.len() == 1;
                for node in live_for(self.auto, states, effect) {
                    every_edge(
                        self.auto,
                        self.session,
                        node,
                        i == 0,
                        only_level,
                        effect,
                        &mut next,
                    );
                }
            }
            literal => {
                let first_dollar = i == 0 && literal.starts_with('$');
                for node in live_for(self.auto, states, effect) {
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

    /// The first rule of `effect` strictly below `states` (one level or more deeper).
    fn subtree(&mut self, states: &[NodeId], first: bool, effect: Effect) -> Option<RuleId> {
        let mut stack: Vec<NodeId> = Vec::new();
        let mut children: States = SmallVec::new();
        for node in live_for(self.auto, states, effect) {
            every_edge(
                self.auto,
                self.session,
                node,
                first,
                false,
                effect,
                &mut children,
            );
        }
        stack.extend(children.drain(..));
        let mut best = None;
        while let Some(id) = stack.pop() {
            if !self.spend(1) {
                return None;
            }
            let node = self.auto.node(id);
            best = min(
                best,
                min(
                    first_rule(node.exact(), effect),
                    first_rule(node.hash(), effect),
                ),
            );
            every_edge(
                self.auto,
                self.session,
                node,
                false,
                false,
                effect,
                &mut children,
            );
            stack.extend(children.drain(..));
        }
        best
    }
}

/// A level value no rule mentions (only `+` edges take it).
const UNMENTIONED: &str = "\u{E000}";

/// What fills a capture in a pattern's witness: a character no rule mentions. The
/// reference interpreter uses another one on purpose (its own `FILLER`), so a rule that
/// happened to mention one of them cannot fool both sides the same way.
const CAPTURE_FILL: &str = "\u{10FFFD}";

/// The rules met so far on the way to a topic (for filtered subscriptions).
#[derive(Clone, Copy, Default)]
struct Seen {
    denied: bool,
    allow: Option<RuleId>,
}

impl Seen {
    /// Takes in the subscribe rules of one accept list of the live `states`.
    fn absorb(
        &mut self,
        auto: &Automaton,
        states: &[NodeId],
        accepts: impl Fn(&Node) -> &[Accept],
    ) {
        self.denied |= first_of(auto, states, &accepts, Effect::Deny).is_some();
        self.allow = min(self.allow, first_of(auto, states, &accepts, Effect::Allow));
    }

    /// The first allow, if the topic is allowed.
    fn allowed(self) -> Option<RuleId> {
        if self.denied { None } else { self.allow }
    }

    /// The first allow of the topic that ends at `states`, if it is allowed.
    fn ending(mut self, auto: &Automaton, states: &[NodeId]) -> Option<RuleId> {
        self.absorb(auto, states, |n| n.exact());
        self.allowed()
    }
}

/// Texts a level's pieces match, one per combination of their alternatives, captures
/// filled with [`CAPTURE_FILL`] and attributes rendered; none if an attribute is missing.
/// The combinations are counted first and then enumerated as a mixed-radix number (digit
/// `k` picks piece `k`'s option), so nothing is built when there are more than `budget`:
/// that is `None`. (The reference interpreter builds its witnesses another way.)
fn witnesses(
    pieces: &[Piece],
    attrs: &(impl AttrValues + ?Sized),
    budget: usize,
) -> Option<Vec<String>> {
    // Each piece as its options: one fixed text, or a set's values.
    let mut digits: Vec<(&str, &[String])> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        digits.push(match piece {
            Piece::Text(text) => (text, &[]),
            Piece::Attr(name) => match attrs.value(name) {
                Some(value) => (value, &[]),
                None => return Some(Vec::new()),
            },
            Piece::Capture(_) => (CAPTURE_FILL, &[]),
            // An empty set matches nothing, so the level has no witness.
            Piece::OneOf { values, .. } if values.is_empty() => return Some(Vec::new()),
            Piece::OneOf { values, .. } => ("", values),
        });
    }
    let count = digits
        .iter()
        .try_fold(1usize, |n, (_, choices)| {
            n.checked_mul(choices.len().max(1))
        })
        .filter(|&n| n <= budget)?;
    let texts = (0..count)
        .map(|mut number| {
            let mut text = String::new();
            for (fixed, choices) in &digits {
                if choices.is_empty() {
                    text.push_str(fixed);
                } else {
                    text.push_str(&choices[number % choices.len()]);
                    number /= choices.len();
                }
            }
            text
        })
        .collect();
    Some(texts)
}

/// The nodes among `states` that hold some subscribe rule at or below them.
fn live<'a>(auto: &'a Automaton, states: &'a [NodeId]) -> impl Iterator<Item = &'a Node> + 'a {
    states
        .iter()
        .map(move |s| auto.node(*s))
        .filter(|n| n.actions_below().contains(ACTION))
}

/// The nodes among `states` that hold some subscribe rule of `effect` at or below them:
/// only those can hold a rule a search for `effect` looks for.
fn live_for<'a>(
    auto: &'a Automaton,
    states: &'a [NodeId],
    effect: Effect,
) -> impl Iterator<Item = &'a Node> + 'a {
    states
        .iter()
        .map(move |s| auto.node(*s))
        .filter(move |n| n.below().of(effect).contains(ACTION))
}

/// The first rule of `effect` for subscribe among one accept list of the live `states`.
fn first_of(
    auto: &Automaton,
    states: &[NodeId],
    accepts: &impl Fn(&Node) -> &[Accept],
    effect: Effect,
) -> Option<RuleId> {
    live(auto, states)
        .filter_map(|n| first_rule(accepts(n), effect))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn set(values: &[&str]) -> Piece {
        let values: Arc<[String]> = values.iter().map(|v| v.to_string()).collect();
        Piece::OneOf {
            capture: None,
            values,
        }
    }

    #[test]
    fn witnesses_are_every_combination_in_mixed_radix_order() {
        let attrs = BTreeMap::from([("pid".to_string(), "P1".to_string())]);
        let pieces = [
            Piece::Attr("pid".into()),
            Piece::Text("-".into()),
            set(&["a", "b"]),
            Piece::Capture("c".into()),
            set(&["x", "y", "z"]),
        ];
        let texts = witnesses(&pieces, &attrs, 100).expect("within budget");
        let fill = CAPTURE_FILL;
        let want: Vec<String> = ["ax", "bx", "ay", "by", "az", "bz"]
            .iter()
            .map(|ab| format!("P1-{}{fill}{}", &ab[..1], &ab[1..]))
            .collect();
        assert_eq!(texts, want);
        assert!(
            witnesses(&pieces, &attrs, 5).is_none(),
            "6 witnesses, budget 5"
        );
        assert_eq!(witnesses(&pieces, &BTreeMap::new(), 100), Some(Vec::new()));
        assert_eq!(witnesses(&[set(&[])], &attrs, 100), Some(Vec::new()));
    }

    /// Rules of every edge kind and effect, on plain and `$` topics, for one identity.
    const ONE_TOPIC_POLICY: &str = "identity app from anonymous {\n    client \"m:{+jti}\"\n}\n\
        set services = lights, locks, cameras\n\
        allow app subscribe \"c/{jti}/{sid in services}/{+rid}\"\n\
        deny app subscribe \"c/{jti}/locks/admin\"\n\
        allow app subscribe \"c/{jti}-x/#\"\n\
        allow app subscribe \"d/{+a}_{jti}/{up|down}\"\n\
        deny app subscribe \"d/+/down\"\n\
        allow app subscribe \"#\"\n\
        deny app subscribe \"e/#\"\n\
        allow app subscribe \"$SYS/{jti}/+\"\n\
        deny app subscribe \"+/secret\"\n\
        allow app subscribe, receive \"f/{x|y}/{+n}/#\"\n\
        deny app subscribe \"f/x/+/stop\"\n";

    /// Level values the policy mentions, values close to them, and values none mentions.
    const LEVELS: &[&str] = &[
        "c", "d", "e", "f", "J7", "J8", "J7-x", "lights", "locks", "cameras", "admin", "r1", "up",
        "down", "a_J7", "_J7", "a_J8", "$SYS", "$x", "secret", "x", "y", "stop", "", "\u{E000}",
        "é",
    ];

    /// The engine of `text` and the session of its `app` identity (client id `m:J7`).
    fn app_engine(text: &str) -> (Engine, Session) {
        use crate::identity::Identity;
        use crate::policy::Policy;
        use crate::source::Source;
        let policy = Policy::from_source(&Source::new("p", text)).expect("valid");
        let engine = Engine::new(&policy.checked).expect("compiles");
        let session = engine.bind(
            &Identity::asserted("app", BTreeMap::<String, String>::new()),
            "m:J7",
        );
        assert_eq!(session.error(), None);
        (engine, session)
    }

    /// `Engine::decide` on a subscribe gives the general path's decision at the engine's
    /// own budget.
    fn assert_engine_decides_by_containment(engine: &Engine, session: &Session, filter: &str) {
        let auto = engine.automaton();
        assert_eq!(
            engine.decide(session, super::super::Request::subscribe(filter)),
            by_containment(
                auto,
                session,
                auto.roots[0],
                filter,
                engine.limits().subscribe_budget,
                false
            ),
            "through Engine::decide: {filter:?}"
        );
    }

    /// A seeded xorshift source: each call gives a number below its argument.
    fn random_below(seed: u64) -> impl FnMut(usize) -> usize {
        let mut state = seed;
        move |n| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        }
    }

    #[test]
    fn a_filter_without_wildcards_gets_the_general_paths_decision() {
        let (engine, session) = app_engine(ONE_TOPIC_POLICY);
        let auto = engine.automaton();
        let root = auto.roots[0];
        let mut next = random_below(0x2545_F491_4F6C_DD1D);
        let (mut compared, mut fell_back) = (0, 0);
        let mut verdicts = std::collections::BTreeSet::new();
        for _ in 0..20_000 {
            let depth = 1 + next(5);
            let filter: Vec<&str> = (0..depth).map(|_| LEVELS[next(LEVELS.len())]).collect();
            let filter = filter.join("/");
            if filter.is_empty() {
                continue;
            }
            // A small budget now and then: the fast path must then leave the decision to
            // the general path whenever that one could run out.
            let budget = if next(8) == 0 { next(12) } else { 10_000 };
            let general = by_containment(auto, &session, root, &filter, budget, false);
            match one_topic(auto, &session, root, &filter, budget) {
                Some(fast) => {
                    assert_eq!(fast, general, "filter {filter:?}, budget {budget}");
                    compared += 1;
                    verdicts.insert(format!("{:?}", fast.verdict));
                }
                None => fell_back += 1,
            }
            assert_engine_decides_by_containment(&engine, &session, &filter);
        }
        assert!(
            compared > 10_000 && fell_back > 100,
            "{compared} / {fell_back}"
        );
        assert_eq!(verdicts.len(), 3, "every verdict was reached: {verdicts:?}");
    }

    /// [`ONE_TOPIC_POLICY`] and rules whose `+` levels, `#` tails and denies meet a filter's
    /// `+` levels and trailing `#`: a `+` edge next to literal, set, slot and pattern edges,
    /// a deny reached only through a mentioned value, `$` topics with `+` rules, rules under
    /// the empty first level (which a filter that is only `+` never reaches: the empty topic
    /// is no topic name), a `$k/#` whose depths are covered by different rules with one
    /// depth left uncovered (a `$` topic, so the `#` allow at the root does not cover it),
    /// and a deny deep under a `#` allow.
    /// They come first, so that they are the first rules cited.
    fn plus_policy() -> String {
        let extra = "deny app subscribe \"/#\"\n\
            allow app subscribe \"g/+/{jti}/+\"\n\
            deny app subscribe \"g/+/stop/+\"\n\
            allow app subscribe \"g/{sid in services}/#\"\n\
            deny app subscribe \"g/locks/+/admin\"\n\
            allow app subscribe \"+/+/z\"\n\
            deny app subscribe \"+/lights/z\"\n\
            allow app subscribe \"h/{+a}x{+b}/+\"\n\
            deny app subscribe \"h/axb/+\"\n\
            allow app subscribe \"$SYS/+/h/#\"\n\
            deny app subscribe \"$SYS/+/cpu\"\n\
            allow app subscribe \"+\"\n\
            deny app subscribe \"/\"\n\
            allow app subscribe \"$k\"\n\
            allow app subscribe \"$k/+/+/#\"\n\
            allow app subscribe \"$k/+/{jti}\"\n\
            allow app subscribe \"$d/q/#\"\n\
            deny app subscribe \"$d/+/q/+/stop\"\n";
        let rules = ONE_TOPIC_POLICY
            .find("allow app")
            .expect("the policy has rules");
        format!(
            "{}{extra}{}",
            &ONE_TOPIC_POLICY[..rules],
            &ONE_TOPIC_POLICY[rules..]
        )
    }

    /// What a random filter level is: mostly the levels the policy mentions, often `+`.
    const PLUS_LEVELS: &[&str] = &[
        "g", "h", "$k", "$d", "q", "z", "axb", "ax", "xb", "stop", "cpu", "+", "+", "+", "+", "+",
        "+",
    ];

    #[test]
    fn a_filter_with_plus_levels_and_a_trailing_hash_gets_the_general_paths_decision() {
        let text = plus_policy();
        let (engine, session) = app_engine(&text);
        let auto = engine.automaton();
        let root = auto.roots[0];
        let mut next = random_below(0x9E37_79B9_7F4A_7C15);
        let (mut compared, mut fell_back) = (0, 0);
        let mut verdicts = std::collections::BTreeMap::new();
        for _ in 0..60_000 {
            let depth = next(7);
            let mut filter: Vec<&str> = (0..depth)
                .map(|_| match next(2) {
                    0 => LEVELS[next(LEVELS.len())],
                    _ => PLUS_LEVELS[next(PLUS_LEVELS.len())],
                })
                .collect();
            if depth == 0 || next(3) == 0 {
                filter.push("#");
            }
            let filter = filter.join("/");
            if filter.is_empty() {
                continue;
            }
            let budget = if next(8) == 0 { next(16) } else { 10_000 };
            let general = by_containment(auto, &session, root, &filter, budget, false);
            let shape = match (filter.contains('+'), filter.ends_with('#')) {
                (_, true) => "trailing #",
                (true, false) => "+ only",
                (false, false) => "no wildcard",
            };
            if shape != "no wildcard" {
                match plus_levels(auto, &session, root, &filter, budget) {
                    Some(fast) => {
                        assert_eq!(fast, general, "filter {filter:?}, budget {budget}");
                        compared += 1;
                        let verdict = format!("{:?}", fast.verdict);
                        *verdicts.entry((shape, verdict)).or_insert(0) += 1;
                    }
                    None => {
                        assert!(budget < 10_000, "fell back on {filter:?}");
                        fell_back += 1;
                    }
                }
            }
            assert_engine_decides_by_containment(&engine, &session, &filter);
        }
        assert!(
            compared > 20_000 && fell_back > 500,
            "{compared} / {fell_back}, {verdicts:?}"
        );
        assert!(
            verdicts.len() == 6 && verdicts.values().all(|&n| n > 400),
            "every verdict was reached often for both shapes: {verdicts:?}"
        );
    }

    #[test]
    fn a_level_of_two_large_sets_is_counted_not_built() {
        let big: Vec<String> = (0..100_000).map(|i| format!("v{i}")).collect();
        let refs: Vec<&str> = big.iter().map(String::as_str).collect();
        let pieces = [set(&refs), Piece::Text("_".into()), set(&refs)];
        assert!(witnesses(&pieces, &BTreeMap::new(), 200_000).is_none());
    }
}
