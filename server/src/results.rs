//! Match results: the final ranking of every finished match, appended as one JSON line to the
//! results file (flushed and fsync'd before the match is dropped), loaded back at start, and
//! served at `GET /api/matches/{id}/results`.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use skirmish_shared::protocol::RankEntry;
use skirmish_shared::world::PlayerId;

/// How many results are kept in memory for the endpoint (the file keeps them all).
const KEEP_IN_MEMORY: usize = 10_000;

/// One player's line in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerResult {
    pub player_id: u32,
    pub name: String,
    pub score: u32,
    pub rank: u32,
    pub disconnects: u32,
}

/// A finished match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchResult {
    pub match_id: u32,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub ended_at: String,
    pub duration_s: f64,
    /// True when the match was cut short (server shutdown) instead of running its course.
    pub ended_early: bool,
    pub players: Vec<PlayerResult>,
}

pub use skirmish_shared::protocol::rank;

/// The results in a results file, by match id (a later line for the same id wins); lines
/// that are not a result are skipped with a warning. Does not write to the file.
pub fn read_results(path: &Path) -> std::io::Result<BTreeMap<u32, Arc<MatchResult>>> {
    let mut results = BTreeMap::new();
    let f = std::fs::File::open(path)?;
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        match serde_json::from_str::<MatchResult>(&line?) {
            Ok(r) => {
                results.insert(r.match_id, Arc::new(r));
            }
            Err(e) => warn!(
                "{}:{}: skipping a line that is not a result: {e}",
                path.display(),
                n + 1
            ),
        }
    }
    Ok(results)
}

/// Why the results file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("results file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The results of this server's matches.
#[derive(Debug)]
pub struct ResultsStore {
    path: Option<PathBuf>,
    recent: Mutex<BTreeMap<u32, Arc<MatchResult>>>,
    /// Serializes appends to the file.
    file_lock: Mutex<()>,
}

impl ResultsStore {
    /// Opens the store, loading earlier results from `path` (a missing file is fine; bad
    /// lines are skipped with a warning). `None` keeps results in memory only.
    pub fn open(path: Option<PathBuf>) -> Result<Self, ResultsError> {
        let mut recent = BTreeMap::new();
        if let Some(p) = &path {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| ResultsError::Io {
                    path: p.clone(),
                    source,
                })?;
            }
            info!(path = %p.display(), "results file");
            match read_results(p) {
                Ok(loaded) => recent = loaded,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ResultsError::Io {
                        path: p.clone(),
                        source,
                    });
                }
            }
            end_torn_line(p).map_err(|source| ResultsError::Io {
                path: p.clone(),
                source,
            })?;
        }
        Ok(Self {
            path,
            recent: Mutex::new(recent),
            file_lock: Mutex::new(()),
        })
    }

    /// The highest match id with a result (new matches are numbered after it).
    #[must_use]
    pub fn max_match_id(&self) -> u32 {
        self.lock().keys().next_back().copied().unwrap_or(0)
    }

    #[must_use]
    pub fn get(&self, match_id: u32) -> Option<Arc<MatchResult>> {
        self.lock().get(&match_id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Arc<MatchResult>>> {
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a result to the file (flush + fsync) and keeps it for the endpoint.
    pub fn record(&self, result: MatchResult) -> Result<(), ResultsError> {
        if let Some(path) = &self.path {
            let _guard = self
                .file_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            append_line(path, &result).map_err(|source| ResultsError::Io {
                path: path.clone(),
                source,
            })?;
        }
        let mut recent = self.lock();
        recent.insert(result.match_id, Arc::new(result));
        while recent.len() > KEEP_IN_MEMORY {
            recent.pop_first();
        }
        Ok(())
    }
}

/// A crash mid-append leaves a last line without its newline: end it, so the next result
/// starts a line of its own (the torn line is skipped on the next load, as here).
fn end_torn_line(path: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if f.metadata()?.len() == 0 {
        return Ok(());
    }
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    if last[0] != b'\n' {
        warn!(
            "{}: the last line was torn (no newline); ending it",
            path.display()
        );
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    Ok(())
}

fn append_line(path: &Path, result: &MatchResult) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(result).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(&line)?;
    f.flush()?;
    f.sync_all()
}

impl MatchResult {
    /// A finished match's result: its ranking, each player's disconnects, when it started
    /// and how long it ran, and whether it was cut short.
    #[must_use]
    pub fn assemble(
        match_id: u32,
        ranking: &[RankEntry],
        disconnects: &std::collections::HashMap<PlayerId, u32>,
        (started_at, ran_for): (std::time::SystemTime, std::time::Duration),
        ended_early: bool,
    ) -> Self {
        Self {
            match_id,
            started_at: rfc3339(started_at),
            ended_at: rfc3339(std::time::SystemTime::now()),
            duration_s: ran_for.as_secs_f64(),
            ended_early,
            players: ranking
                .iter()
                .map(|r| PlayerResult {
                    player_id: r.player_id.0,
                    name: r.name.clone(),
                    score: r.score,
                    rank: r.rank,
                    disconnects: disconnects.get(&r.player_id).copied().unwrap_or(0),
                })
                .collect(),
        }
    }
}

/// RFC 3339 (UTC, seconds) for a wall-clock time.
#[must_use]
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_shares_ranks_on_ties() {
        let r = rank(&[
            (PlayerId(1), "a".into(), 5),
            (PlayerId(2), "b".into(), 9),
            (PlayerId(3), "c".into(), 5),
            (PlayerId(4), "d".into(), 0),
        ]);
        let got: Vec<(u32, u32)> = r.iter().map(|e| (e.rank, e.player_id.0)).collect();
        assert_eq!(got, vec![(1, 2), (2, 1), (2, 3), (4, 4)]);
    }

    #[test]
    fn results_survive_a_reopen_and_bad_lines_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("results.jsonl");
        let store = ResultsStore::open(Some(path.clone())).expect("open");
        let r = MatchResult {
            match_id: 7,
            started_at: "2026-11-25T12:00:00Z".into(),
            ended_at: "2026-11-25T12:05:00Z".into(),
            duration_s: 300.0,
            ended_early: false,
            players: vec![PlayerResult {
                player_id: 1,
                name: "a".into(),
                score: 3,
                rank: 1,
                disconnects: 0,
            }],
        };
        store.record(r.clone()).expect("record");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"not json\n"))
            .expect("append");
        let again = ResultsStore::open(Some(path)).expect("reopen");
        assert_eq!(again.get(7).as_deref(), Some(&r));
        assert_eq!(again.max_match_id(), 7);
    }

    #[test]
    fn a_torn_last_line_does_not_swallow_the_next_result() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("results.jsonl");
        // A crash in the middle of an append.
        std::fs::write(&path, b"{\"match_id\":3,\"started").expect("write");
        let store = ResultsStore::open(Some(path.clone())).expect("open");
        let r = MatchResult {
            match_id: 4,
            started_at: "2026-11-25T12:00:00Z".into(),
            ended_at: "2026-11-25T12:05:00Z".into(),
            duration_s: 300.0,
            ended_early: false,
            players: Vec::new(),
        };
        store.record(r.clone()).expect("record");
        let again = ResultsStore::open(Some(path)).expect("reopen");
        assert_eq!(
            again.get(4).as_deref(),
            Some(&r),
            "the new result is read back"
        );
    }
}
