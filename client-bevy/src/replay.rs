//! `--replay FILE|URL`: plays a recorded match (issue 16) in place of a connection. A
//! background thread re-simulates the replay with the shared rules (`skirmish_shared::replay`)
//! and hands the game the snapshot messages a spectator would get — a welcome with a full
//! snapshot, then a delta per tick, each with its checksum — at the tick rate times the
//! chosen speed, so the game draws it with its live spectator path. The keyboard drives it
//! (`Control`, mapped to keys by [`ReplayKeysPlugin`]): Space pauses, Up/Down change speed (0.25-8x), Left/Right
//! seek 5 s (re-simulated from the nearest keyframe, then a full snapshot), Home restarts.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use skirmish_shared::protocol::{ClientMessage, GameEvent, ServerMessage, SnapshotMsg};
use skirmish_shared::replay::{Replay, ReplayError};
use skirmish_shared::tick::Tick;
use skirmish_shared::world::WorldState;

use crate::net::{NetEvent, NetHandle};

/// Playback speeds, slowest first.
pub const SPEEDS: [f64; 6] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0];
/// How far Left and Right seek, seconds.
pub const SEEK_SECONDS: u32 = 5;

/// Where a replay comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    /// An `http(s)://` URL (e.g. a server's `/api/matches/{id}/replay`).
    Url(String),
}

impl Source {
    /// A URL when it starts with `http://` or `https://`, else a file.
    #[must_use]
    pub fn parse(s: &str) -> Self {
        if s.starts_with("http://") || s.starts_with("https://") {
            Self::Url(s.to_string())
        } else {
            Self::File(PathBuf::from(s))
        }
    }
}

/// What the keyboard asks of the playback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    TogglePause,
    Faster,
    Slower,
    /// Seek by this many seconds (negative: back).
    Seek(i32),
    Restart,
}

/// Why a replay could not be played.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{url}: {why}")]
    Url { url: String, why: String },
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// Reads the replay's bytes from a file or over HTTP(S).
pub fn load(source: &Source) -> Result<Replay, LoadError> {
    let bytes = match source {
        Source::File(path) => std::fs::read(path).map_err(|e| LoadError::File {
            path: path.clone(),
            source: e,
        })?,
        Source::Url(url) => fetch(url)?,
    };
    Ok(Replay::parse(bytes)?)
}

fn fetch(url: &str) -> Result<Vec<u8>, LoadError> {
    let bad = |why: String| LoadError::Url {
        url: url.to_string(),
        why,
    };
    // `scheme://authority` is the base; the rest is the path.
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let path_at = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    let (base, path) = (&url[..path_at], &url[path_at..]);
    let path = if path.is_empty() { "/" } else { path };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let (status, body) = rt
        .block_on(skirmish_shared::client::http_request(
            base, "GET", path, None,
        ))
        .map_err(|e| bad(e.to_string()))?;
    if status != 200 {
        return Err(bad(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(body.to_vec())
}

/// Starts playing `source` on a background thread; returns the game's side of it and the
/// controls.
#[must_use]
pub fn start(source: Source) -> (NetHandle, mpsc::SyncSender<Control>) {
    let (ev_tx, ev_rx) = mpsc::channel();
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(64);
    let (ctl_tx, ctl_rx) = mpsc::sync_channel(16);
    std::thread::Builder::new()
        .name("skirmish-replay".into())
        .spawn(move || {
            let _ = ev_tx.send(NetEvent::Status("loading the replay...".into()));
            match load(&source) {
                Ok(replay) => play(&replay, &ev_tx, cmd_rx, &ctl_rx),
                Err(e) => {
                    let _ = ev_tx.send(NetEvent::Status(format!("cannot play: {e}")));
                }
            }
        })
        .expect("spawning the replay thread");
    (
        NetHandle {
            events: ev_rx,
            commands: cmd_tx,
        },
        ctl_tx,
    )
}

/// The snapshot message of `world` against `base` (`None`: in full), with its checksum and
/// `events`.
fn snapshot(
    base: Option<&WorldState>,
    world: &WorldState,
    events: &[GameEvent],
    replay: &Replay,
) -> SnapshotMsg {
    let checksum = Some(world.checksum());
    SnapshotMsg::encode(base, world, checksum, &replay.params(), events.to_vec())
}

/// Plays until the game goes away.
fn play(
    replay: &Replay,
    events: &mpsc::Sender<NetEvent>,
    mut commands: tokio::sync::mpsc::Receiver<ClientMessage>,
    controls: &mpsc::Receiver<Control>,
) {
    let send = |msg: ServerMessage| events.send(NetEvent::Message(msg, 0)).is_ok();
    let Some((first, last)) = replay.span() else {
        let _ = events.send(NetEvent::Status("the replay is empty".into()));
        return;
    };
    let hz = replay.header.tick_hz;
    let mut cursor = match replay.cursor(first) {
        Ok(c) => c,
        Err(e) => {
            let _ = events.send(NetEvent::Status(format!("cannot play: {e}")));
            return;
        }
    };
    let welcome = ServerMessage::Welcome {
        player_id: None,
        match_id: replay.header.match_id,
        tick_hz: hz,
        snapshot: snapshot(None, cursor.world(), &[], replay),
    };
    if !send(welcome) {
        return;
    }
    let (mut speed, mut paused, mut ended) = (2usize, false, false);
    let mut prev = cursor.world().clone();
    let mut next_at = Instant::now();
    loop {
        // Controls and the game's requests.
        let mut jump: Option<Tick> = None;
        while let Ok(c) = controls.try_recv() {
            match c {
                Control::TogglePause => paused = !paused,
                Control::Faster => speed = (speed + 1).min(SPEEDS.len() - 1),
                Control::Slower => speed = speed.saturating_sub(1),
                Control::Seek(s) => {
                    let by = i64::from(s) * i64::from(hz);
                    let to = (i64::from(cursor.tick().0) + by)
                        .clamp(i64::from(first.0), i64::from(last.0));
                    jump = Some(Tick(to as u32));
                }
                Control::Restart => jump = Some(first),
            }
        }
        while let Ok(m) = commands.try_recv() {
            if matches!(m, ClientMessage::RequestFull) {
                jump = Some(cursor.tick());
            }
        }
        if let Some(t) = jump {
            match replay.cursor(t) {
                Ok(c) => cursor = c,
                Err(e) => {
                    let _ = events.send(NetEvent::Status(format!("seek failed: {e}")));
                    return;
                }
            }
            ended = false;
            prev = cursor.world().clone();
            if !send(ServerMessage::Snapshot(snapshot(None, &prev, &[], replay))) {
                return;
            }
        }
        let state = if ended {
            "over (Home: again)"
        } else if paused {
            "paused"
        } else {
            ""
        };
        let status = format!(
            "replay of match {} | tick {} / {} | {}x {state}",
            replay.header.match_id,
            cursor.tick().0,
            last.0,
            SPEEDS[speed]
        );
        if events.send(NetEvent::Status(status)).is_err() {
            return;
        }
        if paused || ended {
            std::thread::sleep(Duration::from_millis(30));
            next_at = Instant::now();
            continue;
        }
        // One tick at the chosen speed.
        next_at += Duration::from_secs_f64(1.0 / (f64::from(hz) * SPEEDS[speed]));
        if let Some(wait) = next_at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        match cursor.step() {
            Ok(true) => {
                let msg = snapshot(Some(&prev), cursor.world(), cursor.events(), replay);
                prev = cursor.world().clone();
                if !send(ServerMessage::Snapshot(msg)) {
                    return;
                }
            }
            Ok(false) => {
                ended = true;
                if let Ok(Some(end)) = replay.end()
                    && let Some(ranking) = end.ranking
                    && !send(ServerMessage::MatchEnded { ranking })
                {
                    return;
                }
            }
            Err(e) => {
                let _ = events.send(NetEvent::Status(format!("replay stopped: {e}")));
                return;
            }
        }
    }
}

/// A replay's keyboard: Space pauses, Up/Down change speed, Left/Right seek, Home restarts.
#[derive(Debug)]
pub struct ReplayKeysPlugin;

impl bevy::prelude::Plugin for ReplayKeysPlugin {
    fn build(&self, app: &mut bevy::prelude::App) {
        app.add_systems(bevy::prelude::Update, replay_keys);
    }
}

fn replay_keys(
    options: bevy::prelude::Res<crate::app::ClientOptions>,
    keys: bevy::prelude::Res<bevy::prelude::ButtonInput<bevy::prelude::KeyCode>>,
) {
    use bevy::prelude::KeyCode;
    let Some(controls) = &options.replay else {
        return;
    };
    let seek = SEEK_SECONDS as i32;
    for (key, control) in [
        (KeyCode::Space, Control::TogglePause),
        (KeyCode::ArrowUp, Control::Faster),
        (KeyCode::ArrowDown, Control::Slower),
        (KeyCode::ArrowLeft, Control::Seek(-seek)),
        (KeyCode::ArrowRight, Control::Seek(seek)),
        (KeyCode::Home, Control::Restart),
    ] {
        if keys.just_pressed(key) {
            let _ = controls.try_send(control);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_urls_and_everything_else_is_a_file() {
        assert_eq!(
            Source::parse("http://127.0.0.1:7777/api/matches/3/replay"),
            Source::Url("http://127.0.0.1:7777/api/matches/3/replay".into())
        );
        assert_eq!(
            Source::parse("replays/match-3.skreplay"),
            Source::File("replays/match-3.skreplay".into())
        );
    }

    #[test]
    fn the_playback_sends_a_welcome_then_every_tick_in_order() {
        let dir = std::env::temp_dir().join(format!("skirmish-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("m.skreplay");
        std::fs::write(
            &path,
            skirmish_shared::workload::wander_replay(4, 200, 1, 0),
        )
        .expect("write");
        let (net, controls) = start(Source::File(path));
        controls.send(Control::Faster).expect("send");
        controls.send(Control::Faster).expect("send");
        controls.send(Control::Faster).expect("send"); // 8x
        let mut receiver = skirmish_shared::receiver::SnapshotReceiver::new(
            skirmish_shared::rules::Params::new(30),
        );
        let mut ticks = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while ticks.len() < 100 {
            assert!(Instant::now() < deadline, "only {} ticks", ticks.len());
            let Ok(ev) = net.events.recv_timeout(Duration::from_secs(5)) else {
                panic!("the playback stopped");
            };
            let snapshot = match ev {
                NetEvent::Message(
                    ServerMessage::Welcome {
                        snapshot,
                        player_id,
                        ..
                    },
                    _,
                ) => {
                    assert_eq!(player_id, None, "a spectator");
                    snapshot
                }
                NetEvent::Message(ServerMessage::Snapshot(s), _) => s,
                _ => continue,
            };
            assert!(matches!(
                receiver.receive(&snapshot),
                skirmish_shared::receiver::Received::Applied { verified: true, .. }
            ));
            ticks.push(snapshot.tick.0);
        }
        assert!(ticks.windows(2).all(|w| w[1] == w[0] + 1), "{ticks:?}");
    }
}
