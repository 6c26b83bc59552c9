//! What a stranger on the internet can and cannot do: HTTP limits, authorization, rate
//! limits, where `ws_url` comes from, the page's headers, the close handshake's end, and the
//! bursts a real client sends after a stall. A real server on 127.0.0.1:0 each time.

mod common;

use std::time::Duration;

use common::*;
use skirmish_server::Config;
use skirmish_shared::client::{self, Incoming, JoinOptions};
use skirmish_shared::protocol::{
    ClientMessage, InputFrame, PROTOCOL_VERSION, ServerMessage, masked_frame,
};
use skirmish_shared::tick::Seq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends raw bytes, reads until the server closes (or `DEADLINE`); the whole response.
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
}

fn post(path: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_and_connections_over_the_cap_get_503() {
    let mut c = Config::ephemeral();
    c.header_read_timeout = Duration::from_millis(400);
    c.max_http_connections = 4;
    let server = start(c).await;
    // Four slowloris connections: headers that never end.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut tcp = TcpStream::connect(server.local_addr)
            .await
            .expect("connect");
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        slow.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let busy = raw(server.local_addr, &get("/healthz")).await;
    assert_eq!(status(&busy), 503, "{busy}");
    // The server closes each of them once the header timeout passes.
    for mut tcp in slow {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "a slowloris connection was held open");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ok = raw(server.local_addr, &get("/healthz")).await;
    assert_eq!(status(&ok), 200, "{ok}");
    assert!(server.stats.http_refused_busy.get() >= 1);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let mut c = Config::ephemeral();
    c.header_read_timeout = Duration::from_millis(300);
    let server = start(c).await;
    let mut tcp = TcpStream::connect(server.local_addr)
        .await
        .expect("connect");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut all = Vec::new();
    let started = tokio::time::Instant::now();
    let _ = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut all)).await;
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        started.elapsed() < DEADLINE,
        "the idle keep-alive connection was never closed"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    let server = start_default().await;
    let body = format!("{{\"name\":\"{}\"}}", "x".repeat(64 * 1024));
    let r = raw(server.local_addr, &post("/api/matchmake", "", &body)).await;
    assert_eq!(status(&r), 413, "{r}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_matches_needs_the_operator_key() {
    let mut c = Config::ephemeral();
    c.open = false;
    c.admin_key = Some("sesame".into());
    let server = start(c).await;
    let addr = server.local_addr;
    assert_eq!(status(&raw(addr, &post("/api/matches", "", "")).await), 401);
    let wrong = "Authorization: Bearer nope\r\n";
    assert_eq!(
        status(&raw(addr, &post("/api/matches", wrong, "")).await),
        401
    );
    let right = "Authorization: Bearer sesame\r\n";
    assert_eq!(
        status(&raw(addr, &post("/api/matches", right, "")).await),
        201
    );
    server.shutdown().await.expect("shutdown");

    // No key configured and not --open: nobody may create matches.
    let mut c = Config::ephemeral();
    c.open = false;
    let server = skirmish_server::Server::start(c).await.expect("server");
    let r = raw(server.local_addr, &post("/api/matches", right, "")).await;
    assert_eq!(status(&r), 403, "{r}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spectating_needs_a_spectator_token() {
    let mut c = Config::ephemeral();
    c.open = false;
    let server = start(c).await;
    let id = create_match(&server).await;
    let base = server.base_url();
    let mut opts = JoinOptions::new(&base, "eve");
    opts.match_id = Some(id);
    opts.spectate = true;
    // Straight to /ws without a token: refused.
    let upgrade = format!(
        "GET /ws?v={PROTOCOL_VERSION}&match={id}&spectate=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let r = raw(server.local_addr, upgrade.as_bytes()).await;
    assert_eq!(status(&r), 401, "{r}");
    // The shared client gets a token from the API first, then watches.
    let (mut rx, _tx) = client::connect(&opts).await.expect("spectates").split();
    let first = tokio::time::timeout(DEADLINE, rx.recv_message())
        .await
        .expect("in time")
        .expect("welcome");
    assert!(matches!(
        first.0,
        ServerMessage::Welcome {
            player_id: None,
            ..
        }
    ));
    server.shutdown().await.expect("shutdown");

    let mut c = Config::ephemeral();
    c.open = false;
    c.private_spectating = true;
    let server = start(c).await;
    let id = create_match(&server).await;
    let path = format!("/api/matches/{id}/spectate");
    assert_eq!(
        status(&raw(server.local_addr, &post(&path, "", "")).await),
        401
    );
    let key = format!("Authorization: Bearer {ADMIN_KEY}\r\n");
    assert_eq!(
        status(&raw(server.local_addr, &post(&path, &key, "")).await),
        200
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matchmaking_is_rate_limited_per_ip_with_retry_after() {
    let mut c = Config::ephemeral();
    c.rate_limit_loopback = true;
    c.api_rate_per_s = 1;
    c.api_burst = 2;
    let server = start(c).await;
    let body = r#"{"name":"spam"}"#;
    let mut statuses = Vec::new();
    let mut last = String::new();
    for _ in 0..4 {
        last = raw(server.local_addr, &post("/api/matchmake", "", body)).await;
        statuses.push(status(&last));
    }
    assert_eq!(&statuses[..2], [200, 200], "{statuses:?}");
    assert_eq!(statuses[3], 429, "{statuses:?}");
    assert!(
        last.to_ascii_lowercase().contains("retry-after: 1"),
        "{last}"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_url_comes_from_the_public_url_never_from_host() {
    let mut c = Config::ephemeral();
    c.public_url = Some("https://play.example.com".into());
    let server = start(c).await;
    let req = String::from_utf8(post("/api/matchmake", "", r#"{"name":"al"}"#))
        .expect("ascii")
        .replace("Host: x", "Host: evil.example");
    let r = raw(server.local_addr, req.as_bytes()).await;
    assert_eq!(status(&r), 200, "{r}");
    assert!(
        r.contains(&format!(
            "\"ws_url\":\"wss://play.example.com/ws?v={PROTOCOL_VERSION}&token="
        )),
        "{r}"
    );
    assert!(!r.contains("evil.example"), "{r}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_has_a_strict_content_security_policy() {
    let server = start_default().await;
    for path in ["/", "/app.js"] {
        let r = raw(server.local_addr, &get(path))
            .await
            .to_ascii_lowercase();
        assert!(
            r.contains("content-security-policy: default-src 'none'; script-src 'self'"),
            "{path}: {r}"
        );
        assert!(r.contains("x-content-type-options: nosniff"), "{path}");
    }
    server.shutdown().await.expect("shutdown");
}

/// Upgrades a raw socket with `--open`; returns it after the `101` head.
async fn raw_ws(server: &skirmish_server::Server) -> TcpStream {
    let mut tcp = TcpStream::connect(server.local_addr)
        .await
        .expect("connect");
    tcp.write_all(format!("GET /ws?v={PROTOCOL_VERSION}&name=raw HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.expect("head"));
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tcp
}

/// Reads server frames until a close frame; returns its code.
async fn read_close(tcp: &mut TcpStream) -> u16 {
    loop {
        let mut h = [0u8; 2];
        tcp.read_exact(&mut h).await.expect("frame");
        let len = match h[1] & 0x7F {
            126 => u64::from(tcp.read_u16().await.expect("len")),
            127 => tcp.read_u64().await.expect("len"),
            n => u64::from(n),
        };
        let mut payload = vec![0u8; len as usize];
        tcp.read_exact(&mut payload).await.expect("payload");
        if h[0] & 0x0F == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_its_close_handshake_the_server_closes_tcp_first() {
    let server = start_default().await;
    let mut tcp = raw_ws(&server).await;
    tcp.write_all(&masked_frame(0x81, b"text", [1, 2, 3, 4]))
        .await
        .expect("write");
    let code = tokio::time::timeout(DEADLINE, read_close(&mut tcp))
        .await
        .expect("a close");
    assert_eq!(code, 1003);
    tcp.write_all(&masked_frame(0x88, &1003u16.to_be_bytes(), [1, 2, 3, 4]))
        .await
        .expect("close reply");
    let mut rest = Vec::new();
    let eof = tokio::time::timeout(Duration::from_secs(1), tcp.read_to_end(&mut rest)).await;
    assert!(
        eof.is_ok(),
        "the server kept the TCP connection open after the handshake"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_after_a_stall_is_played_and_every_ping_answered() {
    let server = start_default().await;
    let mut p = join(&server, "stalled", None).await;
    // 45 inputs and 20 pings at once, as after a 1.5 s upload stall.
    for n in 1..=45u32 {
        let frames = vec![InputFrame {
            seq: Seq(n),
            ..InputFrame::default()
        }];
        p.tx.send(&ClientMessage::Input { frames })
            .await
            .expect("send");
    }
    for t in 0..20u64 {
        p.tx.send(&ClientMessage::Ping { client_time_us: t })
            .await
            .expect("send");
    }
    let mut pongs = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, p.rx.recv()).await {
            Ok(Ok(Incoming::Message(ServerMessage::Pong { .. }, _))) => pongs += 1,
            Ok(Ok(Incoming::Message(..))) => {}
            Ok(Ok(Incoming::Close { code, reason })) => panic!("closed {code}: {reason}"),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => break,
        }
    }
    assert_eq!(pongs, 20, "every ping is answered");
    assert_eq!(server.stats.closes(1008), 0);
    server.shutdown().await.expect("shutdown");
}
