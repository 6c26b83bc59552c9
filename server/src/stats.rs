//! Server-wide counters, updated with relaxed atomics on the hot paths and read by the HTTP
//! API, the tests and `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// One counter or gauge.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Serialize for Counter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.get())
    }
}

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Everything the server counts.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// Open WebSocket connections (gauge).
    pub connections: Counter,
    /// Live matches (gauge).
    pub matches: Counter,
    pub ticks: Counter,
    /// Ticks that finished after the next one was due.
    pub tick_overruns: Counter,
    /// Ticks dropped because the loop fell too far behind to catch up.
    pub ticks_skipped: Counter,
    /// Total time spent simulating and encoding ticks, microseconds.
    pub tick_busy_us: Counter,
    pub bytes_out: Counter,
    pub messages_out: Counter,
    pub bytes_in: Counter,
    pub messages_in: Counter,
    /// Snapshots a slow client never got because a newer one replaced them.
    pub snapshots_skipped: Counter,
    /// Snapshots encoded for one client (behind, or after a resync) instead of shared.
    pub snapshots_encoded_per_client: Counter,
    pub inputs_received: Counter,
    /// The oldest queued inputs dropped because a player's queue was full (a burst).
    pub inputs_dropped: Counter,
    /// Inputs dropped to shrink a jitter buffer that stayed deeper than needed (see `jitter`).
    pub inputs_trimmed: Counter,
    /// Clients dropped because their socket accepted nothing for the write timeout.
    pub slow_clients_dropped: Counter,
    /// HTTP connections refused with 503 because `--max-http-connections` were open.
    pub http_refused_busy: Counter,
    /// API requests refused with 429 by the per-IP rate limit.
    pub http_rate_limited: Counter,
    /// Close frames the server sent, by code.
    pub closes_normal: Counter,
    pub closes_going_away: Counter,
    pub closes_protocol: Counter,
    pub closes_unsupported: Counter,
    pub closes_invalid_payload: Counter,
    pub closes_policy: Counter,
    pub closes_too_big: Counter,
}

impl Stats {
    /// The close counters by code.
    #[must_use]
    pub fn closes(&self) -> [(u16, &Counter); 7] {
        [
            (1000, &self.closes_normal),
            (1001, &self.closes_going_away),
            (1002, &self.closes_protocol),
            (1003, &self.closes_unsupported),
            (1007, &self.closes_invalid_payload),
            (1008, &self.closes_policy),
            (1009, &self.closes_too_big),
        ]
    }

    /// Counts one frame (of `wire_bytes`, header included) the server wrote.
    pub fn count_sent(&self, wire_bytes: usize) {
        self.messages_out.inc();
        self.bytes_out.add(wire_bytes as u64);
    }

    /// Counts a close frame the server sent.
    pub fn count_close(&self, code: u16) {
        if let Some((_, c)) = self.closes().into_iter().find(|(k, _)| *k == code) {
            c.inc();
        }
    }
}
