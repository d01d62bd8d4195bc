//! topicguard and the linear-scan baseline behind the comparison's request shape.
//!
//! Connect binds the identity (where topicguard checks the client id) and then decides
//! CONNECT; the other requests are decided on a session bound once per connection, which
//! is how a broker uses topicguard. Nothing here changes either engine.

use crate::scan::{Scan, ScanSession};
use crate::workload::{AID, Action, Case, JTI, PID};
use topicguard::{Engine, Identity, Policy, Request, Session, Source, Verdict};

/// The identity of the workload's mobile client.
pub fn mobile() -> Identity {
    Identity::asserted("mobile", [("pid", PID), ("aid", AID), ("jti", JTI)])
}

fn load(text: &str) -> Result<Policy, String> {
    Policy::from_source(&Source::new("workload.policy", text.to_string()))
        .map_err(|d| d.render_plain())
}

/// topicguard with its policy compiled.
pub struct Topicguard {
    pub engine: Engine,
    identity: Identity,
}

impl Topicguard {
    pub fn new(text: &str) -> Result<Topicguard, String> {
        let policy = load(text)?;
        let engine = Engine::builder(policy.checked.clone()).build().map_err(|e| e.to_string())?;
        Ok(Topicguard {
            engine,
            identity: mobile(),
        })
    }

    /// The session of one connection.
    pub fn bind(&self, client_id: &str) -> Session {
        self.engine.bind(&self.identity, client_id)
    }

    /// CONNECT: bind (client-id check) and decide.
    pub fn connect(&self, client_id: &str) -> bool {
        let session = self.bind(client_id);
        self.engine.decide(&session, Request::Connect).verdict == Verdict::Allowed
    }

    pub fn decide(&self, session: &Session, case: &Case) -> bool {
        let request = match case.action {
            Action::Connect => return self.connect(&case.target),
            Action::Publish => Request::publish(&case.target),
            Action::Subscribe => Request::subscribe(&case.target),
        };
        self.engine.decide(session, request).verdict == Verdict::Allowed
    }
}

/// The linear scan over the same checked rules.
pub struct LinearScan {
    pub scan: Scan,
    identity: Identity,
}

impl LinearScan {
    pub fn new(text: &str) -> Result<LinearScan, String> {
        let policy = load(text)?;
        Ok(LinearScan {
            scan: Scan::new(&policy.checked),
            identity: mobile(),
        })
    }

    pub fn bind(&self, client_id: &str) -> ScanSession {
        self.scan.bind(&self.identity, client_id)
    }

    pub fn connect(&self, client_id: &str) -> bool {
        let session = self.bind(client_id);
        self.scan
            .decide(&session, topicguard::ast::Action::Connect, "")
            .allowed()
    }

    pub fn decide(&self, session: &ScanSession, case: &Case) -> bool {
        let action = match case.action {
            Action::Connect => return self.connect(&case.target),
            Action::Publish => topicguard::ast::Action::Publish,
            Action::Subscribe => topicguard::ast::Action::Subscribe,
        };
        self.scan.decide(session, action, &case.target).allowed()
    }
}
