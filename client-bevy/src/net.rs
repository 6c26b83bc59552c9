//! The connection, on a background thread with its own tokio runtime: matchmake (or join
//! openly), connect, hand every server message to the game, send what the game asks, and
//! reconnect with backoff when the connection drops or is refused. It plays over UDP when it
//! can (`--transport auto`, the default, falls back to WebSocket when no datagram gets
//! through). An optional simulated link (`--sim-latency-ms`, `--sim-jitter-ms`, `--sim-loss`)
//! works per packet on UDP (delay, jitter that reorders, loss, in both directions); over
//! WebSocket it delays both directions and drops snapshots, so a developer can feel latency
//! locally either way.

use std::sync::mpsc;
use std::time::Duration;

use skirmish_shared::api::MatchmakeResponse;
use skirmish_shared::client::{self, ClientError, Incoming, JoinOptions, Transport};
use skirmish_shared::link_sim::LinkConfig;
use skirmish_shared::protocol::{ClientMessage, ServerMessage};
use skirmish_shared::rng::Rng;
use tokio::time::Instant;

/// Where to play.
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub base_url: String,
    pub name: String,
    pub match_id: Option<u32>,
    /// Join without matchmaking (servers started with `--open`).
    pub open: bool,
    /// Watch `match_id` instead of playing (WebSocket, with a spectator token).
    pub spectate: bool,
    /// What to play over (`Auto`: UDP, else WebSocket).
    pub transport: Transport,
    /// The simulated link: per packet over UDP (inside the transport); over WebSocket, in
    /// order per message, losing snapshots only (TCP loses nothing, it stalls).
    pub sim: LinkConfig,
}

impl Default for NetConfig {
    /// The quick start's server, as "player", over `auto`, on a clean link.
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:7777".into(),
            name: "player".into(),
            match_id: None,
            open: false,
            spectate: false,
            transport: Transport::Auto,
            sim: LinkConfig::default(),
        }
    }
}

/// What the network tells the game.
#[derive(Debug)]
pub enum NetEvent {
    Connecting {
        attempt: u32,
    },
    /// A message and its size on the wire (payload bytes).
    Message(ServerMessage, usize),
    /// The connection ended or could not be made; the next attempt is in `retry_in`.
    Down {
        error: NetError,
        retry_in: Duration,
    },
    /// A line for the status text (a replay's position and speed, or why it stopped).
    Status(String),
}

/// Why a connection ended or could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("refused ({status}): {reason}")]
    Refused { status: u16, reason: String },
    #[error("cannot reach the server: {0}")]
    Unreachable(#[source] std::io::Error),
    #[error("closed ({code}): {reason}")]
    Closed { code: u16, reason: String },
    #[error("{0}")]
    Client(#[source] ClientError),
    #[error("the connection is gone")]
    Gone,
}

impl From<ClientError> for NetError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Refused { status, reason } => Self::Refused { status, reason },
            ClientError::Connect(e) => Self::Unreachable(e),
            ClientError::Closed { code, reason } => Self::Closed { code, reason },
            other => Self::Client(other),
        }
    }
}

/// The game's side of the connection.
#[derive(Debug)]
pub struct NetHandle {
    pub events: mpsc::Receiver<NetEvent>,
    pub commands: tokio::sync::mpsc::Sender<ClientMessage>,
}

/// Starts the network thread.
#[must_use]
pub fn start(cfg: NetConfig) -> NetHandle {
    let (ev_tx, ev_rx) = mpsc::channel();
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(64);
    std::thread::Builder::new()
        .name("skirmish-net".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            rt.block_on(run(cfg, ev_tx, cmd_rx));
        })
        .expect("spawning the network thread");
    NetHandle {
        events: ev_rx,
        commands: cmd_tx,
    }
}

async fn run(
    cfg: NetConfig,
    events: mpsc::Sender<NetEvent>,
    mut commands: tokio::sync::mpsc::Receiver<ClientMessage>,
) {
    let mut attempt = 0u32;
    let mut token: Option<MatchmakeResponse> = None;
    loop {
        attempt += 1;
        if events.send(NetEvent::Connecting { attempt }).is_err() {
            return; // the game is gone
        }
        let error = match session(&cfg, &mut token, &events, &mut commands).await {
            Ok(()) => return,
            Err(e) => e,
        };
        // Refused tokens (expired seat) are not retried: matchmake again.
        if matches!(
            error,
            NetError::Refused {
                status: 400..=499,
                ..
            }
        ) {
            token = None;
        }
        let retry_in = Duration::from_millis((500u64 << attempt.min(5)).min(10_000));
        if events.send(NetEvent::Down { error, retry_in }).is_err() {
            return;
        }
        tokio::time::sleep(retry_in).await;
        while commands.try_recv().is_ok() {} // stale inputs
    }
}

/// One connection, until it ends. `Ok` only when the game went away.
async fn session(
    cfg: &NetConfig,
    token: &mut Option<MatchmakeResponse>,
    events: &mpsc::Sender<NetEvent>,
    commands: &mut tokio::sync::mpsc::Receiver<ClientMessage>,
) -> Result<(), NetError> {
    let conn = match (token.as_mut(), cfg.open || cfg.spectate) {
        (Some(mm), _) => {
            // Back to the same seat: a fresh datagram ticket (the old one is bound to the
            // last socket's address), and the join token for WebSocket.
            if cfg.transport != Transport::Ws
                && let Ok(t) = client::udp_ticket(&cfg.base_url, &mm.token).await
            {
                mm.udp = Some(t);
            }
            client::connect_transport(&cfg.base_url, mm, cfg.transport, cfg.sim).await?
        }
        (None, true) => {
            let mut o = JoinOptions::new(cfg.base_url.clone(), cfg.name.clone());
            o.match_id = cfg.match_id;
            o.spectate = cfg.spectate;
            client::connect(&o).await?
        }
        (None, false) => {
            let mm = client::matchmake(&cfg.base_url, &cfg.name, cfg.match_id).await?;
            let conn =
                client::connect_transport(&cfg.base_url, &mm, cfg.transport, cfg.sim).await?;
            // Keep the token: reconnecting with it resumes the same seat and score.
            *token = Some(mm);
            conn
        }
    };
    let (mut rx, mut tx) = conn.split();
    // Over UDP the link is simulated per packet inside the transport; over WebSocket here.
    let sim = if tx.transport() == Transport::Udp {
        LinkConfig::default()
    } else {
        cfg.sim
    };
    let mut rng = Rng::new(u64::from(std::process::id()));
    let mut jitter = move |now: Instant| now + one_way(&sim, &mut rng);
    let mut drop_rng = Rng::new(u64::from(std::process::id()) ^ 0xD0D0);
    // Messages in flight on the simulated link, in order.
    let (down_tx, mut down_rx) =
        tokio::sync::mpsc::unbounded_channel::<(Instant, ServerMessage, usize)>();
    let (up_tx, mut up_rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, ClientMessage)>();
    // The tick period, from the welcome: inputs go out at most one per period (below).
    let period_ns = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let welcome_period = period_ns.clone();
    let reader = async move {
        let mut last = Instant::now();
        loop {
            match rx.recv().await {
                Ok(Incoming::Message(msg, n)) => {
                    if let ServerMessage::Welcome { tick_hz, .. } = &msg {
                        welcome_period.store(
                            1_000_000_000 / u64::from((*tick_hz).max(1)),
                            std::sync::atomic::Ordering::Relaxed,
                        );
                    }
                    let lost = matches!(msg, ServerMessage::Snapshot(_))
                        && sim.loss > 0.0
                        && ((drop_rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < sim.loss;
                    if lost {
                        continue;
                    }
                    last = jitter(Instant::now()).max(last);
                    if down_tx.send((last, msg, n)).is_err() {
                        return NetError::Gone;
                    }
                }
                Ok(Incoming::Close { code, reason }) => {
                    return NetError::Closed { code, reason };
                }
                Err(e) => return NetError::from(e),
            }
        }
    };
    tokio::pin!(reader);
    // The simulated link's two directions run on their own, so a delayed snapshot never holds
    // up an input (and the other way round).
    let deliver_events = events.clone();
    let deliver = tokio::spawn(async move {
        while let Some((at, msg, n)) = down_rx.recv().await {
            tokio::time::sleep_until(at).await;
            if deliver_events.send(NetEvent::Message(msg, n)).is_err() {
                break;
            }
        }
    });
    let writer = tokio::spawn(async move {
        while let Some((at, msg)) = up_rx.recv().await {
            tokio::time::sleep_until(at).await;
            if let Err(e) = tx.send(&msg).await {
                return Err(NetError::from(e));
            }
        }
        let _ = tx.close(1000, "bye").await;
        Ok(())
    });
    let mut up_last = Instant::now();
    let mut rng_up = Rng::new(7);
    let result = loop {
        tokio::select! {
            why = &mut reader => break Err(why),
            cmd = commands.recv() => match cmd {
                None => break Ok(()),
                Some(msg) => {
                    let due = Instant::now() + one_way(&sim, &mut rng_up);
                    up_last = if matches!(msg, ClientMessage::Input { .. }) {
                        let period = Duration::from_nanos(
                            period_ns.load(std::sync::atomic::Ordering::Relaxed),
                        );
                        paced(due, up_last, period)
                    } else {
                        due.max(up_last)
                    };
                    if up_tx.send((up_last, msg)).is_err() {
                        break Err(NetError::Gone);
                    }
                }
            },
        }
    };
    drop(up_tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), deliver).await;
    result
}

/// When to send an input due at `due`, the previous message having gone at `last`: at least
/// a tick `period` after it, at most 3 periods late. The game makes its inputs on
/// `FixedUpdate`, which at a low frame rate runs in bursts (two or three ticks' inputs per
/// frame at 14 fps); sent as they come, they reach the server in bursts, its queue runs dry
/// between them and it repeats an input, which the prediction then corrects. Spaced a tick
/// apart they arrive as steadily as a high frame rate would send them.
fn paced(due: Instant, last: Instant, period: Duration) -> Instant {
    (last + period).max(due).min(due + 3 * period).max(last)
}

/// One message's delay on the simulated WebSocket link: latency plus uniform jitter.
fn one_way(sim: &LinkConfig, rng: &mut Rng) -> Duration {
    let j = sim.jitter.as_millis() as i32;
    let extra = if j > 0 { rng.range_i32(0, j) as u64 } else { 0 };
    sim.latency + Duration::from_millis(extra)
}
