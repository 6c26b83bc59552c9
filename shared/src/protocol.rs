//! The wire envelope: client and server messages as serde enums, encoded with bincode 2
//! (standard config: little-endian, varint integers) under a decode size limit. Snapshot
//! payloads inside are the bit-packed bytes of [`crate::codec`].
//!
//! The protocol version and the player's identity travel in the WebSocket upgrade request
//! (`GET /ws?v=PROTOCOL_VERSION&name=...&match=...`), so a mismatch is refused with an HTTP
//! status before any frame is exchanged.

use serde::{Deserialize, Serialize};

use crate::quant::{MoveVec, QAngle};
use crate::tick::{Seq, Tick};
use crate::world::PlayerId;

/// Bumped on every incompatible change of messages or codec.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest client message the server accepts (a WebSocket frame over this is closed 1009).
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 256;
/// Largest server message a client accepts.
pub const MAX_SERVER_MESSAGE_BYTES: usize = 1 << 20;
/// Most input frames one `Input` message may carry (the newest plus redundant older ones).
pub const MAX_INPUTS_PER_MESSAGE: usize = 8;

/// RFC 6455 close codes used by Skirmish.
pub mod close_code {
    /// Normal closure (match over, client leaving).
    pub const NORMAL: u16 = 1000;
    /// Server shutting down or client going away.
    pub const GOING_AWAY: u16 = 1001;
    /// Bytes that do not decode as a protocol message; broken framing.
    pub const PROTOCOL_ERROR: u16 = 1002;
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
}

/// A snapshot: the world at `tick`, coded against the world at `tick - baseline_age`
/// (`baseline_age == 0`: a full snapshot, no baseline).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMsg {
    pub tick: Tick,
    pub baseline_age: u32,
    pub data: Vec<u8>,
}

impl SnapshotMsg {
    /// The baseline tick, or `None` for a full snapshot.
    #[must_use]
    pub fn baseline(&self) -> Option<Tick> {
        (self.baseline_age != 0).then(|| self.tick.minus(self.baseline_age))
    }
}

/// Messages from the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// First message after the upgrade: who you are, and the full world.
    Welcome {
        player_id: PlayerId,
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
}

/// Why a message did not decode.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("message does not decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    #[error("too many input frames in one message ({0} > {MAX_INPUTS_PER_MESSAGE})")]
    TooManyInputs(usize),
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

/// Decodes a client message, rejecting trailing bytes and oversized input batches.
pub fn decode_client(bytes: &[u8]) -> Result<ClientMessage, EnvelopeError> {
    let (msg, used): (ClientMessage, usize) =
        bincode::serde::decode_from_slice(bytes, config::<MAX_CLIENT_MESSAGE_BYTES>())?;
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
        };
        let bytes = encode(&ClientMessage::Input {
            frames: vec![frame],
        });
        assert!(bytes.len() <= 12, "{} bytes", bytes.len());
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
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&ClientMessage::RequestFull);
        bytes.push(0);
        assert!(matches!(
            decode_client(&bytes),
            Err(EnvelopeError::TrailingBytes(1))
        ));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_client(&bytes);
            let _ = decode_server(&bytes);
        }
    }
}
