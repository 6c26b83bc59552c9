//! Measuring from outside: the server's CPU time, RSS and counters from its `/api/stats`,
//! and this process's own CPU time.

use serde::Deserialize;
use skirmish_shared::client;
use skirmish_shared::process::ProcessUsage;

/// One reading of the server.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct ServerReading {
    pub process: Option<ProcessUsage>,
    pub counters: ServerCounters,
}

/// The server counters the report uses.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct ServerCounters {
    #[serde(default)]
    pub ticks: u64,
    #[serde(default)]
    pub tick_overruns: u64,
    #[serde(default)]
    pub ticks_skipped: u64,
    #[serde(default)]
    pub snapshots_skipped: u64,
    #[serde(default)]
    pub connections: u64,
    #[serde(default)]
    pub view_snapshots: u64,
    #[serde(default)]
    pub view_players_held: u64,
    #[serde(default)]
    pub view_longest_wait_ticks: u64,
}

/// Reads `url` (the server's `/api/stats`, e.g. `http://127.0.0.1:7777/api/stats`; https too).
pub async fn read_server(url: &str) -> Result<ServerReading, String> {
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(s, _)| *s == "http" || *s == "https")
        .ok_or_else(|| format!("not an http(s):// URL: {url}"))?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/api/stats".to_string()), |(a, p)| {
            (a, format!("/{p}"))
        });
    let base = format!("{scheme}://{authority}");
    let (status, body) = client::http_request(&base, "GET", &path, None)
        .await
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("{url}: HTTP {status}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
}

/// This process's CPU time, seconds.
#[must_use]
pub fn own_cpu_seconds() -> Option<f64> {
    skirmish_shared::process::usage().map(|u| u.cpu_seconds)
}
