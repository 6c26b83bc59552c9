//! Replays (issue 16): a match as its seed, its roster changes and the inputs the simulation
//! consumed, re-simulated bit for bit by the shared rules. Sans-IO: the server's recorder
//! and writer, `skirmish-server replay verify|show` and the viewers all read and write
//! through this module.
//!
//! A file is `MAGIC`, a length-prefixed [`Header`] (bincode), then blocks. A block holds a
//! keyframe (the whole [`Game`] at its first tick, [`GameSave`]) and the ticks that follow
//! it ([`TickRecord`]: roster changes before the step, the inputs the step consumed, the
//! phase it entered, the world's checksum where the match computed one); the last block of a
//! finished recording carries the [`End`]. On disk a block is `first_tick: u32, ticks: u32,
//! raw_len: u32, len: u32` (little endian) and `len` bytes of raw DEFLATE (what browsers'
//! `DecompressionStream("deflate-raw")` reads) of the block's bincode, whose inputs are one
//! delta-coded bit stream (`encode_inputs`). Keyframes every few
//! seconds make seeking cheap: restore the nearest one, simulate at most a block's ticks.
//! A file cut short (the server died) reads up to its last whole block.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::protocol::{GameEvent, InputFrame, RankEntry, final_ranking};
use crate::quant::AIM_STEPS;
use crate::rules::Params;
use crate::sim::{Game, GameSave, RestoreError};
use crate::tick::Tick;
use crate::world::{Phase, PlayerId, WorldState};

/// The first bytes of every replay file.
pub const MAGIC: [u8; 8] = *b"SKREPLAY";
/// This module's file format. A reader refuses other versions.
pub const FORMAT_VERSION: u16 = 3;
/// The simulation rules' version: a replay re-simulates only under the rules it was
/// recorded with. Bump it with any change to `sim` or `rules` that moves a world.
pub const RULES_VERSION: u32 = 2;
/// Largest block a reader inflates (a hostile or corrupt file cannot make it allocate more).
pub const MAX_BLOCK_BYTES: usize = 64 << 20;
/// Largest header a reader accepts.
const MAX_HEADER_BYTES: usize = 64 << 10;
/// A block's frame: first tick, ticks, raw length, compressed length.
const BLOCK_FRAME: usize = 16;

/// What a replay was recorded under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: u16,
    pub protocol: u32,
    pub rules: u32,
    pub match_id: u32,
    pub seed: u64,
    pub tick_hz: u32,
    /// Lag compensation's limit (`Params::max_rewind_ticks`).
    pub max_rewind_ticks: u8,
    /// Wall clock at the match's creation, Unix milliseconds.
    pub created_unix_ms: u64,
    /// Ticks between keyframes.
    pub keyframe_every: u32,
    /// The match's settings, for a reader's information (the simulation needs only the
    /// seed, the tick rate and the records).
    pub match_size: u32,
    pub view_radius: Option<u32>,
}

/// A roster change, applied before the tick's step in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Roster {
    /// A new player (its id is the game's next one: a reader checks it).
    Join { player: PlayerId, name: String },
    /// The player's connection dropped: it stands still until it comes back.
    Idle { player: PlayerId },
    /// The player left the match.
    Leave { player: PlayerId },
}

/// The phase the match entered at the end of a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseSet {
    pub phase: Phase,
    pub ends_at: Tick,
    pub scoring: bool,
}

/// One tick of the match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickRecord {
    pub roster: Vec<Roster>,
    /// The inputs the step consumed, by player (players without one repeated their last).
    pub inputs: Vec<(PlayerId, InputFrame)>,
    pub phase: Option<PhaseSet>,
    /// The world's checksum after the tick, where the match computed one.
    pub checksum: Option<u32>,
    /// The game events the match logged with the tick (joins, orbs, tags, chat, phases): what
    /// its players' feeds showed. Not needed to re-simulate.
    pub events: Vec<GameEvent>,
}

/// How a recording ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// Roster changes after the last tick.
    pub roster: Vec<Roster>,
    /// The final ranking, when the match finished (ran and ended, or was cut short).
    pub ranking: Option<Vec<RankEntry>>,
    pub ended_early: bool,
    /// False when blocks were dropped (the disk fell behind): the file stops at the gap.
    pub complete: bool,
}

/// A keyframe and the ticks after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub keyframe: GameSave,
    pub ticks: Vec<TickRecord>,
    pub end: Option<End>,
}

/// Why a replay could not be read or did not re-simulate.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("not a replay file")]
    NotAReplay,
    #[error("replay format {found}, this build reads {FORMAT_VERSION}")]
    Format { found: u16 },
    #[error("recorded under rules version {found}, this build simulates {RULES_VERSION}")]
    Rules { found: u32 },
    #[error("the header does not decode: {0}")]
    Header(String),
    #[error("block {index} is corrupt: {why}")]
    Block { index: usize, why: String },
    #[error("the keyframe at tick {tick} does not restore: {source}")]
    Keyframe { tick: u32, source: RestoreError },
    #[error("tick {tick}: {what}")]
    Diverged { tick: u32, what: String },
    #[error("tick {0} is not in the replay")]
    NoSuchTick(u32),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// The file's first bytes: magic and header.
#[must_use]
pub fn encode_header(header: &Header) -> Vec<u8> {
    let body = bincode::serde::encode_to_vec(header, bincode_config()).unwrap_or_default();
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A block as bincode carries it: the ticks without their inputs, and every input of the
/// block in one bit stream (`encode_inputs`).
#[derive(Serialize, Deserialize)]
struct BlockWire {
    keyframe: GameSave,
    ticks: Vec<TickWire>,
    inputs: Vec<u8>,
    end: Option<End>,
}

#[derive(Serialize, Deserialize)]
struct TickWire {
    roster: Vec<Roster>,
    phase: Option<PhaseSet>,
    checksum: Option<u32>,
    events: Vec<GameEvent>,
}

/// Each player's previous input in a block, sorted by id: a binary search, not a hash, per
/// input (the writer thread codes every input of every match).
#[derive(Default)]
struct LastInputs(Vec<(PlayerId, InputFrame)>);

impl LastInputs {
    fn get(&self, id: PlayerId) -> InputFrame {
        self.0
            .binary_search_by_key(&id, |(p, _)| *p)
            .map_or_else(|_| InputFrame::default(), |i| self.0[i].1)
    }

    /// Records `f` as `id`'s input; returns the one before.
    fn replace(&mut self, id: PlayerId, f: InputFrame) -> InputFrame {
        match self.0.binary_search_by_key(&id, |(p, _)| *p) {
            Ok(i) => std::mem::replace(&mut self.0[i].1, f),
            Err(i) => {
                self.0.insert(i, (id, f));
                InputFrame::default()
            }
        }
    }
}

/// Most inputs one tick may hold in a file (a reader's allocation bound).
const MAX_INPUTS_PER_TICK: u64 = 1 << 12;

/// A block's inputs, each coded against the same player's previous one in the block (the
/// first against `InputFrame::default()`): the next sequence number is one bit, an unchanged
/// move or buttons one bit, the aim's turn a short signed code. Inputs change a little every
/// tick (a steering player turns), which DEFLATE alone compresses poorly: with this a
/// 16-player wander minute is about 110 KB, against about 150 KB as bincode and DEFLATE.
fn encode_inputs(ticks: &[TickRecord]) -> Vec<u8> {
    let inputs: usize = ticks.iter().map(|t| t.inputs.len()).sum();
    let mut w = crate::bits::BitWriter::with_capacity(4 * inputs + ticks.len());
    let mut last = LastInputs::default();
    for t in ticks {
        w.exp_golomb(t.inputs.len() as u64, 2);
        let mut prev_id = 0u32;
        for (id, f) in &t.inputs {
            w.exp_golomb(u64::from(id.0.wrapping_sub(prev_id)), 0);
            prev_id = id.0;
            let p = last.replace(*id, *f);
            let next_seq = f.seq == p.seq.next();
            w.bit(next_seq);
            if !next_seq {
                w.bits(u64::from(f.seq.0), 32);
            }
            let same_mv = f.mv == p.mv;
            w.bit(same_mv);
            if !same_mv {
                w.signed(i64::from(f.mv.x) - i64::from(p.mv.x), 2);
                w.signed(i64::from(f.mv.y) - i64::from(p.mv.y), 2);
            }
            let turn = (i32::from(f.aim.steps()) - i32::from(p.aim.steps()))
                .rem_euclid(i32::from(AIM_STEPS));
            let turn = if turn >= i32::from(AIM_STEPS / 2) {
                turn - i32::from(AIM_STEPS)
            } else {
                turn
            };
            w.signed(i64::from(turn), 1);
            let same_buttons = f.buttons == p.buttons;
            w.bit(same_buttons);
            if !same_buttons {
                w.bits(u64::from(f.buttons), 8);
            }
            // A playing client's view tick moves on one tick per input; a bot's stays 0.
            let advanced = f.view_tick == p.view_tick.next();
            w.bit(advanced);
            if !advanced {
                w.signed(i64::from(f.view_tick.diff(p.view_tick)), 0);
            }
        }
    }
    w.finish()
}

fn decode_inputs(
    bytes: &[u8],
    ticks: usize,
) -> Result<Vec<Vec<(PlayerId, InputFrame)>>, crate::bits::BitError> {
    let mut r = crate::bits::BitReader::new(bytes);
    let mut last = LastInputs::default();
    let mut out = Vec::with_capacity(ticks.min(1 << 16));
    for _ in 0..ticks {
        let n = r.exp_golomb(2)?.min(MAX_INPUTS_PER_TICK);
        let mut inputs = Vec::with_capacity(n as usize);
        let mut id = 0u32;
        for _ in 0..n {
            id = id.wrapping_add(r.exp_golomb(0)? as u32);
            let pid = PlayerId(id);
            let p = last.get(pid);
            let seq = if r.bit()? {
                p.seq.next()
            } else {
                crate::tick::Seq(r.bits(32)? as u32)
            };
            let mv = if r.bit()? {
                p.mv
            } else {
                crate::quant::MoveVec {
                    x: (i64::from(p.mv.x) + r.signed(2)?) as i8,
                    y: (i64::from(p.mv.y) + r.signed(2)?) as i8,
                }
            };
            let aim =
                (i64::from(p.aim.steps()) + r.signed(1)?).rem_euclid(i64::from(AIM_STEPS)) as u16;
            let buttons = if r.bit()? {
                p.buttons
            } else {
                r.bits(8)? as u8
            };
            let view_tick = if r.bit()? {
                p.view_tick.next()
            } else {
                p.view_tick.plus(r.signed(0)? as u32)
            };
            let f = InputFrame {
                seq,
                mv,
                aim: crate::quant::QAngle::new(aim),
                buttons,
                view_tick,
            };
            last.replace(pid, f);
            inputs.push((pid, f));
        }
        out.push(inputs);
    }
    Ok(out)
}

/// A block as it goes on disk (framed, compressed).
pub fn encode_block(block: &Block) -> std::io::Result<Vec<u8>> {
    let wire = BlockWire {
        keyframe: block.keyframe.clone(),
        ticks: block
            .ticks
            .iter()
            .map(|t| TickWire {
                roster: t.roster.clone(),
                phase: t.phase,
                checksum: t.checksum,
                events: t.events.clone(),
            })
            .collect(),
        inputs: encode_inputs(&block.ticks),
        end: block.end.clone(),
    };
    let raw = bincode::serde::encode_to_vec(&wire, bincode_config())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut z = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(raw.len() / 4 + BLOCK_FRAME),
        flate2::Compression::fast(),
    );
    z.write_all(&raw)?;
    let data = z.finish()?;
    let mut out = Vec::with_capacity(BLOCK_FRAME + data.len());
    out.extend_from_slice(&block.keyframe.tick.0.to_le_bytes());
    out.extend_from_slice(&(block.ticks.len() as u32).to_le_bytes());
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    Ok(out)
}

/// Where a block sits in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockAt {
    /// The keyframe's tick.
    pub first_tick: Tick,
    pub ticks: u32,
    raw_len: usize,
    offset: usize,
    len: usize,
}

impl BlockAt {
    /// The last tick the block reaches.
    #[must_use]
    pub fn last_tick(&self) -> Tick {
        self.first_tick.plus(self.ticks)
    }
}

/// A replay file in memory, its blocks indexed (not yet inflated).
#[derive(Debug, Clone)]
pub struct Replay {
    pub header: Header,
    pub blocks: Vec<BlockAt>,
    /// Bytes after the last whole block (a recording cut short).
    pub trailing: usize,
    bytes: Vec<u8>,
}

impl Replay {
    /// Reads the header and the block frames.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, ReplayError> {
        if bytes.len() < MAGIC.len() + 4 || bytes[..MAGIC.len()] != MAGIC {
            return Err(ReplayError::NotAReplay);
        }
        let at = MAGIC.len();
        let header_len = u32_at(&bytes, at) as usize;
        if header_len > MAX_HEADER_BYTES || bytes.len() < at + 4 + header_len {
            return Err(ReplayError::Header("cut short".into()));
        }
        let (header, _): (Header, _) = bincode::serde::decode_from_slice(
            &bytes[at + 4..at + 4 + header_len],
            bincode_config(),
        )
        .map_err(|e| ReplayError::Header(e.to_string()))?;
        if header.format != FORMAT_VERSION {
            return Err(ReplayError::Format {
                found: header.format,
            });
        }
        if header.rules != RULES_VERSION {
            return Err(ReplayError::Rules {
                found: header.rules,
            });
        }
        let mut blocks = Vec::new();
        let mut pos = at + 4 + header_len;
        while pos + BLOCK_FRAME <= bytes.len() {
            let len = u32_at(&bytes, pos + 12) as usize;
            if pos + BLOCK_FRAME + len > bytes.len() {
                break;
            }
            blocks.push(BlockAt {
                first_tick: Tick(u32_at(&bytes, pos)),
                ticks: u32_at(&bytes, pos + 4),
                raw_len: u32_at(&bytes, pos + 8) as usize,
                offset: pos + BLOCK_FRAME,
                len,
            });
            pos += BLOCK_FRAME + len;
        }
        Ok(Self {
            header,
            blocks,
            trailing: bytes.len() - pos,
            bytes,
        })
    }

    /// The match's simulation parameters.
    #[must_use]
    pub fn params(&self) -> Params {
        Params {
            max_rewind_ticks: self.header.max_rewind_ticks,
            ..Params::new(self.header.tick_hz)
        }
    }

    /// Block `index`, inflated and decoded.
    pub fn block(&self, index: usize) -> Result<Block, ReplayError> {
        let bad = |why: String| ReplayError::Block { index, why };
        let at = self
            .blocks
            .get(index)
            .ok_or_else(|| bad("no such block".into()))?;
        if at.raw_len > MAX_BLOCK_BYTES {
            return Err(bad(format!("{} bytes inflated", at.raw_len)));
        }
        let mut raw = Vec::with_capacity(at.raw_len);
        flate2::read::DeflateDecoder::new(&self.bytes[at.offset..at.offset + at.len])
            .take(at.raw_len as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(|e| bad(e.to_string()))?;
        if raw.len() != at.raw_len {
            return Err(bad("inflated length differs from its frame".into()));
        }
        let (wire, _): (BlockWire, _) = bincode::serde::decode_from_slice(&raw, bincode_config())
            .map_err(|e| bad(e.to_string()))?;
        let inputs =
            decode_inputs(&wire.inputs, wire.ticks.len()).map_err(|e| bad(e.to_string()))?;
        let block = Block {
            keyframe: wire.keyframe,
            ticks: wire
                .ticks
                .into_iter()
                .zip(inputs)
                .map(|(t, inputs)| TickRecord {
                    roster: t.roster,
                    inputs,
                    phase: t.phase,
                    checksum: t.checksum,
                    events: t.events,
                })
                .collect(),
            end: wire.end,
        };
        if block.keyframe.tick != at.first_tick || block.ticks.len() as u32 != at.ticks {
            return Err(bad("the frame does not match the block".into()));
        }
        Ok(block)
    }

    /// The first and last ticks the replay reaches.
    #[must_use]
    pub fn span(&self) -> Option<(Tick, Tick)> {
        Some((
            self.blocks.first()?.first_tick,
            self.blocks.last()?.last_tick(),
        ))
    }

    /// The block to start from to reach `tick`: the last whose keyframe is at or before it.
    #[must_use]
    pub fn block_for(&self, tick: Tick) -> Option<usize> {
        let (first, last) = self.span()?;
        if first.is_after(tick) || tick.is_after(last) {
            return None;
        }
        self.blocks
            .iter()
            .rposition(|b| !b.first_tick.is_after(tick))
    }

    /// The match re-simulated up to `tick`, from the nearest keyframe (checksums on the way
    /// checked).
    pub fn playback_at(&self, tick: Tick) -> Result<Playback, ReplayError> {
        Ok(self.cursor(tick)?.play)
    }

    /// A cursor at `tick` (re-simulated from the nearest keyframe), to step on from there.
    pub fn cursor(&self, tick: Tick) -> Result<Cursor<'_>, ReplayError> {
        let index = self
            .block_for(tick)
            .ok_or(ReplayError::NoSuchTick(tick.0))?;
        let block = self.block(index)?;
        let play = Playback::from_keyframe(&block.keyframe, self.params())?;
        let mut cursor = Cursor {
            replay: self,
            index,
            block,
            next: 0,
            play,
            stepped: false,
        };
        while cursor.play.tick() != tick {
            if !cursor.step()? {
                return Err(ReplayError::NoSuchTick(tick.0));
            }
        }
        cursor.stepped = false;
        Ok(cursor)
    }

    /// The recording's end, if it has one (the last block's).
    pub fn end(&self) -> Result<Option<End>, ReplayError> {
        match self.blocks.len() {
            0 => Ok(None),
            n => Ok(self.block(n - 1)?.end),
        }
    }
}

/// A position in a replay, stepping one tick at a time across blocks (a viewer's playback).
#[derive(Debug)]
pub struct Cursor<'a> {
    replay: &'a Replay,
    index: usize,
    block: Block,
    /// The next record of `block` to apply.
    next: usize,
    play: Playback,
    /// It has stepped since it was placed (so `events` are the last step's).
    stepped: bool,
}

impl Cursor<'_> {
    /// The world at the cursor's tick.
    #[must_use]
    pub fn world(&self) -> &WorldState {
        &self.play.game.world
    }

    /// The game events logged with the cursor's tick (none at the tick it started from).
    #[must_use]
    pub fn events(&self) -> &[GameEvent] {
        self.next
            .checked_sub(1)
            .filter(|_| self.stepped)
            .map_or(&[], |i| &self.block.ticks[i].events)
    }

    #[must_use]
    pub fn tick(&self) -> Tick {
        self.play.tick()
    }

    /// Moves one tick on; false at the end of the recording.
    pub fn step(&mut self) -> Result<bool, ReplayError> {
        while self.next == self.block.ticks.len() {
            if self.index + 1 >= self.replay.blocks.len() {
                return Ok(false);
            }
            self.index += 1;
            self.block = self.replay.block(self.index)?;
            self.next = 0;
        }
        self.play.apply(&self.block.ticks[self.next])?;
        self.next += 1;
        self.stepped = true;
        Ok(true)
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// A match being re-simulated: the game, and the players who left while it ran (they rank
/// too, as in the server).
#[derive(Debug, Clone)]
pub struct Playback {
    pub game: Game,
    pub departed: Vec<(PlayerId, String, u32)>,
    /// Checksums compared so far.
    pub checksums_checked: u64,
}

impl Playback {
    pub fn from_keyframe(save: &GameSave, params: Params) -> Result<Self, ReplayError> {
        let game = Game::restore(save, params).map_err(|source| ReplayError::Keyframe {
            tick: save.tick.0,
            source,
        })?;
        Ok(Self {
            game,
            departed: Vec::new(),
            checksums_checked: 0,
        })
    }

    #[must_use]
    pub fn tick(&self) -> Tick {
        self.game.world.tick
    }

    /// Plays one tick; an error names the first thing that differs.
    pub fn apply(&mut self, rec: &TickRecord) -> Result<(), ReplayError> {
        let tick = self.tick().next();
        self.roster(&rec.roster, tick)?;
        let inputs = &rec.inputs;
        self.game.step(|id| {
            inputs
                .binary_search_by_key(&id, |(p, _)| *p)
                .ok()
                .map(|i| inputs[i].1)
        });
        if let Some(p) = rec.phase {
            self.game.world.phase = p.phase;
            self.game.world.phase_end = p.ends_at;
            self.game.scoring = p.scoring;
        }
        if let Some(sum) = rec.checksum {
            let got = self.game.world.checksum();
            if got != sum {
                return Err(ReplayError::Diverged {
                    tick: tick.0,
                    what: format!("checksum {got:#010x}, recorded {sum:#010x}"),
                });
            }
            self.checksums_checked += 1;
        }
        Ok(())
    }

    /// Applies the end of a recording: its roster changes; the match is over.
    pub fn finish(&mut self, end: &End) -> Result<(), ReplayError> {
        self.roster(&end.roster, self.tick())?;
        self.game.world.phase = Phase::Ended;
        Ok(())
    }

    /// The ranking as the server computes it: everyone in the world and everyone who left
    /// while the match ran.
    #[must_use]
    pub fn ranking(&self) -> Vec<RankEntry> {
        final_ranking(&self.game.world, &self.departed)
    }

    fn roster(&mut self, changes: &[Roster], tick: Tick) -> Result<(), ReplayError> {
        for r in changes {
            match r {
                Roster::Join { player, name } => {
                    let id = self.game.add_player(name.as_str().into());
                    if id != *player {
                        return Err(ReplayError::Diverged {
                            tick: tick.0,
                            what: format!("joined as player {id}, recorded {player}"),
                        });
                    }
                }
                Roster::Idle { player } => self.game.idle_player(*player),
                Roster::Leave { player } => {
                    if let Some(p) = self.game.world.player(*player)
                        && self.game.world.phase == Phase::Running
                    {
                        self.departed.push((p.id, p.name.to_string(), p.score));
                    }
                    self.game.remove_player(*player);
                }
            }
        }
        Ok(())
    }
}

/// Builds a recording in memory, tick by tick, and cuts it into blocks: what the server's
/// recorder does in its match task (the writer compresses and writes the blocks).
#[derive(Debug, Clone)]
pub struct Recording {
    keyframe_every: u32,
    block: Block,
    /// Roster changes since the last tick.
    roster: Vec<Roster>,
    /// The next tick's game events.
    events: Vec<GameEvent>,
    last_phase: PhaseSet,
}

impl Recording {
    /// Starts from `game` as it is (its first keyframe).
    #[must_use]
    pub fn start(game: &Game, keyframe_every: u32) -> Self {
        Self {
            keyframe_every: keyframe_every.max(1),
            block: Block {
                keyframe: game.save(),
                ticks: Vec::new(),
                end: None,
            },
            roster: Vec::new(),
            events: Vec::new(),
            last_phase: phase_of(game),
        }
    }

    /// The game events logged with the tick about to be recorded.
    pub fn events(&mut self, events: &[GameEvent]) {
        self.events.extend_from_slice(events);
    }

    /// A roster change, before the next step.
    pub fn roster(&mut self, change: Roster) {
        self.roster.push(change);
    }

    /// The tick just played: the inputs its step consumed (in player order) and its
    /// checksum if the match computed one; `game` is the state after it. Returns a block
    /// when one is full (the next starts with a keyframe of `game`).
    pub fn tick(
        &mut self,
        inputs: Vec<(PlayerId, InputFrame)>,
        game: &Game,
        checksum: Option<u32>,
    ) -> Option<Block> {
        let now = phase_of(game);
        let phase = (now != self.last_phase).then_some(now);
        self.last_phase = now;
        self.block.ticks.push(TickRecord {
            roster: std::mem::take(&mut self.roster),
            inputs,
            phase,
            checksum,
            events: std::mem::take(&mut self.events),
        });
        game.world
            .tick
            .0
            .is_multiple_of(self.keyframe_every)
            .then(|| {
                let next = Block {
                    keyframe: game.save(),
                    ticks: Vec::new(),
                    end: None,
                };
                std::mem::replace(&mut self.block, next)
            })
    }

    /// The last block, with the recording's end.
    #[must_use]
    pub fn finish(
        mut self,
        ranking: Option<Vec<RankEntry>>,
        ended_early: bool,
        complete: bool,
    ) -> Block {
        self.block.end = Some(End {
            roster: self.roster,
            ranking,
            ended_early,
            complete,
        });
        self.block
    }
}

fn phase_of(game: &Game) -> PhaseSet {
    PhaseSet {
        phase: game.world.phase,
        ends_at: game.world.phase_end,
        scoring: game.scoring,
    }
}

/// The outcome of re-simulating a whole replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub ticks: u64,
    pub checksums: u64,
    /// The re-simulated final ranking (when the recording has an end).
    pub ranking: Option<Vec<RankEntry>>,
    pub end: Option<End>,
}

impl Replay {
    /// Re-simulates the whole match from its first keyframe, checking every recorded
    /// checksum, every later keyframe against the simulation, and the final ranking against
    /// the recorded one. The first difference is the error.
    pub fn verify(&self) -> Result<Verified, ReplayError> {
        if self.blocks.is_empty() {
            return Ok(Verified {
                ticks: 0,
                checksums: 0,
                ranking: None,
                end: None,
            });
        }
        let block = self.block(0)?;
        let mut play = Playback::from_keyframe(&block.keyframe, self.params())?;
        let mut ticks = 0;
        let mut end = None;
        for index in 0..self.blocks.len() {
            let block = if index == 0 {
                block.clone()
            } else {
                self.block(index)?
            };
            if index > 0 && block.keyframe.tick != play.tick() {
                // Blocks are missing: the writer fell behind, and the last block says so
                // (its keyframe is the end). What came before verified; stop there.
                if let Some(end) = block.end.as_ref().filter(|e| !e.complete) {
                    return Ok(Verified {
                        ticks,
                        checksums: play.checksums_checked,
                        ranking: None,
                        end: Some(end.clone()),
                    });
                }
                return Err(ReplayError::Block {
                    index,
                    why: format!(
                        "starts at tick {}, the blocks before end at {}",
                        block.keyframe.tick.0,
                        play.tick().0
                    ),
                });
            }
            if index > 0 {
                let expect = Playback::from_keyframe(&block.keyframe, self.params())?;
                if expect.game.world != play.game.world {
                    return Err(ReplayError::Diverged {
                        tick: play.tick().0,
                        what: "the simulated world differs from the keyframe".into(),
                    });
                }
            }
            for rec in &block.ticks {
                play.apply(rec)?;
                ticks += 1;
            }
            end = block.end;
        }
        let ranking = match &end {
            Some(e) => {
                play.finish(e)?;
                let got = play.ranking();
                if let Some(recorded) = &e.ranking
                    && *recorded != got
                {
                    return Err(ReplayError::Diverged {
                        tick: play.tick().0,
                        what: "the final ranking differs from the recorded one".into(),
                    });
                }
                e.ranking.as_ref().map(|_| got)
            }
            None => None,
        };
        Ok(Verified {
            ticks,
            checksums: play.checksums_checked,
            ranking,
            end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Wander;

    /// A recorded wander match: `ticks` ticks of 8 players, one leaving halfway and one
    /// joining, a checksum every second; returns the file and the final game.
    fn record(ticks: u32) -> (Vec<u8>, Game) {
        let params = Params::new(30);
        let mut w = Wander::new(8, 3, params);
        w.game.world.phase = Phase::Running;
        let header = Header {
            format: FORMAT_VERSION,
            protocol: crate::protocol::PROTOCOL_VERSION,
            rules: RULES_VERSION,
            match_id: 1,
            seed: 3,
            tick_hz: 30,
            max_rewind_ticks: 6,
            created_unix_ms: 0,
            keyframe_every: 90,
            match_size: 16,
            view_radius: None,
        };
        let mut file = encode_header(&header);
        let mut rec = Recording::start(&w.game, 90);
        let mut departed = Vec::new();
        for t in 0..ticks {
            if t == ticks / 2 {
                let p = &w.game.world.players[2];
                departed.push((p.id, p.name.to_string(), p.score));
                let gone = p.id;
                rec.roster(Roster::Leave { player: gone });
                w.game.remove_player(gone);
                let id = w.game.add_player("late".into());
                rec.roster(Roster::Join {
                    player: id,
                    name: "late".into(),
                });
            }
            let frames = w.inputs();
            let ids: Vec<_> = w.game.world.players.iter().map(|p| p.id).collect();
            let mut used = Vec::new();
            w.game.step(|id| {
                let f = ids
                    .iter()
                    .position(|p| *p == id)
                    .and_then(|i| frames.get(i).copied())
                    .filter(|f| f.seq.0 % 5 != 0);
                if let Some(f) = f {
                    used.push((id, f));
                }
                f
            });
            let sum = w
                .game
                .world
                .tick
                .0
                .is_multiple_of(30)
                .then(|| w.game.world.checksum());
            if let Some(b) = rec.tick(used, &w.game, sum) {
                file.extend(encode_block(&b).expect("encodes"));
            }
        }
        let ranking = Playback {
            game: w.game.clone(),
            departed,
            checksums_checked: 0,
        }
        .ranking();
        let last = rec.finish(Some(ranking), false, true);
        file.extend(encode_block(&last).expect("encodes"));
        (file, w.game)
    }

    proptest::proptest! {
        #[test]
        fn inputs_come_back_exactly(
            ticks in proptest::collection::vec(
                proptest::collection::btree_map(
                    0u32..40,
                    (proptest::prelude::any::<u32>(), proptest::prelude::any::<i8>(),
                     proptest::prelude::any::<i8>(), 0u16..AIM_STEPS, proptest::prelude::any::<u8>(),
                     (0u8..3, proptest::prelude::any::<u32>())),
                    0..20,
                ),
                0..30,
            )
        ) {
            // View ticks: none (a bot), the player's last one plus one (a client playing
            // along), or anything.
            let mut views = std::collections::HashMap::new();
            let records: Vec<TickRecord> = ticks
                .iter()
                .map(|t| TickRecord {
                    inputs: t
                        .iter()
                        .map(|(id, (seq, x, y, aim, b, (mode, any)))| {
                            let last: &mut Tick = views.entry(*id).or_default();
                            *last = match mode {
                                0 => Tick(0),
                                1 => last.next(),
                                _ => Tick(*any),
                            };
                            (PlayerId(*id), InputFrame {
                                seq: crate::tick::Seq(*seq),
                                mv: crate::quant::MoveVec { x: *x, y: *y },
                                aim: crate::quant::QAngle::new(*aim),
                                buttons: *b,
                                view_tick: *last,
                            })
                        })
                        .collect(),
                    ..TickRecord::default()
                })
                .collect();
            let bytes = encode_inputs(&records);
            let back = decode_inputs(&bytes, records.len()).expect("decodes");
            let sent: Vec<_> = records.into_iter().map(|r| r.inputs).collect();
            proptest::prop_assert_eq!(back, sent);
        }
    }

    #[test]
    fn a_recording_verifies_and_seeks_to_the_recorded_worlds() {
        let (file, end) = record(400);
        let replay = Replay::parse(file).expect("parses");
        assert_eq!(replay.blocks.len(), 5, "keyframes every 90 ticks");
        let v = replay.verify().expect("verifies");
        assert_eq!(v.ticks, 400);
        assert_eq!(v.checksums, 13);
        let at = replay.playback_at(Tick(400)).expect("seeks");
        assert_eq!(at.game.world, end.world);
        let mid = replay.playback_at(Tick(250)).expect("seeks");
        assert_eq!(mid.tick(), Tick(250));
        // Stepping on across block boundaries gives the same worlds as seeking to each.
        let mut cursor = replay.cursor(Tick(170)).expect("a cursor");
        for _ in 0..30 {
            assert!(cursor.step().expect("steps"));
            let sought = replay.playback_at(cursor.tick()).expect("seeks");
            assert_eq!(&sought.game.world, cursor.world());
        }
        let mut end = replay.cursor(Tick(395)).expect("a cursor");
        let mut steps = 0;
        while end.step().expect("steps") {
            steps += 1;
        }
        assert_eq!(steps, 5, "the recording ends at tick 400");
        assert!(matches!(
            replay.playback_at(Tick(401)),
            Err(ReplayError::NoSuchTick(401))
        ));
    }

    #[test]
    fn a_changed_input_is_reported_at_the_first_checksum_after_it() {
        let (file, _) = record(200);
        let mut replay = Replay::parse(file).expect("parses");
        let mut block = replay.block(1).expect("block");
        block.ticks[5].inputs[0].1.mv.x = block.ticks[5].inputs[0].1.mv.x.wrapping_add(60);
        let head_len = replay.blocks[1].offset - BLOCK_FRAME;
        let mut bytes = replay.bytes[..head_len].to_vec();
        bytes.extend(encode_block(&block).expect("encodes"));
        bytes.extend_from_slice(&replay.bytes[replay.blocks[1].offset + replay.blocks[1].len..]);
        replay = Replay::parse(bytes).expect("parses");
        match replay.verify() {
            Err(ReplayError::Diverged { tick, .. }) => assert_eq!(tick, 120),
            other => panic!("expected a divergence at tick 120, got {other:?}"),
        }
    }

    #[test]
    fn a_recording_with_dropped_blocks_verifies_up_to_the_gap_and_says_it_is_incomplete() {
        let (file, _) = record(400);
        let replay = Replay::parse(file).expect("parses");
        // Blocks 0 and 1, then (the writer fell behind) only the end's keyframe.
        let mut bytes = replay.bytes[..replay.blocks[2].offset - BLOCK_FRAME].to_vec();
        let last = Block {
            keyframe: Game::restore(&replay.block(4).expect("block").keyframe, replay.params())
                .expect("restores")
                .save(),
            ticks: Vec::new(),
            end: Some(End {
                roster: Vec::new(),
                ranking: None,
                ended_early: false,
                complete: false,
            }),
        };
        bytes.extend(encode_block(&last).expect("encodes"));
        let cut = Replay::parse(bytes).expect("parses");
        let v = cut.verify().expect("what was written verifies");
        assert_eq!(v.ticks, 180, "two blocks of 90");
        assert!(v.end.is_some_and(|e| !e.complete));
    }

    #[test]
    fn a_file_cut_short_reads_up_to_its_last_whole_block_and_garbage_is_refused() {
        let (file, _) = record(200);
        let whole = Replay::parse(file.clone()).expect("parses");
        let cut = Replay::parse(file[..file.len() - 10].to_vec()).expect("parses");
        assert_eq!(cut.blocks.len(), whole.blocks.len() - 1);
        assert!(cut.trailing > 0);
        assert!(
            cut.verify()
                .expect("verifies the whole blocks")
                .end
                .is_none()
        );
        assert!(matches!(
            Replay::parse(b"GIF89a..........".to_vec()),
            Err(ReplayError::NotAReplay)
        ));
        let mut other = file.clone();
        other[12] = 9; // the header's format version
        assert!(matches!(
            Replay::parse(other),
            Err(ReplayError::Format { found: 9 })
        ));
    }
}
