//! The match's datagram players (issue 14): what it takes from their inboxes at the start of
//! a tick, and the packets it sends them at the end.
//!
//! Over UDP a snapshot may be lost, so each player's snapshot is coded against the newest one
//! it *acknowledged* (`acked`: one encode per distinct baseline per tick, shared by the
//! players on it; with no loss that is one encode per tick, as over TCP), or in full when it
//! acknowledged none still kept. The world ring is as long as the client's baseline history
//! (`receiver::BASELINE_HISTORY`), so every baseline used is one the client still has.
//! Game events, chat refusals, the welcome and the final ranking go on each player's reliable
//! channel, resent in every packet until acknowledged. A tick's packets leave in one
//! `sendmmsg` pass.
//!
//! A packet bigger than one datagram (a full snapshot of more than about 40 players) goes in
//! fragments, reassembled by the client (`play::fragments`): cutting it by priority instead
//! would make the snapshot lossy and uncheckable. At the default 16 players a full snapshot
//! is about 510 bytes and everything fits one datagram. Cutting large worlds by priority to a
//! bandwidth budget is issue 15's interest management.

use std::sync::Arc;
use std::time::Instant;

use std::net::UdpSocket;
use tracing::debug;

use skirmish_shared::codec::SharedDelta;
use skirmish_shared::datagram::play::{ClientNotice, Down, Notice, fragments};
use skirmish_shared::datagram::reliable::Reliable;
use skirmish_shared::datagram::{Kind, Sealer};
use skirmish_shared::protocol::encode;
use skirmish_shared::receiver::BASELINE_HISTORY;
use skirmish_shared::tick::{Seq, Tick};
use skirmish_shared::world::PlayerId;

use crate::acked::{TickEncodings, WorldRing};
use crate::budget::ChatLimit;
use crate::fanout::{ClientView, TickOutput};
use crate::interest::view::Frame;
use crate::link::End;
use crate::stats::Stats;
use crate::udp::batch::SendBatch;
use crate::udp::peer::Peer;

/// Largest payload put in one packet (with the seal's 25 bytes, well under a 1,280-byte
/// IPv6 minimum MTU).
pub const MAX_PACKET_PAYLOAD: usize = 1200;
/// Reliable-channel bytes a packet may carry even when the snapshot fills it.
const MIN_RELIABLE_ROOM: usize = 256;
/// Unacknowledged reliable messages a player may have before it is considered gone (about
/// eight seconds of a busy match's event messages).
const MAX_RELIABLE_BACKLOG: usize = 256;

/// One datagram player, as the match drives it.
#[derive(Debug)]
struct Player {
    peer: Arc<Peer>,
    sealer: Sealer,
    reliable: Reliable,
    id: PlayerId,
    /// The newest snapshot it acknowledged.
    acked: Option<Tick>,
    /// What it sees, and the worlds it was sent from the one it acknowledged on (its
    /// possible baselines): the match's own `Arc` when it was sent the match's world, its
    /// view otherwise.
    view: ClientView,
    sent: WorldRing,
    /// The newest input received from it.
    last_input: Option<Seq>,
    /// Reliable ids below this were sent at least once (later sends are resends).
    sent_below: u64,
    chat: ChatLimit,
}

impl Player {
    /// This tick's snapshot for the player: the baseline it is coded against and the bytes.
    /// Holding the match's world, seeing the whole arena, within its budget: the encoding
    /// shared by every player on the same baseline. Otherwise its own view (`fanout::
    /// ClientView`) against the view it acknowledged, copying entries from that encoding.
    fn snapshot(
        &mut self,
        out: &TickOutput,
        fresh: bool,
        ring: &WorldRing,
        encodings: &mut TickEncodings<'_>,
        stats: &Stats,
    ) -> Option<(Option<Tick>, Snapshot)> {
        let tick = out.world.tick;
        if let Some(acked) = self.acked {
            self.sent.drop_before(acked);
        }
        let holds = self
            .acked
            .filter(|t| tick.is_after(*t))
            .and_then(|t| self.sent.get(t).map(|w| (t, w)));
        let held_tick = holds.map(|(t, _)| t);
        let base = holds.map(|(_, w)| &**w);
        if !fresh && let Some(sent) = self.sent.get(tick) {
            // A resend after the match ended: the world already sent for this tick.
            let checksum = Some(sent.checksum());
            let bytes = skirmish_shared::codec::encode(base, sent, checksum, &out.params);
            return Some((held_tick, Snapshot::Own(bytes)));
        }
        // The match's world against the acknowledged tick: one encoding per baseline per tick.
        let (baseline, delta) = encodings.for_client(held_tick)?;
        let holds_match_world =
            holds.is_none_or(|(t, w)| ring.get(t).is_some_and(|m| Arc::ptr_eq(m, w)));
        if holds_match_world && out.shareable(delta.bytes.len()) {
            if fresh {
                self.sent.push(out.world.clone());
            }
            return Some((baseline, Snapshot::Shared(delta)));
        }
        let frame = Frame {
            shared: Some(&delta),
            ..out.frame()
        };
        let sel = self.view.select_in(base, &frame, out, stats);
        let checksum = (base.is_none() || out.checksum.is_some()).then(|| sel.world.checksum());
        let bytes = out.encode_view(base, &sel, checksum, Some(&delta));
        if fresh {
            self.sent.push(Arc::new(sel.world));
        }
        stats.snapshots_encoded_per_client.inc();
        Some((held_tick, Snapshot::Own(bytes)))
    }
}

/// A player's snapshot data: an encoding shared with the players on its baseline, or its own.
#[derive(Debug)]
enum Snapshot {
    Shared(Arc<SharedDelta>),
    Own(Vec<u8>),
}

impl std::ops::Deref for Snapshot {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Shared(d) => &d.bytes,
            Self::Own(bytes) => bytes,
        }
    }
}

/// Every datagram player of one match (see the module docs).
#[derive(Debug)]
pub struct Datagrams {
    socket: Option<Arc<UdpSocket>>,
    players: Vec<Player>,
    ring: WorldRing,
    batch: SendBatch,
    /// A packet's plaintext, reused.
    scratch: Vec<u8>,
}

/// A datagram player whose session ended this tick.
#[derive(Debug)]
pub struct Gone {
    pub peer: Arc<Peer>,
    pub player: PlayerId,
    pub how: End,
}

impl Default for Datagrams {
    fn default() -> Self {
        Self {
            socket: None,
            players: Vec::new(),
            ring: WorldRing::new(BASELINE_HISTORY),
            batch: SendBatch::default(),
            scratch: Vec::with_capacity(MAX_PACKET_PAYLOAD),
        }
    }
}

impl Datagrams {
    /// Seats `peer` as `id`; its first reliable message says who it is.
    pub fn add(
        &mut self,
        peer: Arc<Peer>,
        sealer: Sealer,
        socket: Arc<UdpSocket>,
        id: PlayerId,
        welcome: &Notice,
        stats: &Stats,
    ) {
        self.socket.get_or_insert(socket);
        let mut reliable = Reliable::new(MAX_RELIABLE_BACKLOG);
        let _ = reliable.send(encode(welcome));
        stats.udp_players.inc();
        self.players.push(Player {
            peer,
            sealer,
            reliable,
            id,
            acked: None,
            view: ClientView::new(id, Some(id)),
            sent: WorldRing::new(BASELINE_HISTORY),
            last_input: None,
            sent_below: 0,
            chat: ChatLimit::default(),
        });
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.players.is_empty()
    }

    /// Start of a tick: takes each player's acknowledgement and reliable traffic; returns the
    /// chat lines to broadcast (each player's checked against the chat rules) and the players
    /// whose session ended (removed here; their seats are the caller's).
    pub fn read(&mut self, now: Instant, chat: &mut Vec<(PlayerId, String)>) -> Vec<Gone> {
        let mut gone = Vec::new();
        self.players.retain_mut(|p| {
            let (ack, incoming, ended) = {
                let mut inbox = p.peer.inbox();
                p.last_input = inbox.last_input;
                (inbox.ack, std::mem::take(&mut inbox.reliable), inbox.ended)
            };
            if let Some(how) = ended {
                gone.push(Gone {
                    peer: p.peer.clone(),
                    player: p.id,
                    how,
                });
                return false;
            }
            p.acked = ack;
            for o in incoming {
                for bytes in p.reliable.receive(o) {
                    let Ok(ClientNotice::Chat { text }) = ClientNotice::decode(&bytes) else {
                        continue;
                    };
                    match p.chat.check(&text, now) {
                        Ok(text) => chat.push((p.id, text)),
                        Err(reason) => {
                            let _ = p.reliable.send(encode(&Notice::ChatRejected { reason }));
                        }
                    }
                }
            }
            true
        });
        gone
    }

    /// End of a tick: queues `out`'s events (and the final ranking, on the last tick) on
    /// every reliable channel, then sends every player its snapshot. `fresh` is false when
    /// `out` was already sent (the resends after the match ended).
    pub fn send(&mut self, out: &TickOutput, fresh: bool, stats: &Stats) {
        if fresh {
            self.ring.push(out.world.clone());
        }
        if self.players.is_empty() {
            return;
        }
        let notices: Vec<Vec<u8>> = if fresh {
            let events =
                (!out.events.is_empty()).then(|| encode(&Notice::Events(out.events.clone())));
            let ended = out
                .ended
                .as_ref()
                .map(|r| encode(&Notice::MatchEnded { ranking: r.clone() }));
            events.into_iter().chain(ended).collect()
        } else {
            Vec::new()
        };
        let mut encodings = TickEncodings::new(
            &self.ring,
            out.params,
            out.checksum,
            out.shared_delta().cloned(),
        );
        for p in &mut self.players {
            if notices.iter().any(|n| p.reliable.send(n.clone()).is_err()) {
                debug!(
                    player_id = p.id.0,
                    "udp reliable backlog full: dropping the session"
                );
                p.peer.end(End::Abrupt);
                continue;
            }
            let Some((baseline, snapshot)) =
                p.snapshot(out, fresh, &self.ring, &mut encodings, stats)
            else {
                continue;
            };
            if baseline.is_none() {
                stats.udp_full_snapshots.inc();
            }
            // Reliable messages fill the packet; a snapshot that fills it alone goes in
            // fragments anyway, and takes a few messages along.
            let room = MAX_PACKET_PAYLOAD
                .saturating_sub(snapshot.len() + 16)
                .max(MIN_RELIABLE_ROOM);
            let reliable = p.reliable.outgoing(room);
            let resent = reliable
                .messages
                .iter()
                .filter(|(id, _)| *id < p.sent_below)
                .count();
            stats.udp_resends.add(resent as u64);
            if let Some((last, _)) = reliable.messages.last() {
                p.sent_below = p.sent_below.max(last + 1);
            }
            let tick = out.world.tick;
            self.scratch.clear();
            Down::encode_into(
                tick,
                baseline.map_or(0, |b| tick.diff(b).clamp(0, 255) as u8),
                &snapshot,
                p.last_input.unwrap_or(Seq(0)),
                &reliable,
                &mut self.scratch,
            );
            if self.scratch.len() <= MAX_PACKET_PAYLOAD {
                let packet = p.sealer.seal(Kind::Payload, &self.scratch);
                self.batch.push(p.peer.addr, packet);
            } else {
                stats.udp_fragmented.inc();
                for f in fragments(tick, &self.scratch) {
                    let packet = p.sealer.seal(Kind::Fragment, &f);
                    self.batch.push(p.peer.addr, packet);
                }
            }
        }
        stats
            .snapshots_encoded_per_client
            .add(encodings.extra_encodes() as u64);
        self.flush(stats);
    }

    /// Whether some player has reliable messages it has not acknowledged.
    #[must_use]
    pub fn awaiting_acks(&self) -> bool {
        self.players.iter().any(|p| p.reliable.unacknowledged() > 0)
    }

    /// Tells every player the session is over and lets them go (the match ended or closed).
    pub fn disconnect_all(&mut self, reason: &str, stats: &Stats) {
        for p in &mut self.players {
            let packet = p.sealer.seal(Kind::Disconnect, reason.as_bytes());
            self.batch.push(p.peer.addr, packet);
            p.peer.end(End::Closed);
            stats.udp_players.dec();
        }
        self.players.clear();
        self.flush(stats);
    }

    fn flush(&mut self, stats: &Stats) {
        let Some(socket) = &self.socket else {
            return;
        };
        let f = self.batch.flush(&**socket);
        stats.udp_packets_out.add(f.packets as u64);
        stats.udp_bytes_out.add(f.bytes as u64);
        stats.udp_send_dropped.add(f.dropped as u64);
    }
}

impl Drop for Datagrams {
    /// The match is gone: its sessions too (the endpoint forgets them at its next sweep).
    fn drop(&mut self) {
        for p in &self.players {
            p.peer.end(End::Closed);
        }
    }
}
