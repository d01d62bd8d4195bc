//! The connection's view of the policy: one bound session, re-bound when the policy changes,
//! and one log line per denial.
//!
//! An [`Authorizer`] holds the identity verified at CONNECT and the [`Session`] bound from
//! it. Before each decision it checks whether the shared engine was swapped (policy
//! reload) and, if so, binds the identity again so the decision uses the current policy.
//! Every deny is logged once, at `info`, under the target `topicguard::deny`, with the
//! client, identity, action, topic, verdict, deciding rule (`file:line:col`) and reason.
//!
//! [`PublisherCheck`] asks the same question for a message that outlives its publish — a
//! retained message — on behalf of the [`Publisher`] it carries: may that principal, with
//! that client id, still publish and retain it under the current policy?
//! This module must never change a decision.

use crate::broker::observe::{DecisionRecord, Observer, now_rfc3339};
use crate::broker::principal::{Principal, Publisher};
use crate::decide::Engine;
use crate::decide::{Decision, Request, Session};
use crate::identity::Identity;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::Arc;

/// The policy engine as shared by the broker: swapped atomically on reload.
pub type SharedEngine = Arc<ArcSwap<Engine>>;

/// One connection's bound identity.
pub struct Authorizer {
    engines: SharedEngine,
    engine: Arc<Engine>,
    principal: Principal,
    session: Session,
    /// Set when a swapped engine was bound, until [`Authorizer::take_policy_change`].
    policy_changed: bool,
    /// Counts every decision and writes the decision log (set with [`Authorizer::observed`]).
    observer: Option<Observer>,
}

impl Authorizer {
    /// Binds `identity` with `client_id` against the current engine.
    pub fn bind(engines: SharedEngine, identity: Identity, client_id: &str) -> Authorizer {
        let engine = engines.load_full();
        let session = engine.bind(&identity, client_id);
        Authorizer {
            engines,
            engine,
            principal: Principal::new(identity),
            session,
            policy_changed: false,
            observer: None,
        }
    }

    /// Reports every decision to `observer` (metrics and the decision log).
    pub fn observed(mut self, observer: Observer) -> Authorizer {
        self.observer = Some(observer);
        self
    }

    /// The bound session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    pub(crate) fn identity(&self) -> &Identity {
        self.principal.identity()
    }

    /// Who this connection acts as (the owner of its session).
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// This connection as the publisher of a message it was just allowed to publish: its
    /// principal, its client id, and the engine that made the last decision.
    pub fn publisher(&self) -> Publisher {
        Publisher {
            principal: self.principal.clone(),
            client_id: self.session.client_id().into(),
            authorized_under: self.engine.id(),
        }
    }

    /// Decides with the current engine, logging a denial.
    pub fn decide(&mut self, request: Request<'_>) -> Decision {
        self.refresh();
        let decision = self.engine.decide(&self.session, request);
        if !decision.is_allowed() {
            self.log_denial(&request, &decision);
        }
        if let Some(observer) = &self.observer {
            let record = || self.record(&request, &decision);
            observer.decision(request.action(), decision.is_allowed(), record);
        }
        decision
    }

    /// Re-binds when the shared engine was replaced since the last decision.
    fn refresh(&mut self) {
        let current = self.engines.load();
        if !Arc::ptr_eq(&current, &self.engine) {
            self.engine = arc_swap::Guard::into_inner(current);
            self.session = self
                .engine
                .bind(self.principal.identity(), self.session.client_id());
            self.policy_changed = true;
        }
    }

    /// True once after the policy was swapped (the caller re-checks its subscriptions).
    pub fn take_policy_change(&mut self) -> bool {
        self.refresh();
        std::mem::take(&mut self.policy_changed)
    }

    fn rule_location(&self, decision: &Decision) -> Option<String> {
        let rule = decision.rule?;
        Some(self.engine.checked().rule(rule).loc.to_string())
    }

    fn record(&self, request: &Request<'_>, decision: &Decision) -> DecisionRecord {
        DecisionRecord {
            time: now_rfc3339(),
            client: self.session.client_id().to_string(),
            identity: self.identity().kind.clone(),
            action: request.action().as_str(),
            topic: request.topic().map(str::to_string),
            verdict: decision.verdict.to_string(),
            rule: self.rule_location(decision),
            label: decision.rule.and_then(|id| {
                self.engine
                    .checked()
                    .rule(id)
                    .label
                    .as_deref()
                    .map(str::to_string)
            }),
            reason: decision.reason.to_string(),
        }
    }

    fn log_denial(&self, request: &Request<'_>, decision: &Decision) {
        let rule = decision
            .rule
            .map(|id| {
                let rule = self.engine.checked().rule(id);
                match &rule.label {
                    Some(label) => format!("{} ({label})", rule.loc),
                    None => rule.loc.to_string(),
                }
            })
            .unwrap_or_else(|| "-".to_string());
        let bind_error = self.session.error().map(|e| e.to_string());
        tracing::info!(
            target: "topicguard::deny",
            client = self.session.client_id(),
            identity = %self.identity().kind,
            action = %request.action(),
            topic = request.topic().unwrap_or("-"),
            verdict = %decision.verdict,
            rule = %rule,
            reason = %decision.reason,
            bind_error = bind_error.as_deref().unwrap_or("-"),
            "denied {} {}",
            request.action(),
            request.topic().unwrap_or(""),
        );
    }
}

/// Authorizes retained messages again for their publishers, against one engine.
///
/// Each distinct publisher (principal and client id) is bound once per check, however many
/// messages it retained. A publisher whose identity no longer binds (the identity was
/// removed, an attribute is no longer declared, the client template changed) is denied like
/// any other request of that session.
pub struct PublisherCheck {
    engine: Arc<Engine>,
    sessions: HashMap<(usize, Arc<str>), Session>,
}

impl PublisherCheck {
    pub(crate) fn new(engine: Arc<Engine>) -> PublisherCheck {
        PublisherCheck {
            engine,
            sessions: HashMap::new(),
        }
    }

    /// The engine this check decides with.
    pub fn engine_id(&self) -> u64 {
        self.engine.id()
    }

    /// May `publisher` still publish `topic` with the retain flag?
    pub fn may_retain(&mut self, publisher: &Publisher, topic: &str) -> Decision {
        let identity = publisher.principal.identity();
        let key = (
            std::ptr::from_ref(identity) as usize,
            publisher.client_id.clone(),
        );
        let engine = &self.engine;
        let session = self
            .sessions
            .entry(key)
            .or_insert_with(|| engine.bind(identity, &publisher.client_id));
        let request = Request::Publish {
            topic,
            retain: true,
        };
        engine.decide(session, request)
    }

    /// Where the deciding rule of `decision` is (`file:line:col`), for logs.
    pub fn rule_location(&self, decision: &Decision) -> String {
        decision
            .rule
            .map(|id| self.engine.checked().rule(id).loc.to_string())
            .unwrap_or_else(|| "-".to_string())
    }
}
