//! Verifying a credential given as files: a JWT or a PEM certificate chain, with the anchor
//! files of [`TrustFiles`] (`topicguard decide --jwt/--cert`, tools, tests).
//!
//! Loads the anchors, builds a [`Verifier`] for the policy and verifies the credential
//! through it, so a file-based credential gets exactly the checks a connection gets.
//! Anchors the policy cannot use (a label no identity names, default anchors when every
//! identity of that kind has a label) are an error, not silently ignored. Reading standard
//! input (`-`) is capped just above the token limit. This module never returns an identity
//! that [`Verifier::verify`] did not.

use super::anchors::{AnchorError, TrustFiles};
use super::jwt::MAX_TOKEN_BYTES;
use super::select::{ConfigError, Credential, SelectError, Verified, Verifier};
use crate::ast::IdentityKind;
use crate::check::Checked;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a file-based credential could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum FileCredentialError {
    /// A credential file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file holds no PEM certificate.
    #[error("{path}: no PEM certificate in it")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The file is not PEM.
    #[error("{path}: {reason}")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The trust anchors cannot be loaded.
    #[error(transparent)]
    Anchors(#[from] AnchorError),
    /// The credential configuration does not fit the policy.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Trust labels given that no identity of the policy uses.
    #[error("anchors the policy does not use: {}", .0.join("; "))]
    UnusedAnchors(Vec<String>),
    /// No identity accepts the credential.
    #[error("credential rejected: {error}{}", anchors_hint(.unanchored))]
    Rejected {
        /// Why each candidate refused it.
        error: SelectError,
        /// Identities of the credential's kind that have no anchors configured.
        unanchored: Vec<String>,
    },
}

fn anchors_hint(unanchored: &[String]) -> String {
    if unanchored.is_empty() {
        String::new()
    } else {
        format!(" ({})", unanchored.join("; "))
    }
}

/// Reads a token from a file, or from standard input for `-`; surrounding whitespace is
/// removed. At most a little more than [`MAX_TOKEN_BYTES`] is read, so the verifier's length
/// cap still sees an over-long token.
pub fn read_token(source: &Path) -> Result<String, FileCredentialError> {
    let limit = (MAX_TOKEN_BYTES + 1024) as u64;
    let read_error = |e| FileCredentialError::Read {
        path: source.to_path_buf(),
        source: e,
    };
    let mut text = String::new();
    if source == Path::new("-") {
        std::io::stdin()
            .take(limit)
            .read_to_string(&mut text)
            .map_err(read_error)?;
    } else {
        std::fs::File::open(source)
            .map_err(read_error)?
            .take(limit)
            .read_to_string(&mut text)
            .map_err(read_error)?;
    }
    Ok(text.trim().to_string())
}

/// Verifies `token` against the policy's `from jwt` blocks, each with its own keys.
pub fn verify_jwt(
    checked: &Checked,
    token: &str,
    trust: &TrustFiles,
) -> Result<Verified, FileCredentialError> {
    let verifier = verifier(checked, trust)?;
    verifier
        .verify(Credential::Jwt(token), UnixTime::now())
        .map_err(|error| rejected(&verifier, IdentityKind::Jwt, error))
}

/// Verifies a PEM chain (leaf first) against the policy's `from certificate` blocks, each
/// with its own CA set.
pub fn verify_certificate(
    checked: &Checked,
    chain_pem: &Path,
    trust: &TrustFiles,
    now: UnixTime,
) -> Result<Verified, FileCredentialError> {
    let chain = read_chain(chain_pem)?;
    let verifier = verifier(checked, trust)?;
    let credential = Credential::Certificate {
        chain: &chain,
        ocsp: None,
    };
    verifier
        .verify(credential, now)
        .map_err(|error| rejected(&verifier, IdentityKind::Certificate, error))
}

fn verifier(checked: &Checked, trust: &TrustFiles) -> Result<Verifier, FileCredentialError> {
    let verifier = Verifier::new(checked, &trust.load()?)?;
    if !verifier.unused_anchors().is_empty() {
        return Err(FileCredentialError::UnusedAnchors(
            verifier.unused_anchors().to_vec(),
        ));
    }
    Ok(verifier)
}

fn rejected(verifier: &Verifier, kind: IdentityKind, error: SelectError) -> FileCredentialError {
    FileCredentialError::Rejected {
        error,
        unanchored: verifier
            .unanchored()
            .iter()
            .filter(|u| u.kind == kind)
            .map(ToString::to_string)
            .collect(),
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, FileCredentialError> {
    let bad = |e: rustls_pki_types::pem::Error| FileCredentialError::BadPem {
        path: path.to_path_buf(),
        reason: format!("{e:?}"),
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(bad)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    if chain.is_empty() {
        return Err(FileCredentialError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}
