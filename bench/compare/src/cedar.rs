//! The workload on Cedar (cedar-policy 4.x), with the per-request work Cedar needs.
//!
//! Cedar cannot split or concatenate strings, so the adapter does what an integrator
//! would: at CONNECT it builds the principal entity `Mobile::"<client id>"` with the
//! verified claims and the derived `account` (`<pid>_<aid>`) and `client` attributes, and
//! for every request it splits the topic (or, at CONNECT, the client id) into a context
//! record `{n, l0, l1, ...}` and builds a `Request` on `Topic::"<topic>"`. Policies then
//! compare levels. Every decision is one `Authorizer::is_authorized` call over the whole
//! policy set. Nothing here caches decisions.

use crate::workload::{AID, Action, Case, JTI, PID};
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression,
};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;

/// The compiled policy set and the uids every request reuses.
pub struct Cedar {
    policies: PolicySet,
    authorizer: Authorizer,
    mobile: EntityTypeName,
    topic: EntityTypeName,
    broker: EntityUid,
    connect: EntityUid,
    publish: EntityUid,
    subscribe: EntityUid,
}

/// What one connection keeps: the principal and the entity store holding it.
pub struct CedarSession {
    principal: EntityUid,
    entities: Entities,
}

fn uid(text: &str) -> Result<EntityUid, String> {
    EntityUid::from_str(text).map_err(|e| e.to_string())
}

/// `{n: <count>, l0: .., l1: .., ...}` from the parts of `text` split on `separator`.
fn levels_context(text: &str, separator: char) -> Result<Context, String> {
    let mut pairs: Vec<(String, RestrictedExpression)> = Vec::with_capacity(9);
    let mut n = 0i64;
    for (i, level) in text.split(separator).enumerate() {
        pairs.push((
            format!("l{i}"),
            RestrictedExpression::new_string(level.to_string()),
        ));
        n += 1;
    }
    pairs.push(("n".to_string(), RestrictedExpression::new_long(n)));
    Context::from_pairs(pairs).map_err(|e| e.to_string())
}

impl Cedar {
    pub fn new(text: &str) -> Result<Cedar, String> {
        let type_name = |t: &str| EntityTypeName::from_str(t).map_err(|e| e.to_string());
        Ok(Cedar {
            policies: PolicySet::from_str(text).map_err(|e| e.to_string())?,
            authorizer: Authorizer::new(),
            mobile: type_name("Mobile")?,
            topic: type_name("Topic")?,
            broker: uid(r#"Broker::"mqtt""#)?,
            connect: uid(r#"Action::"connect""#)?,
            publish: uid(r#"Action::"publish""#)?,
            subscribe: uid(r#"Action::"subscribe""#)?,
        })
    }

    /// Builds the principal entity from the verified claims (once per connection).
    pub fn bind(&self, client_id: &str) -> Result<CedarSession, String> {
        let principal =
            EntityUid::from_type_name_and_id(self.mobile.clone(), EntityId::new(client_id));
        let string = |s: &str| RestrictedExpression::new_string(s.to_string());
        let attrs = HashMap::from([
            ("pid".to_string(), string(PID)),
            ("aid".to_string(), string(AID)),
            ("jti".to_string(), string(JTI)),
            ("account".to_string(), string(&format!("{PID}_{AID}"))),
            ("client".to_string(), string(client_id)),
        ]);
        let entity =
            Entity::new(principal.clone(), attrs, HashSet::new()).map_err(|e| e.to_string())?;
        let entities = Entities::from_entities([entity], None).map_err(|e| e.to_string())?;
        Ok(CedarSession {
            principal,
            entities,
        })
    }

    fn authorize(
        &self,
        session: &CedarSession,
        action: &EntityUid,
        resource: EntityUid,
        context: Context,
    ) -> Result<bool, String> {
        let request = Request::new(
            session.principal.clone(),
            action.clone(),
            resource,
            context,
            None,
        )
        .map_err(|e| e.to_string())?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &session.entities);
        Ok(response.decision() == Decision::Allow)
    }

    /// CONNECT: the principal built from the claims, the client id split into the context.
    pub fn connect(&self, client_id: &str) -> Result<bool, String> {
        let session = self.bind(client_id)?;
        let context = levels_context(client_id, ':')?;
        self.authorize(&session, &self.connect, self.broker.clone(), context)
    }

    /// One request on a bound connection, including building its context and request.
    pub fn decide(&self, session: &CedarSession, case: &Case) -> Result<bool, String> {
        let action = match case.action {
            Action::Connect => return self.connect(&case.target),
            Action::Publish => &self.publish,
            Action::Subscribe => &self.subscribe,
        };
        let resource =
            EntityUid::from_type_name_and_id(self.topic.clone(), EntityId::new(&case.target));
        let context = levels_context(&case.target, '/')?;
        self.authorize(session, action, resource, context)
    }
}
