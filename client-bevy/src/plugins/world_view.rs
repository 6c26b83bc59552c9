//! The match on screen: the arena scaled to the window, players (own one ringed, everyone's
//! aim drawn), orbs, projectiles (own ones from the shot prediction, in the present; the
//! others' where the interpolated view is), and effects: a flash where a player is tagged or
//! a shot of ours hits as drawn, a burst of sparks where an orb is collected, and an
//! optional camera shake when you are tagged. Entities are kept and updated frame to frame,
//! spawned when something appears and despawned when it goes.

use std::collections::HashMap;

use bevy::camera::ScalingMode;
use bevy::prelude::*;
use skirmish_shared::netcode::shot_at;
use skirmish_shared::protocol::EventKind;
use skirmish_shared::quant::{TRIG_ONE, cos_q14, sin_q14};
use skirmish_shared::rules::{ARENA_SIZE, ORB_RADIUS, PLAYER_RADIUS, PROJECTILE_RADIUS};
use skirmish_shared::tick::Seq;
use skirmish_shared::world::PlayerId;

use crate::app::{ClientOptions, Screen};
use crate::plugins::netcode::{Happened, Netcode};

const HALF: f32 = ARENA_SIZE as f32 / 2.0;

/// Adds the world view: see the module docs.
#[derive(Debug)]
pub struct WorldViewPlugin;

impl Plugin for WorldViewPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Shake>()
            .add_systems(Startup, setup)
            .add_systems(OnExit(Screen::Menu), spawn_arena)
            .add_systems(
                Update,
                (
                    draw_players,
                    draw_orbs,
                    draw_projectiles,
                    effects_from_events,
                    animate_effects,
                    shake_camera,
                )
                    .chain()
                    .run_if(not(in_state(Screen::Menu))),
            );
    }
}

/// The colour of a player, from its id.
#[must_use]
pub fn player_color(id: PlayerId) -> Color {
    Color::hsl((id.0 * 137 % 360) as f32, 0.7, 0.6)
}

fn to_screen(x: f32, y: f32) -> Vec3 {
    Vec3::new(x - HALF, y - HALF, 0.0)
}

#[derive(Component)]
struct PlayerSprite(PlayerId);
#[derive(Component)]
struct AimLine;
#[derive(Component)]
struct OwnRing;
#[derive(Component)]
struct OrbSprite(usize);
/// A projectile on screen: an own shot by the input that fired it, another by its id.
#[derive(Component, Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum ShotSprite {
    Own(Seq),
    Other(u32),
}
/// A short-lived effect: grows and fades over `life` seconds, drifting at `vel`.
#[derive(Component)]
struct Effect {
    age: f32,
    life: f32,
    vel: Vec2,
    grow: f32,
}

/// The camera shake left, seconds (only with `--camera-shake`).
#[derive(Resource, Default)]
struct Shake(f32);

#[derive(Resource)]
struct Shapes {
    player: Handle<Mesh>,
    ring: Handle<Mesh>,
    aim: Handle<Mesh>,
    orb: Handle<Mesh>,
    projectile: Handle<Mesh>,
    flash: Handle<Mesh>,
    spark: Handle<Mesh>,
    orb_color: Handle<ColorMaterial>,
    white: Handle<ColorMaterial>,
    players: HashMap<PlayerId, Handle<ColorMaterial>>,
}

fn setup(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<ColorMaterial>>,
) {
    // The arena (1,000 units) and the HUD's column on the right always fit the window.
    commands.spawn((
        Camera2d,
        Projection::Orthographic(OrthographicProjection {
            scaling_mode: ScalingMode::AutoMin {
                min_width: ARENA_SIZE as f32 + 440.0,
                min_height: ARENA_SIZE as f32 + 60.0,
            },
            ..OrthographicProjection::default_2d()
        }),
        Transform::from_xyz(200.0, 0.0, 0.0),
    ));
    commands.insert_resource(Shapes {
        player: meshes.add(Circle::new(PLAYER_RADIUS as f32)),
        ring: meshes.add(Annulus::new(
            PLAYER_RADIUS as f32 + 3.0,
            PLAYER_RADIUS as f32 + 6.0,
        )),
        aim: meshes.add(Rectangle::new(14.0, 3.0)),
        orb: meshes.add(Circle::new(ORB_RADIUS as f32)),
        projectile: meshes.add(Circle::new(PROJECTILE_RADIUS as f32)),
        flash: meshes.add(Annulus::new(
            PLAYER_RADIUS as f32,
            PLAYER_RADIUS as f32 + 4.0,
        )),
        spark: meshes.add(Circle::new(2.0)),
        orb_color: materials.add(Color::srgb(0.94, 0.71, 0.16)),
        white: materials.add(Color::WHITE),
        players: HashMap::new(),
    });
}

fn spawn_arena(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<ColorMaterial>>,
) {
    let gone = DespawnOnEnter(Screen::Menu);
    let side = ARENA_SIZE as f32;
    commands.spawn((
        Mesh2d(meshes.add(Rectangle::new(side + 8.0, side + 8.0))),
        MeshMaterial2d(materials.add(Color::srgb(0.25, 0.32, 0.45))),
        Transform::from_xyz(0.0, 0.0, -2.0),
        gone.clone(),
    ));
    commands.spawn((
        Mesh2d(meshes.add(Rectangle::new(side, side))),
        MeshMaterial2d(materials.add(Color::srgb(0.04, 0.05, 0.08))),
        Transform::from_xyz(0.0, 0.0, -1.0),
        gone,
    ));
}

/// Where everyone is drawn now: the others interpolated, the own player predicted.
fn drawn_players(netcode: &mut Netcode, now: f64, dt: f32) -> HashMap<PlayerId, (f32, f32)> {
    let own = netcode.prediction.as_mut().and_then(|p| p.display(dt));
    let mut drawn: HashMap<PlayerId, (f32, f32)> = netcode
        .interp
        .as_ref()
        .map(|i| {
            i.sample(now)
                .into_iter()
                .map(|d| (d.id, (d.x, d.y)))
                .collect()
        })
        .unwrap_or_default();
    if let (Some(me), Some(pos)) = (netcode.me, own) {
        drawn.insert(me, pos);
    }
    drawn
}

#[allow(clippy::type_complexity, clippy::too_many_arguments)] // a Bevy system's queries
fn draw_players(
    mut commands: Commands,
    mut netcode: ResMut<Netcode>,
    time: Res<Time<Real>>,
    mut shapes: ResMut<Shapes>,
    mut materials: ResMut<Assets<ColorMaterial>>,
    mut players: Query<(Entity, &PlayerSprite, &mut Transform, &Children), Without<OwnRing>>,
    mut aims: Query<&mut Transform, (With<AimLine>, Without<PlayerSprite>, Without<OwnRing>)>,
    mut ring: Query<(Entity, &mut Transform), (With<OwnRing>, Without<PlayerSprite>)>,
) {
    let now = time.elapsed_secs_f64();
    let mut drawn = drawn_players(&mut netcode, now, time.delta_secs());
    let Some(latest) = netcode.latest().cloned() else {
        return;
    };
    let me = netcode.me;
    let own = me.and_then(|m| drawn.get(&m).copied());
    let own_aim = netcode
        .prediction
        .as_ref()
        .and_then(|p| p.predicted())
        .map(|p| p.aim);
    let aim_of = |id: PlayerId| {
        let aim = if Some(id) == me { own_aim } else { None };
        let aim = aim
            .or_else(|| latest.player(id).map(|p| p.aim))
            .unwrap_or_default();
        (sin_q14(aim) as f32 / TRIG_ONE as f32).atan2(cos_q14(aim) as f32 / TRIG_ONE as f32)
    };
    let aim_transform = |angle: f32| {
        let r = PLAYER_RADIUS as f32 + 8.0;
        Transform::from_xyz(angle.cos() * r, angle.sin() * r, 0.2)
            .with_rotation(Quat::from_rotation_z(angle))
    };
    for (e, PlayerSprite(id), mut t, children) in &mut players {
        match drawn.remove(id) {
            Some((x, y)) => {
                t.translation = to_screen(x, y).with_z(1.0);
                for c in children {
                    if let Ok(mut a) = aims.get_mut(*c) {
                        *a = aim_transform(aim_of(*id));
                    }
                }
            }
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
        commands.spawn((
            PlayerSprite(id),
            Mesh2d(shapes.player.clone()),
            MeshMaterial2d(color),
            Transform::from_translation(to_screen(x, y).with_z(1.0)),
            DespawnOnEnter(Screen::Menu),
            children![
                (
                    Text2d::new(name),
                    TextFont {
                        font_size: FontSize::Px(13.0),
                        ..default()
                    },
                    Transform::from_xyz(0.0, 26.0, 0.5),
                ),
                (
                    AimLine,
                    Mesh2d(shapes.aim.clone()),
                    MeshMaterial2d(shapes.white.clone()),
                    aim_transform(aim_of(id)),
                ),
            ],
        ));
    }
    match (own, ring.single_mut()) {
        (Some((x, y)), Ok((_, mut t))) => t.translation = to_screen(x, y).with_z(0.9),
        (Some((x, y)), Err(_)) => {
            commands.spawn((
                OwnRing,
                Mesh2d(shapes.ring.clone()),
                MeshMaterial2d(shapes.white.clone()),
                Transform::from_translation(to_screen(x, y).with_z(0.9)),
                DespawnOnEnter(Screen::Menu),
            ));
        }
        (None, Ok((e, _))) => commands.entity(e).despawn(),
        (None, Err(_)) => {}
    }
}

fn draw_orbs(
    mut commands: Commands,
    netcode: Res<Netcode>,
    shapes: Res<Shapes>,
    mut orbs: Query<(&OrbSprite, &mut Transform)>,
) {
    let Some(latest) = netcode.latest() else {
        return;
    };
    let mut seen = vec![false; latest.orbs.len()];
    for (OrbSprite(i), mut t) in &mut orbs {
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
                OrbSprite(i),
                Mesh2d(shapes.orb.clone()),
                MeshMaterial2d(shapes.orb_color.clone()),
                Transform::from_translation(to_screen(x, y).with_z(0.5)),
                DespawnOnEnter(Screen::Menu),
            ));
        }
    }
}

#[allow(clippy::too_many_arguments)] // a Bevy system: its parameters are its queries
fn draw_projectiles(
    mut commands: Commands,
    mut netcode: ResMut<Netcode>,
    time: Res<Time<Real>>,
    fixed: Res<Time<Fixed>>,
    shapes: Res<Shapes>,
    mut sprites: Query<(Entity, &ShotSprite, &mut Transform), Without<PlayerSprite>>,
    players: Query<(&PlayerSprite, &Transform), Without<ShotSprite>>,
) {
    let now = time.elapsed_secs_f64();
    let params = netcode.params();
    let frac = fixed.overstep_fraction();
    let mut want: HashMap<ShotSprite, (f32, f32)> = HashMap::new();
    // Others' shots where the interpolated view is (own confirmed ones are drawn below).
    if let (Some(latest), Some(view)) = (
        netcode.latest(),
        netcode.interp.as_ref().and_then(|i| i.view_time(now)),
    ) {
        for p in &latest.projectiles {
            if netcode.shots.as_ref().is_some_and(|s| s.shows(p.id)) {
                continue;
            }
            let age = (view - f64::from(p.spawn_tick.0)) as f32;
            if (0.0..=params.projectile_lifetime_ticks as f32).contains(&age) {
                want.insert(
                    ShotSprite::Other(p.id),
                    shot_at(p.origin, p.aim, age, &params),
                );
            }
        }
    }
    // Own shots in the present, from the prediction; a shot that touches someone as drawn
    // flashes and goes (the server decides the tag).
    // Where `draw_players` just put the others (it runs first).
    let targets: Vec<(f32, f32)> = players
        .iter()
        .filter(|(p, _)| Some(p.0) != netcode.me)
        .map(|(_, t)| (t.translation.x + HALF, t.translation.y + HALF))
        .collect();
    if let Some(shots) = netcode.shots.as_mut() {
        for (x, y) in shots.predict_hits(&targets, frac) {
            spawn_flash(&mut commands, &shapes, x, y);
        }
        for (seq, x, y) in shots.positions(frac) {
            want.insert(ShotSprite::Own(seq), (x, y));
        }
    }
    for (e, key, mut t) in &mut sprites {
        match want.remove(key) {
            Some((x, y)) => t.translation = to_screen(x, y).with_z(1.5),
            None => commands.entity(e).despawn(),
        }
    }
    for (key, (x, y)) in want {
        commands.spawn((
            key,
            Mesh2d(shapes.projectile.clone()),
            MeshMaterial2d(shapes.white.clone()),
            Transform::from_translation(to_screen(x, y).with_z(1.5)),
            DespawnOnEnter(Screen::Menu),
        ));
    }
}

fn spawn_flash(commands: &mut Commands, shapes: &Shapes, x: f32, y: f32) {
    commands.spawn((
        Effect {
            age: 0.0,
            life: 0.35,
            vel: Vec2::ZERO,
            grow: 2.5,
        },
        Mesh2d(shapes.flash.clone()),
        MeshMaterial2d(shapes.white.clone()),
        Transform::from_translation(to_screen(x, y).with_z(2.0)),
        DespawnOnEnter(Screen::Menu),
    ));
}

/// Tags flash where the target was drawn; orbs burst into sparks; your own tag shakes the
/// camera when that is on.
fn effects_from_events(
    mut commands: Commands,
    mut happened: MessageReader<Happened>,
    shapes: Res<Shapes>,
    players: Query<(&PlayerSprite, &Transform)>,
    options: Res<ClientOptions>,
    netcode: Res<Netcode>,
    mut shake: ResMut<Shake>,
) {
    let at = |id: PlayerId| {
        players
            .iter()
            .find(|(p, _)| p.0 == id)
            .map(|(_, t)| t.translation)
    };
    for Happened(e) in happened.read() {
        match e.kind {
            EventKind::Tagged { target, .. } => {
                if let Some(p) = at(target) {
                    spawn_flash(&mut commands, &shapes, p.x + HALF, p.y + HALF);
                }
                if options.camera_shake && Some(target) == netcode.me {
                    shake.0 = 0.3;
                }
            }
            EventKind::OrbCollected { player, .. } => {
                let Some(p) = at(player) else { continue };
                for k in 0..6 {
                    let a = k as f32 * std::f32::consts::TAU / 6.0;
                    commands.spawn((
                        Effect {
                            age: 0.0,
                            life: 0.4,
                            vel: Vec2::new(a.cos(), a.sin()) * 90.0,
                            grow: 0.0,
                        },
                        Mesh2d(shapes.spark.clone()),
                        MeshMaterial2d(shapes.orb_color.clone()),
                        Transform::from_translation(p.with_z(2.0)),
                        DespawnOnEnter(Screen::Menu),
                    ));
                }
            }
            _ => {}
        }
    }
}

fn animate_effects(
    mut commands: Commands,
    time: Res<Time<Real>>,
    mut effects: Query<(Entity, &mut Effect, &mut Transform)>,
) {
    let dt = time.delta_secs();
    for (e, mut fx, mut t) in &mut effects {
        fx.age += dt;
        if fx.age >= fx.life {
            commands.entity(e).despawn();
            continue;
        }
        let k = fx.age / fx.life;
        t.translation += (fx.vel * dt).extend(0.0);
        t.scale = Vec3::splat((1.0 + fx.grow * k) * (1.0 - 0.5 * k));
    }
}

/// `--camera-shake`: a few tenths of a second of jitter after you are tagged.
fn shake_camera(
    mut shake: ResMut<Shake>,
    time: Res<Time<Real>>,
    mut camera: Query<&mut Transform, With<Camera2d>>,
) {
    let Ok(mut t) = camera.single_mut() else {
        return;
    };
    shake.0 = (shake.0 - time.delta_secs()).max(0.0);
    let s = time.elapsed_secs() * 90.0;
    let amp = 12.0 * shake.0;
    t.translation = Vec3::new(200.0 + amp * s.sin(), amp * (s * 1.3).cos(), 0.0);
}
