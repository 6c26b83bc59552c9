//! Server-wide counters, updated with relaxed atomics on the hot paths. They are declared
//! once, in the table below, with their Prometheus name and help; `/api/stats` (JSON, what
//! the bots' report reads), `/metrics` and the tests all read them from that table, so a new
//! counter cannot be left out of one of them. Close frames are counted for every code.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// One counter or gauge.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

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
    /// Raises a high-water mark to `v` (if it is lower).
    pub fn raise(&self, v: u64) {
        self.0.fetch_max(v, Ordering::Relaxed);
    }
    /// Sets a gauge.
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Whether a figure only grows (a Prometheus counter) or goes up and down (a gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One row of the table: the JSON key, the Prometheus name, its kind and help, the value.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub key: &'static str,
    pub metric: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub value: u64,
}

macro_rules! counters {
    ($( $(#[doc = $doc:literal])+ $key:ident => $metric:literal, $kind:ident; )*) => {
        /// Everything the server counts (see the module docs).
        #[derive(Debug, Default)]
        pub struct Stats {
            $( $(#[doc = $doc])+ pub $key: Counter, )*
            /// Close frames the server sent, by code (`closes_by_code[code - 1000]`).
            closes_by_code: [Counter; CLOSE_CODES],
            /// Close frames with a code outside 1000..=1015 (private codes).
            closes_other: Counter,
        }

        impl Stats {
            /// Every counter but the closes, in declaration order.
            #[must_use]
            pub fn table(&self) -> Vec<Row> {
                vec![ $( Row {
                    key: stringify!($key),
                    metric: $metric,
                    kind: Kind::$kind,
                    help: concat!($($doc),+),
                    value: self.$key.get(),
                }, )* ]
            }
        }
    };
}

counters! {
    /// Open WebSocket connections.
    connections => "skirmish_connections", Gauge;
    /// Live matches.
    matches => "skirmish_live_matches", Gauge;
    /// Ticks simulated.
    ticks => "skirmish_ticks_total", Counter;
    /// Ticks that finished after the next one was due.
    tick_overruns => "skirmish_tick_overruns_total", Counter;
    /// Ticks dropped because the loop fell too far behind to catch up.
    ticks_skipped => "skirmish_ticks_skipped_total", Counter;
    /// Time spent simulating and encoding ticks, microseconds.
    tick_busy_us => "skirmish_tick_busy_microseconds_total", Counter;
    /// Bytes of WebSocket frames sent.
    bytes_out => "skirmish_bytes_sent_total", Counter;
    /// WebSocket frames sent.
    messages_out => "skirmish_messages_sent_total", Counter;
    /// Bytes read from game sockets.
    bytes_in => "skirmish_bytes_received_total", Counter;
    /// Client messages and frames acted on.
    messages_in => "skirmish_messages_received_total", Counter;
    /// Snapshots a slow client never got because a newer one replaced them.
    snapshots_skipped => "skirmish_snapshots_skipped_total", Counter;
    /// Snapshots encoded for one client (behind, or after a resync) instead of shared.
    snapshots_encoded_per_client => "skirmish_snapshots_encoded_per_client_total", Counter;
    /// Snapshots assembled for one client's view (interest management: a view radius, or a
    /// budget its match's delta did not fit).
    view_snapshots => "skirmish_view_snapshots_total", Counter;
    /// Players in a client's view sent as the client's own prediction of them (held back by
    /// the budget), or not created yet, summed over snapshots.
    view_players_held => "skirmish_view_players_held_total", Counter;
    /// Players sent exactly after waiting more than one tick for room in a client's budget.
    view_players_caught_up => "skirmish_view_players_caught_up_total", Counter;
    /// The longest any player in a client's view waited for an exact update, ticks.
    view_longest_wait_ticks => "skirmish_view_longest_wait_ticks", Gauge;
    /// Replay blocks written (each a keyframe and a few seconds of ticks).
    replay_blocks => "skirmish_replay_blocks_total", Counter;
    /// Compressed replay bytes written.
    replay_bytes => "skirmish_replay_bytes_total", Counter;
    /// CPU time of the replay writer thread since start, milliseconds (10 ms resolution).
    replay_writer_cpu_ms => "skirmish_replay_writer_cpu_milliseconds", Gauge;
    /// Time matches spent recording (the tick's part of it), nanoseconds.
    replay_record_ns => "skirmish_replay_record_nanoseconds_total", Counter;
    /// Recordings marked incomplete: the writer's queue was full (the disk fell behind) or
    /// a write failed. The match itself never waits for the disk.
    replays_incomplete => "skirmish_replays_incomplete_total", Counter;
    /// New inputs received.
    inputs_received => "skirmish_inputs_received_total", Counter;
    /// The oldest queued inputs dropped because a player's queue was full (a burst).
    inputs_dropped => "skirmish_inputs_dropped_total", Counter;
    /// Inputs dropped to shrink a jitter buffer that stayed deeper than needed.
    inputs_trimmed => "skirmish_inputs_trimmed_total", Counter;
    /// Clients dropped because their socket accepted nothing for the write timeout.
    slow_clients_dropped => "skirmish_slow_clients_dropped_total", Counter;
    /// HTTP connections refused with 503 because `--max-http-connections` were open.
    http_refused_busy => "skirmish_http_refused_busy_total", Counter;
    /// API requests refused with 429 by the per-IP rate limit.
    http_rate_limited => "skirmish_http_rate_limited_total", Counter;
    /// TLS handshakes completed.
    tls_handshakes => "skirmish_tls_handshakes_total", Counter;
    /// TLS handshakes that failed or timed out.
    tls_handshake_failures => "skirmish_tls_handshake_failures_total", Counter;
    /// When the TLS certificate in use expires, Unix seconds (0 without TLS).
    tls_cert_not_after => "skirmish_tls_certificate_expiry_timestamp_seconds", Gauge;
    /// Datagram sessions that completed the handshake.
    udp_sessions => "skirmish_udp_sessions_total", Counter;
    /// Datagrams dropped, every reason: unauthenticated, replayed, malformed, expired token,
    /// not ours, over budget.
    udp_dropped => "skirmish_udp_packets_dropped_total", Counter;
    /// Datagrams dropped because they did not authenticate (forged or tampered).
    udp_dropped_unauthenticated => "skirmish_udp_packets_unauthenticated_total", Counter;
    /// Datagrams dropped as replays (seen before, or older than the replay window).
    udp_dropped_replayed => "skirmish_udp_packets_replayed_total", Counter;
    /// Datagrams dropped as malformed (bad kind, size, payload, or expired token).
    udp_dropped_malformed => "skirmish_udp_packets_malformed_total", Counter;
    /// Authenticated datagrams dropped because their client was over its message budget.
    udp_dropped_over_budget => "skirmish_udp_packets_over_budget_total", Counter;
    /// Handshake packets dropped unread: their source IP was over its handshake rate.
    udp_handshakes_limited => "skirmish_udp_handshakes_rate_limited_total", Counter;
    /// Players seated over UDP now.
    udp_players => "skirmish_udp_players", Gauge;
    /// Datagrams received (every kind, before authentication).
    udp_packets_in => "skirmish_udp_packets_received_total", Counter;
    /// Bytes of datagrams received.
    udp_bytes_in => "skirmish_udp_bytes_received_total", Counter;
    /// Datagrams sent.
    udp_packets_out => "skirmish_udp_packets_sent_total", Counter;
    /// Bytes of datagrams sent.
    udp_bytes_out => "skirmish_udp_bytes_sent_total", Counter;
    /// Datagrams not sent because the socket's buffer was full.
    udp_send_dropped => "skirmish_udp_send_dropped_total", Counter;
    /// Reliable-channel messages sent again (not yet acknowledged).
    udp_resends => "skirmish_udp_reliable_resends_total", Counter;
    /// Packets sent over UDP in fragments (bigger than one datagram).
    udp_fragmented => "skirmish_udp_fragmented_total", Counter;
    /// Snapshots sent over UDP in full (no acknowledged baseline).
    udp_full_snapshots => "skirmish_udp_full_snapshots_total", Counter;
}

/// Close codes counted one by one: 1000..=1015.
const CLOSE_CODES: usize = 16;

/// The JSON keys `/api/stats` has always used for the common close codes.
const CLOSE_KEYS: [(u16, &str); 7] = [
    (1000, "closes_normal"),
    (1001, "closes_going_away"),
    (1002, "closes_protocol"),
    (1003, "closes_unsupported"),
    (1007, "closes_invalid_payload"),
    (1008, "closes_policy"),
    (1009, "closes_too_big"),
];

impl Stats {
    /// Counts one frame (of `wire_bytes`, header included) the server wrote.
    pub fn count_sent(&self, wire_bytes: usize) {
        self.messages_out.inc();
        self.bytes_out.add(wire_bytes as u64);
    }

    /// Counts a close frame the server sent.
    pub fn count_close(&self, code: u16) {
        match usize::from(code).checked_sub(1000) {
            Some(i) if i < CLOSE_CODES => self.closes_by_code[i].inc(),
            _ => self.closes_other.inc(),
        }
    }

    /// Close frames sent with `code`.
    #[must_use]
    pub fn closes(&self, code: u16) -> u64 {
        match usize::from(code).checked_sub(1000) {
            Some(i) if i < CLOSE_CODES => self.closes_by_code[i].get(),
            _ => self.closes_other.get(),
        }
    }

    /// Close counts to show: the common codes always, others once seen; `None` is "other".
    #[must_use]
    pub fn close_rows(&self) -> Vec<(Option<u16>, u64)> {
        let mut rows: Vec<(Option<u16>, u64)> = (0..CLOSE_CODES)
            .map(|i| (1000 + i as u16, self.closes_by_code[i].get()))
            .filter(|(code, n)| *n > 0 || CLOSE_KEYS.iter().any(|(c, _)| c == code))
            .map(|(code, n)| (Some(code), n))
            .collect();
        if self.closes_other.get() > 0 {
            rows.push((None, self.closes_other.get()));
        }
        rows
    }
}

impl Serialize for Stats {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let table = self.table();
        let mut map = s.serialize_map(None)?;
        for row in &table {
            map.serialize_entry(row.key, &row.value)?;
        }
        for (code, n) in self.close_rows() {
            match code.and_then(|c| CLOSE_KEYS.iter().find(|(k, _)| *k == c)) {
                Some((_, key)) => map.serialize_entry(key, &n)?,
                None => match code {
                    Some(c) => map.serialize_entry(&format!("closes_{c}"), &n)?,
                    None => map.serialize_entry("closes_other", &n)?,
                },
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_close_code_is_counted() {
        let s = Stats::default();
        for code in [1000, 1008, 1011, 1015, 4000, 999] {
            s.count_close(code);
        }
        assert_eq!(s.closes(1011), 1);
        assert_eq!(s.closes(1015), 1);
        assert_eq!(s.closes(4000), 2, "4000 and 999 are both 'other'");
        let json = serde_json::to_value(&s).expect("json");
        assert_eq!(json["closes_normal"], 1);
        assert_eq!(json["closes_1011"], 1);
        assert_eq!(json["closes_other"], 2);
    }

    #[test]
    fn the_table_has_every_counter_and_json_follows_it() {
        let s = Stats::default();
        s.tick_busy_us.add(7);
        let table = s.table();
        assert!(table.iter().any(|r| r.key == "slow_clients_dropped"));
        let json = serde_json::to_value(&s).expect("json");
        for r in &table {
            assert!(
                json.get(r.key).is_some(),
                "{} missing from /api/stats",
                r.key
            );
            assert!(r.metric.starts_with("skirmish_"));
        }
        assert_eq!(json["tick_busy_us"], 7);
    }
}
