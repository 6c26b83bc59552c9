//! Server configuration: CLI flags with `SKIRMISH_*` environment fallbacks (clap), and the
//! defaults the embedded quick start runs on.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use skirmish_shared::rules::{DEFAULT_MATCH_SIZE, DEFAULT_TICK_HZ, MAX_PLAYERS, TICK_HZ_RANGE};

/// The Skirmish authoritative match server: HTTP API and WebSocket game stream on one port.
#[derive(Debug, Clone, Parser)]
#[command(name = "skirmish-server", version, about)]
pub struct Config {
    /// Address to listen on (HTTP and WebSocket share it).
    #[arg(long, env = "SKIRMISH_ADDR", default_value = "127.0.0.1:7777")]
    pub addr: SocketAddr,

    /// Simulation ticks per second.
    #[arg(long, env = "SKIRMISH_TICK_HZ", default_value_t = DEFAULT_TICK_HZ,
          value_parser = clap::value_parser!(u32).range(i64::from(*TICK_HZ_RANGE.start())..=i64::from(*TICK_HZ_RANGE.end())))]
    pub tick_hz: u32,

    /// Players per match.
    #[arg(long, env = "SKIRMISH_MATCH_SIZE", default_value_t = DEFAULT_MATCH_SIZE,
          value_parser = parse_match_size)]
    pub match_size: usize,

    /// Per-player input queue length (the jitter buffer); inputs beyond it are dropped.
    #[arg(long, env = "SKIRMISH_INPUT_QUEUE", default_value_t = 8)]
    pub input_queue: usize,

    /// A client whose socket accepts no snapshot for this long is closed (1008).
    #[arg(long, env = "SKIRMISH_WRITE_TIMEOUT_MS", default_value_t = 10_000)]
    pub write_timeout_ms: u64,

    /// A match with no players for this long is closed.
    #[arg(long, env = "SKIRMISH_EMPTY_MATCH_TTL_S", default_value_t = 60)]
    pub empty_match_ttl_s: u64,

    /// Kernel send buffer per connection, bytes (SO_SNDBUF); unset lets the kernel autotune.
    #[arg(long, env = "SKIRMISH_SEND_BUFFER")]
    pub send_buffer: Option<u32>,

    /// Most simultaneous WebSocket connections; more are refused with 503.
    #[arg(long, env = "SKIRMISH_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub max_connections: usize,

    /// Seed for match RNGs (each match derives its own); unset picks one from the clock.
    #[arg(long, env = "SKIRMISH_SEED")]
    pub seed: Option<u64>,
}

fn parse_match_size(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if (1..=MAX_PLAYERS).contains(&n) {
        Ok(n)
    } else {
        Err(format!("match size must be 1..={MAX_PLAYERS}"))
    }
}

impl Config {
    /// The defaults, listening on an OS-chosen loopback port (for tests and embedding).
    #[must_use]
    pub fn ephemeral() -> Self {
        let mut c = Self::parse_from(["skirmish-server"]);
        c.addr = SocketAddr::from(([127, 0, 0, 1], 0));
        c
    }

    #[must_use]
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    #[must_use]
    pub fn empty_match_ttl(&self) -> Duration {
        Duration::from_secs(self.empty_match_ttl_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c = Config::try_parse_from(["s"]).expect("defaults parse");
        assert_eq!(c.addr.to_string(), "127.0.0.1:7777");
        assert_eq!(c.tick_hz, 30);
        assert_eq!(c.match_size, 16);
        assert!(Config::try_parse_from(["s", "--tick-hz", "5"]).is_err());
        assert!(Config::try_parse_from(["s", "--tick-hz", "129"]).is_err());
        assert!(Config::try_parse_from(["s", "--match-size", "0"]).is_err());
        assert_eq!(
            Config::try_parse_from(["s", "--tick-hz", "128"])
                .expect("ok")
                .tick_hz,
            128
        );
    }
}
