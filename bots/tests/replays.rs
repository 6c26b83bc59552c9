//! Replays of matches played by bot swarms (issue 16): UDP bots through a lossy link and
//! aggressive WebSocket bots (firing, tagging, respawning) in recorded matches; every file
//! the server wrote re-simulates bit for bit, checksums, keyframes and final ranking.

use std::time::Duration;

use skirmish_bots::behavior::Behavior;
use skirmish_bots::swarm::{self, SwarmConfig};
use skirmish_server::{Config, Server};

const ADMIN_KEY: &str = "replay-test-key";

fn swarm_config(server: &Server, behavior: Behavior) -> SwarmConfig {
    SwarmConfig {
        base_url: server.base_url(),
        bots: 8,
        match_size: 4,
        duration: Duration::from_secs(3),
        ramp: Duration::from_millis(300),
        warmup: Duration::from_millis(300),
        behavior,
        server_metrics: None,
        seed: 11,
        progress: false,
        tick_hz: 30,
        attackers: 0,
        attack: None,
        admin_key: Some(ADMIN_KEY.into()),
        transport: skirmish_shared::client::Transport::Ws,
        link: skirmish_shared::link_sim::LinkConfig::default(),
        driver_threads: 1,
        verify_every: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_played_by_udp_and_aggressive_bots_replay_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("skirmish-bot-replays-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = Config::ephemeral();
    c.open = false;
    c.admin_key = Some(ADMIN_KEY.into());
    c.no_replays = false;
    c.replay_dir = Some(dir.join("replays"));
    c.no_results_file = false;
    c.results_path = Some(dir.join("results.jsonl"));
    let server = Server::start(c).await.expect("server");

    let mut udp = swarm_config(&server, Behavior::Wander);
    udp.transport = skirmish_shared::client::Transport::Udp;
    udp.link = skirmish_shared::link_sim::LinkConfig {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(10),
        loss: 0.05,
        duplicate: 0.01,
    };
    let report = swarm::run(udp, std::future::pending())
        .await
        .expect("udp swarm");
    assert_eq!(report.bots_on_udp, 8, "{:?}", report.failures);
    let aggressive = swarm_config(&server, Behavior::Aggressive);
    let report = swarm::run(aggressive, std::future::pending())
        .await
        .expect("aggressive swarm");
    assert_eq!(report.bots_connected, 8, "{:?}", report.failures);
    let blocks = server.stats.replay_blocks.get();
    // Shutting down ends the running matches (results kept) and closes their recordings.
    server.shutdown().await.expect("shutdown");

    let files: Vec<_> = std::fs::read_dir(dir.join("replays"))
        .expect("replays written")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        files.len() >= 2,
        "two swarms, two matches at least: {files:?} ({blocks} blocks)"
    );
    let results = dir.join("results.jsonl");
    for f in &files {
        let report = skirmish_server::replay::cli::verify_file(f, Some(&results))
            .unwrap_or_else(|e| panic!("{} does not verify: {e}", f.display()));
        assert!(report.verified.ticks >= 60, "{report:?}");
        assert!(report.verified.checksums >= 2, "{report:?}");
        assert!(report.verified.ranking.is_some(), "ended with a ranking");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
