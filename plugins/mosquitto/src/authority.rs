//! What the plugin decides with: the compiled policy and the credential verifier, loaded
//! together from the configured files.
//!
//! [`Authority::load`] reads the policy, the JWKS and the CA/CRL files, compiles the engine
//! and builds the identity verifier; any failure is one [`LoadError`] naming the file, and
//! nothing is half-loaded. [`Authority::admit`] turns what a CONNECT presented
//! ([`Presented`]) into a bound [`Session`]: the credential is verified against the policy's
//! own identity rules and anchors, bound with the client id (the `client` template is
//! enforced) and the CONNECT itself is decided. Cost: a load is a policy compile (milliseconds
//! for thousands of rules); an admission is one signature or chain verification plus a bind
//! (about a microsecond). This module must never return an identity that
//! [`Verifier::verify`] did not produce, and never admits a session the engine refused.

use crate::options::Options;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::path::Path;
use std::sync::Arc;
use topicguard::ast::IdentityKind;
use topicguard::compile::CompileError;
use topicguard::decide::BindError;
use topicguard::identity::jwt::JwtKeys;
use topicguard::identity::keys::{DEFAULT_RELOAD_COOLDOWN, KeyError, KeySource, KeyStore};
use topicguard::identity::select::{
    ConfigError, Credential, CredentialConfig, SelectError, Verifier,
};
use topicguard::identity::x509::{TrustError, TrustStore};
use topicguard::identity::{Identity, Provenance};
use topicguard::{Decision, Engine, Policy, Request, Session, Verdict};

/// A compiled policy with the verifier for its identity blocks. Immutable once loaded.
#[derive(Debug)]
pub struct Authority {
    engine: Engine,
    verifier: Verifier,
    /// The policy's `from anonymous` identity, for clients that present no credential.
    anonymous: Option<String>,
    /// What the load established, for the log: rules, warnings, unusable identity blocks.
    pub summary: LoadSummary,
}

/// What a successful load reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadSummary {
    pub rules: usize,
    /// The policy's warnings, one line each (`file:line:col: warning[code]: message`).
    pub warnings: Vec<String>,
    /// Identity blocks that can admit nobody with the configured key material.
    pub unusable: Vec<String>,
}

/// Why the configured files could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The policy file is unreadable or invalid; one line per diagnostic.
    #[error("{0}")]
    Policy(String),
    #[error("cannot compile {path}: {error}")]
    Compile { path: String, error: CompileError },
    #[error("plugin_opt_jwks: {0}")]
    Jwks(KeyError),
    #[error("plugin_opt_cafile / plugin_opt_crlfile: {0}")]
    Trust(TrustError),
    #[error("plugin_opt_crlfile is set but no plugin_opt_cafile: CRLs need the CAs they belong to")]
    CrlWithoutCa,
    #[error("{path}: {error}")]
    Credentials { path: String, error: ConfigError },
}

/// What a CONNECT presented, in the order it is used: the password (a JWT), else the TLS
/// client certificate, else nothing (the policy's anonymous identity, if it has one). A
/// credential that is presented and fails is never replaced by another one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presented {
    Jwt(String),
    /// The leaf certificate (DER) of the TLS session; mosquitto gives the leaf only.
    Certificate(Vec<u8>),
    Nothing,
}

impl Presented {
    /// Chooses the credential: `certificate` is asked only when there is no password.
    pub fn from_connect(
        password: Option<&[u8]>,
        certificate: impl FnOnce() -> Result<Option<Vec<u8>>, Refusal>,
    ) -> Result<Presented, Refusal> {
        if let Some(password) = password {
            let token = std::str::from_utf8(password).map_err(|_| Refusal::PasswordNotUtf8)?;
            return Ok(Presented::Jwt(token.trim().to_string()));
        }
        Ok(match certificate()? {
            Some(der) => Presented::Certificate(der),
            None => Presented::Nothing,
        })
    }

    /// `JWT`, `certificate` or `no credential`, for logs (never the credential itself).
    pub fn describe(&self) -> &'static str {
        match self {
            Presented::Jwt(_) => "JWT",
            Presented::Certificate(_) => "client certificate",
            Presented::Nothing => "no credential",
        }
    }
}

/// Why a client is refused. The text is logged, never sent to the client.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("no policy is loaded (see the error logged when it failed); every client is refused")]
    NoPolicy,
    #[error("mosquitto gave no client id")]
    NoClientId,
    #[error("the password is not UTF-8, so not a JWT")]
    PasswordNotUtf8,
    #[error("the TLS client certificate could not be DER-encoded")]
    CertificateUnreadable,
    #[error(
        "no credential (neither a password nor a client certificate) and the policy declares no anonymous identity"
    )]
    NoCredential,
    #[error("{0}")]
    Credential(#[from] SelectError),
    #[error("identity `{kind}` cannot be bound: {error}")]
    Bind { kind: String, error: BindError },
    #[error("identity `{kind}` may not connect ({verdict})")]
    ConnectDenied { kind: String, verdict: Verdict },
    #[error("the credential expired at {at} (Unix time)")]
    Expired { at: u64 },
}

impl Authority {
    /// Loads everything `options` names, or nothing.
    pub fn load(options: &Options) -> Result<Authority, LoadError> {
        let policy_path = options.policy.display().to_string();
        let policy = Policy::load(&options.policy).map_err(|e| LoadError::Policy(e.to_string()))?;
        let engine = Engine::from_policy(&policy).map_err(|error| LoadError::Compile {
            path: policy_path.clone(),
            error,
        })?;
        let config = credential_config(options)?;
        let verifier =
            Verifier::new(&policy.checked, &config).map_err(|error| LoadError::Credentials {
                path: policy_path,
                error,
            })?;
        let anonymous = policy
            .checked
            .identities
            .iter()
            .find(|def| def.kind == IdentityKind::Anonymous)
            .map(|def| def.name.clone());
        let unusable = policy
            .checked
            .identities
            .iter()
            .filter_map(|def| match def.kind {
                IdentityKind::Jwt if config.jwt.is_none() => Some(format!(
                    "identity `{}` (from jwt) admits nobody: plugin_opt_jwks is not set",
                    def.name
                )),
                IdentityKind::Certificate if config.trust.is_none() => Some(format!(
                    "identity `{}` (from certificate) admits nobody: plugin_opt_cafile is not set",
                    def.name
                )),
                _ => None,
            })
            .collect();
        let summary = LoadSummary {
            rules: policy.checked.rules.len(),
            warnings: policy
                .warnings
                .render_short()
                .lines()
                .map(str::to_string)
                .collect(),
            unusable,
        };
        Ok(Authority {
            engine,
            verifier,
            anonymous,
            summary,
        })
    }

    /// Verifies the credential, binds it with `client_id` and decides the CONNECT.
    pub fn admit(
        &self,
        presented: &Presented,
        client_id: &str,
        now: UnixTime,
    ) -> Result<Session, Refusal> {
        let identity = self.identify(presented, now)?;
        let session = self.engine.bind(&identity, client_id);
        if let Some(error) = session.error() {
            return Err(Refusal::Bind {
                kind: identity.kind,
                error: error.clone(),
            });
        }
        let connect = self.engine.decide(&session, Request::Connect);
        if !connect.is_allowed() {
            return Err(Refusal::ConnectDenied {
                kind: identity.kind,
                verdict: connect.verdict,
            });
        }
        Ok(session)
    }

    /// Decides one request for a session this authority admitted.
    pub fn decide(&self, session: &Session, request: Request<'_>) -> Decision {
        self.engine.decide(session, request)
    }

    fn identify(&self, presented: &Presented, now: UnixTime) -> Result<Identity, Refusal> {
        let verified = match presented {
            Presented::Jwt(token) => self.verifier.verify(Credential::Jwt(token), now)?,
            Presented::Certificate(der) => {
                let chain = [CertificateDer::from(der.as_slice())];
                let credential = Credential::Certificate {
                    chain: &chain,
                    ocsp: None,
                };
                self.verifier.verify(credential, now)?
            }
            Presented::Nothing => {
                let kind = self.anonymous.clone().ok_or(Refusal::NoCredential)?;
                return Ok(Identity {
                    kind,
                    attrs: Default::default(),
                    expires_at: None,
                    provenance: Provenance::Anonymous,
                });
            }
        };
        Ok(verified.identity)
    }
}

/// Keys and anchors from the option files.
fn credential_config(options: &Options) -> Result<CredentialConfig, LoadError> {
    let mut config = CredentialConfig::default();
    if let Some(jwks) = &options.jwks {
        let store = KeyStore::load(KeySource::JwksFile(jwks.clone()), DEFAULT_RELOAD_COOLDOWN)
            .map_err(LoadError::Jwks)?;
        config.jwt = Some(JwtKeys::new(Arc::new(store)));
    }
    if options.ca.is_empty() {
        if !options.crl.is_empty() {
            return Err(LoadError::CrlWithoutCa);
        }
    } else {
        let cas: Vec<&Path> = options.ca.iter().map(|p| p.as_path()).collect();
        let crls: Vec<&Path> = options.crl.iter().map(|p| p.as_path()).collect();
        let trust = TrustStore::from_pem_files(&cas, &crls).map_err(LoadError::Trust)?;
        config.trust = Some(Arc::new(trust));
    }
    Ok(config)
}
