//! `skirmish-client`: play Skirmish. Without flags it opens the lobby (server, name, the
//! match list); `--play` (or `--match`, `--watch`) goes straight into a match. WASD moves,
//! the mouse aims, left click or Space fires, Enter chats, Esc leaves. `--replay FILE|URL`
//! watches a recorded match instead.

use std::time::Duration;

use bevy::app::AppExit;
use clap::Parser;
use skirmish_client::app::{self, ClientOptions};
use skirmish_client::net::NetConfig;
use skirmish_client::replay;
use skirmish_shared::client::Transport;
use skirmish_shared::link_sim::LinkArgs;

/// The Skirmish game client.
#[derive(Debug, Parser)]
#[command(name = "skirmish-client", version, about)]
struct Args {
    /// The server's base URL (`https://` plays over WSS).
    #[arg(long, default_value = "http://127.0.0.1:7777")]
    url: String,
    /// Also trust this CA (PEM) for `https://` servers (a private or self-signed CA).
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
    /// Your name in the match.
    #[arg(long, default_value = "player")]
    name: String,
    /// Skip the lobby: play at once (matchmaking into the fullest open match).
    #[arg(long)]
    play: bool,
    /// Skip the lobby and join this match.
    #[arg(long = "match")]
    match_id: Option<u32>,
    /// Skip the lobby and watch this match.
    #[arg(long, value_name = "MATCH")]
    watch: Option<u32>,
    /// Join without matchmaking (servers run with --open); skips the lobby.
    #[arg(long)]
    open: bool,
    /// Steer and fire by itself: chase the nearest player and fire in range (the
    /// `aggressive` bots' hunter). For demos and tests.
    #[arg(long)]
    autopilot: bool,
    /// Shake the camera when you are tagged.
    #[arg(long)]
    camera_shake: bool,
    /// What to play over: udp, ws, or auto (UDP, falling back to WebSocket when no datagram
    /// gets through within 1.5 s).
    #[arg(long, default_value_t = Transport::Auto)]
    transport: Transport,
    /// A simulated link: per packet over UDP, per message over WebSocket.
    #[command(flatten)]
    link: LinkArgs,
    /// Take a screenshot this long after start.
    #[arg(long, value_parser = humantime::parse_duration)]
    screenshot_after: Option<Duration>,
    /// Where to save the screenshot (PNG).
    #[arg(long)]
    screenshot: Option<std::path::PathBuf>,
    /// Quit once the screenshot is saved.
    #[arg(long)]
    exit_after_screenshot: bool,
    /// Quit after this long, printing the frame rate and prediction corrections.
    #[arg(long, value_parser = humantime::parse_duration)]
    exit_after: Option<Duration>,
    /// Watch a recorded match instead of playing: a replay file, or its URL on a server
    /// (`http://host:port/api/matches/ID/replay`). Space pauses, Up/Down change speed
    /// (0.25-8x), Left/Right seek 5 s, Home restarts.
    #[arg(long, value_name = "FILE|URL")]
    replay: Option<String>,
}

fn main() {
    let args = Args::parse();
    if let Some(ca) = &args.ca
        && let Err(e) = skirmish_shared::client_tls::trust_ca_file(ca)
    {
        eprintln!("skirmish-client: --ca: {e}");
        std::process::exit(2);
    }
    let (player, controls) = match &args.replay {
        Some(r) => {
            let (player, controls) = replay::start(replay::Source::parse(r));
            (Some(player), Some(controls))
        }
        None => (None, None),
    };
    let options = ClientOptions {
        template: NetConfig {
            base_url: args.url,
            name: args.name,
            match_id: args.match_id.or(args.watch),
            open: args.open,
            spectate: args.watch.is_some(),
            transport: args.transport,
            sim: args.link.config(),
        },
        connect_at_start: args.play
            || args.match_id.is_some()
            || args.watch.is_some()
            || args.open
            || args.autopilot,
        autopilot: args.autopilot,
        camera_shake: args.camera_shake,
        screenshot_after: args
            .screenshot_after
            .or(args.screenshot.as_ref().map(|_| Duration::from_secs(3))),
        screenshot: args.screenshot,
        exit_after_screenshot: args.exit_after_screenshot,
        exit_after: args.exit_after,
        replay: controls,
    };
    if let AppExit::Error(code) = app::run(options, player) {
        std::process::exit(i32::from(code.get()));
    }
}
