//! One bot: matchmake, connect, then send one input per tick (drift-free, at its own random
//! phase) while a reader task decodes every snapshot, measures input-to-ack latency and
//! jitter, and checks its own player's every step with the shared desync checker
//! (`netcode::StepCheck`).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use skirmish_shared::client::{self, ClientError, Incoming, Receiver, Transport};
use skirmish_shared::link_sim::LinkConfig;
use skirmish_shared::netcode::StepCheck;
use skirmish_shared::protocol::{ClientMessage, ServerMessage};
use skirmish_shared::receiver::{Received, SnapshotReceiver};
use skirmish_shared::rules::Params;
use skirmish_shared::tick::{Seq, Tick};
use skirmish_shared::world::{PlayerId, PlayerState, WorldState};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::behavior::{Behavior, Steering, units};
use crate::stats::SwarmStats;

/// Inputs remembered for latency (about 4 s at 60 Hz).
const INPUT_HISTORY: usize = 256;
/// Samples a bot buffers before taking the histogram lock.
const SAMPLE_BATCH: usize = 64;

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
}

/// What the reader and the input loop share.
#[derive(Debug, Default)]
struct Shared {
    /// Re-simulates our player's steps (the inputs sent, the desyncs found).
    check: StepCheck,
    /// Inputs not yet acknowledged, with their send time.
    pending: VecDeque<(Seq, Instant)>,
    me: Option<(f32, f32)>,
    target: Option<(f32, f32)>,
    /// The snapshot stream broke (checksum mismatch, lost baseline, undecodable): the input
    /// loop sends `RequestFull` before its next input.
    need_full: bool,
}

fn lock(s: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
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
            count_bytes(&stats, n, udp);
            (p, tick_hz, snapshot)
        }
        Ok(Ok((other, _))) => return stats.fail(format!("unexpected first message: {other:?}")),
        Ok(Err(e)) => return fail(&stats, &e),
        Err(_) => return stats.fail("no Welcome within 15 s".into()),
    };
    stats.connected.fetch_add(1, Ordering::Relaxed);
    let params = Params::new(tick_hz);
    let mut worlds = SnapshotReceiver::new(params);
    worlds.receive(&snapshot);
    let shared = Arc::new(Mutex::new(Shared::default()));
    let period = Duration::from_nanos(1_000_000_000 / u64::from(params.tick_hz));
    let reader = tokio::spawn(read_loop(
        rx,
        udp,
        worlds,
        player,
        params,
        period,
        shared.clone(),
        stats.clone(),
    ));

    // One input per tick, drift-free, at a random phase of the tick.
    let mut steering = Steering::new(cfg.behavior, cfg.seed);
    let phase = Duration::from_nanos(cfg.seed % period.as_nanos() as u64);
    let mut ticker = tokio::time::interval_at(Instant::now() + phase, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seq = Seq(0);
    let mut reader = reader;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
            _ = &mut reader => return, // the server closed us; the reader recorded why
        }
        let (me, target) = {
            let s = lock(&shared);
            (s.me, s.target)
        };
        if std::mem::take(&mut lock(&shared).need_full) {
            if tx.send(&ClientMessage::RequestFull).await.is_err() {
                break;
            }
            stats.resync_requests.fetch_add(1, Ordering::Relaxed);
        }
        seq = seq.next();
        let Some(frame) = steering.next(seq, me, target) else {
            continue;
        };
        {
            let mut s = lock(&shared);
            s.check.sent(frame);
            if s.pending.len() == INPUT_HISTORY {
                s.pending.pop_front();
            }
            s.pending.push_back((seq, Instant::now()));
        }
        let msg = ClientMessage::Input {
            frames: vec![frame],
        };
        let before = tx.bytes_sent();
        if tx.send(&msg).await.is_err() {
            break;
        }
        let bytes = if udp {
            tx.bytes_sent() - before
        } else {
            // The frame: header plus the 4-byte mask every client frame carries.
            skirmish_shared::protocol::ws_frame_len(skirmish_shared::protocol::encode(&msg).len())
                as u64
                + 4
        };
        stats.inputs_sent.fetch_add(1, Ordering::Relaxed);
        stats.upload_bytes.fetch_add(bytes, Ordering::Relaxed);
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

/// Counts a message of `payload` bytes: over WebSocket its frame adds a header; over UDP
/// `payload` is the whole sealed datagram already.
fn count_bytes(stats: &SwarmStats, payload: usize, udp: bool) {
    let wire = if udp {
        payload
    } else {
        skirmish_shared::protocol::ws_frame_len(payload)
    };
    stats
        .payload_bytes
        .fetch_add(payload as u64, Ordering::Relaxed);
    stats.wire_bytes.fetch_add(wire as u64, Ordering::Relaxed);
}

/// Reads until the connection ends: decode, check, measure.
#[allow(clippy::too_many_arguments)]
async fn read_loop(
    mut rx: Receiver,
    udp: bool,
    mut worlds: SnapshotReceiver,
    me: PlayerId,
    params: Params,
    period: Duration,
    shared: Arc<Mutex<Shared>>,
    stats: Arc<SwarmStats>,
) {
    let mut last_arrival: Option<Instant> = None;
    let mut latency = Vec::with_capacity(SAMPLE_BATCH);
    let mut jitter = Vec::with_capacity(SAMPLE_BATCH);
    let mut gaps = Vec::with_capacity(SAMPLE_BATCH);
    let mut applied_tick: Option<Tick> = None;
    let mut prev: Option<(Tick, PlayerState)> = None;
    let (mut checksum_desyncs, mut decode_errors) = (0, 0);
    let mut resyncing = false;
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
        count_bytes(&stats, n, udp);
        let ServerMessage::Snapshot(snap) = msg else {
            continue;
        };
        let now = Instant::now();
        stats.snapshots.fetch_add(1, Ordering::Relaxed);
        let measuring = stats.measuring();
        if let Some(t) = last_arrival
            && measuring
        {
            let d = now.duration_since(t).as_micros() as i64 - period.as_micros() as i64;
            jitter.push(d.unsigned_abs());
        }
        last_arrival = Some(now);
        let full = snap.baseline().is_none();
        match worlds.receive(&snap) {
            Received::Applied { tick, .. } => {
                if let Some(t) = applied_tick
                    && measuring
                {
                    gaps.push(tick.diff(t).max(1) as u64);
                }
                applied_tick = Some(tick);
                if resyncing && full {
                    resyncing = false;
                    stats.resyncs.fetch_add(1, Ordering::Relaxed);
                }
            }
            Received::Stale => continue,
            Received::NeedFull { request_full, .. } => {
                // A checksum mismatch, a lost baseline or an undecodable snapshot: counted
                // apart, then a full snapshot is requested.
                stats
                    .checksum_desyncs
                    .fetch_add(worlds.desyncs - checksum_desyncs, Ordering::Relaxed);
                checksum_desyncs = worlds.desyncs;
                stats
                    .decode_errors
                    .fetch_add(worlds.decode_errors - decode_errors, Ordering::Relaxed);
                decode_errors = worlds.decode_errors;
                if request_full {
                    resyncing = true;
                    lock(&shared).need_full = true;
                }
                prev = None;
                continue;
            }
        }
        let Some(world) = worlds.latest() else {
            continue;
        };
        let Some(mine) = world.player(me) else {
            continue;
        };
        {
            let mut s = lock(&shared);
            // Latency: every pending input this snapshot acknowledges.
            while let Some(&(seq, sent)) = s.pending.front() {
                if seq.is_after(mine.last_seq) {
                    break;
                }
                s.pending.pop_front();
                if measuring {
                    latency.push(now.duration_since(sent).as_micros() as u64);
                }
            }
            s.me = Some(units(mine.pos));
            s.target = nearest_other(world, mine);
            if let Some((t, before)) = &prev
                && world.tick.diff(*t) == 1
                && let Some(same) = s.check.check(before, mine, &params)
            {
                stats.predictions_checked.fetch_add(1, Ordering::Relaxed);
                if !same {
                    stats.desyncs.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        prev = Some((world.tick, mine.clone()));
        if latency.len() >= SAMPLE_BATCH {
            SwarmStats::record(&stats.latency_us, &mut latency);
        }
        if jitter.len() >= SAMPLE_BATCH {
            SwarmStats::record(&stats.jitter_us, &mut jitter);
        }
        if gaps.len() >= SAMPLE_BATCH {
            SwarmStats::record(&stats.gap_ticks, &mut gaps);
        }
    }
    SwarmStats::record(&stats.latency_us, &mut latency);
    SwarmStats::record(&stats.jitter_us, &mut jitter);
    SwarmStats::record(&stats.gap_ticks, &mut gaps);
}

fn nearest_other(world: &WorldState, me: &PlayerState) -> Option<(f32, f32)> {
    world
        .players
        .iter()
        .filter(|p| p.id != me.id)
        .min_by_key(|p| p.pos.dist_sq(me.pos))
        .map(|p| units(p.pos))
}
