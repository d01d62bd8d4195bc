//! The workload on Rego (regorus 0.14), with the per-request work Rego needs.
//!
//! Every request becomes an input document `{action, identity: {kind, pid, aid, jti},
//! client_id, topic}`; the policy splits the topic itself (`split(input.topic, "/")`) and
//! evaluates `data.mqtt.allow`. The identity object is built once per connection and
//! shared (regorus values are reference counted). Nothing here caches decisions.

use crate::workload::{AID, Action, Case, JTI, PID};
use regorus::{Engine, Value};
use std::collections::BTreeMap;

/// A regorus engine with the workload policy loaded.
pub struct Rego {
    engine: Engine,
}

/// What one connection keeps: the identity part of every input document.
pub struct RegoSession {
    identity: Value,
    client_id: Value,
}

fn object(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    let map: BTreeMap<Value, Value> = pairs
        .into_iter()
        .map(|(k, v)| (Value::from(k), v))
        .collect();
    Value::from(map)
}

impl Rego {
    /// Loads the modules of the policy (one package, several files).
    pub fn new(modules: &[String]) -> Result<Rego, String> {
        let mut engine = Engine::new();
        for (i, text) in modules.iter().enumerate() {
            engine
                .add_policy(format!("mqtt{i}.rego"), text.clone())
                .map_err(|e| e.to_string())?;
        }
        Ok(Rego { engine })
    }

    /// The identity document of one connection.
    pub fn bind(&self, client_id: &str) -> RegoSession {
        RegoSession {
            identity: object([
                ("kind", Value::from("mobile")),
                ("pid", Value::from(PID)),
                ("aid", Value::from(AID)),
                ("jti", Value::from(JTI)),
            ]),
            client_id: Value::from(client_id),
        }
    }

    fn eval(&mut self, input: Value) -> Result<bool, String> {
        self.engine.set_input(input);
        let value = self
            .engine
            .eval_rule("data.mqtt.allow".to_string())
            .map_err(|e| e.to_string())?;
        Ok(value == Value::from(true))
    }

    /// CONNECT: the identity and the presented client id.
    pub fn connect(&mut self, client_id: &str) -> Result<bool, String> {
        let session = self.bind(client_id);
        self.eval(object([
            ("action", Value::from("connect")),
            ("identity", session.identity),
            ("client_id", session.client_id),
        ]))
    }

    /// One request on a bound connection, including building its input document.
    pub fn decide(&mut self, session: &RegoSession, case: &Case) -> Result<bool, String> {
        if case.action == Action::Connect {
            return self.connect(&case.target);
        }
        self.eval(object([
            ("action", Value::from(case.action.as_str())),
            ("identity", session.identity.clone()),
            ("client_id", session.client_id.clone()),
            ("topic", Value::from(case.target.as_str())),
        ]))
    }
}
