//! Replays (issue 16): what recording adds to a match, per tick, and what a viewer's seek
//! costs the server. `record tick` is the match task's part of one tick of a 16-player match
//! (taking the consumed inputs, the tick record, and every 150th tick the keyframe);
//! `encode block` is the writer thread's part of one five-second block (bincode, the input
//! stream, DEFLATE), once per 150 ticks; `seek` re-simulates 150 ticks from the nearest
//! keyframe of a five-minute match and encodes them as snapshot messages (what one request
//! of the page's replay viewer costs). Wander workload at 30 Hz.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use skirmish_shared::replay::{Recording, Replay, encode_block};
use skirmish_shared::rules::Params;
use skirmish_shared::tick::Tick;
use skirmish_shared::workload::Wander;
use skirmish_shared::workload::{step_recorded as step, wander_replay};
use skirmish_shared::world::Phase;

fn bench(c: &mut Criterion) {
    let params = Params::new(30);
    let mut g = c.benchmark_group("replay");
    // The match task's share: 149 ordinary ticks and one keyframe in 150 (each iteration is
    // 150 ticks; divide by 150 for one tick, by 16 more for one client).
    g.bench_function("record 150 ticks, 16 players", |b| {
        let mut w = Wander::new(16, 3, params);
        w.game.world.phase = Phase::Running;
        let inputs: Vec<_> = (0..150).map(|_| (step(&mut w), w.game.clone())).collect();
        b.iter_batched(
            || Recording::start(&inputs[0].1, 150),
            |mut rec| {
                let mut blocks = 0;
                for (used, game) in &inputs {
                    blocks += usize::from(rec.tick(used.clone(), game, None).is_some());
                }
                blocks
            },
            BatchSize::SmallInput,
        );
    });
    let file = wander_replay(16, 9000, 1, 0);
    eprintln!(
        "replay: a five-minute 16-player wander match is {} bytes ({:.0} KB per minute)",
        file.len(),
        file.len() as f64 / 5.0 / 1000.0
    );
    let replay = Replay::parse(file).expect("parses");
    let block = replay.block(10).expect("a block");
    g.bench_function("encode block (150 ticks, 16 players)", |b| {
        b.iter(|| encode_block(&block).expect("encodes").len());
    });
    g.bench_function("seek: 150 frames from the middle of 5 minutes", |b| {
        b.iter(|| {
            skirmish_server::replay::routes::frames_body(&replay, Tick(4537), 150)
                .expect("frames")
                .len()
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
