//! The connection's view of the policy: one bound session, re-bound when the policy changes,
//! and one log line per denial.
//!
//! An [`Authorizer`] holds the identity verified at CONNECT and the [`Session`] bound from
//! it. Before each decision it checks whether the shared engine was swapped (policy
//! reload) and, if so, binds the identity again so the decision uses the current policy.
//! Every deny is logged once, at `info`, under the target `topicguard::deny`, with the
//! client, identity, action, topic, verdict, deciding rule (`file:line:col`) and reason.
//! This module must never change a decision.

use crate::Engine;
use crate::decide::{Decision, Request, Session};
use crate::identity::Identity;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// The policy engine as shared by the broker: swapped atomically on reload.
pub type SharedEngine = Arc<ArcSwap<Engine>>;

/// One connection's bound identity.
pub struct Authorizer {
    engines: SharedEngine,
    engine: Arc<Engine>,
    identity: Identity,
    session: Session,
}

impl Authorizer {
    /// Binds `identity` with `client_id` against the current engine.
    pub fn bind(engines: SharedEngine, identity: Identity, client_id: &str) -> Authorizer {
        let engine = engines.load_full();
        let session = engine.bind(&identity, client_id);
        Authorizer {
            engines,
            engine,
            identity,
            session,
        }
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Decides with the current engine, logging a denial.
    pub fn decide(&mut self, request: Request<'_>) -> Decision {
        self.refresh();
        let decision = self.engine.decide(&self.session, request);
        if !decision.is_allowed() {
            self.log_denial(&request, &decision);
        }
        decision
    }

    /// Re-binds when the shared engine was replaced since the last decision.
    fn refresh(&mut self) {
        let current = self.engines.load();
        if !Arc::ptr_eq(&current, &self.engine) {
            self.engine = arc_swap::Guard::into_inner(current);
            self.session = self.engine.bind(&self.identity, self.session.client_id());
        }
    }

    fn log_denial(&self, request: &Request<'_>, decision: &Decision) {
        let rule = decision
            .rule
            .map(|id| self.engine.checked().rule(id).loc.to_string())
            .unwrap_or_else(|| "-".to_string());
        let bind_error = self.session.error().map(|e| e.to_string());
        tracing::info!(
            target: "topicguard::deny",
            client = self.session.client_id(),
            identity = %self.identity.kind,
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
