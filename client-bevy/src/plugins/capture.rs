//! The command line's screenshot (`--screenshot`, `--screenshot-after`,
//! `--exit-after-screenshot`) and timed exit (`--exit-after`, printing a one-line summary:
//! frame rate, corrections, shots, desyncs), both ending through `AppExit`. The window tests
//! and the frame-rate measurements use them.

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, save_to_disk};

use crate::app::ClientOptions;
use crate::plugins::netcode::Netcode;

/// Adds the screenshot and the timed exit: see the module docs.
#[derive(Debug)]
pub struct CapturePlugin;

impl Plugin for CapturePlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Last, (screenshot, exit_after));
    }
}

fn screenshot(
    mut commands: Commands,
    options: Res<ClientOptions>,
    time: Res<Time<Real>>,
    mut taken_at: Local<Option<f64>>,
    mut exit: MessageWriter<AppExit>,
) {
    let (Some(after), Some(path)) = (options.screenshot_after, options.screenshot.clone()) else {
        return;
    };
    let now = time.elapsed_secs_f64();
    match *taken_at {
        None if now >= after.as_secs_f64() => {
            commands
                .spawn(Screenshot::primary_window())
                .observe(save_to_disk(path));
            *taken_at = Some(now);
        }
        Some(at) if options.exit_after_screenshot && now - at > 1.5 && path.exists() => {
            exit.write(AppExit::Success);
        }
        _ => {}
    }
}

/// `--exit-after`: quit on time and say how it went.
fn exit_after(
    options: Res<ClientOptions>,
    netcode: Res<Netcode>,
    time: Res<Time<Real>>,
    mut frames: Local<u64>,
    mut exit: MessageWriter<AppExit>,
) {
    *frames += 1;
    let Some(after) = options.exit_after else {
        return;
    };
    let now = time.elapsed_secs_f64();
    if now < after.as_secs_f64() {
        return;
    }
    let corrections = netcode.prediction.as_ref().map_or(0, |p| p.corrections);
    let (desyncs, decode_errors) = netcode
        .receiver
        .as_ref()
        .map_or((0, 0), |r| (r.desyncs, r.decode_errors));
    let (shots, confirmed, shot_corrections) = netcode
        .shots
        .as_ref()
        .map_or((0, 0, 0), |s| (s.predicted, s.confirmed, s.corrections));
    println!(
        "skirmish-client: {:.1} s, {} frames ({:.1} fps), {} snapshots, {} prediction corrections, {} shots predicted, {} shots confirmed, {} shot corrections, {} rule desyncs of {} steps checked, {} checksum desyncs, {} decode errors, {} resyncs of {} asked",
        now,
        *frames,
        *frames as f64 / now,
        netcode.snapshots,
        corrections,
        shots,
        confirmed,
        shot_corrections,
        netcode.check.desyncs,
        netcode.check.checked,
        desyncs,
        decode_errors,
        netcode.resyncs,
        netcode.resync_requests
    );
    exit.write(AppExit::Success);
}
