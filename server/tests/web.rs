//! The server's own page: served at `/`, and driven in real headless Chromium with demo bots
//! playing (`web/test/browser/browser.mjs`, playwright-core with Debian's chromium; `.ci/run`
//! installs both).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use skirmish_server::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_scripts_are_served() {
    let server = start_default().await;
    for (path, needle) in [
        ("/", "<canvas id=\"arena\""),
        ("/app.js", "/spectate"),
        ("/protocol.js", "export function decodeSnapshot"),
        ("/style.css", "#arena"),
    ] {
        let (status, body) = http(&server, "GET", path).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.contains(needle), "{path} lacks {needle}");
    }
    server.shutdown().await.expect("shutdown");
}

/// Runs `browser.mjs` against `base`, opening the match of `players`/`capacity` demo bots
/// (and following one of them when `follow`); panics with its output when it fails.
async fn browse(
    base: String,
    shot: PathBuf,
    spki: Option<String>,
    (players, capacity): (usize, usize),
    follow: bool,
) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web/test/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci` in {} (.ci/run does)",
        dir.display()
    );
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("node");
        cmd.arg(dir.join("browser.mjs")).arg(&base).arg(&shot);
        cmd.env("EXPECT_PLAYERS", players.to_string())
            .env("EXPECT_CAPACITY", capacity.to_string())
            .env("FOLLOW", if follow { "1" } else { "0" });
        if let Some(spki) = spki {
            cmd.arg(spki);
        }
        cmd.output()
    })
    .await
    .expect("join")
    .expect("`node` must be installed to run the browser test");
    assert!(
        out.status.success(),
        "browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_watches_over_https_and_wss() {
    use base64::Engine;
    use sha2::Digest;
    let dir = tempfile::tempdir().expect("tempdir");
    // A CA and a server certificate; Chromium is told to trust the server's key (by the
    // SHA-256 of its SubjectPublicKeyInfo), the demo bots trust the CA.
    let ca = common::certs::ca("skirmish browser test CA");
    let pair = common::certs::leaf(&ca, "skirmish browser test", false);
    let (_, parsed) = x509_parser::parse_x509_certificate(&pair.2).expect("x509");
    let spki = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(parsed.public_key().raw));
    let cert = common::certs::write(dir.path(), "cert.pem", &pair.0);
    let key_path = common::certs::write(dir.path(), "key.pem", &pair.1);
    common::certs::trust(&ca, dir.path());

    let mut config = Config::ephemeral();
    config.open = false;
    config.tls_cert = Some(cert);
    config.tls_key = Some(key_path);
    let server = start(config).await;
    // The demo bots, over WSS (they trust the CA above).
    skirmish_server::demo::spawn(
        8,
        server.base_url(),
        server.state.ctx.shutdown.clone(),
        &server.state.ctx.tasks,
    );
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-page-https.png");
    browse(server.base_url(), shot, Some(spki), (8, 16), false).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_shows_a_live_demo_match() {
    let mut config = Config::ephemeral();
    config.open = false;
    config.demo = 8;
    let server = start(config).await;
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-page.png");
    browse(server.base_url(), shot, None, (8, 16), false).await;
    server.shutdown().await.expect("shutdown");
}

/// A big match with interest management (issue 15): the page sees the whole 64-player match,
/// follows one player (then it holds that player's view, 250 units around it), and goes
/// back to the whole match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_shows_a_big_match() {
    let mut config = Config::ephemeral();
    config.open = false;
    config.match_size = 128;
    config.view_radius = Some(250);
    config.snapshot_budget = 600;
    config.demo = 64;
    let server = start(config).await;
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-page-big-match.png");
    browse(server.base_url(), shot, None, (64, 128), true).await;
    server.shutdown().await.expect("shutdown");
}
