//! What is asked ([`Request`]) and what is answered ([`Decision`], [`Explanation`]).
//!
//! A [`Decision`] is small and `Copy`: the verdict, the deciding rule, and a reason code.
//! It is what the broker's hot path gets. An [`Explanation`] is the full answer a person
//! reads — every matching rule with its `file:line`, the captured levels — in the shape
//! of AWS IoT's TestAuthorization answer. Neither ever holds a secret.

use crate::ast::{Action, Effect};
use crate::check::RuleId;
use crate::source::Loc;
use std::fmt;

/// One authorization question about a bound session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// CONNECT with the session's client id.
    Connect,
    /// PUBLISH to a topic (the will at CONNECT is a publish too). `retain` needs the
    /// `retain` action as well.
    Publish {
        /// The topic.
        topic: &'a str,
        /// The retain flag.
        retain: bool,
    },
    /// SUBSCRIBE to a filter (`$share/<group>/` is stripped and the rest judged).
    Subscribe {
        /// The topic filter.
        filter: &'a str,
    },
    /// Delivery of a message on `topic` to this session.
    Receive {
        /// The topic.
        topic: &'a str,
    },
}

impl<'a> Request<'a> {
    /// A publish without the retain flag.
    pub fn publish(topic: &'a str) -> Request<'a> {
        Request::Publish {
            topic,
            retain: false,
        }
    }

    /// A subscribe.
    pub fn subscribe(filter: &'a str) -> Request<'a> {
        Request::Subscribe { filter }
    }

    /// A receive.
    pub fn receive(topic: &'a str) -> Request<'a> {
        Request::Receive { topic }
    }

    /// The action the request asks for.
    pub fn action(&self) -> Action {
        match self {
            Request::Connect => Action::Connect,
            Request::Publish { .. } => Action::Publish,
            Request::Subscribe { .. } => Action::Subscribe,
            Request::Receive { .. } => Action::Receive,
        }
    }

    /// The topic or filter, if any.
    pub fn topic(&self) -> Option<&'a str> {
        match *self {
            Request::Connect => None,
            Request::Publish { topic, .. } | Request::Receive { topic } => Some(topic),
            Request::Subscribe { filter } => Some(filter),
        }
    }
}

/// The outcome of a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// An allow rule matched and no deny rule did.
    Allowed,
    /// A deny rule matched (deny wins), or the request or identity was invalid.
    ExplicitDeny,
    /// No rule matched: default deny.
    ImplicitDeny,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Allowed => "allowed",
            Verdict::ExplicitDeny => "explicitly denied",
            Verdict::ImplicitDeny => "implicitly denied",
        })
    }
}

/// Why the verdict is what it is, beyond the deciding rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Decided by rules (see `Decision::rule`).
    Rules,
    /// No rule matched.
    NoRuleMatched,
    /// A subscription granted in `filtered` mode: deliveries are filtered by `receive`.
    FilteredSubscription,
    /// The topic or filter is not valid MQTT for this action.
    InvalidTopic,
    /// The topic or filter has more levels or bytes than the engine's limits.
    TopicTooLarge,
    /// The session's identity was rejected when it was bound (see its bind error).
    IdentityRejected,
    /// The client id does not equal the identity's client template.
    ClientIdMismatch,
    /// `$queue/` or another shared-subscription form this engine does not support.
    UnsupportedSharedSubscription,
    /// Proving containment for this filter exceeded the work budget (fail closed).
    TooComplex,
    /// The session was bound to a different engine (policy reloaded): rebind it.
    StaleSession,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Rules => "decided by rules",
            Reason::NoRuleMatched => "no rule matched",
            Reason::FilteredSubscription => {
                "granted as a filtered subscription: each delivery is checked against receive"
            }
            Reason::InvalidTopic => "not a valid MQTT topic or filter for this action",
            Reason::TopicTooLarge => "topic exceeds the engine's size or level limit",
            Reason::IdentityRejected => "the identity was rejected when the session was bound",
            Reason::ClientIdMismatch => {
                "the client id does not match the identity's client template"
            }
            Reason::UnsupportedSharedSubscription => {
                "unsupported shared-subscription prefix (only $share/<group>/ is supported)"
            }
            Reason::TooComplex => "containment could not be proved within the work budget",
            Reason::StaleSession => {
                "the session belongs to an older policy; it must be bound again"
            }
        })
    }
}

/// The answer to a [`Request`]: small, `Copy`, allocation-free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    /// Allowed or denied.
    pub verdict: Verdict,
    /// The deciding rule: the first matching deny (deny wins), else the first matching allow.
    pub rule: Option<RuleId>,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    /// True when the verdict is `Allowed`.
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allowed
    }

    pub(crate) fn invalid(reason: Reason) -> Decision {
        Decision {
            verdict: Verdict::ExplicitDeny,
            rule: None,
            reason,
        }
    }
}

/// A rule cited in an explanation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuleRef {
    /// The rule's id.
    pub id: RuleId,
    /// The rule's label (`@id("...")`), `null` when it has none.
    pub label: Option<String>,
    /// Allow or deny.
    pub effect: Effect,
    /// Where it is.
    pub loc: Loc,
    /// The rule as written.
    pub text: String,
}

impl RuleRef {
    /// `` `label` at file:line `` or `at file:line`.
    pub fn cite(&self) -> String {
        crate::check::cite(self.label.as_deref(), &self.loc)
    }
}

/// A full, human-readable answer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Explanation {
    pub(crate) identity: String,
    pub(crate) client_id: String,
    pub(crate) action: Action,
    pub(crate) topic: Option<String>,
    /// The decision itself.
    pub decision: Decision,
    /// The deciding rule, if any.
    pub deciding: Option<RuleRef>,
    /// Every deny rule that matched, in file order.
    pub denies: Vec<RuleRef>,
    /// Every allow rule that matched, in file order.
    pub allows: Vec<RuleRef>,
    /// Named levels captured by the deciding rule (`rid`, `sid`, `pid`, ...).
    pub captures: Vec<(String, String)>,
    /// Extra detail (bind errors, which part of a filter was not covered, ...).
    pub detail: Option<String>,
    /// For a denied subscribe: a topic the filter covers that shows the denial (one no
    /// rule allows, or one the deciding deny matches).
    pub witness: Option<String>,
    /// For an implicit deny: the allow rule for the action nearest to the topic or filter.
    pub nearest: Option<super::Nearest>,
    /// For an implicitly denied retained publish: the grants missing (`publish`,
    /// `retain`, or both); empty otherwise.
    pub missing: Vec<Action>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.decision.verdict.to_string().to_uppercase(),
            self.action
        )?;
        if let Some(topic) = &self.topic {
            write!(f, " {topic}")?;
        }
        writeln!(f, " for {} ({})", self.identity, self.client_id)?;
        match &self.deciding {
            Some(rule) => writeln!(
                f,
                "  by {} rule {}: {}",
                rule.effect,
                rule.cite(),
                rule.text
            )?,
            None => writeln!(f, "  {}", self.decision.reason)?,
        }
        for rule in self.denies.iter().chain(&self.allows) {
            if Some(rule.id) != self.deciding.as_ref().map(|d| d.id) {
                writeln!(
                    f,
                    "  also matched: {} {}: {}",
                    rule.effect,
                    rule.cite(),
                    rule.text
                )?;
            }
        }
        if !self.captures.is_empty() {
            let shown: Vec<String> = self
                .captures
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            writeln!(f, "  captures: {}", shown.join(" "))?;
        }
        if let Some(detail) = &self.detail {
            writeln!(f, "  {detail}")?;
        }
        self.fmt_denial(f)
    }
}

impl Explanation {
    /// The witness and the nearest rule of a denial, one line each.
    fn fmt_denial(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(witness) = &self.witness {
            match &self.deciding {
                Some(rule) if rule.effect == Effect::Deny => writeln!(
                    f,
                    "  witness: `{witness}` is under the filter and denied by the rule {}",
                    rule.cite()
                )?,
                _ => writeln!(
                    f,
                    "  witness: `{witness}` is under the filter and no rule allows subscribe on it; allowing it needs a rule like `allow {} subscribe, receive \"{}\"`",
                    self.identity,
                    self.topic.as_deref().unwrap_or(witness)
                )?,
            }
        }
        if let Some(near) = &self.nearest {
            let differs = match near.first_difference {
                Some(level) => format!(
                    "agrees on the first {} level(s), first differs at level {level}, {} level(s) differ",
                    near.matching_prefix, near.differing_levels
                ),
                None => "agrees on every level".to_string(),
            };
            writeln!(
                f,
                "  nearest {} rule for {} {} ({differs}): {}",
                near.rule.effect,
                near.action,
                near.rule.cite(),
                near.rule.text
            )?;
        }
        Ok(())
    }
}
