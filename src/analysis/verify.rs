//! `topicguard verify`: the properties a policy declares (`assert WHO only ...`) and two
//! built-in ones, each proved on every representative request or refuted by one.
//!
//! * **only** (`assert mobile only "c/xfi/{pid}_{aid}/#", ...`): for every valuation of
//!   the identity's attributes, every topic it may publish, publish retained, subscribe to
//!   (as a filter naming that one topic) or receive matches one of the namespaces, with
//!   the same attribute values. A filter with wildcards is covered too: a contained
//!   subscription is granted only when every topic it matches may be subscribed, so each
//!   of those topics is checked; a `subscriptions filtered` identity's deliveries are
//!   checked as `receive`.
//! * **isolation**: an identity's accounts are told apart by its *scoping attributes*:
//!   those of `assert NAME isolated by a, b`, else every credential attribute its allow
//!   rules render. Two sessions of the identity that differ on a scoping attribute never
//!   share, for one action, a topic that an allow rule rendering attributes (or
//!   `{client}`) grants one of them. So `allow mobile subscribe "c/{pid}_{aid}/#"` isolates
//!   accounts, while `allow operator subscribe "$SYS/#"` (no attribute) shares `$SYS` on
//!   purpose. Checked with attribute values in general position (see [`super::witness`]).
//! * **no-root-wildcard**: no allow rule's template is `#` or only wildcards before `#`
//!   (`+/#`), which would grant every topic (of that depth) to its identities.
//!
//! A failed property comes with a counterexample: a complete request the engine allows,
//! and the rule that allows it (for isolation, both sessions). It never changes a
//! decision; cost as in [`super`].

use super::product::{Instance, representatives};
use super::witness::{Purpose, pair_valuations, valuations};
use super::{AnalysisError, Bound, RuleCite, TopicAction, Witness, rule_attrs};
use crate::ast::Effect;
use crate::check::{Checked, CheckedAssertion, ClientPiece, IdentityDef, IdentityId, LevelPattern};
use crate::decide::reference::template::Template;
use crate::decide::{Engine, Verdict};
use std::collections::BTreeSet;

/// Every property's outcome for one policy file.
#[derive(Debug, serde::Serialize)]
pub struct VerifyReport {
    /// The policy's file name.
    pub file: String,
    /// One result per property checked.
    pub properties: Vec<PropertyResult>,
}

impl VerifyReport {
    /// True when every property holds.
    pub fn holds(&self) -> bool {
        self.properties.iter().all(|p| p.holds)
    }
}

/// One property for one identity (or one rule).
#[derive(Debug, serde::Serialize)]
pub struct PropertyResult {
    /// `only`, `isolation` or `no-root-wildcard`.
    pub property: &'static str,
    /// The identity the property was checked for.
    pub identity: String,
    /// The assertion as written, for `only`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assertion: Option<String>,
    /// Where the assertion is (`file:line:col`), for `only`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Whether the property holds for every representative request.
    pub holds: bool,
    /// A request that breaks the property, when it does not hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
}

/// A request that breaks a property, and why.
#[derive(Debug, serde::Serialize)]
pub struct Counterexample {
    /// The request the engine allows.
    pub request: Witness,
    /// The rule that allows it.
    pub rule: Option<RuleCite>,
    /// For isolation: the other session, allowed the same topic for the same action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other: Option<Witness>,
    /// The second rule involved, when the counterexample needs two (an overlap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_rule: Option<RuleCite>,
}

/// Proves every property of `checked` with `engine` (compiled from it).
pub fn verify(checked: &Checked, engine: &Engine) -> Result<VerifyReport, AnalysisError> {
    let templates: Vec<Option<Template<'_>>> = checked
        .rules
        .iter()
        .map(|r| r.topic.as_ref().map(Template::new))
        .collect();
    let mut properties = Vec::new();
    for assertion in checked
        .assertions
        .iter()
        .filter(|a| a.isolated_by.is_empty())
    {
        for &id in &assertion.identities {
            properties.push(only(checked, engine, &templates, assertion, id)?);
        }
    }
    for (i, def) in checked.identities.iter().enumerate() {
        let id = IdentityId(i as u16);
        let (scoping, declared) = scoping_attrs(checked, id, def);
        if !scoping.is_empty() {
            let mut result = isolation(checked, engine, &templates, id, def, &scoping)?;
            if let Some(assertion) = declared {
                result.assertion = Some(assertion.text.clone());
                result.location = Some(assertion.loc.to_string());
            }
            properties.push(result);
        }
    }
    properties.extend(root_wildcards(checked));
    Ok(VerifyReport {
        file: checked.source.name().to_string(),
        properties,
    })
}

/// The attributes that tell the identity's accounts apart: those of its `isolated by`
/// assertions, else every credential attribute its allow rules render directly.
fn scoping_attrs<'c>(
    checked: &'c Checked,
    id: IdentityId,
    def: &IdentityDef,
) -> (BTreeSet<String>, Option<&'c CheckedAssertion>) {
    let declared: Vec<&CheckedAssertion> = checked
        .assertions
        .iter()
        .filter(|a| !a.isolated_by.is_empty() && a.identities.contains(&id))
        .collect();
    if let Some(first) = declared.first() {
        let attrs = declared
            .iter()
            .flat_map(|a| a.isolated_by.iter().cloned())
            .collect();
        return (attrs, Some(first));
    }
    let captures: BTreeSet<&str> = def
        .client
        .iter()
        .filter_map(|p| match p {
            ClientPiece::Capture(c) => Some(c.as_str()),
            _ => None,
        })
        .collect();
    let attrs = checked
        .rules
        .iter()
        .filter(|r| r.effect == Effect::Allow && r.applies_to(id))
        .flat_map(rule_attrs)
        .filter(|a| *a != "client" && !captures.contains(a))
        .map(str::to_string)
        .collect();
    (attrs, None)
}

/// The templates of the identity's topic rules.
fn identity_templates<'t, 'c>(
    checked: &Checked,
    templates: &'t [Option<Template<'c>>],
    id: IdentityId,
) -> Vec<&'t Template<'c>> {
    checked
        .rules
        .iter()
        .filter(|r| r.applies_to(id))
        .filter_map(|r| templates[r.id.0 as usize].as_ref())
        .collect()
}

fn only(
    checked: &Checked,
    engine: &Engine,
    templates: &[Option<Template<'_>>],
    assertion: &CheckedAssertion,
    id: IdentityId,
) -> Result<PropertyResult, AnalysisError> {
    let def = &checked.identities[id.0 as usize];
    let namespaces: Vec<Template<'_>> = assertion
        .namespaces
        .iter()
        .map(|(_, p)| Template::new(p))
        .collect();
    let rules = identity_templates(checked, templates, id);
    let mut counterexample = None;
    'valuations: for valuation in valuations(&[(checked, def)], Purpose::Verify)? {
        let Some(bound) = Bound::new(engine, def, &valuation).filter(Bound::bound) else {
            continue;
        };
        let attrs = &bound.attrs;
        let instances: Vec<Instance<'_, '_>> = rules
            .iter()
            .copied()
            .chain(namespaces.iter())
            .map(|template| Instance { template, attrs })
            .collect();
        for topic in representatives(&instances)? {
            if namespaces.iter().any(|n| n.matches(&topic, attrs)) {
                continue;
            }
            for action in TopicAction::ALL {
                let decision = bound.decide(engine, action, &topic);
                if decision.verdict == Verdict::Allowed {
                    counterexample = Some(Counterexample {
                        request: bound.witness(&def.name, action, &topic),
                        rule: decision.rule.map(|r| RuleCite::new(checked, r)),
                        other: None,
                        other_rule: None,
                    });
                    break 'valuations;
                }
            }
        }
    }
    Ok(PropertyResult {
        property: "only",
        identity: def.name.clone(),
        assertion: Some(assertion.text.clone()),
        location: Some(assertion.loc.to_string()),
        holds: counterexample.is_none(),
        counterexample,
    })
}

fn isolation(
    checked: &Checked,
    engine: &Engine,
    templates: &[Option<Template<'_>>],
    id: IdentityId,
    def: &IdentityDef,
    scoping: &BTreeSet<String>,
) -> Result<PropertyResult, AnalysisError> {
    let differ = |a: &Bound, b: &Bound| scoping.iter().any(|s| a.attrs.get(s) != b.attrs.get(s));
    let bind = |v: &super::witness::Valuation| Bound::new(engine, def, v).filter(Bound::bound);
    let pairs: Vec<[Bound; 2]> = pair_valuations(&[(checked, def)])?
        .iter()
        .filter_map(|(x, y)| Some([bind(x)?, bind(y)?]))
        .filter(|[x, y]| differ(x, y))
        .collect();
    let rules = identity_templates(checked, templates, id);
    let mut counterexample = None;
    'pairs: for [first, second] in &pairs {
        {
            let (a, b) = (&first.attrs, &second.attrs);
            let instances: Vec<Instance<'_, '_>> = rules
                .iter()
                .flat_map(|&template| {
                    [
                        Instance { template, attrs: a },
                        Instance { template, attrs: b },
                    ]
                })
                .collect();
            for topic in representatives(&instances)? {
                for action in TopicAction::ALL {
                    let pair = [first, second];
                    if let Some(found) = shared(
                        checked,
                        engine,
                        templates,
                        (id, scoping),
                        action,
                        &topic,
                        pair,
                    ) {
                        counterexample = Some(found);
                        break 'pairs;
                    }
                }
            }
        }
    }
    Ok(PropertyResult {
        property: "isolation",
        identity: def.name.clone(),
        assertion: None,
        location: None,
        holds: counterexample.is_none(),
        counterexample,
    })
}

/// Both sessions (which differ on a scoping attribute) may use `topic` for `action`, and
/// one of them through a rule that renders attributes.
fn shared(
    checked: &Checked,
    engine: &Engine,
    templates: &[Option<Template<'_>>],
    (id, _scoping): (IdentityId, &BTreeSet<String>),
    action: TopicAction,
    topic: &str,
    pair: [&Bound; 2],
) -> Option<Counterexample> {
    let decisions = pair.map(|s| s.decide(engine, action, topic));
    if decisions.iter().any(|d| d.verdict != Verdict::Allowed) {
        return None;
    }
    let def = &checked.identities[id.0 as usize];
    for (me, other) in [(0, 1), (1, 0)] {
        let mine = &pair[me].attrs;
        let scoping = checked.rules.iter().find(|r| {
            r.effect == Effect::Allow
                && r.applies_to(id)
                && action.rule_actions().iter().any(|a| r.actions.contains(*a))
                && templates[r.id.0 as usize]
                    .as_ref()
                    .is_some_and(|t| t.matches(topic, mine))
                && !rule_attrs(r).is_empty()
        });
        if let Some(rule) = scoping {
            return Some(Counterexample {
                request: pair[me].witness(&def.name, action, topic),
                rule: Some(RuleCite::new(checked, rule.id)),
                other: Some(pair[other].witness(&def.name, action, topic)),
                other_rule: decisions[other].rule.map(|r| RuleCite::new(checked, r)),
            });
        }
    }
    None
}

/// Allow rules whose template is `#` or wildcards before `#`.
fn root_wildcards(checked: &Checked) -> Vec<PropertyResult> {
    let mut out = Vec::new();
    for rule in &checked.rules {
        let Some(topic) = &rule.topic else { continue };
        let everything = topic.hash
            && topic
                .levels
                .iter()
                .all(|l| matches!(l, LevelPattern::Any { .. }));
        if rule.effect != Effect::Allow || !everything {
            continue;
        }
        for &id in rule.identities.iter() {
            let def = &checked.identities[id.0 as usize];
            let action = rule
                .actions
                .iter()
                .next()
                .map(|a| a.as_str())
                .unwrap_or("subscribe");
            let filter = checked
                .source
                .slice(rule.span)
                .rsplit('"')
                .nth(1)
                .unwrap_or("#");
            out.push(PropertyResult {
                property: "no-root-wildcard",
                identity: def.name.clone(),
                assertion: None,
                location: None,
                holds: false,
                counterexample: Some(Counterexample {
                    request: Witness {
                        identity: def.name.clone(),
                        attrs: Default::default(),
                        client_id: String::new(),
                        action,
                        topic: Some(filter.to_string()),
                    },
                    rule: Some(RuleCite::new(checked, rule.id)),
                    other: None,
                    other_rule: None,
                }),
            });
        }
    }
    if out.is_empty() {
        out.push(PropertyResult {
            property: "no-root-wildcard",
            identity: "any".into(),
            assertion: None,
            location: None,
            holds: true,
            counterexample: None,
        });
    }
    out
}
