//! `skirmish-server`: parse flags, start logging, serve until Ctrl-C or SIGTERM.

use clap::Parser;
use skirmish_server::{Config, Server};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Config::parse();
    let (tick_hz, match_size) = (config.tick_hz, config.match_size);
    let server = Server::start(config).await?;
    tracing::info!(
        "Skirmish is up: {}/api/matches lists matches, ws://{}/ws joins one ({tick_hz} Hz, {match_size} players per match)",
        server.base_url(),
        server.local_addr
    );
    shutdown_signal().await;
    tracing::info!("shutting down: closing connections with 1001");
    server.shutdown().await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler cannot fail on unix");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
