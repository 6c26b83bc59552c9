//! The wire envelope: client and server messages as serde enums, encoded with bincode 2
//! (standard config: little-endian, varint integers) under a decode size limit. Snapshot
//! payloads inside are the bit-packed bytes of [`crate::codec`].
//!
//! The protocol version and the player's seat travel in the WebSocket upgrade request
//! (`GET /ws?v=PROTOCOL_VERSION&token=...`, a signed join or spectator token; `&name=...` only
//! on a server started with `--open`), so a mismatch is refused with an HTTP status before
//! any frame is exchanged.

use serde::{Deserialize, Serialize};

use crate::quant::{MoveVec, QAngle};
use crate::tick::{Seq, Tick};
use crate::world::{Phase, PlayerId};

/// Bumped on every incompatible change of messages or codec.
pub const PROTOCOL_VERSION: u32 = 3;

/// Largest client message the server accepts (a WebSocket frame over this is closed 1009).
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 1024;
/// Largest server message a client accepts.
pub const MAX_SERVER_MESSAGE_BYTES: usize = 1 << 20;
/// Most input frames one `Input` message may carry (the newest plus redundant older ones).
pub const MAX_INPUTS_PER_MESSAGE: usize = 8;

/// Longest chat message, in characters (Unicode scalar values).
pub const MAX_CHAT_CHARS: usize = 200;
/// Chat rate limit: at most this many messages...
pub const CHAT_BURST: u32 = 5;
/// ...per this many seconds.
pub const CHAT_WINDOW_S: u64 = 5;

/// RFC 6455 close codes used by Skirmish.
pub mod close_code {
    /// Normal closure (match over, client leaving).
    pub const NORMAL: u16 = 1000;
    /// Server shutting down or client going away.
    pub const GOING_AWAY: u16 = 1001;
    /// Bytes that do not decode as a protocol message; broken framing.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A message whose text is not valid UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A text frame (only binary frames are game traffic).
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// Policy violation: input flood, too slow to read.
    pub const POLICY: u16 = 1008;
    /// Frame larger than `MAX_CLIENT_MESSAGE_BYTES`.
    pub const TOO_BIG: u16 = 1009;
    /// Unexpected server condition.
    pub const INTERNAL: u16 = 1011;
}

/// One tick's worth of a player's intent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFrame {
    /// Client-chosen sequence number, +1 per frame.
    pub seq: Seq,
    /// Movement direction; its length is clamped to 1.
    pub mv: MoveVec,
    /// Aim angle.
    pub aim: QAngle,
    /// Button bits (`rules::BUTTON_FIRE`).
    pub buttons: u8,
    /// The tick of the world the client was showing the other players at when it made this
    /// input (its interpolated view): the server judges this input's shots against where
    /// the targets were then (lag compensation, `sim`). `Tick(0)`: not known, no rewind.
    pub view_tick: Tick,
}

impl InputFrame {
    /// Input `seq` that does nothing (no move, aim 0, no buttons).
    #[must_use]
    pub fn idle(seq: u32) -> Self {
        Self {
            seq: Seq(seq),
            ..Self::default()
        }
    }
}

/// A snapshot: the world at `tick`, coded against the world at `tick - baseline_age`
/// (`baseline_age == 0`: a full snapshot, no baseline), plus the game events this client has
/// not been sent yet, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMsg {
    pub tick: Tick,
    pub baseline_age: u32,
    pub data: Vec<u8>,
    pub events: Vec<GameEvent>,
}

/// Something that happened in the match. Every client gets every event exactly once, in
/// `id` order (ids are consecutive per match, from 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GameEvent {
    pub id: u64,
    pub tick: Tick,
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    OrbCollected {
        player: PlayerId,
        orb: u16,
    },
    Tagged {
        shooter: PlayerId,
        target: PlayerId,
    },
    Joined {
        player: PlayerId,
        name: String,
    },
    /// The player's seat was freed (left, or did not come back within the grace window).
    Left {
        player: PlayerId,
    },
    /// The connection dropped; the seat is kept for the reconnect grace window.
    Disconnected {
        player: PlayerId,
    },
    Reconnected {
        player: PlayerId,
    },
    PhaseChanged {
        phase: Phase,
        ends_at: Tick,
    },
    Chat {
        from: PlayerId,
        text: String,
    },
    /// Events between the last one delivered and this one were lost because the client fell
    /// too far behind; a full snapshot accompanies this.
    EventsLost {
        missed: u64,
    },
}

/// One row of the final ranking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankEntry {
    /// 1-based; tied scores share a rank (1, 1, 3).
    pub rank: u32,
    pub player_id: PlayerId,
    pub name: String,
    pub score: u32,
}

/// Ranks players by score (highest first; ties share a rank, then the next rank skips, as in
/// 1, 1, 3), ties listed by player id.
#[must_use]
pub fn rank(players: &[(PlayerId, String, u32)]) -> Vec<RankEntry> {
    let mut sorted: Vec<&(PlayerId, String, u32)> = players.iter().collect();
    sorted.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    let mut out: Vec<RankEntry> = Vec::with_capacity(sorted.len());
    for (i, (id, name, score)) in sorted.into_iter().enumerate() {
        let rank = match out.last() {
            Some(prev) if prev.score == *score => prev.rank,
            _ => i as u32 + 1,
        };
        out.push(RankEntry {
            rank,
            player_id: *id,
            name: name.clone(),
            score: *score,
        });
    }
    out
}

/// A match's final ranking: everyone in `world` and everyone who left while it ran
/// (`departed`: id, name and score when it left). The server's results and a replay's
/// re-simulation rank with this.
#[must_use]
pub fn final_ranking(
    world: &crate::world::WorldState,
    departed: &[(PlayerId, String, u32)],
) -> Vec<RankEntry> {
    let mut everyone: Vec<(PlayerId, String, u32)> = world
        .players
        .iter()
        .map(|p| (p.id, p.name.to_string(), p.score))
        .collect();
    everyone.extend(departed.iter().cloned());
    rank(&everyone)
}

impl SnapshotMsg {
    /// `world` coded against `base` (an earlier world; `None`: in full) with `checksum` and
    /// `events`: what the server sends, and what a replay plays to a viewer.
    #[must_use]
    pub fn encode(
        base: Option<&crate::world::WorldState>,
        world: &crate::world::WorldState,
        checksum: Option<u32>,
        params: &crate::rules::Params,
        events: Vec<GameEvent>,
    ) -> Self {
        Self {
            tick: world.tick,
            baseline_age: base.map_or(0, |b| world.tick.diff(b.tick) as u32),
            data: crate::codec::encode(base, world, checksum, params),
            events,
        }
    }

    /// The baseline tick, or `None` for a full snapshot.
    #[must_use]
    pub fn baseline(&self) -> Option<Tick> {
        (self.baseline_age != 0).then(|| self.tick.minus(self.baseline_age))
    }
}

/// Messages from the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// First message after the upgrade: who you are (`None` for a spectator), and the full
    /// world.
    Welcome {
        player_id: Option<PlayerId>,
        match_id: u32,
        tick_hz: u32,
        snapshot: SnapshotMsg,
    },
    Snapshot(SnapshotMsg),
    Pong {
        client_time_us: u64,
        server_tick: Tick,
    },
    /// Sent just before a close frame, with the same code and a longer explanation.
    Error {
        code: u16,
        message: String,
    },
    /// The match is over: the final ranking. A close 1000 follows.
    MatchEnded {
        ranking: Vec<RankEntry>,
    },
    /// Your chat message was not sent (too long, or over the rate limit).
    ChatRejected {
        reason: String,
    },
}

/// Messages from a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// Input frames, oldest first; may repeat recent unacknowledged frames for redundancy.
    Input {
        frames: Vec<InputFrame>,
    },
    Ping {
        client_time_us: u64,
    },
    /// The client's decoded world failed its checksum (or lost its baseline): send a full
    /// snapshot next.
    RequestFull,
    /// A chat line for everyone in the match (at most `MAX_CHAT_CHARS` characters).
    Chat {
        text: String,
    },
}

/// Why a message did not decode.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("text is not valid UTF-8")]
    Utf8,
    #[error("message does not decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    #[error("too many input frames in one message ({0} > {MAX_INPUTS_PER_MESSAGE})")]
    TooManyInputs(usize),
}

/// Bytes on the wire of a server (unmasked) WebSocket frame with `payload` bytes: the payload
/// plus a 2, 4 or 10 byte header.
#[must_use]
pub fn ws_frame_len(payload: usize) -> usize {
    payload
        + match payload {
            0..=125 => 2,
            126..=65535 => 4,
            _ => 10,
        }
}

/// A client (masked) WebSocket frame: `b0` is the first header byte (FIN bit and opcode, e.g.
/// `0x82` for a final binary frame), then the length, the mask and the masked payload. For
/// tests and for the abuse bots, which write frames a normal client library would not.
#[must_use]
pub fn masked_frame(b0: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(b0);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=65535 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

/// Percent-encodes a URL query value (RFC 3986 unreserved characters pass through).
#[must_use]
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn config<const LIMIT: usize>() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<LIMIT>()
}

/// Encodes a message (infallible for our types: serialization to a Vec cannot fail).
#[must_use]
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(msg, bincode::config::standard())
        .expect("bincode encoding of protocol types into a Vec cannot fail")
}

/// The most bytes [`snapshot_head`] writes.
pub const SNAPSHOT_HEAD_MAX: usize = 32;

/// The bytes of `encode(&ServerMessage::Snapshot(msg))` that come before `msg.data`'s own
/// bytes (the message's tag, `tick`, `baseline_age`, the data's length), written to `out`;
/// returns how many. The whole message is those, then the data, then `encode(&msg.events)`:
/// the server encodes a tick's events once and writes each client's own snapshot data
/// between them without building the message (byte for byte the same: tested).
#[must_use]
pub fn snapshot_head(
    tick: Tick,
    baseline_age: u32,
    data_len: usize,
    out: &mut [u8; SNAPSHOT_HEAD_MAX],
) -> usize {
    // The tag: an empty snapshot's encoding without its four one-byte zero fields.
    static TAG: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        let mut empty = encode(&ServerMessage::Snapshot(SnapshotMsg {
            tick: Tick(0),
            baseline_age: 0,
            data: Vec::new(),
            events: Vec::new(),
        }));
        empty.truncate(empty.len() - 4);
        empty
    });
    out[..TAG.len()].copy_from_slice(&TAG);
    let fields = (tick.0, baseline_age, data_len as u64);
    TAG.len()
        + bincode::encode_into_slice(fields, &mut out[TAG.len()..], bincode::config::standard())
            .expect("a tag and three integers fit in SNAPSHOT_HEAD_MAX bytes")
}

/// Decodes a client message, rejecting trailing bytes and oversized input batches.
pub fn decode_client(bytes: &[u8]) -> Result<ClientMessage, EnvelopeError> {
    let (msg, used): (ClientMessage, usize) =
        bincode::serde::decode_from_slice(bytes, config::<MAX_CLIENT_MESSAGE_BYTES>()).map_err(
            |e| match e {
                bincode::error::DecodeError::Utf8 { .. } => EnvelopeError::Utf8,
                e => EnvelopeError::Decode(e),
            },
        )?;
    if used != bytes.len() {
        return Err(EnvelopeError::TrailingBytes(bytes.len() - used));
    }
    if let ClientMessage::Input { frames } = &msg
        && frames.len() > MAX_INPUTS_PER_MESSAGE
    {
        return Err(EnvelopeError::TooManyInputs(frames.len()));
    }
    Ok(msg)
}

/// Decodes a server message.
pub fn decode_server(bytes: &[u8]) -> Result<ServerMessage, EnvelopeError> {
    let (msg, used): (ServerMessage, usize) =
        bincode::serde::decode_from_slice(bytes, config::<MAX_SERVER_MESSAGE_BYTES>())?;
    if used != bytes.len() {
        return Err(EnvelopeError::TrailingBytes(bytes.len() - used));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn input_message_is_a_few_bytes() {
        let frame = InputFrame {
            seq: Seq(1000),
            mv: MoveVec { x: 90, y: -90 },
            aim: QAngle::new(700),
            buttons: 1,
            view_tick: Tick(995),
        };
        let bytes = encode(&ClientMessage::Input {
            frames: vec![frame],
        });
        // tag, count, seq 3, move 2, aim 3, buttons, view tick 3 (varints of 1,000 and 995).
        assert!(bytes.len() <= 14, "{} bytes", bytes.len());
        assert_eq!(
            decode_client(&bytes).ok(),
            Some(ClientMessage::Input {
                frames: vec![frame]
            })
        );
    }

    #[test]
    fn out_of_range_aim_wraps_on_decode() {
        let frame = InputFrame {
            aim: QAngle::new(5),
            ..InputFrame::default()
        };
        let mut bytes = encode(&ClientMessage::Input {
            frames: vec![frame],
        });
        // aim is the 5th byte: tag, len, seq, x, y, aim...
        bytes[5] = 250; // varint 250 < 1024: stays 250
        let ClientMessage::Input { frames } = decode_client(&bytes).expect("decodes") else {
            panic!("not an input")
        };
        assert_eq!(frames[0].aim.steps(), 250);
    }

    #[test]
    fn oversized_input_batch_is_refused() {
        let frames = vec![InputFrame::default(); MAX_INPUTS_PER_MESSAGE + 1];
        let bytes = encode(&ClientMessage::Input { frames });
        assert!(matches!(
            decode_client(&bytes),
            Err(EnvelopeError::TooManyInputs(9))
        ));
    }

    #[test]
    fn invalid_utf8_chat_is_its_own_error() {
        let mut bytes = encode(&ClientMessage::Chat { text: "ab".into() });
        let n = bytes.len();
        bytes[n - 1] = 0xFF;
        assert!(matches!(decode_client(&bytes), Err(EnvelopeError::Utf8)));
    }

    #[test]
    fn frame_length_counts_the_websocket_header() {
        assert_eq!(ws_frame_len(60), 62);
        assert_eq!(ws_frame_len(500), 504);
        assert_eq!(ws_frame_len(70_000), 70_010);
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&ClientMessage::RequestFull);
        bytes.push(0);
        assert!(matches!(
            decode_client(&bytes),
            Err(EnvelopeError::TrailingBytes(1))
        ));
    }

    proptest! {
        /// A snapshot written from its parts is exactly the encoded message, for every size of
        /// its varint fields (1, 3, 5 and 9 bytes) and any events.
        #[test]
        fn a_snapshot_written_from_its_parts_is_the_encoded_message(
            tick in prop_oneof![0u32..300, any::<u32>()],
            age in prop_oneof![0u32..70, any::<u32>()],
            data_len in prop_oneof![0usize..300, 60_000usize..70_000],
            chats in proptest::collection::vec("[a-z ]{0,20}", 0..4),
        ) {
            let data: Vec<u8> = (0..data_len).map(|i| i as u8).collect();
            let events: Vec<GameEvent> = chats
                .into_iter()
                .enumerate()
                .map(|(i, text)| GameEvent {
                    id: 1 + i as u64,
                    tick: Tick(tick),
                    kind: if i % 2 == 0 {
                        EventKind::Chat { from: PlayerId(i as u32), text }
                    } else {
                        EventKind::Tagged { shooter: PlayerId(1), target: PlayerId(70_000) }
                    },
                })
                .collect();
            let mut head = [0; SNAPSHOT_HEAD_MAX];
            let n = snapshot_head(Tick(tick), age, data.len(), &mut head);
            let mut parts = head[..n].to_vec();
            parts.extend_from_slice(&data);
            parts.extend_from_slice(&encode(&events));
            let msg = ServerMessage::Snapshot(SnapshotMsg { tick: Tick(tick), baseline_age: age, data, events });
            prop_assert_eq!(parts, encode(&msg));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_client(&bytes);
            let _ = decode_server(&bytes);
        }
    }
}
