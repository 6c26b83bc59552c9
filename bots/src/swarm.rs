//! A swarm run: create matches, ramp the bots up, measure a window, stop, report.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;
use tokio::time::Instant;

use skirmish_shared::client::{self, Transport};
use skirmish_shared::link_sim::LinkConfig;

use crate::behavior::Behavior;
use crate::bot::{self, BotConfig};
use crate::driver::{Driver, Joined, NewBot};
use crate::probe::{self, ServerReading};
use crate::report::{Percentiles, Report, ServerUsage};
use crate::stats::SwarmStats;

/// A swarm's settings.
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    pub base_url: String,
    pub bots: usize,
    /// Bots per match (the swarm creates the matches); 0 lets the matchmaker place them.
    pub match_size: usize,
    /// Measurement window, after the ramp and the warm-up.
    pub duration: Duration,
    pub ramp: Duration,
    pub warmup: Duration,
    pub behavior: Behavior,
    /// The server's `/api/stats` URL, to report its CPU and memory.
    pub server_metrics: Option<String>,
    pub seed: u64,
    /// Show live progress on stderr.
    pub progress: bool,
    /// The server's tick rate (for delivery and jitter; read from the first Welcome otherwise).
    pub tick_hz: u32,
    /// Attackers started beside the bots, after the ramp, in the bots' matches.
    pub attackers: usize,
    /// Their behaviour (one of the abuse behaviours).
    pub attack: Option<Behavior>,
    /// The operator key, to create the swarm's matches on a server that is not `--open`.
    pub admin_key: Option<String>,
    /// What the bots play over.
    pub transport: Transport,
    /// A simulated link per packet (UDP only).
    pub link: LinkConfig,
    /// Threads that drive the bots (`--transport udp`, or `ws` over plain http), each
    /// polling its share once per tick.
    pub driver_threads: usize,
    /// One bot in this many decodes and checks its snapshots (1: all).
    pub verify_every: usize,
}

/// Why a swarm could not run.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    #[error("cannot start a bot driver thread: {0}")]
    Driver(#[source] std::io::Error),
    #[error("cannot create a match on {url}: {source}")]
    CreateMatch {
        url: String,
        source: client::ClientError,
    },
}

/// Runs the swarm; `interrupt` ends it early (the report still covers what was measured).
pub async fn run(
    cfg: SwarmConfig,
    interrupt: impl std::future::Future<Output = ()>,
) -> Result<Report, SwarmError> {
    let stats = Arc::new(SwarmStats::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    // UDP bots, and WebSocket bots over plain http, play on driver threads; the runtime only
    // matchmakes and connects. (`auto`, and WebSocket over TLS, keep a task per bot.)
    let drivers_stop = Arc::new(AtomicBool::new(false));
    let driven = cfg.transport == Transport::Udp
        || (cfg.transport == Transport::Ws && !cfg.base_url.starts_with("https"));
    let drivers: Vec<Driver> = if driven {
        (0..cfg.driver_threads.max(1))
            .map(|_| Driver::start(cfg.tick_hz, stats.clone(), drivers_stop.clone()))
            .collect::<Result<_, _>>()
            .map_err(SwarmError::Driver)?
    } else {
        Vec::new()
    };
    let driver_inboxes: Vec<std::sync::mpsc::Sender<NewBot>> =
        drivers.iter().map(|d| d.bots.clone()).collect();

    let mut match_ids = Vec::new();
    if cfg.match_size > 0 {
        for _ in 0..cfg.bots.div_ceil(cfg.match_size) {
            match client::create_match(&cfg.base_url, cfg.admin_key.as_deref()).await {
                Ok(id) => match_ids.push(id),
                // A server without --open needs the operator key to create matches; without
                // one, the matchmaker places the bots (it fills the fullest open match first).
                Err(client::ClientError::Refused {
                    status: 401 | 403,
                    reason,
                }) if cfg.admin_key.is_none() && match_ids.is_empty() => {
                    eprintln!(
                        "skirmish-bots: cannot create matches ({reason}); the matchmaker places the bots (pass --admin-key to choose the matches)"
                    );
                    break;
                }
                Err(source) => {
                    return Err(SwarmError::CreateMatch {
                        url: cfg.base_url.clone(),
                        source,
                    });
                }
            }
        }
    }

    let progress = cfg.progress.then(|| {
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("valid template"),
        );
        pb
    });

    let start = Instant::now();
    let window_start = start + cfg.ramp + cfg.warmup;
    let window_end = window_start + cfg.duration;
    let mut bots = tokio::task::JoinSet::new();
    let spawner = {
        let stats = stats.clone();
        let stop_rx = stop_rx.clone();
        let cfg = cfg.clone();
        async move {
            for i in 0..cfg.bots {
                let at = start + cfg.ramp.mul_f64(i as f64 / cfg.bots.max(1) as f64);
                tokio::time::sleep_until(at).await;
                if *stop_rx.borrow() {
                    break;
                }
                let bc = BotConfig {
                    base_url: cfg.base_url.clone(),
                    name: format!("bot{i}"),
                    match_id: match_ids.get(i / cfg.match_size.max(1)).copied(),
                    behavior: cfg.behavior,
                    transport: cfg.transport,
                    link: cfg.link,
                    seed: cfg
                        .seed
                        .wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                    verify: i % cfg.verify_every.max(1) == 0,
                };
                stats.active.fetch_add(1, Ordering::Relaxed);
                let s = stats.clone();
                let stop = stop_rx.clone();
                let driver = (!driver_inboxes.is_empty())
                    .then(|| driver_inboxes[i % driver_inboxes.len()].clone());
                bots.spawn(async move {
                    if bc.behavior.is_attack() {
                        crate::attack::run(bc, s.clone(), stop).await;
                    } else if let Some(driver) = driver {
                        if hand_to_driver(bc, &s, &driver).await {
                            return; // the driver counts it down when it ends
                        }
                    } else {
                        bot::run(bc, s.clone(), stop).await;
                    }
                    s.active.fetch_sub(1, Ordering::Relaxed);
                });
            }
            // Attackers join once the honest bots are in, spread over the bots' matches.
            if let Some(kind) = cfg.attack {
                tokio::time::sleep_until(start + cfg.ramp).await;
                for i in 0..cfg.attackers {
                    let bc = BotConfig {
                        base_url: cfg.base_url.clone(),
                        name: format!("attacker{i}"),
                        match_id: (!match_ids.is_empty()).then(|| match_ids[i % match_ids.len()]),
                        behavior: kind,
                        transport: Transport::Ws,
                        link: LinkConfig::default(),
                        seed: cfg.seed ^ (i as u64 + 1),
                        verify: true,
                    };
                    let s = stats.clone();
                    let stop = stop_rx.clone();
                    bots.spawn(async move { crate::attack::run(bc, s, stop).await });
                }
            }
            bots
        }
    };
    let spawner = tokio::spawn(spawner);

    // Ticks of live progress until the window opens, through it, or until interrupted.
    tokio::pin!(interrupt);
    let mut window: Option<Mark> = None;
    let mut closed: Option<Mark> = None;
    let mut last = (Instant::now(), stats.counters());
    let mut every = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            () = &mut interrupt => break,
            _ = every.tick() => {}
        }
        let now = Instant::now();
        if window.is_none() && spawner.is_finished() && stats.active.load(Ordering::Relaxed) == 0 {
            break; // nobody left before the window even opened
        }
        if window.is_none() && now >= window_start {
            stats.measuring.store(true, Ordering::Relaxed);
            window = Some(mark(&stats, &cfg).await);
        }
        // Every bot already ended (the server closed them all): stop by ourselves.
        let all_gone = spawner.is_finished() && stats.active.load(Ordering::Relaxed) == 0;
        if window.is_some() && (now >= window_end || all_gone) {
            closed = Some(mark(&stats, &cfg).await);
            break;
        }
        if let Some(pb) = &progress
            && now.duration_since(last.0) >= Duration::from_secs(1)
        {
            let c = stats.counters();
            let dt = now.duration_since(last.0).as_secs_f64();
            let phase = if window.is_some() {
                "measuring"
            } else if now < start + cfg.ramp {
                "ramping"
            } else {
                "warming up"
            };
            pb.set_message(format!(
                "{phase}: connected {} failed {} | {:.0} snapshots/s | {:.2} MB/s in",
                stats.connected.load(Ordering::Relaxed),
                stats.failed.load(Ordering::Relaxed),
                (c.snapshots - last.1.snapshots) as f64 / dt,
                (c.wire_bytes - last.1.wire_bytes) as f64 / dt / 1e6,
            ));
            pb.tick();
            last = (now, c);
        }
    }
    stats.measuring.store(false, Ordering::Relaxed);
    if window.is_some() && closed.is_none() {
        // Interrupted inside the window: report what was measured.
        closed = Some(mark(&stats, &cfg).await);
    }
    let _ = stop_tx.send(true);
    drivers_stop.store(true, Ordering::Relaxed);
    for d in drivers {
        let _ = tokio::task::spawn_blocking(move || d.join()).await;
    }
    if let Ok(mut set) = spawner.await {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while set.join_next().await.is_some() {}
        })
        .await;
        set.abort_all();
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    Ok(report(&cfg, &stats, window, closed))
}

/// Matchmakes and connects (the WebSocket upgrade, or the datagram handshake), then hands
/// the socket to a driver; false (with the failure counted) if that did not work.
async fn hand_to_driver(
    bc: BotConfig,
    stats: &SwarmStats,
    driver: &std::sync::mpsc::Sender<NewBot>,
) -> bool {
    let fail = |why: String| {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        stats.fail(why);
        false
    };
    let mm = match client::matchmake(&bc.base_url, &bc.name, bc.match_id).await {
        Ok(mm) => mm,
        Err(client::ClientError::Refused { status, reason }) => {
            return fail(format!("http {status}: {reason}"));
        }
        Err(e) => return fail(e.to_string()),
    };
    let joined = if bc.transport == Transport::Udp {
        let Some(ticket) = mm.udp else {
            return fail("the server offers no datagram endpoint".into());
        };
        match skirmish_shared::client_udp::connect(&ticket, client::UDP_WAIT).await {
            Ok(session) => Joined::Udp {
                session: Box::new(session),
                link: bc.link,
            },
            Err(e) => return fail(format!("udp: {e}")),
        }
    } else {
        let opts = client::JoinOptions::with_token(bc.base_url.clone(), &mm);
        match client::connect_plain(&opts).await {
            Ok((stream, read_ahead)) => Joined::Ws { stream, read_ahead },
            Err(client::ClientError::Refused { status, reason }) => {
                return fail(format!("http {status}: {reason}"));
            }
            Err(e) => return fail(e.to_string()),
        }
    };
    driver
        .send(NewBot {
            joined,
            behavior: bc.behavior,
            seed: bc.seed,
            verify: bc.verify,
        })
        .is_ok()
        || fail("the bot driver stopped".into())
}

async fn read_server(cfg: &SwarmConfig) -> Option<ServerReading> {
    let url = cfg.server_metrics.as_deref()?;
    match probe::read_server(url).await {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("server metrics: {e}");
            None
        }
    }
}

/// A reading at one edge of the measurement window: when, our counters, our CPU seconds, and
/// the server's figures.
type Mark = (
    Instant,
    crate::stats::Counters,
    Option<f64>,
    Option<ServerReading>,
);

async fn mark(stats: &SwarmStats, cfg: &SwarmConfig) -> Mark {
    (
        Instant::now(),
        stats.counters(),
        probe::own_cpu_seconds(),
        read_server(cfg).await,
    )
}

fn report(cfg: &SwarmConfig, stats: &SwarmStats, start: Option<Mark>, end: Option<Mark>) -> Report {
    let connected = stats.connected.load(Ordering::Relaxed);
    let (window_s, d, bots_cpu, server) = match (start, end) {
        (Some(a), Some(b)) => {
            let secs = b.0.duration_since(a.0).as_secs_f64().max(1e-9);
            let d = crate::stats::Counters {
                snapshots: b.1.snapshots - a.1.snapshots,
                payload_bytes: b.1.payload_bytes - a.1.payload_bytes,
                wire_bytes: b.1.wire_bytes - a.1.wire_bytes,
                upload_bytes: b.1.upload_bytes - a.1.upload_bytes,
                inputs_sent: b.1.inputs_sent - a.1.inputs_sent,
            };
            let bots_cpu = match (a.2, b.2) {
                (Some(x), Some(y)) => (y - x) / secs * 100.0,
                _ => f64::NAN,
            };
            let server = match (a.3, b.3) {
                (Some(x), Some(y)) => match (x.process, y.process) {
                    (Some(px), Some(py)) => {
                        let cpu_pct = (py.cpu_seconds - px.cpu_seconds) / secs * 100.0;
                        let clients = connected.max(1) as f64;
                        Some(ServerUsage {
                            cpu_pct,
                            cpu_us_per_client_per_s: cpu_pct * 1e4 / clients,
                            rss_mib: py.rss_bytes as f64 / (1 << 20) as f64,
                            rss_kib_per_client: py.rss_bytes as f64 / 1024.0 / clients,
                            tick_overruns: y.counters.tick_overruns - x.counters.tick_overruns,
                            ticks_skipped: y.counters.ticks_skipped - x.counters.ticks_skipped,
                            snapshots_skipped: y.counters.snapshots_skipped
                                - x.counters.snapshots_skipped,
                            view_snapshots: y.counters.view_snapshots - x.counters.view_snapshots,
                            view_players_held: y.counters.view_players_held
                                - x.counters.view_players_held,
                            view_longest_wait_ticks: y.counters.view_longest_wait_ticks,
                        })
                    }
                    _ => None,
                },
                _ => None,
            };
            (secs, d, bots_cpu, server)
        }
        _ => (0.0, crate::stats::Counters::default(), f64::NAN, None),
    };
    let per_bot_s = |x: u64| {
        if window_s > 0.0 && connected > 0 {
            x as f64 / connected as f64 / window_s
        } else {
            0.0
        }
    };
    let snapshots_per_bot_per_s = per_bot_s(d.snapshots);
    let lat = stats
        .latency_us
        .lock()
        .map(|h| Percentiles::of(&h))
        .unwrap_or_default();
    let jit = stats
        .jitter_us
        .lock()
        .map(|h| Percentiles::of(&h))
        .unwrap_or_default();
    let gaps = stats
        .gap_ticks
        .lock()
        .map(|h| crate::report::Counts::of(&h))
        .unwrap_or_default();
    let shots_cancelled = stats.shots_cancelled.load(Ordering::Relaxed);
    let (moved, unpredicted, vanished) = (
        stats.shots_moved.load(Ordering::Relaxed),
        stats.shots_unpredicted.load(Ordering::Relaxed),
        stats.shots_vanished.load(Ordering::Relaxed),
    );
    let shots_fired = stats
        .shots
        .load(Ordering::Relaxed)
        .saturating_sub(shots_cancelled);
    Report {
        url: cfg.base_url.clone(),
        transport: cfg.transport.to_string(),
        bots_on_udp: stats.on_udp.load(Ordering::Relaxed),
        verify_every: cfg.verify_every.max(1),
        link: cfg.link.is_active().then_some((
            cfg.link.latency.as_secs_f64() * 1e3,
            cfg.link.jitter.as_secs_f64() * 1e3,
            cfg.link.loss,
            cfg.link.duplicate,
        )),
        behavior: cfg.behavior,
        bots: cfg.bots,
        bots_connected: connected,
        bots_failed: stats.failed.load(Ordering::Relaxed),
        failures: stats.failures.lock().map(|f| f.clone()).unwrap_or_default(),
        match_size: cfg.match_size,
        tick_hz: cfg.tick_hz,
        window_s,
        snapshots_per_bot_per_s,
        delivery: snapshots_per_bot_per_s / f64::from(cfg.tick_hz.max(1)),
        payload_bytes_per_bot_per_s: per_bot_s(d.payload_bytes),
        wire_bytes_per_bot_per_s: per_bot_s(d.wire_bytes),
        upload_bytes_per_bot_per_s: per_bot_s(d.upload_bytes),
        inputs_per_bot_per_s: per_bot_s(d.inputs_sent),
        latency: lat,
        jitter: jit,
        snapshot_gap_ticks: gaps,
        predictions_checked: stats.predictions_checked.load(Ordering::Relaxed),
        desyncs: stats.desyncs.load(Ordering::Relaxed),
        checksum_desyncs: stats.checksum_desyncs.load(Ordering::Relaxed),
        decode_errors: stats.decode_errors.load(Ordering::Relaxed),
        resync_requests: stats.resync_requests.load(Ordering::Relaxed),
        resyncs: stats.resyncs.load(Ordering::Relaxed),
        shots: shots_fired,
        shots_cancelled,
        hits: stats.hits.load(Ordering::Relaxed),
        hit_rate: stats.hits.load(Ordering::Relaxed) as f64 / shots_fired.max(1) as f64,
        shot_corrections: moved + unpredicted + vanished,
        shot_corrections_moved_unpredicted_vanished: (moved, unpredicted, vanished),
        attack: cfg.attack.map(|b| (b, cfg.attackers)),
        attack_outcomes: stats
            .attack_outcomes
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default(),
        bots_cpu_pct: bots_cpu,
        server,
    }
}
