//! Verifying a credential given as files: a JWT with a JWKS, or a PEM certificate chain with
//! CA and CRL files (`topicguard decide --jwt/--cert`, tools, tests).
//!
//! Loads the key or trust material, builds a [`Verifier`] for the policy and verifies the
//! credential through it, so a file-based credential gets exactly the checks a connection
//! gets. Reading standard input (`-`) is capped just above the token limit. This module never
//! returns an identity that [`Verifier::verify`] did not.

use super::jwt::{JwtKeys, MAX_TOKEN_BYTES};
use super::keys::{DEFAULT_RELOAD_COOLDOWN, KeyError, KeySource, KeyStore};
use super::select::{ConfigError, Credential, CredentialConfig, SelectError, Verified, Verifier};
use super::x509::{TrustError, TrustStore};
use crate::check::Checked;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a file-based credential could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum FileCredentialError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate in it")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {reason}")]
    BadPem { path: PathBuf, reason: String },
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("credential rejected: {0}")]
    Rejected(#[from] SelectError),
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

/// Verifies `token` against the policy's `from jwt` blocks with the keys of a JWKS file.
pub fn verify_jwt(
    checked: &Checked,
    token: &str,
    jwks: &Path,
) -> Result<Verified, FileCredentialError> {
    let store = KeyStore::load(
        KeySource::JwksFile(jwks.to_path_buf()),
        DEFAULT_RELOAD_COOLDOWN,
    )?;
    let config = CredentialConfig {
        jwt: Some(JwtKeys::new(Arc::new(store))),
        ..CredentialConfig::default()
    };
    let verifier = Verifier::new(checked, &config)?;
    Ok(verifier.verify(Credential::Jwt(token), UnixTime::now())?)
}

/// Verifies a PEM chain (leaf first) against the policy's `from certificate` blocks.
pub fn verify_certificate(
    checked: &Checked,
    chain_pem: &Path,
    cas: &[&Path],
    crls: &[&Path],
    now: UnixTime,
) -> Result<Verified, FileCredentialError> {
    let chain = read_chain(chain_pem)?;
    let trust = TrustStore::from_pem_files(cas, crls)?;
    let config = CredentialConfig {
        trust: Some(Arc::new(trust)),
        ..CredentialConfig::default()
    };
    let verifier = Verifier::new(checked, &config)?;
    let credential = Credential::Certificate {
        chain: &chain,
        ocsp: None,
    };
    Ok(verifier.verify(credential, now)?)
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
