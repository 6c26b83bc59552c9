//! Golden vectors for other implementations of the wire format: the Rust codec writes
//! message streams (`web/vectors/*.bin`) and what they decode to (`*.json`); the JavaScript
//! decoder (`web/protocol.js`) must decode every one to the same values
//! (`web/test/protocol.test.mjs`, run from here with Node). A codec change that is not
//! regenerated (`UPDATE_VECTORS=1 cargo test -p skirmish-server --test vectors`) and mirrored
//! in JavaScript fails here.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};
use skirmish_shared::protocol::SnapshotMsg;
use skirmish_shared::protocol::{self, EventKind, GameEvent, InputFrame, RankEntry, ServerMessage};
use skirmish_shared::quant::{MoveVec, QAngle};
use skirmish_shared::rules::{BUTTON_FIRE, Params};
use skirmish_shared::sim::Game;
use skirmish_shared::tick::{Seq, Tick};
use skirmish_shared::workload::Wander;
use skirmish_shared::world::{Phase, PlayerId, WorldState};

fn world_json(w: &WorldState) -> Value {
    json!({
        "tick": w.tick.0,
        "phase": w.phase,
        "phase_end": w.phase_end.0,
        "players": w.players.iter().map(|p| json!({
            "id": p.id.0, "name": &*p.name, "pos": [p.pos.x, p.pos.y], "vel": [p.vel.x, p.vel.y],
            "aim": p.aim.steps(), "score": p.score, "last_seq": p.last_seq.0, "cooldown": p.cooldown, "deaths": p.deaths,
        })).collect::<Vec<_>>(),
        "orbs": w.orbs.iter().map(|o| json!([o.x, o.y])).collect::<Vec<_>>(),
        "projectiles": w.projectiles.iter().map(|p| json!({
            "id": p.id, "owner": p.owner.0, "origin": [p.origin.x, p.origin.y], "aim": p.aim.steps(), "spawn_tick": p.spawn_tick.0,
        })).collect::<Vec<_>>(),
    })
}

/// A stream of frames and what each decodes to.
#[derive(Default)]
struct Stream {
    bytes: Vec<u8>,
    expected: Vec<Value>,
    last: Option<WorldState>,
}

impl Stream {
    fn frame(&mut self, msg: &ServerMessage, expected: Value) {
        let b = protocol::encode(msg);
        self.bytes
            .extend_from_slice(&(b.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(&b);
        self.expected.push(expected);
    }

    /// A snapshot of `w` against the last world sent (`full`: no baseline), with events.
    fn snapshot(
        &mut self,
        w: &WorldState,
        full: bool,
        welcome: bool,
        events: Vec<GameEvent>,
        params: &Params,
    ) {
        let base = if full { None } else { self.last.as_ref() };
        let sum = (full || w.tick.0.is_multiple_of(5)).then(|| w.checksum());
        let snap = SnapshotMsg::encode(base, w, sum, params, events.clone());
        let expected = json!({
            "type": if welcome { "Welcome" } else { "Snapshot" },
            "baseline_age": snap.baseline_age,
            "checksum": sum,
            "events": serde_json::to_value(&events).expect("events"),
            "world": world_json(w),
        });
        let msg = if welcome {
            ServerMessage::Welcome {
                player_id: Some(PlayerId(1)).filter(|_| !w.players.is_empty()),
                match_id: 7,
                tick_hz: params.tick_hz,
                snapshot: snap,
            }
        } else {
            ServerMessage::Snapshot(snap)
        };
        self.frame(&msg, expected);
        self.last = Some(w.clone());
    }
}

fn ev(id: u64, tick: Tick, kind: EventKind) -> GameEvent {
    GameEvent { id, tick, kind }
}

fn cases() -> Vec<(&'static str, Stream)> {
    let params = Params::new(30);
    let mut out = Vec::new();

    // An empty match: nothing but the orbs, then deltas that only advance the tick.
    let mut s = Stream::default();
    let mut g = Game::new(1, params);
    s.snapshot(&g.world, true, true, vec![], &params);
    for _ in 0..3 {
        g.step(|_| None);
        s.snapshot(&g.world, false, false, vec![], &params);
    }
    out.push(("empty_match", s));

    // Sixteen wandering players: a full snapshot, tick-to-tick deltas, a delta over a skipped
    // stretch (age 4), and a full snapshot again.
    let mut s = Stream::default();
    let mut w = Wander::new(16, 42, params);
    w.worlds(20);
    s.snapshot(&w.game.world, true, true, vec![], &params);
    for _ in 0..30 {
        w.step();
        s.snapshot(&w.game.world, false, false, vec![], &params);
    }
    w.worlds(3);
    w.step();
    s.snapshot(&w.game.world, false, false, vec![], &params);
    w.step();
    s.snapshot(&w.game.world, true, false, vec![], &params);
    out.push(("sixteen_players", s));

    // Removals, projectiles, phases, events and every other message type.
    let mut s = Stream::default();
    let mut g = Game::new(5, params);
    let ids: Vec<PlayerId> = ["ann", "bé", "cy", "dee"]
        .iter()
        .map(|n| g.add_player((*n).into()))
        .collect();
    g.world.phase = Phase::Running;
    g.world.phase_end = Tick(900);
    s.snapshot(&g.world, true, true, vec![], &params);
    let mut next_event = 1;
    for t in 1..=40u32 {
        let fire = |id: PlayerId| InputFrame {
            seq: Seq(t),
            mv: MoveVec {
                x: if id.0.is_multiple_of(2) { 90 } else { -60 },
                y: 40,
            },
            aim: QAngle::new((id.0 * 200 + t * 7) as u16),
            buttons: if t % 3 == 0 { BUTTON_FIRE } else { 0 },
            view_tick: Default::default(),
        };
        g.step(|id| Some(fire(id)));
        let mut events = Vec::new();
        if t == 10 {
            g.remove_player(ids[2]);
            events.push(ev(
                next_event,
                g.world.tick,
                EventKind::Left { player: ids[2] },
            ));
            next_event += 1;
        }
        if t == 20 {
            events.push(ev(
                next_event,
                g.world.tick,
                EventKind::Chat {
                    from: ids[0],
                    text: "gg é ✓".into(),
                },
            ));
            events.push(ev(
                next_event + 1,
                g.world.tick,
                EventKind::OrbCollected {
                    player: ids[1],
                    orb: 47,
                },
            ));
            events.push(ev(
                next_event + 2,
                g.world.tick,
                EventKind::Tagged {
                    shooter: ids[0],
                    target: ids[3],
                },
            ));
            events.push(ev(
                next_event + 3,
                g.world.tick,
                EventKind::Joined {
                    player: PlayerId(9),
                    name: "new".into(),
                },
            ));
            events.push(ev(
                next_event + 4,
                g.world.tick,
                EventKind::Disconnected { player: ids[1] },
            ));
            events.push(ev(
                next_event + 5,
                g.world.tick,
                EventKind::Reconnected { player: ids[1] },
            ));
            events.push(ev(
                next_event + 6,
                g.world.tick,
                EventKind::EventsLost { missed: 12 },
            ));
            next_event += 7;
        }
        if t == 30 {
            g.world.phase = Phase::Ended;
            g.world.phase_end = g.world.tick;
            events.push(ev(
                next_event,
                g.world.tick,
                EventKind::PhaseChanged {
                    phase: Phase::Ended,
                    ends_at: g.world.tick,
                },
            ));
            next_event += 1;
        }
        s.snapshot(&g.world, false, false, events, &params);
    }
    s.frame(
        &ServerMessage::MatchEnded { ranking: vec![RankEntry { rank: 1, player_id: ids[0], name: "ann".into(), score: 15 }, RankEntry { rank: 2, player_id: ids[1], name: "bé".into(), score: 3 }] },
        json!({ "type": "MatchEnded", "ranking": [{"rank": 1, "player_id": ids[0].0, "name": "ann", "score": 15}, {"rank": 2, "player_id": ids[1].0, "name": "bé", "score": 3}] }),
    );
    s.frame(
        &ServerMessage::Pong {
            client_time_us: 123_456_789_012,
            server_tick: Tick(70_000),
        },
        json!({ "type": "Pong", "client_time_us": 123_456_789_012u64, "server_tick": 70_000 }),
    );
    s.frame(
        &ServerMessage::Error {
            code: 1008,
            message: "input flood".into(),
        },
        json!({ "type": "Error", "code": 1008, "message": "input flood" }),
    );
    s.frame(
        &ServerMessage::ChatRejected {
            reason: "rate limit".into(),
        },
        json!({ "type": "ChatRejected", "reason": "rate limit" }),
    );
    out.push(("removals_events_messages", s));

    // Ticks that wrap around u32::MAX, with a projectile in flight across the wrap.
    let mut s = Stream::default();
    let mut g = Game::new(9, params);
    let a = g.add_player("wrap".into());
    g.world.tick = Tick(u32::MAX - 4);
    g.world.phase = Phase::Running;
    g.world.phase_end = Tick(20);
    s.snapshot(&g.world, true, true, vec![], &params);
    for t in 1..=10u32 {
        g.step(|id| {
            (id == a).then_some(InputFrame {
                seq: Seq((u32::MAX - 2).wrapping_add(t)),
                mv: MoveVec { x: 127, y: 0 },
                aim: QAngle::new(256),
                buttons: u8::from(t == 2),
                view_tick: Default::default(),
            })
        });
        s.snapshot(&g.world, false, false, vec![], &params);
    }
    out.push(("wrap_ticks", s));
    out
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("web")
        .join("vectors")
}

#[test]
fn golden_vectors_match_the_codec() {
    let update = std::env::var_os("UPDATE_VECTORS").is_some();
    std::fs::create_dir_all(dir()).expect("vectors dir");
    for (name, s) in cases() {
        let bin = dir().join(format!("{name}.bin"));
        let js = dir().join(format!("{name}.json"));
        let expected = serde_json::to_string_pretty(&s.expected).expect("json") + "\n";
        if update {
            std::fs::write(&bin, &s.bytes).expect("write");
            std::fs::write(&js, &expected).expect("write");
            continue;
        }
        let on_disk = std::fs::read(&bin).unwrap_or_default();
        assert!(
            on_disk == s.bytes && std::fs::read_to_string(&js).unwrap_or_default() == expected,
            "the codec's output for `{name}` changed: run `UPDATE_VECTORS=1 cargo test -p skirmish-server --test vectors`, \
             mirror the change in server/web/protocol.js, and commit both"
        );
    }
}

#[test]
fn the_javascript_decoder_decodes_every_vector() {
    let test = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("web")
        .join("test")
        .join("protocol.test.mjs");
    let out = Command::new("node")
        .arg("--test")
        .arg(&test)
        .output()
        .expect("`node` (Node.js 18 or newer) must be installed to test the JavaScript decoder");
    assert!(
        out.status.success(),
        "the JavaScript decoder disagrees with the golden vectors:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
