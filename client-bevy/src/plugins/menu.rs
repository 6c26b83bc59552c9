//! The screens around the match: the lobby (server URL and name to edit, the live match
//! list with join and watch, quick play, create) and, after `MatchEnded`, the ranking with
//! "play again" and "lobby". Esc in a match goes back to the lobby. The lobby works from the
//! keyboard too: Tab switches field, Up/Down select a match, Enter joins it (or plays at
//! once when none is selected). Drawn with `bevy_ui`; the model is `lobby::Lobby` and
//! `session::Session`.

use bevy::input::keyboard::{Key, KeyboardInput};
use bevy::prelude::*;
use skirmish_shared::rules::MAX_NAME_BYTES;

use crate::app::{ClientOptions, Screen};
use crate::plugins::chat::Typing;
use crate::plugins::lobby::{Lobby, LobbyAction};
use crate::plugins::session::{Session, SessionRequest};

/// Adds the menus: see the module docs.
#[derive(Debug)]
pub struct MenuPlugin;

impl Plugin for MenuPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Focus>()
            .add_systems(OnEnter(Screen::Menu), build_lobby)
            .add_systems(
                Update,
                (edit_fields, show_lobby, rebuild_list).run_if(in_state(Screen::Menu)),
            )
            .add_systems(OnEnter(Screen::MatchOver), build_match_over)
            .add_systems(Update, (press_buttons, leave_on_escape));
    }
}

/// Which lobby field the keyboard edits.
#[derive(Resource, Default, Debug, Clone, Copy, PartialEq, Eq)]
enum Focus {
    Url,
    #[default]
    Name,
}

/// What a button does.
#[derive(Component, Debug, Clone, Copy)]
enum ButtonAction {
    Lobby(LobbyAction),
    Focus(Focus),
    PlayAgain,
    BackToLobby,
}

#[derive(Component)]
struct FieldText(Focus);
#[derive(Component)]
struct LobbyStatus;
#[derive(Component)]
struct MatchList;
/// The rows the list was last built from: id, players, capacity, phase, selected.
#[derive(Component, Default)]
struct ListedRows(Vec<(u32, usize, usize, String, bool)>);

const PANEL: Color = Color::srgb(0.1, 0.13, 0.18);
const BUTTON: Color = Color::srgb(0.2, 0.28, 0.4);
const BUTTON_HOVER: Color = Color::srgb(0.28, 0.38, 0.55);

fn text(s: impl Into<String>, size: f32) -> impl Bundle {
    (
        Text::new(s),
        TextFont {
            font_size: FontSize::Px(size),
            ..default()
        },
    )
}

fn button(label: impl Into<String>, action: ButtonAction) -> impl Bundle {
    (
        Button,
        action,
        Node {
            padding: UiRect::axes(Val::Px(14.0), Val::Px(6.0)),
            margin: UiRect::all(Val::Px(4.0)),
            ..default()
        },
        BackgroundColor(BUTTON),
        children![text(label, 18.0)],
    )
}

fn column() -> Node {
    Node {
        flex_direction: FlexDirection::Column,
        align_items: AlignItems::Center,
        ..default()
    }
}

fn screen_root(screen: Screen) -> impl Bundle {
    (
        DespawnOnExit(screen),
        Node {
            width: Val::Percent(100.0),
            height: Val::Percent(100.0),
            flex_direction: FlexDirection::Column,
            align_items: AlignItems::Center,
            justify_content: JustifyContent::Center,
            row_gap: Val::Px(8.0),
            ..default()
        },
        BackgroundColor(PANEL),
    )
}

fn build_lobby(mut commands: Commands) {
    commands.spawn(screen_root(Screen::Menu)).with_children(|root| {
        root.spawn(text("SKIRMISH", 40.0));
        root.spawn((
            Node {
                flex_direction: FlexDirection::Row,
                ..default()
            },
            children![
                button("server", ButtonAction::Focus(Focus::Url)),
                (text("", 18.0), FieldText(Focus::Url)),
            ],
        ));
        root.spawn((
            Node {
                flex_direction: FlexDirection::Row,
                ..default()
            },
            children![
                button("name", ButtonAction::Focus(Focus::Name)),
                (text("", 18.0), FieldText(Focus::Name)),
            ],
        ));
        root.spawn((
            Node {
                flex_direction: FlexDirection::Row,
                ..default()
            },
            children![
                button("quick play", ButtonAction::Lobby(LobbyAction::QuickPlay)),
                button("create match", ButtonAction::Lobby(LobbyAction::Create)),
            ],
        ));
        root.spawn(text("matches", 22.0));
        root.spawn((column(), MatchList, ListedRows::default()));
        root.spawn((text("", 16.0), TextColor(Color::srgb(1.0, 0.7, 0.4)), LobbyStatus));
        root.spawn(text(
            "Tab switches field, type to edit; Up/Down pick a match, Enter joins (none picked: quick play).\nIn a match: WASD move, mouse aims, click or Space fires, Enter chats, Esc leaves.",
            14.0,
        ));
    });
}

fn edit_fields(
    mut keys: MessageReader<KeyboardInput>,
    mut focus: ResMut<Focus>,
    mut lobby: ResMut<Lobby>,
    mut actions: MessageWriter<LobbyAction>,
) {
    for k in keys.read() {
        if !k.state.is_pressed() {
            continue;
        }
        let count = lobby.matches.len();
        match k.logical_key {
            Key::Tab => {
                *focus = if *focus == Focus::Url {
                    Focus::Name
                } else {
                    Focus::Url
                };
                continue;
            }
            Key::ArrowDown if count > 0 => {
                lobby.selected = Some(lobby.selected.map_or(0, |i| (i + 1).min(count - 1)));
                continue;
            }
            Key::ArrowUp => {
                lobby.selected = lobby.selected.and_then(|i| i.checked_sub(1));
                continue;
            }
            Key::Enter => {
                let picked = lobby.selected.and_then(|i| lobby.matches.get(i));
                actions.write(picked.map_or(LobbyAction::QuickPlay, |m| LobbyAction::Join(m.id)));
                continue;
            }
            _ => {}
        }
        let field = match *focus {
            Focus::Url => &mut lobby.url,
            Focus::Name => &mut lobby.name,
        };
        match &k.logical_key {
            Key::Backspace => {
                field.pop();
            }
            Key::Character(c) if field.len() + c.len() <= 200 => field.push_str(c),
            _ => {}
        }
        if *focus == Focus::Name {
            let cut = skirmish_shared::rules::truncate_utf8(&lobby.name, MAX_NAME_BYTES).len();
            lobby.name.truncate(cut);
        }
    }
}

fn show_lobby(
    lobby: Res<Lobby>,
    focus: Res<Focus>,
    mut fields: Query<(&FieldText, &mut Text), Without<LobbyStatus>>,
    mut status: Query<&mut Text, With<LobbyStatus>>,
) {
    for (FieldText(which), mut t) in &mut fields {
        let (value, on) = match which {
            Focus::Url => (&lobby.url, *focus == Focus::Url),
            Focus::Name => (&lobby.name, *focus == Focus::Name),
        };
        **t = format!(" {value}{}", if on { "_" } else { "" });
    }
    if let Ok(mut t) = status.single_mut() {
        **t = if lobby.status.is_empty() && lobby.fetches > 0 && lobby.matches.is_empty() {
            "no matches yet: quick play starts one".into()
        } else {
            lobby.status.clone()
        };
    }
}

/// The match list's rows: one per match, players and phase, join and watch.
fn rebuild_list(
    mut commands: Commands,
    lobby: Res<Lobby>,
    mut list: Query<(Entity, &mut ListedRows), With<MatchList>>,
) {
    let Ok((entity, mut listed)) = list.single_mut() else {
        return;
    };
    let rows: Vec<_> = lobby
        .matches
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                m.id,
                m.players,
                m.capacity,
                format!("{:?}", m.phase),
                lobby.selected == Some(i),
            )
        })
        .collect();
    if rows == listed.0 {
        return;
    }
    listed.0 = rows;
    commands.entity(entity).despawn_related::<Children>();
    commands.entity(entity).with_children(|list| {
        for (i, m) in lobby.matches.iter().enumerate() {
            let mark = if lobby.selected == Some(i) { ">" } else { " " };
            list.spawn((
                Node {
                    flex_direction: FlexDirection::Row,
                    align_items: AlignItems::Center,
                    ..default()
                },
                children![
                    text(
                        format!(
                            "{mark} match {:<4} {:>3}/{:<3} players  {:?}",
                            m.id, m.players, m.capacity, m.phase
                        ),
                        18.0
                    ),
                    button("join", ButtonAction::Lobby(LobbyAction::Join(m.id))),
                    button("watch", ButtonAction::Lobby(LobbyAction::Watch(m.id))),
                ],
            ));
        }
    });
}

fn build_match_over(mut commands: Commands, session: Res<Session>) {
    commands
        .spawn(screen_root(Screen::MatchOver))
        .with_children(|root| {
            root.spawn(text("match over", 36.0));
            for r in session.ranking.iter().take(10) {
                root.spawn(text(
                    format!("{:>2}. {:<16} {:>4}", r.rank, r.name, r.score),
                    20.0,
                ));
            }
            root.spawn((
                Node {
                    flex_direction: FlexDirection::Row,
                    ..default()
                },
                children![
                    button("play again", ButtonAction::PlayAgain),
                    button("lobby", ButtonAction::BackToLobby),
                ],
            ));
        });
}

fn press_buttons(
    mut buttons: Query<(&Interaction, &ButtonAction, &mut BackgroundColor), Changed<Interaction>>,
    mut focus: ResMut<Focus>,
    mut lobby_actions: MessageWriter<LobbyAction>,
    mut requests: MessageWriter<SessionRequest>,
    session: Res<Session>,
    options: Res<ClientOptions>,
) {
    for (interaction, action, mut bg) in &mut buttons {
        match interaction {
            Interaction::Pressed => match *action {
                ButtonAction::Lobby(a) => {
                    lobby_actions.write(a);
                }
                ButtonAction::Focus(f) => *focus = f,
                ButtonAction::PlayAgain => {
                    let mut cfg = session
                        .config
                        .clone()
                        .unwrap_or_else(|| options.template.clone());
                    (cfg.match_id, cfg.spectate) = (None, false);
                    requests.write(SessionRequest::Connect(cfg));
                }
                ButtonAction::BackToLobby => {
                    requests.write(SessionRequest::Leave);
                }
            },
            Interaction::Hovered => *bg = BackgroundColor(BUTTON_HOVER),
            Interaction::None => *bg = BackgroundColor(BUTTON),
        }
    }
}

/// Esc leaves a match (or the ranking) for the lobby, unless it cancels a chat line.
fn leave_on_escape(
    keys: Res<ButtonInput<KeyCode>>,
    typing: Res<Typing>,
    screen: Res<State<Screen>>,
    mut requests: MessageWriter<SessionRequest>,
) {
    if keys.just_pressed(KeyCode::Escape) && typing.0.is_none() && *screen.get() != Screen::Menu {
        requests.write(SessionRequest::Leave);
    }
}
