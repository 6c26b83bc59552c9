//! The swarm's report: a terminal table and the same figures as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::behavior::Behavior;

/// Percentiles of a histogram, milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub samples: u64,
}

impl Percentiles {
    #[must_use]
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            samples: h.len(),
        }
    }
}

/// Percentiles of a histogram of counts (ticks).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
    pub samples: u64,
}

impl Counts {
    #[must_use]
    pub fn of(h: &Histogram<u64>) -> Self {
        Self {
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
            samples: h.len(),
        }
    }
}

/// The server, measured over the window (from `--server-metrics`).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ServerUsage {
    /// CPU over the window, % of one core.
    pub cpu_pct: f64,
    /// Server CPU time per connected bot per second, microseconds.
    pub cpu_us_per_client_per_s: f64,
    pub rss_mib: f64,
    pub rss_kib_per_client: f64,
    pub tick_overruns: u64,
    pub ticks_skipped: u64,
    pub snapshots_skipped: u64,
    /// Snapshots assembled for one client's view (interest management), over the window.
    pub view_snapshots: u64,
    /// Players in views sent as the client's prediction (held back by the budget).
    pub view_players_held: u64,
    /// The longest any player in a view waited for an exact update since the server
    /// started, ticks (0: never held).
    pub view_longest_wait_ticks: u64,
}

/// Everything a run measured, over the measurement window.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    /// What the bots asked for (`auto` may have fallen back to WebSocket for some).
    pub transport: String,
    /// Bots that played over UDP.
    pub bots_on_udp: u64,
    /// One bot in this many decoded and checked its snapshots (latency and desync figures
    /// come from those).
    pub verify_every: usize,
    /// The simulated link, if any: latency / jitter ms, loss / duplication fractions.
    pub link: Option<(f64, f64, f64, f64)>,
    pub behavior: Behavior,
    pub bots: usize,
    pub bots_connected: u64,
    pub bots_failed: u64,
    /// Why bots failed or were closed, with counts.
    pub failures: BTreeMap<String, u64>,
    pub match_size: usize,
    pub tick_hz: u32,
    pub window_s: f64,
    pub snapshots_per_bot_per_s: f64,
    /// Snapshots received / snapshots the tick rate promises.
    pub delivery: f64,
    pub payload_bytes_per_bot_per_s: f64,
    pub wire_bytes_per_bot_per_s: f64,
    pub upload_bytes_per_bot_per_s: f64,
    pub inputs_per_bot_per_s: f64,
    pub latency: Percentiles,
    pub jitter: Percentiles,
    /// Ticks between consecutive snapshots applied (p99 <= 3: no freezes).
    pub snapshot_gap_ticks: Counts,
    pub predictions_checked: u64,
    pub desyncs: u64,
    pub checksum_desyncs: u64,
    /// Snapshots that did not decode.
    pub decode_errors: u64,
    /// Full snapshots requested after a broken stream, and received.
    pub resync_requests: u64,
    pub resyncs: u64,
    /// Aggressive bots: shots fired and tags, over the window (`hit_rate` = tags / shots),
    /// and own shots the server did not confirm as predicted (must be 0 on a clean link).
    /// `shots` counts what the server fired: the shots predicted less those cancelled
    /// (made after a tag the bot had not seen yet, which the server does not fire).
    pub shots: u64,
    pub shots_cancelled: u64,
    pub hits: u64,
    pub hit_rate: f64,
    pub shot_corrections: u64,
    /// The corrections by kind: fired elsewhere, fired unpredicted, never fired.
    pub shot_corrections_moved_unpredicted_vanished: (u64, u64, u64),
    /// Attackers beside the bots (`--attack`): their behaviour and count.
    pub attack: Option<(Behavior, usize)>,
    /// What the attackers met, with counts ("closed 1008: …", "http 429: …").
    pub attack_outcomes: BTreeMap<String, u64>,
    /// This process's CPU over the window, % of one core.
    pub bots_cpu_pct: f64,
    pub server: Option<ServerUsage>,
}

impl Report {
    /// The terminal table.
    #[must_use]
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "  {k:<34} {v}");
        };
        row("server", self.url.clone());
        row(
            "transport (bots on UDP)",
            format!("{} ({})", self.transport, self.bots_on_udp),
        );
        if self.verify_every > 1 {
            row(
                "bots checking their snapshots",
                format!("1 in {}", self.verify_every),
            );
        }
        if let Some((lat, jit, loss, dup)) = self.link {
            row(
                "simulated link",
                format!(
                    "{lat:.0} ms + {jit:.0} ms jitter each way, {:.1} % loss, {:.1} % duplicated",
                    loss * 100.0,
                    dup * 100.0
                ),
            );
        }
        row(
            "behavior / match size / tick",
            format!(
                "{:?} / {} / {} Hz",
                self.behavior, self.match_size, self.tick_hz
            ),
        );
        row(
            "bots connected / failed / asked",
            format!(
                "{} / {} / {}",
                self.bots_connected, self.bots_failed, self.bots
            ),
        );
        row("window", format!("{:.1} s", self.window_s));
        row(
            "snapshots per bot per s",
            format!(
                "{:.2} (delivery {:.1} %)",
                self.snapshots_per_bot_per_s,
                self.delivery * 100.0
            ),
        );
        row(
            "received per bot per s",
            format!(
                "{:.0} B payload, {:.0} B wire",
                self.payload_bytes_per_bot_per_s, self.wire_bytes_per_bot_per_s
            ),
        );
        row(
            "sent per bot per s",
            format!(
                "{:.0} B, {:.1} inputs",
                self.upload_bytes_per_bot_per_s, self.inputs_per_bot_per_s
            ),
        );
        row(
            "input-to-ack p50/p90/p99/max",
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1} ms ({} samples)",
                self.latency.p50_ms,
                self.latency.p90_ms,
                self.latency.p99_ms,
                self.latency.max_ms,
                self.latency.samples
            ),
        );
        row(
            "snapshot jitter p50/p99/max",
            format!(
                "{:.2} / {:.2} / {:.2} ms",
                self.jitter.p50_ms, self.jitter.p99_ms, self.jitter.max_ms
            ),
        );
        row(
            "snapshot gap p50/p99/max",
            format!(
                "{} / {} / {} ticks",
                self.snapshot_gap_ticks.p50,
                self.snapshot_gap_ticks.p99,
                self.snapshot_gap_ticks.max
            ),
        );
        row(
            "desyncs (prediction / checksum)",
            format!(
                "{} / {} of {} checked",
                self.desyncs, self.checksum_desyncs, self.predictions_checked
            ),
        );
        row(
            "decode errors / resyncs asked / got",
            format!(
                "{} / {} / {}",
                self.decode_errors, self.resync_requests, self.resyncs
            ),
        );
        if self.shots > 0 {
            row(
                "hit rate (tags / shots)",
                format!(
                    "{:.1} % ({} / {}), {} shot corrections ({} / {} / {}), {} cancelled by a tag",
                    100.0 * self.hit_rate,
                    self.hits,
                    self.shots,
                    self.shot_corrections,
                    self.shot_corrections_moved_unpredicted_vanished.0,
                    self.shot_corrections_moved_unpredicted_vanished.1,
                    self.shot_corrections_moved_unpredicted_vanished.2,
                    self.shots_cancelled
                ),
            );
        }
        row("bots CPU", format!("{:.1} % of a core", self.bots_cpu_pct));
        if let Some(s) = &self.server {
            row(
                "server CPU",
                format!(
                    "{:.1} % of a core, {:.1} us per client per s",
                    s.cpu_pct, s.cpu_us_per_client_per_s
                ),
            );
            row(
                "server RSS",
                format!(
                    "{:.1} MiB, {:.1} KiB per client",
                    s.rss_mib, s.rss_kib_per_client
                ),
            );
            row(
                "server overruns / skipped ticks",
                format!(
                    "{} / {} (snapshots skipped for slow clients: {})",
                    s.tick_overruns, s.ticks_skipped, s.snapshots_skipped
                ),
            );
            if s.view_snapshots > 0 {
                row(
                    "server views",
                    format!(
                        "{} snapshots assembled per client, {} players held back, longest wait for an exact update {} ticks",
                        s.view_snapshots, s.view_players_held, s.view_longest_wait_ticks
                    ),
                );
            }
        }
        for (why, n) in &self.failures {
            row("failure", format!("{n} x {why}"));
        }
        if let Some((behavior, n)) = self.attack {
            row("attackers", format!("{n} x {behavior:?}"));
            for (what, n) in &self.attack_outcomes {
                row("  the server did", format!("{n} x {what}"));
            }
        }
        t
    }
}
