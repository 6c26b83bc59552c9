//! A recorded wander match made without a server: the criterion `replay` bench and the
//! browser seek benchmark (`replay_fixture` binary, `benches/replay_seek.sh`) read it.

use skirmish_shared::protocol::InputFrame;
use skirmish_shared::replay::{
    FORMAT_VERSION, Header, RULES_VERSION, Recording, encode_block, encode_header,
};
use skirmish_shared::rules::Params;
use skirmish_shared::workload::Wander;
use skirmish_shared::world::{Phase, PlayerId};

/// One wander tick; returns the inputs it consumed (what a match records).
pub fn step(w: &mut Wander) -> Vec<(PlayerId, InputFrame)> {
    let frames = w.inputs();
    let ids: Vec<_> = w.game.world.players.iter().map(|p| p.id).collect();
    let mut used = Vec::with_capacity(ids.len());
    w.game.step(|id| {
        let f = ids
            .iter()
            .position(|p| *p == id)
            .and_then(|i| frames.get(i).copied());
        if let Some(f) = f {
            used.push((id, f));
        }
        f
    });
    used
}

/// A replay file of a `ticks`-tick wander match of `players` at 30 Hz (keyframes every five
/// seconds, a checksum every second, as the server records), created at `created_unix_ms`.
#[must_use]
pub fn wander_replay(players: usize, ticks: u32, match_id: u32, created_unix_ms: u64) -> Vec<u8> {
    let params = Params::new(30);
    let mut w = Wander::new(players, 5, params);
    w.game.world.phase = Phase::Running;
    let mut file = encode_header(&Header {
        format: FORMAT_VERSION,
        protocol: skirmish_shared::protocol::PROTOCOL_VERSION,
        rules: RULES_VERSION,
        match_id,
        seed: 5,
        tick_hz: 30,
        created_unix_ms,
        keyframe_every: 150,
        match_size: players as u32,
        view_radius: None,
    });
    let mut rec = Recording::start(&w.game, 150);
    for _ in 0..ticks {
        let used = step(&mut w);
        let sum = w
            .game
            .world
            .tick
            .0
            .is_multiple_of(30)
            .then(|| w.game.world.checksum());
        if let Some(b) = rec.tick(used, &w.game, sum) {
            file.extend(encode_block(&b).unwrap_or_default());
        }
    }
    file.extend(encode_block(&rec.finish(None, false, true)).unwrap_or_default());
    file
}
