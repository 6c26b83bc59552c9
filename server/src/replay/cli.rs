//! `skirmish-server replay ...`: re-simulate a replay file and check it (`verify`), or print
//! the world at a tick (`show`): the desync debugging tool.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde::Serialize;

use skirmish_shared::protocol::RankEntry;
use skirmish_shared::replay::{Replay, ReplayError};
use skirmish_shared::tick::Tick;
use skirmish_shared::world::{Phase, WorldState};

use crate::results::read_results;

/// Replay files: check them, look inside them.
#[derive(Debug, Parser)]
#[command(name = "skirmish-server replay")]
pub struct ReplayCli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Re-simulate the whole match: every recorded checksum, every keyframe and the final
    /// ranking must come out the same. Exit status 0, or 1 and the first tick that differs.
    Verify {
        file: PathBuf,
        /// A results file (`results.jsonl`): the ranking must also match the match's entry.
        #[arg(long)]
        results: Option<PathBuf>,
    },
    /// Print the world at a tick (re-simulated from the nearest keyframe).
    Show {
        file: PathBuf,
        #[arg(long)]
        tick: u32,
        /// As JSON (positions in world units).
        #[arg(long)]
        json: bool,
    },
}

/// Runs the command in `args` (the words after `replay`); returns the exit status.
pub fn run(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let cli = match ReplayCli::try_parse_from(
        std::iter::once(std::ffi::OsString::from("replay")).chain(args),
    ) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Verify { file, results } => verify(&file, results.as_deref()),
        Command::Show { file, tick, json } => show(&file, tick, json),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// What went wrong, in words for the operator.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Replay { path: PathBuf, source: ReplayError },
    #[error("{0}")]
    Mismatch(String),
}

fn open(path: &std::path::Path) -> Result<Replay, CliError> {
    let bytes = std::fs::read(path).map_err(|source| CliError::Read {
        path: path.into(),
        source,
    })?;
    Replay::parse(bytes).map_err(|source| CliError::Replay {
        path: path.into(),
        source,
    })
}

/// A verified replay: its header, block count and what re-simulating it gave.
#[derive(Debug, Clone)]
pub struct Report {
    pub header: skirmish_shared::replay::Header,
    pub keyframes: usize,
    pub verified: skirmish_shared::replay::Verified,
}

/// Re-simulates the replay at `path` and, with `results`, checks its final ranking against
/// the match's entry there: what `replay verify` does, without the printing.
pub fn verify_file(
    path: &std::path::Path,
    results: Option<&std::path::Path>,
) -> Result<Report, CliError> {
    let replay = open(path)?;
    let verified = replay.verify().map_err(|source| CliError::Replay {
        path: path.into(),
        source,
    })?;
    match (&verified.ranking, results) {
        (Some(ranking), Some(results)) => check_results(results, replay.header.match_id, ranking)?,
        (None, Some(results)) => {
            return Err(CliError::Mismatch(format!(
                "the recording has no final ranking to check against {}",
                results.display()
            )));
        }
        _ => {}
    }
    Ok(Report {
        header: replay.header.clone(),
        keyframes: replay.blocks.len(),
        verified,
    })
}

fn verify(path: &std::path::Path, results: Option<&std::path::Path>) -> Result<(), CliError> {
    let Report {
        header: h,
        keyframes,
        verified: v,
    } = verify_file(path, results)?;
    println!(
        "match {}: {} ticks at {} Hz re-simulated, {} checksums and {} keyframes agree",
        h.match_id, v.ticks, h.tick_hz, v.checksums, keyframes
    );
    match &v.end {
        None => println!("the recording has no end (cut short: the server stopped mid-match)"),
        Some(e) if !e.complete => println!("the recording is incomplete (blocks were dropped)"),
        Some(_) => {}
    }
    if let Some(ranking) = &v.ranking {
        println!("final ranking agrees ({} players)", ranking.len());
        if let Some(results) = results {
            println!("and agrees with {}", results.display());
        }
    }
    Ok(())
}

/// The match's entry in a results file (the last one with its id) against `ranking`.
fn check_results(
    path: &std::path::Path,
    match_id: u32,
    ranking: &[RankEntry],
) -> Result<(), CliError> {
    let results = read_results(path).map_err(|source| CliError::Read {
        path: path.into(),
        source,
    })?;
    let r = results.get(&match_id).ok_or_else(|| {
        CliError::Mismatch(format!("match {match_id} is not in {}", path.display()))
    })?;
    let theirs: Vec<(u32, u32, u32)> = r
        .players
        .iter()
        .map(|p| (p.player_id, p.score, p.rank))
        .collect();
    let ours: Vec<(u32, u32, u32)> = ranking
        .iter()
        .map(|e| (e.player_id.0, e.score, e.rank))
        .collect();
    if theirs != ours {
        return Err(CliError::Mismatch(format!(
            "the ranking differs from {}: re-simulated {ours:?}, results file {theirs:?} (player, score, rank)",
            path.display()
        )));
    }
    Ok(())
}

/// `replay show --json`: the world at a tick, in world units.
#[derive(Debug, Serialize)]
pub struct Shown {
    pub tick: u32,
    pub phase: &'static str,
    pub players: Vec<ShownPlayer>,
    pub projectiles: Vec<[f32; 2]>,
    pub orbs: Vec<[f32; 2]>,
    pub checksum: u32,
}

#[derive(Debug, Serialize)]
pub struct ShownPlayer {
    pub id: u32,
    pub name: String,
    pub x: f32,
    pub y: f32,
    pub score: u32,
    pub deaths: u16,
}

impl Shown {
    #[must_use]
    pub fn of(world: &WorldState, params: &skirmish_shared::rules::Params) -> Self {
        Self {
            tick: world.tick.0,
            phase: match world.phase {
                Phase::Waiting => "waiting",
                Phase::Countdown => "countdown",
                Phase::Running => "running",
                Phase::Ended => "ended",
            },
            players: world
                .players
                .iter()
                .map(|p| {
                    let (x, y) = p.pos.pos_to_units();
                    ShownPlayer {
                        id: p.id.0,
                        name: p.name.to_string(),
                        x,
                        y,
                        score: p.score,
                        deaths: p.deaths,
                    }
                })
                .collect(),
            projectiles: world
                .projectiles
                .iter()
                .map(|p| {
                    let (x, y) = p.pos_at(world.tick, params).pos_to_units();
                    [x, y]
                })
                .collect(),
            orbs: world
                .orbs
                .iter()
                .map(|o| {
                    let (x, y) = o.pos_to_units();
                    [x, y]
                })
                .collect(),
            checksum: world.checksum(),
        }
    }
}

fn show(path: &std::path::Path, tick: u32, json: bool) -> Result<(), CliError> {
    let replay = open(path)?;
    let at = replay
        .playback_at(Tick(tick))
        .map_err(|source| CliError::Replay {
            path: path.into(),
            source,
        })?;
    let shown = Shown::of(&at.game.world, &replay.params());
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&shown).unwrap_or_default()
        );
        return Ok(());
    }
    println!(
        "match {} tick {} ({}), checksum {:#010x}",
        replay.header.match_id, shown.tick, shown.phase, shown.checksum
    );
    println!(
        "{:>5}  {:<20} {:>8} {:>8} {:>6} {:>6}",
        "id", "name", "x", "y", "score", "deaths"
    );
    for p in &shown.players {
        println!(
            "{:>5}  {:<20} {:>8.1} {:>8.1} {:>6} {:>6}",
            p.id, p.name, p.x, p.y, p.score, p.deaths
        );
    }
    println!(
        "{} projectiles, {} orbs",
        shown.projectiles.len(),
        shown.orbs.len()
    );
    Ok(())
}
