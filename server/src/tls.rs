//! TLS on the game port: the certificate pair, loaded from PEM files, served to new
//! connections through rustls, and replaced without a restart (on SIGHUP, and when the files
//! change). A pair that does not load is refused with an error in the log and the old one
//! stays in use; connections already open keep the session they have.
//!
//! The crypto provider is `ring`: it builds with the C compiler alone (no cmake or nasm),
//! which keeps the 2-core CI's build short; its AES-GCM and ChaCha20 are as fast as we need
//! for snapshots of a few hundred bytes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::stats::Stats;

/// How often the certificate files are checked for changes (and the expiry for the log).
pub const WATCH_EVERY: Duration = Duration::from_secs(5);
/// An error is logged while the certificate expires within this.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(24 * 3600);

/// Why a certificate pair could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{0}: no certificate in the file")]
    NoCertificate(PathBuf),
    #[error("{path}: the key is not usable: {source}")]
    Key {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("{0}: the certificate does not parse as X.509")]
    BadCertificate(PathBuf),
}

/// The certificate pair in use, and where it comes from.
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The current certificate's notAfter, Unix seconds.
    not_after: AtomicI64,
    /// The files' modification times when last loaded.
    loaded_mtimes: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("cert_path", &self.cert_path)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Loads a pair: the chain from `cert_path`, the key from `key_path`; checks that they match.
/// Returns the pair and the leaf certificate's notAfter (Unix seconds).
pub fn load_pair(cert_path: &Path, key_path: &Path) -> Result<(CertifiedKey, i64), TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(Iterator::collect)
        .map_err(|source| TlsError::Read {
            path: cert_path.to_path_buf(),
            source,
        })?;
    let leaf = certs
        .first()
        .ok_or_else(|| TlsError::NoCertificate(cert_path.to_path_buf()))?;
    let not_after = x509_parser::parse_x509_certificate(leaf)
        .map_err(|_| TlsError::BadCertificate(cert_path.to_path_buf()))?
        .1
        .validity()
        .not_after
        .timestamp();
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|source| TlsError::Read {
        path: key_path.to_path_buf(),
        source,
    })?;
    let provider = rustls::crypto::ring::default_provider();
    let pair = CertifiedKey::from_der(certs, key, &provider).map_err(|source| TlsError::Key {
        path: key_path.to_path_buf(),
        source,
    })?;
    Ok((pair, not_after))
}

impl CertStore {
    /// Loads the pair; the server refuses to start when it does not load.
    pub fn open(cert_path: PathBuf, key_path: PathBuf) -> Result<Arc<Self>, TlsError> {
        let mtimes = (mtime(&cert_path), mtime(&key_path));
        let (pair, not_after) = load_pair(&cert_path, &key_path)?;
        let store = Arc::new(Self {
            cert_path,
            key_path,
            current: RwLock::new(Arc::new(pair)),
            not_after: AtomicI64::new(not_after),
            loaded_mtimes: Mutex::new(mtimes),
        });
        store.log_expiry();
        Ok(store)
    }

    /// The certificate in use expires at this Unix time.
    #[must_use]
    pub fn not_after(&self) -> i64 {
        self.not_after.load(Ordering::Relaxed)
    }

    /// Loads the pair again: new connections get it; a pair that does not load is refused
    /// (the old one stays) and the error returned.
    pub fn reload(&self) -> Result<(), TlsError> {
        let mtimes = (mtime(&self.cert_path), mtime(&self.key_path));
        *self
            .loaded_mtimes
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = mtimes;
        match load_pair(&self.cert_path, &self.key_path) {
            Ok((pair, not_after)) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(pair);
                self.not_after.store(not_after, Ordering::Relaxed);
                info!(cert = %self.cert_path.display(), not_after, "TLS certificate loaded");
                self.log_expiry();
                Ok(())
            }
            Err(e) => {
                error!("TLS certificate not replaced, the old one stays in use: {e}");
                Err(e)
            }
        }
    }

    /// Whether either file changed since the last load.
    fn files_changed(&self) -> bool {
        let now = (mtime(&self.cert_path), mtime(&self.key_path));
        *self
            .loaded_mtimes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            != now
    }

    fn log_expiry(&self) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let left = self.not_after() - now;
        if left <= EXPIRY_WARNING.as_secs() as i64 {
            error!(
                cert = %self.cert_path.display(),
                seconds_left = left,
                "the TLS certificate expires within 24 h (or has): renew it"
            );
        }
    }

    /// The rustls configuration serving this store's current pair (HTTP/1.1 only).
    #[must_use]
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_no_client_auth()
                .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// Reloads on SIGHUP and when the files change, until `shutdown`; logs while the
    /// certificate is close to expiry.
    ///
    /// The SIGHUP handler is installed here, before the returned future first runs, so a
    /// SIGHUP right after the server started cannot take the process's default action.
    pub fn watch(
        self: Arc<Self>,
        shutdown: CancellationToken,
        stats: Arc<Stats>,
    ) -> impl std::future::Future<Output = ()> + Send {
        #[cfg(unix)]
        let hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn!("SIGHUP: {e}; certificate changes are still picked up from the files");
                None
            }
        };
        #[cfg(unix)]
        return self.watch_loop(shutdown, stats, hup);
        #[cfg(not(unix))]
        return self.watch_loop(shutdown, stats);
    }

    async fn watch_loop(
        self: Arc<Self>,
        shutdown: CancellationToken,
        stats: Arc<Stats>,
        #[cfg(unix)] mut hup: Option<tokio::signal::unix::Signal>,
    ) {
        let mut every = tokio::time::interval(WATCH_EVERY);
        let mut checks = 0u64;
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<()>();
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = hangup => {
                    info!("SIGHUP: reloading the TLS certificate");
                    let _ = self.reload();
                    stats.tls_cert_not_after.set(self.not_after().max(0) as u64);
                }
                _ = every.tick() => {
                    if self.files_changed() {
                        info!("the TLS certificate files changed: reloading");
                        let _ = self.reload();
                        stats.tls_cert_not_after.set(self.not_after().max(0) as u64);
                    }
                    checks += 1;
                    // About hourly, say again that the certificate is about to lapse.
                    if checks.is_multiple_of(720) {
                        self.log_expiry();
                    }
                }
            }
        }
    }
}
