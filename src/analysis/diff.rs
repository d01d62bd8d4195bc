//! `topicguard diff OLD NEW`: the access NEW adds and removes, per identity and action,
//! each with concrete witness requests.
//!
//! Identities are matched by name. For an identity in both, every valuation of
//! [`super::witness`] (built from both policies' templates and requirements) is bound in
//! both engines, with the client id each policy's template renders (both ids are tried
//! in both policies when the templates differ); `connect` is compared for each, and for
//! each pair of sessions every representative topic of [`super::product`] over both
//! policies' templates is decided for publish, retained publish, subscribe (the topic as
//! a filter) and receive. A difference is *added* when NEW allows what OLD denies and
//! *removed* the other way round; differences are grouped by the rule that allows them
//! (NEW's for added, OLD's for removed), which is the template a group stands for, with
//! up to [`MAX_WITNESSES`] witnesses each.
//!
//! Subscribe is compared on topics: with containment a filter is granted only when every
//! topic it matches may be subscribed, so a filter NEW grants and OLD refused has a topic
//! NEW allows and OLD did not, which is reported. A change of `subscriptions filtered`
//! itself is reported as its own difference. It never changes a decision; cost as in
//! [`super`], for both policies.

use super::product::{Instance, representatives};
use super::witness::{Purpose, Valuation, valuations};
use super::{AnalysisError, Bound, RuleCite, TopicAction, Witness};
use crate::check::{Checked, IdentityDef, IdentityId};
use crate::decide::Request;
use crate::decide::reference::template::Template;
use crate::decide::{Decision, Engine, Verdict};
use std::collections::BTreeMap;

/// Witnesses kept per group of differences.
pub const MAX_WITNESSES: usize = 3;

/// One side of the comparison.
pub struct Side<'a> {
    /// The checked rules of this side.
    pub checked: &'a Checked,
    /// The engine compiled from `checked`.
    pub engine: &'a Engine,
}

/// Everything NEW changes.
#[derive(Debug, serde::Serialize)]
pub struct DiffReport {
    /// The old policy's file name.
    pub old: String,
    /// The new policy's file name.
    pub new: String,
    /// Identities only the new policy declares.
    pub identities_added: Vec<String>,
    /// Identities only the old policy declares.
    pub identities_removed: Vec<String>,
    /// Every access that differs, per identity, action and class of topics.
    pub changes: Vec<Change>,
}

impl DiffReport {
    /// NEW grants something OLD did not.
    pub fn adds_access(&self) -> bool {
        !self.identities_added.is_empty() || self.changes.iter().any(|c| c.added)
    }
}

/// A group of differences: one identity, one action, one direction, one rule.
#[derive(Debug, serde::Serialize)]
pub struct Change {
    /// The identity whose access changed.
    pub identity: String,
    /// `connect`, `publish`, `retain`, `subscribe`, `receive`, or `subscriptions` (the
    /// `subscriptions filtered` setting).
    pub action: &'static str,
    /// True when NEW allows and OLD denies; false for the other way round.
    pub added: bool,
    /// The rule that allows the witnesses (NEW's when added, OLD's when removed).
    pub rule: Option<RuleCite>,
    /// How many representative requests differ this way.
    pub count: usize,
    /// Concrete requests whose verdict differs between the two policies.
    pub witnesses: Vec<ChangeWitness>,
}

/// A request decided differently, with both verdicts.
#[derive(Debug, serde::Serialize)]
pub struct ChangeWitness {
    /// The request (identity, attributes, client id, topic) that shows the change.
    pub request: Witness,
    /// Its verdict under the old policy.
    pub old: Verdict,
    /// Its verdict under the new policy.
    pub new: Verdict,
}

type Key = (String, &'static str, bool, Option<RuleCite>);

/// Compares two policies.
pub fn diff(old: Side<'_>, new: Side<'_>) -> Result<DiffReport, AnalysisError> {
    let mut groups: BTreeMap<Key, (usize, Vec<ChangeWitness>)> = BTreeMap::new();
    let mut report = DiffReport {
        old: old.checked.source.name().to_string(),
        new: new.checked.source.name().to_string(),
        identities_added: Vec::new(),
        identities_removed: Vec::new(),
        changes: Vec::new(),
    };
    for def in &old.checked.identities {
        if new.checked.identity(&def.name).is_none() {
            report.identities_removed.push(def.name.clone());
        }
    }
    for (i, new_def) in new.checked.identities.iter().enumerate() {
        let Some((old_id, old_def)) = old.checked.identity(&new_def.name) else {
            report.identities_added.push(new_def.name.clone());
            continue;
        };
        let ids = [old_id, IdentityId(i as u16)];
        if old_def.filtered_subscriptions != new_def.filtered_subscriptions {
            let key = (
                new_def.name.clone(),
                "subscriptions",
                new_def.filtered_subscriptions,
                None,
            );
            groups.entry(key).or_default().0 += 1;
        }
        compare_identity(&old, &new, [old_def, new_def], ids, &mut groups)?;
    }
    report.changes = groups
        .into_iter()
        .map(
            |((identity, action, added, rule), (count, witnesses))| Change {
                identity,
                action,
                added,
                rule,
                count,
                witnesses,
            },
        )
        .collect();
    Ok(report)
}

fn compare_identity(
    old: &Side<'_>,
    new: &Side<'_>,
    defs: [&IdentityDef; 2],
    ids: [IdentityId; 2],
    groups: &mut BTreeMap<Key, (usize, Vec<ChangeWitness>)>,
) -> Result<(), AnalysisError> {
    let sides = [old, new];
    let templates: [Vec<Template<'_>>; 2] = [0, 1].map(|s| {
        sides[s]
            .checked
            .rules
            .iter()
            .filter(|r| r.applies_to(ids[s]))
            .filter_map(|r| r.topic.as_ref().map(Template::new))
            .collect()
    });
    let all = valuations(
        &[(old.checked, defs[0]), (new.checked, defs[1])],
        Purpose::Diff,
    )?;
    for valuation in &all {
        let mut client_ids: Vec<String> = defs
            .iter()
            .filter_map(|d| super::witness::client_id(d, valuation))
            .collect();
        client_ids.dedup();
        for client_id in &client_ids {
            let bound = [0, 1].map(|s| bind(sides[s].engine, defs[s], valuation, client_id));
            let connect = bound.each_ref().map(|b| b.session.clone());
            let decisions = [0, 1].map(|s| sides[s].engine.decide(&connect[s], Request::Connect));
            record(sides, &bound, "connect", None, decisions, groups);
            if !bound[0].bound() && !bound[1].bound() {
                continue;
            }
            let mut instances: Vec<Instance<'_, '_>> = Vec::new();
            for s in 0..2 {
                let attrs = &bound[s].attrs;
                instances.extend(
                    templates[s]
                        .iter()
                        .map(|template| Instance { template, attrs }),
                );
            }
            for topic in representatives(&instances)? {
                for action in TopicAction::ALL {
                    let decisions =
                        [0, 1].map(|s| bound[s].decide(sides[s].engine, action, &topic));
                    record(
                        sides,
                        &bound,
                        action.as_str(),
                        Some(&topic),
                        decisions,
                        groups,
                    );
                }
            }
        }
    }
    Ok(())
}

fn bind(engine: &Engine, def: &IdentityDef, valuation: &Valuation, client_id: &str) -> Bound {
    let identity = crate::identity::Identity::asserted(&def.name, valuation.credential.clone());
    let session = engine.bind(&identity, client_id);
    Bound {
        valuation: valuation.clone(),
        client_id: client_id.to_string(),
        attrs: session.attrs().to_map(),
        session,
    }
}

/// Adds a difference, if the two decisions differ in allowing.
fn record(
    sides: [&Side<'_>; 2],
    bound: &[Bound; 2],
    action: &'static str,
    topic: Option<&str>,
    decisions: [Decision; 2],
    groups: &mut BTreeMap<Key, (usize, Vec<ChangeWitness>)>,
) {
    let allowed = decisions.map(|d| d.verdict == Verdict::Allowed);
    if allowed[0] == allowed[1] {
        return;
    }
    let added = allowed[1];
    let granting = if added { 1 } else { 0 };
    let rule = decisions[granting]
        .rule
        .map(|r| RuleCite::new(sides[granting].checked, r));
    let identity = sides[1]
        .checked
        .identities
        .iter()
        .find(|d| d.name == bound[1].session.kind())
        .map(|d| d.name.clone())
        .unwrap_or_else(|| bound[1].session.kind().to_string());
    let key = (identity.clone(), action, added, rule);
    let entry = groups.entry(key).or_default();
    entry.0 += 1;
    if entry.1.len() < MAX_WITNESSES {
        entry.1.push(ChangeWitness {
            request: Witness {
                identity,
                attrs: bound[1].valuation.credential.clone(),
                client_id: bound[1].client_id.clone(),
                action,
                topic: topic.map(str::to_string),
            },
            old: decisions[0].verdict,
            new: decisions[1].verdict,
        });
    }
}
