//! Server configuration: CLI flags with `SKIRMISH_*` environment fallbacks (clap), an
//! optional `--config file.toml` holding any of them, and the defaults the embedded quick
//! start runs on. Precedence: command line, then environment, then file, then default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use skirmish_shared::rules::{DEFAULT_MATCH_SIZE, DEFAULT_TICK_HZ, MAX_PLAYERS, TICK_HZ_RANGE};

/// The Skirmish authoritative match server: HTTP API and WebSocket game stream on one port.
#[derive(Debug, Clone, Parser)]
#[command(name = "skirmish-server", version, about, args_override_self = true)]
pub struct Config {
    /// Address to listen on (HTTP and WebSocket share it).
    #[arg(long, env = "SKIRMISH_ADDR", default_value = "127.0.0.1:7777")]
    pub addr: SocketAddr,

    /// Simulation ticks per second.
    #[arg(long, env = "SKIRMISH_TICK_HZ", default_value_t = DEFAULT_TICK_HZ,
          value_parser = clap::value_parser!(u32).range(i64::from(*TICK_HZ_RANGE.start())..=i64::from(*TICK_HZ_RANGE.end())))]
    pub tick_hz: u32,

    /// Lag compensation: a shot is judged against where its targets were on the shooter's
    /// screen (the tick its input says it was showing), at most this far back; 0 judges
    /// every shot in the present.
    #[arg(long, env = "SKIRMISH_MAX_REWIND", default_value = "200ms", value_parser = parse_max_rewind)]
    pub max_rewind: Duration,

    /// Players per match.
    #[arg(long, env = "SKIRMISH_MATCH_SIZE", default_value_t = DEFAULT_MATCH_SIZE,
          value_parser = parse_match_size)]
    pub match_size: usize,

    /// View radius, world units (the arena is 1,000 across): a player is sent what is
    /// within it of its own player. Unset: the whole arena (every match as small as the
    /// default behaves as without interest management). Big matches want 200-400.
    #[arg(long, env = "SKIRMISH_VIEW_RADIUS", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub view_radius: Option<u32>,

    /// Snapshot bytes per client per tick: when a client's view changes more than this, the
    /// players it gets exactly are chosen by priority (nearer, aiming at it, waiting longer)
    /// and the rest follow within a few ticks. Game events come on top.
    #[arg(long, env = "SKIRMISH_SNAPSHOT_BUDGET", default_value_t = crate::interest::view::DEFAULT_BUDGET,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(64..=1_000_000))]
    pub snapshot_budget: usize,

    /// Per-player input queue length (the jitter buffer); inputs beyond it are dropped.
    #[arg(long, env = "SKIRMISH_INPUT_QUEUE", default_value_t = 8)]
    pub input_queue: usize,

    /// A client whose socket accepts no bytes for this long is dropped (without a close
    /// frame: one may be half written).
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

    /// TLS certificate chain (PEM): with `--tls-key`, the port serves HTTPS and WSS only.
    /// Replaced without a restart on SIGHUP or when the file changes.
    #[arg(long, env = "SKIRMISH_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) for `--tls-cert`.
    #[arg(long, env = "SKIRMISH_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// UDP port of the datagram endpoint (default: the HTTP port's number).
    #[arg(long, env = "SKIRMISH_UDP_PORT")]
    pub udp_port: Option<u16>,

    /// A datagram session that sends nothing for this long is dropped (its seat then waits
    /// `--reconnect-grace` for the player to come back).
    #[arg(long, env = "SKIRMISH_UDP_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub udp_timeout: Duration,

    /// No datagram endpoint (matchmaking then offers WebSocket only).
    #[arg(long, env = "SKIRMISH_NO_UDP")]
    pub no_udp: bool,

    /// A request's headers must arrive within this (else the connection is closed); also the
    /// longest a keep-alive HTTP connection may sit idle between requests.
    #[arg(long, env = "SKIRMISH_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// Most simultaneous HTTP connections (a WebSocket stops counting once upgraded); more
    /// get a 503 and are closed.
    #[arg(long, env = "SKIRMISH_MAX_HTTP_CONNECTIONS", default_value_t = 256)]
    pub max_http_connections: usize,

    /// Largest HTTP request body, bytes; larger ones get 413.
    #[arg(long, env = "SKIRMISH_MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,

    /// Operator key: `POST /api/matches` (and, with `--private-spectating`, spectator tokens)
    /// need `Authorization: Bearer <key>`, unless `--open`. Unset: creating matches is
    /// refused (403) except with `--open`.
    #[arg(long, env = "SKIRMISH_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,

    /// Spectator tokens need the admin key (default: anyone may watch).
    #[arg(long, env = "SKIRMISH_PRIVATE_SPECTATING")]
    pub private_spectating: bool,

    /// Matchmaking, match-creation and spectator-token requests per second per client IP
    /// (a token bucket; 429 with `Retry-After` beyond it).
    #[arg(long, env = "SKIRMISH_API_RATE_PER_S", default_value_t = 2)]
    pub api_rate_per_s: u32,

    /// Burst of such requests a client IP may make at once.
    #[arg(long, env = "SKIRMISH_API_BURST", default_value_t = 10)]
    pub api_burst: u32,

    /// Rate-limit loopback clients too. Off by default: local bot swarms and the demo bots
    /// matchmake from 127.0.0.1 (behind a local reverse proxy every client is loopback; there,
    /// limit at the proxy or turn this on).
    #[arg(long, env = "SKIRMISH_RATE_LIMIT_LOOPBACK")]
    pub rate_limit_loopback: bool,

    /// Accept join tokens signed before a restart (same `--secret`). Off: every token names
    /// the server instance that signed it, and a restarted server refuses older ones.
    #[arg(long, env = "SKIRMISH_TOKEN_SURVIVES_RESTART")]
    pub token_survives_restart: bool,

    /// The server's public base URL (`http://host:port` or `https://...`), used for the
    /// `ws_url` matchmaking returns. Unset: the listen address. The request's `Host` header
    /// is never used.
    #[arg(long, env = "SKIRMISH_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Seed for match RNGs (each match derives its own); unset picks one from the clock.
    #[arg(long, env = "SKIRMISH_SEED")]
    pub seed: Option<u64>,

    /// Allow joining without a token (`/ws?v=..&name=..[&match=..]`): for local play and bots
    /// only. Without it, players join with a token from `POST /api/matchmake`.
    #[arg(long, env = "SKIRMISH_OPEN")]
    pub open: bool,

    /// Secret for signing join tokens (HMAC-SHA256); unset generates a random one at start
    /// (tokens then do not survive a restart).
    #[arg(long, env = "SKIRMISH_SECRET", hide_env_values = true)]
    pub secret: Option<String>,

    /// How long a join token is valid.
    #[arg(long, env = "SKIRMISH_TOKEN_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,

    /// How long a matchmade seat waits for its player to connect.
    #[arg(long, env = "SKIRMISH_SEAT_RESERVATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub seat_reservation: Duration,

    /// How long a dropped player keeps its seat and score (0 frees it at once).
    #[arg(long, env = "SKIRMISH_RECONNECT_GRACE", default_value = "20s", value_parser = humantime::parse_duration)]
    pub reconnect_grace: Duration,

    /// Players needed to start the countdown.
    #[arg(long, env = "SKIRMISH_MIN_PLAYERS", default_value_t = 2)]
    pub min_players: usize,

    /// After this long waiting, start with whoever is there (at least one player).
    #[arg(long, env = "SKIRMISH_WAITING_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub waiting_timeout: Duration,

    /// Countdown before a match starts.
    #[arg(long, env = "SKIRMISH_COUNTDOWN", default_value = "3s", value_parser = humantime::parse_duration)]
    pub countdown: Duration,

    /// How long a match runs.
    #[arg(long, env = "SKIRMISH_MATCH_DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub match_duration: Duration,

    /// Directory for the server's state (the results file). Unset: the platform's data
    /// directory, `$XDG_DATA_HOME/skirmish` or `~/.local/share/skirmish` on Linux.
    #[arg(long, env = "SKIRMISH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// File that finished matches' results are appended to, one JSON line each. Unset:
    /// `results.jsonl` in the data directory.
    #[arg(long, env = "SKIRMISH_RESULTS_PATH")]
    pub results_path: Option<PathBuf>,

    /// Keep results in memory only (no results file).
    #[arg(long, env = "SKIRMISH_NO_RESULTS_FILE")]
    pub no_results_file: bool,

    /// Directory that every match's replay is written to (issue 16). Unset: `replays` in the
    /// data directory.
    #[arg(long, env = "SKIRMISH_REPLAY_DIR")]
    pub replay_dir: Option<PathBuf>,

    /// Record no replays.
    #[arg(long, env = "SKIRMISH_NO_REPLAYS")]
    pub no_replays: bool,

    /// Finished replays kept; the oldest beyond this are deleted.
    #[arg(long, env = "SKIRMISH_REPLAY_KEEP", default_value_t = 1000)]
    pub replay_keep: usize,

    /// Finished replays older than this are deleted.
    #[arg(long, env = "SKIRMISH_REPLAY_MAX_AGE", default_value = "30days", value_parser = humantime::parse_duration)]
    pub replay_max_age: Duration,

    /// Live spectators watch this far behind the match (e.g. `30s`), so a spectator cannot
    /// feed live positions to a player. `0s`: live. At most 5 minutes.
    #[arg(long, env = "SKIRMISH_SPECTATOR_DELAY", default_value = "0s", value_parser = parse_spectator_delay)]
    pub spectator_delay: Duration,

    /// Spectators per match.
    #[arg(long, env = "SKIRMISH_MAX_SPECTATORS", default_value_t = 32)]
    pub max_spectators: usize,

    /// On SIGTERM/SIGINT, let running matches play on this long before ending them.
    #[arg(long, env = "SKIRMISH_DRAIN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,

    /// Log format.
    #[arg(long, env = "SKIRMISH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// A TOML file with any of these settings (keys are the flag names, e.g. `tick-hz = 60`).
    #[arg(long, env = "SKIRMISH_CONFIG")]
    pub config: Option<PathBuf>,

    /// Run as an Agones GameServer: Ready, Health, player tracking and Shutdown through the
    /// SDK sidecar (needs the `agones` cargo feature).
    #[arg(long, env = "SKIRMISH_AGONES")]
    pub agones: bool,

    /// Also run this many wandering bots in-process, so a match is live at once (watch it at
    /// `/`).
    #[arg(long, env = "SKIRMISH_DEMO", default_value_t = 0)]
    pub demo: usize,

    /// Port of the Agones SDK sidecar (gRPC).
    #[arg(long, env = "AGONES_SDK_GRPC_PORT", default_value_t = 9357)]
    pub agones_sdk_port: u16,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Invalid(#[from] clap::Error),
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

impl Config {
    /// Parses the process's arguments, environment and config file.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::args_os().collect())
    }

    /// Parses `args` (the first is the program name), the environment and the config file
    /// named by `--config` or `SKIRMISH_CONFIG`.
    pub fn load_from(args: Vec<std::ffi::OsString>) -> Result<Self, ConfigError> {
        let first = Self::try_parse_from(&args)?;
        let Some(path) = first.config.clone() else {
            return Ok(first);
        };
        let file_err = |reason: String| ConfigError::File {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| file_err(e.to_string()))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| file_err(e.to_string()))?;
        let command = <Self as clap::CommandFactory>::command();
        let mut from_file: Vec<std::ffi::OsString> = Vec::new();
        for (key, value) in table {
            let flag = key.replace('_', "-");
            let arg = command
                .get_arguments()
                .find(|a| a.get_long() == Some(flag.as_str()) && flag != "config")
                .ok_or_else(|| file_err(format!("unknown setting `{key}`")))?;
            // The environment overrides the file.
            if arg.get_env().is_some_and(|e| std::env::var_os(e).is_some()) {
                continue;
            }
            let is_switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
            match value {
                toml::Value::Boolean(b) if is_switch => {
                    if b {
                        from_file.push(format!("--{flag}").into());
                    }
                }
                toml::Value::String(s) => from_file.extend([format!("--{flag}").into(), s.into()]),
                toml::Value::Integer(i) => {
                    from_file.extend([format!("--{flag}").into(), i.to_string().into()])
                }
                toml::Value::Float(f) => {
                    from_file.extend([format!("--{flag}").into(), f.to_string().into()])
                }
                other => {
                    return Err(file_err(format!(
                        "setting `{key}` has an unsupported value: {other:?}"
                    )));
                }
            }
        }
        // File values first, so the command line (later) wins.
        let mut all = vec![
            args.first()
                .cloned()
                .unwrap_or_else(|| "skirmish-server".into()),
        ];
        all.extend(from_file);
        all.extend(args.into_iter().skip(1));
        Self::try_parse_from(all).map_err(|e| file_err(e.to_string()))
    }
}

fn parse_spectator_delay(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d > Duration::from_secs(300) {
        return Err("at most 5m (the match keeps every tick of the delay in memory)".into());
    }
    Ok(d)
}

fn parse_max_rewind(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    let limit = Duration::from_millis(u64::from(skirmish_shared::rules::MAX_REWIND_LIMIT_MS));
    if d > limit {
        return Err(format!(
            "at most {limit:?} (a longer rewind lets laggy shooters hit players long gone)"
        ));
    }
    Ok(d)
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
    /// For tests and embedding: the defaults on an OS-chosen loopback port, with open joins,
    /// results in memory only, and matches that start as soon as one player is in.
    #[must_use]
    pub fn ephemeral() -> Self {
        let mut c = Self::parse_from(["skirmish-server"]);
        c.addr = SocketAddr::from(([127, 0, 0, 1], 0));
        c.open = true;
        c.no_results_file = true;
        c.no_replays = true;
        c.min_players = 1;
        c.countdown = Duration::ZERO;
        c
    }

    /// What clients see: the view radius (position steps) and the snapshot budget.
    #[must_use]
    pub fn interest(&self) -> crate::interest::Settings {
        crate::interest::Settings {
            radius: self.view_radius.map(|r| {
                i32::try_from(r).unwrap_or(i32::MAX / 32) * skirmish_shared::quant::POS_SCALE
            }),
            budget: self.snapshot_budget,
        }
    }

    /// The directory for the server's state: `--data-dir`, else the platform's data
    /// directory, else (no home directory at all) `skirmish-data` in the working directory.
    #[must_use]
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            dirs::data_dir().map_or_else(|| PathBuf::from("skirmish-data"), |d| d.join("skirmish"))
        })
    }

    /// The replay directory, unless replays are off.
    #[must_use]
    pub fn replays(&self) -> Option<PathBuf> {
        (!self.no_replays).then(|| {
            self.replay_dir
                .clone()
                .unwrap_or_else(|| self.data_dir().join("replays"))
        })
    }

    /// The results file, unless disabled.
    #[must_use]
    pub fn results_file(&self) -> Option<PathBuf> {
        (!self.no_results_file).then(|| {
            self.results_path
                .clone()
                .unwrap_or_else(|| self.data_dir().join("results.jsonl"))
        })
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
    fn config_file_sets_values_and_the_command_line_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "tick-hz = 60\nmatch_size = 8\nopen = true\nmatch-duration = \"2m\"\n",
        )
        .expect("write");
        let p = path.to_string_lossy().to_string();
        let c = Config::load_from(vec![
            "s".into(),
            "--config".into(),
            p.clone().into(),
            "--tick-hz".into(),
            "20".into(),
        ])
        .expect("loads");
        assert_eq!(c.tick_hz, 20, "the command line wins");
        assert_eq!(c.match_size, 8);
        assert!(c.open);
        assert_eq!(c.match_duration, Duration::from_secs(120));

        std::fs::write(&path, "tick-hz = 500\n").expect("write");
        let err = Config::load_from(vec!["s".into(), "--config".into(), p.clone().into()])
            .expect_err("out of range");
        assert!(err.to_string().contains("tick-hz"), "{err}");
        std::fs::write(&path, "tickrate = 5\n").expect("write");
        let err =
            Config::load_from(vec!["s".into(), "--config".into(), p.into()]).expect_err("unknown");
        assert!(
            err.to_string().contains("unknown setting `tickrate`"),
            "{err}"
        );
    }

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

    #[test]
    fn results_go_to_the_data_directory_not_the_working_directory() {
        let c = Config::try_parse_from(["s", "--data-dir", "/srv/skirmish"]).expect("parses");
        assert_eq!(
            c.results_file(),
            Some(PathBuf::from("/srv/skirmish/results.jsonl"))
        );
        let c = Config::try_parse_from(["s", "--data-dir", "/srv/x", "--results-path", "r.jsonl"])
            .expect("parses");
        assert_eq!(
            c.results_file(),
            Some(PathBuf::from("r.jsonl")),
            "an explicit path wins"
        );
        let c = Config::try_parse_from(["s"]).expect("parses");
        let default = c.results_file().expect("a results file by default");
        assert!(default.is_absolute(), "{}", default.display());
        assert!(
            default.ends_with("skirmish/results.jsonl"),
            "{}",
            default.display()
        );
        let c = Config::try_parse_from(["s", "--no-results-file"]).expect("parses");
        assert_eq!(c.results_file(), None);
    }
}
