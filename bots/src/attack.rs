//! Abuse behaviours: clients that attack the server the way a hostile player would, so an
//! operator can try their own server (`--attack flood-pings --attackers 4`). Each records
//! what the server did to it (its close code and reason, an HTTP refusal, a dropped
//! connection) in the swarm's attack outcomes.
//!
//! They speak raw WebSocket over a plain TCP stream, since they send what a client library
//! never would: thousands of frames per write, unfinished fragmented messages, no reads.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::watch;
use tokio::time::Instant;

use skirmish_shared::client::{self, ClientError};
use skirmish_shared::protocol::{self, ClientMessage, InputFrame, masked_frame};
use skirmish_shared::tick::Seq;

use crate::behavior::Behavior;
use crate::bot::BotConfig;
use crate::stats::SwarmStats;

/// Longest an attack runs if nothing stops it first.
const MAX_ATTACK: Duration = Duration::from_secs(120);
/// Frames per write for the floods.
const FRAMES_PER_WRITE: usize = 512;
/// Pause between reconnect-storm attempts (hostile, but bounded).
const STORM_PAUSE: Duration = Duration::from_millis(5);

/// Runs one attacker until the server ends it, `stop` turns true, or `MAX_ATTACK` passes.
pub async fn run(cfg: BotConfig, stats: Arc<SwarmStats>, mut stop: watch::Receiver<bool>) {
    let attack = async {
        match cfg.behavior {
            Behavior::ReconnectStorm => storm(&cfg, &stats).await,
            kind => {
                let outcome = match connect(&cfg).await {
                    Ok(tcp) => stream(kind, tcp).await,
                    Err(e) => refusal(&e),
                };
                stats.attack_outcome(outcome);
            }
        }
    };
    let started = Instant::now();
    let ended_by_us = tokio::select! {
        () = attack => false,
        _ = stop.wait_for(|s| *s) => true,
        () = tokio::time::sleep(MAX_ATTACK) => true,
    };
    if ended_by_us && cfg.behavior != Behavior::ReconnectStorm {
        stats.attack_outcome(format!(
            "still connected when the attack ended ({:.0} s)",
            started.elapsed().as_secs_f64()
        ));
    }
}

fn refusal(e: &ClientError) -> String {
    match e {
        ClientError::Refused { status, .. } => format!("http {status}"),
        other => format!("error: {other}"),
    }
}

/// Matchmakes and opens the WebSocket by hand; returns the raw stream after the `101`.
async fn connect(cfg: &BotConfig) -> Result<TcpStream, ClientError> {
    let mm = client::matchmake(&cfg.base_url, &cfg.name, cfg.match_id).await?;
    let authority = cfg
        .base_url
        .strip_prefix("http://")
        .unwrap_or(&cfg.base_url)
        .trim_end_matches('/')
        .to_string();
    let addr = tokio::net::lookup_host(&authority)
        .await
        .map_err(ClientError::Connect)?
        .next()
        .ok_or_else(|| ClientError::BadUrl(cfg.base_url.clone()))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(ClientError::Connect)?;
    if cfg.behavior == Behavior::SlowReader {
        // Before connecting, so the window it advertises is small from the start.
        socket
            .set_recv_buffer_size(1024)
            .map_err(ClientError::Connect)?;
    }
    let mut tcp = socket.connect(addr).await.map_err(ClientError::Connect)?;
    let request = format!(
        "GET /ws?v={}&token={} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
        protocol::PROTOCOL_VERSION,
        protocol::percent_encode(&mm.token)
    );
    tcp.write_all(request.as_bytes())
        .await
        .map_err(ClientError::Connect)?;
    // Read the response head byte by byte: nothing of the WebSocket stream is consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = tcp.read_u8().await.map_err(ClientError::Connect)?;
        head.push(b);
        if head.len() > 4096 {
            return Err(ClientError::BadUrl("response head over 4 KiB".into()));
        }
    }
    let status = String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    if status != 101 {
        return Err(ClientError::Refused {
            status,
            reason: String::new(),
        });
    }
    Ok(tcp)
}

/// The bytes one write of a flood sends.
fn flood_batch(kind: Behavior, seq: &mut u32) -> Vec<u8> {
    const MASK: [u8; 4] = [0x1F, 0x2E, 0x3D, 0x4C];
    let mut out = Vec::new();
    for _ in 0..FRAMES_PER_WRITE {
        match kind {
            Behavior::FloodPings => out.extend(masked_frame(0x89, b"", MASK)),
            Behavior::FragmentBomb => out.extend(masked_frame(0x00, b"", MASK)),
            _ => {
                let frames = (0..8)
                    .map(|_| {
                        *seq += 1;
                        InputFrame {
                            seq: Seq(*seq),
                            ..InputFrame::default()
                        }
                    })
                    .collect();
                let msg = protocol::encode(&ClientMessage::Input { frames });
                out.extend(masked_frame(0x82, &msg, MASK));
            }
        }
    }
    out
}

/// Streams the attack while reading what the server sends (except the slow reader, which
/// reads nothing); returns what the server did.
async fn stream(kind: Behavior, tcp: TcpStream) -> String {
    let started = Instant::now();
    if kind == Behavior::SlowReader {
        return slow_reader(tcp, started).await;
    }
    let (read, mut write) = tcp.into_split();
    let closed = tokio::spawn(read_until_close(read));
    let mut seq = 0;
    if kind == Behavior::FragmentBomb {
        // A message that never finishes.
        let _ = write
            .write_all(&masked_frame(0x02, &[0], [1, 2, 3, 4]))
            .await;
    }
    let mut closed = closed;
    let mut result = None;
    loop {
        let batch = flood_batch(kind, &mut seq);
        tokio::select! {
            r = write.write_all(&batch) => if r.is_err() { break },
            r = &mut closed => {
                result = Some(r);
                break;
            }
        }
    }
    let result = match result {
        Some(r) => Ok(r),
        None => tokio::time::timeout(Duration::from_secs(5), closed).await,
    };
    match result {
        Ok(Ok(Some((code, reason)))) => format!("closed {code}: {reason}"),
        _ => format!(
            "dropped without a close frame after {:.1} s",
            started.elapsed().as_secs_f64()
        ),
    }
}

/// Reads server frames (unmasked) until a close frame: its code and reason, or `None` if
/// the stream ended without one.
async fn read_until_close(mut read: OwnedReadHalf) -> Option<(u16, String)> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut head = [0u8; 2];
        read.read_exact(&mut head).await.ok()?;
        let len = match head[1] & 0x7F {
            126 => u64::from(read.read_u16().await.ok()?),
            127 => read.read_u64().await.ok()?,
            n => u64::from(n),
        };
        let mut left = len;
        let mut payload = Vec::new();
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            read.read_exact(&mut buf[..n]).await.ok()?;
            if head[0] & 0x0F == 0x8 {
                payload.extend_from_slice(&buf[..n]);
            }
            left -= n as u64;
        }
        if head[0] & 0x0F == 0x8 {
            let code = match payload.as_slice() {
                [a, b, ..] => u16::from_be_bytes([*a, *b]),
                _ => 1005,
            };
            let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or_default());
            // Group outcomes by what the server said, not by its numbers.
            let reason: String = reason.split(':').next().unwrap_or_default().to_string();
            return Some((code, reason));
        }
    }
}

/// Sends one input per tick-ish and never reads: the server must give up on the socket
/// when it accepts nothing for its write timeout.
async fn slow_reader(tcp: TcpStream, started: Instant) -> String {
    let mut seq = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(33));
    let mut tcp = tcp;
    loop {
        tick.tick().await;
        seq += 1;
        let msg = protocol::encode(&ClientMessage::Input {
            frames: vec![InputFrame {
                seq: Seq(seq),
                ..InputFrame::default()
            }],
        });
        if tcp
            .write_all(&masked_frame(0x82, &msg, [9, 8, 7, 6]))
            .await
            .is_err()
        {
            return format!(
                "dropped (not reading) after {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
}

/// Matchmake, connect, drop, as fast as the server lets it; records each refusal.
async fn storm(cfg: &BotConfig, stats: &SwarmStats) {
    loop {
        match connect(cfg).await {
            Ok(tcp) => {
                drop(tcp);
                stats.attack_outcome("joined and dropped".into());
            }
            Err(e) => stats.attack_outcome(refusal(&e)),
        }
        tokio::time::sleep(STORM_PAUSE).await;
    }
}
