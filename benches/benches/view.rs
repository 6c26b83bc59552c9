//! Interest management (issue 15): assembling one client's snapshot in a big match, the
//! per-client work a view adds to a tick. One iteration is one client's tick: choose what it
//! sees and gets exactly (`interest::View::select`) and code that against the view it was
//! sent the tick before (`codec::encode`). Against it: encoding the whole match's delta once
//! (what every client shares without interest management), and putting the tick's entities
//! in cells (once per tick, with a view radius). Wander workload at 30 Hz, steady state (the
//! views are run for 100 ticks first).

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use skirmish_server::interest::view::TickParts;
use skirmish_server::interest::{Settings, View};
use skirmish_shared::codec;
use skirmish_shared::rules::Params;
use skirmish_shared::workload::Wander;
use skirmish_shared::world::{PlayerId, WorldState};

/// A view run through `worlds[..100]`, and what it sent last.
fn warmed(worlds: &[WorldState], settings: &Settings, params: &Params) -> (View, WorldState) {
    let me = PlayerId(1);
    let mut view = View::default();
    let mut held: Option<WorldState> = None;
    for w in &worlds[..100] {
        let center = w.player(me).map(|p| p.pos);
        let parts = TickParts::new(w, settings.radius, params);
        let frame = parts.frame(w, None, params);
        let sel = view.select(held.as_ref(), &frame, center, Some(me), settings);
        held = Some(sel.world);
    }
    (view, held.expect("100 ticks"))
}

fn bench(c: &mut Criterion) {
    let params = Params::new(30);
    let mut g = c.benchmark_group("view");
    for (players, radius, budget) in [
        (16, None, 2048),
        (128, None, 2048),
        (128, Some(250), 2048),
        (256, None, 600),
        (256, Some(250), 600),
    ] {
        let worlds = Wander::new(players, 7, params).worlds(101);
        let settings = Settings {
            radius: radius.map(|r| r * 16),
            budget,
        };
        let label = format!(
            "{players} players, view {}, budget {budget} B",
            radius.map_or("whole arena".to_string(), |r| r.to_string())
        );
        let now = &worlds[100];
        let parts = TickParts::new(now, settings.radius, &params);
        let shared = codec::SharedDelta::encode(Some(&worlds[99]), now, None, &params);
        let frame = parts.frame(now, Some(&shared), &params);
        g.bench_function(format!("one client's snapshot: {label}"), |b| {
            b.iter_batched(
                || warmed(&worlds, &settings, &params),
                |(mut view, held)| {
                    let center = now.player(PlayerId(1)).map(|p| p.pos);
                    let sel =
                        view.select(Some(&held), &frame, center, Some(PlayerId(1)), &settings);
                    codec::encode_view(Some(&held), &sel.world, None, &params, &shared, &sel.hints)
                },
                BatchSize::LargeInput,
            );
        });
        if radius.is_some() {
            // The tick's cells (the grid every view of the tick looks into), built once per
            // tick; the whole delta is the same with or without a radius.
            g.bench_function(format!("the tick's cells, once: {label}"), |b| {
                b.iter(|| TickParts::new(now, settings.radius, &params));
            });
            continue;
        }
        g.bench_function(
            format!("the whole match's delta, once: {players} players"),
            |b| {
                b.iter(|| codec::encode(Some(&worlds[99]), now, None, &params));
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
