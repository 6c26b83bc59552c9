//! Snapshot codec: encode and decode a tick-to-tick delta and a full snapshot of the wander
//! workload for 16, 64 and 256 players (48 orbs), with the bytes per snapshot printed beside.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use skirmish_shared::codec::{decode, encode};
use skirmish_shared::rules::Params;
use skirmish_shared::workload::Wander;

fn codec(c: &mut Criterion) {
    let params = Params::new(30);
    let mut group = c.benchmark_group("codec");
    for players in [16usize, 64, 256] {
        let worlds = Wander::new(players, 42, params).worlds(120);
        let (base, cur) = (&worlds[118], &worlds[119]);
        let delta = encode(Some(base), cur, None, &params);
        let full = encode(None, cur, Some(cur.checksum()), &params);
        eprintln!(
            "codec: {players} players: delta {} B, full {} B",
            delta.len(),
            full.len()
        );
        group.throughput(Throughput::Elements(players as u64));
        group.bench_with_input(
            BenchmarkId::new("encode_delta", players),
            &players,
            |b, _| {
                b.iter(|| encode(Some(base), cur, None, &params));
            },
        );
        group.bench_with_input(
            BenchmarkId::new("decode_delta", players),
            &players,
            |b, _| {
                b.iter(|| decode(Some(base), cur.tick, &delta, &params).expect("decodes"));
            },
        );
        group.bench_with_input(
            BenchmarkId::new("encode_full", players),
            &players,
            |b, _| {
                b.iter(|| encode(None, cur, Some(cur.checksum()), &params));
            },
        );
        group.bench_with_input(
            BenchmarkId::new("decode_full", players),
            &players,
            |b, _| {
                b.iter(|| decode(None, cur.tick, &full, &params).expect("decodes"));
            },
        );
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
