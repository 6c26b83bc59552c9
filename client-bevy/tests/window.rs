//! A real window under Xvfb (Mesa's software Vulkan): the client joins a server on
//! 127.0.0.1:0 (plain, and over WSS with a private CA), takes a screenshot after 4 s and
//! quits; the server saw the player, and the PNG shows the arena and the player's colour.
//! `.ci/run` installs xvfb and the Mesa packages.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bevy::color::ColorToPacked;
use skirmish_client::plugins::world_view::player_color;
use skirmish_server::{Config, Server};
use skirmish_shared::world::PlayerId;

fn pixels(path: &std::path::Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("the screenshot exists"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    let px = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (info.width, info.height, px)
}

fn has_colour(px: &[[u8; 3]], want: [u8; 3], tolerance: i16) -> usize {
    px.iter()
        .filter(|p| (0..3).all(|i| (i16::from(p[i]) - i16::from(want[i])).abs() <= tolerance))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_joins_and_draws_the_arena_under_xvfb() {
    let mut config = Config::ephemeral();
    config.open = false; // the client matchmakes like a player would
    // The default transport is `auto`: with the datagram endpoint up, that is UDP.
    joins_and_draws(config, Vec::new(), "client.png", true).await;
}

/// The same over HTTPS/WSS, the client trusting the server's private CA with `--ca`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_plays_over_wss_trusting_a_private_ca() {
    use skirmish_shared::test_certs;
    let dir = tempfile_dir();
    let ca = test_certs::ca("skirmish client test CA").expect("a CA");
    let leaf =
        test_certs::server_cert(&ca, "skirmish client test server", false).expect("a certificate");
    let (cert, key_path, ca_path) = (
        dir.join("tls-cert.pem"),
        dir.join("tls-key.pem"),
        dir.join("tls-ca.pem"),
    );
    std::fs::write(&cert, &leaf.cert_pem).expect("write");
    std::fs::write(&key_path, &leaf.key_pem).expect("write");
    std::fs::write(&ca_path, ca.cert.pem()).expect("write");
    let mut config = Config::ephemeral();
    config.open = false;
    config.tls_cert = Some(cert);
    config.tls_key = Some(key_path);
    let extra = vec![
        "--ca".to_string(),
        ca_path.display().to_string(),
        "--transport".to_string(),
        "ws".to_string(),
    ];
    joins_and_draws(config, extra, "client-wss.png", false).await;
}

/// Starts a server with `config`, runs the client under Xvfb against it (with `extra`
/// flags) until its screenshot, and checks that the server saw the player and the PNG shows
/// the arena and the player's colour, over UDP when `over_udp` (else WebSocket).
async fn joins_and_draws(config: Config, extra: Vec<String>, name: &str, over_udp: bool) {
    let server = Server::start(config).await.expect("server");
    let dir = tempfile_dir();
    let shot = dir.join(name);
    let _ = std::fs::remove_file(&shot);
    let child = Command::new("xvfb-run")
        .args(["-a", "--server-args=-screen 0 1280x900x24"])
        .arg(env!("CARGO_BIN_EXE_skirmish-client"))
        .args(["--play", "--url", &server.base_url(), "--name", "tester", "--screenshot-after", "4s", "--exit-after-screenshot"])
        .arg("--screenshot")
        .arg(&shot)
        .args(&extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xvfb-run must be installed (apt-get install xvfb xauth mesa-vulkan-drivers libvulkan1)");
    let run = watch(child, &server).await;
    let stderr = run.stderr;
    assert!(
        run.status.success(),
        "the client failed: {}\n{stderr}",
        run.status
    );
    assert!(
        run.most_players >= 1,
        "the server never saw the player join"
    );
    assert_eq!(
        server.stats.udp_sessions.get() >= 1,
        over_udp,
        "played over {}",
        if over_udp { "UDP" } else { "WebSocket" }
    );

    // The PNG shows the arena and the player, not a blank or single-colour image.
    let (w, h, px) = pixels(&shot);
    assert!(w >= 800 && h >= 600, "{w}x{h}");
    let mut distinct: Vec<[u8; 3]> = px.iter().step_by(37).copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(
        distinct.len() >= 5,
        "only {} colours: blank?\n{stderr}",
        distinct.len()
    );
    let floor = has_colour(&px, [10, 13, 20], 6);
    assert!(
        floor > (w * h / 10) as usize,
        "the arena floor covers {floor} pixels"
    );
    let me = player_color(PlayerId(1)).to_srgba().to_u8_array();
    let mine = has_colour(&px, [me[0], me[1], me[2]], 12);
    assert!(
        mine > 100,
        "the player's colour {me:?} covers {mine} pixels"
    );
    let _ = std::fs::copy(
        &shot,
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("window-{name}")),
    );
    server.shutdown().await.expect("shutdown");
}

/// How a client run under Xvfb went.
struct Watched {
    status: std::process::ExitStatus,
    /// The most players any of the server's matches had while the client ran.
    most_players: usize,
    stdout: String,
    stderr: String,
}

/// Waits (at most 180 s) for `child`, a client under Xvfb, watching `server`'s matches.
async fn watch(mut child: std::process::Child, server: &Server) -> Watched {
    let started = Instant::now();
    let mut most_players = 0;
    let status = loop {
        let players = server.state.registry.list().iter().map(|m| m.players).max();
        most_players = most_players.max(players.unwrap_or(0));
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the client did not finish within 180 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    {
        use std::io::Read;
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_string(&mut stdout);
        }
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
    }
    Watched {
        status,
        most_players,
        stdout,
        stderr,
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("client-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Runs the client under Xvfb with `args` (screenshot into `shot`) until it exits; returns its
/// stdout and stderr, panicking with them if it failed.
async fn run_client(args: Vec<String>, shot: &std::path::Path) -> (String, String) {
    let shot = shot.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("xvfb-run")
            .args(["-a", "--server-args=-screen 0 1280x900x24"])
            .arg(env!("CARGO_BIN_EXE_skirmish-client"))
            .args(&args)
            .arg("--screenshot")
            .arg(&shot)
            .env("RUST_LOG", "warn")
            .output()
            .expect("xvfb-run must be installed (apt-get install xvfb xauth mesa-vulkan-drivers libvulkan1)")
    })
    .await
    .expect("the client ran");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "the client failed: {}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// A figure from the client's exit summary ("skirmish-client: 8.0 s, ... N snapshots, ...").
fn summary_figure(stdout: &str, label: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("skirmish-client:"))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
    let before = line.split(&format!(" {label}")).next().expect("label");
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label} in {line}"))
}

/// A big match with interest management: 127 demo bots and the client fill a 128-player match
/// with a 250-unit view radius. The client plays over UDP on its own view of the match
/// (players entering and leaving it), every checksum over that view verifies, and it draws.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_plays_in_a_big_match_with_a_view_radius() {
    let mut config = Config::ephemeral();
    config.open = false;
    config.match_size = 128;
    config.view_radius = Some(250);
    config.snapshot_budget = 600;
    const BOTS: usize = 127;
    config.demo = BOTS;
    let server = Server::start(config).await.expect("server");
    // Let the demo bots fill the match first.
    let started = Instant::now();
    while server
        .state
        .registry
        .list()
        .iter()
        .map(|m| m.players)
        .sum::<usize>()
        < BOTS
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the demo bots did not join"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dir = tempfile_dir();
    let shot = dir.join("client-big-match.png");
    let _ = std::fs::remove_file(&shot);
    let args = [
        "--play",
        "--url",
        &server.base_url(),
        "--name",
        "tester",
        "--screenshot-after",
        "4s",
        "--exit-after",
        "8s",
    ]
    .map(String::from)
    .to_vec();
    let (stdout, _) = run_client(args, &shot).await;
    let matches = server.state.registry.list();
    assert_eq!(
        matches.len(),
        1,
        "the client joined the bots' match, which it filled: {matches:?}"
    );
    let figure = |label: &str| summary_figure(&stdout, label);
    assert!(figure("snapshots") > 60, "{stdout}");
    assert_eq!(figure("checksum desyncs"), 0, "{stdout}");
    assert_eq!(figure("decode errors"), 0, "{stdout}");
    assert!(
        server.stats.udp_sessions.get() > BOTS as u64,
        "the demo bots and the client play over UDP"
    );
    assert!(
        server.stats.view_snapshots.get() > 0,
        "views were assembled"
    );
    let (w, h, px) = pixels(&shot);
    let floor = has_colour(&px, [10, 13, 20], 6);
    assert!(
        floor > (w * h / 10) as usize,
        "the arena floor covers {floor} pixels"
    );
    let _ = std::fs::copy(
        &shot,
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("window-client-big-match.png"),
    );
    server.shutdown().await.expect("shutdown");
}

/// Replays (issue 16): the client plays a recorded 16-player match from a server's
/// `/api/matches/{id}/replay` under Xvfb: every snapshot it re-simulates verifies, and the
/// window shows the arena and the players.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_plays_a_replay_from_a_url() {
    let dir = tempfile_dir().join("replays");
    std::fs::create_dir_all(&dir).expect("dir");
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    std::fs::write(
        dir.join(format!("match-7-{created}.skreplay")),
        skirmish_shared::workload::wander_replay(16, 900, 7, created),
    )
    .expect("write the replay");
    let mut config = Config::ephemeral();
    config.no_replays = false;
    config.replay_dir = Some(dir.clone());
    let server = Server::start(config).await.expect("server");
    let shot = dir.join("client-replay.png");
    let url = format!("{}/api/matches/7/replay", server.base_url());
    let args = [
        "--replay",
        &url,
        "--screenshot-after",
        "4s",
        "--exit-after",
        "6s",
    ]
    .map(String::from)
    .to_vec();
    let (stdout, _) = run_client(args, &shot).await;
    let figure = |label: &str| summary_figure(&stdout, label);
    assert!(figure("snapshots") > 90, "{stdout}");
    assert_eq!(figure("checksum desyncs"), 0, "{stdout}");
    assert_eq!(figure("decode errors"), 0, "{stdout}");
    let (w, h, px) = pixels(&shot);
    let floor = has_colour(&px, [10, 13, 20], 6);
    assert!(
        floor > (w * h / 10) as usize,
        "the arena floor covers {floor} pixels"
    );
    let drawn = (1..=16)
        .filter(|id| {
            let c = player_color(PlayerId(*id)).to_srgba().to_u8_array();
            has_colour(&px, [c[0], c[1], c[2]], 12) > 60
        })
        .count();
    assert!(
        drawn >= 12,
        "only {drawn} of 16 players' colours in the window"
    );
    let _ = std::fs::copy(
        &shot,
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("window-client-replay.png"),
    );
    server.shutdown().await.expect("shutdown");
}

/// A new player: the client started with no flags opens its lobby, which lists the server's
/// match (someone already plays in it); Down and Enter, pressed in the window with xdotool,
/// pick that match and join it; the client plays (snapshots, no desyncs) and the server sees
/// two players in the match. The lobby's screenshot is taken before the keys are pressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_player_picks_a_match_in_the_lobby_and_plays() {
    let (server, mm, _first) = common::server_with_a_player().await;
    let url = server.base_url();
    let dir = tempfile_dir();
    let shot = dir.join("lobby.png");
    let _ = std::fs::remove_file(&shot);
    let script = format!(
        "\"$0\" --url {url} --name picker --exit-after 14s --screenshot-after 3s --screenshot {shot} & pid=$!; \
         sleep 5; xdotool search --sync --name '^Skirmish$' windowfocus --sync key Down Return; \
         wait $pid",
        shot = shot.display()
    );
    let child = Command::new("xvfb-run")
        .args([
            "-a",
            "--server-args=-screen 0 1280x900x24",
            "sh",
            "-c",
            &script,
        ])
        .arg(env!("CARGO_BIN_EXE_skirmish-client"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xvfb-run and xdotool must be installed (.ci/run installs them)");
    let run = watch(child, &server).await;
    let (stdout, stderr) = (run.stdout, run.stderr);
    assert!(
        run.status.success(),
        "the client failed: {}\n{stderr}",
        run.status
    );
    assert_eq!(
        run.most_players, 2,
        "the lobby's pick joined the first player's match (match {})\n{stderr}",
        mm.match_id
    );
    let figure = |label: &str| summary_figure(&stdout, label);
    assert!(figure("snapshots") > 90, "{stdout}");
    assert_eq!(figure("checksum desyncs"), 0, "{stdout}");
    assert_eq!(figure("decode errors"), 0, "{stdout}");
    let (w, h, _) = pixels(&shot);
    assert!(w >= 800 && h >= 600, "the lobby's screenshot: {w}x{h}");
    let _ = std::fs::copy(
        &shot,
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("window-lobby.png"),
    );
    server.shutdown().await.expect("shutdown");
}
