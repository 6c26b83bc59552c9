//! `GET /metrics` in Prometheus text format, through the `metrics` crate's Prometheus
//! exporter. Each server owns its recorder (not the process-global one), so several servers
//! in one process (tests) keep their own figures. Counters live in [`Stats`] atomics on the hot
//! paths and are copied into the recorder at scrape time; the tick duration histogram is
//! recorded by the match loops.

use metrics::{counter, describe_counter, describe_gauge, gauge, histogram, with_local_recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::stats::{Kind, Stats};

/// What `/metrics` shows of the live matches (the registry fills it in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatchGauges {
    /// Matches waiting, counting down, running, ended.
    pub by_phase: [usize; 4],
    pub players: usize,
    pub spectators: usize,
}

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

    /// The Prometheus text exposition of everything: the counters table, the matches' gauges,
    /// the tick histogram, process CPU and RSS.
    #[must_use]
    pub fn render(&self, stats: &Stats, matches: &MatchGauges) -> String {
        with_local_recorder(&self.recorder, || {
            for row in stats.table() {
                match row.kind {
                    Kind::Gauge => {
                        describe_gauge!(row.metric, row.help);
                        gauge!(row.metric).set(row.value as f64);
                    }
                    Kind::Counter => {
                        describe_counter!(row.metric, row.help);
                        counter!(row.metric).absolute(row.value);
                    }
                }
            }
            for (phase, name) in ["waiting", "countdown", "running", "ended"]
                .iter()
                .enumerate()
            {
                gauge!("skirmish_matches", "phase" => *name).set(matches.by_phase[phase] as f64);
            }
            gauge!("skirmish_players").set(matches.players as f64);
            gauge!("skirmish_spectators").set(matches.spectators as f64);
            for (code, n) in stats.close_rows() {
                let code = code.map_or_else(|| "other".to_string(), |c| c.to_string());
                counter!("skirmish_closes_total", "code" => code).absolute(n);
            }
            if let Some(p) = skirmish_shared::process::usage() {
                gauge!("process_cpu_seconds_total").set(p.cpu_seconds);
                gauge!("process_resident_memory_bytes").set(p.rss_bytes as f64);
            }
        });
        self.handle.render()
    }
}
