//! TLS for the `tls` and `wss` listeners: rustls (ring), TLS 1.2 and 1.3, with client
//! certificates off, optional or required.
//!
//! Client certificates are verified by [`ClientTrust`], which calls the identity layer's
//! [`TrustStore::verify_chain`] for every configured trust store (the default CA set and each
//! trust label's) — the same anchors, CRLs, EKU and signature algorithms as `identity::x509`.
//! The handshake accepts a chain that *some* store verifies; which identity it is, verified
//! again with that identity's own anchors only, is decided at CONNECT, in `broker::auth`, so
//! a certificate gives the same identity on every listener. This module must never map a
//! certificate to an identity.

use crate::identity::x509::{ChainFailure, TrustStore, X509Error};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{
    self, CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};

/// Whether a TLS listener asks for client certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientCertificates {
    /// Never asked for: clients authenticate with a JWT (or anonymously).
    None,
    /// Asked for; a presented certificate must verify, but none is needed.
    Optional,
    /// A verified certificate is needed to complete the handshake.
    Required,
}

/// Why a TLS listener could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A PEM file cannot be read or parsed.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    #[error(
        "client certificates are {mode:?} but no CA is configured ([identity] ca or [trust.LABEL] ca)"
    )]
    /// Client certificates are requested but no trust anchor is configured.
    NoTrust {
        /// The client-certificate mode configured.
        mode: ClientCertificates,
    },
    /// rustls refuses the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds the acceptor from a PEM certificate chain and key, and the client trust stores
/// (every CA set a certificate identity of the policy may verify with).
pub fn acceptor(
    certificate: &Path,
    key: &Path,
    clients: ClientCertificates,
    trust: Vec<Arc<TrustStore>>,
) -> Result<TlsAcceptor, TlsSetupError> {
    let pem_error = |path: &Path, e: rustls_pki_types::pem::Error| TlsSetupError::Pem {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let chain = CertificateDer::pem_file_iter(certificate)
        .map_err(|e| pem_error(certificate, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(certificate, e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
    let provider = Arc::new(ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let config = match clients {
        ClientCertificates::None => builder.with_no_client_auth().with_single_cert(chain, key)?,
        mode if trust.is_empty() => return Err(TlsSetupError::NoTrust { mode }),
        mode => {
            let verifier = ClientTrust {
                stores: trust,
                required: mode == ClientCertificates::Required,
                provider,
            };
            builder
                .with_client_cert_verifier(Arc::new(verifier))
                .with_single_cert(chain, key)?
        }
    };
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Verifies client certificate chains with the identity layer's trust stores: accepted if
/// one of them verifies it.
#[derive(Debug)]
struct ClientTrust {
    stores: Vec<Arc<TrustStore>>,
    required: bool,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for ClientTrust {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let mut chain = Vec::with_capacity(intermediates.len() + 1);
        chain.push(end_entity.clone());
        chain.extend(intermediates.iter().cloned());
        // The reason travels in the error: the listener logs it once, with the peer. Of
        // several stores' refusals, one that knows the issuer says more than "unknown issuer".
        let mut refusal = None;
        for store in &self.stores {
            match store.verify_chain(&chain, now) {
                Ok(_) => return Ok(ClientCertVerified::assertion()),
                Err(error) => {
                    let unknown = matches!(error, X509Error::Chain(ChainFailure::UnknownIssuer));
                    if refusal.is_none() || !unknown {
                        refusal = Some(error);
                    }
                }
            }
        }
        let error = refusal.unwrap_or(X509Error::Chain(ChainFailure::UnknownIssuer));
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            rustls::OtherError(Arc::new(error)),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devcred::{self as dev, DevCa};

    fn server_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let now = dev::unix_now();
        let ca = DevCa::new("unit CA", now).expect("CA");
        let (cert, key) = ca.issue(&dev::service_params("srv", 2, now)).expect("leaf");
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }

    #[test]
    fn client_certificates_need_a_ca_and_bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("topicguard-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (cert, key) = server_files(&dir);
        assert!(acceptor(&cert, &key, ClientCertificates::None, Vec::new()).is_ok());
        let missing = acceptor(&cert, &key, ClientCertificates::Required, Vec::new());
        assert!(matches!(missing, Err(TlsSetupError::NoTrust { .. })));
        let swapped = acceptor(&key, &cert, ClientCertificates::None, Vec::new());
        let error = swapped.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            error.contains("key.pem") || error.contains("cert.pem"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
