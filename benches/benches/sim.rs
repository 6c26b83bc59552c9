//! Simulation: one tick (`Game::step`) of a 16- and a 64-player wander match.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use skirmish_shared::rules::Params;
use skirmish_shared::workload::Wander;

fn sim(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim_tick");
    for players in [16usize, 64] {
        let mut w = Wander::new(players, 42, Params::new(30));
        w.worlds(60); // spread the players out
        group.throughput(Throughput::Elements(players as u64));
        group.bench_with_input(BenchmarkId::from_parameter(players), &players, |b, _| {
            b.iter(|| w.step());
        });
    }
    group.finish();
}

criterion_group!(benches, sim);
criterion_main!(benches);
