//! `skirmish-bots`: a swarm of real WebSocket clients against a Skirmish server, with a
//! latency and bandwidth report. Ctrl-C ends the run early and still prints the report.

use std::time::Duration;

use clap::Parser;
use skirmish_bots::behavior::Behavior;
use skirmish_bots::swarm::{self, SwarmConfig};
use skirmish_shared::client::Transport;
use skirmish_shared::link_sim::LinkArgs;

/// Load-test a Skirmish server with bots that play like real clients.
#[derive(Debug, Parser)]
#[command(name = "skirmish-bots", version, about)]
struct Args {
    /// The server's base URL (`https://` plays over WSS).
    #[arg(long, default_value = "http://127.0.0.1:7777")]
    url: String,
    /// Also trust this CA (PEM) for `https://` servers (a private or self-signed CA).
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
    /// How many bots (each its own WebSocket connection).
    #[arg(long, default_value_t = 16)]
    bots: usize,
    /// Bots per match: the swarm creates ceil(bots / match-size) matches and fills them in
    /// order (0: let the server's matchmaker place every bot).
    #[arg(long, default_value_t = 16)]
    match_size: usize,
    /// Length of the measurement window (after ramp and warm-up).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Connect the bots evenly over this long.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    ramp: Duration,
    /// Wait this long after the ramp before measuring.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// How the bots play: wander is the benchmark workload; an abuse behaviour makes every
    /// bot an attacker (see --attack to mix them with honest bots).
    #[arg(long, value_enum, default_value_t = Behavior::Wander)]
    behavior: Behavior,
    /// Also start attackers with this abuse behaviour (flood-pings, flood-inputs,
    /// fragment-bomb, slow-reader, reconnect-storm) in the bots' matches after the ramp; the
    /// report shows what the server did to them and what the bots saw meanwhile.
    #[arg(long, value_enum)]
    attack: Option<Behavior>,
    /// How many attackers.
    #[arg(long, default_value_t = 1)]
    attackers: usize,
    /// The server's operator key, to create matches on a server that is not `--open`.
    #[arg(long, env = "SKIRMISH_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Worker threads of the bots' tokio runtime, and as many threads driving the bots
    /// (`--transport udp`, or `ws` over plain http; `auto` and https run a task per bot).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The server's tick rate (for delivery and jitter figures).
    #[arg(long, default_value_t = 30)]
    tick_hz: u32,
    /// Also report the server's CPU and RSS, read from this URL (its /api/stats).
    #[arg(long)]
    server_metrics: Option<String>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Seed for the bots' random walks and phases.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// No live progress line.
    #[arg(long)]
    quiet: bool,
    /// What the bots play over: udp, ws, or auto (UDP, falling back to WebSocket).
    #[arg(long, default_value_t = Transport::Ws)]
    transport: Transport,
    /// A simulated link per packet (UDP).
    #[command(flatten)]
    link: LinkArgs,
    /// One bot in this many decodes and checks its snapshots (latency, desyncs); the others
    /// only count them, still acknowledging and sending inputs, so the server's work is the
    /// same. For swarms bigger than one core can check.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    verify_every: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(ca) = &args.ca {
        skirmish_shared::client_tls::trust_ca_file(ca)?;
    }
    let link = args.link.config();
    if link.is_active() && args.transport == Transport::Ws {
        anyhow::bail!("the simulated link works per packet on UDP: add --transport udp (or auto)");
    }
    if args.attack.is_some_and(|a| !a.is_attack()) {
        anyhow::bail!(
            "--attack takes an abuse behaviour (flood-pings, flood-inputs, fragment-bomb, slow-reader, reconnect-storm)"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        let cfg = SwarmConfig {
            base_url: args.url.clone(),
            bots: args.bots,
            match_size: args.match_size,
            duration: args.duration,
            ramp: args.ramp,
            warmup: args.warmup,
            behavior: args.behavior,
            server_metrics: args.server_metrics.clone(),
            seed: args.seed,
            progress: !args.quiet,
            tick_hz: args.tick_hz,
            attackers: if args.attack.is_some() {
                args.attackers
            } else {
                0
            },
            attack: args.attack,
            admin_key: args.admin_key.clone(),
            transport: args.transport,
            link,
            driver_threads: args.threads.max(1),
            verify_every: usize::try_from(args.verify_every).unwrap_or(1),
        };
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        swarm::run(cfg, ctrl_c).await
    })?;
    println!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
