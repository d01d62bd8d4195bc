//! The planner: for one bound session and one action, the resource patterns to allow and
//! to deny, each one proved against topicguard's meaning of the policy.
//!
//! For publish, retain and receive ([`topics`]): every allow shape is written with `*` for
//! its free levels; `*` reaches further (it crosses `/`), so the shape's [cut
//! candidates](super::glob::Layout::cuts) are tried, and a cut is kept only if it provably
//! removes no request topicguard allows (a Deny wins over every Allow, so a cut that
//! removed more would take access from other rules). Deny rules are carried over whole when
//! that removes nothing topicguard allows, otherwise only where they meet an allow shape.
//! Then each allow pattern is kept only if, with all the denies, it provably grants no
//! request topicguard denies; one that cannot be proved is not granted — the policy is
//! narrowed — and a note names the rule, says why and gives an example
//! ([`super::narrowing`]). For subscribe ([`filters`]) the same is done over filter
//! strings (AWS checks `iot:Subscribe` against the filter as text), granting the filters
//! contained in one allow rule: each free level as `*` where that can be proved, else as
//! the literal `+`.
//!
//! [`finish`] certifies the whole plan once more — a plan that could grant a request
//! topicguard denies is an error, never a policy — and compares it the other way round:
//! [`Exactness::Exact`] when it also grants everything topicguard allows. Literal patterns
//! are decided by the engine itself as well. Cost: a few dozen bounded automaton products
//! per action ([`super::proof`]); a product that runs out of budget counts as not proved.

use super::glob::{Form, Glob, Layout, overlap_cuts};
use super::input::Input;
use super::lang::{self, Lang, LangError};
use super::narrowing::{Dropped, Note, Refused, listed};
use super::proof::{Bounds, escapes, one, union_of};
use super::shape::{Level, Shape, TooManyShapes, intersect};
use crate::ast::{Action, Effect};
use crate::check::RuleId;
use crate::decide::Request;

/// What a statement does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Grants what an allow rule allows.
    Allow,
    /// Takes back what a `*` of an allow rule's pattern reaches beyond the rule.
    Cut,
    /// A deny rule carried over.
    Deny,
    /// Takes back every shared-subscription string (`$share/…`, `$queue/…`) a pattern
    /// reaches: AWS reads them whole, topicguard judges the filter after the group.
    Shared,
}

impl Kind {
    pub(crate) fn is_deny(self) -> bool {
        self != Kind::Allow
    }
}

/// One proved resource pattern and the rule it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub(crate) rule: RuleId,
    pub(crate) kind: Kind,
    pub(crate) glob: Glob,
    /// May be left out when it touches nothing the plan grants (cuts, and deny rules
    /// carried over only where they meet an allow rule).
    prunable: bool,
    /// A deny carried over that also removes a request topicguard allows: the note saying
    /// so. Left out if the plan is safe without it.
    narrowing: Option<String>,
}

/// How a plan compares with topicguard's decisions for its action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exactness {
    /// Proved: it grants exactly what topicguard allows (subscribe: every filter contained
    /// in one allow rule — under `subscriptions filtered`, touching one — and touching no
    /// deny).
    Exact,
    /// It grants less: some request topicguard allows is denied (a note gives one).
    Narrowed,
    /// Safe, but whether it grants less was not settled within the proof budget.
    Unchecked,
}

/// The statements for one action.
#[derive(Clone, Debug)]
pub struct Plan {
    pub(crate) action: Action,
    pub(crate) grants: Vec<Grant>,
    pub(crate) notes: Vec<Note>,
    pub(crate) exactness: Exactness,
}

/// A plan that cannot be made safe.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The rules need more shapes than the limit.
    #[error(transparent)]
    Shapes(#[from] TooManyShapes),
    #[error(
        "{action}: the statements could not be proved to grant only what topicguard allows ({reason}); nothing is rendered"
    )]
    /// A statement could not be proved equal to the policy's meaning.
    Unproved {
        /// The action.
        action: Action,
        /// Why the proof failed.
        reason: String,
    },
}

/// CONNECT: the session's own client id, if topicguard allows it.
pub fn connect(input: Input<'_>) -> Plan {
    let mut plan = Plan::new(Action::Connect);
    let decision = input.engine.decide(input.session, Request::Connect);
    if let (true, Some(rule)) = (decision.is_allowed(), decision.rule) {
        plan.push(rule, Kind::Allow, Glob::literal(input.session.client_id()));
    }
    plan
}

/// An allow shape written one way: its grant patterns and its Deny candidates (its cuts,
/// and for filters the filters touching a deny rule, attributed to that rule).
#[derive(Clone)]
struct Written {
    rule: RuleId,
    form: Form,
    grants: Vec<Glob>,
    cuts: Vec<(RuleId, Kind, Glob)>,
}

impl Written {
    fn cut_globs(&self) -> Vec<Glob> {
        self.cuts.iter().map(|(_, _, g)| g.clone()).collect()
    }
}

impl Plan {
    fn new(action: Action) -> Plan {
        Plan {
            action,
            grants: Vec::new(),
            notes: Vec::new(),
            exactness: Exactness::Exact,
        }
    }

    fn note(&mut self, rule: Option<RuleId>, text: String) {
        self.notes.push(Note {
            action: self.action,
            rule,
            text,
        });
    }

    fn push(&mut self, rule: RuleId, kind: Kind, glob: Glob) {
        self.push_deny(rule, kind, glob, false, None);
    }

    fn push_deny(
        &mut self,
        rule: RuleId,
        kind: Kind,
        glob: Glob,
        prunable: bool,
        narrowing: Option<String>,
    ) {
        let exists = self
            .grants
            .iter()
            .any(|g| g.kind.is_deny() == kind.is_deny() && g.glob == glob);
        if !exists {
            self.grants.push(Grant {
                rule,
                kind,
                glob,
                prunable,
                narrowing,
            });
        }
    }

    fn globs(&self, deny: bool) -> impl Iterator<Item = &Glob> {
        self.grants
            .iter()
            .filter(move |g| g.kind.is_deny() == deny)
            .map(|g| &g.glob)
    }

    /// Denies every string starting with a shared-subscription prefix. AWS checks
    /// `iot:Subscribe` against the whole `$share/<group>/<filter>`, which no pattern can tie
    /// to topicguard's reading (the filter after the group, and `$queue/` refused), so the
    /// documents never grant one: shared subscriptions are narrowed away, and a pattern
    /// such as `$*/*` cannot reach them. Left out when no grant touches such a string.
    fn deny_shared(&mut self, rule: RuleId) {
        for prefix in ["$share/", "$queue/"] {
            self.push_deny(rule, Kind::Shared, Glob::prefix(prefix), true, None);
        }
    }

    /// Keeps each cut candidate that provably removes nothing topicguard allows.
    fn try_cuts(&mut self, bounds: &Bounds, written: &[Written]) -> Vec<Refused> {
        let mut refused: Vec<Refused> = Vec::new();
        for (rule, kind, glob) in written.iter().flat_map(|w| &w.cuts) {
            let tried =
                self.globs(true).any(|g| g == glob) || refused.iter().any(|r| r.glob == *glob);
            if tried {
                continue;
            }
            match one(glob).and_then(|l| bounds.over_reach(&l)) {
                Ok(None) => self.push_deny(*rule, *kind, glob.clone(), true, None),
                Ok(Some(removed)) => refused.push(Refused {
                    glob: glob.clone(),
                    removed: Some(removed),
                }),
                Err(_) => refused.push(Refused {
                    glob: glob.clone(),
                    removed: None,
                }),
            }
        }
        refused
    }
}

fn unproved(action: Action) -> impl Fn(LangError) -> PlanError {
    move |e| PlanError::Unproved {
        action,
        reason: e.to_string(),
    }
}

/// Publish, retain or receive: resources are topic names.
pub fn topics(input: Input<'_>, action: Action) -> Result<Plan, PlanError> {
    let allows = input.shapes(action, Effect::Allow)?;
    let own_denies = input.shapes(action, Effect::Deny)?;
    let extra: Vec<Shape> = if action == Action::Receive && input.filtered() {
        // Under `subscriptions filtered` a delivery that a `deny subscribe` rule matches is
        // denied as well (the engine's newer reading): carried over too, so both readings
        // are safe.
        let subscribe = input.shapes(Action::Subscribe, Effect::Deny)?;
        subscribe
            .into_iter()
            .filter(|s| !own_denies.contains(s))
            .collect()
    } else {
        Vec::new()
    };
    let denies: Vec<Shape> = own_denies.iter().chain(&extra).cloned().collect();
    let mut plan = Plan::new(action);
    if allows.is_empty() {
        return Ok(plan);
    }
    let bounds = Bounds::topics(&allows, &own_denies, &extra).map_err(unproved(action))?;
    let written: Vec<Written> = allows
        .iter()
        .map(|shape| {
            let layout = Layout::new(shape, Form::STARS);
            let cuts = layout.cuts(false).into_iter();
            Written {
                rule: shape.rule,
                form: Form::STARS,
                grants: layout.grants(),
                cuts: cuts.map(|c| (shape.rule, Kind::Cut, c)).collect(),
            }
        })
        .collect();
    let refused = plan.try_cuts(&bounds, &written);
    plan.deny_shared(allows[0].rule);
    carry_denies(&mut plan, &bounds, &allows, &denies);
    let deny = union_of(plan.globs(true)).map_err(unproved(action))?;
    let mut dropped = Dropped::default();
    for w in &written {
        let (kept, failed) = prove_grants(&bounds, &deny, &w.grants);
        for glob in kept {
            plan.push(w.rule, Kind::Allow, glob);
        }
        dropped.add(w.rule, failed, &w.cut_globs(), &refused);
    }
    let notes = dropped.notes(input, &bounds, &allows, action);
    plan.notes.extend(notes);
    finish(input, plan, &bounds)
}

/// Patterns proved safe, and the others with the counterexample found (or none, if the
/// proof ran out of budget).
type Proved = (Vec<Glob>, Vec<(Glob, Option<String>)>);

/// Splits patterns into those proved to grant nothing topicguard denies (with `deny`) and
/// the others.
fn prove_grants(bounds: &Bounds, deny: &Lang, grants: &[Glob]) -> Proved {
    let (mut kept, mut failed) = (Vec::new(), Vec::new());
    for glob in grants {
        match one(glob).and_then(|l| bounds.leak(&l, deny)) {
            Ok(None) => kept.push(glob.clone()),
            Ok(Some(example)) => failed.push((glob.clone(), Some(example))),
            Err(_) => failed.push((glob.clone(), None)),
        }
    }
    (kept, failed)
}

/// Carries deny rules over: whole when that removes nothing topicguard allows, otherwise
/// only where they meet an allow shape (noting it if even that removes something).
fn carry_denies(plan: &mut Plan, bounds: &Bounds, allows: &[Shape], denies: &[Shape]) {
    for deny in denies {
        let whole = Layout::new(deny, Form::STARS).grants();
        if let Ok(None) = union_of(&whole).and_then(|l| bounds.over_reach(&l)) {
            for glob in whole {
                plan.push(deny.rule, Kind::Deny, glob);
            }
            continue;
        }
        let mut within: Vec<Glob> = allows
            .iter()
            .filter_map(|a| intersect(a, deny))
            .flat_map(|s| Layout::new(&s, Form::STARS).grants())
            .collect();
        within.sort();
        within.dedup();
        for glob in within {
            let narrowing = match one(&glob).and_then(|l| bounds.over_reach(&l)) {
                Ok(None) => None,
                Ok(Some(removed)) => Some(format!(
                    "carried over as `{}`, which also denies `{}` although topicguard {} it (AWS's `*` crosses levels): narrowed",
                    glob.resource(),
                    removed.example,
                    if removed.certain {
                        "allows"
                    } else {
                        "may allow"
                    }
                )),
                Err(e) => Some(format!(
                    "carried over as `{}`, which may also deny requests topicguard allows ({e}): narrowed",
                    glob.resource()
                )),
            };
            plan.push_deny(deny.rule, Kind::Deny, glob, true, narrowing);
        }
    }
}

/// Subscribe: resources are filters, compared as strings.
pub fn filters(input: Input<'_>) -> Result<Plan, PlanError> {
    let action = Action::Subscribe;
    let allows = input.shapes(action, Effect::Allow)?;
    let denies = input.shapes(action, Effect::Deny)?;
    let mut plan = Plan::new(action);
    if allows.is_empty() {
        return Ok(plan);
    }
    let bounds = Bounds::filters(&allows, &denies, input.filtered()).map_err(unproved(action))?;
    let written: Vec<Vec<Written>> = allows
        .iter()
        .map(|shape| written_filters(shape, &denies))
        .collect();
    let flat: Vec<Written> = written.iter().flatten().cloned().collect();
    let refused = plan.try_cuts(&bounds, &flat);
    plan.deny_shared(allows[0].rule);
    let deny = union_of(plan.globs(true)).map_err(unproved(action))?;
    let mut dropped = Dropped::default();
    for forms in &written {
        choose_forms(&mut plan, &mut dropped, &bounds, &deny, forms, &refused);
    }
    let notes = dropped.notes(input, &bounds, &allows, action);
    plan.notes.extend(notes);
    if input.filtered() {
        plan.note(
            None,
            "the identity has `subscriptions filtered`: granted are the patterns of one allow rule whose every filter touches that rule and no deny rule (AWS still checks iot:Receive on every delivery), not every filter topicguard grants: narrowed".to_string(),
        );
    }
    finish(input, plan, &bounds)
}

/// Grants the forms of one shape that are proved safe, leaving out those another kept
/// form already covers; if none is wholly safe, the safe patterns of the best one.
fn choose_forms(
    plan: &mut Plan,
    dropped: &mut Dropped,
    bounds: &Bounds,
    deny: &Lang,
    forms: &[Written],
    refused: &[Refused],
) {
    let proved: Vec<Proved> = forms
        .iter()
        .map(|w| prove_grants(bounds, deny, &w.grants))
        .collect();
    let whole: Vec<usize> = (0..forms.len())
        .filter(|&i| proved[i].1.is_empty())
        .collect();
    let chosen: Vec<usize> = if whole.is_empty() {
        let best =
            (0..forms.len()).max_by_key(|&i| (proved[i].0.len(), forms[i].form.0.count_ones()));
        best.into_iter().collect()
    } else {
        whole
            .iter()
            .copied()
            .filter(|&i| {
                !whole
                    .iter()
                    .any(|&j| j != i && forms[i].form.within(forms[j].form))
            })
            .collect()
    };
    let rule = forms[0].rule;
    let mut granted = Vec::new();
    for &i in &chosen {
        for glob in &proved[i].0 {
            plan.push(rule, Kind::Allow, glob.clone());
            granted.push(glob.clone());
        }
    }
    let all_stars = &forms[0];
    if !chosen.contains(&0) {
        let failed = proved[0].1.clone();
        let failed = if failed.is_empty() {
            all_stars.grants.iter().map(|g| (g.clone(), None)).collect()
        } else {
            failed
        };
        dropped.add(rule, failed, &all_stars.cut_globs(), refused);
        dropped.instead(rule, &granted);
    }
}

/// A shape's filter patterns in every form worth trying (all stars first); the Deny
/// candidates include the filters that touch a deny rule.
fn written_filters(shape: &Shape, denies: &[Shape]) -> Vec<Written> {
    let free = shape.levels.iter().filter(|l| **l == Level::Any).count();
    Form::choices(free)
        .into_iter()
        .map(|form| {
            let layout = Layout::new(shape, form);
            let own = layout.cuts(true).into_iter();
            let mut cuts: Vec<(RuleId, Kind, Glob)> =
                own.map(|c| (shape.rule, Kind::Cut, c)).collect();
            for deny in denies {
                let touching = overlap_cuts(shape, form, deny).into_iter();
                cuts.extend(touching.map(|c| (deny.rule, Kind::Deny, c)));
            }
            Written {
                rule: shape.rule,
                form,
                grants: layout.grants(),
                cuts,
            }
        })
        .collect()
}

/// Drops allows a deny fully covers and literals the engine denies, certifies the plan,
/// leaves out the denies it does not need, and measures it against topicguard.
fn finish(input: Input<'_>, mut plan: Plan, bounds: &Bounds) -> Result<Plan, PlanError> {
    let action = plan.action;
    let deny = union_of(plan.globs(true)).map_err(unproved(action))?;
    plan.grants.retain(|g| {
        g.kind.is_deny() || !matches!(one(&g.glob).and_then(|l| escapes(&l, &deny)), Ok(false))
    });
    engine_check(input, &mut plan);
    let allow = union_of(plan.globs(false)).map_err(unproved(action))?;
    if let Some(example) = bounds.leak(&allow, &deny).map_err(unproved(action))? {
        return Err(PlanError::Unproved {
            action,
            reason: format!("they would grant `{example}`"),
        });
    }
    drop_unneeded_denies(&mut plan, bounds, &allow);
    let deny = union_of(plan.globs(true)).map_err(unproved(action))?;
    plan.exactness = match bounds.missed(&allow, &deny) {
        Ok(None) => Exactness::Exact,
        Ok(Some(example)) => {
            plan.note(
                None,
                format!(
                    "narrowed: for example `{example}` is allowed by topicguard but not granted"
                ),
            );
            Exactness::Narrowed
        }
        Err(e) => {
            plan.note(
                None,
                format!("whether anything is narrowed was not settled: {e}"),
            );
            Exactness::Unchecked
        }
    };
    Ok(plan)
}

/// Leaves out denies the plan does not need: a narrowing deny (one that also removes
/// requests topicguard allows) the plan is provably safe without, and any prunable deny
/// that meets nothing granted or lies within another deny. Then notes the narrowing denies
/// left.
fn drop_unneeded_denies(plan: &mut Plan, bounds: &Bounds, allow: &Lang) {
    let mut i = plan.grants.len();
    while i > 0 {
        i -= 1;
        let grant = &plan.grants[i];
        if !grant.prunable {
            continue;
        }
        let Ok(lang) = one(&grant.glob) else { continue };
        let unneeded = if grant.narrowing.is_some() {
            let others = plan
                .grants
                .iter()
                .enumerate()
                .filter(|(j, g)| *j != i && g.kind.is_deny())
                .map(|(_, g)| &g.glob);
            union_of(others)
                .and_then(|d| bounds.leak(allow, &d))
                .is_ok_and(|leak| leak.is_none())
        } else {
            let idle = matches!(lang::find(&[&lang, allow], |m| m[0] && m[1]), Ok(None));
            idle || plan.grants.iter().enumerate().any(|(j, other)| {
                j != i
                    && other.kind.is_deny()
                    && one(&other.glob).is_ok_and(|o| matches!(escapes(&lang, &o), Ok(false)))
            })
        };
        if unneeded {
            plan.grants.remove(i);
        }
    }
    let notes: Vec<(RuleId, String)> = plan
        .grants
        .iter()
        .filter_map(|g| g.narrowing.clone().map(|n| (g.rule, n)))
        .collect();
    for (rule, text) in notes {
        plan.note(Some(rule), text);
    }
}

/// Literal allow patterns are decided by the engine too; one it denies is dropped (the
/// automata and the engine would disagree, which the tests hold to never happen).
fn engine_check(input: Input<'_>, plan: &mut Plan) {
    let action = plan.action;
    let mut dropped = Vec::new();
    plan.grants.retain(|g| {
        let Some(text) = g.glob.as_literal().filter(|_| g.kind == Kind::Allow) else {
            return true;
        };
        let request = match action {
            Action::Publish => Request::publish(&text),
            Action::Receive => Request::receive(&text),
            Action::Subscribe => Request::subscribe(&text),
            Action::Connect | Action::Retain => return true,
        };
        let allowed = input.engine.decide(input.session, request).is_allowed();
        if !allowed {
            dropped.push((g.rule, text.clone()));
        }
        allowed
    });
    for (rule, text) in dropped {
        plan.note(
            Some(rule),
            format!(
                "{} is not granted: the engine denies it: narrowed",
                listed(&[Glob::literal(&text)])
            ),
        );
    }
}
