//! The event feed and the chat box: game events and chat lines from the server (newest
//! last), and a line being typed (Enter opens and sends, Esc cancels; while typing, the keys
//! do not steer).

use std::collections::VecDeque;

use bevy::input::keyboard::{Key, KeyboardInput};
use bevy::prelude::*;
use skirmish_shared::protocol::{
    ClientMessage, EventKind, GameEvent, MAX_CHAT_CHARS, ServerMessage,
};
use skirmish_shared::world::{PlayerId, WorldState};

use crate::app::Screen;
use crate::plugins::netcode::{Happened, Netcode};
use crate::plugins::session::{FromServer, Session};

/// Most lines kept in the feed.
pub const FEED_LINES: usize = 8;

/// Adds the feed and the chat box: see the module docs.
#[derive(Debug)]
pub struct ChatPlugin;

impl Plugin for ChatPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Feed>()
            .init_resource::<Typing>()
            .add_systems(Update, collect)
            // After the menu's Esc (which leaves the match unless a line is being typed).
            .add_systems(
                PostUpdate,
                chat_box.run_if(
                    in_state(Screen::InMatch).and_then(resource_exists::<Messages<KeyboardInput>>),
                ),
            )
            .add_systems(
                OnEnter(Screen::Menu),
                |mut f: ResMut<Feed>, mut t: ResMut<Typing>| {
                    f.0.clear();
                    t.0 = None;
                },
            );
    }
}

/// Recent game events and chat, newest last.
#[derive(Resource, Default, Debug)]
pub struct Feed(pub VecDeque<String>);

impl Feed {
    pub fn push(&mut self, line: String) {
        self.0.push_back(line);
        while self.0.len() > FEED_LINES {
            self.0.pop_front();
        }
    }
}

/// The chat line being typed, if one is.
#[derive(Resource, Default, Debug)]
pub struct Typing(pub Option<String>);

/// A feed line for a game event, with names from the latest world.
#[must_use]
pub fn describe_event(e: &GameEvent, world: Option<&WorldState>) -> String {
    let name = |id: PlayerId| {
        world
            .and_then(|w| w.player(id))
            .map_or_else(|| format!("#{}", id.0), |p| p.name.to_string())
    };
    match &e.kind {
        EventKind::OrbCollected { player, .. } => format!("{} collected an orb", name(*player)),
        EventKind::Tagged { shooter, target } => {
            format!("{} tagged {}", name(*shooter), name(*target))
        }
        EventKind::Joined { name: n, .. } => format!("{n} joined"),
        EventKind::Left { player } => format!("{} left", name(*player)),
        EventKind::Disconnected { player } => format!("{} lost connection", name(*player)),
        EventKind::Reconnected { player } => format!("{} is back", name(*player)),
        EventKind::PhaseChanged { phase, .. } => format!("phase: {phase:?}"),
        EventKind::Chat { from, text } => format!("{}: {text}", name(*from)),
        EventKind::EventsLost { missed } => format!("({missed} events missed)"),
    }
}

fn collect(
    mut happened: MessageReader<Happened>,
    mut server: MessageReader<FromServer>,
    netcode: Res<Netcode>,
    mut feed: ResMut<Feed>,
) {
    for Happened(e) in happened.read() {
        feed.push(describe_event(e, netcode.latest()));
    }
    for FromServer(msg, _) in server.read() {
        if let ServerMessage::ChatRejected { reason } = msg {
            feed.push(format!("(chat not sent: {reason})"));
        }
    }
}

fn chat_box(
    mut session: ResMut<Session>,
    mut typing: ResMut<Typing>,
    mut keys: MessageReader<KeyboardInput>,
) {
    for k in keys.read() {
        if !k.state.is_pressed() {
            continue;
        }
        match (&mut typing.0, &k.logical_key) {
            (None, Key::Enter) => typing.0 = Some(String::new()),
            (Some(line), Key::Enter) => {
                let text = std::mem::take(line);
                typing.0 = None;
                if !text.trim().is_empty() {
                    session.send(ClientMessage::Chat { text });
                }
            }
            (Some(_), Key::Escape) => typing.0 = None,
            (Some(line), Key::Backspace) => {
                line.pop();
            }
            (Some(line), Key::Character(c)) if line.chars().count() < MAX_CHAT_CHARS => {
                line.push_str(c);
            }
            (Some(line), Key::Space) if line.chars().count() < MAX_CHAT_CHARS => line.push(' '),
            _ => {}
        }
    }
}
