//! The snapshot codec: a world coded against a baseline world, bit-packed.
//!
//! Layout (all integers through [`crate::bits`]; `EGk` = Exp-Golomb of order k, `sEGk` =
//! zig-zag then EGk):
//!
//! ```text
//! checksum?      1 bit, then 32 bits of WorldState::checksum when set
//! phase          with a baseline, 1 bit changed; when changed or full: 2 bits phase
//!                (waiting, countdown, running, ended) and 32 bits phase end tick
//! players        with a baseline, for each baseline player in id order:
//!                  1 bit changed; if changed: 1 bit removed; if kept:
//!                  1 bit "same field mask as the previous changed player", else 7 mask bits
//!                  (vel, pos, aim, seq, score, cooldown, deaths), then a residual per set bit:
//!                    vel      sEG3 per axis, against the baseline velocity
//!                    pos      sEG2 per axis, against baseline pos + age * displacement(vel)
//!                    aim      sEG3, shortest signed difference in aim steps
//!                    seq      sEG0, against baseline seq + age (one input per tick)
//!                    score    sEG0, cooldown sEG1 against max(baseline - age, 0), deaths sEG0
//!                EG0 count of new players, each: id (EG0 first, then EG0 of the gap - 1),
//!                  name (5-bit byte length + bytes), pos sEG13 x2, vel sEG6 x2, aim 10 bits,
//!                  score EG4, seq 32 bits, cooldown EG2, deaths EG1
//! orbs           1 bit full; full: EG0 count + positions (sEG13 x2);
//!                delta: EG0 count of moved orbs, each: index gap EG0 + position
//! projectiles    with a baseline, 1 removed bit per baseline projectile; then EG0 count of
//!                new ones, each: id (as players), owner EG0, origin sEG13 x2, aim 10 bits,
//!                spawn tick as sEG2 of (tick - spawn_tick)
//! ```
//!
//! The age is `tick - baseline.tick`. Projectiles never change after creation (their motion
//! is a function of origin, aim and age), so they cost bits only when fired and when gone.
//! A full snapshot is the same layout with no baseline: every entity is a creation.

use crate::bits::{BitCount, BitError, BitReader, BitSink, BitWriter};
use crate::quant::{AIM_STEPS, QAngle, QVec};
use crate::rules::{MAX_NAME_BYTES, MAX_PLAYERS, Params};
use crate::sim::displacement;
use crate::tick::{Seq, Tick};
use crate::world::{Name, Phase, PlayerId, PlayerState, Projectile, WorldState};

/// Most orbs a snapshot may carry.
pub const MAX_ORBS: usize = 1024;
/// Most projectiles a snapshot may carry.
pub const MAX_PROJECTILES: usize = 4096;

const AIM_BITS: u32 = AIM_STEPS.trailing_zeros();
const MASK_BITS: u32 = 7;
const F_VEL: u8 = 1 << 0;
const F_POS: u8 = 1 << 1;
const F_AIM: u8 = 1 << 2;
const F_SEQ: u8 = 1 << 3;
const F_SCORE: u8 = 1 << 4;
const F_COOLDOWN: u8 = 1 << 5;
const F_DEATHS: u8 = 1 << 6;

/// Why snapshot bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error(transparent)]
    Bits(#[from] BitError),
    #[error("snapshot is for tick {tick} but its baseline is tick {base} (not before it)")]
    BadBaseline { tick: u32, base: u32 },
    #[error("too many {what}: {count}")]
    TooMany { what: &'static str, count: u64 },
    #[error("value out of range in {0}")]
    OutOfRange(&'static str),
    #[error("duplicate or unsorted id {0}")]
    BadId(u64),
    #[error("player name is not valid UTF-8")]
    BadName,
    #[error("{0} unread bytes after the snapshot")]
    TrailingBytes(usize),
}

/// A decoded snapshot: the world, and the checksum the server sent with it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub world: WorldState,
    pub checksum: Option<u32>,
}

impl Decoded {
    /// `Some(true)` when a checksum came along and the decoded world matches it.
    #[must_use]
    pub fn verify(&self) -> Option<bool> {
        self.checksum.map(|c| c == self.world.checksum())
    }
}

/// Encodes `cur` against `base` (or in full when `base` is `None`), with `checksum` if given.
/// `base.tick` must be before `cur.tick`.
#[must_use]
pub fn encode(
    base: Option<&WorldState>,
    cur: &WorldState,
    checksum: Option<u32>,
    params: &Params,
) -> Vec<u8> {
    encode_into(base, cur, checksum, params, Reuse::None)
}

/// What an encoding records of, or takes from, a shared encoding of the same tick.
enum Reuse<'a> {
    None,
    /// Record where each kept player's residuals go (by index in `cur.players`), and where
    /// the orbs go.
    Record(&'a mut Vec<Option<Entry>>, &'a mut Option<Section>),
    /// Copy residuals from `shared` where `hints` (by index in `cur.players`) say so.
    Copy {
        shared: &'a SharedDelta,
        hints: &'a [Option<u16>],
    },
}

fn encode_into(
    base: Option<&WorldState>,
    cur: &WorldState,
    checksum: Option<u32>,
    params: &Params,
    mut reuse: Reuse<'_>,
) -> Vec<u8> {
    let mut w = BitWriter::with_capacity(64 + 8 * cur.players.len());
    w.bit(checksum.is_some());
    if let Some(c) = checksum {
        w.bits(u64::from(c), 32);
    }
    let age = base.map_or(0, |b| cur.tick.diff(b.tick));
    let phase_changed = base.is_none_or(|b| b.phase != cur.phase || b.phase_end != cur.phase_end);
    if base.is_some() {
        w.bit(phase_changed);
    }
    if phase_changed {
        w.bits(u64::from(cur.phase.to_bits()), 2);
        w.bits(u64::from(cur.phase_end.0), 32);
    }
    encode_players(
        &mut w,
        base.map(|b| b.players.as_slice()),
        &cur.players,
        age,
        params,
        &mut reuse,
    );
    let base_orbs = base.map(|b| b.orbs.as_slice());
    match &mut reuse {
        Reuse::Record(_, orbs) => {
            let start = w.bit_len();
            encode_orbs(&mut w, base_orbs, &cur.orbs);
            **orbs = Some(Section {
                start: start as u32,
                len: (w.bit_len() - start) as u32,
            });
        }
        Reuse::Copy { shared, .. } if shared.orbs_apply(base_orbs, &cur.orbs) => {
            let section = shared.orbs.section.unwrap_or_default();
            w.append_range(&shared.bytes, section.start as usize, section.len as usize);
        }
        _ => encode_orbs(&mut w, base_orbs, &cur.orbs),
    }
    encode_projectiles(&mut w, base.map(|b| b.projectiles.as_slice()), cur);
    w.finish()
}

/// Decodes a snapshot for `tick` against `base` (which must be the world the encoder used).
pub fn decode(
    base: Option<&WorldState>,
    tick: Tick,
    bytes: &[u8],
    params: &Params,
) -> Result<Decoded, CodecError> {
    let age = match base {
        Some(b) if !tick.is_after(b.tick) => {
            return Err(CodecError::BadBaseline {
                tick: tick.0,
                base: b.tick.0,
            });
        }
        Some(b) => tick.diff(b.tick),
        None => 0,
    };
    let mut r = BitReader::new(bytes);
    let checksum = if r.bit()? {
        Some(r.bits(32)? as u32)
    } else {
        None
    };
    let (phase, phase_end) = match base {
        Some(b) if !r.bit()? => (b.phase, b.phase_end),
        _ => (Phase::from_bits(r.bits(2)? as u8), Tick(r.bits(32)? as u32)),
    };
    let players = decode_players(&mut r, base.map(|b| b.players.as_slice()), age, params)?;
    let orbs = decode_orbs(&mut r, base.map(|b| b.orbs.as_slice()))?;
    let projectiles = decode_projectiles(&mut r, base.map(|b| b.projectiles.as_slice()), tick)?;
    for p in &players {
        within(p.pos, MAX_DECODED_POS, "position")?;
        within(p.vel, MAX_DECODED_VEL, "velocity")?;
    }
    for o in &orbs {
        within(*o, MAX_DECODED_POS, "orb position")?;
    }
    for p in &projectiles {
        within(p.origin, MAX_DECODED_POS, "projectile origin")?;
    }
    if !r.at_end() {
        return Err(CodecError::TrailingBytes(r.remaining_bits() / 8));
    }
    Ok(Decoded {
        world: WorldState {
            tick,
            phase,
            phase_end,
            players,
            orbs,
            projectiles,
        },
        checksum,
    })
}

// ---- players ----------------------------------------------------------------------------

fn predicted_pos(base: &PlayerState, vel: QVec, age: i32, params: &Params) -> QVec {
    let (dx, dy) = (displacement(vel.x, params), displacement(vel.y, params));
    QVec::new(
        base.pos.x.wrapping_add(dx.wrapping_mul(age)),
        base.pos.y.wrapping_add(dy.wrapping_mul(age)),
    )
}

fn predicted_cooldown(base: &PlayerState, age: i32) -> i64 {
    (i64::from(base.cooldown) - i64::from(age)).max(0)
}

/// A kept player's fields against what its baseline predicts, and which of them differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Residuals {
    mask: u8,
    vel: (i64, i64),
    pos: (i64, i64),
    aim: i64,
    seq: i64,
    score: i64,
    cool: i64,
    deaths: i64,
}

impl Residuals {
    fn of(b: &PlayerState, c: &PlayerState, age: i32, params: &Params) -> Self {
        let pos_pred = predicted_pos(b, c.vel, age, params);
        let mut r = Self {
            mask: 0,
            vel: (
                i64::from(c.vel.x) - i64::from(b.vel.x),
                i64::from(c.vel.y) - i64::from(b.vel.y),
            ),
            pos: (
                i64::from(c.pos.x) - i64::from(pos_pred.x),
                i64::from(c.pos.y) - i64::from(pos_pred.y),
            ),
            aim: i64::from(c.aim.diff(b.aim)),
            seq: i64::from(c.last_seq.diff(b.last_seq.plus(age as u32))),
            score: i64::from(c.score) - i64::from(b.score),
            cool: i64::from(c.cooldown) - predicted_cooldown(b, age),
            deaths: i64::from(c.deaths) - i64::from(b.deaths),
        };
        for (set, flag) in [
            (r.vel != (0, 0), F_VEL),
            (r.pos != (0, 0), F_POS),
            (r.aim != 0, F_AIM),
            (r.seq != 0, F_SEQ),
            (r.score != 0, F_SCORE),
            (r.cool != 0, F_COOLDOWN),
            (r.deaths != 0, F_DEATHS),
        ] {
            if set {
                r.mask |= flag;
            }
        }
        r
    }

    /// Writes the player's entry (the removed bit included); `prev_mask` is the mask of the
    /// previous changed player, updated.
    fn write(&self, w: &mut impl BitSink, prev_mask: &mut u8) {
        write_kept_header(w, self.mask, prev_mask);
        self.write_values(w);
    }

    /// The residuals the mask announces.
    fn write_values(&self, w: &mut impl BitSink) {
        if self.mask & F_VEL != 0 {
            w.put_signed(self.vel.0, 3);
            w.put_signed(self.vel.1, 3);
        }
        if self.mask & F_POS != 0 {
            w.put_signed(self.pos.0, 2);
            w.put_signed(self.pos.1, 2);
        }
        if self.mask & F_AIM != 0 {
            w.put_signed(self.aim, 3);
        }
        if self.mask & F_SEQ != 0 {
            w.put_signed(self.seq, 0);
        }
        if self.mask & F_SCORE != 0 {
            w.put_signed(self.score, 0);
        }
        if self.mask & F_COOLDOWN != 0 {
            w.put_signed(self.cool, 1);
        }
        if self.mask & F_DEATHS != 0 {
            w.put_signed(self.deaths, 0);
        }
    }
}

/// A kept player's entry up to its residuals: changed, removed, and its mask (or "the same as
/// the previous changed player's").
fn write_kept_header(w: &mut impl BitSink, mask: u8, prev_mask: &mut u8) {
    let (v, n) = kept_header(mask, prev_mask);
    w.put_bits(v, n);
}

/// [`write_kept_header`]'s bits as one word (first bit lowest) and their count.
#[inline]
fn kept_header(mask: u8, prev_mask: &mut u8) -> (u64, u32) {
    if mask == 0 {
        (0, 1) // unchanged
    } else if mask == *prev_mask {
        (0b101, 3) // changed, kept, the same mask
    } else {
        *prev_mask = mask;
        (0b001 | u64::from(mask) << 3, 3 + MASK_BITS) // changed, kept, this mask
    }
}

/// Where one kept player's residuals sit in a [`SharedDelta`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    mask: u8,
    start: u32,
    len: u32,
    /// What [`SharedDelta::player_bits`] answers for it (priced once, when recorded).
    bits: u32,
    /// The residuals themselves when they fit one write (at most 57 bits, nearly always):
    /// a view copies them with one write instead of reading them out of the bytes.
    word: Option<u64>,
    /// The player's state in the baseline: a client holding exactly this state gets these
    /// bits.
    base: PlayerState,
}

impl Entry {
    /// Writes the entry, its header against `prev_mask`, copied from `bytes` (the shared
    /// delta's).
    #[inline]
    fn copy_to(&self, w: &mut BitWriter, bytes: &[u8], prev_mask: &mut u8) {
        let (h, hn) = kept_header(self.mask, prev_mask);
        match self.word {
            Some(v) if hn + self.len <= 57 => w.bits(h | v << hn, hn + self.len),
            _ => {
                w.bits(h, hn);
                w.append_range(bytes, self.start as usize, self.len as usize);
            }
        }
    }
}

/// A run of bits in a [`SharedDelta`]'s bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Section {
    start: u32,
    len: u32,
}

/// The orbs' part of a [`SharedDelta`]: the orbs it is coded from and to, and its bits.
#[derive(Debug, Clone, Default)]
struct SharedOrbs {
    base: Option<Vec<QVec>>,
    cur: Vec<QVec>,
    section: Option<Section>,
}

/// One tick's snapshot of the whole match against the tick before, coded once, and where each
/// kept player's residuals sit in it (and the orbs, which every client is sent whole). A
/// client's own view of the tick (interest management: a subset of the match, some players
/// held at the client's prediction) copies a player's residuals from here whenever it holds
/// that player's state of the tick before and gets its exact state now, which is most
/// players most ticks ([`encode_view`]): its snapshot is then mostly a copy of shared bits,
/// not an encode.
#[derive(Debug, Clone, Default)]
pub struct SharedDelta {
    /// The tick it is coded against (`None`: a full snapshot).
    pub base: Option<Tick>,
    /// The whole match's snapshot.
    pub bytes: Vec<u8>,
    /// By index in the tick's `players`: its residuals, if it was kept from the tick before.
    entries: Vec<Option<Entry>>,
    orbs: SharedOrbs,
}

impl SharedDelta {
    /// Encodes `cur` against `base` (an earlier world of the match; `None`: in full),
    /// recording the entries.
    #[must_use]
    pub fn encode(
        base: Option<&WorldState>,
        cur: &WorldState,
        checksum: Option<u32>,
        params: &Params,
    ) -> Self {
        let (mut entries, mut section) = (vec![None; cur.players.len()], None);
        let bytes = encode_into(
            base,
            cur,
            checksum,
            params,
            Reuse::Record(&mut entries, &mut section),
        );
        Self {
            base: base.map(|b| b.tick),
            bytes,
            entries,
            orbs: SharedOrbs {
                base: base.map(|b| b.orbs.clone()),
                cur: cur.orbs.clone(),
                section,
            },
        }
    }

    /// Whether a snapshot coding orbs `cur` against `base` codes them as this delta does
    /// (the same orbs at both ends: every client is sent the match's orbs).
    fn orbs_apply(&self, base: Option<&[QVec]>, cur: &[QVec]) -> bool {
        let same = |a: Option<&[QVec]>, b: Option<&[QVec]>| match (a, b) {
            (Some(a), Some(b)) => same_positions(a, b),
            (None, None) => true,
            _ => false,
        };
        self.orbs.section.is_some()
            && same(self.orbs.base.as_deref(), base)
            && same_positions(&self.orbs.cur, cur)
    }

    /// The bits the orbs take in this delta. A client's snapshot against the same baseline
    /// tick copies them (every client is sent the match's orbs; [`encode_view`] checks that
    /// its orbs are these before it copies), so this is their price there too.
    #[must_use]
    pub fn orbs_bits(&self) -> Option<usize> {
        self.orbs.section.map(|s| s.len as usize)
    }

    /// What [`player_bits`] says of the match's player `i` for a client that holds it at
    /// `held`, when its entry here applies: the player was kept from the baseline and
    /// `held` is its state there. `None` otherwise.
    #[must_use]
    pub fn player_bits(&self, i: usize, held: &PlayerState) -> Option<usize> {
        self.entries
            .get(i)?
            .as_ref()
            .filter(|e| e.base == *held)
            .map(|e| e.bits as usize)
    }
}

/// Encodes a client's view `view` of a tick against `base`, like [`encode`] (the same bytes),
/// copying a player's residuals from `shared` (a [`SharedDelta`] of the tick against
/// `base`'s tick) where `hints[i]` (by index in `view.players`) names its index in the
/// match's world: which the caller may do only when [`SharedDelta::player_bits`] answers for
/// the state the client holds (the match's state of the baseline's tick), and `view` has
/// the player's exact state of this tick.
#[must_use]
pub fn encode_view(
    base: Option<&WorldState>,
    view: &WorldState,
    checksum: Option<u32>,
    params: &Params,
    shared: &SharedDelta,
    hints: &[Option<u16>],
) -> Vec<u8> {
    if hints.len() != view.players.len() || base.map(|b| b.tick) != shared.base {
        return encode(base, view, checksum, params);
    }
    encode_into(base, view, checksum, params, Reuse::Copy { shared, hints })
}

/// Whether two lists of positions are the same, without an early exit per element (so it
/// compiles to a few wide instructions: views compare the match's orbs for every client).
fn same_positions(a: &[QVec], b: &[QVec]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .fold(0, |diff, (p, q)| diff | (p.x ^ q.x) | (p.y ^ q.y))
            == 0
}

/// A created player's entry after its id.
fn write_created(w: &mut impl BitSink, p: &PlayerState) {
    // `Name` holds at most `MAX_NAME_BYTES`: the 5-bit field fits.
    let name = p.name.as_bytes();
    w.put_bits(name.len() as u64, 5);
    for &b in name {
        w.put_bits(u64::from(b), 8);
    }
    w.put_signed(i64::from(p.pos.x), 13);
    w.put_signed(i64::from(p.pos.y), 13);
    w.put_signed(i64::from(p.vel.x), 6);
    w.put_signed(i64::from(p.vel.y), 6);
    w.put_bits(u64::from(p.aim.steps()), AIM_BITS);
    w.put_exp_golomb(u64::from(p.score), 4);
    w.put_bits(u64::from(p.last_seq.0), 32);
    w.put_exp_golomb(u64::from(p.cooldown), 2);
    w.put_exp_golomb(u64::from(p.deaths), 1);
}

/// What a client decodes for a player the snapshot marks unchanged: its baseline state `age`
/// ticks on (position along its velocity, one input per tick, cooldown run down). A server
/// that leaves a player out of a client's update (interest management) sends this: it costs
/// one bit.
#[must_use]
pub fn predict_player(b: &PlayerState, age: i32, params: &Params) -> PlayerState {
    let mut p = *b;
    p.pos = predicted_pos(b, b.vel, age, params);
    p.last_seq = b.last_seq.plus(age as u32);
    p.cooldown = predicted_cooldown(b, age) as u16;
    p
}

/// A "previous mask" no mask equals (masks are 7 bits): prices an entry with its mask in full.
const NO_PREVIOUS_MASK: u8 = u8::MAX;

/// Bits `cur` costs in a snapshot `age` ticks after `base`: its entry against its baseline
/// state, or as a creation (with its id, at most 17 bits) when it has none. The mask is
/// priced in full (a snapshot may spare it when the previous player's is the same).
#[must_use]
pub fn player_bits(
    base: Option<&PlayerState>,
    cur: &PlayerState,
    age: i32,
    params: &Params,
) -> usize {
    let mut c = BitCount::default();
    match base.filter(|b| same_name(b, cur)) {
        Some(b) => {
            let mut none = NO_PREVIOUS_MASK;
            Residuals::of(b, cur, age, params).write(&mut c, &mut none);
        }
        None => {
            c.put_bits(0, 17 + u32::from(base.is_some()) * 2);
            write_created(&mut c, cur);
        }
    }
    c.0
}

/// Whether two states of a player carry the same name.
fn same_name(a: &PlayerState, b: &PlayerState) -> bool {
    a.name == b.name
}

fn encode_players(
    w: &mut BitWriter,
    base: Option<&[PlayerState]>,
    cur: &[PlayerState],
    age: i32,
    params: &Params,
    reuse: &mut Reuse<'_>,
) {
    let mut created: Vec<&PlayerState> = Vec::new();
    if let Some(base) = base {
        let mut prev_mask = 0u8;
        let mut ci = 0;
        for b in base {
            while ci < cur.len() && cur[ci].id < b.id {
                created.push(&cur[ci]);
                ci += 1;
            }
            // A player whose name changed under the same id is sent as removed + created.
            let kept = match cur.get(ci) {
                Some(c) if c.id == b.id => {
                    ci += 1;
                    if same_name(c, b) {
                        Some(c)
                    } else {
                        created.push(c);
                        None
                    }
                }
                _ => None,
            };
            let Some(c) = kept else {
                w.bit(true); // changed
                w.bit(true); // removed
                continue;
            };
            let i = ci - 1; // c's index in `cur`
            match reuse {
                Reuse::Copy { shared, hints } => {
                    let entry = hints[i].and_then(|j| shared.entries.get(usize::from(j))?.as_ref());
                    match entry {
                        Some(e) => e.copy_to(w, &shared.bytes, &mut prev_mask),
                        None => Residuals::of(b, c, age, params).write(w, &mut prev_mask),
                    }
                }
                Reuse::Record(map, _) => {
                    let r = Residuals::of(b, c, age, params);
                    write_kept_header(w, r.mask, &mut prev_mask);
                    let start = w.bit_len();
                    r.write_values(w);
                    let len = (w.bit_len() - start) as u32;
                    let (mut header, mut none) = (BitCount::default(), NO_PREVIOUS_MASK);
                    write_kept_header(&mut header, r.mask, &mut none);
                    map[i] = Some(Entry {
                        mask: r.mask,
                        start: start as u32,
                        len,
                        bits: header.0 as u32 + len,
                        word: w.tail_word(start),
                        base: *b,
                    });
                }
                Reuse::None => Residuals::of(b, c, age, params).write(w, &mut prev_mask),
            }
        }
        created.extend(&cur[ci..]);
    } else {
        created.extend(cur);
    }
    w.exp_golomb(created.len() as u64, 0);
    let mut prev: Option<u32> = None;
    for p in created {
        write_id(w, &mut prev, p.id.0);
        write_created(w, p);
    }
}

fn write_id(w: &mut BitWriter, prev: &mut Option<u32>, id: u32) {
    match *prev {
        None => w.exp_golomb(u64::from(id), 0),
        Some(p) => w.exp_golomb(u64::from(id - p - 1), 0),
    }
    *prev = Some(id);
}

fn read_id(r: &mut BitReader<'_>, prev: &mut Option<u32>) -> Result<u32, CodecError> {
    let v = r.exp_golomb(0)?;
    let id = match *prev {
        None => v,
        Some(p) => u64::from(p) + 1 + v,
    };
    let id = u32::try_from(id).map_err(|_| CodecError::BadId(id))?;
    *prev = Some(id);
    Ok(id)
}

/// Largest velocity component a decoded snapshot may carry. The rules stay under a few
/// thousand steps; the bound keeps a client's prediction (`sim`, in `i64`) far from overflow
/// whatever a server sends.
pub const MAX_DECODED_VEL: i32 = 1 << 16;
/// Largest position component a decoded snapshot may carry (four arena widths).
pub const MAX_DECODED_POS: i32 = crate::rules::ARENA_MAX_Q * 4;

fn within(v: QVec, max: i32, what: &'static str) -> Result<(), CodecError> {
    if v.x.unsigned_abs() > max.unsigned_abs() || v.y.unsigned_abs() > max.unsigned_abs() {
        return Err(CodecError::OutOfRange(what));
    }
    Ok(())
}

fn to_i32(v: i64, what: &'static str) -> Result<i32, CodecError> {
    i32::try_from(v).map_err(|_| CodecError::OutOfRange(what))
}

fn add_i32(base: i32, r: i64, what: &'static str) -> Result<i32, CodecError> {
    to_i32(i64::from(base) + r, what)
}

fn decode_players(
    r: &mut BitReader<'_>,
    base: Option<&[PlayerState]>,
    age: i32,
    params: &Params,
) -> Result<Vec<PlayerState>, CodecError> {
    let mut out: Vec<PlayerState> = Vec::with_capacity(base.map_or(0, <[_]>::len));
    if let Some(base) = base {
        let mut prev_mask = 0u8;
        for b in base {
            let mask = if !r.bit()? {
                0 // exactly as predicted
            } else if r.bit()? {
                continue; // removed
            } else {
                if !r.bit()? {
                    prev_mask = r.bits(MASK_BITS)? as u8;
                }
                prev_mask
            };
            // What "unchanged" means (`predict_player`), then the residuals on top.
            let mut p = predict_player(b, age, params);
            if mask & F_VEL != 0 {
                p.vel.x = add_i32(b.vel.x, r.signed(3)?, "velocity")?;
                p.vel.y = add_i32(b.vel.y, r.signed(3)?, "velocity")?;
                p.pos = predicted_pos(b, p.vel, age, params);
            }
            if mask & F_POS != 0 {
                p.pos.x = add_i32(p.pos.x, r.signed(2)?, "position")?;
                p.pos.y = add_i32(p.pos.y, r.signed(2)?, "position")?;
            }
            if mask & F_AIM != 0 {
                let d = r.signed(3)?;
                if d.abs() > i64::from(AIM_STEPS) {
                    return Err(CodecError::OutOfRange("aim"));
                }
                p.aim = b.aim.offset(d as i32);
            }
            if mask & F_SEQ != 0 {
                p.last_seq = Seq(p
                    .last_seq
                    .0
                    .wrapping_add(to_i32(r.signed(0)?, "seq")? as u32));
            }
            if mask & F_SCORE != 0 {
                p.score = u32::try_from(i64::from(b.score) + r.signed(0)?)
                    .map_err(|_| CodecError::OutOfRange("score"))?;
            }
            if mask & F_COOLDOWN != 0 {
                p.cooldown = u16::try_from(i64::from(p.cooldown) + r.signed(1)?)
                    .map_err(|_| CodecError::OutOfRange("cooldown"))?;
            }
            if mask & F_DEATHS != 0 {
                p.deaths = u16::try_from(i64::from(b.deaths) + r.signed(0)?)
                    .map_err(|_| CodecError::OutOfRange("deaths"))?;
            }
            out.push(p);
        }
    }
    let count = r.exp_golomb(0)?;
    if count as usize > MAX_PLAYERS || out.len() + count as usize > MAX_PLAYERS {
        return Err(CodecError::TooMany {
            what: "players",
            count,
        });
    }
    let mut prev = None;
    let kept = out.len();
    for _ in 0..count {
        let id = PlayerId(read_id(r, &mut prev)?);
        let len = r.bits(5)? as usize;
        if len > MAX_NAME_BYTES {
            return Err(CodecError::OutOfRange("name length"));
        }
        let mut bytes = [0u8; MAX_NAME_BYTES];
        for b in &mut bytes[..len] {
            *b = r.bits(8)? as u8;
        }
        let name = Name::new(std::str::from_utf8(&bytes[..len]).map_err(|_| CodecError::BadName)?);
        let pos = QVec::new(
            to_i32(r.signed(13)?, "position")?,
            to_i32(r.signed(13)?, "position")?,
        );
        let vel = QVec::new(
            to_i32(r.signed(6)?, "velocity")?,
            to_i32(r.signed(6)?, "velocity")?,
        );
        let aim = QAngle::new(r.bits(AIM_BITS)? as u16);
        let score = u32::try_from(r.exp_golomb(4)?).map_err(|_| CodecError::OutOfRange("score"))?;
        let last_seq = Seq(r.bits(32)? as u32);
        let cooldown =
            u16::try_from(r.exp_golomb(2)?).map_err(|_| CodecError::OutOfRange("cooldown"))?;
        let deaths =
            u16::try_from(r.exp_golomb(1)?).map_err(|_| CodecError::OutOfRange("deaths"))?;
        out.push(PlayerState {
            id,
            name,
            pos,
            vel,
            aim,
            score,
            last_seq,
            cooldown,
            deaths,
        });
    }
    if count > 0 && kept > 0 {
        out.sort_by_key(|p| p.id);
    }
    if out.windows(2).any(|w| w[0].id >= w[1].id) {
        return Err(CodecError::BadId(0));
    }
    Ok(out)
}

// ---- orbs -------------------------------------------------------------------------------

fn write_pos(w: &mut BitWriter, p: QVec) {
    w.signed(i64::from(p.x), 13);
    w.signed(i64::from(p.y), 13);
}

fn read_pos(r: &mut BitReader<'_>) -> Result<QVec, CodecError> {
    Ok(QVec::new(
        to_i32(r.signed(13)?, "position")?,
        to_i32(r.signed(13)?, "position")?,
    ))
}

fn encode_orbs(w: &mut BitWriter, base: Option<&[QVec]>, cur: &[QVec]) {
    match base {
        Some(base) if base.len() == cur.len() => {
            w.bit(false);
            let moved: Vec<usize> = (0..cur.len()).filter(|&i| cur[i] != base[i]).collect();
            w.exp_golomb(moved.len() as u64, 0);
            let mut prev = None;
            for i in moved {
                write_id(w, &mut prev, i as u32);
                write_pos(w, cur[i]);
            }
        }
        _ => {
            w.bit(true);
            w.exp_golomb(cur.len() as u64, 0);
            for &o in cur {
                write_pos(w, o);
            }
        }
    }
}

fn decode_orbs(r: &mut BitReader<'_>, base: Option<&[QVec]>) -> Result<Vec<QVec>, CodecError> {
    let full = r.bit()?;
    let count = r.exp_golomb(0)?;
    if count as usize > MAX_ORBS {
        return Err(CodecError::TooMany {
            what: "orbs",
            count,
        });
    }
    if full {
        return (0..count).map(|_| read_pos(r)).collect();
    }
    let Some(base) = base else {
        return Err(CodecError::OutOfRange("orb delta without a baseline"));
    };
    let mut orbs = base.to_vec();
    let mut prev = None;
    for _ in 0..count {
        let i = read_id(r, &mut prev)? as usize;
        let slot = orbs.get_mut(i).ok_or(CodecError::OutOfRange("orb index"))?;
        *slot = read_pos(r)?;
    }
    Ok(orbs)
}

// ---- projectiles ------------------------------------------------------------------------

fn encode_projectiles(w: &mut BitWriter, base: Option<&[Projectile]>, cur: &WorldState) {
    let mut created: Vec<&Projectile> = Vec::new();
    if let Some(base) = base {
        let mut ci = 0;
        for b in base {
            while ci < cur.projectiles.len() && cur.projectiles[ci].id < b.id {
                created.push(&cur.projectiles[ci]);
                ci += 1;
            }
            match cur.projectiles.get(ci) {
                Some(c) if c.id == b.id => {
                    ci += 1;
                    if c == b {
                        w.bit(false);
                    } else {
                        w.bit(true);
                        created.push(c);
                    }
                }
                _ => w.bit(true),
            }
        }
        created.extend(&cur.projectiles[ci..]);
    } else {
        created.extend(&cur.projectiles);
    }
    w.exp_golomb(created.len() as u64, 0);
    let mut prev = None;
    for p in created {
        write_id(w, &mut prev, p.id);
        w.exp_golomb(u64::from(p.owner.0), 0);
        write_pos(w, p.origin);
        w.bits(u64::from(p.aim.steps()), AIM_BITS);
        w.signed(i64::from(cur.tick.diff(p.spawn_tick)), 2);
    }
}

fn decode_projectiles(
    r: &mut BitReader<'_>,
    base: Option<&[Projectile]>,
    tick: Tick,
) -> Result<Vec<Projectile>, CodecError> {
    let mut out = Vec::new();
    if let Some(base) = base {
        for b in base {
            if !r.bit()? {
                out.push(*b);
            }
        }
    }
    let count = r.exp_golomb(0)?;
    if count as usize > MAX_PROJECTILES || out.len() + count as usize > MAX_PROJECTILES {
        return Err(CodecError::TooMany {
            what: "projectiles",
            count,
        });
    }
    let kept = out.len();
    let mut prev = None;
    for _ in 0..count {
        let id = read_id(r, &mut prev)?;
        let owner =
            PlayerId(u32::try_from(r.exp_golomb(0)?).map_err(|_| CodecError::OutOfRange("owner"))?);
        let origin = read_pos(r)?;
        let aim = QAngle::new(r.bits(AIM_BITS)? as u16);
        let age = to_i32(r.signed(2)?, "projectile age")?;
        out.push(Projectile {
            id,
            owner,
            origin,
            aim,
            spawn_tick: Tick(tick.0.wrapping_sub(age as u32)),
        });
    }
    if count > 0 && kept > 0 {
        out.sort_by_key(|p| p.id);
    }
    if out.windows(2).any(|w| w[0].id >= w[1].id) {
        return Err(CodecError::BadId(0));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
