//! Certificates for the TLS tests (`skirmish_shared::test_certs`), a TLS server on them, and
//! what certificate a new connection is shown.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use skirmish_server::Config;
use skirmish_shared::client_tls;
use tokio_rustls::rustls;

use super::start;

pub use skirmish_shared::test_certs::TestCa as Ca;

pub fn ca(name: &str) -> Ca {
    skirmish_shared::test_certs::ca(name).expect("a CA")
}

/// A server certificate for 127.0.0.1 and localhost, signed by `ca`; `expired` puts its
/// validity in the past. Returns (cert PEM, key PEM, cert DER).
pub fn leaf(ca: &Ca, cn: &str, expired: bool) -> (String, String, Vec<u8>) {
    let c = skirmish_shared::test_certs::server_cert(ca, cn, expired).expect("a certificate");
    (c.cert_pem, c.key_pem, c.der)
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

/// Trusts `ca` in this test process (what `--ca` does in the bots and the client).
pub fn trust(ca: &Ca, dir: &Path) {
    let path = write(dir, "ca.pem", &ca.cert.pem());
    client_tls::trust_ca_file(&path).expect("trusted");
}

pub async fn tls_server(dir: &Path, pair: &(String, String, Vec<u8>)) -> skirmish_server::Server {
    let mut c = Config::ephemeral();
    c.tls_cert = Some(write(dir, "cert.pem", &pair.0));
    c.tls_key = Some(write(dir, "key.pem", &pair.1));
    start(c).await
}

/// The certificate the server presents to a new connection (DER).
pub async fn presented(server: &skirmish_server::Server, ca: &Ca) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.local_addr)
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake");
    tls.get_ref().1.peer_certificates().expect("certs")[0].to_vec()
}
