//! One bot over the shared client (a task per bot, either transport): matchmake, connect,
//! then send one input per tick (drift-free, at its own random phase) while a reader task
//! hands every snapshot to the bot's [`Brain`]. The driver (`driver`) runs the same brain
//! for many bots on one thread.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use skirmish_shared::client::{self, ClientError, Incoming, Receiver, Transport};
use skirmish_shared::link_sim::LinkConfig;
use skirmish_shared::protocol::{ClientMessage, ServerMessage};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::behavior::Behavior;
use crate::brain::Brain;
use crate::stats::SwarmStats;

/// Where and how one bot plays.
#[derive(Debug, Clone)]
pub struct BotConfig {
    pub base_url: String,
    pub name: String,
    pub match_id: Option<u32>,
    pub behavior: Behavior,
    /// What to play over, and the simulated link per packet (UDP).
    pub transport: Transport,
    pub link: LinkConfig,
    pub seed: u64,
    /// Decode and check every snapshot (latency, desyncs). A bot that does not still acks
    /// and sends its inputs, so the server's work is the same: a swarm can check a sample
    /// of its bots and drive more of them from one core.
    pub verify: bool,
}

fn lock(b: &Mutex<Brain>) -> std::sync::MutexGuard<'_, Brain> {
    b.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs one bot until `stop` turns true (or the server ends it).
pub async fn run(cfg: BotConfig, stats: Arc<SwarmStats>, mut stop: watch::Receiver<bool>) {
    let mm = match client::matchmake(&cfg.base_url, &cfg.name, cfg.match_id).await {
        Ok(mm) => mm,
        Err(e) => return fail(&stats, &e),
    };
    let conn = tokio::select! {
        c = client::connect_transport(&cfg.base_url, &mm, cfg.transport, cfg.link) => c,
        _ = stop.wait_for(|s| *s) => return,
    };
    let (mut rx, mut tx) = match conn {
        Ok(c) => c.split(),
        Err(e) => return fail(&stats, &e),
    };
    let udp = tx.transport() == Transport::Udp;
    if udp {
        stats.on_udp.fetch_add(1, Ordering::Relaxed);
    }
    let welcome = tokio::time::timeout(Duration::from_secs(15), rx.recv_message()).await;
    let (player, tick_hz, snapshot) = match welcome {
        Ok(Ok((
            ServerMessage::Welcome {
                player_id: Some(p),
                tick_hz,
                snapshot,
                ..
            },
            n,
        ))) => {
            stats.count_received(n, udp);
            (p, tick_hz, snapshot)
        }
        Ok(Ok((other, _))) => return stats.fail(format!("unexpected first message: {other:?}")),
        Ok(Err(e)) => return fail(&stats, &e),
        Err(_) => return stats.fail("no Welcome within 15 s".into()),
    };
    stats.connected.fetch_add(1, Ordering::Relaxed);
    let brain = Arc::new(Mutex::new(Brain::new(
        player,
        tick_hz,
        &snapshot,
        cfg.behavior,
        cfg.seed,
        cfg.verify,
    )));
    let period = lock(&brain).period();
    let mut reader = tokio::spawn(read_loop(rx, udp, brain.clone(), stats.clone()));

    // One input per tick, drift-free, at a random phase of the tick.
    let phase = Duration::from_nanos(cfg.seed % period.as_nanos() as u64);
    let mut ticker = tokio::time::interval_at(Instant::now() + phase, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    'ticks: loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
            _ = &mut reader => return, // the server closed us; the reader recorded why
        }
        let messages = lock(&brain).tick(std::time::Instant::now(), &stats);
        for msg in messages {
            let before = tx.bytes_sent();
            if tx.send(&msg).await.is_err() {
                break 'ticks;
            }
            if !matches!(msg, ClientMessage::Input { .. }) {
                continue;
            }
            let bytes = if udp {
                tx.bytes_sent() - before
            } else {
                // The frame: header plus the 4-byte mask every client frame carries.
                skirmish_shared::protocol::ws_frame_len(
                    skirmish_shared::protocol::encode(&msg).len(),
                ) as u64
                    + 4
            };
            stats.inputs_sent.fetch_add(1, Ordering::Relaxed);
            stats.upload_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }
    // Leave politely and wait (briefly) for the server's answer.
    let _ = tx.close(1000, "bot done").await;
    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
}

fn fail(stats: &SwarmStats, e: &ClientError) {
    stats.failed.fetch_add(1, Ordering::Relaxed);
    stats.fail(match e {
        ClientError::Refused { status, reason } => format!("http {status}: {reason}"),
        ClientError::Closed { code, reason } => format!("closed {code}: {reason}"),
        ClientError::Connect(e) => format!("connect: {}", e.kind()),
        other => other.to_string(),
    });
}

/// Reads until the connection ends, handing each snapshot to the brain.
async fn read_loop(mut rx: Receiver, udp: bool, brain: Arc<Mutex<Brain>>, stats: Arc<SwarmStats>) {
    loop {
        let (msg, n) = match rx.recv().await {
            Ok(Incoming::Message(m, n)) => (m, n),
            Ok(Incoming::Close { code, reason }) => {
                if code != 1000 || !reason.is_empty() {
                    stats.fail(format!("closed {code}: {reason}"));
                }
                break;
            }
            Err(e) => {
                stats.fail(format!("connection lost: {e}"));
                break;
            }
        };
        stats.count_received(n, udp);
        if let ServerMessage::Snapshot(snap) = msg {
            lock(&brain).on_snapshot(&snap, std::time::Instant::now(), &stats);
        }
    }
    lock(&brain).flush(&stats);
}
