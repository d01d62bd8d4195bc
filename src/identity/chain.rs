//! Certificate chains: the trust anchors and CRLs of one trust label, and path verification
//! for client authentication.
//!
//! A [`TrustStore`] holds the CA certificates and CRLs of one trust label (or of the
//! identities without one). [`TrustStore::verify_chain`] hands the chain to `rustls-webpki`:
//! those anchors only, validity at the given time, the signature algorithms of
//! [`SIGNATURE_ALGORITHMS`], the clientAuth extended key usage *required* on the leaf
//! (webpki's `client_auth()` accepts a leaf without an EKU extension, so the leaf's EKU is
//! also checked here; intermediates may omit it), a leaf keyUsage extension, when present,
//! allowing digitalSignature (the key signs the TLS handshake; RFC 5280 lets an end-entity
//! certificate omit the extension, so its absence is accepted), a CA certificate never
//! accepted as the client, and CRL revocation for every certificate of the chain with unknown
//! status denied. Every current CRL of an issuer is consulted: webpki consults only the first
//! CRL whose issuer matches, so the chain is verified once per current CRL of the issuer,
//! each first in turn (one run when each issuer has one CRL). A serial revoked in any current
//! CRL is revoked; an issuer whose CRLs are all past their nextUpdate is refused as stale. The
//! result is a [`VerifiedChain`] that names the store, so one store's verification can never
//! be taken for another's. This module never reads identity attributes.

use super::cert_error::{ChainFailure, X509Error};
use super::signature::SIGNATURE_ALGORITHMS;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, TrustAnchor, UnixTime};
use std::path::Path;
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, OwnedCertRevocationList,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_parser::prelude::{FromDer, X509Certificate};

/// How revocation is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevocationPolicy {
    /// A current CRL for every certificate in the chain; unknown status is denied.
    Crls,
    /// A current, good OCSP response for the leaf must be supplied with the chain.
    Ocsp,
    /// Revocation is not checked (development only; reported with each identity).
    NotChecked,
}

/// Trust anchors, CRLs and the revocation policy: the anchors of one `trust` label (or of
/// the identities without one).
#[derive(Debug)]
pub struct TrustStore {
    /// Unique per store, so a [`VerifiedChain`] can say which store verified it.
    id: u64,
    anchors: Vec<TrustAnchor<'static>>,
    anchor_certs: Vec<CertificateDer<'static>>,
    crls: Vec<CrlEntry>,
    /// Indexes into `crls`, one group per CRL issuer name, newest first.
    crl_groups: Vec<Vec<usize>>,
    revocation: RevocationPolicy,
}

/// A CRL with the fields needed to order and select it.
#[derive(Debug)]
struct CrlEntry {
    list: CertRevocationList<'static>,
    /// thisUpdate, Unix seconds.
    this_update: i64,
    /// nextUpdate, Unix seconds (webpki refuses a CRL without one).
    next_update: i64,
    /// The cRLNumber extension, big-endian, if present.
    number: Option<Vec<u8>>,
}

impl CrlEntry {
    fn parse(der: &[u8], origin: &str) -> Result<CrlEntry, TrustError> {
        let bad = |reason: String| TrustError::BadCrl {
            origin: origin.to_string(),
            reason,
        };
        let list = OwnedCertRevocationList::from_der(der).map_err(|e| bad(format!("{e:?}")))?;
        let (_, parsed) = x509_parser::revocation_list::CertificateRevocationList::from_der(der)
            .map_err(|e| bad(e.to_string()))?;
        let next_update = parsed
            .next_update()
            .ok_or_else(|| bad("it has no nextUpdate".to_string()))?;
        Ok(CrlEntry {
            list: CertRevocationList::Owned(list),
            this_update: parsed.last_update().timestamp(),
            next_update: next_update.timestamp(),
            number: parsed.crl_number().map(|n| n.to_bytes_be()),
        })
    }

    /// Newer first: later thisUpdate, then the higher cRLNumber.
    fn newer_first(&self, other: &CrlEntry) -> std::cmp::Ordering {
        let number = |e: &CrlEntry| {
            e.number
                .as_ref()
                .map(|n| (n.len(), n.clone()))
                .unwrap_or_default()
        };
        (other.this_update, number(other)).cmp(&(self.this_update, number(self)))
    }

    /// Current at `now`: before its nextUpdate (webpki's own expiry rule).
    fn is_current(&self, now: UnixTime) -> bool {
        i64::try_from(now.as_secs()).is_ok_and(|now| now < self.next_update)
    }
}

/// A problem with CA or CRL material (configuration, not a client certificate).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// A PEM file cannot be parsed.
    #[error("{origin}: {reason}")]
    Pem {
        /// Where the PEM came from.
        origin: String,
        /// Why.
        reason: String,
    },
    /// A CA certificate cannot be used as an anchor.
    #[error("{origin}: not a usable CA certificate: {reason}")]
    BadAnchor {
        /// Where it came from (a file or a trust label).
        origin: String,
        /// Why.
        reason: String,
    },
    /// A CRL cannot be used.
    #[error("{origin}: not a usable CRL: {reason}")]
    BadCrl {
        /// Where it came from (a file or a trust label).
        origin: String,
        /// Why.
        reason: String,
    },
    /// No CA certificate is configured.
    #[error("no CA certificate configured")]
    NoAnchors,
    /// Revocation by CRLs is configured without any CRL.
    #[error("revocation policy `crls` needs at least one CRL")]
    NoCrls,
}

impl TrustStore {
    /// Anchors and CRLs as DER. The policy is `Crls` if any CRL is given.
    pub fn new(
        anchors: Vec<CertificateDer<'static>>,
        crls: Vec<Vec<u8>>,
    ) -> Result<TrustStore, TrustError> {
        let anchors = anchors
            .into_iter()
            .enumerate()
            .map(|(i, der)| (format!("CA {i}"), der))
            .collect();
        let crls = crls
            .into_iter()
            .enumerate()
            .map(|(i, der)| (format!("CRL {i}"), der))
            .collect();
        TrustStore::from_named(anchors, crls)
    }

    /// Anchors and CRLs as DER, each with where it came from (a file name) for errors.
    pub fn from_named(
        anchors: Vec<(String, CertificateDer<'static>)>,
        crls: Vec<(String, Vec<u8>)>,
    ) -> Result<TrustStore, TrustError> {
        if anchors.is_empty() {
            return Err(TrustError::NoAnchors);
        }
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut store = TrustStore {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            anchors: Vec::new(),
            anchor_certs: Vec::new(),
            crls: Vec::new(),
            crl_groups: Vec::new(),
            revocation: RevocationPolicy::NotChecked,
        };
        for (origin, der) in anchors {
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| TrustError::BadAnchor {
                    origin: origin.clone(),
                    reason: format!("{e:?}"),
                })?
                .to_owned();
            store.anchors.push(anchor);
            store.anchor_certs.push(der);
        }
        for (origin, der) in &crls {
            store.crls.push(CrlEntry::parse(der, origin)?);
        }
        store.crl_groups = group_by_issuer(&store.crls);
        if !store.crls.is_empty() {
            store.revocation = RevocationPolicy::Crls;
        }
        Ok(store)
    }

    /// Loads CA certificates and CRLs from PEM files.
    pub fn from_pem_files(cas: &[&Path], crls: &[&Path]) -> Result<TrustStore, TrustError> {
        let mut anchors = Vec::new();
        for path in cas {
            let origin = path.display().to_string();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| pem_error(&origin, e))? {
                anchors.push((origin.clone(), cert.map_err(|e| pem_error(&origin, e))?));
            }
        }
        let mut crl_ders = Vec::new();
        for path in crls {
            let origin = path.display().to_string();
            let iter = CertificateRevocationListDer::pem_file_iter(path)
                .map_err(|e| pem_error(&origin, e))?;
            for crl in iter {
                let der = crl.map_err(|e| pem_error(&origin, e))?.as_ref().to_vec();
                crl_ders.push((origin.clone(), der));
            }
        }
        TrustStore::from_named(anchors, crl_ders)
    }

    /// Requires an OCSP response for each leaf instead of (or on top of) CRLs.
    pub fn require_ocsp(mut self) -> TrustStore {
        self.revocation = RevocationPolicy::Ocsp;
        self
    }

    /// Sets the policy to `Crls` (the default when CRLs are given); errors without CRLs.
    pub fn require_crls(mut self) -> Result<TrustStore, TrustError> {
        if self.crls.is_empty() {
            return Err(TrustError::NoCrls);
        }
        self.revocation = RevocationPolicy::Crls;
        Ok(self)
    }

    pub(crate) fn revocation(&self) -> RevocationPolicy {
        self.revocation
    }

    /// How many CA certificates are trust anchors here.
    pub fn anchor_count(&self) -> usize {
        self.anchors.len()
    }

    /// Verifies the chain (leaf first) for client authentication at `now`.
    pub fn verify_chain(
        &self,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<VerifiedChain, X509Error> {
        let issuer_der = self.verify_path(chain, now)?;
        Ok(VerifiedChain {
            store: self.id,
            leaf: chain
                .first()
                .map(|c| c.as_ref().to_vec())
                .unwrap_or_default(),
            at: now,
            issuer_der,
        })
    }

    /// The path check of [`TrustStore::verify_chain`]; returns the DER of the leaf's issuer.
    fn verify_path(
        &self,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Vec<u8>, X509Error> {
        let (leaf, intermediates) = chain.split_first().ok_or(X509Error::NoCertificate)?;
        let end_entity =
            EndEntityCert::try_from(leaf).map_err(|e| X509Error::Chain(ChainFailure::from(e)))?;
        let runs = match self.revocation {
            RevocationPolicy::Crls => self.crl_runs(now),
            _ => vec![Vec::new()],
        };
        let chain_error = |e: webpki::Error| X509Error::Chain(ChainFailure::from(e));
        let mut first_path = None;
        for crls in &runs {
            let revocation = match self.revocation {
                RevocationPolicy::Crls => Some(
                    RevocationOptionsBuilder::new(crls)
                        .map_err(|_| X509Error::Chain(ChainFailure::UnknownRevocationStatus))?
                        .with_depth(RevocationCheckDepth::Chain)
                        .with_status_policy(UnknownStatusPolicy::Deny)
                        .with_expiration_policy(ExpirationPolicy::Enforce)
                        .build(),
                ),
                _ => None,
            };
            let path = end_entity
                .verify_for_usage(
                    SIGNATURE_ALGORITHMS,
                    &self.anchors,
                    intermediates,
                    now,
                    KeyUsage::client_auth(),
                    revocation,
                    None,
                )
                .map_err(chain_error)?;
            first_path.get_or_insert(path);
        }
        let path = first_path.ok_or(X509Error::Chain(ChainFailure::UnknownRevocationStatus))?;
        let parsed_leaf = parse_cert(leaf)?;
        require_client_auth_eku(&parsed_leaf)?;
        require_digital_signature(&parsed_leaf)?;
        let leaf_issuer = parsed_leaf.issuer().as_raw().to_vec();
        for cert in path.intermediate_certificates() {
            let der = cert.der();
            if parse_cert(&der)?.subject().as_raw() == leaf_issuer.as_slice() {
                return Ok(der.as_ref().to_vec());
            }
        }
        let anchor = path.anchor();
        self.anchors
            .iter()
            .position(|a| a.subject_public_key_info == anchor.subject_public_key_info)
            .map(|i| self.anchor_certs[i].as_ref().to_vec())
            .ok_or_else(|| X509Error::Chain(ChainFailure::Other("issuer not found".into())))
    }
}

/// Proof that one [`TrustStore`] verified a chain with this leaf at one time: what
/// [`super::x509::CertVerifier::accept`] needs, so a chain verified by one store's anchors can never be
/// accepted by an identity with other anchors.
#[derive(Clone, Debug)]
pub struct VerifiedChain {
    store: u64,
    leaf: Vec<u8>,
    at: UnixTime,
    issuer_der: Vec<u8>,
}

impl VerifiedChain {
    /// The DER of the certificate that issued the leaf.
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer_der
    }

    /// Whether `store` verified exactly this leaf at exactly this time.
    pub fn is_from(&self, store: &TrustStore, leaf: &[u8], at: UnixTime) -> bool {
        self.store == store.id && self.leaf.as_slice() == leaf && self.at == at
    }
}

impl TrustStore {
    /// The CRL lists to verify a chain with, so that every current CRL of every issuer is
    /// consulted: webpki uses the first CRL whose issuer (and scope) fits, so run `k` puts
    /// each issuer's `k`-th current CRL first, the issuer's other current CRLs after it (for
    /// CRLs of a narrower scope). An issuer with no current CRL keeps its newest, which
    /// webpki then refuses as stale. One run per CRL of the issuer with the most: usually one.
    fn crl_runs(&self, now: UnixTime) -> Vec<Vec<&CertRevocationList<'static>>> {
        let groups: Vec<Vec<usize>> = self
            .crl_groups
            .iter()
            .map(|group| {
                let current: Vec<usize> = group
                    .iter()
                    .copied()
                    .filter(|&i| self.crls[i].is_current(now))
                    .collect();
                if current.is_empty() {
                    group.iter().copied().take(1).collect()
                } else {
                    current
                }
            })
            .collect();
        let runs = groups.iter().map(Vec::len).max().unwrap_or(0).max(1);
        (0..runs)
            .map(|k| {
                groups
                    .iter()
                    .flat_map(|group| {
                        let first = k % group.len().max(1);
                        group[first..].iter().chain(&group[..first])
                    })
                    .map(|&i| &self.crls[i].list)
                    .collect()
            })
            .collect()
    }
}

/// CRL indexes grouped by issuer name (raw DER), each group newest first.
fn group_by_issuer(crls: &[CrlEntry]) -> Vec<Vec<usize>> {
    let mut groups: Vec<(Vec<u8>, Vec<usize>)> = Vec::new();
    for (i, crl) in crls.iter().enumerate() {
        let issuer = crl.list.issuer();
        match groups
            .iter_mut()
            .find(|(name, _)| name.as_slice() == issuer)
        {
            Some((_, group)) => group.push(i),
            None => groups.push((issuer.to_vec(), vec![i])),
        }
    }
    groups
        .into_iter()
        .map(|(_, mut group)| {
            group.sort_by(|&a, &b| crls[a].newer_first(&crls[b]));
            group
        })
        .collect()
}

/// A leaf keyUsage extension, when present, must allow digitalSignature: the client's key
/// signs the TLS handshake. A leaf without the extension is accepted (RFC 5280 4.2.1.3 lets
/// end-entity certificates omit it; the clientAuth EKU is required regardless).
fn require_digital_signature(leaf: &X509Certificate<'_>) -> Result<(), X509Error> {
    match leaf.key_usage() {
        Ok(None) => Ok(()),
        Ok(Some(ku)) if ku.value.digital_signature() => Ok(()),
        Ok(Some(_)) => Err(X509Error::Chain(ChainFailure::DigitalSignatureMissing)),
        Err(_) => Err(X509Error::Chain(ChainFailure::InvalidExtension)),
    }
}

/// The leaf must carry an EKU extension listing clientAuth. webpki checks the EKU of every
/// certificate in the path "if present" (`KeyUsage::required` would also refuse intermediates
/// without an EKU extension, which RFC 5280 allows), so presence on the leaf is checked here.
fn require_client_auth_eku(leaf: &X509Certificate<'_>) -> Result<(), X509Error> {
    match leaf.extended_key_usage() {
        Ok(Some(eku)) if eku.value.client_auth => Ok(()),
        Ok(_) => Err(X509Error::Chain(ChainFailure::ClientAuthMissing)),
        Err(_) => Err(X509Error::Chain(ChainFailure::InvalidExtension)),
    }
}

fn pem_error(origin: &str, e: rustls_pki_types::pem::Error) -> TrustError {
    TrustError::Pem {
        origin: origin.to_string(),
        reason: format!("{e:?}"),
    }
}

pub(crate) fn parse_cert<'a>(der: &'a [u8]) -> Result<X509Certificate<'a>, X509Error> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(X509Error::Parse {
            reason: "trailing bytes after the certificate".to_string(),
        }),
        Err(e) => Err(X509Error::Parse {
            reason: e.to_string(),
        }),
    }
}
