//! The swarm against a real server on 127.0.0.1:0.

use std::time::Duration;

use skirmish_bots::behavior::Behavior;
use skirmish_bots::swarm::{self, SwarmConfig};
use skirmish_server::{Config, Server};

fn swarm_config(server: &Server, bots: usize, behavior: Behavior) -> SwarmConfig {
    SwarmConfig {
        base_url: server.base_url(),
        bots,
        match_size: 8,
        duration: Duration::from_secs(2),
        ramp: Duration::from_millis(500),
        warmup: Duration::from_millis(500),
        behavior,
        server_metrics: Some(format!("{}/api/stats", server.base_url())),
        seed: 7,
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

const ADMIN_KEY: &str = "swarm-test-key";

async fn token_server() -> Server {
    let mut c = Config::ephemeral();
    c.open = false; // the bots matchmake and join with tokens
    c.admin_key = Some(ADMIN_KEY.into());
    Server::start(c).await.expect("server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wandering_bots_play_with_zero_desyncs_and_a_full_report() {
    let server = token_server().await;
    let report = swarm::run(
        swarm_config(&server, 16, Behavior::Wander),
        std::future::pending(),
    )
    .await
    .expect("swarm runs");
    assert_eq!(report.bots_connected, 16, "{:?}", report.failures);
    assert_eq!(report.bots_failed, 0);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.desyncs, 0);
    assert_eq!(report.checksum_desyncs, 0);
    assert!(
        report.predictions_checked > 16 * 30,
        "{} transitions checked",
        report.predictions_checked
    );
    assert!(
        report.delivery > 0.9 && report.delivery < 1.1,
        "delivery {}",
        report.delivery
    );
    assert!(
        report.latency.samples > 16 * 30,
        "latency samples {}",
        report.latency.samples
    );
    assert!(report.latency.p50_ms > 0.0 && report.latency.p99_ms < 1000.0);
    assert!(report.wire_bytes_per_bot_per_s > report.payload_bytes_per_bot_per_s);
    let server_usage = report.server.expect("server metrics read");
    assert!(server_usage.cpu_pct > 0.0 && server_usage.rss_mib > 0.0);
    let (_, body) =
        skirmish_shared::client::http_request(&server.base_url(), "GET", "/api/matches", None)
            .await
            .expect("list");
    let list: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        list.as_array().expect("array").len(),
        2,
        "16 bots in matches of 8: {list}"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_play_over_udp_through_a_lossy_link_with_zero_desyncs() {
    let server = token_server().await;
    let mut cfg = swarm_config(&server, 16, Behavior::Wander);
    cfg.transport = skirmish_shared::client::Transport::Udp;
    cfg.link = skirmish_shared::link_sim::LinkConfig {
        latency: Duration::from_millis(25),
        jitter: Duration::from_millis(10),
        loss: 0.05,
        duplicate: 0.01,
    };
    let report = swarm::run(cfg, std::future::pending())
        .await
        .expect("swarm runs");
    assert_eq!(report.bots_connected, 16, "{:?}", report.failures);
    assert_eq!(report.bots_on_udp, 16);
    assert_eq!(report.desyncs, 0);
    assert_eq!(report.checksum_desyncs, 0);
    assert_eq!(report.decode_errors, 0);
    assert!(
        report.predictions_checked > 16 * 10,
        "{}",
        report.predictions_checked
    );
    // 5 % of snapshots are lost on the way: about 95 % arrive, and none is waited for.
    assert!(
        report.delivery > 0.85 && report.delivery < 1.05,
        "delivery {}",
        report.delivery
    );
    assert!(
        report.snapshot_gap_ticks.p50 == 1,
        "{:?}",
        report.snapshot_gap_ticks
    );
    assert!(report.snapshot_gap_ticks.samples > 0);
    assert!(
        report.latency.samples > 16 * 30,
        "inputs acknowledged despite the loss"
    );

    // A sample of the bots checks: the rest only count and acknowledge.
    let mut cfg = swarm_config(&server, 16, Behavior::Wander);
    cfg.transport = skirmish_shared::client::Transport::Udp;
    cfg.verify_every = 4;
    let sampled = swarm::run(cfg, std::future::pending())
        .await
        .expect("swarm runs");
    assert_eq!(sampled.bots_connected, 16);
    assert!(
        sampled.delivery > 0.9,
        "every bot counts: {}",
        sampled.delivery
    );
    assert_eq!(sampled.desyncs + sampled.checksum_desyncs, 0);
    assert!(sampled.predictions_checked > 0);
    assert!(
        sampled.predictions_checked < report.predictions_checked / 2,
        "a quarter of the bots check: {} against {}",
        sampled.predictions_checked,
        report.predictions_checked
    );

    // `auto` plays over the shared client, a task per bot: UDP too when it gets through.
    let mut cfg = swarm_config(&server, 8, Behavior::Wander);
    cfg.transport = skirmish_shared::client::Transport::Auto;
    let report = swarm::run(cfg, std::future::pending())
        .await
        .expect("swarm runs");
    assert_eq!(report.bots_on_udp, 8, "{:?}", report.failures);
    assert_eq!(
        report.desyncs + report.checksum_desyncs + report.decode_errors,
        0
    );
    assert!(report.delivery > 0.9, "delivery {}", report.delivery);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_bigger_than_a_datagram_arrive_in_fragments() {
    let mut c = Config::ephemeral();
    c.open = false;
    c.admin_key = Some(ADMIN_KEY.into());
    c.match_size = 64;
    let server = Server::start(c).await.expect("server");
    // 64 players in one match: a full snapshot is about 1,450 bytes, over one datagram.
    let mut cfg = swarm_config(&server, 64, Behavior::Wander);
    cfg.match_size = 64;
    cfg.transport = skirmish_shared::client::Transport::Udp;
    let report = swarm::run(cfg, std::future::pending())
        .await
        .expect("swarm runs");
    assert_eq!(report.bots_connected, 64, "{:?}", report.failures);
    assert!(
        server.stats.udp_fragmented.get() > 0,
        "some packets went in fragments"
    );
    assert_eq!(
        report.desyncs + report.checksum_desyncs + report.decode_errors,
        0
    );
    assert!(report.delivery > 0.9, "delivery {}", report.delivery);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggressive_bots_fire_and_idle_bots_send_nothing() {
    let server = token_server().await;
    let report = swarm::run(
        swarm_config(&server, 8, Behavior::Aggressive),
        std::future::pending(),
    )
    .await
    .expect("swarm runs");
    assert_eq!(report.bots_connected, 8);
    assert_eq!(report.desyncs, 0, "firing is predicted too (cooldown)");
    let report = swarm::run(
        swarm_config(&server, 4, Behavior::Idle),
        std::future::pending(),
    )
    .await
    .expect("swarm runs");
    assert_eq!(report.bots_connected, 4);
    assert_eq!(report.inputs_per_bot_per_s, 0.0);
    assert!(
        report.delivery > 0.9,
        "idle bots still receive: {}",
        report.delivery
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_still_reports_what_it_measured() {
    let server = token_server().await;
    let mut cfg = swarm_config(&server, 8, Behavior::Wander);
    cfg.duration = Duration::from_secs(60);
    let started = std::time::Instant::now();
    let interrupt = tokio::time::sleep(Duration::from_millis(2500));
    let report = swarm::run(cfg, interrupt).await.expect("swarm runs");
    assert!(started.elapsed() < Duration::from_secs(15), "stopped early");
    assert!(
        report.window_s > 0.5 && report.window_s < 3.0,
        "window {}",
        report.window_s
    );
    assert!(report.snapshots_per_bot_per_s > 20.0);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_bots_are_reported_with_the_reason() {
    let mut c = Config::ephemeral();
    c.open = false;
    c.admin_key = Some(ADMIN_KEY.into());
    c.match_size = 4;
    let server = Server::start(c).await.expect("server");
    // Groups of 8 into matches of 4: half the bots are refused by the matchmaker.
    let report = swarm::run(
        swarm_config(&server, 8, Behavior::Wander),
        std::future::pending(),
    )
    .await
    .expect("swarm runs");
    assert_eq!(report.bots_connected, 4);
    assert_eq!(report.bots_failed, 4);
    let (why, n) = report.failures.iter().next().expect("a failure reason");
    assert!(why.starts_with("http 409") && why.contains("full"), "{why}");
    assert_eq!(*n, 4);
    server.shutdown().await.expect("shutdown");
}
