//! `skirmish-server`: load the configuration, start logging, serve (`skirmish-server replay
//! verify|show FILE`: check or look inside a replay instead). The first SIGTERM or
//! Ctrl-C drains (no new players, matches play on up to `--drain-timeout`, then close 1001
//! with results kept) and exits 0; a second one exits at once.

use skirmish_server::config::LogFormat;
use skirmish_server::{Config, Server};
use tracing_subscriber::EnvFilter;

/// mimalloc rather than the system allocator: a match allocates a few small buffers per
/// client per tick (views, frames, sealed packets), and glibc's malloc and free were about a
/// sixth of a big match's server CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // `skirmish-server replay verify|show ...`: a tool, not a server.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "replay") {
        std::process::exit(skirmish_server::replay::cli::run(args));
    }
    serve()
}

#[tokio::main]
async fn serve() -> anyhow::Result<()> {
    let config = match Config::load() {
        Ok(c) => c,
        Err(skirmish_server::config::ConfigError::Invalid(e)) => e.exit(),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match config.log_format {
        LogFormat::Pretty => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    let (tick_hz, match_size, drain_timeout, open) = (
        config.tick_hz,
        config.match_size,
        config.drain_timeout,
        config.open,
    );
    let server = Server::start(config).await?;
    tracing::info!(
        "Skirmish is up: POST {base}/api/matchmake for a seat{open}, {base}/api/matches lists matches, {base}/metrics for Prometheus ({tick_hz} Hz, {match_size} players per match)",
        base = server.base_url(),
        open = if open {
            " (or join ws://.../ws?v=2&name=.. without one: --open)"
        } else {
            ""
        },
    );
    signal().await;
    tracing::info!(
        "draining: no new players; matches end within {drain_timeout:?}; a second signal exits at once"
    );
    tokio::select! {
        r = server.drain(drain_timeout) => r?,
        () = signal() => {
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        }
    }
    tracing::info!("drained; bye");
    Ok(())
}

/// The next SIGTERM or SIGINT.
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())
            .expect("installing a SIGTERM handler cannot fail on unix");
        let mut int = signal(SignalKind::interrupt())
            .expect("installing a SIGINT handler cannot fail on unix");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
