//! Identity selection: which identity block a credential is verified as.
//!
//! A [`Verifier`] holds one [`JwtVerifier`] per `from jwt` block and one [`CertVerifier`] per
//! `from certificate` block of a checked policy. A JWT goes to the block whose `issuer` equals
//! the token's `iss` (read unverified only to route it; the chosen block then requires it).
//! A certificate goes to the block whose `issuer` equals its issuing CA's subject CN, or,
//! among blocks without that setting, to the one block whose bindings the verified certificate
//! satisfies; two blocks accepting the same certificate is an ambiguity, refused. The result
//! is a [`Verified`] identity: kind, attributes, expiry, provenance, and the client id it
//! implies. This module never returns attributes that a verifier did not produce.

use super::Identity;
use super::jwt::{JwtConfigError, JwtError, JwtKeys, JwtVerifier, MAX_TOKEN_BYTES};
use super::x509::{CertConfigError, CertVerifier, RevocationPolicy, TrustStore, X509Error};
use crate::ast::IdentityKind;
use crate::check::{Checked, ClientPiece, IdentityDef};
use base64::Engine as _;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::collections::BTreeMap;
use std::sync::Arc;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A credential presented by a client.
#[derive(Clone, Copy, Debug)]
pub enum Credential<'a> {
    /// A compact JWS.
    Jwt(&'a str),
    /// A certificate chain, leaf first, and an OCSP response for the leaf if one was stapled.
    Certificate {
        chain: &'a [CertificateDer<'a>],
        ocsp: Option<&'a [u8]>,
    },
}

/// Keys and trust anchors for the policy's identity blocks.
#[derive(Clone, Debug, Default)]
pub struct CredentialConfig {
    /// Keys for every `from jwt` block without its own entry in `jwt_by_identity`.
    pub jwt: Option<JwtKeys>,
    pub jwt_by_identity: BTreeMap<String, JwtKeys>,
    /// Trust for every `from certificate` block without its own entry.
    pub trust: Option<Arc<TrustStore>>,
    pub trust_by_identity: BTreeMap<String, Arc<TrustStore>>,
}

/// A verified identity and what else verification established.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    pub identity: Identity,
    /// The client id the `client` template gives, when it has no free capture.
    pub client_id: Option<String>,
    /// The issuing CA's subject CN (certificates only).
    pub issuer_cn: Option<String>,
    /// How revocation was checked (certificates only).
    pub revocation: Option<RevocationPolicy>,
}

/// Why a verifier could not be built for a policy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Jwt(#[from] JwtConfigError),
    #[error(transparent)]
    Certificate(#[from] CertConfigError),
}

/// Why no identity could be verified from a credential.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("the policy has no {kind} identity with configured keys or trust anchors")]
    NoIdentity { kind: IdentityKind },
    #[error("no jwt identity accepts issuer {issuer}")]
    NoIdentityForIssuer { issuer: String },
    #[error("the credential fits several identities ({}); set `issuer` to tell them apart", candidates.join(", "))]
    Ambiguous { candidates: Vec<String> },
    #[error("identity `{identity}`: {error}")]
    Jwt {
        identity: String,
        error: Box<JwtError>,
    },
    #[error("identity `{identity}`: {error}")]
    Certificate {
        identity: String,
        error: Box<X509Error>,
    },
    #[error("no certificate identity accepts it: {}", describe(.0))]
    NoneAccepted(Vec<(String, X509Error)>),
}

fn describe(errors: &[(String, X509Error)]) -> String {
    errors
        .iter()
        .map(|(identity, error)| format!("`{identity}`: {error}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Verifiers for every identity block that has keys or trust configured.
#[derive(Clone, Debug)]
pub struct Verifier {
    jwt: Vec<JwtVerifier>,
    certificates: Vec<CertVerifier>,
    defs: BTreeMap<String, Vec<ClientPiece>>,
}

impl Verifier {
    pub fn new(checked: &Checked, config: &CredentialConfig) -> Result<Verifier, ConfigError> {
        let mut verifier = Verifier {
            jwt: Vec::new(),
            certificates: Vec::new(),
            defs: BTreeMap::new(),
        };
        for def in &checked.identities {
            verifier.add(def, config)?;
        }
        Ok(verifier)
    }

    fn add(&mut self, def: &IdentityDef, config: &CredentialConfig) -> Result<(), ConfigError> {
        match def.kind {
            IdentityKind::Jwt => {
                if let Some(keys) = config
                    .jwt_by_identity
                    .get(&def.name)
                    .or(config.jwt.as_ref())
                {
                    self.jwt.push(JwtVerifier::new(def, keys.clone())?);
                }
            }
            IdentityKind::Certificate => {
                let trust = config
                    .trust_by_identity
                    .get(&def.name)
                    .or(config.trust.as_ref());
                if let Some(trust) = trust {
                    self.certificates
                        .push(CertVerifier::new(def, trust.clone())?);
                }
            }
            IdentityKind::Anonymous => {}
        }
        self.defs.insert(def.name.clone(), def.client.clone());
        Ok(())
    }

    /// Verifies a credential as the identity block it belongs to.
    pub fn verify(
        &self,
        credential: Credential<'_>,
        now: UnixTime,
    ) -> Result<Verified, SelectError> {
        match credential {
            Credential::Jwt(token) => self.verify_jwt(token),
            Credential::Certificate { chain, ocsp } => self.verify_certificate(chain, ocsp, now),
        }
    }

    fn verify_jwt(&self, token: &str) -> Result<Verified, SelectError> {
        let verifier = self.choose_jwt(token)?;
        let identity = verifier.verify(token).map_err(|error| SelectError::Jwt {
            identity: verifier.identity_name().to_string(),
            error: Box::new(error),
        })?;
        Ok(self.verified(identity, None, None))
    }

    fn choose_jwt(&self, token: &str) -> Result<&JwtVerifier, SelectError> {
        match self.jwt.as_slice() {
            [] => Err(SelectError::NoIdentity {
                kind: IdentityKind::Jwt,
            }),
            [only] => Ok(only),
            several => {
                let issuer = unverified_issuer(token);
                let exact: Vec<&JwtVerifier> = several
                    .iter()
                    .filter(|v| issuer.is_some() && v.issuer() == issuer.as_deref())
                    .collect();
                let open: Vec<&JwtVerifier> =
                    several.iter().filter(|v| v.issuer().is_none()).collect();
                match (exact.as_slice(), open.as_slice()) {
                    ([one], _) | ([], [one]) => Ok(one),
                    ([], []) => Err(SelectError::NoIdentityForIssuer {
                        issuer: issuer.map_or_else(
                            || "(none)".to_string(),
                            |i| format!("`{}`", i.escape_debug()),
                        ),
                    }),
                    ([], many) | (many, _) => Err(SelectError::Ambiguous {
                        candidates: many.iter().map(|v| v.identity_name().to_string()).collect(),
                    }),
                }
            }
        }
    }

    fn verify_certificate(
        &self,
        chain: &[CertificateDer<'_>],
        ocsp: Option<&[u8]>,
        now: UnixTime,
    ) -> Result<Verified, SelectError> {
        let candidates = self.certificate_candidates(chain)?;
        if let [only] = candidates.as_slice() {
            let cert = only
                .verify(chain, ocsp, now)
                .map_err(|error| SelectError::Certificate {
                    identity: only.identity_name().to_string(),
                    error: Box::new(error),
                })?;
            return Ok(self.verified(cert.identity, cert.issuer_cn, Some(cert.revocation)));
        }
        let mut accepted = Vec::new();
        let mut errors = Vec::new();
        for candidate in candidates {
            match candidate.verify(chain, ocsp, now) {
                Ok(cert) => accepted.push((candidate.identity_name(), cert)),
                Err(error) => errors.push((candidate.identity_name().to_string(), error)),
            }
        }
        match accepted.len() {
            0 => Err(SelectError::NoneAccepted(errors)),
            1 => {
                let (_, cert) = accepted.remove(0);
                Ok(self.verified(cert.identity, cert.issuer_cn, Some(cert.revocation)))
            }
            _ => Err(SelectError::Ambiguous {
                candidates: accepted.iter().map(|(name, _)| name.to_string()).collect(),
            }),
        }
    }

    /// Blocks whose `issuer` names the leaf's issuer CN; else the blocks without `issuer`.
    fn certificate_candidates(
        &self,
        chain: &[CertificateDer<'_>],
    ) -> Result<Vec<&CertVerifier>, SelectError> {
        if self.certificates.is_empty() {
            return Err(SelectError::NoIdentity {
                kind: IdentityKind::Certificate,
            });
        }
        if self.certificates.len() == 1 {
            return Ok(self.certificates.iter().collect());
        }
        let issuer_cn = chain.first().and_then(|leaf| unverified_issuer_cn(leaf));
        let exact: Vec<&CertVerifier> = self
            .certificates
            .iter()
            .filter(|v| issuer_cn.is_some() && v.issuer() == issuer_cn.as_deref())
            .collect();
        if !exact.is_empty() {
            return Ok(exact);
        }
        Ok(self
            .certificates
            .iter()
            .filter(|v| v.issuer().is_none())
            .collect())
    }

    fn verified(
        &self,
        identity: Identity,
        issuer_cn: Option<String>,
        revocation: Option<RevocationPolicy>,
    ) -> Verified {
        let client_id = self
            .defs
            .get(&identity.kind)
            .and_then(|pieces| render_client(pieces, &identity));
        Verified {
            identity,
            client_id,
            issuer_cn,
            revocation,
        }
    }
}

/// The client id a template gives for these attributes; `None` if it has a free capture.
pub fn render_client(pieces: &[ClientPiece], identity: &Identity) -> Option<String> {
    pieces
        .iter()
        .map(|p| match p {
            ClientPiece::Text(t) => Some(t.as_str()),
            ClientPiece::Attr(a) => identity.attr(a),
            ClientPiece::Capture(_) => None,
        })
        .collect()
}

/// The token's `iss`, read without verification, only to route it to an identity block.
fn unverified_issuer(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

/// The leaf's issuer CN, read without verification, only to pick candidate blocks.
fn unverified_issuer_cn(leaf: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(leaf.as_ref()).ok()?;
    let mut cns = cert.issuer().iter_common_name();
    let cn = cns.next()?.as_str().ok()?.to_string();
    cns.next().is_none().then_some(cn)
}
