//! Why a client certificate was refused: [`X509Error`], with the chain's own reasons
//! ([`ChainFailure`], from `rustls-webpki`) and a field's ([`FieldError`]). Its own module
//! so that the chain check ([`super::chain`]) and the attribute reader ([`super::x509`])
//! share the error without importing each other. This module must never verify anything.

use super::extract::{RequireError, SplitError};
use super::ocsp::OcspError;

/// Why a certificate was rejected or could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    #[error("no certificate was presented")]
    NoCertificate,
    #[error("certificate chain rejected: {0}")]
    Chain(ChainFailure),
    #[error("certificate is not valid DER: {reason}")]
    Parse { reason: String },
    #[error("certificate has the extension {oid} more than once")]
    DuplicateExtension { oid: String },
    #[error("`{field}`: {error}")]
    Field { field: String, error: FieldError },
    #[error("`{field}` does not split as \"{template}\": value {error}")]
    Split {
        field: String,
        template: String,
        error: SplitError,
    },
    #[error("{0}")]
    Require(RequireError),
    #[error("issued by `{found}`, but identity `{identity}` accepts only issuer `{expected}`")]
    IssuerMismatch {
        identity: String,
        expected: String,
        found: String,
    },
    #[error("revocation: {0}")]
    Ocsp(OcspError),
    #[error("revocation policy is OCSP, and no OCSP response was supplied")]
    OcspMissing,
}

/// Why `rustls-webpki` refused the chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainFailure {
    #[error("certificate expired (notAfter {not_after})")]
    Expired { not_after: u64 },
    #[error("certificate not valid yet (notBefore {not_before})")]
    NotValidYet { not_before: u64 },
    #[error("issuer is not a configured trust anchor (unknown issuer)")]
    UnknownIssuer,
    #[error("certificate is revoked")]
    Revoked,
    #[error("a CRL is stale (nextUpdate {next_update} is past)")]
    CrlExpired { next_update: u64 },
    #[error("revocation status unknown (no CRL covers a certificate of the chain)")]
    UnknownRevocationStatus,
    #[error("the leaf lacks the clientAuth extended key usage")]
    ClientAuthMissing,
    #[error("the leaf's keyUsage does not allow digitalSignature")]
    DigitalSignatureMissing,
    #[error("a CA certificate cannot be a client certificate")]
    CaUsedAsEndEntity,
    #[error("an extension is duplicated or its value is invalid")]
    InvalidExtension,
    #[error("a name constraint of an issuing CA is violated or unsupported")]
    NameConstraintViolation,
    #[error("a signature does not verify")]
    BadSignature,
    #[error("{0}")]
    Other(String),
}

impl From<webpki::Error> for ChainFailure {
    fn from(error: webpki::Error) -> ChainFailure {
        use webpki::Error as E;
        match error {
            E::CertExpired { not_after, .. } => ChainFailure::Expired {
                not_after: not_after.as_secs(),
            },
            E::CertNotValidYet { not_before, .. } => ChainFailure::NotValidYet {
                not_before: not_before.as_secs(),
            },
            E::UnknownIssuer => ChainFailure::UnknownIssuer,
            E::CertRevoked => ChainFailure::Revoked,
            E::CrlExpired { next_update, .. } => ChainFailure::CrlExpired {
                next_update: next_update.as_secs(),
            },
            E::UnknownRevocationStatus => ChainFailure::UnknownRevocationStatus,
            E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => {
                ChainFailure::ClientAuthMissing
            }
            E::CaUsedAsEndEntity => ChainFailure::CaUsedAsEndEntity,
            E::ExtensionValueInvalid | E::MalformedExtensions => ChainFailure::InvalidExtension,
            E::NameConstraintViolation => ChainFailure::NameConstraintViolation,
            E::InvalidSignatureForPublicKey => ChainFailure::BadSignature,
            other => ChainFailure::Other(format!("{other:?}")),
        }
    }
}

/// A problem with one certificate field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("the certificate has no subjectAltName extension")]
    NoSan,
    #[error("the subjectAltName extension cannot be used: {reason}")]
    BadSan { reason: String },
    #[error("subjectAltName entry {index} is not valid (tag {tag}); the certificate is refused")]
    InvalidSanEntry { index: usize, tag: u32 },
    #[error("subjectAltName has no {kind}")]
    NoSanEntry { kind: &'static str },
    #[error("subjectAltName has {count} {kind} entries; exactly one is required")]
    SeveralSanEntries { kind: &'static str, count: usize },
    #[error("a multi-valued RDN is not accepted")]
    MultiValuedRdn,
    #[error("the attribute is missing")]
    Missing,
    #[error("the attribute appears {count} times; exactly one is required")]
    Duplicated { count: usize },
    #[error("the attribute is encoded as ASN.1 tag {tag}, not a UTF8, Printable or IA5 string")]
    BadEncoding { tag: u32 },
    #[error("the {kind} holds {reason}")]
    BadCharacters { kind: &'static str, reason: String },
    #[error("the value {reason}")]
    BadValue { reason: String },
}
