//! EMQX 5's HTTP authentication and HTTP authorization, in the JSON shapes its docs give.
//!
//! - `POST /emqx/authn`, body template `{"clientid": "${clientid}", "username":
//!   "${username}", "password": "${password}"}`. Answer (status 200, `application/json`):
//!   `{"result": "allow", "is_superuser": false, "expire_at": <exp>}` (`expire_at`, EMQX
//!   5.8 and later, makes EMQX disconnect the client when its JWT expires; it is left out
//!   for a credential without expiry) or `{"result": "deny"}`.
//! - `POST /emqx/authz`, body template `{"clientid": "${clientid}", "username":
//!   "${username}", "action": "${action}", "topic": "${topic}", "retain": "${retain}"}`.
//!   Answer `{"result": "allow"}` or `{"result": "deny"}`. `action` is `publish` or
//!   `subscribe`; EMQX checks no delivery, so a subscription must carry receive
//!   ([`super::Delivery::Unchecked`]).
//!
//! The identity stays in this node's session table under (username, client id); EMQX's
//! `client_attrs` are not used to carry it back, since `client_attrs_init` can fill them
//! from fields the client chooses. Malformed requests get 400 with `{"result": "deny"}`:
//! EMQX reads any status but 200/204 as `ignore`, so topicguard must be the last
//! authenticator and authorizer, with `authorization.no_match = deny`.

use super::fields::{Encoding, FieldError, Fields};
use super::sessions::{BrokerKind, SessionKey};
use super::{Authz, Check, Delivery, Denial, Reply, log_denial};
use serde_json::{Value, json};

/// The two endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The authentication endpoint.
    Authn,
    /// The authorization (ACL) endpoint.
    Authz,
}

impl Endpoint {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Endpoint::Authn => "emqx/authn",
            Endpoint::Authz => "emqx/authz",
        }
    }
}

/// Answers one request.
pub fn handle(
    authz: &Authz,
    endpoint: Endpoint,
    content_type: Option<&str>,
    body: &[u8],
    now: u64,
) -> Reply {
    let answer =
        Fields::parse(content_type, body, Encoding::Json).and_then(|fields| match endpoint {
            Endpoint::Authn => authn(authz, &fields, now),
            Endpoint::Authz => authorize(authz, &fields, now),
        });
    match answer {
        Ok(Ok(allowed)) => Reply::json(200, &allowed),
        Ok(Err((key, denial))) => {
            log_denial(endpoint.name(), Some(&key), &denial);
            Reply::json(200, &json!({"result": "deny"}))
        }
        Err(error) => {
            log_denial(endpoint.name(), None, &error);
            Reply::json(400, &json!({"result": "deny"}))
        }
    }
}

type Answer = Result<Result<Value, (SessionKey, Denial)>, FieldError>;

fn key(fields: &Fields<'_>) -> Result<SessionKey, FieldError> {
    Ok(SessionKey::new(
        BrokerKind::Emqx,
        fields.key("username")?,
        fields.key("clientid")?,
        "",
    ))
}

fn authn(authz: &Authz, fields: &Fields<'_>, now: u64) -> Answer {
    let key = key(fields)?;
    let password = fields.require("password")?;
    Ok(match authz.authenticate(key.clone(), password, now) {
        Ok(authenticated) => {
            let mut answer = json!({"result": "allow", "is_superuser": false});
            if let Some(exp) = authenticated.expires_at {
                answer["expire_at"] = json!(exp);
            }
            Ok(answer)
        }
        Err(denial) => Err((key, denial)),
    })
}

/// `${retain}` renders as `true` or `false`; absent means not retained.
fn retain(fields: &Fields<'_>) -> Result<bool, FieldError> {
    match fields.get("retain") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(FieldError::BadValue {
            name: "retain",
            value: other.to_string(),
        }),
    }
}

fn authorize(authz: &Authz, fields: &Fields<'_>, now: u64) -> Answer {
    let key = key(fields)?;
    let topic = fields.require("topic")?;
    let check = match fields.require("action")? {
        "publish" => Check::Publish {
            topic,
            retain: retain(fields)?,
        },
        "subscribe" => Check::Subscribe {
            filter: topic,
            delivery: Delivery::Unchecked,
        },
        other => {
            return Err(FieldError::BadValue {
                name: "action",
                value: other.to_string(),
            });
        }
    };
    Ok(match authz.decide(&key, check, now) {
        Ok(()) => Ok(json!({"result": "allow"})),
        Err(denial) => Err((key, denial)),
    })
}
