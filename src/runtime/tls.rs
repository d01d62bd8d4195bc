//! TLS for the runtimes' client connections: rustls (ring) verifying the broker against a
//! given CA, optionally presenting a client certificate (a gateway's or service's device
//! certificate). The server name checked is the host part of `host:port` (a DNS name or
//! an IP address). This module must never skip server verification.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A TLS client setup, cheap to clone.
#[derive(Clone)]
pub struct TlsClient {
    pub(crate) connector: TlsConnector,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsClient")
    }
}

/// Why a TLS client cannot be set up, naming the file or server name at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsClientError {
    /// A PEM file cannot be read or parsed.
    #[error("{}: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A certificate file holds no certificate.
    #[error("{}: no certificate in the file", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A CA certificate cannot be used as a trust anchor.
    #[error("{}: {reason}", path.display())]
    BadCa {
        /// The CA file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refuses the protocol versions.
    #[error("TLS setup: {0}")]
    Setup(String),
    /// rustls refuses the client certificate and key.
    #[error("client certificate: {0}")]
    ClientCertificate(String),
    /// The broker's host is not a DNS name or an IP address.
    #[error("`{host}` is not a valid server name: {reason}")]
    ServerName {
        /// The host part of `host:port`.
        host: String,
        /// Why.
        reason: String,
    },
}

fn pem_error(path: &Path, error: impl std::fmt::Display) -> TlsClientError {
    TlsClientError::Pem {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsClientError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(TlsClientError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

impl TlsClient {
    /// Trusts the CA certificates in `ca`; presents `cert` + `key` if given.
    pub fn new(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<TlsClient, TlsClientError> {
        let mut roots = RootCertStore::empty();
        for cert in certificates(ca)? {
            roots.add(cert).map_err(|e| TlsClientError::BadCa {
                path: ca.to_path_buf(),
                reason: e.to_string(),
            })?;
        }
        let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsClientError::Setup(e.to_string()))?
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certificates(cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsClientError::ClientCertificate(e.to_string()))?
            }
        };
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// The name to verify for `host:port` (IPv6 in brackets is accepted).
    pub fn server_name(broker: &str) -> Result<ServerName<'static>, TlsClientError> {
        let host = broker
            .rsplit_once(':')
            .map_or(broker, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        ServerName::try_from(host.to_string()).map_err(|e| TlsClientError::ServerName {
            host: host.to_string(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_host_part() {
        assert!(matches!(
            TlsClient::server_name("127.0.0.1:8883"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            TlsClient::server_name("[::1]:8883"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            TlsClient::server_name("broker.example:8883"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(TlsClient::server_name("bad host:1").is_err());
        assert!(TlsClient::new(Path::new("/nonexistent/ca.pem"), None).is_err());
    }
}
