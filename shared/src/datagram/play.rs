//! What a seated datagram session carries, inside the sealed `Payload` packets: the client's
//! acknowledgement of the newest snapshot it applied, its last few inputs (redundancy: a lost
//! packet costs no input, the server drops the copies it has), and the reliable channel; the
//! server's snapshot coded against that acknowledgement. Decoding is bounded like the
//! WebSocket envelope's.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::reliable::Outgoing;
use crate::protocol::{EnvelopeError, GameEvent, InputFrame, MAX_INPUTS_PER_MESSAGE, RankEntry};
use crate::tick::{Seq, Tick};
use crate::world::PlayerId;

/// Largest `Up` a server decodes (a packet's payload).
pub const MAX_UP_BYTES: usize = 1200;
/// Largest `Down` a client decodes.
pub const MAX_DOWN_BYTES: usize = 64 * 1024;

/// Client to server, once per tick.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Up {
    /// The newest snapshot tick the client applied (its baseline for the next one).
    pub ack: Option<Tick>,
    /// The newest inputs not yet acknowledged, oldest first (at most
    /// `MAX_INPUTS_PER_MESSAGE`).
    pub inputs: Vec<InputFrame>,
    pub reliable: Outgoing,
}

/// Server to client, once per tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Down {
    pub tick: Tick,
    /// What the snapshot is coded against, in ticks before `tick` (0: in full; at most
    /// `receiver::BASELINE_HISTORY`, so one byte).
    pub baseline_age: u8,
    /// The bit-packed snapshot (`codec`).
    pub snapshot: Vec<u8>,
    /// The newest input the server has from this client (`Seq(0)`: none yet); the client
    /// stops resending it and everything before it.
    pub inputs_acked: Seq,
    pub reliable: Outgoing,
}

/// What the server sends on the reliable channel (each message once, in order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notice {
    /// First message of a session: who you are.
    Welcome {
        player_id: PlayerId,
        match_id: u32,
        tick_hz: u32,
    },
    /// One tick's game events (ids consecutive, as over WebSocket).
    Events(Vec<GameEvent>),
    /// The match is over: the final ranking. A `Disconnect` packet follows.
    MatchEnded { ranking: Vec<RankEntry> },
    /// Your chat line was not sent (too long, empty, or over the rate limit).
    ChatRejected { reason: String },
}

/// What a client sends on the reliable channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientNotice {
    Chat { text: String },
}

impl Notice {
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        decode::<Self, MAX_DOWN_BYTES>(bytes)
    }
}

impl ClientNotice {
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        decode::<Self, MAX_UP_BYTES>(bytes)
    }
}

fn decode<T: serde::de::DeserializeOwned, const LIMIT: usize>(
    bytes: &[u8],
) -> Result<T, EnvelopeError> {
    let (v, used): (T, usize) = bincode::serde::decode_from_slice(
        bytes,
        bincode::config::standard().with_limit::<LIMIT>(),
    )?;
    if used != bytes.len() {
        return Err(EnvelopeError::TrailingBytes(bytes.len() - used));
    }
    Ok(v)
}

impl Up {
    /// Decodes what a client sent, refusing oversized input batches.
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let up: Self = decode::<Self, MAX_UP_BYTES>(bytes)?;
        if up.inputs.len() > MAX_INPUTS_PER_MESSAGE {
            return Err(EnvelopeError::TooManyInputs(up.inputs.len()));
        }
        Ok(up)
    }
}

/// `Down`'s encoding without owning the snapshot and reliable bytes (the server encodes one
/// per client per tick straight into a reused buffer).
#[derive(Serialize)]
struct DownRef<'a> {
    tick: Tick,
    baseline_age: u8,
    snapshot: &'a [u8],
    inputs_acked: Seq,
    reliable: &'a Outgoing,
}

impl Down {
    /// Appends the encoding of a `Down` with these fields to `out` (the same bytes as
    /// encoding the owned struct).
    pub fn encode_into(
        tick: Tick,
        baseline_age: u8,
        snapshot: &[u8],
        inputs_acked: Seq,
        reliable: &Outgoing,
        out: &mut Vec<u8>,
    ) {
        let r = DownRef {
            tick,
            baseline_age,
            snapshot,
            inputs_acked,
            reliable,
        };
        // Writing into a Vec cannot fail.
        let _ = bincode::serde::encode_into_std_write(&r, out, bincode::config::standard());
    }

    /// The tick the snapshot is coded against (`None`: in full).
    #[must_use]
    pub fn baseline(&self) -> Option<Tick> {
        (self.baseline_age != 0).then(|| self.tick.minus(u32::from(self.baseline_age)))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        decode::<Self, MAX_DOWN_BYTES>(bytes)
    }
}

/// Payload bytes of one fragment (the rest of the datagram: 6 bytes of fragment header, the
/// seal's at most 25), so every datagram stays under 1,232 bytes.
pub const FRAGMENT_BYTES: usize = 1150;
/// Most fragments of one packet (a `Down` is at most `MAX_DOWN_BYTES`).
pub const MAX_FRAGMENTS: usize = MAX_DOWN_BYTES.div_ceil(FRAGMENT_BYTES);
/// Ticks whose fragments a client keeps while they come in.
const REASSEMBLY_TICKS: usize = 4;

/// Cuts an encoded `Down` of `tick` into fragment payloads: `tick u32 LE | index u8 |
/// count u8 | bytes`, each sealed as its own datagram of kind `Fragment`.
#[must_use]
pub fn fragments(tick: Tick, down: &[u8]) -> Vec<Vec<u8>> {
    let count = down.len().div_ceil(FRAGMENT_BYTES).max(1);
    down.chunks(FRAGMENT_BYTES)
        .enumerate()
        .map(|(i, bytes)| {
            let mut f = Vec::with_capacity(6 + bytes.len());
            f.extend_from_slice(&tick.0.to_le_bytes());
            f.push(i as u8);
            f.push(count as u8);
            f.extend_from_slice(bytes);
            f
        })
        .collect()
}

/// Client side: puts fragments back together. Fragments of the newest few ticks are kept; a
/// tick whose pieces never all arrive is forgotten (its snapshot is lost, like a lost packet).
#[derive(Debug, Default)]
pub struct Reassembly {
    /// Oldest first: the tick, and its pieces so far.
    partial: VecDeque<(Tick, Vec<Option<Vec<u8>>>)>,
}

impl Reassembly {
    /// Takes one fragment payload; the whole `Down` once its last piece is in.
    pub fn add(&mut self, fragment: &[u8]) -> Result<Option<Vec<u8>>, EnvelopeError> {
        let bad = || EnvelopeError::TrailingBytes(fragment.len());
        if fragment.len() < 7 {
            return Err(bad());
        }
        let tick = Tick(u32::from_le_bytes([
            fragment[0],
            fragment[1],
            fragment[2],
            fragment[3],
        ]));
        let (index, count) = (usize::from(fragment[4]), usize::from(fragment[5]));
        if count == 0 || count > MAX_FRAGMENTS || index >= count {
            return Err(bad());
        }
        let slot = match self.partial.iter().position(|(t, _)| *t == tick) {
            Some(i) => i,
            None => {
                if self.partial.len() == REASSEMBLY_TICKS {
                    self.partial.pop_front();
                }
                self.partial.push_back((tick, vec![None; count]));
                self.partial.len() - 1
            }
        };
        let pieces = &mut self.partial[slot].1;
        if pieces.len() != count {
            return Err(bad());
        }
        pieces[index].get_or_insert_with(|| fragment[6..].to_vec());
        if pieces.iter().any(Option::is_none) {
            return Ok(None);
        }
        let (_, pieces) = self.partial.remove(slot).unwrap_or_default();
        Ok(Some(pieces.into_iter().flatten().flatten().collect()))
    }
}

/// Client side: the inputs the server has not acknowledged yet, resent with every packet
/// (the newest `MAX_INPUTS_PER_MESSAGE`).
#[derive(Debug, Clone, Default)]
pub struct InputRedundancy {
    pending: VecDeque<InputFrame>,
}

impl InputRedundancy {
    /// Adds this tick's input.
    pub fn push(&mut self, input: InputFrame) {
        if self.pending.len() == MAX_INPUTS_PER_MESSAGE {
            self.pending.pop_front();
        }
        self.pending.push_back(input);
    }

    /// Forgets what a snapshot acknowledged (the player's `last_seq`).
    pub fn acknowledged(&mut self, last_seq: Seq) {
        while self
            .pending
            .front()
            .is_some_and(|f| !f.seq.is_after(last_seq))
        {
            self.pending.pop_front();
        }
    }

    /// The inputs to put in the next packet, oldest first.
    #[must_use]
    pub fn to_send(&self) -> Vec<InputFrame> {
        self.pending.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::encode;

    fn frame(n: u32) -> InputFrame {
        InputFrame::idle(n)
    }

    #[test]
    fn up_and_down_round_trip_and_are_bounded() {
        let up = Up {
            ack: Some(Tick(41)),
            inputs: (1..=3).map(frame).collect(),
            reliable: Outgoing {
                ack: 2,
                messages: vec![(5, b"chat".to_vec())],
            },
        };
        assert_eq!(Up::decode(&encode(&up)).expect("decodes"), up);
        let too_many = Up {
            inputs: (1..=9).map(frame).collect(),
            ..Up::default()
        };
        assert!(matches!(
            Up::decode(&encode(&too_many)),
            Err(EnvelopeError::TooManyInputs(9))
        ));
        let huge = Up {
            reliable: Outgoing {
                ack: 0,
                messages: vec![(0, vec![0; 2000])],
            },
            ..Up::default()
        };
        assert!(Up::decode(&encode(&huge)).is_err(), "over the size limit");
        let down = Down {
            tick: Tick(42),
            baseline_age: 1,
            snapshot: vec![1, 2, 3],
            inputs_acked: Seq(7),
            reliable: Outgoing::default(),
        };
        assert_eq!(Down::decode(&encode(&down)).expect("decodes"), down);
        let mut borrowed = vec![9];
        Down::encode_into(
            down.tick,
            down.baseline_age,
            &down.snapshot,
            down.inputs_acked,
            &down.reliable,
            &mut borrowed,
        );
        assert_eq!(borrowed[1..], encode(&down)[..], "the same bytes, appended");
    }

    #[test]
    fn unacknowledged_inputs_are_resent_until_a_snapshot_acknowledges_them() {
        let mut r = InputRedundancy::default();
        for n in 1..=3 {
            r.push(frame(n));
        }
        assert_eq!(r.to_send(), [frame(1), frame(2), frame(3)]);
        r.acknowledged(Seq(2));
        assert_eq!(r.to_send(), [frame(3)]);
        for n in 4..=20 {
            r.push(frame(n)); // the server went quiet: only the newest are kept
        }
        assert_eq!(r.to_send().len(), MAX_INPUTS_PER_MESSAGE);
        assert_eq!(r.to_send().last(), Some(&frame(20)));
    }

    #[test]
    fn a_big_packet_comes_back_whole_from_its_fragments_in_any_order() {
        let big: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let pieces = fragments(Tick(9), &big);
        assert_eq!(pieces.len(), 5);
        assert!(pieces.iter().all(|p| p.len() <= 6 + FRAGMENT_BYTES));
        let mut r = Reassembly::default();
        // Out of order, with a duplicate, and another tick's piece in between.
        let other = fragments(Tick(10), &big);
        for i in [3, 0, 3, 4, 1] {
            assert_eq!(r.add(&pieces[i]).expect("a fragment"), None);
        }
        assert_eq!(r.add(&other[0]).expect("a fragment"), None);
        assert_eq!(r.add(&pieces[2]).expect("a fragment"), Some(big.clone()));
        // A tick that never completes is forgotten after a few newer ones.
        for t in 11..20 {
            let _ = r.add(&fragments(Tick(t), &big)[0]);
        }
        assert!(r.partial.len() <= REASSEMBLY_TICKS);
        assert!(r.add(&[1, 2, 3]).is_err(), "too short");
        let mut liar = pieces[0].clone();
        liar[4] = 9; // index beyond the count
        assert!(r.add(&liar).is_err());
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1500)) {
            let _ = Up::decode(&bytes);
            let _ = Down::decode(&bytes);
            let _ = Reassembly::default().add(&bytes);
        }
    }
}
