//! One match: a tokio task running the fixed-timestep loop.
//!
//! Each tick: consume at most one queued input per player (an empty queue repeats the last
//! input), step the shared rules, encode the delta once, publish it on the `watch` channel.
//! Tick `n` is due at `start + n / tick_hz` (integer nanoseconds), so sim time never drifts
//! from wall time; a late loop catches up at most `MAX_CATCH_UP` ticks at once and skips
//! (and counts) the rest.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span};

use skirmish_shared::protocol::InputFrame;
use skirmish_shared::rules::Params;
use skirmish_shared::sim::Game;
use skirmish_shared::world::{PlayerId, WorldState};

use crate::config::Config;
use crate::fanout::TickOutput;
use crate::registry::{MatchHandle, Registry};
use crate::stats::Stats;

/// Most ticks run back to back when the loop is late.
pub const MAX_CATCH_UP: u64 = 3;
/// Commands queued to a match before senders wait.
const COMMAND_QUEUE: usize = 64;

/// Requests to a match task.
#[derive(Debug)]
pub enum MatchCommand {
    /// Add a player; it appears in the next tick's world.
    Join {
        name: Arc<str>,
        inputs: mpsc::Receiver<InputFrame>,
        reply: oneshot::Sender<Joined>,
    },
    /// Remove a player.
    Leave { player: PlayerId },
}

/// A successful join.
#[derive(Debug)]
pub struct Joined {
    pub player: PlayerId,
    pub outputs: watch::Receiver<Arc<TickOutput>>,
}

/// Shared services a match needs.
#[derive(Debug, Clone)]
pub struct MatchContext {
    pub registry: Arc<Registry>,
    pub stats: Arc<Stats>,
    pub shutdown: CancellationToken,
}

/// Creates match `id`, registers it and starts its task.
pub fn spawn_match(id: u32, seed: u64, config: &Config, ctx: MatchContext) -> Arc<MatchHandle> {
    let params = Params::new(config.tick_hz);
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let handle = Arc::new(MatchHandle {
        id,
        capacity: config.match_size,
        tick_hz: params.tick_hz,
        seats: Default::default(),
        tick: Default::default(),
        commands: tx,
    });
    ctx.registry.insert(handle.clone());
    ctx.stats.matches.inc();
    let game = Game::new(seed, params);
    let task = MatchTask {
        handle: handle.clone(),
        game,
        commands: rx,
        seats: HashMap::new(),
        outputs: watch::channel(Arc::new(TickOutput::new(
            Arc::new(WorldState::default()),
            None,
            None,
            params,
        )))
        .0,
        ttl: config.empty_match_ttl(),
        ctx,
    };
    tokio::spawn(task.run().instrument(info_span!("match", match_id = id)));
    handle
}

struct MatchTask {
    handle: Arc<MatchHandle>,
    game: Game,
    commands: mpsc::Receiver<MatchCommand>,
    seats: HashMap<PlayerId, mpsc::Receiver<InputFrame>>,
    outputs: watch::Sender<Arc<TickOutput>>,
    ttl: Duration,
    ctx: MatchContext,
}

impl MatchTask {
    async fn run(mut self) {
        let hz = u64::from(self.game.params.tick_hz);
        self.publish(None);
        let start = Instant::now();
        let due_at = |n: u64| start + Duration::from_nanos(n * 1_000_000_000 / hz);
        let mut done: u64 = 0;
        let mut empty_since = Some(start);
        info!(tick_hz = hz, "match started");
        loop {
            tokio::select! {
                biased;
                () = self.ctx.shutdown.cancelled() => break,
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => break,
                },
                () = tokio::time::sleep_until(due_at(done + 1)) => {
                    let now = Instant::now();
                    let elapsed = now.saturating_duration_since(start);
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
                    }
                    if Instant::now() > due_at(done + 1) {
                        self.ctx.stats.tick_overruns.inc();
                    }
                }
            }
            if self.seats.is_empty() {
                let since = *empty_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.ttl {
                    info!("match empty for {:?}, closing", self.ttl);
                    break;
                }
            } else {
                empty_since = None;
            }
        }
        self.ctx.registry.remove(self.handle.id);
        self.ctx.stats.matches.dec();
        info!(tick = self.game.world.tick.0, "match closed");
    }

    fn command(&mut self, cmd: MatchCommand) {
        match cmd {
            MatchCommand::Join {
                name,
                inputs,
                reply,
            } => {
                let player = self.game.add_player(name);
                self.seats.insert(player, inputs);
                debug!(player_id = player.0, "player joined");
                let joined = Joined {
                    player,
                    outputs: self.outputs.subscribe(),
                };
                if reply.send(joined).is_err() {
                    // The connection went away while joining.
                    self.leave(player);
                }
            }
            MatchCommand::Leave { player } => self.leave(player),
        }
    }

    fn leave(&mut self, player: PlayerId) {
        if self.seats.remove(&player).is_some() {
            self.game.remove_player(player);
            debug!(player_id = player.0, "player left");
        }
    }

    fn tick(&mut self) {
        let started = std::time::Instant::now();
        let prev = self.outputs.borrow().world.clone();
        let seats = &mut self.seats;
        self.game
            .step(|id| seats.get_mut(&id).and_then(|q| q.try_recv().ok()));
        self.publish(Some(&prev));
        self.handle
            .tick
            .store(self.game.world.tick.0, Ordering::Relaxed);
        self.ctx.stats.ticks.inc();
        self.ctx
            .stats
            .tick_busy_us
            .add(started.elapsed().as_micros() as u64);
    }

    fn publish(&mut self, prev: Option<&WorldState>) {
        let world = Arc::new(self.game.world.clone());
        let hz = self.game.params.tick_hz;
        let checksum = world.tick.0.is_multiple_of(hz).then(|| world.checksum());
        let out = TickOutput::new(world, prev, checksum, self.game.params);
        self.outputs.send_replace(Arc::new(out));
    }
}
