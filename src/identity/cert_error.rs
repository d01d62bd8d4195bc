//! Why a client certificate was refused: [`X509Error`], with the chain's own reasons
//! ([`ChainFailure`], from `rustls-webpki`) and a field's ([`FieldError`]). Its own module
//! so that the chain check ([`super::chain`]) and the attribute reader ([`super::x509`])
//! share the error without importing each other. This module must never verify anything.

use super::extract::{RequireError, SplitError};
use super::ocsp::OcspError;

/// Why a certificate was rejected or could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    /// No certificate was presented.
    #[error("no certificate was presented")]
    NoCertificate,
    /// The chain does not verify to the identity's anchors.
    #[error("certificate chain rejected: {0}")]
    Chain(ChainFailure),
    /// The certificate is not valid DER.
    #[error("certificate is not valid DER: {reason}")]
    Parse {
        /// Why.
        reason: String,
    },
    /// An extension occurs twice.
    #[error("certificate has the extension {oid} more than once")]
    DuplicateExtension {
        /// The extension's OID.
        oid: String,
    },
    /// A field an attribute comes from cannot be read.
    #[error("`{field}`: {error}")]
    Field {
        /// The field.
        field: String,
        /// Why.
        error: FieldError,
    },
    /// A field does not split by its extraction template.
    #[error("`{field}` does not split as \"{template}\": value {error}")]
    Split {
        /// The field's path.
        field: String,
        /// The template.
        template: String,
        /// Where the split failed.
        error: SplitError,
    },
    /// A `require` line does not hold.
    #[error("{0}")]
    Require(RequireError),
    /// The issuer is not the one the identity accepts.
    #[error("issued by `{found}`, but identity `{identity}` accepts only issuer `{expected}`")]
    IssuerMismatch {
        /// The identity.
        identity: String,
        /// The issuer it accepts.
        expected: String,
        /// The issuer found.
        found: String,
    },
    /// The OCSP response does not show the certificate good.
    #[error("revocation: {0}")]
    Ocsp(OcspError),
    /// Revocation is checked by OCSP and no response was supplied.
    #[error("revocation policy is OCSP, and no OCSP response was supplied")]
    OcspMissing,
}

/// Why `rustls-webpki` refused the chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainFailure {
    /// The certificate has expired.
    #[error("certificate expired (notAfter {not_after})")]
    Expired {
        /// `notAfter`, seconds since the Unix epoch.
        not_after: u64,
    },
    /// The certificate is not valid yet.
    #[error("certificate not valid yet (notBefore {not_before})")]
    NotValidYet {
        /// `notBefore`, seconds since the Unix epoch.
        not_before: u64,
    },
    /// The issuer is not a configured trust anchor.
    #[error("issuer is not a configured trust anchor (unknown issuer)")]
    UnknownIssuer,
    /// A certificate of the chain is revoked.
    #[error("certificate is revoked")]
    Revoked,
    /// A CRL is past its next update.
    #[error("a CRL is stale (nextUpdate {next_update} is past)")]
    CrlExpired {
        /// `nextUpdate`, seconds since the Unix epoch.
        next_update: u64,
    },
    /// No CRL covers a certificate of the chain.
    #[error("revocation status unknown (no CRL covers a certificate of the chain)")]
    UnknownRevocationStatus,
    /// The leaf lacks the clientAuth extended key usage.
    #[error("the leaf lacks the clientAuth extended key usage")]
    ClientAuthMissing,
    /// The leaf's key usage does not allow digitalSignature.
    #[error("the leaf's keyUsage does not allow digitalSignature")]
    DigitalSignatureMissing,
    /// A CA certificate was presented as the leaf.
    #[error("a CA certificate cannot be a client certificate")]
    CaUsedAsEndEntity,
    /// An extension is duplicated or invalid.
    #[error("an extension is duplicated or its value is invalid")]
    InvalidExtension,
    /// A name constraint is violated or unsupported.
    #[error("a name constraint of an issuing CA is violated or unsupported")]
    NameConstraintViolation,
    /// A signature does not verify.
    #[error("a signature does not verify")]
    BadSignature,
    /// Any other webpki failure, by its description.
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
    /// There is no subjectAltName extension.
    #[error("the certificate has no subjectAltName extension")]
    NoSan,
    /// The subjectAltName extension cannot be parsed.
    #[error("the subjectAltName extension cannot be used: {reason}")]
    BadSan {
        /// Why.
        reason: String,
    },
    /// A subjectAltName entry is invalid.
    #[error("subjectAltName entry {index} is not valid (tag {tag}); the certificate is refused")]
    InvalidSanEntry {
        /// The entry's index.
        index: usize,
        /// The entry's tag.
        tag: u32,
    },
    /// No subjectAltName entry of the kind asked for.
    #[error("subjectAltName has no {kind}")]
    NoSanEntry {
        /// The kind of entry asked for.
        kind: &'static str,
    },
    /// More than one subjectAltName entry of the kind asked for.
    #[error("subjectAltName has {count} {kind} entries; exactly one is required")]
    SeveralSanEntries {
        /// The kind of entry asked for.
        kind: &'static str,
        /// How many there are.
        count: usize,
    },
    /// A relative distinguished name holds several attributes.
    #[error("a multi-valued RDN is not accepted")]
    MultiValuedRdn,
    /// The attribute is missing.
    #[error("the attribute is missing")]
    Missing,
    /// The attribute occurs more than once.
    #[error("the attribute appears {count} times; exactly one is required")]
    Duplicated {
        /// How many there are.
        count: usize,
    },
    /// The attribute is not a UTF8, Printable or IA5 string.
    #[error("the attribute is encoded as ASN.1 tag {tag}, not a UTF8, Printable or IA5 string")]
    BadEncoding {
        /// The ASN.1 tag.
        tag: u32,
    },
    /// The attribute holds characters its kind does not allow.
    #[error("the {kind} holds {reason}")]
    BadCharacters {
        /// What the attribute is (e.g. a DNS name).
        kind: &'static str,
        /// Why.
        reason: String,
    },
    /// The value is outside the attribute-value grammar.
    #[error("the value {reason}")]
    BadValue {
        /// Why it is outside the grammar.
        reason: String,
    },
}
