//! Identity selection: which identity block a credential is verified as.
//!
//! A [`Verifier`] holds one [`JwtVerifier`] per `from jwt` block and one [`CertVerifier`] per
//! `from certificate` block of a checked policy, each with its *own* anchors: the keys or CA
//! set of its `trust` label ([`CredentialConfig::labels`]), or the default anchors when it
//! has no label. A credential is verified by every identity of its kind that could accept
//! it, each with its own anchors, and binds only if exactly one accepts it: none is a
//! refusal with each identity's reason, several is [`SelectError::Ambiguous`], refused.
//! Names never choose an identity. To save work, identities that a credential's own
//! (unverified) names already rule out are skipped: a token whose `iss`/`aud` cannot satisfy
//! an identity's `issuer`/`audience`, a certificate whose issuer CN is not an identity's
//! `issuer`; those identities would refuse it anyway, so skipping never changes the
//! outcome. A certificate chain is verified once per trust store, not once per identity.
//! The result is a [`Verified`] identity: kind, attributes, expiry, provenance, the trust
//! label that verified it and the client id it implies. This module never returns
//! attributes that a verifier did not produce.

use super::Identity;
use super::claims::Peek;
use super::jwt::{JwtConfigError, JwtError, JwtKeys, JwtVerifier};
use super::x509::{
    self, CertConfigError, CertVerifier, RevocationPolicy, TrustStore, VerifiedCert, VerifiedChain,
    X509Error,
};
use crate::ast::IdentityKind;
use crate::check::{Checked, ClientPiece, IdentityDef};
use rustls_pki_types::{CertificateDer, UnixTime};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A credential presented by a client.
#[derive(Clone, Copy, Debug)]
pub enum Credential<'a> {
    /// A compact JWS.
    Jwt(&'a str),
    /// A certificate chain, leaf first, and an OCSP response for the leaf if one was stapled.
    Certificate {
        /// The chain, leaf first, as presented.
        chain: &'a [CertificateDer<'a>],
        /// A stapled OCSP response for the leaf, if any.
        ocsp: Option<&'a [u8]>,
    },
}

/// The anchors of one trust label: JWT keys for its `from jwt` identities, a CA set (with
/// CRLs) for its `from certificate` identities.
#[derive(Clone, Debug, Default)]
pub struct Anchors {
    /// The JWT verification keys, if any.
    pub jwt: Option<JwtKeys>,
    /// The certificate trust anchors, if any.
    pub certificates: Option<Arc<TrustStore>>,
}

/// Keys and trust anchors for the policy's identity blocks.
#[derive(Clone, Debug, Default)]
pub struct CredentialConfig {
    /// The default keys: for `from jwt` blocks without a `trust` label (`--jwks`).
    pub jwt: Option<JwtKeys>,
    /// The default CA set: for `from certificate` blocks without a `trust` label (`--ca`).
    pub trust: Option<Arc<TrustStore>>,
    /// Anchors per trust label (`--trust LABEL=FILE`, `[trust.LABEL]`).
    pub labels: BTreeMap<String, Anchors>,
}

impl CredentialConfig {
    /// Every distinct certificate trust store (default and labelled): what a TLS listener
    /// accepts a client chain against before CONNECT says which identity it is for.
    pub fn certificate_stores(&self) -> Vec<Arc<TrustStore>> {
        let mut stores: Vec<Arc<TrustStore>> = Vec::new();
        let all = self
            .trust
            .iter()
            .chain(self.labels.values().filter_map(|a| a.certificates.as_ref()));
        for store in all {
            if !stores.iter().any(|s| Arc::ptr_eq(s, store)) {
                stores.push(store.clone());
            }
        }
        stores
    }
}

/// A verified identity and what else verification established.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    /// The verified identity.
    pub identity: Identity,
    /// The trust label whose anchors verified the credential (`None`: the default ones).
    pub trust: Option<String>,
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
    /// A JWT identity's configuration is invalid.
    #[error(transparent)]
    Jwt(#[from] JwtConfigError),
    /// A certificate identity's configuration is invalid.
    #[error(transparent)]
    Certificate(#[from] CertConfigError),
    #[error(
        "the default CA set (--ca, [identity] ca, plugin_opt_cafile) holds {anchors} CA certificates, and the certificate identities {} share it, told apart only by `issuer` names: any of those CAs can issue a sub-CA with another's name; give each identity a `trust` label with its own CA",
        identities.join(", ")
    )]
    /// Several certificate identities share the default CA set.
    PooledAnchors {
        /// How many CA certificates the set holds.
        anchors: usize,
        /// The identities that share it.
        identities: Vec<String>,
    },
    #[error(
        "the default key set (--jwks, [identity] jwks, plugin_opt_jwks) serves the jwt identities {} of different issuers: a key of one authority could sign a token claiming another's `iss`; give each identity a `trust` label with its own JWKS",
        identities.join(", ")
    )]
    /// JWT identities of different issuers share the default key set.
    PooledKeys {
        /// The identities.
        identities: Vec<String>,
    },
}

/// Why no identity could be verified from a credential.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// The policy has no identity of this kind with anchors configured.
    #[error("the policy has no {kind} identity with configured keys or trust anchors")]
    NoIdentity {
        /// The credential's kind.
        kind: IdentityKind,
    },
    /// No JWT identity accepts the token's issuer and audience.
    #[error("no jwt identity accepts issuer {issuer} with audience {audience}")]
    NoIdentityFor {
        /// The token's issuer.
        issuer: String,
        /// The token's audience.
        audience: String,
    },
    /// The token cannot be read at all.
    #[error("{0}")]
    MalformedJwt(Box<JwtError>),
    /// The credential verifies as more than one identity.
    #[error("the credential verifies as several identities ({}), so it is refused; give each its own `trust` label, or tell them apart by `issuer` (and `audience` for jwt)", candidates.join(", "))]
    Ambiguous {
        /// The identities it verifies as.
        candidates: Vec<String>,
    },
    /// The one candidate JWT identity refused the token.
    #[error("identity `{identity}`: {error}")]
    Jwt {
        /// The identity.
        identity: String,
        /// Why it refused.
        error: Box<JwtError>,
    },
    /// Every candidate JWT identity refused the token, each with its reason.
    #[error("no jwt identity accepts it: {}", describe(.0))]
    JwtNoneAccepted(Vec<(String, JwtError)>),
    /// The one candidate certificate identity refused the certificate.
    #[error("identity `{identity}`: {error}")]
    Certificate {
        /// The identity.
        identity: String,
        /// Why it refused.
        error: Box<X509Error>,
    },
    /// Every candidate certificate identity refused the certificate, each with its reason.
    #[error("no certificate identity accepts it: {}", describe(.0))]
    NoneAccepted(Vec<(String, X509Error)>),
}

impl SelectError {
    /// True when a presented token failed to verify (as opposed to verifying for no
    /// identity, or for several).
    pub fn is_bad_token(&self) -> bool {
        matches!(
            self,
            SelectError::Jwt { .. }
                | SelectError::JwtNoneAccepted(_)
                | SelectError::MalformedJwt(_)
        )
    }
}

fn describe<E: std::fmt::Display>(errors: &[(String, E)]) -> String {
    errors
        .iter()
        .map(|(identity, error)| format!("`{identity}`: {error}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// An identity of the policy that no credential can bind to, because its anchors are not
/// configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unanchored {
    pub(crate) identity: String,
    /// What credential the identity takes.
    pub kind: IdentityKind,
    /// Its trust label, if it names one.
    pub label: Option<String>,
}

impl std::fmt::Display for Unanchored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            IdentityKind::Jwt => "JWKS",
            _ => "CA",
        };
        match &self.label {
            Some(label) => write!(
                f,
                "identity `{}` ({}) trusts `{label}`, and no {what} is configured for that label",
                self.identity, self.kind
            ),
            None => write!(
                f,
                "identity `{}` ({}) has no `trust` label, and no default {what} is configured",
                self.identity, self.kind
            ),
        }
    }
}

/// The certificate identities that accepted a chain, and the others with their reasons.
type CertificateOutcomes<'v> = (
    Vec<(&'v CertVerifier, VerifiedCert)>,
    Vec<(String, X509Error)>,
);

/// Verifiers for every identity block whose anchors are configured.
#[derive(Clone, Debug)]
pub struct Verifier {
    jwt: Vec<JwtVerifier>,
    certificates: Vec<CertVerifier>,
    defs: BTreeMap<String, Vec<ClientPiece>>,
    unanchored: Vec<Unanchored>,
    unused: Vec<String>,
}

impl Verifier {
    /// A verifier for every identity of `checked` whose anchors `config` supplies.
    pub fn new(checked: &Checked, config: &CredentialConfig) -> Result<Verifier, ConfigError> {
        let mut verifier = Verifier {
            jwt: Vec::new(),
            certificates: Vec::new(),
            defs: BTreeMap::new(),
            unanchored: Vec::new(),
            unused: Vec::new(),
        };
        for def in &checked.identities {
            verifier.add(def, config)?;
        }
        verifier.refuse_pooled_anchors(config)?;
        verifier.unused = unused_anchors(checked, config);
        Ok(verifier)
    }

    /// Several unlabelled certificate identities may share the default CA set only if it is
    /// one authority (one anchor, perhaps with intermediates their `issuer`s name). With
    /// several anchors, each could mint a sub-CA carrying another's name, so an `issuer`
    /// setting would no longer say which authority issued a certificate: refused.
    fn refuse_pooled_anchors(&self, config: &CredentialConfig) -> Result<(), ConfigError> {
        let unlabelled: Vec<String> = self
            .certificates
            .iter()
            .filter(|v| v.trust_label().is_none())
            .map(|v| v.identity_name().to_string())
            .collect();
        let anchors = config.trust.as_ref().map_or(0, |t| t.anchor_count());
        if unlabelled.len() >= 2 && anchors >= 2 {
            return Err(ConfigError::PooledAnchors {
                anchors,
                identities: unlabelled,
            });
        }
        self.refuse_pooled_keys()
    }

    /// Unlabelled JWT identities share the default key set. That is one authority only when
    /// they name one issuer (and differ, say, by audience); identities of different issuers
    /// (an unset issuer counts as its own) would accept each other's keys: refused.
    fn refuse_pooled_keys(&self) -> Result<(), ConfigError> {
        let unlabelled: Vec<&JwtVerifier> = self
            .jwt
            .iter()
            .filter(|v| v.trust_label().is_none())
            .collect();
        let one_named_issuer = match unlabelled.split_first() {
            None => true,
            Some((first, rest)) => {
                rest.is_empty()
                    || first.issuer().is_some() && rest.iter().all(|v| v.issuer() == first.issuer())
            }
        };
        if !one_named_issuer {
            return Err(ConfigError::PooledKeys {
                identities: unlabelled
                    .iter()
                    .map(|v| v.identity_name().to_string())
                    .collect(),
            });
        }
        Ok(())
    }

    fn add(&mut self, def: &IdentityDef, config: &CredentialConfig) -> Result<(), ConfigError> {
        let label = def.trust_label();
        let anchors = label.and_then(|l| config.labels.get(l));
        let mut anchored = true;
        match def.kind {
            IdentityKind::Jwt => {
                let keys = match label {
                    Some(_) => anchors.and_then(|a| a.jwt.as_ref()),
                    None => config.jwt.as_ref(),
                };
                match keys {
                    Some(keys) => self.jwt.push(JwtVerifier::new(def, keys.clone())?),
                    None => anchored = false,
                }
            }
            IdentityKind::Certificate => {
                let trust = match label {
                    Some(_) => anchors.and_then(|a| a.certificates.as_ref()),
                    None => config.trust.as_ref(),
                };
                match trust {
                    Some(trust) => self
                        .certificates
                        .push(CertVerifier::new(def, trust.clone())?),
                    None => anchored = false,
                }
            }
            IdentityKind::Anonymous => {}
        }
        if !anchored {
            self.unanchored.push(Unanchored {
                identity: def.name.clone(),
                kind: def.kind,
                label: label.map(str::to_string),
            });
        }
        self.defs.insert(def.name.clone(), def.client.clone());
        Ok(())
    }

    /// Identities no credential can bind to: their anchors are not configured.
    pub fn unanchored(&self) -> &[Unanchored] {
        &self.unanchored
    }

    /// Configured anchors that no identity of the policy uses (a label no identity names,
    /// a JWKS for a label only certificate identities name, ...), described.
    pub fn unused_anchors(&self) -> &[String] {
        &self.unused
    }

    /// Verifies a credential as the one identity block whose own anchors accept it.
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
        let candidates = self.jwt_candidates(token)?;
        let mut accepted = Vec::new();
        let mut errors = Vec::new();
        for candidate in &candidates {
            match candidate.verify(token) {
                Ok(identity) => accepted.push((*candidate, identity)),
                Err(error) => errors.push((candidate.identity_name().to_string(), error)),
            }
        }
        match (accepted.len(), errors.len()) {
            (1, _) => {
                let (verifier, identity) = accepted.remove(0);
                let label = verifier.trust_label().map(str::to_string);
                Ok(self.verified(identity, label, None, None))
            }
            (0, 1) => {
                let (identity, error) = errors.remove(0);
                Err(SelectError::Jwt {
                    identity,
                    error: Box::new(error),
                })
            }
            (0, _) => Err(SelectError::JwtNoneAccepted(errors)),
            _ => Err(ambiguous(accepted.iter().map(|(v, _)| v.identity_name()))),
        }
    }

    /// The JWT identities that could accept `token`. With one JWT identity, that one (so
    /// its own verification says precisely why a token fails).
    fn jwt_candidates(&self, token: &str) -> Result<Vec<&JwtVerifier>, SelectError> {
        if let [only] = self.jwt.as_slice() {
            return Ok(vec![only]);
        }
        if self.jwt.is_empty() {
            return Err(SelectError::NoIdentity {
                kind: IdentityKind::Jwt,
            });
        }
        let peek = Peek::read(token).map_err(|e| SelectError::MalformedJwt(Box::new(e)))?;
        let fitting: Vec<&JwtVerifier> = self
            .jwt
            .iter()
            .filter(|v| peek.fits(v.issuer(), v.audience()))
            .collect();
        if fitting.is_empty() {
            return Err(SelectError::NoIdentityFor {
                issuer: peek.issuer_text(),
                audience: peek.audience_text(),
            });
        }
        Ok(fitting)
    }

    fn verify_certificate(
        &self,
        chain: &[CertificateDer<'_>],
        ocsp: Option<&[u8]>,
        now: UnixTime,
    ) -> Result<Verified, SelectError> {
        if self.certificates.is_empty() {
            return Err(SelectError::NoIdentity {
                kind: IdentityKind::Certificate,
            });
        }
        let (mut accepted, mut errors) = self.certificate_outcomes(chain, ocsp, now);
        match (accepted.len(), errors.len()) {
            (1, _) => {
                let (verifier, cert) = accepted.remove(0);
                let label = verifier.trust_label().map(str::to_string);
                Ok(self.verified(cert.identity, label, cert.issuer_cn, Some(cert.revocation)))
            }
            (0, 1) => {
                let (identity, error) = errors.remove(0);
                Err(SelectError::Certificate {
                    identity,
                    error: Box::new(error),
                })
            }
            (0, _) => Err(SelectError::NoneAccepted(errors)),
            _ => Err(ambiguous(accepted.iter().map(|(v, _)| v.identity_name()))),
        }
    }

    /// Each certificate identity's verdict on the chain, with its own trust store (a store
    /// shared by several identities verifies the chain once). An identity whose `issuer` is
    /// not the leaf's issuer CN is refused without a chain verification.
    fn certificate_outcomes(
        &self,
        chain: &[CertificateDer<'_>],
        ocsp: Option<&[u8]>,
        now: UnixTime,
    ) -> CertificateOutcomes<'_> {
        let issuer_cn = chain.first().and_then(|leaf| x509::leaf_issuer_cn(leaf));
        let mut chains: Vec<(&Arc<TrustStore>, Result<VerifiedChain, X509Error>)> = Vec::new();
        let mut accepted = Vec::new();
        let mut errors = Vec::new();
        for candidate in &self.certificates {
            let name = candidate.identity_name().to_string();
            if let Some(expected) = candidate.issuer()
                && issuer_cn.as_deref() != Some(expected)
                && self.certificates.len() > 1
            {
                let found = issuer_cn.clone().unwrap_or_else(|| "(no single CN)".into());
                let identity = name.clone();
                let expected = expected.to_string();
                let mismatch = X509Error::IssuerMismatch {
                    identity,
                    expected,
                    found,
                };
                errors.push((name, mismatch));
                continue;
            }
            let store = candidate.trust();
            let index = match chains.iter().position(|(s, _)| Arc::ptr_eq(s, store)) {
                Some(index) => index,
                None => {
                    chains.push((store, store.verify_chain(chain, now)));
                    chains.len() - 1
                }
            };
            let result = match &chains[index].1 {
                Ok(verified) => candidate.accept(chain, verified, ocsp, now),
                Err(error) => Err(error.clone()),
            };
            match result {
                Ok(cert) => accepted.push((candidate, cert)),
                Err(error) => errors.push((name, error)),
            }
        }
        (accepted, errors)
    }

    fn verified(
        &self,
        identity: Identity,
        trust: Option<String>,
        issuer_cn: Option<String>,
        revocation: Option<RevocationPolicy>,
    ) -> Verified {
        let client_id = self
            .defs
            .get(&identity.kind)
            .and_then(|pieces| render_client(pieces, &identity));
        Verified {
            identity,
            trust,
            client_id,
            issuer_cn,
            revocation,
        }
    }
}

fn ambiguous<'a>(names: impl Iterator<Item = &'a str>) -> SelectError {
    SelectError::Ambiguous {
        candidates: names.map(str::to_string).collect(),
    }
}

/// Configured anchors no identity of the policy can use, described for the operator.
fn unused_anchors(checked: &Checked, config: &CredentialConfig) -> Vec<String> {
    let uses = |kind: IdentityKind, label: Option<&str>| {
        checked
            .identities
            .iter()
            .any(|d| d.kind == kind && d.trust_label() == label)
    };
    let mut unused = Vec::new();
    for (label, anchors) in &config.labels {
        let named = checked
            .identities
            .iter()
            .any(|d| d.trust_label() == Some(label.as_str()));
        if !named {
            unused.push(format!(
                "trust label `{label}`: no identity of the policy names it"
            ));
            continue;
        }
        if anchors.jwt.is_some() && !uses(IdentityKind::Jwt, Some(label)) {
            unused.push(format!(
                "trust label `{label}`: its JWKS serves no jwt identity"
            ));
        }
        if anchors.certificates.is_some() && !uses(IdentityKind::Certificate, Some(label)) {
            unused.push(format!(
                "trust label `{label}`: its CA serves no certificate identity"
            ));
        }
    }
    if config.jwt.is_some() && !uses(IdentityKind::Jwt, None) {
        unused.push("the default JWKS (--jwks, [identity] jwks, plugin_opt_jwks): every jwt identity has a `trust` label".into());
    }
    if config.trust.is_some() && !uses(IdentityKind::Certificate, None) {
        unused.push("the default CA (--ca, [identity] ca, plugin_opt_cafile): every certificate identity has a `trust` label".into());
    }
    unused
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
