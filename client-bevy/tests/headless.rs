//! The client's plugins without a window (`MinimalPlugins`): the state machine driven by a
//! scripted connection, the lobby's list from a real server (and joining from it), and own
//! shots predicted the tick they are fired and confirmed by the server's world.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use skirmish_client::app::{self, ClientOptions, Screen};
use skirmish_client::net::{NetConfig, NetError, NetEvent, NetHandle};
use skirmish_client::plugins::lobby::{Lobby, LobbyAction};
use skirmish_client::plugins::netcode::Netcode;
use skirmish_shared::protocol::{ClientMessage, RankEntry, ServerMessage, SnapshotMsg};
use skirmish_shared::quant::{POS_SCALE, QVec};
use skirmish_shared::rules::{BUTTON_FIRE, Params};
use skirmish_shared::sim::Game;
use skirmish_shared::world::PlayerId;

/// A scripted connection: what the test sends is what the server "said"; what the app sends
/// comes out of `commands`.
struct Script {
    events: mpsc::Sender<NetEvent>,
    commands: tokio::sync::mpsc::Receiver<ClientMessage>,
}

fn app_with(options: ClientOptions, scripted: bool) -> (App, Option<Script>) {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, StatesPlugin));
    let (handle, script) = if scripted {
        let (ev_tx, ev_rx) = mpsc::channel();
        let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(256);
        (
            Some(NetHandle {
                events: ev_rx,
                commands: cmd_tx,
            }),
            Some(Script {
                events: ev_tx,
                commands: cmd_rx,
            }),
        )
    } else {
        (None, None)
    };
    app::add_logic(&mut app, options, handle);
    (app, script)
}

fn screen(app: &App) -> Screen {
    *app.world().resource::<State<Screen>>().get()
}

/// Runs frames (about 5 ms apart, so `FixedUpdate` runs at the tick rate) until `done`.
fn run_until(app: &mut App, what: &str, mut done: impl FnMut(&mut App) -> bool) {
    let start = Instant::now();
    loop {
        app.update();
        if done(app) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn welcome(game: &Game, me: Option<PlayerId>) -> NetEvent {
    let params = game.params;
    let snapshot = SnapshotMsg::encode(
        None,
        &game.world,
        Some(game.world.checksum()),
        &params,
        Vec::new(),
    );
    NetEvent::Message(
        ServerMessage::Welcome {
            player_id: me,
            match_id: 1,
            tick_hz: params.tick_hz,
            snapshot,
        },
        100,
    )
}

#[test]
fn the_client_moves_through_its_states() {
    let (mut app, script) = app_with(ClientOptions::default(), true);
    let mut script = script.expect("scripted");
    app.update();
    app.update();
    assert_eq!(
        screen(&app),
        Screen::Connecting,
        "a connection attached: connecting"
    );
    let mut game = Game::new(1, Params::new(30));
    let me = game.add_player("me".into());
    script.events.send(welcome(&game, Some(me))).expect("send");
    run_until(&mut app, "the match", |a| screen(a) == Screen::InMatch);
    assert_eq!(app.world().resource::<Netcode>().me, Some(me));
    run_until(&mut app, "inputs", |a| {
        a.world().resource::<Netcode>().next_seq > 3
    });
    script
        .events
        .send(NetEvent::Down {
            error: NetError::Gone,
            retry_in: Duration::from_secs(1),
        })
        .expect("send");
    run_until(&mut app, "reconnecting", |a| {
        screen(a) == Screen::Reconnecting
    });
    let before = app.world().resource::<Netcode>().next_seq;
    assert!(before > 0, "inputs were made before the drop");
    while script.commands.try_recv().is_ok() {}
    script.events.send(welcome(&game, Some(me))).expect("send");
    run_until(&mut app, "the match again", |a| {
        screen(a) == Screen::InMatch
    });
    // The input sequence goes on: the server ignores inputs at or before its last one.
    let mut first = None;
    run_until(&mut app, "an input after the reconnect", |_| {
        while let Ok(m) = script.commands.try_recv() {
            if let (None, ClientMessage::Input { frames }) = (first, &m) {
                first = frames.first().map(|f| f.seq.0);
            }
        }
        first.is_some()
    });
    assert_eq!(first, Some(before + 1));
    let ranking = vec![RankEntry {
        rank: 1,
        player_id: me,
        name: "me".into(),
        score: 7,
    }];
    script
        .events
        .send(NetEvent::Message(
            ServerMessage::MatchEnded {
                ranking: ranking.clone(),
            },
            10,
        ))
        .expect("send");
    run_until(&mut app, "the ranking", |a| screen(a) == Screen::MatchOver);
    let session = app
        .world()
        .resource::<skirmish_client::plugins::session::Session>();
    assert_eq!(session.ranking, ranking);
    app.world_mut()
        .write_message(skirmish_client::plugins::session::SessionRequest::Leave);
    run_until(&mut app, "the lobby", |a| screen(a) == Screen::Menu);
    assert!(
        app.world().resource::<Netcode>().me.is_none(),
        "the match is forgotten"
    );
}

#[test]
fn game_events_and_chat_reach_the_feed() {
    use skirmish_shared::protocol::{EventKind, GameEvent};
    let (mut app, script) = app_with(ClientOptions::default(), true);
    let script = script.expect("scripted");
    let mut game = Game::new(1, Params::new(30));
    let me = game.add_player("me".into());
    let other = game.add_player("zoe".into());
    script.events.send(welcome(&game, Some(me))).expect("send");
    run_until(&mut app, "the match", |a| screen(a) == Screen::InMatch);
    let base = game.world.clone();
    game.step(|_| None);
    let events = vec![
        GameEvent {
            id: 1,
            tick: game.world.tick,
            kind: EventKind::Tagged {
                shooter: other,
                target: me,
            },
        },
        GameEvent {
            id: 2,
            tick: game.world.tick,
            kind: EventKind::Chat {
                from: other,
                text: "gg".into(),
            },
        },
    ];
    let snap = SnapshotMsg::encode(
        Some(&base),
        &game.world,
        Some(game.world.checksum()),
        &game.params,
        events,
    );
    script
        .events
        .send(NetEvent::Message(ServerMessage::Snapshot(snap), 60))
        .expect("send");
    script
        .events
        .send(NetEvent::Message(
            ServerMessage::ChatRejected {
                reason: "too fast".into(),
            },
            10,
        ))
        .expect("send");
    run_until(&mut app, "the feed", |a| {
        a.world()
            .resource::<skirmish_client::plugins::chat::Feed>()
            .0
            .len()
            >= 3
    });
    let feed: Vec<String> = app
        .world()
        .resource::<skirmish_client::plugins::chat::Feed>()
        .0
        .iter()
        .cloned()
        .collect();
    assert_eq!(
        feed,
        ["zoe tagged me", "zoe: gg", "(chat not sent: too fast)"],
        "names from the world, in order"
    );
}

#[test]
fn own_shots_appear_the_tick_they_are_fired_and_are_confirmed() {
    let options = ClientOptions {
        autopilot: true,
        ..ClientOptions::default()
    };
    let (mut app, script) = app_with(options, true);
    let mut script = script.expect("scripted");
    let mut game = Game::new(2, Params::new(30));
    let me = game.add_player("me".into());
    let other = game.add_player("target".into());
    game.world.players[0].pos = QVec::new(300 * POS_SCALE, 500 * POS_SCALE);
    game.world.players[1].pos = QVec::new(500 * POS_SCALE, 500 * POS_SCALE);
    script.events.send(welcome(&game, Some(me))).expect("send");
    // The autopilot hunts the target 200 units away: it fires on its first input.
    run_until(&mut app, "a shot", |a| {
        a.world()
            .resource::<Netcode>()
            .shots
            .as_ref()
            .is_some_and(|s| s.predicted > 0)
    });
    let netcode = app.world().resource::<Netcode>();
    let shots = netcode.shots.as_ref().expect("shots");
    assert_eq!(shots.shots().count(), 1, "shown before any server answer");
    let sent: Vec<_> = std::iter::from_fn(|| script.commands.try_recv().ok()).collect();
    let fire = sent
        .iter()
        .find_map(|m| match m {
            ClientMessage::Input { frames } => frames
                .iter()
                .find(|f| f.buttons & BUTTON_FIRE != 0)
                .copied(),
            _ => None,
        })
        .expect("a fire input was sent");
    assert_eq!(fire.view_tick, game.world.tick, "it says which tick it saw");
    // The server applies that input: its world shows the projectile where we predicted it.
    let first_seq = sent.iter().find_map(|m| match m {
        ClientMessage::Input { frames } => frames.first().map(|f| f.seq),
        _ => None,
    });
    assert_eq!(first_seq, Some(fire.seq), "the first input fired");
    let base = game.world.clone();
    game.step(|id| (id == me).then_some(fire));
    assert_eq!(game.world.projectiles.len(), 1);
    let snap = SnapshotMsg::encode(
        Some(&base),
        &game.world,
        Some(game.world.checksum()),
        &game.params,
        Vec::new(),
    );
    script
        .events
        .send(NetEvent::Message(ServerMessage::Snapshot(snap), 50))
        .expect("send");
    run_until(&mut app, "the confirmation", |a| {
        a.world()
            .resource::<Netcode>()
            .shots
            .as_ref()
            .is_some_and(|s| s.confirmed > 0)
    });
    let shots = app
        .world()
        .resource::<Netcode>()
        .shots
        .as_ref()
        .expect("shots");
    assert_eq!(shots.corrections, 0);
    assert_eq!(shots.shots().count(), 1, "confirmed, not duplicated");
    let _ = other;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lobby_lists_a_real_servers_matches_and_joins_one() {
    // Someone is already playing in match 1.
    let (server, mm, _first) = common::server_with_a_player().await;
    let url = server.base_url();
    let options = ClientOptions {
        template: NetConfig {
            base_url: url.clone(),
            name: "lobbyist".into(),
            transport: skirmish_shared::client::Transport::Ws,
            ..NetConfig::default()
        },
        ..ClientOptions::default()
    };
    let id = mm.match_id;
    tokio::task::spawn_blocking(move || {
        let (mut app, _) = app_with(options, false);
        run_until(&mut app, "the match list", |a| {
            a.world()
                .resource::<Lobby>()
                .matches
                .iter()
                .any(|m| m.id == id && m.players >= 1)
        });
        assert_eq!(screen(&app), Screen::Menu);
        let lobby = app.world().resource::<Lobby>();
        let m = lobby.matches.iter().find(|m| m.id == id).expect("listed");
        assert_eq!(m.capacity, 16);
        assert!(lobby.status.is_empty(), "{}", lobby.status);
        app.world_mut().write_message(LobbyAction::Join(id));
        run_until(&mut app, "joining from the lobby", |a| {
            screen(a) == Screen::InMatch
        });
        let netcode = app.world().resource::<Netcode>();
        assert!(netcode.me.is_some(), "playing, not watching");
        assert!(
            netcode.latest().is_some_and(|w| w.players.len() == 2),
            "with the first player"
        );
    })
    .await
    .expect("the app ran");
    let _ = server.shutdown().await;
}
