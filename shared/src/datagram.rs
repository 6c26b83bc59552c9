//! The datagram transport's security core, in the netcode.io model, sans-IO (the sockets are
//! the server's `udp` module and `client_udp`; the wire format is in the README, "Datagrams
//! (UDP)"). What it guarantees:
//!
//! - **Connect tokens.** The matchmaker (over HTTPS) hands a client a token whose private part
//!   is sealed with the server's key (XChaCha20-Poly1305): the client can neither read nor
//!   change its claims (match, seat, name, expiry) and gets the two session keys beside it.
//! - **A handshake without amplification.** A connection request carries the sealed token and
//!   is padded to [`REQUEST_BYTES`]; the server answers with a challenge that is smaller than
//!   the request and sealed for the client, and seats the client only when the challenge comes
//!   back from the same address. A spoofed source gets a challenge it cannot read; a request
//!   whose token does not open costs one failed decryption and gets no reply at all.
//! - **Every packet authenticated and encrypted** with the key of its direction, its sequence
//!   number as the nonce, the protocol version and packet kind as associated data, and a
//!   replay window: a tampered, replayed or too old packet is dropped.
//! - **A reliable, ordered channel** on top ([`reliable`]) for events, chat and the end of
//!   the match; what a session carries ([`play`]): the client's ack and redundant inputs,
//!   the server's snapshot against that ack.
//!
//! Why our own rather than `renetcode`: its server is one connection table for the whole
//! socket (sized at construction, with its own per-client timers), while our match loops
//! each own their clients and do their I/O in their tick; the token's claims (match, seat,
//! instance) must be ours; and the pieces are small (two AEAD calls and a bitmap) with
//! well-kept crates underneath (`ring`'s ChaCha20-Poly1305 per packet, RustCrypto's
//! XChaCha20-Poly1305 for tokens).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, UnboundKey};
use serde::{Deserialize, Serialize};

/// Bumped with any change of the datagram formats.
pub const DATAGRAM_VERSION: u8 = 2;
/// A connection request's size on the wire: the largest packet a client sends before it is
/// connected, and larger than any reply to it.
pub const REQUEST_BYTES: usize = 1100;
/// The sealed private token inside a request.
pub const SEALED_TOKEN_BYTES: usize = 1024;
/// Packets older than this many sequence numbers are dropped as replays.
pub const REPLAY_WINDOW: u64 = 256;
/// AEAD tag bytes.
const TAG: usize = 16;

/// A 256-bit key.
pub type Key = [u8; 32];

/// What a datagram could not be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DatagramError {
    #[error("packet too short or of unknown kind")]
    Malformed,
    #[error("authentication failed (forged, tampered or for another key)")]
    Forged,
    #[error("replayed or too old")]
    Replayed,
    #[error("expired connect token")]
    Expired,
    #[error("protocol version {0} (this side speaks {DATAGRAM_VERSION})")]
    Version(u8),
}

/// What a connect token grants, sealed inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub match_id: u32,
    pub seat: u32,
    pub name: String,
    /// The server instance that issued it (a restarted server refuses older tokens).
    pub instance: u64,
    /// Unix seconds.
    pub expires_at: u64,
    pub client_to_server: Key,
    pub server_to_client: Key,
}

/// The token as the client holds it: the sealed part it cannot open, the expiry and nonce
/// that authenticate it, and its copy of the session keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectToken {
    pub expires_at: u64,
    pub nonce: [u8; 24],
    /// `SEALED_TOKEN_BYTES` long.
    pub sealed: Vec<u8>,
    pub client_to_server: Key,
    pub server_to_client: Key,
}

fn token_aad(expires_at: u64) -> [u8; 9] {
    let mut aad = [0u8; 9];
    aad[0] = DATAGRAM_VERSION;
    aad[1..].copy_from_slice(&expires_at.to_le_bytes());
    aad
}

impl ConnectToken {
    /// Seals `claims` with the server's key. `nonce` must be unique per token (random).
    #[must_use]
    pub fn seal(server_key: &Key, claims: &Claims, nonce: [u8; 24]) -> Self {
        let mut plain = crate::protocol::encode(claims);
        // Padded to a fixed size, so every request is the same size.
        plain.resize(SEALED_TOKEN_BYTES - TAG, 0);
        let sealed = XChaCha20Poly1305::new(server_key.into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &token_aad(claims.expires_at),
                },
            )
            .expect("sealing a bounded buffer cannot fail");
        Self {
            expires_at: claims.expires_at,
            nonce,
            sealed,
            client_to_server: claims.client_to_server,
            server_to_client: claims.server_to_client,
        }
    }
}

impl ConnectToken {
    /// As text for JSON (`UdpTicket::connect_token`): bincode, then base64url.
    #[must_use]
    pub fn to_text(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::protocol::encode(self))
    }

    /// Reads [`ConnectToken::to_text`]'s form back.
    pub fn from_text(text: &str) -> Result<Self, DatagramError> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| DatagramError::Malformed)?;
        let (token, _): (Self, usize) = bincode::serde::decode_from_slice(
            &bytes,
            bincode::config::standard().with_limit::<4096>(),
        )
        .map_err(|_| DatagramError::Malformed)?;
        if token.sealed.len() != SEALED_TOKEN_BYTES {
            return Err(DatagramError::Malformed);
        }
        Ok(token)
    }
}

/// Server side: opens a sealed token (from a request) at `now_s` (Unix seconds).
pub fn open_token(
    server_key: &Key,
    expires_at: u64,
    nonce: &[u8; 24],
    sealed: &[u8],
    now_s: u64,
) -> Result<Claims, DatagramError> {
    if expires_at <= now_s {
        return Err(DatagramError::Expired);
    }
    let plain = XChaCha20Poly1305::new(server_key.into())
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &token_aad(expires_at),
            },
        )
        .map_err(|_| DatagramError::Forged)?;
    let (claims, _): (Claims, usize) =
        bincode::serde::decode_from_slice(&plain, bincode::config::standard())
            .map_err(|_| DatagramError::Malformed)?;
    if claims.expires_at != expires_at {
        return Err(DatagramError::Forged);
    }
    Ok(claims)
}

/// Packet kinds. The first byte of every packet is `vv sss kkk`: the version (2 bits), the
/// number of sequence-number bytes that follow minus one (3 bits; 0 for a request), the kind
/// (3 bits). Sequence numbers go in as few bytes as they need (netcode.io does the same): two
/// or three for a session of minutes to hours instead of eight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Request = 0,
    Challenge = 1,
    Response = 2,
    Payload = 3,
    Disconnect = 4,
    /// A piece of a server packet too big for one datagram (`play::fragments`).
    Fragment = 5,
}

impl Kind {
    fn from_bits(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Request,
            1 => Self::Challenge,
            2 => Self::Response,
            3 => Self::Payload,
            4 => Self::Disconnect,
            5 => Self::Fragment,
            _ => return None,
        })
    }
}

fn prefix(kind: Kind) -> u8 {
    prefix_with(kind, 1)
}

fn prefix_with(kind: Kind, seq_bytes: usize) -> u8 {
    (DATAGRAM_VERSION << 6) | (((seq_bytes.clamp(1, 8) - 1) as u8) << 3) | kind as u8
}

/// Bytes a sequence number needs (at least one).
fn seq_bytes(seq: u64) -> usize {
    (8 - seq.leading_zeros() as usize / 8).max(1)
}

/// The kind of a received packet (version checked), before anything is decrypted.
pub fn kind(packet: &[u8]) -> Result<Kind, DatagramError> {
    let b = *packet.first().ok_or(DatagramError::Malformed)?;
    if b >> 6 != DATAGRAM_VERSION {
        return Err(DatagramError::Version(b >> 6));
    }
    Kind::from_bits(b & 0x07).ok_or(DatagramError::Malformed)
}

/// A connection request: prefix, expiry, nonce, sealed token, zero padding to
/// `REQUEST_BYTES`.
#[must_use]
pub fn request(token: &ConnectToken) -> Vec<u8> {
    let mut out = Vec::with_capacity(REQUEST_BYTES);
    out.push(prefix(Kind::Request));
    out.extend_from_slice(&token.expires_at.to_le_bytes());
    out.extend_from_slice(&token.nonce);
    out.extend_from_slice(&token.sealed);
    out.resize(REQUEST_BYTES, 0);
    out
}

/// Server side: a request's claims, if its token opens. Requests of any other size are
/// dropped unread (no amplification: a reply is always smaller than `REQUEST_BYTES`).
pub fn open_request(server_key: &Key, packet: &[u8], now_s: u64) -> Result<Claims, DatagramError> {
    if packet.len() != REQUEST_BYTES || kind(packet)? != Kind::Request {
        return Err(DatagramError::Malformed);
    }
    let expires_at = u64::from_le_bytes(
        packet[1..9]
            .try_into()
            .map_err(|_| DatagramError::Malformed)?,
    );
    let nonce: [u8; 24] = packet[9..33]
        .try_into()
        .map_err(|_| DatagramError::Malformed)?;
    open_token(
        server_key,
        expires_at,
        &nonce,
        &packet[33..33 + SEALED_TOKEN_BYTES],
        now_s,
    )
}

/// The sending direction of a session: its key and the next sequence number.
///
/// The packet AEAD is ChaCha20-Poly1305 from `ring` (already here for TLS): measured on this
/// machine, a seal and an open of an 80-byte payload take 0.55 µs with it and 5 µs with the
/// RustCrypto crate's runtime-detected AVX2 backend, whose wide blocks do not pay off on
/// game-sized packets. (The connect token's XChaCha20-Poly1305, once per handshake, stays
/// with RustCrypto: `ring` has no XChaCha.)
pub struct Sealer {
    key: LessSafeKey,
    next_seq: u64,
}

fn packet_key(key: &Key) -> LessSafeKey {
    // A 32-byte key is always the right length for ChaCha20-Poly1305.
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).expect("a 256-bit key"))
}

impl Sealer {
    #[must_use]
    pub fn new(key: &Key) -> Self {
        Self {
            key: packet_key(key),
            next_seq: 0,
        }
    }

    /// Seals `payload` as a packet of `kind`: prefix, sequence number (as few bytes as it
    /// needs), ciphertext and tag. The prefix is the associated data.
    pub fn seal(&mut self, kind: Kind, payload: &[u8]) -> Vec<u8> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let n = seq_bytes(seq);
        let p = prefix_with(kind, n);
        let mut out = Vec::with_capacity(1 + n + payload.len() + TAG);
        out.push(p);
        out.extend_from_slice(&seq.to_le_bytes()[..n]);
        let head = out.len();
        out.extend_from_slice(payload);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(seq), Aad::from([p]), &mut out[head..])
            .expect("sealing a bounded buffer cannot fail");
        out.extend_from_slice(tag.as_ref());
        out
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

fn nonce(seq: u64) -> ring::aead::Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&seq.to_le_bytes());
    ring::aead::Nonce::assume_unique_for_key(n)
}

/// The receiving direction: the key and a replay window over sequence numbers.
pub struct Opener {
    key: LessSafeKey,
    window: ReplayWindow,
}

impl Opener {
    #[must_use]
    pub fn new(key: &Key) -> Self {
        Self {
            key: packet_key(key),
            window: ReplayWindow::default(),
        }
    }

    /// Opens a sealed packet: its kind, sequence number and payload. A packet that does not
    /// authenticate, or was seen before, or is older than the window, is refused (and does
    /// not move the window).
    pub fn open(&mut self, packet: &[u8]) -> Result<(Kind, u64, Vec<u8>), DatagramError> {
        let mut buf = Vec::new();
        let (k, seq) = self.open_into(packet, &mut buf)?;
        Ok((k, seq, buf))
    }

    /// Like [`Opener::open`], with the payload left in `buf` (cleared first; reused by a
    /// caller that opens many packets).
    pub fn open_into(
        &mut self,
        packet: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(Kind, u64), DatagramError> {
        let k = kind(packet)?;
        let n = usize::from((packet[0] >> 3) & 0x07) + 1;
        if packet.len() < 1 + n + TAG {
            return Err(DatagramError::Malformed);
        }
        let mut seq_le = [0u8; 8];
        seq_le[..n].copy_from_slice(&packet[1..1 + n]);
        let seq = u64::from_le_bytes(seq_le);
        if !self.window.fresh(seq) {
            return Err(DatagramError::Replayed);
        }
        buf.clear();
        buf.extend_from_slice(&packet[1 + n..]);
        let plain_len = self
            .key
            .open_in_place(nonce(seq), Aad::from([packet[0]]), buf)
            .map_err(|_| DatagramError::Forged)?
            .len();
        buf.truncate(plain_len);
        self.window.mark(seq);
        Ok((k, seq))
    }
}

/// Most connections half-way through the handshake; the oldest are forgotten beyond it.
pub const MAX_PENDING: usize = 4096;
/// How long a challenge waits for its response, seconds.
pub const CHALLENGE_TIMEOUT_S: u64 = 5;

/// A client seated by the handshake: its claims and its session's two directions.
#[derive(Debug)]
pub struct Session {
    pub claims: Claims,
    /// Opens what the client sends.
    pub from_client: Opener,
    /// Seals what the server sends.
    pub to_client: Sealer,
}

/// What the server does with a packet from an address it has no session for.
#[derive(Debug)]
pub enum Step {
    /// Send these bytes back to the sender (a challenge: smaller than the request).
    Reply(Vec<u8>),
    /// The handshake is complete: the client is who its token says.
    Connected(Box<Session>),
    /// Nothing is sent back.
    Drop(DatagramError),
}

#[derive(Debug)]
struct Pending {
    session: Session,
    cookie: [u8; 8],
    expires_at_s: u64,
}

/// The server side of the handshake, keyed by the sender's address (any `Eq + Hash` type,
/// a `SocketAddr` in the server). Sans-IO: the caller passes the time and fresh random bytes.
#[derive(Debug)]
pub struct Handshake<A> {
    key: Key,
    pending: std::collections::HashMap<A, Pending>,
    /// Token nonces already used, and by which address: a token works from one address only.
    used: std::collections::HashMap<[u8; 24], (A, u64)>,
}

impl<A: Clone + Eq + std::hash::Hash> Handshake<A> {
    #[must_use]
    pub fn new(server_key: Key) -> Self {
        Self {
            key: server_key,
            pending: std::collections::HashMap::new(),
            used: std::collections::HashMap::new(),
        }
    }

    /// Handles a request or a response from `from`. `cookie` must be fresh random bytes.
    pub fn on_packet(&mut self, from: &A, packet: &[u8], now_s: u64, cookie: [u8; 8]) -> Step {
        self.expire(now_s);
        match kind(packet) {
            Ok(Kind::Request) => self.on_request(from, packet, now_s, cookie),
            Ok(Kind::Response) => self.on_response(from, packet),
            Ok(_) => Step::Drop(DatagramError::Malformed),
            Err(e) => Step::Drop(e),
        }
    }

    fn on_request(&mut self, from: &A, packet: &[u8], now_s: u64, cookie: [u8; 8]) -> Step {
        let claims = match open_request(&self.key, packet, now_s) {
            Ok(c) => c,
            Err(e) => return Step::Drop(e),
        };
        let token_nonce: [u8; 24] = match packet[9..33].try_into() {
            Ok(n) => n,
            Err(_) => return Step::Drop(DatagramError::Malformed),
        };
        match self.used.get(&token_nonce) {
            Some((addr, _)) if addr != from => return Step::Drop(DatagramError::Replayed),
            _ => {
                self.used
                    .insert(token_nonce, (from.clone(), claims.expires_at));
            }
        }
        if self.pending.len() >= MAX_PENDING && !self.pending.contains_key(from) {
            // Forget the challenge closest to expiry.
            if let Some(oldest) = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.expires_at_s)
                .map(|(a, _)| a.clone())
            {
                self.pending.remove(&oldest);
            }
        }
        let mut to_client = Sealer::new(&claims.server_to_client);
        let challenge = to_client.seal(Kind::Challenge, &cookie);
        let session = Session {
            from_client: Opener::new(&claims.client_to_server),
            to_client,
            claims,
        };
        self.pending.insert(
            from.clone(),
            Pending {
                session,
                cookie,
                expires_at_s: now_s + CHALLENGE_TIMEOUT_S,
            },
        );
        Step::Reply(challenge)
    }

    fn on_response(&mut self, from: &A, packet: &[u8]) -> Step {
        let Some(p) = self.pending.get_mut(from) else {
            return Step::Drop(DatagramError::Malformed);
        };
        match p.session.from_client.open(packet) {
            Ok((Kind::Response, _, echoed)) if echoed == p.cookie => {}
            Ok(_) => return Step::Drop(DatagramError::Forged),
            Err(e) => return Step::Drop(e),
        }
        match self.pending.remove(from) {
            Some(p) => Step::Connected(Box::new(p.session)),
            None => Step::Drop(DatagramError::Malformed),
        }
    }

    fn expire(&mut self, now_s: u64) {
        self.pending.retain(|_, p| p.expires_at_s > now_s);
        self.used.retain(|_, (_, exp)| *exp > now_s);
    }

    /// Handshakes waiting for a response.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// The client side of the handshake: the request to send, then the response to a challenge.
#[derive(Debug)]
pub struct ClientHandshake {
    token: ConnectToken,
    to_server: Sealer,
    from_server: Opener,
}

impl ClientHandshake {
    #[must_use]
    pub fn new(token: ConnectToken) -> Self {
        Self {
            to_server: Sealer::new(&token.client_to_server),
            from_server: Opener::new(&token.server_to_client),
            token,
        }
    }

    /// The connection request (send it until a challenge comes back).
    #[must_use]
    pub fn request(&self) -> Vec<u8> {
        request(&self.token)
    }

    /// Answers a challenge: the response to send. The session's directions are then ready
    /// ([`ClientHandshake::into_session`]).
    pub fn on_challenge(&mut self, packet: &[u8]) -> Result<Vec<u8>, DatagramError> {
        match self.from_server.open(packet)? {
            (Kind::Challenge, _, cookie) => Ok(self.to_server.seal(Kind::Response, &cookie)),
            _ => Err(DatagramError::Malformed),
        }
    }

    /// The client's two directions: seal what it sends, open what the server sends.
    #[must_use]
    pub fn into_session(self) -> (Sealer, Opener) {
        (self.to_server, self.from_server)
    }
}

/// Which of the last `REPLAY_WINDOW` sequence numbers were received.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    /// One past the newest sequence number seen (0: none yet).
    top: u64,
    /// Bit `i` set: `top - 1 - i` was seen.
    seen: [u64; (REPLAY_WINDOW / 64) as usize],
}

impl ReplayWindow {
    /// Whether `seq` is new and inside the window.
    #[must_use]
    pub fn fresh(&self, seq: u64) -> bool {
        if seq >= self.top {
            return true;
        }
        let age = self.top - 1 - seq;
        age < REPLAY_WINDOW && self.seen[(age / 64) as usize] & (1 << (age % 64)) == 0
    }

    /// Records `seq` (call only after it authenticated).
    pub fn mark(&mut self, seq: u64) {
        if seq >= self.top {
            let shift = seq + 1 - self.top;
            self.shift(shift);
            self.top = seq + 1;
        }
        let age = self.top - 1 - seq;
        if age < REPLAY_WINDOW {
            self.seen[(age / 64) as usize] |= 1 << (age % 64);
        }
    }

    fn shift(&mut self, by: u64) {
        if by >= REPLAY_WINDOW {
            self.seen = Default::default();
            return;
        }
        let words = (by / 64) as usize;
        let bits = by % 64;
        let n = self.seen.len();
        for i in (0..n).rev() {
            let from = i.checked_sub(words);
            let hi = from.map_or(0, |f| self.seen[f] << bits);
            let lo = match from.and_then(|f| f.checked_sub(1)) {
                Some(g) if bits > 0 => self.seen[g] >> (64 - bits),
                _ => 0,
            };
            self.seen[i] = hi | lo;
        }
    }
}

pub mod play;
pub mod reliable;

#[cfg(test)]
mod tests;
