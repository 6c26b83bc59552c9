//! The kernel floor under the server's CPU per client: what one loopback TCP write (and one
//! read) per client per tick costs on this machine with no runtime, no tasks, no framing
//! work at all.
//!
//! This process pins itself to CPU 0 and plays a minimal "server": every tick (30 Hz) it
//! writes one pre-framed 60-byte WebSocket binary frame (a typical 16-player delta) to each
//! client socket and, with `--mode read-write`, drains each socket with non-blocking reads.
//! A child process pinned to CPU 1 plays the clients the way the bots do (tokio, one task
//! per connection waiting on its socket, one 46-byte input frame per tick at its own phase).
//! The server's CPU time per client per second over the window is the floor any design with
//! one TCP segment per client per tick pays here.
//!
//! `cargo run --release -p skirmish-benches --bin send_floor -- --clients 256,1024`

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use skirmish_shared::process;

const TICK_HZ: u32 = 30;
/// A 58-byte payload behind a 2-byte server frame header.
const SNAPSHOT_FRAME: usize = 60;
/// A 40-byte payload behind a 6-byte masked client frame header.
const INPUT_FRAME: usize = 46;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// One write per client per tick; nothing read (inputs pile up in the socket buffer).
    Write,
    /// One write and one non-blocking read per client per tick.
    ReadWrite,
}

/// Measure the loopback TCP floor of one write (and read) per client per tick.
#[derive(Debug, Parser)]
struct Args {
    /// Client counts to measure, in order.
    #[arg(long, value_delimiter = ',', default_value = "256,1024")]
    clients: Vec<usize>,
    /// Measurement window per count (after a 2 s warm-up).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    #[arg(long, value_enum, default_value = "read-write")]
    mode: Mode,
    /// Internal: run as the client side, connecting to this port.
    #[arg(long, hide = true)]
    client_port: Option<u16>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(port) = args.client_port {
        return run_clients(port, args.clients[0], args.duration);
    }
    pin_self(0)?;
    println!("| clients | mode | server CPU % of a core | CPU µs/client/s | µs per client-tick |");
    println!("| ---: | --- | ---: | ---: | ---: |");
    for &n in &args.clients {
        let row = measure(n, args.duration, args.mode)?;
        println!(
            "| {n} | {:?} | {:.1} | {:.0} | {:.2} |",
            args.mode,
            row * 100.0,
            row * 1e6 / n as f64,
            row * 1e6 / n as f64 / f64::from(TICK_HZ)
        );
    }
    Ok(())
}

fn pin_self(cpu: u32) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args([
            "-a",
            "-cp",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .context("running taskset (util-linux)")?;
    if !status.success() {
        bail!("taskset failed: {status}");
    }
    Ok(())
}

/// Runs one count; returns the server's CPU seconds per second over the window.
fn measure(n: usize, window: Duration, mode: Mode) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let warmup = Duration::from_secs(2);
    let exe = std::env::current_exe()?;
    let mut child = Command::new("taskset")
        .args(["-c", "1"])
        .arg(exe)
        .args([
            "--client-port",
            &port.to_string(),
            "--clients",
            &n.to_string(),
        ])
        .args([
            "--duration",
            &format!("{}ms", (warmup + window).as_millis() + 1000),
        ])
        .spawn()
        .context("starting the client side")?;
    let mut socks = Vec::with_capacity(n);
    for _ in 0..n {
        let (s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        socks.push(s);
    }
    let mut frame = [0x5Au8; SNAPSHOT_FRAME];
    frame[0] = 0x82;
    frame[1] = (SNAPSHOT_FRAME - 2) as u8;
    let mut buf = [0u8; 4096];
    let period = Duration::from_secs(1) / TICK_HZ;
    let start = Instant::now();
    let mut next = start;
    let mut at_window: Option<(Instant, f64)> = None;
    let mut sent = 0u64;
    let mut short = 0u64;
    loop {
        let now = Instant::now();
        if at_window.is_none() && now >= start + warmup {
            at_window = Some((now, cpu()?));
        }
        if let Some((t0, _)) = at_window
            && now >= t0 + window
        {
            break;
        }
        for s in &mut socks {
            if mode == Mode::ReadWrite {
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            match s.write(&frame) {
                Ok(k) if k == frame.len() => sent += 1,
                Ok(_) => bail!("partial write: the floor measurement needs every frame whole"),
                Err(e) if e.kind() == ErrorKind::WouldBlock => short += 1,
                Err(e) => return Err(e.into()),
            }
        }
        next += period;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let (t0, c0) = at_window.context("no window")?;
    let per_s = (cpu()? - c0) / t0.elapsed().as_secs_f64();
    drop(socks);
    let _ = child.wait();
    if short > 0 {
        eprintln!("send_floor: {n}: {short} writes would block (of {sent})");
    }
    Ok(per_s)
}

fn cpu() -> anyhow::Result<f64> {
    Ok(process::usage().context("reading /proc/self")?.cpu_seconds)
}

/// The client side: `n` connections, each a tokio task reading everything and a timer
/// writing one input frame per tick at its own phase.
fn run_clients(port: u16, n: usize, duration: Duration) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let period = Duration::from_secs(1) / TICK_HZ;
        let end = tokio::time::Instant::now() + duration;
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            stream.set_nodelay(true)?;
            let (mut r, mut w) = stream.into_split();
            tasks.push(tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 4096];
                while let Ok(k) = r.read(&mut buf).await {
                    if k == 0 {
                        break;
                    }
                }
            }));
            let phase = period * (i as u32 % 97) / 97;
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let frame = [0x82u8; INPUT_FRAME];
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if tokio::time::Instant::now() >= end || w.write_all(&frame).await.is_err() {
                        break;
                    }
                }
            });
        }
        for t in tasks {
            let _ = t.await;
        }
        anyhow::Ok(())
    })
}
