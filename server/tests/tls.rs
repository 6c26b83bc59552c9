//! HTTPS and WSS on the game port, with a CA and certificates made here (rcgen): the API and
//! play over TLS, a client that does not trust the CA refused, an expired certificate
//! refused, and rotation: SIGHUP with a new pair (new connections get it, a player keeps
//! playing), and a broken pair refused while the old one stays.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, SanType, date_time_ymd,
};
use skirmish_server::Config;
use skirmish_shared::client::{self, ClientError};
use skirmish_shared::client_tls;
use tokio_rustls::rustls;

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("self-signed");
    Ca { cert, key }
}

/// A server certificate for 127.0.0.1 and localhost, signed by `ca`; `expired` puts its
/// validity in the past. Returns (cert PEM, key PEM, cert DER).
fn leaf(ca: &Ca, cn: &str, expired: bool) -> (String, String, Vec<u8>) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
    params.distinguished_name.push(DnType::CommonName, cn);
    if expired {
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
    }
    let cert = params.signed_by(&key, &ca.cert, &ca.key).expect("signed");
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

/// Trusts `ca` in this test process (what `--ca` does in the bots and the client).
fn trust(ca: &Ca, dir: &Path) {
    let path = write(dir, "ca.pem", &ca.cert.pem());
    client_tls::trust_ca_file(&path).expect("trusted");
}

async fn tls_server(dir: &Path, pair: &(String, String, Vec<u8>)) -> skirmish_server::Server {
    let mut c = Config::ephemeral();
    c.tls_cert = Some(write(dir, "cert.pem", &pair.0));
    c.tls_key = Some(write(dir, "key.pem", &pair.1));
    start(c).await
}

/// The certificate the server presents to a new connection (DER).
async fn presented(server: &skirmish_server::Server, ca: &Ca) -> Vec<u8> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_play_go_over_https_and_wss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca("skirmish test CA (play)");
    trust(&ca, dir.path());
    let server = tls_server(dir.path(), &leaf(&ca, "play", false)).await;
    let base = server.base_url();
    assert!(base.starts_with("https://"), "{base}");
    let (status, body) = client::http_request(&base, "GET", "/healthz", None)
        .await
        .expect("https");
    assert_eq!((status, &body[..]), (200, &b"ok"[..]));
    let mm = client::matchmake(&base, "tls", None)
        .await
        .expect("matchmake");
    assert!(mm.ws_url.starts_with("wss://"), "{}", mm.ws_url);

    // A player over WSS: welcomed, and its inputs acknowledged.
    let mut p = join(&server, "alice", None).await;
    let acked = p.steer_until_acked(5).await;
    assert!(acked, "inputs acknowledged over WSS");
    assert!(server.stats.tls_handshakes.get() >= 3);
    let (_, metrics) = client::http_request(&base, "GET", "/metrics", None)
        .await
        .expect("metrics");
    let metrics = String::from_utf8_lossy(&metrics).into_owned();
    assert!(
        metrics.contains("skirmish_tls_certificate_expiry_timestamp_seconds"),
        "{metrics}"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_ca_is_refused_and_so_is_an_expired_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stranger = ca("a CA nobody trusts");
    let server = tls_server(dir.path(), &leaf(&stranger, "untrusted", false)).await;
    let err = client::http_request(&server.base_url(), "GET", "/healthz", None)
        .await
        .expect_err("unknown issuer");
    assert!(matches!(err, ClientError::Tls(_)), "{err}");
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    server.shutdown().await.expect("shutdown");

    let trusted = ca("skirmish test CA (expired)");
    trust(&trusted, dir.path());
    let server = tls_server(dir.path(), &leaf(&trusted, "old", true)).await;
    let err = client::http_request(&server.base_url(), "GET", "/healthz", None)
        .await
        .expect_err("expired");
    assert!(matches!(err, ClientError::Tls(_)), "{err}");
    assert!(server.stats.tls_handshake_failures.get() >= 1);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_serves_the_new_pair_keeps_players_and_refuses_a_broken_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca("skirmish test CA (rotation)");
    trust(&ca, dir.path());
    let first = leaf(&ca, "first", false);
    let server = tls_server(dir.path(), &first).await;
    assert_eq!(presented(&server, &ca).await, first.2);
    let mut p = join(&server, "bob", None).await;
    assert!(p.steer_until_acked(3).await);

    // A new pair, then SIGHUP (as an operator or cert-manager hook would send).
    let second = leaf(&ca, "second", false);
    write(dir.path(), "cert.pem", &second.0);
    write(dir.path(), "key.pem", &second.1);
    let pid = std::process::id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while presented(&server, &ca).await != second.2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("rotation: SIGHUP -> new connections get CN=second");
    assert!(
        p.steer_until_acked(3).await,
        "the player connected before the rotation plays on"
    );
    eprintln!("rotation: the player joined before it still gets its inputs acknowledged");

    // A broken pair: refused, the last good one stays in use.
    write(
        dir.path(),
        "cert.pem",
        "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n",
    );
    let err = server.reload_tls().expect_err("a broken pair is refused");
    eprintln!("rotation: broken pair refused: {err}");
    assert_eq!(presented(&server, &ca).await, second.2);
    assert!(p.steer_until_acked(3).await);
    server.shutdown().await.expect("shutdown");
}
