//! Input, sampled on `FixedUpdate` at the match's tick rate: one [`InputFrame`] per tick from
//! the keyboard and mouse (WASD moves, the mouse aims, left click or Space fires) or from the
//! autopilot, applied to the prediction at once (the own player and its shots), and sent
//! with the tick the others are drawn at (`view_tick`, for the server's lag compensation).

use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use skirmish_shared::protocol::{ClientMessage, InputFrame};
use skirmish_shared::quant::{MoveVec, QAngle};
use skirmish_shared::rules::{ARENA_SIZE, BUTTON_FIRE};
use skirmish_shared::tick::Seq;
use skirmish_shared::workload::WanderSteer;

use crate::app::{ClientOptions, Screen};
use crate::plugins::chat::Typing;
use crate::plugins::netcode::Netcode;
use crate::plugins::session::Session;

/// Adds the input: see the module docs.
#[derive(Debug)]
pub struct InputPlugin;

impl Plugin for InputPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(
            Startup,
            |mut commands: Commands, options: Res<ClientOptions>| {
                commands.insert_resource(Autopilot(options.autopilot.then(|| WanderSteer::new(7))));
            },
        )
        .add_systems(Update, ping.run_if(in_state(Screen::InMatch)))
        .add_systems(FixedUpdate, make_input.run_if(in_state(Screen::InMatch)));
    }
}

/// The autopilot's steering, when it drives instead of the keyboard.
#[derive(Resource, Debug)]
pub struct Autopilot(pub Option<WanderSteer>);

/// A ping a second (the HUD's round trip).
fn ping(mut session: ResMut<Session>, time: Res<Time<Real>>, mut last: Local<f64>) {
    let now = time.elapsed_secs_f64();
    if now - *last >= 1.0 {
        *last = now;
        session.send(ClientMessage::Ping {
            client_time_us: (now * 1e6) as u64,
        });
    }
}

/// What the keyboard and mouse say: movement, aim (towards the cursor), fire.
fn from_devices(
    keys: Option<&ButtonInput<KeyCode>>,
    mouse: Option<&ButtonInput<MouseButton>>,
    cursor_world: Option<Vec2>,
    me: Option<(f32, f32)>,
) -> (MoveVec, Option<QAngle>, u8) {
    let Some(keys) = keys else {
        return (MoveVec::default(), None, 0);
    };
    let axis = |neg: KeyCode, pos: KeyCode| {
        f32::from(u8::from(keys.pressed(pos))) - f32::from(u8::from(keys.pressed(neg)))
    };
    let mv = MoveVec::from_f32(
        axis(KeyCode::KeyA, KeyCode::KeyD),
        axis(KeyCode::KeyS, KeyCode::KeyW),
    );
    let aim = match (me, cursor_world) {
        (Some((x, y)), Some(w)) => {
            let half = ARENA_SIZE as f32 / 2.0;
            Some(QAngle::from_radians((w.y + half - y).atan2(w.x + half - x)))
        }
        _ => None,
    };
    let fire = mouse.is_some_and(|m| m.pressed(MouseButton::Left)) || keys.pressed(KeyCode::Space);
    (mv, aim, if fire { BUTTON_FIRE } else { 0 })
}

#[allow(clippy::too_many_arguments)] // a Bevy system: its parameters are what it reads
fn make_input(
    mut netcode: ResMut<Netcode>,
    mut session: ResMut<Session>,
    mut autopilot: ResMut<Autopilot>,
    typing: Res<Typing>,
    time: Res<Time<Real>>,
    keys: Option<Res<ButtonInput<KeyCode>>>,
    mouse: Option<Res<ButtonInput<MouseButton>>>,
    window: Query<&Window, With<PrimaryWindow>>,
    camera: Query<(&Camera, &GlobalTransform)>,
) {
    let now = time.elapsed_secs_f64();
    let Some(predicted) = netcode
        .prediction
        .as_ref()
        .and_then(|p| p.predicted())
        .cloned()
    else {
        return; // watching, or not welcomed yet
    };
    let me = predicted.pos.pos_to_units();
    netcode.next_seq += 1;
    let seq = Seq(netcode.next_seq);
    let view_tick = netcode
        .interp
        .as_ref()
        .map_or(Default::default(), |i| i.view_tick(now));
    let mut frame = if let Some(steer) = autopilot.0.as_mut() {
        // Hunt the nearest other player where it is drawn.
        let target = netcode.interp.as_ref().and_then(|i| {
            i.sample(now)
                .into_iter()
                .filter(|d| Some(d.id) != netcode.me)
                .min_by(|a, b| {
                    let d = |p: &skirmish_shared::netcode::Drawn| (p.x - me.0).hypot(p.y - me.1);
                    d(a).total_cmp(&d(b))
                })
                .map(|d| (d.x, d.y))
        });
        steer.hunt(seq, Some(me), target)
    } else {
        let cursor = window
            .single()
            .ok()
            .and_then(|w| w.cursor_position())
            .and_then(|c| {
                let (cam, at) = camera.iter().find(|(c, _)| c.is_active)?;
                cam.viewport_to_world_2d(at, c).ok()
            });
        let (mut mv, aim, mut buttons) =
            from_devices(keys.as_deref(), mouse.as_deref(), cursor, Some(me));
        if typing.0.is_some() {
            (mv, buttons) = (MoveVec::default(), 0); // the keys are typing a chat line
        }
        InputFrame {
            seq,
            mv,
            aim: aim.unwrap_or(predicted.aim),
            buttons,
            view_tick: Default::default(),
        }
    };
    frame.view_tick = view_tick;
    let shot = netcode
        .prediction
        .as_mut()
        .and_then(|p| p.apply_local(frame));
    if let Some(shots) = netcode.shots.as_mut() {
        shots.on_input(seq, shot);
    }
    netcode.check.sent(frame);
    session.send(ClientMessage::Input {
        frames: vec![frame],
    });
}
