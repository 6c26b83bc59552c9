//! The server's own work to fan one tick out, per client, in a form callgrind can count:
//! every player of one wander match gets its tick through its `fanout::Cursor` (its
//! `ClientView`, as a WebSocket player's writer does), with no sockets. Instruction counts
//! are repeatable on a shared, noisy machine where timings are not, so this is how a change
//! to the views is compared with the code before it:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='view_count::measured' \
//!     target/release/view_count --players 128 --radius 250
//! ```
//!
//! The count covers each of the `--ticks` ticks' shared part (the match's delta, its
//! events, the grid) and every client's part (choosing its view, coding it, framing it);
//! divided by `players x ticks` it is the work per client per tick. The kernel's `send`, which this
//! does not include, is the same with and without views (`send_floor`).

use std::sync::{Arc, Mutex};

use anyhow::Result;
use clap::Parser;
use skirmish_server::events::EventLog;
use skirmish_server::fanout::{ClientView, Cursor, TickOutput};
use skirmish_server::interest::Settings;
use skirmish_server::interest::view::DEFAULT_BUDGET;
use skirmish_server::stats::Stats;
use skirmish_shared::quant::POS_SCALE;
use skirmish_shared::rules::Params;
use skirmish_shared::workload::Wander;
use skirmish_shared::world::WorldState;

#[derive(Parser)]
#[command(about = "One match's fan-out, per client and tick, for callgrind")]
struct Args {
    /// Players in the match (each one a client).
    #[arg(long, default_value_t = 128)]
    players: usize,
    /// View radius in world units; none: the whole arena (the shared frame).
    #[arg(long)]
    radius: Option<i32>,
    /// Snapshot budget, bytes per client per tick.
    #[arg(long, default_value_t = DEFAULT_BUDGET)]
    budget: usize,
    /// Ticks fanned out (after 30 to settle the views).
    #[arg(long, default_value_t = 60)]
    ticks: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let params = Params::new(30);
    let worlds: Vec<Arc<WorldState>> = Wander::new(args.players, 7, params)
        .worlds(args.ticks + 31)
        .into_iter()
        .map(Arc::new)
        .collect();
    let interest = Settings {
        radius: args.radius.map(|r| r * POS_SCALE),
        budget: args.budget,
    };
    let worlds = &worlds;
    let outputs = |range: std::ops::Range<usize>| {
        range.map(move |t| {
            let mut out = TickOutput::new(
                worlds[t].clone(),
                Some(&worlds[t - 1]),
                None,
                params,
                Vec::new(),
                1,
            );
            out.interest = interest;
            out
        })
    };
    let (log, stats) = (Mutex::new(EventLog::with_capacity(64)), Stats::default());
    let first = outputs(1..2).next().expect("a tick");
    let mut cursors: Vec<Cursor> = worlds[1]
        .players
        .iter()
        .map(|p| Cursor::welcome(&first, ClientView::new(p.id, Some(p.id))).0)
        .collect();
    let settled = fan_out(outputs(2..31), &mut cursors, &log, &stats);
    let bytes = measured(|| fan_out(outputs(31..31 + args.ticks), &mut cursors, &log, &stats));
    println!(
        "{} players, view {}, budget {} B: {} ticks, {:.0} snapshot bytes per client per tick \
         ({settled} while settling)",
        args.players,
        args.radius.map_or("none".to_string(), |r| r.to_string()),
        args.budget,
        args.ticks,
        bytes as f64 / (args.ticks * cursors.len()) as f64,
    );
    Ok(())
}

/// Runs `f`: the work counted (`--toggle-collect` on this function).
#[inline(never)]
fn measured(f: impl FnOnce() -> usize) -> usize {
    f()
}

/// Publishes each tick and brings every cursor to it; returns the bytes the clients got.
fn fan_out(
    ticks: impl Iterator<Item = TickOutput>,
    cursors: &mut [Cursor],
    log: &Mutex<EventLog>,
    stats: &Stats,
) -> usize {
    let mut bytes = 0;
    for out in ticks {
        for c in cursors.iter_mut() {
            bytes += c.advance(&out, log, stats).map_or(0, |f| f.len());
        }
    }
    bytes
}
