//! Writes a recorded wander match into a replay directory, as a server would have (for the
//! browser seek benchmark, `benches/replay_seek.sh`).

use clap::Parser;

/// Write a synthetic replay file.
#[derive(Debug, Parser)]
struct Args {
    /// The replay directory (created).
    #[arg(long)]
    dir: std::path::PathBuf,
    #[arg(long, default_value_t = 16)]
    players: usize,
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    length: std::time::Duration,
    #[arg(long, default_value_t = 1)]
    match_id: u32,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let ticks = (args.length.as_secs_f64() * 30.0) as u32;
    let file =
        skirmish_shared::workload::wander_replay(args.players, ticks, args.match_id, created);
    let path = args
        .dir
        .join(format!("match-{}-{created}.skreplay", args.match_id));
    std::fs::write(&path, &file)?;
    println!("{} ({} bytes, {ticks} ticks)", path.display(), file.len());
    Ok(())
}
