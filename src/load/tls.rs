//! TLS for the load tool's idle connections: a rustls (ring) client that verifies the
//! broker's certificate against a given CA file and server name, so idle-connection memory
//! can be measured on a broker's TLS listener.
//!
//! Each connection costs the tool one rustls client state; the broker's side of it is what
//! is measured. This module must never skip server verification, and never talk to
//! anything but the given broker address.

use super::LoadError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A TLS client setup: the trusted CA and the name the broker's certificate must carry.
/// Cheap to clone.
#[derive(Clone)]
pub struct TlsLogin {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLogin")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn tls_error(what: impl std::fmt::Display, detail: impl std::fmt::Display) -> LoadError {
    LoadError::Tls {
        what: what.to_string(),
        detail: detail.to_string(),
    }
}

impl TlsLogin {
    /// Trusts the CA certificates in `ca` (PEM) and verifies the broker as `server_name`
    /// (a DNS name or an IP address).
    pub fn new(ca: &Path, server_name: &str) -> Result<TlsLogin, LoadError> {
        let shown = ca.display();
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|e| tls_error(&shown, e))?;
        if certs.is_empty() {
            return Err(tls_error(&shown, "no certificate in the file"));
        }
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots.add(cert).map_err(|e| tls_error(&shown, e))?;
        }
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("TLS setup", e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|e| tls_error(format!("server name `{server_name}`"), e))?;
        Ok(TlsLogin {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// Completes the TLS handshake on `stream`, verifying the broker.
    pub async fn handshake(
        &self,
        stream: TcpStream,
        what: &str,
    ) -> Result<TlsStream<TcpStream>, LoadError> {
        let handshake = self.connector.connect(self.server_name.clone(), stream);
        super::wait::within(what, super::wait::STEP, handshake)
            .await?
            .map_err(|e| tls_error(format!("{what}: TLS handshake"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let missing = TlsLogin::new(Path::new("/nonexistent/ca.pem"), "localhost");
        let text = missing.expect_err("no file").to_string();
        assert!(text.contains("/nonexistent/ca.pem"), "{text}");
        let dir = std::env::temp_dir().join(format!("tg-load-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let text = TlsLogin::new(&empty, "localhost")
            .expect_err("no certificate")
            .to_string();
        assert!(text.contains("no certificate"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
