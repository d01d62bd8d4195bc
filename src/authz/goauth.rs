//! mosquitto-go-auth's HTTP backend (`auth_opt_backends http`), under `/goauth/`.
//!
//! go-auth POSTs JSON (`auth_opt_http_params_mode json`, its default) or a form (`form`):
//!
//! - `auth_opt_http_getuser_uri /goauth/user`: `username`, `password`, `clientid`.
//! - `auth_opt_http_superuser_uri /goauth/superuser`: `username`. Always refused: a
//!   superuser would skip the policy.
//! - `auth_opt_http_aclcheck_uri /goauth/acl`: `username`, `clientid`, `topic`, `acc`:
//!   1 read (mosquitto asks before each delivery: a receive), 2 write (publish), 3 both,
//!   4 subscribe, 8 unsubscribe (allowed for a live session: it only takes rights away).
//!
//! Answers suit both of go-auth's useful `auth_opt_http_response_mode`s: `status` (a 2xx
//! allows) and `json` (`{"ok": true|false, "error": ...}`): allow is 200 with `{"ok":
//! true}`, deny 403 with `{"ok": false}`, a malformed request 400. Mode `text` is not
//! supported: every answer there reads as a deny. Since mosquitto checks each delivery,
//! subscriptions are decided on subscribe alone ([`super::Delivery::Checked`]).

use super::fields::{Encoding, FieldError, Fields};
use super::sessions::{BrokerKind, SessionKey};
use super::{Authz, Check, Delivery, Denial, Reply, log_denial};
use serde_json::json;

/// The three endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/user`: authenticate a client.
    User,
    /// `/superuser`: always refused (no client is a superuser).
    Superuser,
    /// `/acl`: authorize a topic access.
    Acl,
}

impl Endpoint {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Endpoint::User => "goauth/user",
            Endpoint::Superuser => "goauth/superuser",
            Endpoint::Acl => "goauth/acl",
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
        Fields::parse(content_type, body, Encoding::FormOrJson).and_then(|fields| match endpoint {
            Endpoint::User => user(authz, &fields, now),
            Endpoint::Superuser => superuser(&fields),
            Endpoint::Acl => acl(authz, &fields, now),
        });
    match answer {
        Ok(Ok(())) => Reply::json(200, &json!({"ok": true, "error": ""})),
        Ok(Err((key, denial))) => {
            log_denial(endpoint.name(), key.as_ref(), &denial);
            Reply::json(403, &json!({"ok": false, "error": "not authorized"}))
        }
        Err(error) => {
            log_denial(endpoint.name(), None, &error);
            Reply::json(400, &json!({"ok": false, "error": error.to_string()}))
        }
    }
}

type Answer = Result<Result<(), (Option<SessionKey>, Denial)>, FieldError>;

fn key(fields: &Fields<'_>) -> Result<SessionKey, FieldError> {
    Ok(SessionKey::new(
        BrokerKind::GoAuth,
        fields.key("username")?,
        fields.key("clientid")?,
        "",
    ))
}

fn user(authz: &Authz, fields: &Fields<'_>, now: u64) -> Answer {
    let key = key(fields)?;
    let password = fields.require("password")?;
    Ok(match authz.authenticate(key.clone(), password, now) {
        Ok(_) => Ok(()),
        Err(denial) => Err((Some(key), denial)),
    })
}

fn superuser(fields: &Fields<'_>) -> Answer {
    fields.key("username")?;
    let denial = Denial::NotNeeded("superuser (topicguard has none)".into());
    Ok(Err((None, denial)))
}

/// mosquitto's access bits, as go-auth forwards them.
const READ: u8 = 1;
const WRITE: u8 = 2;
const SUBSCRIBE: u8 = 4;
const UNSUBSCRIBE: u8 = 8;

fn acl(authz: &Authz, fields: &Fields<'_>, now: u64) -> Answer {
    let key = key(fields)?;
    let topic = fields.require("topic")?;
    let acc = fields.require("acc")?;
    let bad = || FieldError::BadValue {
        name: "acc",
        value: acc.to_string(),
    };
    let checks: &[Check<'_>] = match acc.parse::<u8>().map_err(|_| bad())? {
        READ => &[Check::Receive { topic }],
        WRITE => &[Check::Publish {
            topic,
            retain: false,
        }],
        3 => &[
            Check::Publish {
                topic,
                retain: false,
            },
            Check::Receive { topic },
        ],
        SUBSCRIBE => &[Check::Subscribe {
            filter: topic,
            delivery: Delivery::Checked,
        }],
        UNSUBSCRIBE => return Ok(authz.has_session(&key, now).map_err(|d| (Some(key), d))),
        _ => return Err(bad()),
    };
    for check in checks {
        if let Err(denial) = authz.decide(&key, *check, now) {
            return Ok(Err((Some(key), denial)));
        }
    }
    Ok(Ok(()))
}
