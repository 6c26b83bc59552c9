//! `GET /metrics` in Prometheus text format, through the `metrics` crate's Prometheus
//! exporter. Each server owns its recorder (not the process-global one), so several servers
//! in one process (tests) keep their own figures. Counters live in [`Stats`] atomics on the hot
//! paths and are copied into the recorder at scrape time; the tick duration histogram is
//! recorded by the match loops.

use metrics::{counter, gauge, histogram, with_local_recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use skirmish_shared::world::Phase;

use crate::registry::Registry;
use crate::stats::Stats;

const TICK_DURATION: &str = "skirmish_tick_duration_seconds";

/// A server's metrics recorder.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let buckets = [
            0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(TICK_DURATION.into()), &buckets)
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        Self { recorder, handle }
    }
}

impl Metrics {
    /// Records one tick's simulation + encoding time.
    pub fn record_tick(&self, seconds: f64) {
        with_local_recorder(&self.recorder, || histogram!(TICK_DURATION).record(seconds));
    }

    /// The Prometheus text exposition of everything.
    #[must_use]
    pub fn render(&self, stats: &Stats, registry: &Registry) -> String {
        with_local_recorder(&self.recorder, || {
            gauge!("skirmish_connections").set(stats.connections.get() as f64);
            let matches = registry.all();
            for (phase, name) in [
                (Phase::Waiting, "waiting"),
                (Phase::Countdown, "countdown"),
                (Phase::Running, "running"),
                (Phase::Ended, "ended"),
            ] {
                let n = matches.iter().filter(|m| m.phase() == phase).count();
                gauge!("skirmish_matches", "phase" => name).set(n as f64);
            }
            let players: usize = matches.iter().map(|m| m.seats().len()).sum();
            gauge!("skirmish_players").set(players as f64);
            let spectators: usize = matches.iter().map(|m| m.info().spectators).sum();
            gauge!("skirmish_spectators").set(spectators as f64);
            let counters = [
                ("skirmish_ticks_total", &stats.ticks),
                ("skirmish_tick_overruns_total", &stats.tick_overruns),
                ("skirmish_ticks_skipped_total", &stats.ticks_skipped),
                ("skirmish_bytes_sent_total", &stats.bytes_out),
                ("skirmish_messages_sent_total", &stats.messages_out),
                ("skirmish_bytes_received_total", &stats.bytes_in),
                ("skirmish_messages_received_total", &stats.messages_in),
                ("skirmish_snapshots_skipped_total", &stats.snapshots_skipped),
                (
                    "skirmish_snapshots_encoded_per_client_total",
                    &stats.snapshots_encoded_per_client,
                ),
                ("skirmish_inputs_received_total", &stats.inputs_received),
                ("skirmish_inputs_dropped_total", &stats.inputs_dropped),
                ("skirmish_inputs_trimmed_total", &stats.inputs_trimmed),
                (
                    "skirmish_slow_clients_dropped_total",
                    &stats.slow_clients_dropped,
                ),
                ("skirmish_http_refused_busy_total", &stats.http_refused_busy),
                ("skirmish_http_rate_limited_total", &stats.http_rate_limited),
            ];
            for (name, c) in counters {
                counter!(name).absolute(c.get());
            }
            for (code, c) in stats.closes() {
                counter!("skirmish_closes_total", "code" => code.to_string()).absolute(c.get());
            }
            if let Some(p) = skirmish_shared::process::usage() {
                gauge!("process_cpu_seconds_total").set(p.cpu_seconds);
                gauge!("process_resident_memory_bytes").set(p.rss_bytes as f64);
            }
        });
        self.handle.render()
    }
}
