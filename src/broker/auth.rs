//! Authentication at CONNECT: credentials in, a verified [`Identity`] out.
//!
//! The broker asks an [`Authenticator`] once per connection. [`IdentityAuthenticator`] is
//! the production one: a JWT (the CONNECT password, or on WebSockets a bearer token) or the
//! TLS client certificate chain, verified by [`crate::identity::select::Verifier`] as the
//! one identity whose own trust anchors (its `trust` label's JWKS or CA set) accept it;
//! [`AnonymousAuthenticator`] serves the policy's `anonymous` identity kind, which exists
//! only if the policy declares one. [`Transport`] is what the listener learnt before
//! CONNECT (the verified certificate chain, a WebSocket token). An authenticator must never
//! authorize: what the identity may do is the policy's business, decided afterwards by the
//! engine.

use crate::ast::IdentityKind;
use crate::broker::authorize::SharedEngine;
use crate::check::Checked;
use crate::decide::Engine;
use crate::identity::select::{ConfigError, Credential, CredentialConfig, SelectError, Verifier};
use crate::identity::{Identity, Provenance};
use rustls_pki_types::{CertificateDer, UnixTime};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// What the listener established before CONNECT.
#[derive(Clone, Debug, Default)]
pub struct Transport {
    /// The listener's name (`tcp`, `tls`, `ws`, `wss`, ...), for logs.
    pub listener: Arc<str>,
    /// The client certificate chain, leaf first, already verified by the TLS handshake.
    pub peer_certificates: Vec<CertificateDer<'static>>,
    /// A token from the WebSocket upgrade (`Authorization: Bearer` or `?token=`).
    pub bearer_token: Option<String>,
}

impl Transport {
    /// A plain TCP connection: nothing established before CONNECT.
    pub fn plain() -> Transport {
        Transport {
            listener: Arc::from("tcp"),
            ..Transport::default()
        }
    }
}

/// What a CONNECT presents.
#[derive(Clone, Copy, Debug)]
pub struct Credentials<'a> {
    /// The client id of the CONNECT.
    pub client_id: &'a str,
    /// The user name of the CONNECT, if any.
    pub username: Option<&'a str>,
    pub(crate) password: Option<&'a [u8]>,
    /// The client's address.
    pub peer: SocketAddr,
    pub(crate) transport: &'a Transport,
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

/// Verifies JWTs and client certificates through the identity layer; falls back to the
/// policy's `anonymous` identity (if it declares one) when no credential is presented.
///
/// A JWT is taken from the CONNECT password, else from the WebSocket upgrade; without a
/// JWT, the TLS client certificate is used. A credential that is presented and fails is
/// never replaced by another one or by the anonymous identity.
pub struct IdentityAuthenticator {
    config: CredentialConfig,
    engines: SharedEngine,
    /// The verifier for the engine it was built from (kept alive so the pointer stays unique).
    cache: Mutex<Option<(Arc<Engine>, Arc<Verifier>)>>,
}

impl IdentityAuthenticator {
    /// Checks that `config` can verify credentials for the current policy.
    pub fn new(
        config: CredentialConfig,
        engines: SharedEngine,
    ) -> Result<IdentityAuthenticator, ConfigError> {
        Verifier::new(engines.load().checked(), &config)?;
        Ok(IdentityAuthenticator {
            config,
            engines,
            cache: Mutex::new(None),
        })
    }

    /// Whether the credential material can serve `checked` (run before a policy swap).
    /// Identities without configured anchors and unused anchors are logged as warnings.
    pub fn check_policy(&self, checked: &Checked) -> Result<(), ConfigError> {
        let verifier = Verifier::new(checked, &self.config)?;
        for unanchored in verifier.unanchored() {
            tracing::warn!("no credential can bind: {unanchored}");
        }
        for unused in verifier.unused_anchors() {
            tracing::warn!("unused anchors: {unused}");
        }
        Ok(())
    }

    /// The credential material.
    pub fn config(&self) -> &CredentialConfig {
        &self.config
    }

    fn verifier_for(&self, engine: &Engine) -> Result<Arc<Verifier>, AuthError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, verifier)) = cache.as_ref()
            && std::ptr::eq(Arc::as_ptr(cached), engine)
        {
            return Ok(verifier.clone());
        }
        let verifier = Arc::new(
            Verifier::new(engine.checked(), &self.config)
                .map_err(|e| AuthError::NotAuthorized(format!("credential configuration: {e}")))?,
        );
        let current = self.engines.load_full();
        if std::ptr::eq(Arc::as_ptr(&current), engine) {
            *cache = Some((current, verifier.clone()));
        }
        Ok(verifier)
    }
}

impl Authenticator for IdentityAuthenticator {
    fn authenticate(
        &self,
        credentials: &Credentials<'_>,
        engine: &Engine,
    ) -> Result<Identity, AuthError> {
        let token = presented_token(credentials)?;
        let chain = &credentials.transport.peer_certificates;
        let credential = match token {
            Some(token) => Credential::Jwt(token),
            None if !chain.is_empty() => Credential::Certificate { chain, ocsp: None },
            None => return AnonymousAuthenticator.authenticate(credentials, engine),
        };
        let verifier = self.verifier_for(engine)?;
        verifier
            .verify(credential, UnixTime::now())
            .map(|verified| verified.identity)
            .map_err(refusal)
    }
}

/// The JWT a client presented: the CONNECT password, else the WebSocket token.
fn presented_token<'a>(credentials: &Credentials<'a>) -> Result<Option<&'a str>, AuthError> {
    match credentials.password {
        Some(password) => std::str::from_utf8(password)
            .map(|text| Some(text.trim()))
            .map_err(|_| AuthError::BadCredentials("the password is not a UTF-8 JWT".into())),
        None => Ok(credentials.transport.bearer_token.as_deref()),
    }
}

/// A token that does not verify is a bad credential (0x86 / 4); a credential that no
/// identity block accepts, or that several would accept, is not authorized (0x87 / 5).
fn refusal(error: SelectError) -> AuthError {
    if error.is_bad_token() {
        AuthError::BadCredentials(error.to_string())
    } else {
        AuthError::NotAuthorized(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::jwt::JwtError;

    fn credentials<'a>(password: Option<&'a [u8]>, transport: &'a Transport) -> Credentials<'a> {
        Credentials {
            client_id: "c",
            username: None,
            password,
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            transport,
        }
    }

    #[test]
    fn the_password_wins_over_the_websocket_token() {
        let transport = Transport {
            bearer_token: Some("from.the.header".into()),
            ..Transport::plain()
        };
        let given = credentials(Some(b" a.b.c\n"), &transport);
        assert_eq!(presented_token(&given), Ok(Some("a.b.c")));
        let none = credentials(None, &transport);
        assert_eq!(presented_token(&none), Ok(Some("from.the.header")));
        let binary = credentials(Some(&[0xff, 0xfe]), &transport);
        assert!(matches!(
            presented_token(&binary),
            Err(AuthError::BadCredentials(_))
        ));
        let plain = Transport::plain();
        assert_eq!(presented_token(&credentials(None, &plain)), Ok(None));
    }

    #[test]
    fn a_bad_token_is_bad_credentials_and_an_unknown_kind_not_authorized() {
        let bad = SelectError::Jwt {
            identity: "mobile".into(),
            error: Box::new(JwtError::TooLong { len: 9, max: 8 }),
        };
        assert!(matches!(refusal(bad), AuthError::BadCredentials(m) if m.contains("mobile")));
        let unknown = SelectError::NoIdentityFor {
            issuer: "`https://elsewhere/`".into(),
            audience: "(none)".into(),
        };
        assert!(matches!(refusal(unknown), AuthError::NotAuthorized(_)));
        let ambiguous = SelectError::Ambiguous {
            candidates: vec!["tenant_app".into(), "operator".into()],
        };
        assert!(
            matches!(refusal(ambiguous), AuthError::NotAuthorized(m) if m.contains("operator"))
        );
    }
}
