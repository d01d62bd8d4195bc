//! Authentication at CONNECT: credentials in, a verified [`Identity`] out.
//!
//! The broker asks an [`Authenticator`] once per connection. The JWT and certificate
//! verifiers of [`crate::identity`] plug in here; [`AnonymousAuthenticator`] serves the
//! policy's `anonymous` identity kind, which exists only if the policy declares one. An
//! authenticator must never authorize: what the identity may do is the policy's business,
//! decided afterwards by the engine.

use crate::Engine;
use crate::ast::IdentityKind;
use crate::identity::{Identity, Provenance};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// What a CONNECT presents.
#[derive(Clone, Copy, Debug)]
pub struct Credentials<'a> {
    pub client_id: &'a str,
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
    pub peer: SocketAddr,
}

/// Why authentication failed. The message is logged, never sent to the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The credentials are missing, malformed, or do not verify (CONNACK 0x86 / 4).
    #[error("bad credentials: {0}")]
    BadCredentials(String),
    /// No identity kind of the policy accepts this client (CONNACK 0x87 / 5).
    #[error("not authorized: {0}")]
    NotAuthorized(String),
}

/// Turns CONNECT credentials into a verified identity.
pub trait Authenticator: Send + Sync + 'static {
    /// Verifies the credentials against the current policy (`engine`).
    fn authenticate(
        &self,
        credentials: &Credentials<'_>,
        engine: &Engine,
    ) -> Result<Identity, AuthError>;
}

impl<F> Authenticator for F
where
    F: Fn(&Credentials<'_>, &Engine) -> Result<Identity, AuthError> + Send + Sync + 'static,
{
    fn authenticate(
        &self,
        credentials: &Credentials<'_>,
        engine: &Engine,
    ) -> Result<Identity, AuthError> {
        self(credentials, engine)
    }
}

/// Accepts every client as the policy's `anonymous` identity, if it declares one.
///
/// For local development and conformance suites only. With no anonymous identity in the
/// policy, every CONNECT is refused as not authorized.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnonymousAuthenticator;

impl Authenticator for AnonymousAuthenticator {
    fn authenticate(
        &self,
        _credentials: &Credentials<'_>,
        engine: &Engine,
    ) -> Result<Identity, AuthError> {
        let identity = engine
            .checked()
            .identities
            .iter()
            .find(|def| def.kind == IdentityKind::Anonymous)
            .ok_or_else(|| {
                AuthError::NotAuthorized("the policy declares no anonymous identity".into())
            })?;
        Ok(Identity {
            kind: identity.name.clone(),
            attrs: BTreeMap::new(),
            expires_at: None,
            provenance: Provenance::Anonymous,
        })
    }
}
