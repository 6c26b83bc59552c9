//! What the swarm counts: relaxed atomics for counters, and histograms (input-to-ack latency,
//! snapshot inter-arrival jitter) that bots fill in small batches.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use hdrhistogram::Histogram;

/// Shared by every bot of a swarm.
#[derive(Debug)]
pub struct SwarmStats {
    pub connected: AtomicU64,
    /// Bots that joined over UDP.
    pub on_udp: AtomicU64,
    /// Bots started and not finished yet.
    pub active: AtomicU64,
    pub failed: AtomicU64,
    pub snapshots: AtomicU64,
    pub payload_bytes: AtomicU64,
    pub wire_bytes: AtomicU64,
    pub upload_bytes: AtomicU64,
    pub inputs_sent: AtomicU64,
    /// Own-player transitions the bot re-simulated with the shared rules.
    pub predictions_checked: AtomicU64,
    /// Transitions that did not match the bot's re-simulation (must be 0).
    pub desyncs: AtomicU64,
    /// Decoded worlds whose checksum did not match (must be 0).
    pub checksum_desyncs: AtomicU64,
    /// Snapshots that did not decode (must be 0).
    pub decode_errors: AtomicU64,
    /// `RequestFull`s sent after a broken stream, and full snapshots that answered them.
    pub resync_requests: AtomicU64,
    pub resyncs: AtomicU64,
    /// Aggressive bots, over the window: shots fired (as predicted), tags announced by the
    /// server, and own shots the server did not confirm as predicted.
    pub shots: AtomicU64,
    /// Of those, shots made after an unseen tag (the server holds a respawned player's fire).
    pub shots_cancelled: AtomicU64,
    pub hits: AtomicU64,
    /// Shot corrections by kind (`ShotPrediction`): fired elsewhere, fired unpredicted,
    /// never fired.
    pub shots_moved: AtomicU64,
    pub shots_unpredicted: AtomicU64,
    pub shots_vanished: AtomicU64,
    /// What attackers (abuse behaviours) met: "closed 1008: …", "http 429: …", counts.
    pub attack_outcomes: Mutex<BTreeMap<String, u64>>,
    /// Whether histograms record (inside the measurement window).
    pub measuring: AtomicBool,
    /// Input-to-ack latency, microseconds.
    pub latency_us: Mutex<Histogram<u64>>,
    /// |inter-arrival - tick period|, microseconds.
    pub jitter_us: Mutex<Histogram<u64>>,
    /// Ticks between consecutive snapshots a bot applied (1 = none missed; over UDP a lost
    /// snapshot makes a gap of 2, and a freeze a long one).
    pub gap_ticks: Mutex<Histogram<u64>>,
    /// Why bots failed or were closed: "http 409: match 3 is full", "closed 1008: ...".
    pub failures: Mutex<BTreeMap<String, u64>>,
}

impl Default for SwarmStats {
    fn default() -> Self {
        let hist = || Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
        Self {
            connected: AtomicU64::new(0),
            on_udp: AtomicU64::new(0),
            active: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            payload_bytes: AtomicU64::new(0),
            wire_bytes: AtomicU64::new(0),
            upload_bytes: AtomicU64::new(0),
            inputs_sent: AtomicU64::new(0),
            predictions_checked: AtomicU64::new(0),
            desyncs: AtomicU64::new(0),
            checksum_desyncs: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            resync_requests: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            shots: AtomicU64::new(0),
            shots_cancelled: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            shots_moved: AtomicU64::new(0),
            shots_unpredicted: AtomicU64::new(0),
            shots_vanished: AtomicU64::new(0),
            attack_outcomes: Mutex::new(BTreeMap::new()),
            measuring: AtomicBool::new(false),
            latency_us: Mutex::new(hist()),
            jitter_us: Mutex::new(hist()),
            gap_ticks: Mutex::new(hist()),
            failures: Mutex::new(BTreeMap::new()),
        }
    }
}

/// A point-in-time copy of the counters, to subtract window start from window end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub snapshots: u64,
    pub payload_bytes: u64,
    pub wire_bytes: u64,
    pub upload_bytes: u64,
    pub inputs_sent: u64,
}

impl SwarmStats {
    #[must_use]
    pub fn counters(&self) -> Counters {
        Counters {
            snapshots: self.snapshots.load(Ordering::Relaxed),
            payload_bytes: self.payload_bytes.load(Ordering::Relaxed),
            wire_bytes: self.wire_bytes.load(Ordering::Relaxed),
            upload_bytes: self.upload_bytes.load(Ordering::Relaxed),
            inputs_sent: self.inputs_sent.load(Ordering::Relaxed),
        }
    }

    pub fn fail(&self, reason: String) {
        tally(&self.failures, reason);
    }

    /// Records what an attacker met.
    pub fn attack_outcome(&self, outcome: String) {
        tally(&self.attack_outcomes, outcome);
    }

    #[must_use]
    pub fn measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }

    /// Counts a received message of `n` bytes: over UDP `n` is the whole datagram already,
    /// over WebSocket the frame adds its header.
    pub fn count_received(&self, n: usize, udp: bool) {
        let wire = if udp {
            n
        } else {
            skirmish_shared::protocol::ws_frame_len(n)
        };
        self.payload_bytes.fetch_add(n as u64, Ordering::Relaxed);
        self.wire_bytes.fetch_add(wire as u64, Ordering::Relaxed);
    }

    /// Adds a batch of samples to a histogram (values are clamped into its range).
    pub fn record(hist: &Mutex<Histogram<u64>>, samples: &mut Vec<u64>) {
        if samples.is_empty() {
            return;
        }
        let mut h = hist.lock().unwrap_or_else(PoisonError::into_inner);
        for &s in samples.iter() {
            h.saturating_record(s.max(1));
        }
        samples.clear();
    }
}

/// Counts one more of `what`.
fn tally(counts: &Mutex<BTreeMap<String, u64>>, what: String) {
    *counts
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(what)
        .or_default() += 1;
}
