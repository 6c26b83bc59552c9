//! HTTPS and WSS on the game port, with a CA and certificates made here (rcgen): the API and
//! play over TLS, a client that does not trust the CA refused, an expired certificate
//! refused, and rotation: SIGHUP with a new pair (new connections get it, a player keeps
//! playing), and a broken pair refused while the old one stays. (A changed file without a
//! signal: `tls_files.rs`.)

mod common;

use std::time::Duration;

use common::certs::*;
use common::*;
use skirmish_shared::client::{self, ClientError};

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
    // The server counts the failed handshake once it has read the client's alert.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while server.stats.tls_handshake_failures.get() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the failed handshake was never counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
