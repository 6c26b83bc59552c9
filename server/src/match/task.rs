//! One match's task: the fixed-timestep clock, the connections' reads and writes each tick,
//! joins and leaves, and the match's life from the phase rules (`phase`) to its results.
//!
//! Each tick: take at most one queued input per player (an empty queue repeats the last
//! input), step the shared rules, move through the phases (waiting, countdown, running,
//! ended), log game events, encode the delta once and publish it on the `watch` channel.
//! Tick `n` is due at `start + n / tick_hz` (integer nanoseconds), so sim time never drifts
//! from wall time; a late loop catches up at most `MAX_CATCH_UP` ticks at once and skips (and
//! counts) the rest.

use skirmish_shared::world::Name;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use skirmish_shared::datagram::play::Notice;
use skirmish_shared::protocol::{EventKind, RankEntry, final_ranking};
use skirmish_shared::rules::Params;
use skirmish_shared::sim::{Game, SimEvent};
use skirmish_shared::world::{Phase, PlayerId, WorldState};

use super::datagrams::Datagrams;
use super::delay::DelayLine;
use super::handle::{MatchCommand, MatchHandle};
use super::jitter::{InputQueue, TRIM_WINDOW};
use super::phase::{PhaseClock, Timings, ticks};
use super::seats::{SeatTable, keep_for_reconnect};
use crate::config::Config;
use crate::context::{LifecycleEvent, ServerContext};
use crate::events::EventLog;
use crate::fanout::TickOutput;
use crate::replay::Recorder;
use crate::replay::recorder::MatchInfo;
use crate::results::MatchResult;

/// Most ticks run back to back when the loop is late.
pub const MAX_CATCH_UP: u64 = 3;
/// Commands queued to a match before senders wait.
const COMMAND_QUEUE: usize = 64;
/// Chat lines queued to a match; more are refused.
const CHAT_QUEUE: usize = 32;
/// Chat lines turned into events per tick.
const CHAT_PER_TICK: usize = 8;

/// Creates match `id` and starts its task; the caller registers the handle.
pub fn spawn(id: u32, seed: u64, config: &Config, ctx: ServerContext) -> Arc<MatchHandle> {
    let params =
        Params::new(config.tick_hz).with_max_rewind_ms(config.max_rewind.as_millis() as u32);
    let hz = params.tick_hz;
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let (chat_tx, chat_rx) = mpsc::channel(CHAT_QUEUE);
    let mut game = Game::new(seed, params);
    game.scoring = false;
    let timings = Timings::new(
        hz,
        config.min_players,
        config.waiting_timeout,
        config.countdown,
        config.match_duration,
    );
    let clock = PhaseClock::start(&timings);
    game.world.phase = clock.phase;
    game.world.phase_end = clock.ends_at;
    let mut first = TickOutput::new(
        Arc::new(game.world.clone()),
        None,
        None,
        params,
        Vec::new(),
        1,
    );
    first.interest = config.interest();
    let first = Arc::new(first);
    let recorder = ctx.replays.clone().and_then(|store| {
        let info = MatchInfo {
            match_id: id,
            seed,
            created_unix_ms: crate::token::unix_now_ms(),
            match_size: config.match_size as u32,
            view_radius: config.view_radius,
        };
        Recorder::start(store, info, &game, ctx.stats.clone())
    });
    let delay_ticks = (config.spectator_delay.as_secs_f64() * f64::from(hz)).round() as usize;
    let (delay, delayed) = if delay_ticks > 0 {
        let (line, rx) = DelayLine::new(delay_ticks, first.clone());
        (Some(line), Some(rx))
    } else {
        (None, None)
    };
    let (out_tx, out_rx) = watch::channel(first);
    let handle = Arc::new(MatchHandle {
        id,
        capacity: config.match_size,
        tick_hz: hz,
        max_spectators: config.max_spectators,
        seats: Mutex::new(SeatTable::new(config.match_size)),
        spectators: Default::default(),
        tick: Default::default(),
        ticked_at_ms: std::sync::atomic::AtomicU64::new(crate::token::unix_now_ms()),
        phase: Default::default(),
        commands: tx,
        chat: chat_tx,
        outputs: out_rx,
        delayed,
        events: Mutex::new(EventLog::default()),
        links: Mutex::default(),
        closed: std::sync::atomic::AtomicBool::new(false),
    });
    ctx.stats.matches.inc();
    let task = MatchTask {
        handle: handle.clone(),
        game,
        commands: rx,
        chat: chat_rx,
        inputs: HashMap::new(),
        outputs: out_tx,
        pending: Vec::new(),
        timings,
        empty_ttl: config.empty_match_ttl(),
        started_at: None,
        departed: Vec::new(),
        datagrams: Datagrams::default(),
        reconnect_grace: config.reconnect_grace,
        interest: config.interest(),
        recorder,
        delay,
        ctx,
        _wake_on_exit: WakeWritersOnDrop(handle.clone()),
    };
    let tasks = task.ctx.tasks.clone();
    tasks.spawn(task.run().instrument(info_span!("match", match_id = id)));
    handle
}

struct MatchTask {
    handle: Arc<MatchHandle>,
    game: Game,
    commands: mpsc::Receiver<MatchCommand>,
    chat: mpsc::Receiver<(PlayerId, String)>,
    inputs: HashMap<PlayerId, InputQueue>,
    outputs: watch::Sender<Arc<TickOutput>>,
    /// Events that happened since the last tick (joins, leaves, chat), logged with the next.
    pending: Vec<EventKind>,
    timings: Timings,
    /// A match with no players for this long closes.
    empty_ttl: Duration,
    /// Wall-clock start of the running phase.
    started_at: Option<(SystemTime, Instant)>,
    /// Players who left while the match ran: (id, name, score), for the ranking.
    departed: Vec<(PlayerId, String, u32)>,
    /// The players who play over UDP (their packets are this task's to read and write).
    datagrams: Datagrams,
    /// How long a seat waits for a player whose connection dropped.
    reconnect_grace: Duration,
    /// What clients see (view radius, snapshot budget).
    interest: crate::interest::Settings,
    /// The match's replay, while it is recorded.
    recorder: Option<Recorder>,
    /// With `--spectator-delay`: the publications spectators have yet to see.
    delay: Option<DelayLine>,
    ctx: ServerContext,
    /// Last field: dropped after `outputs`, so woken writers find the channel closed.
    _wake_on_exit: WakeWritersOnDrop,
}

/// Marks the match closed and wakes every connection's writer when the match task ends
/// (returns or panics).
struct WakeWritersOnDrop(Arc<MatchHandle>);

impl Drop for WakeWritersOnDrop {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.wake_writers();
    }
}

impl MatchTask {
    async fn run(mut self) {
        let hz = u64::from(self.game.params.tick_hz);
        let start = Instant::now();
        let due_at = |n: u64| start + Duration::from_nanos(n * 1_000_000_000 / hz);
        let mut done: u64 = 0;
        let mut empty_since = Some(start);
        info!(tick_hz = hz, "match started");
        loop {
            tokio::select! {
                biased;
                () = self.ctx.shutdown.cancelled() => {
                    if self.game.world.phase == Phase::Running {
                        self.finish(true).await;
                    }
                    break;
                }
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => break,
                },
                () = tokio::time::sleep_until(due_at(done + 1)) => {
                    let elapsed = Instant::now().saturating_duration_since(start);
                    let due = (elapsed.as_nanos() * u128::from(hz) / 1_000_000_000) as u64;
                    let behind = due.saturating_sub(done);
                    if behind > MAX_CATCH_UP {
                        let skip = behind - MAX_CATCH_UP;
                        self.ctx.stats.ticks_skipped.add(skip);
                        done += skip;
                    }
                    while done < due {
                        self.tick();
                        done += 1;
                        if self.game.world.phase == Phase::Ended {
                            break;
                        }
                    }
                    if Instant::now() > due_at(done + 1) {
                        self.ctx.stats.tick_overruns.inc();
                    }
                    if self.game.world.phase == Phase::Ended {
                        self.finish(false).await;
                        break;
                    }
                }
            }
            if self.handle.seats().is_empty() {
                let since = *empty_since.get_or_insert_with(Instant::now);
                // While draining, nobody can join an empty match: close it now.
                let draining = self.ctx.draining.is_cancelled();
                if draining || since.elapsed() >= self.empty_ttl {
                    info!(draining, "match empty, closing");
                    if self.game.world.phase == Phase::Running {
                        self.finish(true).await;
                    }
                    break;
                }
            } else {
                empty_since = None;
            }
        }
        self.datagrams
            .disconnect_all("match closed", &self.ctx.stats);
        self.play_out_delay().await;
        if let Some(r) = self.recorder.take() {
            // Closed without a result (empty while waiting, or shut down before it ran).
            r.finish(&self.game, None, true).await;
        }
        self.handle.closed.store(true, Ordering::Release);
        self.ctx.stats.matches.dec();
        info!(tick = self.game.world.tick.0, "match closed");
    }

    fn command(&mut self, cmd: MatchCommand) {
        match cmd {
            MatchCommand::Join {
                name,
                resume,
                inputs,
                reply,
            } => {
                let player = self.join(name, resume);
                self.inputs.insert(player, InputQueue::new(inputs));
                if reply.send(player).is_err() {
                    // The connection went away while joining.
                    self.leave(player);
                }
            }
            MatchCommand::JoinDatagram {
                resume,
                peer,
                sealer,
                socket,
            } => {
                let player = self.join(peer.name, resume);
                self.handle.seats().set_player(peer.seat, player);
                self.inputs
                    .insert(player, InputQueue::new(peer.inputs.clone()));
                let welcome = Notice::Welcome {
                    player_id: player,
                    match_id: self.handle.id,
                    tick_hz: self.game.params.tick_hz,
                };
                debug!(player_id = player.0, addr = %peer.addr, "player joined over udp");
                self.datagrams
                    .add(peer, *sealer, socket, player, &welcome, &self.ctx.stats);
            }
            MatchCommand::Disconnected { player } => {
                self.inputs.remove(&player);
                self.game.idle_player(player);
                if let Some(r) = &mut self.recorder {
                    r.idled(player);
                }
                self.pending.push(EventKind::Disconnected { player });
            }
            MatchCommand::Leave { player } => self.leave(player),
        }
    }

    /// Adds a player, or brings back `resume` if it is still in the world.
    fn join(&mut self, name: Name, resume: Option<PlayerId>) -> PlayerId {
        match resume.filter(|p| self.game.world.player(*p).is_some()) {
            Some(p) => {
                self.pending.push(EventKind::Reconnected { player: p });
                debug!(player_id = p.0, "player reconnected");
                p
            }
            None => {
                let p = self.game.add_player(name);
                if let Some(r) = &mut self.recorder {
                    r.joined(p, &name);
                }
                self.pending.push(EventKind::Joined {
                    player: p,
                    name: name.to_string(),
                });
                self.lifecycle(LifecycleEvent::PlayerJoined(format!(
                    "{}/{}",
                    self.handle.id, p.0
                )));
                debug!(player_id = p.0, "player joined");
                p
            }
        }
    }

    /// Datagram players: acknowledgements and chat in, sessions that ended out (their seats
    /// kept for a reconnect after a timeout, freed after a disconnect).
    fn read_datagrams(&mut self) {
        let mut chat = Vec::new();
        let gone = self.datagrams.read(std::time::Instant::now(), &mut chat);
        for (from, text) in chat {
            self.pending.push(EventKind::Chat { from, text });
        }
        for g in gone {
            self.ctx.stats.udp_players.dec();
            let keep = keep_for_reconnect(
                g.how == crate::link::End::Abrupt,
                self.reconnect_grace,
                self.game.world.phase,
            );
            if keep {
                self.handle
                    .seats()
                    .disconnect(g.peer.seat, Instant::now() + self.reconnect_grace);
                self.command(MatchCommand::Disconnected { player: g.player });
            } else {
                self.handle.seats().release(g.peer.seat);
                self.leave(g.player);
            }
        }
    }

    fn lifecycle(&self, event: LifecycleEvent) {
        if let Some(tx) = &self.ctx.lifecycle
            && tx.try_send(event).is_err()
        {
            warn!("lifecycle queue full: an orchestrator update was dropped");
        }
    }

    fn leave(&mut self, player: PlayerId) {
        self.inputs.remove(&player);
        if let Some(p) = self.game.world.player(player)
            && self.game.world.phase == Phase::Running
        {
            self.departed.push((player, p.name.to_string(), p.score));
        }
        if self.game.remove_player(player) {
            if let Some(r) = &mut self.recorder {
                r.left(player);
            }
            self.pending.push(EventKind::Left { player });
            self.lifecycle(LifecycleEvent::PlayerLeft(format!(
                "{}/{}",
                self.handle.id, player.0
            )));
            debug!(player_id = player.0, "player left");
        }
    }

    fn tick(&mut self) {
        let started = std::time::Instant::now();
        let prev = self.outputs.borrow().world.clone();

        // Read what every connection sent since the last tick (see `inlet`).
        for link in self.handle.links().iter() {
            link.inlet.poll_reader();
        }
        self.read_datagrams();

        // Seats whose reservation or reconnect window ran out.
        let freed = self.handle.seats().sweep(Instant::now());
        for f in freed {
            if let Some(p) = f.player {
                self.leave(p);
            }
        }
        // Chat lines, bounded per tick.
        for _ in 0..CHAT_PER_TICK {
            match self.chat.try_recv() {
                Ok((from, text)) => self.pending.push(EventKind::Chat { from, text }),
                Err(_) => break,
            }
        }

        let window = ticks(TRIM_WINDOW, self.game.params.tick_hz).max(1);
        let mut trimmed = 0;
        for q in self.inputs.values_mut() {
            trimmed += q.trim(window) as u64;
        }
        self.ctx.stats.inputs_trimmed.add(trimmed);
        let inputs = &self.inputs;
        let recording = self.recorder.is_some();
        let mut consumed = Vec::with_capacity(if recording { self.inputs.len() } else { 0 });
        self.game.step(|id| {
            let input = inputs.get(&id).and_then(|q| q.ring.pop());
            if recording && let Some(i) = input {
                consumed.push((id, i));
            }
            input
        });
        for e in &self.game.events {
            self.pending.push(match *e {
                SimEvent::OrbCollected { player, orb } => EventKind::OrbCollected { player, orb },
                SimEvent::Tagged { shooter, target } => EventKind::Tagged { shooter, target },
            });
        }
        self.advance_phase();
        let out = self.publish(Some(&prev), None);
        if let Some(r) = &mut self.recorder {
            r.tick(consumed, &self.game, out.checksum, &out.events);
        }
        self.handle
            .tick
            .store(self.game.world.tick.0, Ordering::Relaxed);
        self.ctx.stats.ticks.inc();
        let busy = started.elapsed();
        self.ctx.stats.tick_busy_us.add(busy.as_micros() as u64);
        self.ctx.metrics.record_tick(busy.as_secs_f64());
        self.handle
            .ticked_at_ms
            .store(crate::token::unix_now_ms(), Ordering::Relaxed);
    }

    /// Moves through waiting -> countdown -> running -> ended as the phase rules say.
    fn advance_phase(&mut self) {
        let w = &self.game.world;
        let mut clock = PhaseClock {
            phase: w.phase,
            ends_at: w.phase_end,
        };
        let entered = clock.advance(w.tick, w.players.len(), &self.timings);
        self.game.world.phase = clock.phase;
        self.game.world.phase_end = clock.ends_at;
        for PhaseClock { phase, ends_at } in entered {
            self.game.scoring = phase == Phase::Running;
            if phase == Phase::Running {
                self.started_at = Some((SystemTime::now(), Instant::now()));
            }
            self.handle.phase.store(phase.to_bits(), Ordering::Relaxed);
            self.pending
                .push(EventKind::PhaseChanged { phase, ends_at });
            info!(?phase, "phase");
        }
    }

    /// Publishes the world to every connection; returns the publication.
    fn publish(
        &mut self,
        prev: Option<&WorldState>,
        ended: Option<Vec<RankEntry>>,
    ) -> Arc<TickOutput> {
        let world = Arc::new(self.game.world.clone());
        let hz = self.game.params.tick_hz;
        let checksum = world.tick.0.is_multiple_of(hz).then(|| world.checksum());
        let (events, from) = {
            let mut log = self
                .handle
                .events
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let from = log.next_id();
            let events = self
                .pending
                .drain(..)
                .map(|k| log.push(world.tick, k).clone())
                .collect();
            (events, from)
        };
        let mut out = TickOutput::new(world, prev, checksum, self.game.params, events, from);
        out.ended = ended;
        out.interest = self.interest;
        let out = Arc::new(out);
        // Publish first, then offer: a writer that lends its socket after this sees `out`.
        self.outputs.send_replace(out.clone());
        let delayed = self.delay.as_mut().and_then(|d| d.push(out.clone()));
        for link in self.handle.links().iter() {
            let offered = if link.delayed {
                delayed.as_ref()
            } else {
                Some(&out)
            };
            if let Some(o) = offered {
                link.outlet.offer(o, &self.handle.events, &self.ctx.stats);
            }
        }
        self.datagrams.send(&out, true, &self.ctx.stats);
        out
    }

    /// With a spectator delay, after the match: the spectators still watching get the rest of
    /// it, one tick per tick (at most the delay; not while the server shuts down).
    async fn play_out_delay(&mut self) {
        let Some(delay) = &mut self.delay else {
            return;
        };
        let period = Duration::from_nanos(1_000_000_000 / u64::from(self.game.params.tick_hz));
        let mut next = Instant::now();
        while !self.ctx.shutdown.is_cancelled() && self.handle.links().iter().any(|l| l.delayed) {
            let Some(out) = delay.drain_one() else {
                break;
            };
            for link in self.handle.links().iter().filter(|l| l.delayed) {
                link.inlet.poll_reader();
                link.outlet
                    .offer(&out, &self.handle.events, &self.ctx.stats);
            }
            next += period;
            tokio::time::sleep_until(next).await;
        }
    }

    /// After the last publication: resend it to the datagram players until they all
    /// acknowledged the final ranking (at most a second), then say goodbye.
    async fn linger_for_datagram_acks(&mut self) {
        let hz = self.game.params.tick_hz;
        let period = Duration::from_nanos(1_000_000_000 / u64::from(hz));
        for _ in 0..hz {
            if !self.datagrams.awaiting_acks() {
                break;
            }
            tokio::time::sleep(period).await;
            self.read_datagrams();
            let last = self.outputs.borrow().clone();
            self.datagrams.send(&last, false, &self.ctx.stats);
        }
        self.datagrams
            .disconnect_all("match ended", &self.ctx.stats);
    }

    /// The match is over (or cut short): rank, persist the results, tell everyone.
    async fn finish(&mut self, early: bool) {
        let disconnects: HashMap<PlayerId, u32> =
            self.handle.seats().disconnects().into_iter().collect();
        let ranking = final_ranking(&self.game.world, &self.departed);
        let (started_wall, started) = self
            .started_at
            .unwrap_or((SystemTime::now(), Instant::now()));
        let result = MatchResult::assemble(
            self.handle.id,
            &ranking,
            &disconnects,
            (started_wall, started.elapsed()),
            early,
        );
        let store = self.ctx.results.clone();
        match tokio::task::spawn_blocking(move || store.record(result)).await {
            Ok(Ok(())) => info!(players = ranking.len(), early, "results recorded"),
            Ok(Err(e)) => warn!("results not written: {e}"),
            Err(e) => warn!("results task failed: {e}"),
        }
        self.game.world.phase = Phase::Ended;
        self.handle
            .phase
            .store(Phase::Ended.to_bits(), Ordering::Relaxed);
        let prev = self.outputs.borrow().world.clone();
        self.publish(Some(&prev), Some(ranking.clone()));
        if let Some(r) = self.recorder.take() {
            r.finish(&self.game, Some(ranking), early).await;
        }
        self.linger_for_datagram_acks().await;
    }
}
