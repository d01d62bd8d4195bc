//! Decisions: an [`Engine`] answers [`Request`]s for a bound [`Session`].
//!
//! [`Engine::new`] compiles a checked policy into an automaton. At CONNECT,
//! [`Engine::bind`] validates the identity's attributes (the wildcard-injection guard),
//! checks its `require` lines, matches the client id against the identity's template and
//! pre-renders every attribute-dependent level: the result is a [`Session`]. From then on
//! [`Engine::decide`] costs O(levels of the topic) whatever the number of rules, is
//! infallible, and never panics: anything wrong is a deny with a [`Reason`].
//! [`Engine::explain`] gives the full answer with every matching rule and the captures.
//!
//! Semantics (docs/policy-language.md): default deny; deny wins; exact client ids;
//! subscribe means containment (`$share/<group>/` stripped); `$` topics are never matched
//! by a leading wildcard or a level that starts with a capture; a retained publish needs
//! `retain` too; under `subscriptions filtered` a delivery is also denied by the
//! `deny subscribe` rules that match its topic.
//!
//! Failing closed is built in: every level pattern is built and size-checked when the
//! policy is compiled, a session whose attribute-dependent levels cannot all be rendered
//! is rejected at bind, and the regex engine deciding a pattern level cannot fail (the
//! regex-automata meta engine falls back to slower engines rather than give up). So at
//! decide time every level either matches or does not; the one budget left, proving a
//! subscription's containment, denies the whole request when it runs out.

mod bind_plan;
mod denial;
mod explain;
mod filter_steps;
mod plus_levels;
pub mod reference;
mod request;
mod session;
mod subscribe;
mod walk;

pub use denial::Nearest;
pub use request::{Decision, Explanation, Reason, Request, RuleRef, Verdict};
pub use session::{Attrs, BindError, Session};

use crate::automaton::Automaton;
use crate::check::Checked;
use crate::compile::{CompileError, Limits};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_ENGINE_ID: AtomicU64 = AtomicU64::new(1);

/// How to build an [`Engine`]: the checked rules and the [`Limits`] to compile them within.
#[derive(Debug)]
#[must_use = "an EngineBuilder does nothing until built"]
pub struct EngineBuilder {
    checked: Arc<Checked>,
    limits: Limits,
}

impl EngineBuilder {
    /// Compile and decide within `limits` instead of [`Limits::default`].
    pub fn limits(mut self, limits: Limits) -> EngineBuilder {
        self.limits = limits;
        self
    }

    /// Compiles the rules into an engine, or says which limit a rule passes.
    pub fn build(self) -> Result<Engine, CompileError> {
        let EngineBuilder { checked, limits } = self;
        let automaton = crate::compile::compile(&checked, &limits)?;
        #[cfg(debug_assertions)]
        if let Err(problem) = automaton.verify() {
            panic!("compiler bug: automaton failed verification: {problem}");
        }
        let bind_plans = checked
            .identities
            .iter()
            .enumerate()
            .map(|(i, def)| {
                let id = crate::check::IdentityId(i as u16);
                bind_plan::BindPlan::new(def, automaton.identity_slots(id))
            })
            .collect();
        Ok(Engine {
            id: NEXT_ENGINE_ID.fetch_add(1, Ordering::Relaxed),
            checked,
            automaton,
            bind_plans,
            limits,
        })
    }
}

/// A compiled policy, ready to decide. Immutable, `Send + Sync`; share it with `Arc`.
#[derive(Debug)]
pub struct Engine {
    id: u64,
    checked: Arc<Checked>,
    automaton: Automaton,
    /// What binding needs of each identity, indexed by `IdentityId`.
    bind_plans: Vec<bind_plan::BindPlan>,
    limits: Limits,
}

impl Engine {
    /// Compiles a checked policy with default limits: the one constructor. For other
    /// limits, or to share the checked rules of a loaded [`Policy`](crate::policy::Policy)
    /// rather than copy them, use [`Engine::builder`].
    pub fn new(checked: &Checked) -> Result<Engine, CompileError> {
        Engine::builder(Arc::new(checked.clone())).build()
    }

    /// A builder over shared checked rules (`policy.checked.clone()` shares a loaded
    /// policy's): set [`EngineBuilder::limits`], then [`EngineBuilder::build`].
    pub fn builder(checked: Arc<Checked>) -> EngineBuilder {
        EngineBuilder {
            checked,
            limits: Limits::default(),
        }
    }

    /// The checked policy the engine was compiled from.
    pub fn checked(&self) -> &Checked {
        &self.checked
    }

    /// The compiled automaton.
    pub fn automaton(&self) -> &Automaton {
        &self.automaton
    }

    /// The bind plan of one identity (every identity of the checked policy has one).
    pub(crate) fn bind_plan(
        &self,
        identity: crate::check::IdentityId,
    ) -> Option<&bind_plan::BindPlan> {
        self.bind_plans.get(identity.0 as usize)
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Binds a verified identity and the CONNECT client id into a session.
    ///
    /// Never fails: a rejected identity yields a session whose every decision is a deny
    /// carrying the [`BindError`].
    pub fn bind(&self, identity: &crate::identity::Identity, client_id: &str) -> Session {
        session::bind(self, identity, client_id)
    }

    /// Decides one request. Infallible, allocation-free on the publish/receive path.
    pub fn decide(&self, session: &Session, request: Request<'_>) -> Decision {
        if session.engine_id() != self.id {
            return Decision::invalid(Reason::StaleSession);
        }
        if let Some(denied) = session.rejection() {
            return denied;
        }
        match request {
            Request::Connect => walk::decide_connect(self, session),
            Request::Publish { topic, retain } => {
                walk::decide_publish(self, session, topic, retain)
            }
            Request::Receive { topic } => walk::decide_receive(self, session, topic),
            Request::Subscribe { filter } => subscribe::decide_subscribe(self, session, filter),
        }
    }

    /// Decides and explains: every matching rule, with locations and captures.
    pub fn explain(&self, session: &Session, request: Request<'_>) -> Explanation {
        explain::explain(self, session, request)
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}
