//! Honest bots and every kind of attacker at once against one server on 127.0.0.1:0: the
//! honest bots keep their snapshot rate and latency, and every attacker is dealt with the
//! way the README documents.

use std::sync::Arc;
use std::time::Duration;

use skirmish_bots::behavior::Behavior;
use skirmish_bots::bot::BotConfig;
use skirmish_bots::report::Report;
use skirmish_bots::stats::SwarmStats;
use skirmish_bots::swarm::{self, SwarmConfig};
use skirmish_server::{Config, Server};
use tokio::sync::watch;

const ADMIN_KEY: &str = "attack-test-key";
const TICK_HZ: u32 = 30;

fn honest(server: &Server) -> SwarmConfig {
    SwarmConfig {
        base_url: server.base_url(),
        bots: 16,
        match_size: 8,
        duration: Duration::from_secs(8),
        ramp: Duration::from_millis(800),
        warmup: Duration::from_millis(700),
        behavior: Behavior::Wander,
        server_metrics: None,
        seed: 11,
        progress: false,
        tick_hz: TICK_HZ,
        attackers: 0,
        attack: None,
        admin_key: Some(ADMIN_KEY.into()),
        transport: skirmish_shared::client::Transport::Ws,
        link: skirmish_shared::link_sim::LinkConfig::default(),
        driver_threads: 1,
        verify_every: 1,
    }
}

/// Every attacker kind, in the first match the honest bots play in (the second match has
/// none), started once the honest bots are in; each with its own outcome counts.
fn attackers(
    server: &Server,
    stop: &watch::Receiver<bool>,
) -> Vec<(Behavior, Arc<SwarmStats>, tokio::task::JoinHandle<()>)> {
    let kinds = [
        Behavior::FloodPings,
        Behavior::FloodInputs,
        Behavior::FragmentBomb,
        Behavior::SlowReader,
        Behavior::ReconnectStorm,
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| {
            let stats = Arc::new(SwarmStats::default());
            let cfg = BotConfig {
                base_url: server.base_url(),
                name: format!("attacker{i}"),
                match_id: None, // filled in below, once the honest matches exist
                behavior: kind,
                transport: skirmish_shared::client::Transport::Ws,
                link: skirmish_shared::link_sim::LinkConfig::default(),
                seed: i as u64,
                verify: true,
            };
            let (s, stop) = (stats.clone(), stop.clone());
            let first_match = server.state.registry.clone();
            let task = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1000)).await;
                let mut cfg = cfg;
                cfg.match_id = first_match.list().first().map(|m| m.id);
                skirmish_bots::attack::run(cfg, s, stop).await;
            });
            (kind, stats, task)
        })
        .collect()
}

fn outcomes(stats: &SwarmStats) -> Vec<String> {
    stats
        .attack_outcomes
        .lock()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn summary(r: &Report) -> String {
    format!(
        "{:.2} snapshots/s per bot, input-to-ack p50 {:.1} ms p99 {:.1} ms, {} connected, failures {:?}",
        r.snapshots_per_bot_per_s, r.latency.p50_ms, r.latency.p99_ms, r.bots_connected, r.failures
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_bots_play_on_while_every_attacker_is_closed() {
    let mut c = Config::ephemeral();
    c.tick_hz = TICK_HZ;
    c.open = false;
    c.admin_key = Some(ADMIN_KEY.into());
    c.rate_limit_loopback = true; // the reconnect storm comes from 127.0.0.1 too
    c.api_burst = 40; // the honest bots' matchmaking fits in the burst
    c.write_timeout_ms = 1500; // the slow reader is dropped within the test
    c.send_buffer = Some(4096); // ...and its kernel buffers fill in about a second
    let server = Server::start(c).await.expect("server");

    let clean = swarm::run(honest(&server), std::future::pending())
        .await
        .expect("clean run");
    eprintln!("clean:  {}", summary(&clean));
    assert_eq!(clean.bots_connected, 16, "{:?}", clean.failures);

    let (stop_tx, stop_rx) = watch::channel(false);
    let attacks = attackers(&server, &stop_rx);
    // /healthz answers throughout (printed, not asserted: timings belong to benchmarks).
    let health = {
        let base = server.base_url();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            let mut answered = 0u32;
            while !*stop.borrow_and_update() {
                let t = std::time::Instant::now();
                if let Ok((200, _)) =
                    skirmish_shared::client::http_request(&base, "GET", "/healthz", None).await
                {
                    answered += 1;
                }
                worst = worst.max(t.elapsed());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (answered, worst)
        })
    };
    let attacked = swarm::run(honest(&server), std::future::pending())
        .await
        .expect("attacked run");
    let _ = stop_tx.send(true);
    let attacks: Vec<_> = {
        let mut done = Vec::new();
        for (kind, stats, task) in attacks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
            done.push((kind, stats));
        }
        done
    };
    let (answered, worst) = health.await.expect("health probe");
    eprintln!("attack: {}", summary(&attacked));
    eprintln!("/healthz during the attack: {answered} answers, slowest {worst:?}");
    assert!(answered > 0, "/healthz never answered during the attack");
    eprintln!(
        "slow clients dropped: {}",
        server.stats.slow_clients_dropped.get()
    );
    for (kind, stats) in &attacks {
        eprintln!(
            "  {kind:?}: {:?}",
            stats.attack_outcomes.lock().map(|o| o.clone())
        );
    }

    // The honest bots did not notice.
    assert_eq!(attacked.bots_connected, 16, "{:?}", attacked.failures);
    let rate = f64::from(TICK_HZ);
    assert!(
        attacked.snapshots_per_bot_per_s >= 0.95 * rate,
        "snapshot rate under attack: {}",
        summary(&attacked)
    );
    let two_ticks_ms = 2000.0 / rate;
    assert!(
        attacked.latency.p99_ms <= clean.latency.p99_ms + two_ticks_ms,
        "p99 input-to-ack under attack {:.1} ms vs clean {:.1} ms",
        attacked.latency.p99_ms,
        clean.latency.p99_ms
    );
    assert_eq!(attacked.desyncs + attacked.checksum_desyncs, 0);

    // Every attacker was dealt with as documented.
    for (kind, stats) in &attacks {
        let seen = outcomes(stats);
        let expected = match kind {
            Behavior::FloodPings | Behavior::FloodInputs | Behavior::FragmentBomb => "closed 1008",
            Behavior::SlowReader => "dropped (not reading)",
            Behavior::ReconnectStorm => "http 429",
            _ => unreachable!(),
        };
        assert!(
            seen.iter().any(|o| o.starts_with(expected)),
            "{kind:?}: expected {expected:?}, saw {seen:?}"
        );
    }
    assert!(server.stats.http_rate_limited.get() > 0);
    server.shutdown().await.expect("shutdown");
}
