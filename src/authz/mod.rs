//! The authorization service for clustered brokers (`topicguard authz`).
//!
//! RabbitMQ, EMQX and mosquitto (through mosquitto-go-auth) can delegate authentication and
//! authorization to an HTTP service. Each broker node runs its own [`Authz`] next to it:
//! the node asks it to authenticate a CONNECT ([`Authz::authenticate`]: the JWT in the
//! password is verified by [`Verifier`], bound to the CONNECT client id by the same
//! [`Engine`] the reference broker uses, and kept in the node's [`SessionTable`]), then to
//! decide every publish and subscribe ([`Authz::decide`]) for the identity that session
//! holds. Nothing a check request claims beyond the session key is believed. Nodes share
//! nothing, so the service scales by adding nodes.
//!
//! Per-protocol request and response shapes live in [`rabbitmq`], [`emqx`] and [`goauth`];
//! [`http`] serves them; [`reload`] swaps policies. There is no decision cache: a decision
//! costs well under a microsecond, a small fraction of the HTTP exchange around it
//! (docs/deployment.md has the figures), so a cache could only add ways to be wrong.
//!
//! Brokers without a per-delivery check ([`Delivery::Unchecked`]: RabbitMQ, EMQX) get a
//! subscription only if it also grants `receive` for every topic it can match (see
//! [`ReceiveCoverage`]). This module must never allow a check that has no live session.

pub mod emqx;
pub mod fields;
pub mod goauth;
pub mod http;
pub mod rabbitmq;
pub mod reload;
pub mod sessions;

use crate::ast::{Action, Effect};
use crate::check::{Checked, IdentityId};
use crate::decide::Reason;
use crate::decide::{Decision, Engine, Request};
use crate::identity::select::{ConfigError, Credential, CredentialConfig, Verifier};
use crate::mqtt::topic::split_shared;
use crate::policy::Policy;
use arc_swap::ArcSwap;
use rustls_pki_types::UnixTime;
use sessions::{Entry, Lookup, SessionKey, SessionTable};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The default bound of the session table.
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

/// Whether the broker checks `receive` on each delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// mosquitto asks before each delivery (go-auth `acc=1`): subscribe is decided alone.
    Checked,
    /// RabbitMQ and EMQX never ask again once a subscription is bound.
    Unchecked,
}

/// One authorization question about an authenticated connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check<'a> {
    /// Publish to a topic, with the retain flag as sent.
    Publish {
        /// The topic.
        topic: &'a str,
        /// The retain flag.
        retain: bool,
    },
    /// Subscribe to a filter, with how deliveries are shared.
    Subscribe {
        /// The topic filter.
        filter: &'a str,
        /// How deliveries are shared (plain or `$share`).
        delivery: Delivery,
    },
    /// Receive a message on a topic.
    Receive {
        /// The topic.
        topic: &'a str,
    },
}

/// Why a request was refused (logged; never sent to clients).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denial {
    /// No live session has this key: never authenticated here, evicted, or replaced.
    NoSession,
    /// The session's credential expired.
    Expired,
    /// The credential did not verify or binds to no identity.
    Credential(String),
    /// The current policy does not let this identity connect (any more).
    Connect(String),
    /// The engine said no.
    Decision(Decision),
    /// Subscribe is allowed, but receive on every matching topic is not proved and the
    /// broker never checks deliveries.
    ReceiveNotCarried,
    /// Something no MQTT client of a session needs (another queue, a superuser, ...).
    NotNeeded(String),
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::NoSession => f.write_str("no authenticated session for this connection"),
            Denial::Expired => f.write_str("the session's credential has expired"),
            Denial::Credential(why) => write!(f, "credential refused: {why}"),
            Denial::Connect(why) => write!(f, "connect not allowed: {why}"),
            Denial::Decision(d) => write!(f, "{} ({})", d.verdict, d.reason),
            Denial::NotNeeded(what) => write!(f, "not needed by an MQTT client: {what}"),
            Denial::ReceiveNotCarried => f.write_str(
                "the policy does not prove receive for every topic of this filter, and this broker never checks deliveries",
            ),
        }
    }
}

/// A verified, connect-allowed identity, now held in the session table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    /// The policy identity it was verified as.
    pub kind: String,
    /// The credential's expiry (Unix seconds).
    pub expires_at: Option<u64>,
}

/// Which identities' subscriptions also grant receive on every topic they match.
///
/// Sufficient condition, per identity: every `allow` rule that grants it `subscribe` also
/// grants `receive` (same rule, so same topics), every `deny` rule that denies it
/// `receive` also denies `subscribe`, and its subscriptions are not `filtered`. Then a
/// filter contained in the subscribe rights (no topic hits a deny, every topic an allow)
/// is contained in the receive rights. Other identities get literal filters only, decided
/// as subscribe and receive of that topic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiveCoverage {
    uncovered: BTreeSet<IdentityId>,
    /// The rules that break the condition, as `file:line`, for the start-up warning.
    pub reasons: Vec<String>,
}

impl ReceiveCoverage {
    pub(crate) fn of(checked: &Checked) -> ReceiveCoverage {
        let mut coverage = ReceiveCoverage::default();
        for rule in &checked.rules {
            let (sub, recv) = (
                rule.actions.contains(Action::Subscribe),
                rule.actions.contains(Action::Receive),
            );
            let breaks = match rule.effect {
                Effect::Allow => sub && !recv,
                Effect::Deny => recv && !sub,
            };
            if breaks {
                coverage.uncovered.extend(rule.identities.iter().copied());
                coverage
                    .reasons
                    .push(format!("{}: {}", rule.loc, rule.text()));
            }
        }
        for (index, def) in checked.identities.iter().enumerate() {
            if def.filtered_subscriptions {
                coverage.uncovered.insert(IdentityId(index as u16));
                coverage.reasons.push(format!(
                    "identity `{}` has filtered subscriptions",
                    def.name
                ));
            }
        }
        coverage
    }

    pub(crate) fn covers(&self, identity: IdentityId) -> bool {
        !self.uncovered.contains(&identity)
    }
}

/// One loaded policy: the engine, the verifier for its identity blocks, and its generation.
pub struct Loaded {
    /// The engine compiled from the policy.
    pub engine: Arc<Engine>,
    verifier: Verifier,
    pub(crate) generation: u64,
    /// Which receive checks the broker's subscriptions cover.
    pub coverage: ReceiveCoverage,
}

/// Why a policy could not be loaded into the service.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The credential configuration (keys, trust anchors) cannot be loaded.
    #[error("credential configuration: {0}")]
    Credentials(#[from] ConfigError),
    /// The policy does not compile.
    #[error("cannot compile: {0}")]
    Compile(#[from] crate::compile::CompileError),
}

/// The service state one broker node talks to.
pub struct Authz {
    loaded: ArcSwap<Loaded>,
    credentials: CredentialConfig,
    sessions: SessionTable,
    generations: AtomicU64,
}

impl Authz {
    /// Builds the verifier and engine for `policy`; fails before serving anything.
    pub fn new(
        policy: &Policy,
        credentials: CredentialConfig,
        max_sessions: usize,
    ) -> Result<Authz, LoadError> {
        let loaded = load(policy, &credentials, 1)?;
        Ok(Authz {
            loaded: ArcSwap::from_pointee(loaded),
            credentials,
            sessions: SessionTable::new(max_sessions),
            generations: AtomicU64::new(1),
        })
    }

    /// Swaps in a new policy; on error the running one stays. Sessions are bound again to
    /// the new engine on their next check.
    pub fn reload(&self, policy: &Policy) -> Result<Arc<Loaded>, LoadError> {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let loaded = Arc::new(load(policy, &self.credentials, generation)?);
        self.loaded.store(loaded.clone());
        Ok(loaded)
    }

    /// The policy in force.
    pub fn loaded(&self) -> Arc<Loaded> {
        self.loaded.load_full()
    }

    /// The table of bound sessions.
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    /// Verifies `password` as a JWT for the CONNECT `key.client_id`, checks that the
    /// identity may connect, and stores the session under `key` (replacing the one there:
    /// the broker takes the client id over too). A failure stores and removes nothing.
    pub fn authenticate(
        &self,
        key: SessionKey,
        password: &str,
        now: u64,
    ) -> Result<Authenticated, Denial> {
        let token = password.trim();
        if token.is_empty() {
            return Err(Denial::Credential("no JWT in the password".into()));
        }
        let loaded = self.loaded.load();
        let verified = loaded
            .verifier
            .verify(Credential::Jwt(token), UnixTime::now())
            .map_err(|e| Denial::Credential(e.to_string()))?;
        let identity = verified.identity;
        if identity.expires_at.is_some_and(|exp| exp <= now) {
            return Err(Denial::Expired);
        }
        let session = loaded.engine.bind(&identity, &key.client_id);
        let connect = loaded.engine.decide(&session, Request::Connect);
        if !connect.is_allowed() {
            let why = session.error().map_or_else(
                || format!("{} ({})", connect.verdict, connect.reason),
                |e| e.to_string(),
            );
            return Err(Denial::Connect(why));
        }
        let authenticated = Authenticated {
            kind: identity.kind.clone(),
            expires_at: identity.expires_at,
        };
        let entry = Entry {
            identity,
            session,
            generation: loaded.generation,
            connect_allowed: true,
        };
        self.sessions.insert(key, entry, now);
        Ok(authenticated)
    }

    /// Whether `key` has a live, connect-allowed session (vhost and resource checks).
    pub fn has_session(&self, key: &SessionKey, now: u64) -> Result<(), Denial> {
        let loaded = self.loaded.load();
        match self.sessions.with(key, now, |entry| {
            refresh(&loaded, entry);
            entry.connect_allowed
        }) {
            Lookup::Found(true) => Ok(()),
            Lookup::Found(false) => Err(Denial::Connect("denied by the current policy".into())),
            Lookup::Missing => Err(Denial::NoSession),
            Lookup::Expired => Err(Denial::Expired),
        }
    }

    /// Decides one check for the session under `key`.
    pub fn decide(&self, key: &SessionKey, check: Check<'_>, now: u64) -> Result<(), Denial> {
        let loaded = self.loaded.load();
        let outcome = self.sessions.with(key, now, |entry| {
            refresh(&loaded, entry);
            if !entry.connect_allowed {
                return Err(Denial::Connect("denied by the current policy".into()));
            }
            decide_check(&loaded, &entry.session, check)
        });
        match outcome {
            Lookup::Found(result) => result,
            Lookup::Missing => Err(Denial::NoSession),
            Lookup::Expired => Err(Denial::Expired),
        }
    }
}

fn load(
    policy: &Policy,
    credentials: &CredentialConfig,
    generation: u64,
) -> Result<Loaded, LoadError> {
    let verifier = Verifier::new(&policy.checked, credentials)?;
    let engine = Engine::builder(policy.checked.clone()).build()?;
    Ok(Loaded {
        engine: Arc::new(engine),
        verifier,
        generation,
        coverage: ReceiveCoverage::of(&policy.checked),
    })
}

/// Binds the entry's identity again if the policy changed since it was bound.
fn refresh(loaded: &Loaded, entry: &mut Entry) {
    if entry.generation == loaded.generation {
        return;
    }
    let client_id = entry.session.client_id().to_string();
    entry.session = loaded.engine.bind(&entry.identity, &client_id);
    entry.connect_allowed = loaded
        .engine
        .decide(&entry.session, Request::Connect)
        .is_allowed();
    entry.generation = loaded.generation;
}

fn verdict(decision: Decision) -> Result<(), Denial> {
    if decision.is_allowed() {
        Ok(())
    } else {
        Err(Denial::Decision(decision))
    }
}

fn decide_check(
    loaded: &Loaded,
    session: &crate::decide::Session,
    check: Check<'_>,
) -> Result<(), Denial> {
    let engine = &loaded.engine;
    match check {
        Check::Publish { topic, retain } => {
            verdict(engine.decide(session, Request::Publish { topic, retain }))
        }
        Check::Receive { topic } => verdict(engine.decide(session, Request::receive(topic))),
        Check::Subscribe {
            filter,
            delivery: Delivery::Checked,
        } => verdict(engine.decide(session, Request::subscribe(filter))),
        Check::Subscribe {
            filter,
            delivery: Delivery::Unchecked,
        } => decide_unchecked_subscribe(loaded, session, filter),
    }
}

/// Subscribe on a broker that never checks deliveries: the subscription must carry receive.
fn decide_unchecked_subscribe(
    loaded: &Loaded,
    session: &crate::decide::Session,
    filter: &str,
) -> Result<(), Denial> {
    let engine = &loaded.engine;
    let decision = engine.decide(session, Request::subscribe(filter));
    verdict(decision)?;
    let covered = session
        .identity_id()
        .is_some_and(|id| loaded.coverage.covers(id));
    if covered && decision.reason != Reason::FilteredSubscription {
        return Ok(());
    }
    let topic = match split_shared(filter) {
        Ok((_, inner)) if !inner.split('/').any(|l| l == "+" || l == "#") => inner,
        _ => return Err(Denial::ReceiveNotCarried),
    };
    verdict(engine.decide(session, Request::receive(topic)))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What an endpoint answers: status, media type, body. Protocol modules build these;
/// [`http`] sends them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    pub(crate) fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }
}

/// Logs a refusal at debug level (a broker can ask thousands of times a second).
pub(crate) fn log_denial(endpoint: &str, key: Option<&SessionKey>, why: &dyn fmt::Display) {
    match key {
        Some(key) => tracing::debug!(
            endpoint, username = %key.username.escape_debug(), client_id = %key.client_id.escape_debug(),
            "deny: {why}"
        ),
        None => tracing::debug!(endpoint, "deny: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Source;

    fn coverage(rules: &str) -> (ReceiveCoverage, Vec<String>) {
        let text = format!(
            "identity a from anonymous {{\n  client \"a-{{+x}}\"\n}}\nidentity b from anonymous {{\n  client \"b-{{+x}}\"\n}}\n{rules}"
        );
        let policy = Policy::from_source(&Source::new("t.policy", text)).expect("policy");
        let names = policy.checked.identities.iter().map(|d| d.name.clone());
        let coverage = ReceiveCoverage::of(&policy.checked);
        let uncovered = names
            .enumerate()
            .filter(|(i, _)| !coverage.covers(IdentityId(*i as u16)))
            .map(|(_, n)| n)
            .collect();
        (coverage, uncovered)
    }

    #[test]
    fn receive_is_carried_only_when_every_subscribe_rule_also_grants_it() {
        let (_, uncovered) = coverage("allow a, b subscribe, receive \"t/#\"\n");
        assert!(uncovered.is_empty());
        let (_, uncovered) = coverage("allow a subscribe \"t/#\"\nallow a, b receive \"t/#\"\n");
        assert_eq!(uncovered, ["a"], "a separate receive rule proves nothing");
        let (c, uncovered) =
            coverage("allow any subscribe, receive \"t/#\"\ndeny b receive \"t/secret\"\n");
        assert_eq!(uncovered, ["b"], "a receive-only deny");
        assert!(c.reasons[0].contains("t/secret"), "{:?}", c.reasons);
        let (_, uncovered) =
            coverage("allow any subscribe, receive \"t/#\"\ndeny b subscribe, receive \"t/x\"\n");
        assert!(uncovered.is_empty());
    }
}
