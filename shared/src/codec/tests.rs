use super::*;
use crate::rules::ORB_COUNT;
use proptest::prelude::*;

fn arb_name() -> impl Strategy<Value = Name> {
    "[a-zA-Zé0-9 ]{0,8}".prop_map(|s| Name::new(&s))
}

fn arb_vec(range: i32) -> impl Strategy<Value = QVec> {
    (-range..=range, -range..=range).prop_map(|(x, y)| QVec::new(x, y))
}

fn arb_player(id: u32) -> impl Strategy<Value = PlayerState> {
    (
        arb_name(),
        arb_vec(20_000),
        arb_vec(3_000),
        0u16..AIM_STEPS,
        0u32..100_000,
        any::<u32>(),
        0u16..200,
        0u16..500,
    )
        .prop_map(
            move |(name, pos, vel, aim, score, seq, cooldown, deaths)| PlayerState {
                id: PlayerId(id),
                name,
                pos,
                vel,
                aim: QAngle::new(aim),
                score,
                last_seq: Seq(seq),
                cooldown,
                deaths,
            },
        )
}

fn arb_world(tick: u32) -> impl Strategy<Value = WorldState> {
    let players = proptest::collection::btree_set(0u32..64, 0..20)
        .prop_flat_map(|ids| ids.into_iter().map(arb_player).collect::<Vec<_>>());
    let projectiles = proptest::collection::btree_set(0u32..200, 0..12).prop_flat_map(move |ids| {
        ids.into_iter()
            .map(|id| {
                (0u32..64, arb_vec(16_000), 0u16..AIM_STEPS, 0u32..40).prop_map(
                    move |(owner, origin, aim, age)| Projectile {
                        id,
                        owner: PlayerId(owner),
                        origin,
                        aim: QAngle::new(aim),
                        spawn_tick: Tick(tick.wrapping_sub(age)),
                    },
                )
            })
            .collect::<Vec<_>>()
    });
    let orbs = proptest::collection::vec(arb_vec(16_000), ORB_COUNT..=ORB_COUNT);
    (players, orbs, projectiles, 0u8..4, any::<u32>()).prop_map(
        move |(players, orbs, projectiles, phase, end)| WorldState {
            tick: Tick(tick),
            phase: crate::world::Phase::from_bits(phase),
            phase_end: Tick(end),
            players,
            orbs,
            projectiles,
        },
    )
}

/// A pair of worlds where the second is usually a small change of the first.
fn arb_pair() -> impl Strategy<Value = (WorldState, WorldState)> {
    (any::<u32>(), 1u32..40).prop_flat_map(|(t, age)| {
        let t2 = t.wrapping_add(age);
        (arb_world(t), arb_world(t2), any::<u64>()).prop_map(|(a, mut b, mix)| {
            // Keep some of a's entities unchanged in b so the delta paths are exercised.
            if mix % 2 == 0 {
                b.phase = a.phase;
                b.phase_end = a.phase_end;
                let present: std::collections::BTreeSet<PlayerId> =
                    b.players.iter().map(|p| p.id).collect();
                for p in &a.players {
                    if !present.contains(&p.id) && p.id.0 % 3 != 0 {
                        b.players.push(*p);
                    }
                }
                b.players.sort_by_key(|p| p.id);
                b.orbs[..ORB_COUNT / 2].copy_from_slice(&a.orbs[..ORB_COUNT / 2]);
                for pr in &a.projectiles {
                    if !b.projectiles.iter().any(|x| x.id == pr.id) {
                        b.projectiles.push(*pr);
                    }
                }
                b.projectiles.sort_by_key(|p| p.id);
            }
            (a, b)
        })
    })
}

proptest! {
    #[test]
    fn delta_round_trips((a, b) in arb_pair(), hz in 10u32..=128, with_sum in any::<bool>()) {
        let params = Params::new(hz);
        let sum = with_sum.then(|| b.checksum());
        let bytes = encode(Some(&a), &b, sum, &params);
        let got = decode(Some(&a), b.tick, &bytes, &params).expect("decodes");
        prop_assert_eq!(&got.world, &b);
        prop_assert_eq!(got.verify(), with_sum.then_some(true));
    }

    #[test]
    fn full_round_trips(b in arb_world(77)) {
        let params = Params::default();
        let bytes = encode(None, &b, Some(b.checksum()), &params);
        let got = decode(None, b.tick, &bytes, &params).expect("decodes");
        prop_assert_eq!(&got.world, &b);
        prop_assert_eq!(got.verify(), Some(true));
    }

    #[test]
    fn garbage_never_panics(base in arb_world(10), bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let params = Params::default();
        let _ = decode(Some(&base), Tick(11), &bytes, &params);
        let _ = decode(None, Tick(11), &bytes, &params);
    }

    /// Whatever decodes can be predicted from: a client steps the decoded world with the
    /// shared rules, and no arithmetic there may overflow (debug builds would panic).
    #[test]
    fn whatever_decodes_can_be_simulated(bytes in proptest::collection::vec(any::<u8>(), 0..400), mv in -127i8..=127) {
        let params = Params::default();
        if let Ok(d) = decode(None, Tick(11), &bytes, &params) {
            let input = crate::protocol::InputFrame {
                mv: crate::quant::MoveVec { x: mv, y: mv },
                buttons: crate::rules::BUTTON_FIRE,
                ..Default::default()
            };
            for mut p in d.world.players {
                for _ in 0..3 {
                    crate::sim::apply_input(&mut p, &input, &params);
                }
            }
        }
    }

    #[test]
    fn truncated_snapshots_are_errors((a, b) in arb_pair()) {
        let params = Params::default();
        let bytes = encode(Some(&a), &b, Some(b.checksum()), &params);
        for cut in 0..bytes.len() {
            let whole = Decoded { world: b.clone(), checksum: Some(b.checksum()) };
            let r = decode(Some(&a), b.tick, &bytes[..cut], &params);
            prop_assert!(r.as_ref().ok() != Some(&whole), "a cut at {} decoded as the whole", cut);
        }
    }
}

#[test]
fn a_snapshot_with_an_impossible_velocity_is_refused() {
    let params = Params::default();
    let mut w = WorldState {
        tick: Tick(5),
        ..WorldState::default()
    };
    w.players.push(PlayerState {
        id: PlayerId(1),
        name: "x".into(),
        pos: QVec::new(0, 0),
        vel: QVec::new(i32::MAX / 2, 0),
        aim: QAngle::new(0),
        score: 0,
        last_seq: Seq(0),
        cooldown: 0,
        deaths: 0,
    });
    let bytes = encode(None, &w, None, &params);
    assert!(matches!(
        decode(None, Tick(5), &bytes, &params),
        Err(CodecError::OutOfRange("velocity"))
    ));
}

#[test]
fn baseline_must_precede_the_tick() {
    let params = Params::default();
    let w = WorldState {
        tick: Tick(5),
        ..WorldState::default()
    };
    let bytes = encode(None, &w, None, &params);
    assert!(matches!(
        decode(Some(&w), Tick(5), &bytes, &params),
        Err(CodecError::BadBaseline { .. })
    ));
}

fn wander_worlds(players: usize, ticks: usize) -> Vec<WorldState> {
    crate::workload::Wander::new(players, 42, Params::new(30)).worlds(ticks)
}

#[test]
fn sixteen_player_snapshot_sizes() {
    let params = Params::new(30);
    let worlds = wander_worlds(16, 300);
    let full = encode(None, &worlds[299], Some(worlds[299].checksum()), &params);
    let mut delta_total = 0usize;
    for pair in worlds[1..].windows(2) {
        let bytes = encode(Some(&pair[0]), &pair[1], None, &params);
        let got = decode(Some(&pair[0]), pair[1].tick, &bytes, &params).expect("decodes");
        assert_eq!(got.world, pair[1]);
        delta_total += bytes.len();
    }
    let delta_avg = delta_total as f64 / 298.0;
    // On the wire: bincode envelope (tag, tick, baseline age, length) + 2-byte frame header.
    let wire = |data: Vec<u8>, age| {
        let msg = crate::protocol::ServerMessage::Snapshot(crate::protocol::SnapshotMsg {
            tick: worlds[299].tick,
            baseline_age: age,
            data,
            events: Vec::new(),
        });
        crate::protocol::encode(&msg).len() + 2
    };
    let full_wire = wire(full.clone(), 0);
    let delta_wire = wire(encode(Some(&worlds[298]), &worlds[299], None, &params), 1);
    println!(
        "16 players, 48 orbs, wander workload at 30 Hz: full {} B ({full_wire} B on the wire); \
         delta {delta_avg:.1} B on average over 298 ticks ({delta_wire} B on the wire for the last one)",
        full.len()
    );
    // The point of delta coding: a tick's change costs a fraction of the world.
    assert!(
        delta_avg * 3.0 < full.len() as f64,
        "delta {delta_avg} vs full {}",
        full.len()
    );
}

proptest! {
    /// A player the server leaves out of an update (sends as its prediction) costs one bit,
    /// and the client decodes exactly that prediction.
    #[test]
    fn a_predicted_player_costs_one_bit((a, b) in arb_pair(), hz in 10u32..=128) {
        let params = Params::new(hz);
        let age = b.tick.diff(a.tick);
        let mut held = b.clone();
        for p in &mut held.players {
            if let Some(base) = a.player(p.id).filter(|base| base.name == p.name) {
                *p = predict_player(base, age, &params);
            }
        }
        let bytes = encode(Some(&a), &held, None, &params);
        let got = decode(Some(&a), held.tick, &bytes, &params).expect("decodes");
        prop_assert_eq!(&got.world, &held);
        let mut per_player = 0;
        for p in &held.players {
            let base = a.player(p.id);
            let bits = player_bits(base, p, age, &params);
            if base.is_some_and(|base| base.name == p.name) {
                prop_assert_eq!(bits, 1);
            }
            per_player += bits;
        }
        // What `player_bits` prices is what the players take (up to the shared masks, the
        // removals and the counts, which it leaves out).
        let everything_else = encode(Some(&a), &WorldState { players: Vec::new(), ..held.clone() }, None, &params);
        prop_assert!(bytes.len() * 8 <= per_player + everything_else.len() * 8 + 2 * a.players.len() + 16);
    }

    /// `player_bits` is the exact size of a changed player's entry (mask priced in full).
    #[test]
    fn player_bits_is_the_entrys_size((a, b) in arb_pair()) {
        let params = Params::default();
        let age = b.tick.diff(a.tick);
        // One kept player, alone in both worlds: the snapshot is the header, its entry and
        // the empty sections.
        let (Some(pa), Some(pb)) = (a.players.first(), b.player(a.players.first().map_or(PlayerId(0), |p| p.id))) else {
            return Ok(());
        };
        prop_assume!(pa.name == pb.name);
        let only = |w: &WorldState, p: &PlayerState| WorldState { players: vec![*p], orbs: Vec::new(), projectiles: Vec::new(), ..w.clone() };
        let (wa, wb) = (only(&a, pa), only(&b, pb));
        let mut sink = crate::bits::BitWriter::new();
        encode_players(&mut sink, Some(&wa.players), &wb.players, age, &params, &mut Reuse::None);
        // The count of new players (EG0 of 0) is one bit.
        prop_assert_eq!(sink.bit_len(), player_bits(Some(pa), pb, age, &params) + 1);
    }
}

proptest! {
    /// A client's own view coded from the tick's shared delta is byte for byte what coding it
    /// whole gives, whatever subset it holds, whatever it was sent as a prediction, whatever
    /// its baseline (the residuals are copied only where it held the previous tick's state
    /// and gets the exact state now).
    #[test]
    fn views_from_the_shared_delta_are_the_same_bytes(
        seed in 0u64..1000,
        keep_before in proptest::collection::vec(any::<bool>(), 40),
        keep_now in proptest::collection::vec(0u8..4, 40),
        age in 1u32..3,
    ) {
        let params = Params::new(30);
        let worlds = crate::workload::Wander::new(40, seed, params).worlds(40);
        let (prev, now) = (&worlds[38], &worlds[39]);
        let shared = SharedDelta::encode(Some(prev), now, None, &params);
        prop_assert_eq!(&shared.bytes, &encode(Some(prev), now, None, &params));
        // What the client holds: some players of the tick `age` before.
        let mut base = worlds[39 - age as usize].clone();
        let mut k = 0;
        base.players.retain(|_| { k += 1; keep_before[k - 1] });
        // What it is sent: some players exact, some as its prediction, some left out; and
        // the hints a view gives.
        let mut view = now.clone();
        view.players.clear();
        let mut hints = Vec::new();
        for (i, (p, keep)) in now.players.iter().zip(&keep_now).enumerate() {
            let held = base.player(p.id);
            match keep {
                0 => continue,
                1 => match held {
                    Some(b) => { view.players.push(predict_player(b, age as i32, &params)); hints.push(None); }
                    None => continue,
                },
                _ => {
                    view.players.push(*p);
                    let fresh = age == 1 && held.is_some_and(|b| prev.player(b.id) == Some(b));
                    hints.push(fresh.then_some(i as u16));
                }
            }
        }
        let whole = encode(Some(&base), &view, Some(view.checksum()), &params);
        let copied = encode_view(Some(&base), &view, Some(view.checksum()), &params, &shared, &hints);
        prop_assert_eq!(&copied, &whole);
        for (p, hint) in view.players.iter().zip(&hints) {
            if let Some(i) = hint {
                prop_assert_eq!(shared.player_bits(usize::from(*i), base.player(p.id).expect("held")), Some(player_bits(base.player(p.id), p, 1, &params)));
            }
        }
    }
}
