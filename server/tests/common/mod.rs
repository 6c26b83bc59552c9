//! Helpers for the integration tests: a real server on 127.0.0.1:0, real WebSocket clients
//! (the shared crate's client), and a small HTTP client.

#![allow(dead_code)]

pub mod certs;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use skirmish_server::{Config, Server};
use skirmish_shared::client::{self, Incoming, JoinOptions, Receiver, Sender};
use skirmish_shared::protocol::{ClientMessage, GameEvent, InputFrame, RankEntry, ServerMessage};
use skirmish_shared::quant::{MoveVec, QAngle};
use skirmish_shared::receiver::{Received, SnapshotReceiver};
use skirmish_shared::rules::Params;
use skirmish_shared::tick::Seq;
use skirmish_shared::world::{PlayerId, WorldState};

/// Every wait in a test ends by this deadline.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The operator key every test server gets (unless the test sets its own).
pub const ADMIN_KEY: &str = "test-operator-key";

pub async fn start(mut config: Config) -> Server {
    config
        .admin_key
        .get_or_insert_with(|| ADMIN_KEY.to_string());
    Server::start(config)
        .await
        .expect("server starts on 127.0.0.1:0")
}

pub async fn start_default() -> Server {
    start(Config::ephemeral()).await
}

/// A plain HTTP request; returns status and body.
pub async fn http(server: &Server, method: &str, path: &str) -> (u16, String) {
    http_with(server, method, path, None).await
}

/// A plain HTTP request with an `Authorization` header.
pub async fn http_with(
    server: &Server,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> (u16, String) {
    let (status, body) = http_bytes(server, method, path, authorization).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A plain HTTP request; returns status and the body's bytes.
pub async fn http_bytes(
    server: &Server,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> (u16, Vec<u8>) {
    let tcp = tokio::net::TcpStream::connect(server.local_addr)
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", server.local_addr.to_string());
    if let Some(auth) = authorization {
        req = req.header("authorization", auth);
    }
    let req = req.body(Full::new(Bytes::new())).expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, body.to_vec())
}

pub async fn create_match(server: &Server) -> u32 {
    let auth = format!("Bearer {ADMIN_KEY}");
    let (status, body) = http_with(server, "POST", "/api/matches", Some(&auth)).await;
    assert_eq!(status, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v["id"].as_u64().expect("id") as u32
}

/// A joined player: the connection halves, its id, and its decoded view of the world.
pub struct Player {
    pub rx: Receiver,
    pub tx: Sender,
    pub id: PlayerId,
    pub match_id: u32,
    pub params: Params,
    pub worlds: SnapshotReceiver,
    pub next_seq: u32,
    pub bytes_received: usize,
    pub snapshots: usize,
    /// Game events received, in arrival order.
    pub events: Vec<GameEvent>,
    /// Other messages received while waiting for snapshots (chat refusals, ...).
    pub other: Vec<ServerMessage>,
}

pub fn options(server: &Server, name: &str, match_id: Option<u32>) -> JoinOptions {
    let mut o = JoinOptions::new(server.base_url(), name);
    o.match_id = match_id;
    o
}

/// Joins and waits for the Welcome.
pub async fn join(server: &Server, name: &str, match_id: Option<u32>) -> Player {
    join_with(options(server, name, match_id)).await
}

pub async fn join_with(opts: JoinOptions) -> Player {
    let (mut rx, tx) = client::connect(&opts).await.expect("join accepted").split();
    let (msg, n) = tokio::time::timeout(DEADLINE, rx.recv_message())
        .await
        .expect("welcome in time")
        .expect("welcome");
    let ServerMessage::Welcome {
        player_id,
        match_id,
        tick_hz,
        snapshot,
    } = msg
    else {
        panic!("expected Welcome, got {msg:?}");
    };
    let params = Params::new(tick_hz);
    let mut worlds = SnapshotReceiver::new(params);
    assert!(matches!(
        worlds.receive(&snapshot),
        Received::Applied { verified: true, .. }
    ));
    Player {
        rx,
        tx,
        id: player_id.expect("a player, not a spectator"),
        events: Vec::new(),
        other: Vec::new(),
        match_id,
        params,
        worlds,
        next_seq: 1,
        bytes_received: n,
        snapshots: 1,
    }
}

impl Player {
    /// Sends an input that steers straight at the orb nearest to this player.
    pub async fn steer_to_nearest_orb(&mut self) {
        let w = self.world();
        let me = w.player(self.id).expect("self in the world");
        let target = w
            .orbs
            .iter()
            .min_by_key(|o| o.dist_sq(me.pos))
            .copied()
            .expect("orbs");
        let (dx, dy) = ((target.x - me.pos.x) as f32, (target.y - me.pos.y) as f32);
        let len = dx.hypot(dy).max(1.0);
        self.send_input(
            MoveVec::from_f32(dx / len, dy / len),
            QAngle::from_radians(dy.atan2(dx)),
        )
        .await;
    }

    /// Reads until the next snapshot is applied; returns the world.
    pub async fn next_world(&mut self) -> &WorldState {
        loop {
            let (msg, n) = tokio::time::timeout(DEADLINE, self.rx.recv_message())
                .await
                .expect("snapshot in time")
                .expect("connection stays open");
            self.bytes_received += n;
            if let ServerMessage::Snapshot(s) = msg {
                self.snapshots += 1;
                self.events.extend(s.events.iter().cloned());
                match self.worlds.receive(&s) {
                    Received::Applied { .. } => break,
                    other => panic!("snapshot not applied: {other:?}"),
                }
            } else {
                self.other.push(msg);
            }
        }
        self.worlds.latest().expect("a world")
    }

    pub fn world(&self) -> &WorldState {
        self.worlds.latest().expect("a world")
    }

    /// Sends `n` inputs, one per snapshot, and reads until the server acknowledges the last
    /// one (within `DEADLINE`); false if it never does.
    pub async fn steer_until_acked(&mut self, n: u32) -> bool {
        for _ in 0..n {
            self.steer_to_nearest_orb().await;
            self.next_world().await;
        }
        let last = Seq(self.next_seq - 1);
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while tokio::time::Instant::now() < deadline {
            let id = self.id;
            let acked = self
                .next_world()
                .await
                .player(id)
                .is_some_and(|p| !last.is_after(p.last_seq));
            if acked {
                return true;
            }
        }
        false
    }

    /// Sends one input frame with the next sequence number.
    pub async fn send_input(&mut self, mv: MoveVec, aim: QAngle) {
        let frame = InputFrame {
            seq: Seq(self.next_seq),
            mv,
            aim,
            buttons: 0,
            view_tick: Default::default(),
        };
        self.next_seq += 1;
        self.tx
            .send(&ClientMessage::Input {
                frames: vec![frame],
            })
            .await
            .expect("send input");
    }

    /// Reads until the server closes; returns code and reason.
    pub async fn expect_close(&mut self) -> (u16, String) {
        let r = tokio::time::timeout(DEADLINE, async {
            loop {
                match self.rx.recv().await {
                    Ok(Incoming::Close { code, reason }) => return (code, reason),
                    Ok(Incoming::Message(..)) => {}
                    Err(e) => panic!("connection ended without a close frame: {e}"),
                }
            }
        })
        .await;
        r.expect("close in time")
    }
}

impl Player {
    /// Reads (collecting events) until the match ends: returns the ranking and close code.
    pub async fn play_to_the_end(&mut self, deadline: Duration) -> (Vec<RankEntry>, u16) {
        tokio::time::timeout(deadline, async {
            let mut ranking = None;
            loop {
                match self.rx.recv().await.expect("open until the close") {
                    Incoming::Message(ServerMessage::Snapshot(s), _) => {
                        self.events.extend(s.events.iter().cloned());
                        let _ = self.worlds.receive(&s);
                    }
                    Incoming::Message(ServerMessage::MatchEnded { ranking: r }, _) => {
                        ranking = Some(r)
                    }
                    Incoming::Message(..) => {}
                    Incoming::Close { code, .. } => {
                        let _ = self.tx.close(code, "").await;
                        return (ranking.expect("MatchEnded before the close"), code);
                    }
                }
            }
        })
        .await
        .expect("match ended in time")
    }
}

/// Matchmakes and joins with the token.
pub async fn matchmake_and_join(
    server: &Server,
    name: &str,
    match_id: Option<u32>,
) -> (Player, skirmish_shared::api::MatchmakeResponse) {
    let mm = client::matchmake(&server.base_url(), name, match_id)
        .await
        .expect("matchmake");
    let p = join_with(JoinOptions::with_token(server.base_url(), &mm)).await;
    (p, mm)
}
