//! Trust anchors from files: the default anchors (`--ca`, `--crl`, `--jwks`, `[identity]`)
//! and one set per trust label (`--trust LABEL=FILE`, `--trust-crl LABEL=FILE`,
//! `[trust.LABEL]`), loaded into a [`CredentialConfig`].
//!
//! Every file has one role and is checked for it: a CA file holds only `CERTIFICATE`
//! sections, a CRL file only `X509 CRL` sections, a JWKS is a JSON key set (never an HMAC
//! key). A file holding anything else (a private key in a CA file, a certificate in a CRL
//! file) is refused, so a misplaced file can never become an anchor. `--trust LABEL=FILE`
//! tells a JWKS from a CA file by its first character (`{`). A label has at most one JWKS;
//! CRLs need a CA under the same label. Labels follow the policy's label grammar
//! ([`crate::check::is_trust_label`]). This module reads configuration only; it never sees
//! a client credential.

use super::jwt::JwtKeys;
use super::keys::{DEFAULT_RELOAD_COOLDOWN, KeyError, KeySource, KeyStore};
use super::select::{Anchors, CredentialConfig};
use super::x509::{TrustError, TrustStore};
use crate::check::is_trust_label;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::SectionKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files that hold one set of anchors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnchorFiles {
    /// The JWKS for `from jwt` identities.
    pub jwks: Option<PathBuf>,
    /// CA certificates (PEM) for `from certificate` identities.
    pub cas: Vec<PathBuf>,
    /// CRLs (PEM) for those CAs; with any, revocation is checked for the whole chain.
    pub crls: Vec<PathBuf>,
}

impl AnchorFiles {
    /// True when no file is configured for the label.
    pub fn is_empty(&self) -> bool {
        self.jwks.is_none() && self.cas.is_empty() && self.crls.is_empty()
    }
}

/// The default anchors and the anchors of each trust label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustFiles {
    /// For identities without a `trust` label.
    pub default: AnchorFiles,
    /// The files of each trust label.
    pub labels: BTreeMap<String, AnchorFiles>,
}

/// A problem with anchor configuration.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error(
        "`{label}` is not a trust label (1 to 64 lowercase letters, digits, `-`, `_`, `.`, starting with a letter or digit)"
    )]
    /// A trust label is not a valid name.
    BadLabel {
        /// The trust label.
        label: String,
    },
    /// An argument is not `LABEL=FILE`.
    #[error("expected LABEL=FILE, got `{0}`")]
    BadMapping(String),
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A trust label is given two JWKS files.
    #[error("trust label `{label}` has two JWKS files ({first} and {second}); merge them into one")]
    TwoJwks {
        /// The label.
        label: String,
        /// The first JWKS file.
        first: PathBuf,
        /// The second.
        second: PathBuf,
    },
    /// A file holds a different kind of PEM section than its role takes.
    #[error("{path}: holds {found}, but a {role} file holds only {expected}")]
    WrongSection {
        /// The file.
        path: PathBuf,
        /// What it holds.
        found: String,
        /// The role it was given for (CA, CRL, …).
        role: &'static str,
        /// What that role takes.
        expected: &'static str,
    },
    /// A file is not PEM.
    #[error("{path}: not PEM: {reason}")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file holds none of what its role takes.
    #[error("{path}: no {expected} in it")]
    Empty {
        /// The file.
        path: PathBuf,
        /// What was expected in it.
        expected: &'static str,
    },
    /// A trust label has CRLs but no CA certificate.
    #[error("{0} has CRLs but no CA certificate")]
    CrlsWithoutCa(String),
    /// A key set cannot be loaded.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// A trust store cannot be built.
    #[error(transparent)]
    Trust(#[from] TrustError),
}

/// Splits `LABEL=FILE`, checking the label.
pub fn parse_mapping(text: &str) -> Result<(String, PathBuf), AnchorError> {
    let (label, file) = text
        .split_once('=')
        .filter(|(_, file)| !file.is_empty())
        .ok_or_else(|| AnchorError::BadMapping(text.to_string()))?;
    check_label(label)?;
    Ok((label.to_string(), PathBuf::from(file)))
}

/// A label of the policy's grammar, or an error naming it.
pub fn check_label(label: &str) -> Result<(), AnchorError> {
    if is_trust_label(label) {
        Ok(())
    } else {
        Err(AnchorError::BadLabel {
            label: label.escape_default().to_string(),
        })
    }
}

impl TrustFiles {
    /// `--trust LABEL=FILE`: a JWKS (a file starting with `{`) or PEM CA certificates.
    pub fn add_trust(&mut self, label: &str, path: &Path) -> Result<(), AnchorError> {
        check_label(label)?;
        let text = read(path)?;
        let entry = self.labels.entry(label.to_string()).or_default();
        if text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            if let Some(first) = &entry.jwks {
                return Err(AnchorError::TwoJwks {
                    label: label.to_string(),
                    first: first.clone(),
                    second: path.to_path_buf(),
                });
            }
            entry.jwks = Some(path.to_path_buf());
        } else {
            entry.cas.push(path.to_path_buf());
        }
        Ok(())
    }

    /// `--trust-crl LABEL=FILE`: PEM CRLs for the label's CA.
    pub fn add_crl(&mut self, label: &str, path: &Path) -> Result<(), AnchorError> {
        check_label(label)?;
        let entry = self.labels.entry(label.to_string()).or_default();
        entry.crls.push(path.to_path_buf());
        Ok(())
    }

    /// The anchors command-line flags describe: the default files (`--jwks`, `--ca`,
    /// `--crl`) and `--trust LABEL=FILE` / `--trust-crl LABEL=FILE` mappings.
    pub fn from_flags(
        default: AnchorFiles,
        trust: &[(String, PathBuf)],
        trust_crl: &[(String, PathBuf)],
    ) -> Result<TrustFiles, AnchorError> {
        let mut files = TrustFiles {
            default,
            labels: BTreeMap::new(),
        };
        for (label, file) in trust {
            files.add_trust(label, file)?;
        }
        for (label, file) in trust_crl {
            files.add_crl(label, file)?;
        }
        Ok(files)
    }

    /// Whether no anchor at all is configured.
    pub fn is_empty(&self) -> bool {
        self.default.is_empty() && self.labels.values().all(AnchorFiles::is_empty)
    }

    /// Reads and checks every file.
    pub fn load(&self) -> Result<CredentialConfig, AnchorError> {
        let default = load_anchors(&self.default, "the default anchors")?;
        let mut config = CredentialConfig {
            jwt: default.jwt,
            trust: default.certificates,
            labels: BTreeMap::new(),
        };
        for (label, files) in &self.labels {
            check_label(label)?;
            let anchors = load_anchors(files, &format!("trust label `{label}`"))?;
            config.labels.insert(label.clone(), anchors);
        }
        Ok(config)
    }
}

fn load_anchors(files: &AnchorFiles, name: &str) -> Result<Anchors, AnchorError> {
    let jwt = match &files.jwks {
        Some(path) => {
            let store = KeyStore::load(KeySource::JwksFile(path.clone()), DEFAULT_RELOAD_COOLDOWN)?;
            Some(JwtKeys::new(Arc::new(store)))
        }
        None => None,
    };
    if files.cas.is_empty() {
        if !files.crls.is_empty() {
            return Err(AnchorError::CrlsWithoutCa(name.to_string()));
        }
        return Ok(Anchors {
            jwt,
            certificates: None,
        });
    }
    let mut anchors = Vec::new();
    for path in &files.cas {
        for der in sections(path, SectionKind::Certificate)? {
            anchors.push((path.display().to_string(), CertificateDer::from(der)));
        }
    }
    let mut crls = Vec::new();
    for path in &files.crls {
        for der in sections(path, SectionKind::Crl)? {
            crls.push((path.display().to_string(), der));
        }
    }
    let store = TrustStore::from_named(anchors, crls)?;
    Ok(Anchors {
        jwt,
        certificates: Some(Arc::new(store)),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, AnchorError> {
    std::fs::read(path).map_err(|source| AnchorError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The DER of every PEM section in `path`, all of which must be of `kind`.
fn sections(path: &Path, kind: SectionKind) -> Result<Vec<Vec<u8>>, AnchorError> {
    let (role, expected) = match kind {
        SectionKind::Crl => ("CRL", "X509 CRL sections"),
        _ => ("CA", "CERTIFICATE sections"),
    };
    let text = read(path)?;
    let mut reader: &[u8] = &text;
    let mut out = Vec::new();
    loop {
        let section =
            rustls_pki_types::pem::from_buf(&mut reader).map_err(|e| AnchorError::BadPem {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        match section {
            None => break,
            Some((found, der)) if found == kind => out.push(der),
            Some((found, _)) => {
                return Err(AnchorError::WrongSection {
                    path: path.to_path_buf(),
                    found: format!("a {} section", section_name(found)),
                    role,
                    expected,
                });
            }
        }
    }
    if out.is_empty() {
        return Err(AnchorError::Empty {
            path: path.to_path_buf(),
            expected,
        });
    }
    Ok(out)
}

fn section_name(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::Certificate => "CERTIFICATE",
        SectionKind::Crl => "X509 CRL",
        SectionKind::PublicKey => "PUBLIC KEY",
        SectionKind::Csr => "CERTIFICATE REQUEST",
        SectionKind::RsaPrivateKey | SectionKind::PrivateKey | SectionKind::EcPrivateKey => {
            "private key"
        }
        _ => "non-certificate",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_need_a_label_of_the_policy_grammar_and_a_file() {
        assert_eq!(
            parse_mapping("partner-a=ca-a.pem").unwrap(),
            ("partner-a".to_string(), PathBuf::from("ca-a.pem"))
        );
        assert_eq!(
            parse_mapping("idp=a=b.json").unwrap().1,
            PathBuf::from("a=b.json")
        );
        for bad in ["ca.pem", "=ca.pem", "Partner=ca.pem", "a b=c", "-a=c", "a="] {
            assert!(parse_mapping(bad).is_err(), "{bad}");
        }
    }
}
