//! The replay files: one writer thread takes the matches' blocks from a bounded queue,
//! compresses and appends them, fsyncs a file when its match ends, keeps the index that
//! `GET /api/replays` lists and applies the retention limits (count and age).
//!
//! A file is `match-<id>-<created ms>.skreplay` in the replay directory; the index is
//! rebuilt from the directory at start (each file's header), so replays survive restarts.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use skirmish_shared::replay::{Block, Header, Replay, encode_block, encode_header};

use crate::stats::Stats;

/// Messages queued to the writer before a match's block is dropped (the recording then
/// stops and is marked incomplete).
pub const WRITER_QUEUE: usize = 256;
const EXTENSION: &str = "skreplay";

/// A recording: its match and when the match was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub created_unix_ms: u64,
    pub match_id: u32,
}

/// One replay file, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayInfo {
    pub key: Key,
    pub path: PathBuf,
    pub bytes: u64,
    /// Its match is still being recorded.
    pub recording: bool,
}

pub(crate) enum Msg {
    Open(Header),
    Block(Key, Block),
    /// The last block (with the recording's end, or `None` after dropped blocks), and
    /// whether the file is worth keeping (the match ran); the reply comes after the fsync.
    Close {
        key: Key,
        last: Block,
        keep: bool,
        done: oneshot::Sender<()>,
    },
}

/// The replay directory and its writer.
#[derive(Debug)]
pub struct ReplayStore {
    dir: PathBuf,
    pub(crate) tx: mpsc::Sender<Msg>,
    index: Arc<Mutex<BTreeMap<Key, ReplayInfo>>>,
}

/// Why the replay directory could not be used.
#[derive(Debug, thiserror::Error)]
#[error("replay directory {path}: {source}")]
pub struct StoreError {
    path: PathBuf,
    source: std::io::Error,
}

impl ReplayStore {
    /// Opens (creating) `dir`, indexes the replays in it, applies the limits and starts the
    /// writer thread.
    pub fn open(
        dir: PathBuf,
        keep: usize,
        max_age: Duration,
        stats: Arc<Stats>,
    ) -> Result<Self, StoreError> {
        let err = |source| StoreError {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(err)?;
        let mut index = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).map_err(err)?.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
                continue;
            }
            match read_header(&path) {
                Ok(h) => {
                    let key = Key {
                        created_unix_ms: h.created_unix_ms,
                        match_id: h.match_id,
                    };
                    let bytes = entry.metadata().map_or(0, |m| m.len());
                    index.insert(
                        key,
                        ReplayInfo {
                            key,
                            path,
                            bytes,
                            recording: false,
                        },
                    );
                }
                Err(e) => warn!(path = %path.display(), "not a replay, left alone: {e}"),
            }
        }
        let limits = Limits { keep, max_age };
        limits.apply(&mut index);
        info!(dir = %dir.display(), replays = index.len(), "recording replays");
        let index = Arc::new(Mutex::new(index));
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        let writer = Writer {
            dir: dir.clone(),
            files: HashMap::new(),
            index: index.clone(),
            limits,
            stats,
        };
        std::thread::Builder::new()
            .name("replay-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(err)?;
        Ok(Self { dir, tx, index })
    }

    /// A store whose queue (of `capacity`) nobody drains but the caller: for tests of what
    /// the recorder sends.
    #[cfg(test)]
    pub(crate) fn detached(dir: PathBuf, capacity: usize) -> (Self, mpsc::Receiver<Msg>) {
        let (tx, rx) = mpsc::channel(capacity);
        let store = Self {
            dir,
            tx,
            index: Arc::default(),
        };
        (store, rx)
    }

    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every replay, newest first.
    #[must_use]
    pub fn list(&self) -> Vec<ReplayInfo> {
        let index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        index.values().rev().cloned().collect()
    }

    /// The newest replay of match `id`.
    #[must_use]
    pub fn find(&self, match_id: u32) -> Option<ReplayInfo> {
        let index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        index
            .values()
            .rev()
            .find(|r| r.key.match_id == match_id)
            .cloned()
    }
}

fn read_header(path: &Path) -> std::io::Result<Header> {
    let mut head = Vec::new();
    File::open(path)?.take(64 << 10).read_to_end(&mut head)?;
    // The header parses without the blocks (a cut-short last block is ignored).
    let replay = Replay::parse(head)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    Ok(replay.header)
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    keep: usize,
    max_age: Duration,
}

impl Limits {
    /// Deletes finished replays beyond the count or the age, oldest first.
    fn apply(&self, index: &mut BTreeMap<Key, ReplayInfo>) {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let oldest_ms = now_ms.saturating_sub(self.max_age.as_millis() as u64);
        let finished = index.values().filter(|r| !r.recording).count();
        let mut excess = finished.saturating_sub(self.keep);
        let doomed: Vec<Key> = index
            .values()
            .filter(|r| !r.recording)
            .filter(|r| {
                let old = r.key.created_unix_ms < oldest_ms;
                let over = excess > 0;
                if over {
                    excess -= 1;
                }
                old || over
            })
            .map(|r| r.key)
            .collect();
        for key in doomed {
            if let Some(r) = index.remove(&key)
                && let Err(e) = std::fs::remove_file(&r.path)
            {
                warn!(path = %r.path.display(), "replay not deleted: {e}");
            }
        }
    }
}

struct Writer {
    dir: PathBuf,
    files: HashMap<Key, File>,
    index: Arc<Mutex<BTreeMap<Key, ReplayInfo>>>,
    limits: Limits,
    stats: Arc<Stats>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut cpu_read_at = std::time::Instant::now();
        while let Some(msg) = rx.blocking_recv() {
            // The thread's own CPU time, for what recording costs (read at most once a second).
            if cpu_read_at.elapsed() >= Duration::from_secs(1)
                && let Some(s) = skirmish_shared::process::thread_cpu_seconds()
            {
                cpu_read_at = std::time::Instant::now();
                self.stats.replay_writer_cpu_ms.set((s * 1000.0) as u64);
            }
            match msg {
                Msg::Open(header) => self.open(&header),
                Msg::Block(key, block) => self.append(key, &block),
                Msg::Close {
                    key,
                    last,
                    keep,
                    done,
                } => {
                    self.append(key, &last);
                    self.close(key, keep);
                    let _ = done.send(());
                }
            }
        }
    }

    fn open(&mut self, header: &Header) {
        let key = Key {
            created_unix_ms: header.created_unix_ms,
            match_id: header.match_id,
        };
        let path = self.dir.join(format!(
            "match-{}-{}.{EXTENSION}",
            header.match_id, header.created_unix_ms
        ));
        let opened = File::create(&path).and_then(|mut f| {
            f.write_all(&encode_header(header))?;
            Ok(f)
        });
        match opened {
            Ok(f) => {
                self.files.insert(key, f);
                self.index().insert(
                    key,
                    ReplayInfo {
                        key,
                        path,
                        bytes: 0,
                        recording: true,
                    },
                );
            }
            Err(e) => {
                warn!(match_id = header.match_id, path = %path.display(), "replay not recorded: {e}");
                self.stats.replays_incomplete.inc();
            }
        }
    }

    fn append(&mut self, key: Key, block: &Block) {
        let Some(file) = self.files.get_mut(&key) else {
            return;
        };
        match encode_block(block).and_then(|bytes| file.write_all(&bytes).map(|()| bytes.len())) {
            Ok(n) => {
                self.stats.replay_blocks.inc();
                self.stats.replay_bytes.add(n as u64);
                if let Some(r) = self.index().get_mut(&key) {
                    r.bytes += n as u64;
                }
            }
            Err(e) => {
                warn!(
                    match_id = key.match_id,
                    "replay write failed, recording stopped: {e}"
                );
                self.stats.replays_incomplete.inc();
                self.files.remove(&key);
            }
        }
    }

    fn close(&mut self, key: Key, keep: bool) {
        let file = self.files.remove(&key);
        if let Some(f) = &file
            && let Err(e) = f.sync_all()
        {
            warn!(match_id = key.match_id, "replay not synced: {e}");
        }
        drop(file);
        // The file's name too must survive a crash.
        if let Err(e) = File::open(&self.dir).and_then(|d| d.sync_all()) {
            warn!(dir = %self.dir.display(), "replay directory not synced: {e}");
        }
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        if keep {
            if let Some(r) = index.get_mut(&key) {
                r.recording = false;
                r.bytes = std::fs::metadata(&r.path).map_or(r.bytes, |m| m.len());
            }
        } else if let Some(r) = index.remove(&key) {
            // A match that never ran (it closed while waiting for players): nothing to watch.
            let _ = std::fs::remove_file(&r.path);
        }
        self.limits.apply(&mut index);
    }

    fn index(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, ReplayInfo>> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skirmish_shared::replay::{FORMAT_VERSION, RULES_VERSION};

    fn header(match_id: u32, created_unix_ms: u64) -> Header {
        Header {
            format: FORMAT_VERSION,
            protocol: skirmish_shared::protocol::PROTOCOL_VERSION,
            rules: RULES_VERSION,
            match_id,
            seed: 1,
            tick_hz: 30,
            max_rewind_ticks: 6,
            created_unix_ms,
            keyframe_every: 150,
            match_size: 16,
            view_radius: None,
        }
    }

    #[test]
    fn the_index_survives_a_restart_and_the_limits_delete_the_oldest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        let day = 86_400_000;
        // Four replays from earlier runs, one of them 40 days old; and a stranger.
        for (id, created) in [
            (1, now - 40 * day),
            (2, now - 3 * day),
            (3, now - 2 * day),
            (4, now - day),
        ] {
            std::fs::write(
                dir.path().join(format!("match-{id}-{created}.{EXTENSION}")),
                encode_header(&header(id, created)),
            )
            .expect("write");
        }
        std::fs::write(dir.path().join(format!("notes.{EXTENSION}")), b"hello").expect("write");
        let store = ReplayStore::open(
            dir.path().to_path_buf(),
            2,
            Duration::from_secs(30 * 86_400),
            Arc::new(Stats::default()),
        )
        .expect("opens");
        let kept: Vec<u32> = store.list().iter().map(|r| r.key.match_id).collect();
        assert_eq!(
            kept,
            [4, 3],
            "newest first; over the count and over the age deleted"
        );
        assert_eq!(store.find(3).map(|r| r.key.match_id), Some(3));
        assert!(store.find(1).is_none());
        let left = std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(left, 3, "two replays and the file that is not one");
    }
}
