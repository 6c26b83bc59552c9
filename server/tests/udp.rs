//! The datagram endpoint over real UDP sockets on loopback: the connect token from
//! matchmaking completes the handshake and the session answers a sealed ping; an expired,
//! forged or replayed token gets no answer at all.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::*;
use skirmish_server::Config;
use skirmish_shared::client;
use skirmish_shared::datagram::{ClientHandshake, ConnectToken, Kind};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_matchmade_token_opens_a_session_that_answers() {
    let server = start_default().await;
    let (addr, token) = ticket(&server, "udp").await;
    let handle = tokio::task::spawn_blocking(move || {
        let socket = client_socket(&addr);
        let mut hs = ClientHandshake::new(token);
        let request = hs.request();
        socket.send(&request).expect("send");
        let challenge = recv(&socket, DEADLINE).expect("a challenge");
        assert!(challenge.len() < request.len(), "no amplification");
        let response = hs.on_challenge(&challenge).expect("our challenge");
        socket.send(&response).expect("send");
        let (mut up, mut down) = hs.into_session();
        // The session is in place once the response arrived; ping until it answers.
        for _ in 0..20 {
            socket.send(&up.seal(Kind::Payload, b"ping")).expect("send");
            if let Some(p) = recv(&socket, Duration::from_millis(200)) {
                let (kind, _, body) = down.open(&p).expect("sealed for us");
                assert_eq!((kind, body.as_slice()), (Kind::Payload, &b"pong"[..]));
                return;
            }
        }
        panic!("no pong");
    });
    handle.await.expect("udp client");
    assert_eq!(server.stats.udp_sessions.get(), 1);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_client_completes_the_handshake_and_pings() {
    let server = start_default().await;
    let mm = client::matchmake(&server.base_url(), "shared", None)
        .await
        .expect("matchmake");
    let ticket = mm.udp.expect("a datagram ticket");
    let mut session = skirmish_shared::client_udp::connect(&ticket, DEADLINE)
        .await
        .expect("handshake");
    session.ping(DEADLINE).await.expect("pong");
    session.ping(DEADLINE).await.expect("pong again");
    assert_eq!(server.stats.udp_sessions.get(), 1);
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
