//! The load ladder: for each client count, start the release server pinned to CPU 0 and the
//! bot swarm pinned to CPU 1 (taskset), measure, stop the server by its PID; stop climbing
//! when the server falls behind (under 95 % of snapshots delivered, or tick overruns). Writes
//! a markdown table, the raw rows as JSON lines, and a PNG plot.
//!
//! `cargo build --release -p skirmish-server -p skirmish-bots && cargo run --release -p
//! skirmish-benches --bin ladder`

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use skirmish_benches::ladder::{Step, plot, table};

/// Climb client counts until the server falls behind.
#[derive(Debug, Parser)]
struct Args {
    /// Client counts to try, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "16,64,256,1024,2048,4096,8192"
    )]
    steps: Vec<usize>,
    /// Measurement window per step.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Where the binaries are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Where the table, rows and plot go.
    #[arg(long, default_value = "docs/bench")]
    out_dir: PathBuf,
    #[arg(long, default_value_t = 7790)]
    port: u16,
    /// Bots' tokio worker threads.
    #[arg(long, default_value_t = 1)]
    bot_threads: usize,
    /// Keep climbing after the server falls behind.
    #[arg(long)]
    all: bool,
    /// Serve HTTPS/WSS (a CA and a certificate for 127.0.0.1 are made in the out dir) and
    /// have the bots verify it: the TLS cost per client.
    #[arg(long)]
    tls: bool,
    /// Players per match (the server's `--match-size` and the bots'), in order: 16 is the
    /// benchmark workload; 64-256 are the big matches of issue 15 (`16,64,128,256`: side by
    /// side in one run).
    #[arg(long, value_delimiter = ',', default_value = "16")]
    match_size: Vec<usize>,
    /// The server's view radius in world units, in order: `none` (the whole arena) or a
    /// number (`none,250`: without and with interest management, side by side).
    #[arg(long, value_delimiter = ',', default_value = "none")]
    views: Vec<String>,
    /// The server's `--snapshot-budget` for the series with a view radius, bytes per client
    /// per tick (unset, and for `none`: the server's default).
    #[arg(long)]
    snapshot_budget: Option<usize>,
    /// One bot in this many checks its snapshots (the bots' `--verify-every`): above about
    /// 2,000 clients one core cannot check them all.
    #[arg(long, default_value_t = 1)]
    verify_every: u64,
    /// Replay recording, in order: `off` (`--no-replays`) or `on` (replays written under
    /// the out dir, removed after each step); `off,on`: its cost side by side.
    #[arg(long, value_delimiter = ',', default_value = "off")]
    recording: Vec<String>,
    /// Transports to measure at each step, in order (`ws,udp`: side by side in one run).
    #[arg(long, value_delimiter = ',', default_value = "ws")]
    transport: Vec<String>,
    /// A TrueType font for the plot's text.
    #[arg(
        long,
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    font: PathBuf,
}

/// Kills the server by PID when dropped.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The operator key the ladder's server and bots share (the bots create the matches).
const LADDER_KEY: &str = "ladder";

/// With `--tls`: where the certificate, key and CA are (made once per run).
struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

fn make_tls(dir: &std::path::Path) -> anyhow::Result<TlsFiles> {
    use skirmish_shared::test_certs;
    std::fs::create_dir_all(dir)?;
    let ca = test_certs::ca("skirmish ladder CA")?;
    let leaf = test_certs::server_cert(&ca, "skirmish ladder server", false)?;
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        ca: dir.join("ca.pem"),
    };
    std::fs::write(&files.cert, leaf.cert_pem)?;
    std::fs::write(&files.key, leaf.key_pem)?;
    std::fs::write(&files.ca, ca.cert.pem())?;
    Ok(files)
}

fn base_url(args: &Args) -> String {
    let scheme = if args.tls { "https" } else { "http" };
    format!("{scheme}://127.0.0.1:{}", args.port)
}

/// One line of the ladder: a transport, a match size and a view radius.
#[derive(Debug, Clone)]
struct Series {
    transport: String,
    match_size: usize,
    view_radius: Option<u32>,
    recording: bool,
}

impl Series {
    fn name(&self) -> String {
        let view = self
            .view_radius
            .map_or(String::new(), |r| format!("-view{r}"));
        let rec = if self.recording { "-rec" } else { "" };
        format!("{}-m{}{view}{rec}", self.transport, self.match_size)
    }
}

fn start_server(
    args: &Args,
    series: &Series,
    tls: Option<&TlsFiles>,
) -> anyhow::Result<ServerProcess> {
    let bin = args.bin_dir.join("skirmish-server");
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0"]).arg(&bin);
    if let Some(t) = tls {
        cmd.arg("--tls-cert")
            .arg(&t.cert)
            .arg("--tls-key")
            .arg(&t.key);
    }
    let child = cmd
        .args([
            "--addr",
            &format!("127.0.0.1:{}", args.port),
            "--no-results-file",
            "--max-connections",
            "19000",
            "--admin-key",
            LADDER_KEY,
        ])
        .args(["--match-duration", "1h", "--empty-match-ttl-s", "600"])
        .args(["--match-size", &series.match_size.to_string()])
        .args(
            series
                .view_radius
                .map(|r| ["--view-radius".to_string(), r.to_string()])
                .into_iter()
                .flatten(),
        )
        .args(
            args.snapshot_budget
                .filter(|_| series.view_radius.is_some())
                .map(|b| ["--snapshot-budget".to_string(), b.to_string()])
                .into_iter()
                .flatten(),
        )
        .args(if series.recording {
            vec![
                "--replay-dir".to_string(),
                replay_dir(args).display().to_string(),
            ]
        } else {
            vec!["--no-replays".to_string()]
        })
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (build it with cargo build --release)",
                bin.display()
            )
        })?;
    let server = ServerProcess(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", args.port)).is_ok() {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!(
        "the server did not listen on port {} within 10 s",
        args.port
    )
}

/// Where a recording step's replays go (emptied after the step).
fn replay_dir(args: &Args) -> PathBuf {
    args.out_dir.join("replays")
}

/// What recording cost the server so far: the writer thread's CPU time and the matches' time
/// recording, as a percentage of the process's CPU time (both since the server started).
fn recording_share(args: &Args, tls: Option<&TlsFiles>) -> Option<f64> {
    let mut curl = Command::new("curl");
    curl.arg("-s");
    if let Some(t) = tls {
        curl.arg("--cacert").arg(&t.ca);
    }
    let out = curl
        .arg(format!("{}/api/stats", base_url(args)))
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let c = &v["counters"];
    let spent_us =
        c["replay_writer_cpu_ms"].as_f64()? * 1000.0 + c["replay_record_ns"].as_f64()? / 1000.0;
    let cpu_us = v["process"]["cpu_seconds"].as_f64()? * 1e6;
    (cpu_us > 0.0).then(|| spent_us / cpu_us * 100.0)
}

fn idle_rss_mib(args: &Args, tls: Option<&TlsFiles>) -> anyhow::Result<f64> {
    let mut curl = Command::new("curl");
    curl.arg("-s");
    if let Some(t) = tls {
        curl.arg("--cacert").arg(&t.ca);
    }
    let out = curl.arg(format!("{}/api/stats", base_url(args))).output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(v["process"]["rss_bytes"].as_f64().unwrap_or(0.0) / (1 << 20) as f64)
}

fn run_step(
    args: &Args,
    tls: Option<&TlsFiles>,
    series: &Series,
    clients: usize,
    prev_rss: &mut Option<(usize, f64)>,
) -> anyhow::Result<Step> {
    let transport = series.transport.as_str();
    let server = start_server(args, series, tls)?;
    let idle = idle_rss_mib(args, tls)?;
    let base = prev_rss.get_or_insert((0, idle));
    let json = args
        .out_dir
        .join(format!("bots-{}-{clients}.json", series.name()));
    let ramp = Duration::from_millis((clients as u64 * 2).max(2000));
    let mut bots = Command::new("taskset");
    bots.args(["-c", "1"])
        .arg(args.bin_dir.join("skirmish-bots"))
        .args(["--url", &base_url(args)])
        .args(["--admin-key", LADDER_KEY]);
    if let Some(t) = tls {
        bots.arg("--ca").arg(&t.ca);
    }
    let status = bots
        .args([
            "--bots",
            &clients.to_string(),
            "--match-size",
            &series.match_size.to_string(),
            "--quiet",
        ])
        .args([
            "--duration",
            &humantime::format_duration(args.duration).to_string(),
        ])
        .args([
            "--ramp",
            &humantime::format_duration(ramp).to_string(),
            "--warmup",
            "3s",
        ])
        .args(["--threads", &args.bot_threads.to_string()])
        .args(["--transport", transport])
        .args(["--verify-every", &args.verify_every.to_string()])
        .args(["--server-metrics", &format!("{}/api/stats", base_url(args))])
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::null())
        .status()
        .context("running skirmish-bots")?;
    if !status.success() {
        bail!("skirmish-bots failed at {clients} clients");
    }
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json)?)?;
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    let s = &r["server"];
    let sf = |k: &str| s[k].as_f64().unwrap_or(f64::NAN);
    let rss = sf("rss_mib");
    let added = clients.saturating_sub(base.0).max(1) as f64;
    let step = Step {
        transport: transport.to_string(),
        match_size: series.match_size,
        clients,
        connected: r["bots_connected"].as_u64().unwrap_or(0),
        server_cpu_pct: sf("cpu_pct"),
        cpu_us_per_client_per_s: sf("cpu_us_per_client_per_s"),
        rss_mib: rss,
        rss_kib_per_added_client: (rss - base.1) * 1024.0 / added,
        bytes_per_client_per_s: f("payload_bytes_per_bot_per_s"),
        wire_bytes_per_client_per_s: f("wire_bytes_per_bot_per_s"),
        upload_wire_bytes_per_client_per_s: f("upload_bytes_per_bot_per_s"),
        latency_p50_ms: r["latency"]["p50_ms"].as_f64().unwrap_or(f64::NAN),
        latency_p99_ms: r["latency"]["p99_ms"].as_f64().unwrap_or(f64::NAN),
        delivery: f("delivery"),
        tick_overruns: s["tick_overruns"].as_u64().unwrap_or(0),
        ticks_skipped: s["ticks_skipped"].as_u64().unwrap_or(0),
        desyncs: r["desyncs"].as_u64().unwrap_or(0) + r["checksum_desyncs"].as_u64().unwrap_or(0),
        bots_cpu_pct: f("bots_cpu_pct"),
        view_radius: series.view_radius,
        snapshot_budget: args
            .snapshot_budget
            .filter(|_| series.view_radius.is_some()),
        longest_wait_ticks: s["view_longest_wait_ticks"].as_u64().unwrap_or(0),
        recording: series.recording,
        recording_cpu_pct: if series.recording {
            recording_share(args, tls)
        } else {
            None
        },
    };
    drop(server);
    if series.recording {
        let _ = std::fs::remove_dir_all(replay_dir(args));
    }
    *prev_rss = Some((clients, rss));
    Ok(step)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out_dir)?;
    let tls = if args.tls {
        Some(make_tls(&args.out_dir.join("tls"))?)
    } else {
        None
    };
    let mut series = Vec::new();
    for &match_size in &args.match_size {
        for view in &args.views {
            let view_radius = match view.as_str() {
                "none" => None,
                r => Some(
                    r.parse::<u32>()
                        .with_context(|| format!("--views: {r} is not `none` or a radius"))?,
                ),
            };
            for rec in &args.recording {
                let recording = match rec.as_str() {
                    "off" => false,
                    "on" => true,
                    r => anyhow::bail!("--recording: {r} is not `off` or `on`"),
                };
                for transport in &args.transport {
                    series.push(Series {
                        transport: transport.clone(),
                        match_size,
                        view_radius,
                        recording,
                    });
                }
            }
        }
    }
    let mut steps = Vec::new();
    let mut prev_rss: Vec<Option<(usize, f64)>> = vec![None; series.len()];
    let mut climbing: Vec<bool> = vec![true; series.len()];
    for &clients in &args.steps {
        for (si, line) in series.iter().enumerate() {
            if !climbing[si] {
                continue;
            }
            let name = line.name();
            eprintln!("ladder: {name} {clients} clients ...");
            let step = run_step(&args, tls.as_ref(), line, clients, &mut prev_rss[si])?;
            eprintln!(
                "ladder: {name} {clients}: server {:.1} % CPU, {:.0} us/client/s, {:.0} B/client/s down, delivery {:.1} %, p50/p99 {:.1}/{:.1} ms, bots {:.0} % CPU",
                step.server_cpu_pct,
                step.cpu_us_per_client_per_s,
                step.wire_bytes_per_client_per_s,
                step.delivery * 100.0,
                step.latency_p50_ms,
                step.latency_p99_ms,
                step.bots_cpu_pct
            );
            let kept_up = step.kept_up();
            steps.push(step);
            if !kept_up && !args.all {
                eprintln!("ladder: {name}: the server fell behind at {clients} clients; stopping");
                climbing[si] = false;
            }
        }
        if !climbing.iter().any(|c| *c) {
            break;
        }
    }
    let md = table(&steps);
    std::fs::write(args.out_dir.join("ladder.md"), &md)?;
    let rows: String = steps
        .iter()
        .map(|s| serde_json::to_string(s).map(|l| l + "\n"))
        .collect::<Result<_, _>>()?;
    std::fs::write(args.out_dir.join("ladder.jsonl"), rows)?;
    let font: Option<&'static [u8]> = std::fs::read(&args.font)
        .ok()
        .map(|b| &*Box::leak(b.into_boxed_slice()));
    if font.is_none() {
        eprintln!(
            "ladder: no font at {}: the plot has no text",
            args.font.display()
        );
    }
    plot(&steps, &args.out_dir.join("ladder.png"), font)?;
    println!("{md}");
    Ok(())
}
