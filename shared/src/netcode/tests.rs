use std::collections::VecDeque;

use super::*;
use crate::quant::{MoveVec, QAngle, QVec};
use crate::rng::Rng;
use crate::sim::Game;
use crate::tick::Seq;

/// A server and one client connected by a link with `up`/`down` delays in ticks (plus up to
/// `jitter` extra, never reordering, as over TCP). Returns the client's prediction and the
/// server's final state of the client's player after `ticks` ticks of play and a quiet end,
/// and its shot prediction with the number of shots the server fired for it.
fn play(ticks: u32, up: u32, down: u32, jitter: u32, seed: u64) -> (Prediction, PlayerState) {
    let (p, server, _, _) = play_shooting(ticks, up, down, jitter, seed);
    (p, server)
}

fn play_shooting(
    ticks: u32,
    up: u32,
    down: u32,
    jitter: u32,
    seed: u64,
) -> (Prediction, PlayerState, ShotPrediction, u64) {
    let params = Params::new(30);
    let mut game = Game::new(seed, params);
    let me = game.add_player("me".into());
    for i in 0..3 {
        game.add_player(format!("o{i}").into());
    }
    let mut prediction = Prediction::new(params, me);
    prediction.on_world(&game.world);
    let mut shots = ShotPrediction::new(params, me);
    let mut fired = 0u64;

    let mut rng = Rng::new(seed);
    let mut delay = |base: u32| {
        base + if jitter > 0 {
            rng.range_i32(0, jitter as i32) as u32
        } else {
            0
        }
    };
    let mut to_server: VecDeque<(u32, InputFrame)> = VecDeque::new();
    let mut to_client: VecDeque<(u32, WorldState, usize)> = VecDeque::new();
    let mut queue: VecDeque<InputFrame> = VecDeque::new();
    let mut last_up = 0;
    let mut last_down = 0;
    let mut input_rng = Rng::new(seed ^ 1);
    for now in 1..=ticks + 80 {
        // The client makes an input every tick, applies it and sends it: random ones for
        // `ticks` ticks, then neutral ones while the link drains (a client stops pressing
        // keys; it does not stop sending, or the server would repeat its last input).
        if now <= ticks + 40 {
            let a = QAngle::new(input_rng.range_i32(0, 1023) as u16);
            let playing = now <= ticks;
            let frame = InputFrame {
                seq: Seq(now),
                mv: if playing {
                    MoveVec {
                        x: input_rng.range_i32(-127, 127) as i8,
                        y: input_rng.range_i32(-127, 127) as i8,
                    }
                } else {
                    MoveVec::default()
                },
                aim: a,
                buttons: u8::from(playing && input_rng.range_i32(0, 20) == 0),
                view_tick: Default::default(),
            };
            let shot = prediction.apply_local(frame);
            shots.on_input(frame.seq, shot);
            last_up = (now + delay(up)).max(last_up);
            to_server.push_back((last_up, frame));
        }
        // The server receives what has arrived, then steps one tick (one input per tick).
        while to_server.front().is_some_and(|(at, _)| *at <= now) {
            queue.push_back(to_server.pop_front().expect("front").1);
        }
        let next = queue.pop_front();
        game.step(|id| if id == me { next } else { None });
        // A player's cooldown is reset to its full length on the tick it fires.
        let cooldown = game.world.player(me).map(|p| p.cooldown);
        fired += u64::from(cooldown == Some(params.fire_cooldown_ticks));
        let tags = game
            .events
            .iter()
            .filter(|e| matches!(e, crate::sim::SimEvent::Tagged { shooter, .. } if *shooter == me))
            .count();
        last_down = (now + delay(down)).max(last_down);
        to_client.push_back((last_down, game.world.clone(), tags));
        // The client reconciles with whatever snapshots have arrived.
        while to_client.front().is_some_and(|(at, _, _)| *at <= now) {
            let (_, w, tags) = to_client.pop_front().expect("front");
            for _ in 0..tags {
                shots.on_tagged();
            }
            prediction.on_world(&w);
            shots.on_world(&w);
        }
    }
    for (_, w, tags) in to_client.drain(..) {
        for _ in 0..tags {
            shots.on_tagged();
        }
        prediction.on_world(&w);
        shots.on_world(&w);
    }
    let server = *game.world.player(me).expect("me");
    (prediction, server, shots, fired)
}

#[test]
fn on_a_clean_link_the_prediction_is_never_corrected() {
    let (p, server) = play(300, 4, 4, 0, 7);
    assert_eq!(p.corrections, 0);
    assert_eq!(p.predicted(), Some(&server));
}

#[test]
fn with_latency_and_jitter_reconciliation_ends_bit_identical_to_the_server() {
    for seed in 1..=5 {
        let (p, server) = play(300, 5, 5, 4, seed);
        let predicted = p.predicted().expect("predicted");
        assert_eq!(
            predicted, &server,
            "seed {seed}: {} corrections on the way",
            p.corrections
        );
        assert_eq!(p.unacknowledged().count(), 0);
    }
}

#[test]
fn own_shots_appear_at_once_and_are_confirmed_without_a_correction() {
    for (up, down, jitter) in [(0, 0, 0), (2, 3, 0), (5, 5, 4)] {
        let (_, _, shots, fired) = play_shooting(600, up, down, jitter, 3);
        assert!(fired > 10, "the server fired {fired} shots");
        assert_eq!(
            shots.predicted, fired,
            "every shot the server fired was predicted"
        );
        assert_eq!(shots.corrections, 0, "link {up}/{down}/{jitter}");
        assert!(
            shots.confirmed + 2 >= fired,
            "{} of {fired} seen and confirmed (the rest hit on their first tick)",
            shots.confirmed
        );
    }
}

#[test]
fn a_shot_the_server_fires_elsewhere_or_not_at_all_is_a_correction() {
    let params = Params::new(30);
    let mut game = Game::new(1, params);
    let me = game.add_player("me".into());
    game.world.players[0].pos = QVec::new(500 * POS_SCALE, 500 * POS_SCALE);
    let mut shots = ShotPrediction::new(params, me);
    // Predicted from a place one unit off: the server's shot is the same one, moved.
    let fire = |seq: u32| InputFrame {
        seq: Seq(seq),
        buttons: crate::rules::BUTTON_FIRE,
        ..InputFrame::default()
    };
    shots.on_input(
        Seq(1),
        Some((QVec::new(501 * POS_SCALE, 500 * POS_SCALE), QAngle::new(0))),
    );
    assert_eq!(shots.positions(0.0).len(), 1, "shown the tick it is fired");
    game.step(|_| Some(fire(1)));
    shots.on_world(&game.world);
    assert_eq!(shots.corrections, 1);
    assert_eq!(shots.shots().count(), 1, "no duplicate");
    assert_eq!(
        shots.shots().next().map(|s| s.origin),
        Some(game.world.projectiles[0].origin)
    );
    // Predicted, but the server (cooling down) never fires it: it vanishes.
    shots.on_input(
        Seq(2),
        Some((QVec::new(500 * POS_SCALE, 500 * POS_SCALE), QAngle::new(0))),
    );
    game.step(|_| Some(fire(2)));
    shots.on_world(&game.world);
    assert_eq!(shots.corrections, 2);
    assert_eq!(shots.shots().count(), 1);
}

#[test]
fn shots_made_after_an_unseen_tag_are_cancelled_not_corrected() {
    let params = Params::new(30);
    let mut game = Game::new(1, params);
    let me = game.add_player("me".into());
    let mut shots = ShotPrediction::new(params, me);
    game.step(|_| Some(InputFrame::idle(1)));
    shots.on_input(Seq(1), None);
    shots.on_world(&game.world);
    // We fire with input 2, but the server tagged us at the tick that consumed input 2: a
    // respawned player holds its fire, so the server never fires it.
    let origin = QVec::new(500 * POS_SCALE, 500 * POS_SCALE);
    shots.on_input(Seq(2), Some((origin, QAngle::new(0))));
    game.world.players[0].deaths += 1;
    game.world.players[0].last_seq = Seq(1);
    shots.on_world(&game.world);
    assert_eq!((shots.cancelled, shots.corrections), (1, 0));
    assert_eq!(shots.shots().count(), 0);
}

#[test]
fn a_shot_predicted_to_hit_is_no_longer_drawn() {
    let params = Params::new(30);
    let mut shots = ShotPrediction::new(params, PlayerId(1));
    shots.on_input(
        Seq(1),
        Some((QVec::new(100 * POS_SCALE, 100 * POS_SCALE), QAngle::new(0))),
    );
    for seq in 2..=4 {
        shots.on_input(Seq(seq), None);
    }
    // Three ticks at 20 units a tick: at x = 160.
    let (_, x, _) = shots.positions(0.0)[0];
    assert!((x - 160.0).abs() < 0.5, "{x}");
    assert!(shots.predict_hits(&[(200.0, 100.0)], 0.0).is_empty());
    assert_eq!(shots.predict_hits(&[(175.0, 100.0)], 0.0).len(), 1);
    assert!(shots.positions(0.0).is_empty());
}

#[test]
fn a_correction_is_shown_smoothly() {
    let params = Params::new(30);
    let mut game = Game::new(3, params);
    let me = game.add_player("me".into());
    let mut p = Prediction::new(params, me);
    p.on_world(&game.world);
    let before = p.display(0.0).expect("shown");
    // The server moved us 40 units (a respawn-like jump) without our input.
    game.world.players[0].pos = QVec::new(
        game.world.players[0].pos.x + 40 * 16,
        game.world.players[0].pos.y,
    );
    game.world.tick = Tick(5);
    assert!(p.on_world(&game.world));
    assert_eq!(p.corrections, 1);
    let first = p.display(1.0 / 60.0).expect("shown");
    assert!(
        (first.0 - before.0).abs() < 40.0 * 0.9,
        "no snap: moved {}",
        first.0 - before.0
    );
    let mut last = first;
    for _ in 0..60 {
        last = p.display(1.0 / 60.0).expect("shown");
    }
    let target = game.world.players[0].pos.pos_to_units();
    assert!(
        (last.0 - target.0).abs() < 0.1,
        "converged: {} vs {}",
        last.0,
        target.0
    );
}

/// A world with one player at `x` units, at `tick`.
fn world_at(tick: u32, x: f32) -> WorldState {
    let mut g = Game::new(1, Params::new(30));
    g.add_player("p".into());
    g.world.players[0].pos = QVec::new((x * 16.0) as i32, 500 * 16);
    g.world.players[0].vel = QVec::new(150 * 4, 0);
    g.world.tick = Tick(tick);
    g.world
}

#[test]
fn interpolation_sits_between_the_two_snapshots_around_the_render_time() {
    let mut it = Interpolator::new(30, 0.1);
    // Ticks 30..=40 arrive on time: server time t/30 s, local = server time.
    for t in 30..=40 {
        it.push(
            world_at(t, 100.0 + 5.0 * (t - 30) as f32),
            f64::from(t) / 30.0,
        );
    }
    // At local 40/30 + 0.015 s we draw 0.1 s earlier: between ticks 37 and 38.
    let d = it.sample(40.0 / 30.0 + 0.015);
    let x = d[0].x;
    assert!(
        x > 135.0 && x < 140.0,
        "x {x} between 135 (tick 37) and 140 (tick 38)"
    );
}

#[test]
fn a_lost_snapshot_does_not_make_a_jump() {
    let mut it = Interpolator::new(30, 0.1);
    let mut prev: Option<f32> = None;
    let mut largest_step: f32 = 0.0;
    for t in 30..=60u32 {
        if t != 45 {
            it.push(
                world_at(t, 100.0 + 5.0 * (t - 30) as f32),
                f64::from(t) / 30.0,
            );
        }
        // Draw at 120 frames per second between ticks.
        for f in 0..4 {
            let now = f64::from(t) / 30.0 + f64::from(f) / 120.0;
            if let Some(d) = it.sample(now).first() {
                if let Some(p) = prev {
                    largest_step = largest_step.max((d.x - p).abs());
                }
                prev = Some(d.x);
            }
        }
    }
    // 5 units per tick is 1.25 units per 1/120 s frame.
    assert!(
        largest_step <= 1.3,
        "largest step between frames {largest_step}"
    );
}

#[test]
fn when_snapshots_stop_motion_is_extrapolated_briefly_then_held() {
    let mut it = Interpolator::new(30, 0.1);
    for t in 30..=40u32 {
        it.push(
            world_at(t, 100.0 + 5.0 * (t - 30) as f32),
            f64::from(t) / 30.0,
        );
    }
    let at = |s: f64| it.sample(s)[0].x;
    let last = 150.0; // tick 40
    // 0.2 s after the last snapshot (0.1 s past it at the render delay): extrapolated.
    assert!(at(40.0 / 30.0 + 0.2) > last);
    // Long after: at most 0.25 s of motion at 150 units/s.
    let far = at(40.0 / 30.0 + 5.0);
    assert!(far <= last + 150.0 * 0.25 + 0.01, "bounded: {far}");
    assert_eq!(far, at(40.0 / 30.0 + 9.0), "then held");
}

#[test]
fn the_step_check_agrees_with_the_rules_and_catches_a_different_step() {
    let params = Params::new(30);
    let mut game = Game::new(3, params);
    let me = game.add_player("me".into());
    game.step(|_| None);
    let mut check = StepCheck::default();
    let mut before = game.world.player(me).cloned().expect("me");
    for n in 1..=20u32 {
        let input = InputFrame {
            seq: Seq(n),
            mv: MoveVec {
                x: 127,
                y: (n % 7) as i8 * 10,
            },
            aim: QAngle::new((n * 30 % 1024) as u16),
            buttons: 0,
            view_tick: Default::default(),
        };
        check.sent(input);
        game.step(|_| Some(input));
        let after = game.world.player(me).cloned().expect("me");
        assert_eq!(
            check.check(&before, &after, &params),
            Some(true),
            "tick {n}"
        );
        before = after;
    }
    // A server step that does not follow the rules is a desync.
    let mut wrong = before;
    wrong.last_seq = Seq(21);
    check.sent(InputFrame {
        seq: Seq(21),
        ..InputFrame::default()
    });
    wrong.pos.x += 1;
    assert_eq!(check.check(&before, &wrong, &params), Some(false));
    assert_eq!((check.checked, check.desyncs), (21, 1));
}
