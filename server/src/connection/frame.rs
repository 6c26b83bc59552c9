//! Client-to-server WebSocket frames, parsed from a connection's read buffer (RFC 6455
//! section 5), sans I/O: the reader appends what the socket gave and takes whole frames off
//! the front. Everything a client controls is checked: reserved bits, opcodes, the mask
//! every client frame must carry, control-frame rules, and the size limit, judged from the
//! header before any payload is buffered.

use thiserror::Error;

/// A frame's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(b: u8) -> Option<Self> {
        Some(match b {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// One unmasked frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: OpCode,
    pub payload: Vec<u8>,
}

/// A frame the server must refuse (close 1002, or 1009 for `TooLarge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("reserved bits set (no extension was negotiated)")]
    ReservedBits,
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    #[error("client frames must be masked")]
    Unmasked,
    #[error("fragmented control frame")]
    FragmentedControl,
    #[error("control frame longer than 125 bytes")]
    LongControl,
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(u64),
}

/// Parses the frame at the front of `buf`: `Ok(None)` until it is all there; otherwise the
/// frame and how many bytes of `buf` it used. Payloads of `max_payload` bytes or more are
/// refused from the header alone.
pub fn parse(buf: &[u8], max_payload: usize) -> Result<Option<(Frame, usize)>, FrameError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(FrameError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = OpCode::from_bits(b0 & 0x0F).ok_or(FrameError::UnknownOpcode(b0 & 0x0F))?;
    if b1 & 0x80 == 0 {
        return Err(FrameError::Unmasked);
    }
    if opcode.is_control() && !fin {
        return Err(FrameError::FragmentedControl);
    }
    let (len, at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(n) => (u64::from(u16::from_be_bytes([n[0], n[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|n| <[u8; 8]>::try_from(n).ok()) {
            Some(n) => (u64::from_be_bytes(n), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode.is_control() && len > 125 {
        return Err(FrameError::LongControl);
    }
    if len >= max_payload as u64 {
        return Err(FrameError::TooLarge(len));
    }
    let len = len as usize; // under max_payload
    let Some(mask) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    let start = at + 4;
    let Some(masked) = buf.get(start..start + len) else {
        return Ok(None);
    };
    let payload = masked
        .iter()
        .zip(mask.iter().cycle())
        .map(|(b, m)| b ^ m)
        .collect();
    Ok(Some((
        Frame {
            fin,
            opcode,
            payload,
        },
        start + len,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A client frame as a browser would send it.
    fn masked(b0: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        skirmish_shared::protocol::masked_frame(b0, payload, mask)
    }

    #[test]
    fn a_masked_binary_frame_is_unmasked_and_measured() {
        let bytes = masked(0x82, b"input!", [1, 2, 3, 4]);
        let (f, used) = parse(&bytes, 1025).expect("valid").expect("whole");
        assert_eq!(used, bytes.len());
        assert_eq!(
            f,
            Frame {
                fin: true,
                opcode: OpCode::Binary,
                payload: b"input!".to_vec()
            }
        );
    }

    #[test]
    fn refusals() {
        let m = [9, 9, 9, 9];
        assert_eq!(
            parse(&[0x82, 0x03, 1, 2, 3], 1025),
            Err(FrameError::Unmasked)
        );
        assert_eq!(
            parse(&masked(0xC2, b"x", m), 1025),
            Err(FrameError::ReservedBits)
        );
        assert_eq!(
            parse(&masked(0x83, b"x", m), 1025),
            Err(FrameError::UnknownOpcode(3))
        );
        assert_eq!(
            parse(&masked(0x09, b"x", m), 1025),
            Err(FrameError::FragmentedControl)
        );
        assert_eq!(
            parse(&masked(0x89, &[0; 126], m), 1025),
            Err(FrameError::LongControl)
        );
        // Judged from the header: the 64 KiB payload never needs to arrive.
        let big = masked(0x82, &[0; 65536], m);
        assert_eq!(parse(&big[..14], 1025), Err(FrameError::TooLarge(65536)));
        assert_eq!(
            parse(&masked(0x82, &[0; 1025], m), 1025),
            Err(FrameError::TooLarge(1025))
        );
        assert!(
            parse(&masked(0x82, &[0; 1024], m), 1025)
                .expect("ok")
                .is_some()
        );
    }

    proptest! {
        /// Arbitrary bytes: no panic; a frame, when one parses, fits in what was given and
        /// its payload is under the limit.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            if let Ok(Some((f, used))) = parse(&bytes, 1025) {
                prop_assert!(used <= bytes.len());
                prop_assert!(f.payload.len() < 1025);
            }
        }

        /// Any frame, cut anywhere, is incomplete until its last byte is there, and then
        /// parses to its payload, leaving what follows.
        #[test]
        fn frames_parse_only_when_whole(
            payload in proptest::collection::vec(any::<u8>(), 0..600),
            mask in any::<[u8; 4]>(),
            fin in any::<bool>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = masked(if fin { 0x82 } else { 0x02 }, &payload, mask);
            let len = bytes.len();
            let at = cut.index(len);
            prop_assert_eq!(parse(&bytes[..at], 1025), Ok(None));
            bytes.extend_from_slice(&[0x88, 0x80]);
            let (f, used) = parse(&bytes, 1025).expect("valid").expect("whole");
            prop_assert_eq!(used, len);
            prop_assert_eq!(f.fin, fin);
            prop_assert_eq!(f.payload, payload);
        }
    }
}
