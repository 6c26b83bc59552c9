//! The connection as the app sees it: starts and stops the network thread (`net`), hands
//! what the server says to the other plugins as [`FromServer`] messages, and moves the
//! client between its [`Screen`]s: connecting, in the match, reconnecting after a drop, the
//! match over (the connection is let go: "play again" matchmakes anew).

use std::sync::Mutex;

use bevy::prelude::*;
use skirmish_shared::protocol::{ClientMessage, RankEntry, ServerMessage};

use crate::app::{ClientOptions, Screen};
use crate::net::{self, NetConfig, NetEvent, NetHandle};

/// Adds the session: see the module docs.
#[derive(Debug)]
pub struct SessionPlugin {
    /// A replay player to attach at start instead of a connection.
    pub replay: Mutex<Option<NetHandle>>,
}

impl Plugin for SessionPlugin {
    fn build(&self, app: &mut App) {
        let replay = self.replay.lock().ok().and_then(|mut r| r.take());
        app.insert_resource(Session {
            net: replay.map(Mutex::new),
            ..Session::default()
        })
        .add_message::<SessionRequest>()
        .add_message::<FromServer>()
        .add_systems(Startup, connect_at_start)
        .add_systems(
            PreUpdate,
            (handle_requests, pump).chain().in_set(SessionSet),
        );
    }
}

/// The connection, and what the screens show about it.
#[derive(Resource, Default, Debug)]
pub struct Session {
    net: Option<Mutex<NetHandle>>,
    /// What the last connection attempt said (or a replay's position).
    pub status: String,
    /// What the current connection is for.
    pub config: Option<NetConfig>,
    /// The last match's final ranking.
    pub ranking: Vec<RankEntry>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Session {
    /// Sends `msg` to the server if connected (never blocks: a full queue drops it, as a
    /// lost packet would be). Returns whether it was queued.
    pub fn send(&mut self, msg: ClientMessage) -> bool {
        let Some(net) = self.net.as_ref().and_then(|n| n.lock().ok()) else {
            return false;
        };
        let n = skirmish_shared::protocol::encode(&msg).len() as u64;
        let sent = net.commands.try_send(msg).is_ok();
        drop(net);
        if sent {
            self.bytes_out += n;
        }
        sent
    }

    /// Whether a connection (or replay) is attached.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.net.is_some()
    }
}

/// The session's systems: the ones reading [`FromServer`] run after them.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionSet;

/// What the screens ask of the connection.
#[derive(Message, Debug, Clone)]
pub enum SessionRequest {
    /// Play (or watch) as `NetConfig` says.
    Connect(NetConfig),
    /// Let the connection go and show the lobby.
    Leave,
}

/// A message from the server and its size on the wire.
#[derive(Message, Debug, Clone)]
pub struct FromServer(pub ServerMessage, pub usize);

fn connect_at_start(
    options: Res<ClientOptions>,
    mut requests: MessageWriter<SessionRequest>,
    session: Res<Session>,
    mut next: ResMut<NextState<Screen>>,
) {
    if session.is_connected() {
        next.set(Screen::Connecting); // a replay
    } else if options.connect_at_start {
        requests.write(SessionRequest::Connect(options.template.clone()));
    }
}

fn handle_requests(
    mut requests: MessageReader<SessionRequest>,
    mut session: ResMut<Session>,
    mut next: ResMut<NextState<Screen>>,
) {
    for r in requests.read() {
        match r {
            SessionRequest::Connect(cfg) => {
                session.net = Some(Mutex::new(net::start(cfg.clone())));
                session.config = Some(cfg.clone());
                session.status = "connecting...".into();
                next.set(Screen::Connecting);
            }
            SessionRequest::Leave => {
                // Dropping the handle closes its command channel: the network thread says
                // goodbye (close 1000) and ends.
                session.net = None;
                session.status.clear();
                next.set(Screen::Menu);
            }
        }
    }
}

fn pump(
    mut session: ResMut<Session>,
    screen: Res<State<Screen>>,
    mut next: ResMut<NextState<Screen>>,
    mut out: MessageWriter<FromServer>,
) {
    let mut events = Vec::new();
    if let Some(net) = session.net.as_ref().and_then(|n| n.lock().ok()) {
        while let Ok(ev) = net.events.try_recv() {
            events.push(ev);
        }
    }
    let playing = matches!(screen.get(), Screen::InMatch | Screen::Reconnecting);
    for ev in events {
        match ev {
            NetEvent::Connecting { attempt } => {
                session.status = if attempt == 1 {
                    "connecting...".into()
                } else {
                    format!("reconnecting (attempt {attempt})")
                };
            }
            NetEvent::Status(s) => session.status = s,
            NetEvent::Down { error, retry_in } => {
                session.status = format!("{error} - retrying in {:.0} s", retry_in.as_secs_f64());
                if playing {
                    next.set(Screen::Reconnecting);
                }
            }
            NetEvent::Message(msg, n) => {
                session.bytes_in += n as u64;
                match &msg {
                    ServerMessage::Welcome { .. } => {
                        session.status.clear();
                        next.set(Screen::InMatch);
                    }
                    ServerMessage::MatchEnded { ranking } => {
                        session.ranking = ranking.clone();
                        // A replay plays on to its end; a live match is over: let it go
                        // (the network thread would otherwise matchmake again).
                        if session.config.is_some() {
                            session.net = None;
                        }
                        next.set(Screen::MatchOver);
                    }
                    ServerMessage::Error { message, .. } => session.status = message.clone(),
                    _ => {}
                }
                out.write(FromServer(msg, n));
            }
        }
    }
}
