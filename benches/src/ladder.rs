//! The load ladder's results: one row per client count, the markdown table, and the plot.

use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One step of the ladder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// `ws` or `udp`.
    #[serde(default)]
    pub transport: String,
    /// Players per match.
    #[serde(default = "sixteen")]
    pub match_size: usize,
    pub clients: usize,
    pub connected: u64,
    pub server_cpu_pct: f64,
    pub cpu_us_per_client_per_s: f64,
    pub rss_mib: f64,
    /// RSS added per client since the previous step (or since the idle server), KiB.
    pub rss_kib_per_added_client: f64,
    pub bytes_per_client_per_s: f64,
    pub wire_bytes_per_client_per_s: f64,
    /// What each client sent, on the wire (WebSocket frames, or whole datagrams).
    #[serde(default)]
    pub upload_wire_bytes_per_client_per_s: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub delivery: f64,
    pub tick_overruns: u64,
    pub ticks_skipped: u64,
    pub desyncs: u64,
    pub bots_cpu_pct: f64,
    /// The server's `--view-radius` (world units), if set.
    #[serde(default)]
    pub view_radius: Option<u32>,
    /// The server's `--snapshot-budget`, if set.
    #[serde(default)]
    pub snapshot_budget: Option<usize>,
    /// The longest a player in a view waited for an exact update, ticks.
    #[serde(default)]
    pub longest_wait_ticks: u64,
    /// The server recorded replays (issue 16); false for runs before the flag existed.
    #[serde(default)]
    pub recording: bool,
    /// With recording: its share of the server's CPU, percent (the writer thread's CPU time
    /// and the time matches spent recording, over the process's CPU time).
    #[serde(default)]
    pub recording_cpu_pct: Option<f64>,
}

fn sixteen() -> usize {
    16
}

impl Step {
    /// The server kept up: at least 95 % of snapshots delivered, no overruns or skipped ticks.
    #[must_use]
    pub fn kept_up(&self) -> bool {
        self.delivery >= 0.95
            && self.tick_overruns == 0
            && self.ticks_skipped == 0
            && self.connected as usize == self.clients
    }
}

/// The markdown table.
#[must_use]
pub fn table(steps: &[Step]) -> String {
    let mut t = String::from(
        "| transport | clients | server CPU % of a core | CPU µs/client/s | RSS MiB | RSS KiB/added client | B/client/s payload | B/client/s wire down | B/client/s wire up | input→ack p50 ms | p99 ms | delivery % | overruns/skipped ticks | desyncs | bots CPU % |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for s in steps {
        t.push_str(&format!(
            "| {} | {} | {:.1} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {}/{} | {} | {:.1}{} |\n",
            {
                let t = if s.transport.is_empty() { "ws" } else { s.transport.as_str() };
                let mut label = match s.match_size {
                    16 => t.to_string(),
                    m => format!("{t}, {m}/match"),
                };
                if let Some(r) = s.view_radius {
                    label.push_str(&format!(", view {r}"));
                }
                if let Some(b) = s.snapshot_budget {
                    label.push_str(&format!(", budget {b} B"));
                }
                if s.recording {
                    label.push_str(", recording");
                    if let Some(p) = s.recording_cpu_pct {
                        label.push_str(&format!(" ({p:.1} % of the server's CPU)"));
                    }
                }
                if s.longest_wait_ticks > 0 {
                    label.push_str(&format!(" (longest wait {} ticks)", s.longest_wait_ticks));
                }
                label
            },
            s.clients,
            s.server_cpu_pct,
            s.cpu_us_per_client_per_s,
            s.rss_mib,
            s.rss_kib_per_added_client,
            s.bytes_per_client_per_s,
            s.wire_bytes_per_client_per_s,
            s.upload_wire_bytes_per_client_per_s,
            s.latency_p50_ms,
            s.latency_p99_ms,
            s.delivery * 100.0,
            s.tick_overruns,
            s.ticks_skipped,
            s.desyncs,
            s.bots_cpu_pct,
            if s.bots_cpu_pct >= 90.0 { " (saturated)" } else { "" },
        ));
    }
    t
}

/// Plots CPU µs per client per second and bytes per client per second against clients.
pub fn plot(steps: &[Step], path: &Path, font: Option<&'static [u8]>) -> anyhow::Result<()> {
    if let Some(font) = font {
        plotters::style::register_font("sans-serif", FontStyle::Normal, font)
            .map_err(|_| anyhow::anyhow!("font does not load"))?;
    }
    let root = BitMapBackend::new(path, (1000, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    let max_clients = steps.iter().map(|s| s.clients).max().unwrap_or(16) as f64;
    let panel = |area: &DrawingArea<BitMapBackend<'_>, _>,
                 title: &str,
                 y: &dyn Fn(&Step) -> f64|
     -> anyhow::Result<()> {
        let max_y = steps.iter().map(y).fold(1.0_f64, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d((8f64..max_clients * 1.5).log_scale(), 0f64..max_y)?;
        chart.configure_mesh().x_desc("clients").draw()?;
        let pts: Vec<(f64, f64)> = steps.iter().map(|s| (s.clients as f64, y(s))).collect();
        chart.draw_series(LineSeries::new(pts.clone(), &BLUE))?;
        chart.draw_series(pts.iter().map(|p| Circle::new(*p, 4, BLUE.filled())))?;
        Ok(())
    };
    panel(&left, "server CPU µs per client per s", &|s| {
        s.cpu_us_per_client_per_s
    })?;
    panel(&right, "bytes per client per s (wire)", &|s| {
        s.wire_bytes_per_client_per_s
    })?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(clients: usize, delivery: f64) -> Step {
        Step {
            transport: "udp".into(),
            match_size: 16,
            clients,
            connected: clients as u64,
            server_cpu_pct: 10.0,
            cpu_us_per_client_per_s: 100.0,
            rss_mib: 10.0,
            rss_kib_per_added_client: 8.0,
            bytes_per_client_per_s: 1800.0,
            wire_bytes_per_client_per_s: 1860.0,
            upload_wire_bytes_per_client_per_s: 600.0,
            latency_p50_ms: 17.0,
            latency_p99_ms: 35.0,
            delivery,
            tick_overruns: 0,
            ticks_skipped: 0,
            desyncs: 0,
            bots_cpu_pct: 20.0,
            view_radius: None,
            snapshot_budget: None,
            longest_wait_ticks: 0,
            recording: false,
            recording_cpu_pct: None,
        }
    }

    #[test]
    fn falling_behind_is_detected_and_tabled() {
        assert!(step(16, 0.99).kept_up());
        assert!(!step(16, 0.90).kept_up());
        let t = table(&[step(16, 0.99), step(64, 0.5)]);
        assert_eq!(t.lines().count(), 4);
        assert!(t.contains("| 64 |"));
    }
}
