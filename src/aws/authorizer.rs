//! The AWS IoT Core custom authorizer response for one verified credential.
//!
//! A Lambda authorizer answers each CONNECT with `isAuthenticated`, `principalId`,
//! `policyDocuments`, `disconnectAfterInSeconds` and `refreshAfterInSeconds` (AWS IoT
//! Developer Guide, "Defining your Lambda function"). Their documented limits are kept:
//! `principalId` matches `[a-zA-Z0-9]{1,128}`; both durations are whole seconds from 300 to
//! 86,400; at most ten documents of 2,048 characters ([`super::document`]).
//!
//! - The connection must end when the credential expires, and AWS's shortest connection is
//!   300 s: a token expiring sooner is refused (the client must fetch a fresh one), never
//!   granted past its expiry. A longer one is cut at 86,400 s.
//! - Anything that is not a clean grant — a credential that does not verify, an identity the
//!   policy rejects, a client id that is not the identity's, no connect rule, a policy that
//!   cannot be rendered — gives [`AuthorizerResponse::refused`]: `isAuthenticated: false`
//!   and, in case anything reads further, one document denying every IoT action.
//!
//! This module computes the response; reading the token and printing it is the CLI's job.

use super::document::{Document, Statement, VERSION};
use super::{Rendered, Target, render};
use crate::decide::{Engine, Session};
use crate::identity::Identity;
use serde::Serialize;

/// AWS's shortest and longest connection and refresh intervals, in seconds.
pub const MIN_SECONDS: u64 = 300;
pub(crate) const MAX_SECONDS: u64 = 86_400;

/// The response AWS IoT Core expects from an authorizer Lambda.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    pub(crate) is_authenticated: bool,
    pub(crate) principal_id: String,
    pub(crate) policy_documents: Vec<Document>,
    pub(crate) disconnect_after_in_seconds: u64,
    pub(crate) refresh_after_in_seconds: u64,
}

impl AuthorizerResponse {
    /// The answer to anything that is not a clean grant.
    pub fn refused() -> AuthorizerResponse {
        AuthorizerResponse {
            is_authenticated: false,
            principal_id: "unauthenticated".to_string(),
            policy_documents: vec![deny_all()],
            disconnect_after_in_seconds: MIN_SECONDS,
            refresh_after_in_seconds: MIN_SECONDS,
        }
    }
}

/// One document denying every IoT action on every resource.
pub fn deny_all() -> Document {
    Document {
        version: VERSION,
        statements: vec![Statement {
            sid: "RefuseEverything".to_string(),
            effect: "Deny",
            action: "iot:*",
            resources: vec!["*".to_string()],
        }],
    }
}

/// Why an authorizer refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the credential expires in {left} s, before AWS's shortest connection ({MIN_SECONDS} s): fetch a fresh one"
    )]
    /// The credential expires within the minimum session length (seconds left).
    ExpiresTooSoon {
        /// Seconds left before the credential expires.
        left: i64,
    },
    /// The credential has no expiry.
    #[error("the credential has no expiry, so the connection could not end with it")]
    NoExpiry,
    /// The session cannot be rendered as policy documents.
    #[error(transparent)]
    Render(#[from] super::RenderError),
}

/// The response for a bound session of a verified identity, at `now` (Unix seconds).
/// `refresh` is the wanted policy refresh interval; it is kept within AWS's range and
/// never past the disconnection.
pub fn respond(
    engine: &Engine,
    session: &Session,
    identity: &Identity,
    target: &Target,
    now: u64,
    refresh: u64,
) -> Result<(AuthorizerResponse, Rendered), Refusal> {
    let expires = identity.expires_at.ok_or(Refusal::NoExpiry)?;
    let left = expires as i64 - now as i64;
    if left < MIN_SECONDS as i64 {
        return Err(Refusal::ExpiresTooSoon { left });
    }
    let disconnect = (left as u64).min(MAX_SECONDS);
    let rendered = render(engine, session, target)?;
    let response = AuthorizerResponse {
        is_authenticated: true,
        principal_id: principal_id(session),
        policy_documents: rendered.documents.clone(),
        disconnect_after_in_seconds: disconnect,
        refresh_after_in_seconds: refresh.clamp(MIN_SECONDS, MAX_SECONDS).min(disconnect),
    };
    Ok((response, rendered))
}

/// `principalId`: the identity name's letters and digits, then 32 hex digits of a SHA-256
/// over the identity name, its attributes and the client id — stable for a principal,
/// distinct between principals, and only `[a-zA-Z0-9]`, at most 128 characters.
pub fn principal_id(session: &Session) -> String {
    let mut hashed = Vec::new();
    hashed.extend_from_slice(session.kind().as_bytes());
    for (name, value) in session.attrs().iter() {
        hashed.push(0);
        hashed.extend_from_slice(name.as_bytes());
        hashed.push(b'=');
        hashed.extend_from_slice(value.as_bytes());
    }
    hashed.push(0);
    hashed.extend_from_slice(session.client_id().as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA256, &hashed);
    let hex: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let name: String = session
        .kind()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    format!("{name}{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::policy::Policy;
    use crate::source::Source;

    #[test]
    fn principal_ids_are_alphanumeric_and_tell_client_ids_apart() {
        let text = "identity s from jwt {\n    sid = claim \"sid\"\n    client \"s:{sid}:{+i}\"\n}\nallow s connect\n";
        let policy = Policy::from_source(&Source::new("t.policy", text)).unwrap();
        let engine = Engine::builder(policy.checked.clone()).build().unwrap();
        let identity = Identity::asserted("s", [("sid", "a*b")]);
        let one = principal_id(&engine.bind(&identity, "s:a*b:1"));
        let two = principal_id(&engine.bind(&identity, "s:a*b:2"));
        assert_ne!(one, two);
        assert_eq!(one, principal_id(&engine.bind(&identity, "s:a*b:1")));
        for id in [one, two] {
            assert!((1..=128).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn the_refusal_denies_everything() {
        let refused = serde_json::to_value(AuthorizerResponse::refused()).unwrap();
        assert_eq!(refused["isAuthenticated"], false);
        assert_eq!(
            refused["policyDocuments"][0]["Statement"][0]["Effect"],
            "Deny"
        );
        assert_eq!(
            refused["policyDocuments"][0]["Statement"][0]["Resource"][0],
            "*"
        );
        assert_eq!(refused["disconnectAfterInSeconds"], 300);
    }
}
