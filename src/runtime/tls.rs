//! TLS for the runtimes' client connections: rustls (ring) verifying the broker against a
//! given CA, optionally presenting a client certificate (a gateway's or service's device
//! certificate). The server name checked is the host part of `host:port` (a DNS name or
//! an IP address). This module must never skip server verification.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::Path;
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

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(certs)
}

impl TlsClient {
    /// Trusts the CA certificates in `ca`; presents `cert` + `key` if given.
    pub fn new(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<TlsClient, String> {
        let mut roots = RootCertStore::empty();
        for cert in certificates(ca)? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
        }
        let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certificates(cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("{}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("client certificate: {e}"))?
            }
        };
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// The name to verify for `host:port` (IPv6 in brackets is accepted).
    pub fn server_name(broker: &str) -> Result<ServerName<'static>, String> {
        let host = broker
            .rsplit_once(':')
            .map_or(broker, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        ServerName::try_from(host.to_string())
            .map_err(|e| format!("`{host}` is not a valid server name: {e}"))
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
