//! The HUD: phase and time left, the scoreboard (own row marked), tick, ping, bandwidth,
//! snapshot rate and corrections (top right); the event feed (bottom right); the status line
//! (bottom left: connecting, reconnecting, a replay's position, the chat line being typed).

use bevy::prelude::*;
use skirmish_shared::world::{PlayerId, WorldState};

use crate::app::Screen;
use crate::plugins::chat::{Feed, Typing};
use crate::plugins::netcode::Netcode;
use crate::plugins::session::Session;

/// Adds the HUD: see the module docs.
#[derive(Debug)]
pub struct HudPlugin;

impl Plugin for HudPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Rates>()
            .add_systems(OnExit(Screen::Menu), spawn_hud)
            .add_systems(Update, update_hud.run_if(not(in_state(Screen::Menu))));
    }
}

#[derive(Component)]
struct Board;
#[derive(Component)]
struct StatusLine;
#[derive(Component)]
struct FeedText;

/// Bytes and snapshots per second, over the last second.
#[derive(Resource, Default, Debug)]
struct Rates {
    per_s: (f64, f64, f64),
    at: f64,
    base: (u64, u64, u64),
}

fn spawn_hud(mut commands: Commands, existing: Query<(), With<Board>>) {
    if !existing.is_empty() {
        return;
    }
    let font = |size: f32| TextFont {
        font_size: FontSize::Px(size),
        ..default()
    };
    let gone = DespawnOnEnter(Screen::Menu);
    commands.spawn((
        Text::new(""),
        font(15.0),
        Node {
            position_type: PositionType::Absolute,
            top: Val::Px(10.0),
            right: Val::Px(12.0),
            ..default()
        },
        Board,
        gone.clone(),
    ));
    commands.spawn((
        Text::new(""),
        font(14.0),
        TextColor(Color::srgb(0.75, 0.8, 0.9)),
        Node {
            position_type: PositionType::Absolute,
            bottom: Val::Px(48.0),
            right: Val::Px(12.0),
            ..default()
        },
        FeedText,
        gone.clone(),
    ));
    commands.spawn((
        Text::new("connecting..."),
        font(22.0),
        TextColor(Color::srgb(1.0, 0.8, 0.4)),
        Node {
            position_type: PositionType::Absolute,
            bottom: Val::Px(12.0),
            left: Val::Px(12.0),
            ..default()
        },
        StatusLine,
        gone,
    ));
}

#[allow(clippy::type_complexity, clippy::too_many_arguments)] // a Bevy system: its queries, filters inline
fn update_hud(
    netcode: Res<Netcode>,
    session: Res<Session>,
    feed: Res<Feed>,
    typing: Res<Typing>,
    screen: Res<State<Screen>>,
    mut rates: ResMut<Rates>,
    time: Res<Time<Real>>,
    mut board: Query<&mut Text, (With<Board>, Without<StatusLine>, Without<FeedText>)>,
    mut status: Query<&mut Text, (With<StatusLine>, Without<Board>, Without<FeedText>)>,
    mut feed_text: Query<&mut Text, (With<FeedText>, Without<Board>, Without<StatusLine>)>,
) {
    let now = time.elapsed_secs_f64();
    if now - rates.at >= 1.0 {
        let dt = now - rates.at;
        let (bi, bo, sn) = rates.base;
        rates.per_s = (
            session.bytes_in.saturating_sub(bi) as f64 / dt,
            session.bytes_out.saturating_sub(bo) as f64 / dt,
            netcode.snapshots.saturating_sub(sn) as f64 / dt,
        );
        rates.base = (session.bytes_in, session.bytes_out, netcode.snapshots);
        rates.at = now;
    }
    if let Ok(mut s) = status.single_mut() {
        **s = match (&typing.0, screen.get()) {
            (Some(line), _) => format!("say: {line}_   (Enter to send, Esc to cancel)"),
            (None, Screen::Reconnecting) => format!("connection lost: {}", session.status),
            _ => session.status.clone(),
        };
    }
    if let Ok(mut f) = feed_text.single_mut() {
        **f = feed.0.iter().cloned().collect::<Vec<_>>().join("\n");
    }
    if let Ok(mut text) = board.single_mut() {
        **text = netcode.latest().map_or_else(String::new, |world| {
            hud_text(
                world,
                netcode.me,
                netcode.tick_hz,
                netcode.ping_ms,
                rates.per_s,
                netcode.prediction.as_ref().map_or(0, |p| p.corrections),
            )
        });
    }
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
        ping_ms.map_or("-".to_string(), |p| format!("{p:.0} ms")),
        rates.0 / 1000.0,
        rates.1 / 1000.0,
        rates.2,
        corrections
    ));
    s
}
