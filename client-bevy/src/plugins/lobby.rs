//! The lobby's model: the server URL and name being edited, the server's live match list
//! (`GET /api/matches`, fetched every two seconds on a short-lived thread while the lobby
//! shows), and what its buttons do ([`LobbyAction`]: quick play, join, watch, create). The
//! menu (`menu`) draws it; this part needs no window.

use std::sync::Mutex;
use std::sync::mpsc;

use bevy::prelude::*;
use skirmish_shared::api::MatchInfo;
use skirmish_shared::client::{self, ClientError};

use crate::app::{ClientOptions, Screen};
use crate::plugins::session::SessionRequest;

/// How often the list is fetched again, seconds.
pub const REFRESH_S: f64 = 2.0;

/// Adds the lobby's model: see the module docs.
#[derive(Debug)]
pub struct LobbyPlugin;

impl Plugin for LobbyPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<LobbyAction>()
            .add_systems(
                Startup,
                |mut commands: Commands, options: Res<ClientOptions>| {
                    commands.insert_resource(Lobby {
                        url: options.template.base_url.clone(),
                        name: options.template.name.clone(),
                        ..Lobby::default()
                    });
                },
            )
            .add_systems(Update, (refresh, act).run_if(in_state(Screen::Menu)))
            .add_systems(OnExit(Screen::Menu), |mut l: ResMut<Lobby>| {
                l.refreshed_at = None
            });
    }
}

/// What the lobby shows and edits.
#[derive(Resource, Default, Debug)]
pub struct Lobby {
    pub url: String,
    pub name: String,
    /// The server's matches, as last fetched.
    pub matches: Vec<MatchInfo>,
    /// Why the last fetch or creation failed (empty when it worked).
    pub status: String,
    /// Fetches made (answered or failed).
    pub fetches: u64,
    /// The match picked with the keyboard (an index into `matches`).
    pub selected: Option<usize>,
    refreshed_at: Option<f64>,
    pending: Option<Mutex<mpsc::Receiver<Reply>>>,
}

/// A lobby button.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LobbyAction {
    /// Matchmake into the fullest open match (or a new one).
    QuickPlay,
    Join(u32),
    Watch(u32),
    /// Create a match and join it (servers that allow it: `--open` or an operator key).
    Create,
}

#[derive(Debug)]
enum Reply {
    Matches(Result<Vec<MatchInfo>, ClientError>),
    Created(Result<u32, ClientError>),
}

/// Runs `f` on a thread with a small tokio runtime; its answer comes back on the channel.
fn in_background<F: std::future::Future<Output = Reply> + Send + 'static>(
    f: F,
) -> mpsc::Receiver<Reply> {
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("skirmish-lobby".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let _ = tx.send(rt.block_on(f));
        });
    if spawned.is_err() {
        warn!("could not start the lobby's request thread");
    }
    rx
}

fn refresh(
    mut lobby: ResMut<Lobby>,
    time: Res<Time<Real>>,
    options: Res<ClientOptions>,
    mut requests: MessageWriter<SessionRequest>,
) {
    let now = time.elapsed_secs_f64();
    let answer = lobby
        .pending
        .as_ref()
        .and_then(|p| p.lock().ok().map(|rx| rx.try_recv()));
    match answer {
        Some(Ok(Reply::Matches(r))) => {
            lobby.pending = None;
            lobby.fetches += 1;
            match r {
                Ok(mut m) => {
                    m.sort_by_key(|m| m.id);
                    // Keep the pick on the same match as the list changes.
                    let picked = lobby
                        .selected
                        .and_then(|i| lobby.matches.get(i))
                        .map(|m| m.id);
                    lobby.selected = picked.and_then(|id| m.iter().position(|x| x.id == id));
                    lobby.matches = m;
                    lobby.status.clear();
                }
                Err(e) => {
                    lobby.matches.clear();
                    lobby.status = e.to_string();
                }
            }
        }
        Some(Ok(Reply::Created(r))) => {
            lobby.pending = None;
            match r {
                Ok(id) => {
                    requests.write(SessionRequest::Connect(connect_to(
                        &lobby,
                        &options,
                        Some(id),
                        false,
                    )));
                }
                Err(e) => lobby.status = format!("cannot create a match: {e}"),
            }
        }
        Some(Err(mpsc::TryRecvError::Disconnected)) => lobby.pending = None,
        Some(Err(mpsc::TryRecvError::Empty)) => {}
        None if lobby.refreshed_at.is_none_or(|t| now - t >= REFRESH_S) => {
            lobby.refreshed_at = Some(now);
            let url = lobby.url.clone();
            lobby.pending = Some(Mutex::new(in_background(async move {
                Reply::Matches(client::list_matches(&url).await)
            })));
        }
        None => {}
    }
}

/// The connection a lobby choice makes: the lobby's URL and name, the command line's
/// transport and link.
fn connect_to(
    lobby: &Lobby,
    options: &ClientOptions,
    match_id: Option<u32>,
    spectate: bool,
) -> crate::net::NetConfig {
    crate::net::NetConfig {
        base_url: lobby.url.trim().to_string(),
        name: lobby.name.clone(),
        match_id,
        spectate,
        ..options.template.clone()
    }
}

fn act(
    mut actions: MessageReader<LobbyAction>,
    mut lobby: ResMut<Lobby>,
    options: Res<ClientOptions>,
    mut requests: MessageWriter<SessionRequest>,
) {
    for a in actions.read() {
        let cfg = match *a {
            LobbyAction::QuickPlay => connect_to(&lobby, &options, None, false),
            LobbyAction::Join(id) => connect_to(&lobby, &options, Some(id), false),
            LobbyAction::Watch(id) => connect_to(&lobby, &options, Some(id), true),
            LobbyAction::Create => {
                let url = lobby.url.clone();
                lobby.pending = Some(Mutex::new(in_background(async move {
                    Reply::Created(client::create_match(&url, None).await)
                })));
                continue;
            }
        };
        requests.write(SessionRequest::Connect(cfg));
    }
}
