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
        ("/arena.js", "export function drawArena"),
        ("/replay.js", "export class ReplayViewer"),
        ("/style.css", "#arena"),
    ] {
        let (status, body) = http(&server, "GET", path).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.contains(needle), "{path} lacks {needle}");
    }
    server.shutdown().await.expect("shutdown");
}

/// Runs `script` (in `web/test/browser`) under node with `args` and `env`; panics with its
/// output when it fails, returns its stdout.
async fn node(script: &str, args: Vec<String>, env: Vec<(&'static str, String)>) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web/test/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci` in {} (.ci/run does)",
        dir.display()
    );
    let script = dir.join(script);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .args(&args)
            .envs(env)
            .output()
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
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `browser.mjs` against `base`, opening the match of `players`/`capacity` demo bots
/// (and following one of them when `follow`).
async fn browse(
    base: String,
    shot: PathBuf,
    spki: Option<String>,
    (players, capacity): (usize, usize),
    follow: bool,
) {
    let mut args = vec![base, shot.display().to_string()];
    args.extend(spki);
    node(
        "browser.mjs",
        args,
        vec![
            ("EXPECT_PLAYERS", players.to_string()),
            ("EXPECT_CAPACITY", capacity.to_string()),
            ("FOLLOW", if follow { "1" } else { "0" }.to_string()),
        ],
    )
    .await;
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

/// A big match with interest management (issue 15): the page sees the whole 128-player match,
/// follows one player (then it holds that player's view, 250 units around it), and goes
/// back to the whole match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_shows_a_big_match() {
    let mut config = Config::ephemeral();
    config.open = false;
    config.match_size = 128;
    config.view_radius = Some(250);
    config.snapshot_budget = 600;
    config.demo = 128;
    let server = start(config).await;
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-page-big-match.png");
    browse(server.base_url(), shot, None, (128, 128), true).await;
    server.shutdown().await.expect("shutdown");
}

/// Replays (issue 16): demo bots play a short match; its replay is listed on the page, plays,
/// pauses, changes speed and seeks, and the world the page shows at a tick is the one
/// `skirmish-server replay show` re-simulates from the same file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_plays_a_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::ephemeral();
    config.open = false;
    config.demo = 8;
    config.match_duration = std::time::Duration::from_secs(6);
    config.no_replays = false;
    config.replay_dir = Some(dir.path().join("replays"));
    let server = start(config).await;
    // The first match ends after six seconds; its file is listed once synced.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let (match_id, file) = loop {
        let (_, body) = http(&server, "GET", "/api/replays").await;
        let rows: serde_json::Value = serde_json::from_str(&body).expect("json");
        let done = rows
            .as_array()
            .and_then(|r| r.iter().find(|r| r["recording"] == false).cloned());
        if let Some(r) = done {
            let id = r["match_id"].as_u64().expect("id") as u32;
            let file = std::fs::read_dir(dir.path().join("replays"))
                .expect("dir")
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&format!("match-{id}-")))
                })
                .expect("the listed file");
            break (id, file);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no finished replay: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let (_, info) = http(
        &server,
        "GET",
        &format!("/api/matches/{match_id}/replay/info"),
    )
    .await;
    let info: serde_json::Value = serde_json::from_str(&info).expect("json");
    let (first, last) = (
        info["first_tick"].as_u64().expect("first"),
        info["last_tick"].as_u64().expect("last"),
    );
    let tick = first + (last - first) * 2 / 3;
    let shown = Command::new(env!("CARGO_BIN_EXE_skirmish-server"))
        .args(["replay", "show", "--json", "--tick", &tick.to_string()])
        .arg(&file)
        .output()
        .expect("replay show runs");
    assert!(shown.status.success(), "{shown:?}");
    let expected = dir.path().join("expected.json");
    std::fs::write(&expected, &shown.stdout).expect("write");
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-page-replay.png");
    let out = node(
        "replay.mjs",
        vec![
            server.base_url(),
            shot.display().to_string(),
            expected.display().to_string(),
        ],
        vec![
            ("MATCH", match_id.to_string()),
            ("EXPECT_TICK", tick.to_string()),
        ],
    )
    .await;
    println!("{out}");
    server.shutdown().await.expect("shutdown");
}
