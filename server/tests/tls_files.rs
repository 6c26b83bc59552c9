//! Certificate rotation by file change alone (no SIGHUP): in a test binary of its own, since
//! a SIGHUP sent by another test in the same process would reload every server in it.

mod common;

use std::time::Duration;

use common::certs::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_certificate_file_is_picked_up_without_a_signal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca("skirmish test CA (file change)");
    trust(&ca, dir.path());
    let server = tls_server(dir.path(), &leaf(&ca, "before", false)).await;
    let after = leaf(&ca, "after", false);
    // Key first, then the certificate, as a renewal tool writes them.
    write(dir.path(), "key.pem", &after.1);
    write(dir.path(), "cert.pem", &after.0);
    let deadline = tokio::time::Instant::now() + skirmish_server::tls::WATCH_EVERY + DEADLINE;
    while presented(&server, &ca).await != after.2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the changed files were never loaded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.shutdown().await.expect("shutdown");
}
