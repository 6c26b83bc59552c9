//! The datagram transport over real UDP sockets on loopback: the connect token from
//! matchmaking completes the handshake and the session plays (welcome, snapshots against
//! acknowledgements, inputs, chat, the final ranking); expired, forged or replayed tokens get
//! no answer; tampered and replayed packets are dropped and counted; a timed-out player
//! comes back to its seat; loss, reordering and duplication keep the state exact; `auto`
//! falls back to WebSocket.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use std::collections::VecDeque;

use common::*;
use skirmish_server::Config;
use skirmish_shared::api::UdpTicket;
use skirmish_shared::client::{self, ClientError, Incoming, Transport};
use skirmish_shared::client_udp::{self, UdpPlay};
use skirmish_shared::datagram::{ClientHandshake, ConnectToken};
use skirmish_shared::link_sim::LinkConfig;
use skirmish_shared::protocol::{ClientMessage, EventKind, GameEvent, InputFrame, ServerMessage};
use skirmish_shared::quant::MoveVec;
use skirmish_shared::receiver::{Received, SnapshotReceiver};
use skirmish_shared::rules::Params;
use skirmish_shared::tick::Seq;
use skirmish_shared::world::PlayerId;

/// Waits for one datagram, at most `wait`.
fn recv(socket: &UdpSocket, wait: Duration) -> Option<Vec<u8>> {
    socket.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 1500];
    socket.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

fn client_socket(addr: &str) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.connect(addr).expect("connect");
    s
}

async fn ticket(server: &skirmish_server::Server, name: &str) -> (String, ConnectToken) {
    let mm = client::matchmake(&server.base_url(), name, None)
        .await
        .expect("matchmake");
    let udp = mm.udp.expect("a datagram ticket");
    let token = ConnectToken::from_text(&udp.connect_token).expect("token");
    (udp.addr, token)
}

/// A raw session over a blocking socket: the handshake, then `UdpPlay` until the welcome.
/// Returns the socket, the session and what arrived first.
fn raw_session(addr: &str, token: ConnectToken) -> (UdpSocket, UdpPlay, VecDeque<Incoming>) {
    let socket = client_socket(addr);
    let mut hs = ClientHandshake::new(token);
    let request = hs.request();
    socket.send(&request).expect("send");
    let challenge = recv(&socket, DEADLINE).expect("a challenge");
    assert!(challenge.len() < request.len(), "no amplification");
    let response = hs.on_challenge(&challenge).expect("our challenge");
    socket.send(&response).expect("send");
    let (up, down) = hs.into_session();
    let mut play = UdpPlay::new(up, down, response);
    let mut got = VecDeque::new();
    for _ in 0..50 {
        for p in play.packets() {
            socket.send(&p).expect("send");
        }
        while let Some(p) = recv(&socket, Duration::from_millis(100)) {
            play.on_packet(&p, &mut got).expect("sealed for us");
            if !got.is_empty() {
                return (socket, play, got);
            }
        }
    }
    panic!("no welcome over udp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_matchmade_token_opens_a_session_that_plays() {
    let server = start_default().await;
    let (addr, token) = ticket(&server, "udp").await;
    let got = tokio::task::spawn_blocking(move || raw_session(&addr, token).2)
        .await
        .expect("udp client");
    let Some(Incoming::Message(
        ServerMessage::Welcome {
            player_id,
            snapshot,
            tick_hz,
            ..
        },
        _,
    )) = got.front()
    else {
        panic!("expected a welcome, got {got:?}");
    };
    assert!(player_id.is_some());
    assert_eq!(snapshot.baseline(), None, "the first snapshot is full");
    let mut worlds = SnapshotReceiver::new(Params::new(*tick_hz));
    assert!(matches!(
        worlds.receive(snapshot),
        Received::Applied { verified: true, .. }
    ));
    assert_eq!(server.stats.udp_sessions.get(), 1);
    assert_eq!(server.stats.udp_players.get(), 1);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_replayed_packets_are_dropped_and_counted() {
    let server = start_default().await;
    let (addr, token) = ticket(&server, "tamper").await;
    tokio::task::spawn_blocking(move || {
        let (socket, mut play, _) = raw_session(&addr, token);
        let packet = play.packets().pop().expect("an up packet");
        socket.send(&packet).expect("send");
        socket.send(&packet).expect("send the same packet again");
        let mut tampered = play.packets().pop().expect("an up packet");
        let last = tampered.len() - 1;
        tampered[last] ^= 0x80;
        socket.send(&tampered).expect("send");
    })
    .await
    .expect("udp client");
    let stats = server.stats.clone();
    eventually("a replay and a forgery counted", || {
        stats.udp_dropped_replayed.get() >= 1 && stats.udp_dropped_unauthenticated.get() >= 1
    })
    .await;
    assert_eq!(
        server.stats.udp_players.get(),
        1,
        "the session itself lives on"
    );
    server.shutdown().await.expect("shutdown");
}

/// Matchmakes as `name` and joins over `transport` through `link`.
async fn join(
    server: &skirmish_server::Server,
    name: &str,
    transport: Transport,
    link: LinkConfig,
) -> (skirmish_shared::api::MatchmakeResponse, client::Connection) {
    let mm = client::matchmake(&server.base_url(), name, None)
        .await
        .expect("matchmake");
    let conn = client::connect_transport(&server.base_url(), &mm, transport, link)
        .await
        .expect("join");
    (mm, conn)
}

/// Joins with a matchmaking answer over `transport`, on a perfect link.
async fn over(
    server: &skirmish_server::Server,
    mm: &skirmish_shared::api::MatchmakeResponse,
    transport: Transport,
) -> Result<client::Connection, ClientError> {
    client::connect_transport(&server.base_url(), mm, transport, LinkConfig::default()).await
}

/// Waits (at most `DEADLINE`) until `cond` holds.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let until = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Plays `ticks` ticks over `conn` (one input per tick, steering right), decoding every
/// snapshot; returns the receiver, our player and the newest input the server acknowledged.
async fn play(
    conn: client::Connection,
    ticks: u32,
    chat: Option<&str>,
) -> (
    SnapshotReceiver,
    PlayerId,
    Seq,
    Vec<GameEvent>,
    Option<ServerMessage>,
) {
    let (mut rx, mut tx) = conn.split();
    let (msg, _) = rx.recv_message().await.expect("welcome");
    let ServerMessage::Welcome {
        player_id: Some(me),
        tick_hz,
        snapshot,
        ..
    } = msg
    else {
        panic!("expected a welcome, got {msg:?}");
    };
    let params = Params::new(tick_hz);
    let mut worlds = SnapshotReceiver::new(params);
    worlds.receive(&snapshot);
    let mut events = snapshot.events.clone();
    let mut acked = Seq(0);
    let mut ended = None;
    if let Some(text) = chat {
        tx.send(&ClientMessage::Chat { text: text.into() })
            .await
            .expect("chat");
    }
    let period = Duration::from_secs(1) / tick_hz;
    let mut ticker = tokio::time::interval(period);
    let mut seq = Seq(0);
    while seq.0 < ticks {
        tokio::select! {
            _ = ticker.tick() => {
                seq = seq.next();
                let frame = InputFrame { seq, mv: MoveVec::from_f32(1.0, 0.0), ..InputFrame::idle(0) };
                tx.send(&ClientMessage::Input { frames: vec![frame] }).await.expect("input");
            }
            got = rx.recv() => match got.expect("connection") {
                Incoming::Message(ServerMessage::Snapshot(s), _) => {
                    events.extend(s.events.iter().cloned());
                    if let Received::NeedFull { request_full: true, .. } = worlds.receive(&s) {
                        tx.send(&ClientMessage::RequestFull).await.expect("resync");
                    }
                    if let Some(p) = worlds.latest().and_then(|w| w.player(me)) {
                        acked = p.last_seq;
                    }
                }
                Incoming::Message(m @ ServerMessage::MatchEnded { .. }, _) => ended = Some(m),
                Incoming::Message(_, _) => {}
                Incoming::Close { .. } => break,
            },
        }
    }
    tx.close(1000, "done").await.expect("close");
    (worlds, me, acked, events, ended)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_client_plays_over_udp_and_leaves() {
    let server = start_default().await;
    let (_, conn) = join(&server, "shared", Transport::Udp, LinkConfig::default()).await;
    assert_eq!(conn.tx.transport(), Transport::Udp);
    let (worlds, me, acked, events, _) = play(conn, 60, Some("hello over udp")).await;
    assert_eq!(worlds.desyncs, 0);
    assert!(worlds.checksums_ok >= 1, "checksums verified");
    assert!(acked.0 >= 30, "the server took our inputs: acked {acked:?}");
    assert!(
        worlds.latest().and_then(|w| w.player(me)).is_some(),
        "our player is in the world"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Chat { text, .. } if text == "hello over udp")),
        "our chat line came back as an event: {events:?}"
    );
    let stats = server.stats.clone();
    eventually("the disconnect frees the player", || {
        stats.udp_players.get() == 0
    })
    .await;
    let (_, body) = http(&server, "GET", "/api/matches").await;
    assert!(body.contains("\"players\":0"), "seat released: {body}");
    assert!(server.stats.udp_packets_out.get() >= 30);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_reordering_and_duplication_keep_the_state_exact() {
    let server = start_default().await;
    let link = LinkConfig {
        latency: Duration::from_millis(50),
        jitter: Duration::from_millis(40),
        loss: 0.05,
        duplicate: 0.05,
    };
    let (_, conn) = join(&server, "lossy", Transport::Udp, link).await;
    let (worlds, _, acked, _, _) = play(conn, 150, None).await;
    assert_eq!(worlds.desyncs, 0, "every checksum matched");
    assert_eq!(worlds.decode_errors, 0);
    // A checksum rides one snapshot a second (and every full one); 5 % of them are lost.
    assert!(
        worlds.checksums_ok >= 3,
        "checksums verified: {}",
        worlds.checksums_ok
    );
    assert!(
        acked.0 >= 120,
        "inputs got through the loss: acked {acked:?}"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_player_comes_back_to_its_seat_over_udp() {
    let mut config = Config::ephemeral();
    config.udp_timeout = Duration::from_millis(300);
    config.reconnect_grace = Duration::from_secs(20);
    let server = start(config).await;
    let (mm, conn) = join(&server, "comeback", Transport::Udp, LinkConfig::default()).await;
    let (mut rx, tx) = conn.split();
    let Ok((
        ServerMessage::Welcome {
            player_id: Some(first),
            ..
        },
        _,
    )) = rx.recv_message().await
    else {
        panic!("no welcome");
    };
    drop((rx, tx)); // vanish without a disconnect
    let stats = server.stats.clone();
    eventually("the silent session timed out", || {
        stats.udp_players.get() == 0
    })
    .await;
    let (_, body) = http(&server, "GET", "/api/matches").await;
    assert!(body.contains("\"players\":1"), "the seat waits: {body}");

    // A connect token works from one address: the join token buys a fresh one.
    let (status, body) = http_with(
        &server,
        "POST",
        "/api/udp-ticket",
        Some(&format!("Bearer {}", mm.token)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ticket: UdpTicket = serde_json::from_str(&body).expect("a ticket");
    let (mut rx, _tx) = client_udp::join(&ticket, DEADLINE, LinkConfig::default())
        .await
        .expect("back over udp");
    let Ok(Incoming::Message(
        ServerMessage::Welcome {
            player_id: Some(again),
            ..
        },
        _,
    )) = rx.recv().await
    else {
        panic!("no welcome");
    };
    assert_eq!(again, first, "the same player, score and all");
    let (status, _) = http_with(&server, "POST", "/api/udp-ticket", Some("Bearer nope")).await;
    assert_eq!(status, 401);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_websocket_when_no_datagram_gets_through() {
    // A server without the datagram endpoint: no ticket, straight to WebSocket.
    let mut config = Config::ephemeral();
    config.no_udp = true;
    let server = start(config).await;
    let mm = client::matchmake(&server.base_url(), "tcp-only", None)
        .await
        .expect("matchmake");
    assert!(mm.udp.is_none());
    let conn = over(&server, &mm, Transport::Auto)
        .await
        .expect("websocket join");
    assert_eq!(conn.tx.transport(), Transport::Ws);
    let err = over(&server, &mm, Transport::Udp).await;
    assert!(
        matches!(err, Err(ClientError::Udp(_))),
        "udp alone fails: {err:?}"
    );
    drop(conn);
    server.shutdown().await.expect("shutdown");

    // UDP blocked: the ticket's address swallows every datagram.
    let server = start_default().await;
    let black_hole = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut mm = client::matchmake(&server.base_url(), "blocked", None)
        .await
        .expect("matchmake");
    if let Some(t) = mm.udp.as_mut() {
        t.addr = black_hole.local_addr().expect("addr").to_string();
    }
    let started = tokio::time::Instant::now();
    let conn = over(&server, &mm, Transport::Auto)
        .await
        .expect("fell back");
    assert_eq!(conn.tx.transport(), Transport::Ws);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "within a second or two: {:?}",
        started.elapsed()
    );
    let (mut rx, _tx) = conn.split();
    assert!(matches!(
        rx.recv_message().await,
        Ok((ServerMessage::Welcome { .. }, _))
    ));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_ranking_arrives_over_udp() {
    let mut config = Config::ephemeral();
    config.match_duration = Duration::from_secs(2);
    let server = start(config).await;
    let (_, conn) = join(&server, "finisher", Transport::Udp, LinkConfig::default()).await;
    let (_, me, _, _, ended) = play(conn, 30 * 5, None).await;
    let Some(ServerMessage::MatchEnded { ranking }) = ended else {
        panic!("no final ranking");
    };
    assert_eq!(ranking.first().map(|r| r.player_id), Some(me));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_source_cannot_complete_the_handshake() {
    let server = start_default().await;
    let (addr, token) = ticket(&server, "victim").await;
    let stats = server.stats.clone();
    tokio::task::spawn_blocking(move || {
        // The attacker has the token (sniffed) and sends the request as the victim would;
        // the challenge goes to the request's source, which the attacker does not read.
        let victim = client_socket(&addr);
        let attacker = client_socket(&addr);
        let mut hs = ClientHandshake::new(token.clone());
        victim.send(&hs.request()).expect("send");
        let challenge = recv(&victim, DEADLINE).expect("the source gets the challenge");
        // From its own address, with the keys but without the cookie, the attacker's
        // response (here: a response to a challenge it made up) seats nobody and gets no
        // answer.
        let mut guess = ClientHandshake::new(token);
        let mut fake = challenge.clone();
        let last = fake.len() - 1;
        fake[last] ^= 1;
        assert!(
            guess.on_challenge(&fake).is_err(),
            "a changed challenge does not open"
        );
        attacker.send(&hs.request()).expect("send");
        assert_eq!(
            recv(&attacker, Duration::from_millis(300)),
            None,
            "the token is bound to the first source: no challenge for a second one"
        );
        let response = hs.on_challenge(&challenge).expect("our challenge");
        attacker.send(&response).expect("send");
        assert_eq!(recv(&attacker, Duration::from_millis(300)), None);
    })
    .await
    .expect("udp clients");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stats.udp_sessions.get(), 0, "nobody was seated");
    assert_eq!(stats.udp_players.get(), 0);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_connection_requests_is_cut_at_its_source() {
    let mut config = Config::ephemeral();
    config.rate_limit_loopback = true; // the limit spares loopback by default
    let server = start(config).await;
    let (addr, _) = ticket(&server, "bystander").await;
    let sent = tokio::task::spawn_blocking(move || {
        // Request-sized garbage: each one would cost a token decryption if it were looked at.
        let flooder = client_socket(&addr);
        let garbage = vec![0x40u8; skirmish_shared::datagram::REQUEST_BYTES];
        let mut sent = 0u64;
        for _ in 0..5_000 {
            if flooder.send(&garbage).is_ok() {
                sent += 1;
            }
        }
        sent
    })
    .await
    .expect("flooder");
    let stats = server.stats.clone();
    // Until the endpoint has read all that the kernel kept of it (a full receive buffer
    // drops the rest before we see it).
    let mut seen = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = stats.udp_packets_in.get();
        if now == seen {
            break;
        }
        seen = now;
    }
    assert!(seen > 1_000, "the flood arrived: {seen} of {sent}");
    // Looked at: the burst, and what refilled while the flood lasted.
    let looked_at = u64::from(skirmish_server::udp::HANDSHAKE_BURST) + 16;
    assert!(
        stats.udp_handshakes_limited.get() >= seen - looked_at,
        "{} of {seen} cut unread",
        stats.udp_handshakes_limited.get()
    );
    // A player from the same address gets in once the bucket refills (its request is resent).
    let (_, conn) = join(&server, "after", Transport::Udp, LinkConfig::default()).await;
    assert_eq!(conn.tx.transport(), Transport::Udp);
    assert_eq!(stats.ticks_skipped.get(), 0);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_replayed_tokens_get_no_answer() {
    let server = start_default().await;
    let (addr, token) = ticket(&server, "forger").await;
    let (addr2, token2) = ticket(&server, "twice").await;
    tokio::task::spawn_blocking(move || {
        // Forged: one byte of the sealed token changed.
        let socket = client_socket(&addr);
        let mut forged = ClientHandshake::new(token).request();
        forged[200] ^= 1;
        socket.send(&forged).expect("send");
        assert_eq!(
            recv(&socket, Duration::from_millis(300)),
            None,
            "forged: no reply"
        );

        // Replayed: the same request from a second address after the first.
        let first = client_socket(&addr2);
        let request = ClientHandshake::new(token2).request();
        first.send(&request).expect("send");
        assert!(
            recv(&first, DEADLINE).is_some(),
            "the first sender is challenged"
        );
        let second = client_socket(&addr2);
        second.send(&request).expect("send");
        assert_eq!(
            recv(&second, Duration::from_millis(300)),
            None,
            "replay: no reply"
        );
    })
    .await
    .expect("udp client");
    assert!(server.stats.udp_dropped.get() >= 2);
    assert_eq!(server.stats.udp_sessions.get(), 0);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_gets_no_answer() {
    let mut config = Config::ephemeral();
    config.token_ttl = Duration::from_secs(1);
    let server = start(config).await;
    let (addr, token) = ticket(&server, "late").await;
    // Expiry is in whole seconds: two seconds later it has certainly passed.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let answered = tokio::task::spawn_blocking(move || {
        let socket = client_socket(&addr);
        socket
            .send(&ClientHandshake::new(token).request())
            .expect("send");
        recv(&socket, Duration::from_millis(300))
    })
    .await
    .expect("udp client");
    assert_eq!(answered, None, "expired: no reply");
    assert!(server.stats.udp_dropped.get() >= 1);
    server.shutdown().await.expect("shutdown");
}

/// The datagram port is the HTTP port unless `--udp-port` says otherwise; a port another
/// socket holds is refused at start, naming it. With the system picking the port (port 0, as
/// every test server does) a taken UDP port is not an error: another port is tried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_udp_port_is_refused_by_name_and_sidestepped_when_ephemeral() {
    let holder = UdpSocket::bind("127.0.0.1:0").expect("a udp socket");
    let taken = holder.local_addr().expect("its address");
    let mut config = Config::ephemeral();
    config.udp_port = Some(taken.port());
    match skirmish_server::Server::start(config).await {
        Err(skirmish_server::StartError::Bind(at, e)) => {
            assert_eq!(at, taken);
            assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("started on a udp port another socket holds"),
    }
    // Many servers on ephemeral ports while client sockets hold 200 ephemeral UDP ports:
    // every one starts, its datagram endpoint on its HTTP port. (A pick that collides, and so
    // the retry, comes up in about one run in seven; `.ci/run`'s swarm test once failed to
    // start its server that way, before the retry.)
    let _held: Vec<UdpSocket> = (0..200)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("a udp socket"))
        .collect();
    for _ in 0..20 {
        let server = start(Config::ephemeral()).await;
        let udp = server.state.udp_addr.clone().expect("a datagram endpoint");
        assert_eq!(
            udp.rsplit(':').next(),
            Some(server.local_addr.port().to_string().as_str()),
            "the datagram endpoint {udp} is on the HTTP port"
        );
        server.shutdown().await.expect("shutdown");
    }
}
