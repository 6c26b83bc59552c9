//! Server-to-client WebSocket frames, built once and written as plain bytes.
//!
//! A server never masks (RFC 6455 section 5.1), so a frame is a 2-, 4- or 10-byte header and
//! the payload. Each tick's shared snapshot is framed once by the match and the same bytes go
//! to every connection in one `write` each: no per-connection framing, no vectored write.
//! (fastwebsockets does the upgrade; what clients send is parsed by `connection::frame`.)

use bytes::{BufMut, Bytes, BytesMut};
use skirmish_shared::protocol::ws_frame_len;
use skirmish_shared::rules::truncate_utf8;

const FIN: u8 = 0x80;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PONG: u8 = 0xA;

/// A binary frame carrying one protocol message.
#[must_use]
pub fn binary(payload: &[u8]) -> Bytes {
    frame(BINARY, &[payload])
}

/// A binary frame whose payload is `parts`, one after the other (one buffer, one copy).
#[must_use]
pub fn binary_parts(parts: &[&[u8]]) -> Bytes {
    frame(BINARY, parts)
}

/// A close frame with `code` and `reason` (cut to the 123 bytes a close payload has room for).
#[must_use]
pub fn close(code: u16, reason: &str) -> Bytes {
    let reason = truncate_utf8(reason, 123);
    frame(CLOSE, &[&code.to_be_bytes(), reason.as_bytes()])
}

/// A pong answering a ping frame with `payload` (at most 125 bytes, checked on receipt).
#[must_use]
pub fn pong(payload: &[u8]) -> Bytes {
    frame(PONG, &[payload])
}

fn frame(opcode: u8, parts: &[&[u8]]) -> Bytes {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = BytesMut::with_capacity(ws_frame_len(len));
    out.put_u8(FIN | opcode);
    match len {
        0..=125 => out.put_u8(len as u8),
        126..=65535 => {
            out.put_u8(126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(127);
            out.put_u64(len as u64);
        }
    }
    for p in parts {
        out.put_slice(p);
    }
    out.freeze()
}

/// The payload of a single unmasked frame (as built here), or `None` if `frame` is not one.
#[must_use]
pub fn payload(frame: &[u8]) -> Option<&[u8]> {
    let (&len7, rest) = frame.get(1..)?.split_first()?;
    let (len, rest) = match len7 & 0x7F {
        126 => {
            let (n, rest) = rest.split_first_chunk::<2>()?;
            (usize::from(u16::from_be_bytes(*n)), rest)
        }
        127 => {
            let (n, rest) = rest.split_first_chunk::<8>()?;
            (usize::try_from(u64::from_be_bytes(*n)).ok()?, rest)
        }
        n => (usize::from(n), rest),
    };
    (len7 & 0x80 == 0 && rest.len() == len).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_rfc_6455_length_rules() {
        for len in [0, 1, 125, 126, 127, 65535, 65536, 70_000] {
            let body = vec![7u8; len];
            let f = binary(&body);
            assert_eq!(f.len(), ws_frame_len(len), "length {len}");
            assert_eq!(f[0], 0x82, "FIN + binary");
            assert_eq!(payload(&f), Some(&body[..]), "length {len}");
        }
        assert_eq!(&binary(&[1, 2, 3])[..], &[0x82, 3, 1, 2, 3]);
        assert_eq!(&binary(&[0; 200])[..4], &[0x82, 126, 0, 200]);
    }

    #[test]
    fn close_and_pong_frames() {
        assert_eq!(
            &close(1000, "bye")[..],
            &[0x88, 5, 0x03, 0xE8, b'b', b'y', b'e']
        );
        let long = close(1008, &"é".repeat(100));
        assert_eq!(
            long[1],
            2 + 122,
            "cut at a character boundary within 123 bytes"
        );
        assert!(std::str::from_utf8(&long[4..]).is_ok());
        assert_eq!(&pong(b"hi")[..], &[0x8A, 2, b'h', b'i']);
    }
}
