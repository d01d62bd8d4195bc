//! What the plugin decides with: the compiled policy and the credential verifier, loaded
//! together from the configured files.
//!
//! [`Authority::load`] reads the policy and the anchor files, compiles the engine and builds
//! the identity verifier; any failure is one [`LoadError`] naming the file, and nothing is
//! half-loaded. The anchors are the library's [`TrustFiles`]: the default ones
//! (`plugin_opt_jwks`, `plugin_opt_cafile`, `plugin_opt_crlfile`) for identities without a
//! `trust` label, and each label's (`plugin_opt_trust`, `plugin_opt_trust_crl`), so every
//! identity verifies credentials with its own label's keys or CAs only. Identities that can
//! admit nobody (their anchors are not configured) and anchors no identity uses are reported
//! in the [`LoadSummary`]. [`Authority::admit`] turns what a CONNECT presented
//! ([`Presented`]) into a bound [`Session`]: the credential is verified against the policy's
//! own identity rules and anchors, bound with the client id (the `client` template is
//! enforced) and the CONNECT itself is decided. Cost: a load is a policy compile (milliseconds
//! for thousands of rules); an admission is one signature or chain verification plus a bind
//! (about a microsecond). This module must never return an identity that
//! [`Verifier::verify`] did not produce, and never admits a session the engine refused.

use crate::options::Options;
use rustls_pki_types::{CertificateDer, UnixTime};
use topicguard::ast::IdentityKind;
use topicguard::compile::CompileError;
use topicguard::decide::BindError;
use topicguard::identity::anchors::{AnchorError, TrustFiles};
use topicguard::identity::select::{ConfigError, Credential, SelectError, Unanchored, Verifier};
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
    /// Configured anchors that no identity block uses.
    pub unused: Vec<String>,
}

/// Why the configured files could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The policy file is unreadable or invalid; one line per diagnostic.
    #[error("{0}")]
    Policy(String),
    #[error("cannot compile {path}: {error}")]
    Compile { path: String, error: CompileError },
    /// A JWKS, CA or CRL file (default or a label's) that cannot be used.
    #[error("trust anchors: {0}")]
    Anchors(#[from] AnchorError),
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
        let config = trust_files(options)?.load()?;
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
        let summary = LoadSummary {
            rules: policy.checked.rules.len(),
            warnings: policy
                .warnings
                .render_short()
                .lines()
                .map(str::to_string)
                .collect(),
            unusable: verifier.unanchored().iter().map(admits_nobody).collect(),
            unused: verifier.unused_anchors().to_vec(),
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

/// The anchor files the options name: the default ones and each label's, in the library's
/// form. `plugin_opt_trust` files are read here to tell a JWKS from a CA file, so an
/// unreadable one is a load error (fail closed), not an option error.
fn trust_files(options: &Options) -> Result<TrustFiles, AnchorError> {
    let mut files = TrustFiles::default();
    files.default.jwks.clone_from(&options.jwks);
    files.default.cas.clone_from(&options.ca);
    files.default.crls.clone_from(&options.crl);
    for (label, path) in &options.trust {
        files.add_trust(label, path)?;
    }
    for (label, path) in &options.trust_crl {
        files.add_crl(label, path)?;
    }
    Ok(files)
}

/// The warning for an identity no credential can bind to, with the option that would anchor it.
fn admits_nobody(unanchored: &Unanchored) -> String {
    let option = match (&unanchored.label, unanchored.kind) {
        (Some(label), IdentityKind::Jwt) => format!("plugin_opt_trust {label}=JWKS"),
        (Some(label), _) => format!("plugin_opt_trust {label}=CA.pem"),
        (None, IdentityKind::Jwt) => "plugin_opt_jwks JWKS".to_string(),
        (None, _) => "plugin_opt_cafile CA.pem".to_string(),
    };
    format!("{unanchored}: it admits nobody (set `{option}`)")
}
