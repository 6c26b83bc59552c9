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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_shows_a_live_demo_match() {
    let mut config = Config::ephemeral();
    config.open = false;
    config.demo = 8;
    let server = start(config).await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web/test/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci` in {} (.ci/run does)",
        dir.display()
    );
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-page.png");
    let base = server.base_url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(dir.join("browser.mjs"))
            .arg(&base)
            .arg(&shot)
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
    server.shutdown().await.expect("shutdown");
}
