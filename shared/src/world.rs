//! The quantized world a snapshot carries: players, orbs and projectiles at one tick, plus
//! the checksum that lets a client prove it decoded exactly what the server has.

use serde::{Deserialize, Serialize};

use crate::quant::{POS_SCALE, QAngle, QVec, TRIG_ONE, cos_q14, div_round, sin_q14};
use crate::rules::{MAX_NAME_BYTES, PROJECTILE_SPEED, Params, truncate_utf8};
use crate::tick::{Seq, Tick};

/// A player's id, unique within a match and never reused there.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct PlayerId(pub u32);

impl std::fmt::Display for PlayerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A player's display name: at most [`MAX_NAME_BYTES`] of UTF-8, kept inline so that a
/// player's state is plain data. Every tick the server copies the players into each client's
/// view; with a reference-counted string each copy and each drop was an atomic operation, a
/// fifth of a view's time at 128 players (`perf`, issue 15).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Name {
    len: u8,
    bytes: [u8; MAX_NAME_BYTES],
}

impl Name {
    /// `s`, cut to [`MAX_NAME_BYTES`] on a character boundary.
    #[must_use]
    pub fn new(s: &str) -> Self {
        let s = truncate_utf8(s, MAX_NAME_BYTES);
        let mut bytes = [0; MAX_NAME_BYTES];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Self {
            len: s.len() as u8,
            bytes,
        }
    }

    /// The name, from bytes that are valid UTF-8 by construction.
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Name {
    fn from(s: String) -> Self {
        Self::new(&s)
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if s.len() > MAX_NAME_BYTES {
            return Err(serde::de::Error::custom("name longer than MAX_NAME_BYTES"));
        }
        Ok(Self::new(&s))
    }
}

/// One player's authoritative state: plain data (`Copy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayerState {
    pub id: PlayerId,
    /// Display name. Immutable for the player's life.
    pub name: Name,
    /// Centre, position steps.
    pub pos: QVec,
    /// Velocity, velocity steps.
    pub vel: QVec,
    pub aim: QAngle,
    pub score: u32,
    /// The last input sequence number the server applied: the client's acknowledgement.
    pub last_seq: Seq,
    /// Ticks until this player may fire again.
    pub cooldown: u16,
    /// Times this player was tagged (each tag respawns it).
    pub deaths: u16,
}

/// A projectile. Its motion is a pure function of where and when it was fired, so it never
/// changes after creation: the codec only sends creations and removals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Projectile {
    pub id: u32,
    pub owner: PlayerId,
    /// Position at `spawn_tick`.
    pub origin: QVec,
    pub aim: QAngle,
    pub spawn_tick: Tick,
}

impl Projectile {
    /// Displacement per tick, position steps.
    #[must_use]
    pub fn step(aim: QAngle, params: &Params) -> QVec {
        let per_tick = |trig: i32| {
            let n = i64::from(trig) * i64::from(PROJECTILE_SPEED) * i64::from(POS_SCALE);
            div_round(n, i64::from(TRIG_ONE) * i64::from(params.tick_hz)) as i32
        };
        QVec::new(per_tick(cos_q14(aim)), per_tick(sin_q14(aim)))
    }

    /// Position at tick `now`.
    #[must_use]
    pub fn pos_at(&self, now: Tick, params: &Params) -> QVec {
        let age = now.diff(self.spawn_tick).max(0);
        let s = Self::step(self.aim, params);
        QVec::new(self.origin.x + s.x * age, self.origin.y + s.y * age)
    }
}

/// Where a match is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// Waiting for enough players (or for the waiting timeout). Scores do not count.
    #[default]
    Waiting,
    /// Counting down to the start. Scores do not count.
    Countdown,
    /// Playing: orbs and tags score.
    Running,
    /// Over: the ranking is final.
    Ended,
}

impl Phase {
    /// The 2-bit wire value.
    #[must_use]
    pub fn to_bits(self) -> u8 {
        match self {
            Self::Waiting => 0,
            Self::Countdown => 1,
            Self::Running => 2,
            Self::Ended => 3,
        }
    }

    #[must_use]
    pub fn from_bits(b: u8) -> Self {
        match b & 3 {
            0 => Self::Waiting,
            1 => Self::Countdown,
            2 => Self::Running,
            _ => Self::Ended,
        }
    }
}

/// The world at one tick: what a snapshot carries. Players and projectiles are sorted by id;
/// `orbs` has `ORB_COUNT` entries (orb `i` is the `i`-th slot).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorldState {
    pub tick: Tick,
    pub phase: Phase,
    /// The tick at which the current phase ends (time left = `phase_end - tick` ticks).
    pub phase_end: Tick,
    pub players: Vec<PlayerState>,
    pub orbs: Vec<QVec>,
    pub projectiles: Vec<Projectile>,
}

impl WorldState {
    /// Seconds left in the current phase (0 when it is over).
    #[must_use]
    pub fn seconds_left(&self, tick_hz: u32) -> f32 {
        self.phase_end.diff(self.tick).max(0) as f32 / tick_hz.max(1) as f32
    }

    /// The player with `id`, if present.
    #[must_use]
    pub fn player(&self, id: PlayerId) -> Option<&PlayerState> {
        self.players
            .binary_search_by_key(&id, |p| p.id)
            .ok()
            .map(|i| &self.players[i])
    }

    /// FNV-1a (32-bit) over every field of the world in canonical order. Sent at least once a
    /// second; a client whose decoded world hashes differently has desynced.
    #[must_use]
    pub fn checksum(&self) -> u32 {
        let mut h = Fnv::new();
        h.u32(self.tick.0);
        h.u32(u32::from(self.phase.to_bits()));
        h.u32(self.phase_end.0);
        h.u32(self.players.len() as u32);
        for p in &self.players {
            h.u32(p.id.0);
            h.bytes(p.name.as_bytes());
            h.i32(p.pos.x);
            h.i32(p.pos.y);
            h.i32(p.vel.x);
            h.i32(p.vel.y);
            h.u32(u32::from(p.aim.steps()));
            h.u32(p.score);
            h.u32(p.last_seq.0);
            h.u32(u32::from(p.cooldown));
            h.u32(u32::from(p.deaths));
        }
        h.u32(self.orbs.len() as u32);
        for o in &self.orbs {
            h.i32(o.x);
            h.i32(o.y);
        }
        h.u32(self.projectiles.len() as u32);
        for p in &self.projectiles {
            h.u32(p.id);
            h.u32(p.owner.0);
            h.i32(p.origin.x);
            h.i32(p.origin.y);
            h.u32(u32::from(p.aim.steps()));
            h.u32(p.spawn_tick.0);
        }
        h.finish()
    }
}

struct Fnv(u32);

impl Fnv {
    fn new() -> Self {
        Self(0x811C_9DC5)
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        for &x in b {
            self.0 ^= u32::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }
    fn u32(&mut self, v: u32) {
        for x in v.to_le_bytes() {
            self.0 ^= u32::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }
    fn i32(&mut self, v: i32) {
        self.u32(v as u32);
    }
    fn finish(&self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_on_a_character_boundary_and_read_back_as_written() {
        assert_eq!(Name::new("alice").as_str(), "alice");
        assert_eq!(Name::default().as_str(), "");
        // 15 ASCII bytes then a two-byte character: the character does not fit in 16.
        let long = format!("{}é", "a".repeat(15));
        assert_eq!(Name::new(&long).as_str(), "a".repeat(15));
        let exact = format!("{}é", "a".repeat(14));
        assert_eq!(Name::new(&exact).as_str(), exact);
        assert_eq!(Name::new("bob"), Name::new("bob"));
        assert_ne!(Name::new("bob"), Name::new("bobby"));
    }

    #[test]
    fn names_serialize_as_strings_and_refuse_overlong_ones() {
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(Name::new("zoë"), config).expect("encode");
        assert_eq!(
            bytes,
            bincode::serde::encode_to_vec("zoë", config).expect("encode")
        );
        let (back, _): (Name, usize) =
            bincode::serde::decode_from_slice(&bytes, config).expect("decode");
        assert_eq!(back, "zoë");
        let long = bincode::serde::encode_to_vec("x".repeat(17), config).expect("encode");
        let err = bincode::serde::decode_from_slice::<Name, _>(&long, config);
        assert!(err.is_err(), "a 17-byte name was accepted: {err:?}");
    }
}
