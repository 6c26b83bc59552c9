//! The client app: its states, what the command line asks of it, and the plugins that make
//! it up (one per concern, in `plugins`). [`add_logic`] adds the ones that need no window;
//! the headless tests run those with `MinimalPlugins`.

use std::path::PathBuf;
use std::time::Duration;

use bevy::prelude::*;
use bevy::window::WindowResolution;

use crate::net::{NetConfig, NetHandle};
use crate::plugins::{
    capture::CapturePlugin, chat::ChatPlugin, hud::HudPlugin, input::InputPlugin,
    lobby::LobbyPlugin, menu::MenuPlugin, netcode::NetcodePlugin, session::SessionPlugin,
    world_view::WorldViewPlugin,
};

/// Where the client is: the lobby, on its way into a match, playing (or watching), looking at
/// the final ranking, or reconnecting after the connection dropped mid-match.
#[derive(States, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Screen {
    #[default]
    Menu,
    Connecting,
    InMatch,
    MatchOver,
    Reconnecting,
}

/// What the command line asks of the app.
#[derive(Resource, Debug, Clone, Default)]
pub struct ClientOptions {
    /// The lobby's starting server URL and name, and how to connect (transport, link).
    pub template: NetConfig,
    /// Skip the lobby: connect with `template` at start.
    pub connect_at_start: bool,
    /// Steer and fire by itself (the `aggressive` bots' hunter), for tests and demos.
    pub autopilot: bool,
    /// Shake the camera when your player is tagged.
    pub camera_shake: bool,
    pub screenshot_after: Option<Duration>,
    pub screenshot: Option<PathBuf>,
    pub exit_after_screenshot: bool,
    /// Quit after this long and print frame rate, corrections and snapshot counts.
    pub exit_after: Option<Duration>,
    /// Playing a replay: where its keyboard controls go.
    pub replay: Option<std::sync::mpsc::SyncSender<crate::replay::Control>>,
}

/// The plugins that need no window or renderer: the connection, the netcode, the input
/// (keyboard when there is one, else the autopilot), the lobby's list and the chat feed.
pub fn add_logic(app: &mut App, options: ClientOptions, replay: Option<NetHandle>) {
    app.insert_resource(options)
        .init_state::<Screen>()
        .add_plugins((
            SessionPlugin {
                replay: std::sync::Mutex::new(replay),
            },
            NetcodePlugin,
            InputPlugin,
            LobbyPlugin,
            ChatPlugin,
        ));
}

/// Builds and runs the windowed app. `replay`: the replay player's handle, in place of a
/// connection.
pub fn run(options: ClientOptions, replay: Option<NetHandle>) -> AppExit {
    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin {
        primary_window: Some(Window {
            title: "Skirmish".into(),
            resolution: WindowResolution::new(1100, 800),
            ..default()
        }),
        ..default()
    }))
    .insert_resource(ClearColor(Color::srgb(0.06, 0.08, 0.11)));
    add_logic(&mut app, options, replay);
    app.add_plugins((
        WorldViewPlugin,
        HudPlugin,
        MenuPlugin,
        CapturePlugin,
        crate::replay::ReplayKeysPlugin,
    ))
    .run()
}
