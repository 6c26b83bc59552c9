//! The client side of TLS (feature `client`): `https://` servers are reached over rustls and
//! their certificates verified against the system's roots plus any CA the program was told
//! to trust (`--ca PATH` in the bots and the game client). There is no way to skip the
//! verification.

use std::path::Path;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Why a CA file could not be trusted, or a TLS connection not made.
#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    #[error("{path}: {source}")]
    CaFile {
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path}: {source}")]
    BadCa {
        path: String,
        #[source]
        source: rustls::Error,
    },
    #[error("{0:?} is not a valid server name for TLS")]
    ServerName(String),
    #[error("TLS handshake with {host}: {source}")]
    Handshake {
        host: String,
        #[source]
        source: std::io::Error,
    },
}

/// CAs added with [`trust_ca_file`], beside the system roots.
fn extra_cas() -> &'static RwLock<Vec<CertificateDer<'static>>> {
    static EXTRA: OnceLock<RwLock<Vec<CertificateDer<'static>>>> = OnceLock::new();
    EXTRA.get_or_init(RwLock::default)
}

/// The configuration in use, rebuilt when a CA is added.
fn cached() -> &'static RwLock<Option<Arc<ClientConfig>>> {
    static CONFIG: OnceLock<RwLock<Option<Arc<ClientConfig>>>> = OnceLock::new();
    CONFIG.get_or_init(RwLock::default)
}

/// Trusts the CA certificates in a PEM file for every later `https://` connection of this
/// process (for a private or self-signed CA).
pub fn trust_ca_file(path: &Path) -> Result<(), ClientTlsError> {
    let shown = path.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect)
        .map_err(|source| ClientTlsError::CaFile {
            path: shown.clone(),
            source,
        })?;
    // Check they are usable roots before keeping them.
    let mut probe = RootCertStore::empty();
    for c in &certs {
        probe
            .add(c.clone())
            .map_err(|source| ClientTlsError::BadCa {
                path: shown.clone(),
                source,
            })?;
    }
    extra_cas()
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(certs);
    *cached().write().unwrap_or_else(PoisonError::into_inner) = None;
    Ok(())
}

fn config() -> Arc<ClientConfig> {
    if let Some(c) = cached()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
    {
        return c;
    }
    let mut roots = RootCertStore::empty();
    // Certificates the system store cannot parse are skipped, as every client does.
    let native = rustls_native_certs::load_native_certs();
    let _ = roots.add_parsable_certificates(native.certs);
    for c in extra_cas()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        let _ = roots.add(c.clone());
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let config = Arc::new(config);
    *cached().write().unwrap_or_else(PoisonError::into_inner) = Some(config.clone());
    config
}

/// Runs the TLS handshake over `tcp` for `host` (verified against the trusted roots).
pub async fn connect(tcp: TcpStream, host: &str) -> Result<TlsStream<TcpStream>, ClientTlsError> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| ClientTlsError::ServerName(host.to_string()))?;
    tokio_rustls::TlsConnector::from(config())
        .connect(name, tcp)
        .await
        .map_err(|source| ClientTlsError::Handshake {
            host: host.to_string(),
            source,
        })
}
