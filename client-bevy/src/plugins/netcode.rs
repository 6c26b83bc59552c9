//! The netcode, as a resource: the snapshot receiver (decode against the baseline, checksum),
//! the own player's prediction and shots, the interpolation of everything else and the
//! desync checker, all from `skirmish_shared::netcode` (sans-IO). Server messages come in
//! as [`FromServer`]; game events go out as [`Happened`] for the feed and the effects.

use bevy::prelude::*;
use skirmish_shared::netcode::{Interpolator, Prediction, ShotPrediction, StepCheck};
use skirmish_shared::protocol::{ClientMessage, EventKind, GameEvent, ServerMessage, SnapshotMsg};
use skirmish_shared::receiver::{Received, SnapshotReceiver};
use skirmish_shared::rules::Params;
use skirmish_shared::tick::Tick;
use skirmish_shared::world::{PlayerId, PlayerState, WorldState};

use crate::app::Screen;
use crate::plugins::session::{FromServer, Session, SessionSet};

/// Interpolation delay in snapshot intervals.
pub const INTERP_INTERVALS: f64 = 3.0;

/// Adds the netcode: see the module docs.
#[derive(Debug)]
pub struct NetcodePlugin;

impl Plugin for NetcodePlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Netcode>()
            .add_message::<Happened>()
            .add_systems(PreUpdate, apply_messages.after(SessionSet))
            .add_systems(OnEnter(Screen::Menu), |mut n: ResMut<Netcode>| {
                *n = Netcode::default();
            });
    }
}

/// A game event from the server (after the snapshot it came with was applied).
#[derive(Message, Debug, Clone)]
pub struct Happened(pub GameEvent);

/// Everything the client knows about the match.
#[derive(Resource, Default, Debug)]
pub struct Netcode {
    /// The own player (`None` while watching).
    pub me: Option<PlayerId>,
    pub tick_hz: u32,
    pub receiver: Option<SnapshotReceiver>,
    pub prediction: Option<Prediction>,
    pub shots: Option<ShotPrediction>,
    pub interp: Option<Interpolator>,
    /// The shared desync checker over the own player's steps, and its last step.
    pub check: StepCheck,
    last_mine: Option<(Tick, PlayerState)>,
    pub next_seq: u32,
    pub snapshots: u64,
    /// Full snapshots asked for after the stream broke, and received.
    pub resync_requests: u64,
    pub resyncs: u64,
    awaiting_full: bool,
    pub ping_ms: Option<f64>,
}

impl Netcode {
    /// The latest world received.
    #[must_use]
    pub fn latest(&self) -> Option<&WorldState> {
        self.interp.as_ref().and_then(Interpolator::latest)
    }

    /// The match's rules (as far as the client needs them).
    #[must_use]
    pub fn params(&self) -> Params {
        Params::new(self.tick_hz)
    }

    /// A welcome: `me` at `tick_hz`. After a reconnect the input sequence goes on where it
    /// was (the server ignores inputs at or before the last one it applied), and so do the
    /// counters.
    fn welcome(&mut self, me: Option<PlayerId>, tick_hz: u32) {
        let params = Params::new(tick_hz);
        let tick_hz = params.tick_hz; // clamped to the rules' range
        self.me = me;
        self.tick_hz = tick_hz;
        self.receiver = Some(SnapshotReceiver::new(params));
        self.prediction = me.map(|p| Prediction::new(params, p));
        self.shots = me.map(|p| ShotPrediction::new(params, p));
        self.interp = Some(Interpolator::new(
            tick_hz,
            INTERP_INTERVALS / f64::from(tick_hz),
        ));
        self.last_mine = None;
        self.awaiting_full = false;
    }

    /// Applies one snapshot received at `now` (seconds); returns whether the stream broke
    /// and a full snapshot should be asked for.
    pub fn apply_snapshot(&mut self, s: &SnapshotMsg, now: f64) -> bool {
        self.snapshots += 1;
        if let (Some(shots), Some(me)) = (self.shots.as_mut(), self.me) {
            for e in &s.events {
                if matches!(e.kind, EventKind::Tagged { shooter, .. } if shooter == me) {
                    shots.on_tagged();
                }
            }
        }
        let Some(receiver) = self.receiver.as_mut() else {
            return false;
        };
        let full = s.baseline().is_none();
        match receiver.receive(s) {
            Received::Applied { .. } => {
                if self.awaiting_full && full {
                    self.awaiting_full = false;
                    self.resyncs += 1;
                }
                let Some(world) = receiver.latest().cloned() else {
                    return false;
                };
                if let Some(p) = self.prediction.as_mut() {
                    p.on_world(&world);
                }
                if let Some(shots) = self.shots.as_mut() {
                    shots.on_world(&world);
                }
                if let Some(mine) = self.me.and_then(|me| world.player(me)).cloned() {
                    if let Some((t, before)) = self.last_mine.take()
                        && world.tick.diff(t) == 1
                    {
                        let _ = self.check.check(&before, &mine, &self.params());
                    }
                    self.last_mine = Some((world.tick, mine));
                }
                if let Some(i) = self.interp.as_mut() {
                    i.push(world, now);
                }
                false
            }
            Received::NeedFull {
                request_full: true, ..
            } if !self.awaiting_full => {
                self.resync_requests += 1;
                self.awaiting_full = true;
                true
            }
            _ => false,
        }
    }
}

fn apply_messages(
    mut messages: MessageReader<FromServer>,
    mut netcode: ResMut<Netcode>,
    mut session: ResMut<Session>,
    mut happened: MessageWriter<Happened>,
    time: Res<Time<Real>>,
    mut fixed: ResMut<Time<Fixed>>,
) {
    let now = time.elapsed_secs_f64();
    for FromServer(msg, _) in messages.read() {
        match msg {
            ServerMessage::Welcome {
                player_id,
                tick_hz,
                snapshot,
                ..
            } => {
                netcode.welcome(*player_id, *tick_hz);
                // `FixedUpdate` (where inputs are made) runs at the match's tick rate.
                fixed.set_timestep_hz(f64::from(netcode.tick_hz.max(1)));
                netcode.apply_snapshot(snapshot, now);
            }
            ServerMessage::Snapshot(s) => {
                if netcode.apply_snapshot(s, now) && !session.send(ClientMessage::RequestFull) {
                    netcode.awaiting_full = false;
                }
                for e in &s.events {
                    happened.write(Happened(e.clone()));
                }
            }
            ServerMessage::Pong { client_time_us, .. } => {
                netcode.ping_ms = Some((now * 1e6 - *client_time_us as f64) / 1000.0);
            }
            _ => {}
        }
    }
}
