//! `--demo N`: N wandering bots in this process, playing over loopback through matchmaking
//! like any client (the bots crate's library), so the page shows a live match at once. A bot
//! whose match ends joins the next one.

use std::sync::Arc;
use std::time::Duration;

use skirmish_bots::behavior::Behavior;
use skirmish_bots::bot::{self, BotConfig};
use skirmish_bots::stats::SwarmStats;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Starts `count` demo bots against `base_url`; they stop when `shutdown` fires.
pub fn spawn(count: usize, base_url: String, shutdown: CancellationToken, tasks: &TaskTracker) {
    let stats = Arc::new(SwarmStats::default());
    for i in 0..count {
        let (base_url, shutdown, stats) = (base_url.clone(), shutdown.clone(), stats.clone());
        tasks.spawn(async move {
            let (_stop_tx, stop_rx) = watch::channel(false);
            let mut round = 0u64;
            while !shutdown.is_cancelled() {
                let cfg = BotConfig {
                    base_url: base_url.clone(),
                    name: format!("demo{i}"),
                    match_id: None,
                    behavior: Behavior::Wander,
                    // UDP when the datagram endpoint runs, else WebSocket.
                    transport: skirmish_shared::client::Transport::Auto,
                    link: skirmish_shared::link_sim::LinkConfig::default(),
                    seed: (i as u64) << 32 | round,
                    verify: true,
                };
                tokio::select! {
                    () = bot::run(cfg, stats.clone(), stop_rx.clone()) => {}
                    () = shutdown.cancelled() => break,
                }
                round += 1;
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = shutdown.cancelled() => break,
                }
            }
        });
    }
}
