//! The Bevy app: the arena, players (own avatar ringed), orbs and projectiles, the HUD, and
//! the systems that feed inputs to the netcode at the tick rate and draw at the display's.

// Bevy systems name their queries' filters inline (`Query<&mut Text, (With<A>, Without<B>)>`):
// that is the idiom, and type aliases for each would only hide which entities a system touches.
#![allow(clippy::type_complexity)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bevy::input::keyboard::{Key, KeyboardInput};
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, save_to_disk};
use bevy::window::{PrimaryWindow, WindowResolution};

use skirmish_shared::protocol::{
    ClientMessage, EventKind, GameEvent, InputFrame, MAX_CHAT_CHARS, ServerMessage,
};
use skirmish_shared::quant::{MoveVec, QAngle, TRIG_ONE, cos_q14, sin_q14};
use skirmish_shared::receiver::{Received, SnapshotReceiver};
use skirmish_shared::rules::{
    ARENA_SIZE, BUTTON_FIRE, ORB_RADIUS, PLAYER_RADIUS, PROJECTILE_RADIUS, PROJECTILE_SPEED, Params,
};
use skirmish_shared::tick::{Seq, Tick};
use skirmish_shared::world::{PlayerId, PlayerState, WorldState};

use crate::net::{NetEvent, NetHandle};
use skirmish_shared::netcode::{Interpolator, Prediction, StepCheck};

/// Interpolation delay in snapshot intervals.
const INTERP_INTERVALS: f64 = 3.0;
const HALF: f32 = ARENA_SIZE as f32 / 2.0;

/// What the command line asks of the app.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    pub screenshot_after: Option<Duration>,
    pub screenshot: Option<PathBuf>,
    pub exit_after_screenshot: bool,
    /// Quit after this long and print frame rate, corrections and snapshot counts.
    pub exit_after: Option<Duration>,
    /// Playing a replay: where its keyboard controls go.
    pub replay: Option<std::sync::mpsc::SyncSender<crate::replay::Control>>,
}

#[derive(Resource)]
struct Net(Mutex<NetHandle>);

#[derive(Resource)]
struct Options(AppOptions);

/// Everything the client knows.
#[derive(Resource, Default)]
struct ClientState {
    me: Option<PlayerId>,
    tick_hz: u32,
    receiver: Option<SnapshotReceiver>,
    prediction: Option<Prediction>,
    interp: Option<Interpolator>,
    status: String,
    next_seq: u32,
    input_clock: f64,
    ping_clock: f64,
    ping_ms: Option<f64>,
    bytes_in: u64,
    bytes_out: u64,
    snapshots: u64,
    /// Full snapshots asked for after the stream broke, and received.
    resync_requests: u64,
    resyncs: u64,
    awaiting_full: bool,
    /// The shared desync checker over the own player's steps, and its last step.
    check: StepCheck,
    last_mine: Option<(Tick, PlayerState)>,
    rates: (f64, f64, f64),
    rate_clock: f64,
    rate_base: (u64, u64, u64),
    shot_taken_at: Option<f64>,
    frames: u64,
    /// Recent game events and chat, newest last.
    feed: std::collections::VecDeque<String>,
    /// The chat line being typed (Enter opens and sends, Esc cancels).
    typing: Option<String>,
}

/// Most lines kept in the event feed.
const FEED_LINES: usize = 8;

#[derive(Component)]
struct PlayerMarker(PlayerId);
#[derive(Component)]
struct OrbMarker(usize);
#[derive(Component)]
struct ProjectileMarker;
#[derive(Component)]
struct Hud;
#[derive(Component)]
struct StatusText;
#[derive(Component)]
struct OwnRing;
#[derive(Component)]
struct FeedText;

#[derive(Resource)]
struct Shapes {
    player: Handle<Mesh>,
    ring: Handle<Mesh>,
    orb: Handle<Mesh>,
    projectile: Handle<Mesh>,
    orb_color: Handle<ColorMaterial>,
    projectile_color: Handle<ColorMaterial>,
    ring_color: Handle<ColorMaterial>,
    players: HashMap<PlayerId, Handle<ColorMaterial>>,
}

/// Builds and runs the app.
pub fn run(net: NetHandle, options: AppOptions) -> AppExit {
    App::new()
        .add_plugins(DefaultPlugins.set(WindowPlugin {
            primary_window: Some(Window {
                title: "Skirmish".into(),
                resolution: WindowResolution::new(1100, 800),
                ..default()
            }),
            ..default()
        }))
        .insert_resource(ClearColor(Color::srgb(0.06, 0.08, 0.11)))
        .insert_resource(Net(Mutex::new(net)))
        .insert_resource(Options(options))
        .init_resource::<ClientState>()
        .add_systems(Startup, setup)
        .add_systems(
            Update,
            (
                pump_network,
                replay_keys,
                chat_box,
                send_inputs,
                draw_world,
                update_hud,
                screenshot,
                exit_after,
            )
                .chain(),
        )
        .run()
}

/// The colour of a player, from its id.
#[must_use]
pub fn player_color(id: PlayerId) -> Color {
    Color::hsl((id.0 * 137 % 360) as f32, 0.7, 0.6)
}

fn to_screen(x: f32, y: f32) -> Vec3 {
    Vec3::new(x - HALF, y - HALF, 0.0)
}

fn setup(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<ColorMaterial>>,
) {
    // Fit the arena (1000 units) with room for the HUD on the right.
    commands.spawn((
        Camera2d,
        Projection::Orthographic(OrthographicProjection {
            scale: 1.35,
            ..OrthographicProjection::default_2d()
        }),
        Transform::from_xyz(200.0, 0.0, 0.0),
    ));
    // The arena: a border and a floor.
    commands.spawn((
        Mesh2d(meshes.add(Rectangle::new(
            ARENA_SIZE as f32 + 8.0,
            ARENA_SIZE as f32 + 8.0,
        ))),
        MeshMaterial2d(materials.add(Color::srgb(0.25, 0.32, 0.45))),
        Transform::from_xyz(0.0, 0.0, -2.0),
    ));
    commands.spawn((
        Mesh2d(meshes.add(Rectangle::new(ARENA_SIZE as f32, ARENA_SIZE as f32))),
        MeshMaterial2d(materials.add(Color::srgb(0.04, 0.05, 0.08))),
        Transform::from_xyz(0.0, 0.0, -1.0),
    ));
    commands.insert_resource(Shapes {
        player: meshes.add(Circle::new(PLAYER_RADIUS as f32)),
        ring: meshes.add(Annulus::new(
            PLAYER_RADIUS as f32 + 3.0,
            PLAYER_RADIUS as f32 + 6.0,
        )),
        orb: meshes.add(Circle::new(ORB_RADIUS as f32)),
        projectile: meshes.add(Circle::new(PROJECTILE_RADIUS as f32)),
        orb_color: materials.add(Color::srgb(0.94, 0.71, 0.16)),
        projectile_color: materials.add(Color::WHITE),
        ring_color: materials.add(Color::WHITE),
        players: HashMap::new(),
    });
    let text = |size: f32| TextFont {
        font_size: FontSize::Px(size),
        ..default()
    };
    commands.spawn((
        Text::new(""),
        text(15.0),
        Node {
            position_type: PositionType::Absolute,
            top: Val::Px(10.0),
            right: Val::Px(12.0),
            ..default()
        },
        Hud,
    ));
    commands.spawn((
        Text::new(""),
        text(14.0),
        TextColor(Color::srgb(0.75, 0.8, 0.9)),
        Node {
            position_type: PositionType::Absolute,
            bottom: Val::Px(48.0),
            right: Val::Px(12.0),
            ..default()
        },
        FeedText,
    ));
    commands.spawn((
        Text::new("connecting..."),
        text(22.0),
        TextColor(Color::srgb(1.0, 0.8, 0.4)),
        Node {
            position_type: PositionType::Absolute,
            bottom: Val::Px(12.0),
            left: Val::Px(12.0),
            ..default()
        },
        StatusText,
    ));
}

fn pump_network(net: Res<Net>, mut st: ResMut<ClientState>, time: Res<Time<Real>>) {
    let now = time.elapsed_secs_f64();
    let Ok(net) = net.0.lock() else { return };
    while let Ok(ev) = net.events.try_recv() {
        match ev {
            NetEvent::Connecting { attempt } => {
                st.status = if attempt == 1 {
                    "connecting...".into()
                } else {
                    format!("reconnecting (attempt {attempt})")
                };
            }
            NetEvent::Status(s) => st.status = s,
            NetEvent::Down { error, retry_in } => {
                st.status = format!("{error} - retrying in {:.0} s", retry_in.as_secs_f64());
                st.receiver = None;
            }
            NetEvent::Message(msg, n) => {
                st.bytes_in += n as u64;
                match msg {
                    ServerMessage::Welcome {
                        player_id,
                        tick_hz,
                        snapshot,
                        ..
                    } => {
                        let params = Params::new(tick_hz);
                        st.tick_hz = tick_hz;
                        st.me = player_id;
                        st.receiver = Some(SnapshotReceiver::new(params));
                        st.prediction = player_id.map(|p| Prediction::new(params, p));
                        let delay_s = INTERP_INTERVALS / f64::from(tick_hz);
                        st.interp = Some(Interpolator::new(tick_hz, delay_s));
                        st.status.clear();
                        apply_snapshot(&mut st, &snapshot, now, &net);
                    }
                    ServerMessage::Snapshot(s) => apply_snapshot(&mut st, &s, now, &net),
                    ServerMessage::Pong { client_time_us, .. } => {
                        st.ping_ms = Some((now * 1e6 - client_time_us as f64) / 1000.0);
                    }
                    ServerMessage::Error { message, .. } => st.status = message,
                    ServerMessage::MatchEnded { ranking } => {
                        let top: Vec<String> = ranking
                            .iter()
                            .take(3)
                            .map(|r| format!("{}. {} {}", r.rank, r.name, r.score))
                            .collect();
                        st.status = format!("match over: {}", top.join(", "));
                    }
                    ServerMessage::ChatRejected { reason } => {
                        push_feed(&mut st, format!("(chat not sent: {reason})"))
                    }
                }
            }
        }
    }
}

fn push_feed(st: &mut ClientState, line: String) {
    st.feed.push_back(line);
    while st.feed.len() > FEED_LINES {
        st.feed.pop_front();
    }
}

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

fn apply_snapshot(
    st: &mut ClientState,
    s: &skirmish_shared::protocol::SnapshotMsg,
    now: f64,
    net: &NetHandle,
) {
    st.snapshots += 1;
    let latest = st.interp.as_ref().and_then(|i| i.latest()).cloned();
    for e in &s.events {
        push_feed(st, describe_event(e, latest.as_ref()));
    }
    let Some(receiver) = st.receiver.as_mut() else {
        return;
    };
    let full = s.baseline().is_none();
    match receiver.receive(s) {
        Received::Applied { .. } => {
            if st.awaiting_full && full {
                st.awaiting_full = false;
                st.resyncs += 1;
            }
            let Some(world) = receiver.latest().cloned() else {
                return;
            };
            if let Some(p) = st.prediction.as_mut() {
                p.on_world(&world);
            }
            if let Some(mine) = st.me.and_then(|me| world.player(me)).cloned() {
                if let Some((t, before)) = st.last_mine.take()
                    && world.tick.diff(t) == 1
                {
                    let params = Params::new(st.tick_hz);
                    let _ = st.check.check(&before, &mine, &params);
                }
                st.last_mine = Some((world.tick, mine));
            }
            if let Some(i) = st.interp.as_mut() {
                i.push(world, now);
            }
        }
        Received::NeedFull {
            request_full: true, ..
        } if net.commands.try_send(ClientMessage::RequestFull).is_ok() => {
            st.resync_requests += 1;
            st.awaiting_full = true;
        }
        _ => {}
    }
}

/// A replay's keyboard: Space pauses, Up/Down change speed, Left/Right seek, Home restarts.
fn replay_keys(options: Res<Options>, keys: Res<ButtonInput<KeyCode>>) {
    use crate::replay::{Control, SEEK_SECONDS};
    let Some(controls) = &options.0.replay else {
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

/// The chat box: Enter starts a line, Enter sends it, Esc cancels; while typing, keys do not
/// steer.
fn chat_box(net: Res<Net>, mut st: ResMut<ClientState>, mut keys: MessageReader<KeyboardInput>) {
    for k in keys.read() {
        if !k.state.is_pressed() {
            continue;
        }
        match (&mut st.typing, &k.logical_key) {
            (None, Key::Enter) => st.typing = Some(String::new()),
            (Some(line), Key::Enter) => {
                let text = std::mem::take(line);
                st.typing = None;
                if !text.trim().is_empty()
                    && let Ok(net) = net.0.lock()
                {
                    let _ = net.commands.try_send(ClientMessage::Chat { text });
                }
            }
            (Some(_), Key::Escape) => st.typing = None,
            (Some(line), Key::Backspace) => {
                line.pop();
            }
            (Some(line), Key::Character(c)) if line.chars().count() < MAX_CHAT_CHARS => {
                line.push_str(c)
            }
            (Some(line), Key::Space) if line.chars().count() < MAX_CHAT_CHARS => line.push(' '),
            _ => {}
        }
    }
}

/// One input per tick, at the tick rate, from the keyboard and the mouse.
fn send_inputs(
    net: Res<Net>,
    mut st: ResMut<ClientState>,
    time: Res<Time<Real>>,
    keys: Res<ButtonInput<KeyCode>>,
    mouse: Res<ButtonInput<MouseButton>>,
    window: Single<&Window, With<PrimaryWindow>>,
    camera: Single<(&Camera, &GlobalTransform)>,
) {
    let now = time.elapsed_secs_f64();
    let Ok(net) = net.0.lock() else { return };
    if st.tick_hz == 0 || st.prediction.is_none() {
        return;
    }
    if now - st.ping_clock >= 1.0 {
        st.ping_clock = now;
        let _ = net.commands.try_send(ClientMessage::Ping {
            client_time_us: (now * 1e6) as u64,
        });
    }
    let period = 1.0 / f64::from(st.tick_hz);
    if st.input_clock == 0.0 {
        st.input_clock = now;
    }
    // Catch up at most a few ticks after a stall.
    if now - st.input_clock > 4.0 * period {
        st.input_clock = now - period;
    }
    while now - st.input_clock >= period {
        st.input_clock += period;
        let axis = |neg: KeyCode, pos: KeyCode| {
            f32::from(u8::from(keys.pressed(pos))) - f32::from(u8::from(keys.pressed(neg)))
        };
        let (dx, dy) = (
            axis(KeyCode::KeyA, KeyCode::KeyD),
            axis(KeyCode::KeyS, KeyCode::KeyW),
        );
        let me = st
            .prediction
            .as_ref()
            .and_then(|p| p.predicted())
            .map(|p| p.pos.pos_to_units());
        let aim = match (me, window.cursor_position()) {
            (Some((x, y)), Some(cursor)) => {
                let (cam, cam_t) = *camera;
                cam.viewport_to_world_2d(cam_t, cursor)
                    .ok()
                    .map(|w| QAngle::from_radians((w.y + HALF - y).atan2(w.x + HALF - x)))
            }
            _ => None,
        };
        let last_aim = st
            .prediction
            .as_ref()
            .and_then(|p| p.predicted())
            .map(|p| p.aim)
            .unwrap_or_default();
        st.next_seq += 1;
        let frame = InputFrame {
            seq: Seq(st.next_seq),
            mv: MoveVec::from_f32(dx, dy),
            aim: aim.unwrap_or(last_aim),
            buttons: if mouse.pressed(MouseButton::Left) || keys.pressed(KeyCode::Space) {
                BUTTON_FIRE
            } else {
                0
            },
            view_tick: Default::default(),
        };
        if let Some(p) = st.prediction.as_mut() {
            p.apply_local(frame);
        }
        st.check.sent(frame);
        let msg = ClientMessage::Input {
            frames: vec![frame],
        };
        st.bytes_out += skirmish_shared::protocol::encode(&msg).len() as u64;
        let _ = net.commands.try_send(msg);
    }
}

#[allow(clippy::too_many_arguments)] // a Bevy system: its parameters are its queries
fn draw_world(
    mut commands: Commands,
    mut st: ResMut<ClientState>,
    time: Res<Time<Real>>,
    mut shapes: ResMut<Shapes>,
    mut materials: ResMut<Assets<ColorMaterial>>,
    mut players: Query<
        (Entity, &PlayerMarker, &mut Transform),
        (Without<OrbMarker>, Without<OwnRing>),
    >,
    mut orbs: Query<(&OrbMarker, &mut Transform), (Without<PlayerMarker>, Without<OwnRing>)>,
    projectiles: Query<Entity, With<ProjectileMarker>>,
    mut ring: Query<&mut Transform, (With<OwnRing>, Without<PlayerMarker>, Without<OrbMarker>)>,
) {
    let now = time.elapsed_secs_f64();
    let dt = time.delta_secs();
    let me = st.me;
    let own = st.prediction.as_mut().and_then(|p| p.display(dt));
    let Some(interp) = st.interp.as_ref() else {
        return;
    };
    let Some(latest) = interp.latest().cloned() else {
        return;
    };
    let mut drawn: HashMap<PlayerId, (f32, f32)> = interp
        .sample(now)
        .into_iter()
        .map(|d| (d.id, (d.x, d.y)))
        .collect();
    if let (Some(me), Some(pos)) = (me, own) {
        drawn.insert(me, pos);
    }
    // Players: update, add, remove.
    for (e, PlayerMarker(id), mut t) in &mut players {
        match drawn.remove(id) {
            Some((x, y)) => t.translation = to_screen(x, y).with_z(1.0),
            None => commands.entity(e).despawn(),
        }
    }
    for (id, (x, y)) in drawn {
        let name = latest
            .player(id)
            .map_or_else(String::new, |p| p.name.to_string());
        let color = shapes
            .players
            .entry(id)
            .or_insert_with(|| materials.add(player_color(id)))
            .clone();
        commands
            .spawn((
                PlayerMarker(id),
                Mesh2d(shapes.player.clone()),
                MeshMaterial2d(color),
                Transform::from_translation(to_screen(x, y).with_z(1.0)),
            ))
            .with_children(|c| {
                c.spawn((
                    Text2d::new(name),
                    TextFont {
                        font_size: FontSize::Px(13.0),
                        ..default()
                    },
                    Transform::from_xyz(0.0, 26.0, 0.5),
                ));
            });
        if Some(id) == me && ring.is_empty() {
            commands.spawn((
                OwnRing,
                Mesh2d(shapes.ring.clone()),
                MeshMaterial2d(shapes.ring_color.clone()),
                Transform::from_translation(to_screen(x, y).with_z(0.9)),
            ));
        }
    }
    if let (Some((x, y)), Ok(mut t)) = (own, ring.single_mut()) {
        t.translation = to_screen(x, y).with_z(0.9);
    }
    // Orbs: as in the latest world.
    let mut seen = vec![false; latest.orbs.len()];
    for (OrbMarker(i), mut t) in &mut orbs {
        if let Some(o) = latest.orbs.get(*i) {
            let (x, y) = o.pos_to_units();
            t.translation = to_screen(x, y).with_z(0.5);
            seen[*i] = true;
        }
    }
    for (i, o) in latest.orbs.iter().enumerate() {
        if !seen[i] {
            let (x, y) = o.pos_to_units();
            commands.spawn((
                OrbMarker(i),
                Mesh2d(shapes.orb.clone()),
                MeshMaterial2d(shapes.orb_color.clone()),
                Transform::from_translation(to_screen(x, y).with_z(0.5)),
            ));
        }
    }
    // Projectiles: redrawn from the latest world (their path is known exactly).
    for e in &projectiles {
        commands.entity(e).despawn();
    }
    let hz = st.tick_hz.max(1) as f32;
    for p in &latest.projectiles {
        let age = latest.tick.diff(p.spawn_tick).max(0) as f32 / hz;
        let (ox, oy) = p.origin.pos_to_units();
        let (c, s) = (
            cos_q14(p.aim) as f32 / TRIG_ONE as f32,
            sin_q14(p.aim) as f32 / TRIG_ONE as f32,
        );
        let (x, y) = (
            ox + c * PROJECTILE_SPEED as f32 * age,
            oy + s * PROJECTILE_SPEED as f32 * age,
        );
        commands.spawn((
            ProjectileMarker,
            Mesh2d(shapes.projectile.clone()),
            MeshMaterial2d(shapes.projectile_color.clone()),
            Transform::from_translation(to_screen(x, y).with_z(1.5)),
        ));
    }
}

fn update_hud(
    mut st: ResMut<ClientState>,
    time: Res<Time<Real>>,
    mut hud: Query<&mut Text, (With<Hud>, Without<StatusText>, Without<FeedText>)>,
    mut status: Query<&mut Text, (With<StatusText>, Without<Hud>, Without<FeedText>)>,
    mut feed: Query<&mut Text, (With<FeedText>, Without<Hud>, Without<StatusText>)>,
) {
    let now = time.elapsed_secs_f64();
    if now - st.rate_clock >= 1.0 {
        let dt = now - st.rate_clock;
        let (bi, bo, sn) = st.rate_base;
        st.rates = (
            (st.bytes_in - bi) as f64 / dt,
            (st.bytes_out - bo) as f64 / dt,
            (st.snapshots - sn) as f64 / dt,
        );
        st.rate_base = (st.bytes_in, st.bytes_out, st.snapshots);
        st.rate_clock = now;
    }
    if let Ok(mut s) = status.single_mut() {
        **s = match &st.typing {
            Some(line) => format!("say: {line}_   (Enter to send, Esc to cancel)"),
            None => st.status.clone(),
        };
    }
    if let Ok(mut f) = feed.single_mut() {
        **f = st.feed.iter().cloned().collect::<Vec<_>>().join("\n");
    }
    let Ok(mut text) = hud.single_mut() else {
        return;
    };
    let Some(world) = st.interp.as_ref().and_then(|i| i.latest()) else {
        **text = String::new();
        return;
    };
    **text = hud_text(
        world,
        st.me,
        st.tick_hz,
        st.ping_ms,
        st.rates,
        st.prediction.as_ref().map_or(0, |p| p.corrections),
    );
}

/// The HUD's text: phase, scoreboard (own row marked), tick, ping, bandwidth, snapshot rate,
/// prediction corrections.
#[must_use]
pub fn hud_text(
    world: &WorldState,
    me: Option<PlayerId>,
    tick_hz: u32,
    ping_ms: Option<f64>,
    rates: (f64, f64, f64),
    corrections: u64,
) -> String {
    let mut rows: Vec<_> = world.players.iter().collect();
    rows.sort_by(|a, b| b.score.cmp(&a.score).then(a.id.cmp(&b.id)));
    let mut s = format!(
        "{:?} - {:.0} s left\n\n",
        world.phase,
        world.seconds_left(tick_hz)
    );
    for (i, p) in rows.iter().enumerate() {
        let mark = if Some(p.id) == me { ">" } else { " " };
        s.push_str(&format!(
            "{mark} {:>2}. {:<16} {:>4}\n",
            i + 1,
            p.name,
            p.score
        ));
    }
    s.push_str(&format!(
        "\ntick {}\nping {}\nin {:.1} KB/s  out {:.1} KB/s\nsnapshots {:.0}/s\ncorrections {}",
        world.tick.0,
        ping_ms.map_or("–".to_string(), |p| format!("{p:.0} ms")),
        rates.0 / 1000.0,
        rates.1 / 1000.0,
        rates.2,
        corrections
    ));
    s
}

fn screenshot(
    mut commands: Commands,
    opts: Res<Options>,
    mut st: ResMut<ClientState>,
    time: Res<Time<Real>>,
    mut exit: MessageWriter<AppExit>,
) {
    let (Some(after), Some(path)) = (opts.0.screenshot_after, opts.0.screenshot.clone()) else {
        return;
    };
    let now = time.elapsed_secs_f64();
    match st.shot_taken_at {
        None if now >= after.as_secs_f64() => {
            commands
                .spawn(Screenshot::primary_window())
                .observe(save_to_disk(path));
            st.shot_taken_at = Some(now);
        }
        Some(at) if opts.0.exit_after_screenshot && now - at > 1.5 && path.exists() => {
            exit.write(AppExit::Success);
        }
        _ => {}
    }
}

/// `--exit-after`: quit on time and say how it went (frame rate, corrections, snapshots).
fn exit_after(
    opts: Res<Options>,
    mut st: ResMut<ClientState>,
    time: Res<Time<Real>>,
    mut exit: MessageWriter<AppExit>,
) {
    st.frames += 1;
    let Some(after) = opts.0.exit_after else {
        return;
    };
    let now = time.elapsed_secs_f64();
    if now >= after.as_secs_f64() {
        let corrections = st.prediction.as_ref().map_or(0, |p| p.corrections);
        let (desyncs, decode_errors) = st
            .receiver
            .as_ref()
            .map_or((0, 0), |r| (r.desyncs, r.decode_errors));
        println!(
            "skirmish-client: {:.1} s, {} frames ({:.1} fps), {} snapshots, {} prediction corrections, {} rule desyncs of {} steps checked, {} checksum desyncs, {} decode errors, {} resyncs of {} asked",
            now,
            st.frames,
            st.frames as f64 / now,
            st.snapshots,
            corrections,
            st.check.desyncs,
            st.check.checked,
            desyncs,
            decode_errors,
            st.resyncs,
            st.resync_requests
        );
        exit.write(AppExit::Success);
    }
}
