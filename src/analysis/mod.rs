//! Exact policy analysis: what a change grants (`topicguard diff`) and whether declared
//! and built-in properties hold (`topicguard verify`).
//!
//! The analysis asks the compiled engine about a finite set of requests that stands for
//! every request: attribute valuations from [`witness`] (every equality partition of the
//! attributes with fresh values, the substrings of the texts an attribute meets, values
//! that pass the `require` lines), and for each bound session the representative topics
//! of [`product`] (one topic per class of topics that exactly the same templates match,
//! found level by level, with the product walk of [`classes`] where captures overlap). A
//! decision depends only on which templates match, so a property that holds on every
//! representative holds on every request of the fragment [`fragment`] states; outside
//! it the analysis stops with [`AnalysisError::Inexact`]. Each counterexample or
//! difference it reports is a concrete request the engine really decides that way.
//!
//! This stage reads the checked policy and asks the engine ([`crate::decide`]); it sits
//! above `decide` and below `cli`, and never changes a decision. Cost: valuations ×
//! representative topics × actions decisions, each bounded ([`witness::MAX_VALUATIONS`],
//! [`product::MAX_TOPICS`]); past a bound the analysis stops with
//! [`AnalysisError::TooComplex`] rather than answer from a sample.

pub mod classes;
pub mod diff;
pub mod fragment;
pub mod product;
pub mod verify;
pub mod witness;

use crate::ast::Action;
use crate::check::{Checked, CheckedRule, IdentityDef, LevelPattern, Piece, RuleId};
use crate::decide::Request;
use crate::decide::{Decision, Engine, Session};
use crate::identity::Identity;
use std::collections::{BTreeMap, BTreeSet};
use witness::Valuation;

/// The analysis could not give an exact answer.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// Too many valuations or representative topics to decide one by one.
    #[error("the policy is too complex to analyse exactly: {0}")]
    TooComplex(String),
    /// A construct outside the fragment the analysis decides exactly.
    #[error("cannot decide exactly: {what} (at {location})")]
    Inexact {
        /// What the construct is.
        what: String,
        /// Where it is written, `file:line:col`.
        location: String,
    },
}

/// The topic actions, as the analysis asks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicAction {
    /// Publishing to a topic.
    Publish,
    /// A publish with the retain flag (needs `publish` and `retain`).
    Retain,
    /// A SUBSCRIBE of the topic as a filter.
    Subscribe,
    /// Receiving a message on a topic.
    Receive,
}

impl TopicAction {
    pub(crate) const ALL: [TopicAction; 4] = [
        TopicAction::Publish,
        TopicAction::Retain,
        TopicAction::Subscribe,
        TopicAction::Receive,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TopicAction::Publish => "publish",
            TopicAction::Retain => "retain",
            TopicAction::Subscribe => "subscribe",
            TopicAction::Receive => "receive",
        }
    }

    pub(crate) fn request(self, topic: &str) -> Request<'_> {
        match self {
            TopicAction::Publish => Request::Publish {
                topic,
                retain: false,
            },
            TopicAction::Retain => Request::Publish {
                topic,
                retain: true,
            },
            TopicAction::Subscribe => Request::subscribe(topic),
            TopicAction::Receive => Request::receive(topic),
        }
    }

    /// The rule actions that grant it (a retained publish needs both).
    pub fn rule_actions(self) -> &'static [Action] {
        match self {
            TopicAction::Publish => &[Action::Publish],
            TopicAction::Retain => &[Action::Publish, Action::Retain],
            TopicAction::Subscribe => &[Action::Subscribe],
            TopicAction::Receive => &[Action::Receive],
        }
    }
}

/// A concrete request a witness stands for: who asks, with which credential and client
/// id, for what.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Witness {
    pub(crate) identity: String,
    /// The credential's attribute values.
    pub attrs: BTreeMap<String, String>,
    /// The client id the session was bound with.
    pub client_id: String,
    /// `connect`, `publish`, `retain` (a retained publish), `subscribe` or `receive`.
    pub action: &'static str,
    /// The topic, or the filter for `subscribe`; absent for `connect`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

impl Witness {
    /// `mobile pid=P1 aid=A1 client_id=xfi:... subscribe c/xfi/...`
    pub fn describe(&self) -> String {
        let mut out = self.identity.clone();
        for (k, v) in &self.attrs {
            out.push_str(&format!(" {k}={v}"));
        }
        if !self.client_id.is_empty() {
            out.push_str(&format!(" client_id={}", self.client_id));
        }
        out.push_str(&format!(" {}", self.action));
        if let Some(topic) = &self.topic {
            out.push(' ');
            out.push_str(topic);
        }
        out
    }
}

/// A rule cited by a result: where it is, its label, and what it says.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct RuleCite {
    /// `file:line:col`.
    pub location: String,
    /// The rule's label (`@id("...")`), `null` when it has none.
    pub label: Option<String>,
    /// The rule as written in the policy.
    pub text: String,
}

impl RuleCite {
    pub(crate) fn new(checked: &Checked, rule: RuleId) -> RuleCite {
        let rule = checked.rule(rule);
        RuleCite {
            location: rule.loc.to_string(),
            label: rule.label.as_deref().map(str::to_string),
            text: rule.text().to_string(),
        }
    }

    /// `` `label` at file:line:col ``, or `file:line:col` for a rule without a label.
    pub fn cited(&self) -> String {
        match &self.label {
            Some(label) => format!("`{label}` at {}", self.location),
            None => self.location.clone(),
        }
    }
}

/// A valuation bound to one engine.
pub struct Bound {
    pub(crate) valuation: Valuation,
    pub(crate) client_id: String,
    pub(crate) session: Session,
    /// The session's attributes, as the analyses' templates read them.
    pub(crate) attrs: BTreeMap<String, String>,
}

impl Bound {
    /// Binds `valuation` as identity `def` with the client id its template renders;
    /// `None` if the template cannot be rendered.
    pub fn new(engine: &Engine, def: &IdentityDef, valuation: &Valuation) -> Option<Bound> {
        let client_id = witness::client_id(def, valuation)?;
        let identity = Identity::asserted(&def.name, valuation.credential.clone());
        let session = engine.bind(&identity, &client_id);
        Some(Bound {
            valuation: valuation.clone(),
            client_id,
            attrs: session.attrs().to_map(),
            session,
        })
    }

    pub(crate) fn bound(&self) -> bool {
        self.session.error().is_none()
    }

    pub(crate) fn decide(&self, engine: &Engine, action: TopicAction, topic: &str) -> Decision {
        engine.decide(&self.session, action.request(topic))
    }

    pub(crate) fn witness(&self, identity: &str, action: TopicAction, topic: &str) -> Witness {
        Witness {
            identity: identity.to_string(),
            attrs: self.valuation.credential.clone(),
            client_id: self.client_id.clone(),
            action: action.as_str(),
            topic: Some(topic.to_string()),
        }
    }
}

/// The attributes (including `client` and captures) a rule's template renders.
pub fn rule_attrs(rule: &CheckedRule) -> BTreeSet<&str> {
    rule.topic
        .iter()
        .flat_map(|t| t.levels.iter())
        .filter_map(|l| match l {
            LevelPattern::Pieces(p) => Some(p.iter()),
            _ => None,
        })
        .flatten()
        .filter_map(|p| match p {
            Piece::Attr(a) => Some(a.as_str()),
            _ => None,
        })
        .collect()
}
