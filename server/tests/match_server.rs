//! The match server end to end: real server on 127.0.0.1:0, real WebSocket clients.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use skirmish_server::Config;
use skirmish_shared::protocol::ServerMessage;
use skirmish_shared::quant::{MoveVec, POS_SCALE, QAngle};
use skirmish_shared::rules::{ORB_RADIUS, PLAYER_RADIUS};
use skirmish_shared::tick::Tick;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_listing_and_creation() {
    let server = start_default().await;
    assert_eq!(
        http(&server, "GET", "/healthz").await,
        (200, "ok".to_string())
    );
    let (status, body) = http(&server, "GET", "/api/matches").await;
    assert_eq!((status, body.as_str()), (200, "[]"));
    let id = create_match(&server).await;
    let (_, body) = http(&server, "GET", "/api/matches").await;
    let list: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["players"], 0);
    assert_eq!(list[0]["capacity"], 16);
    assert_eq!(list[0]["tick_hz"], 30);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_clients_decode_the_same_world_and_acks_advance() {
    let server = start_default().await;
    let id = create_match(&server).await;
    let mut players = Vec::new();
    for i in 0..8 {
        players.push(join(&server, &format!("p{i}"), Some(id)).await);
    }
    // Each client plays for 60 ticks (2 s) and records the checksum of every world it decodes.
    let mut tasks = Vec::new();
    for (i, mut p) in players.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut seen: HashMap<Tick, u32> = HashMap::new();
            let aim = QAngle::new((i * 128) as u16);
            let mv = MoveVec::from_f32(aim.to_radians().cos(), aim.to_radians().sin());
            let first_ack = p.world().player(p.id).expect("self in world").last_seq;
            for _ in 0..60 {
                p.send_input(mv, aim).await;
                let w = p.next_world().await;
                seen.insert(w.tick, w.checksum());
            }
            let me = p.world().player(p.id).expect("self in world");
            (
                p.id,
                seen,
                first_ack,
                me.last_seq,
                p.next_seq - 1,
                p.worlds.desyncs,
                p.worlds.checksums_ok,
                me.aim,
                aim,
            )
        }));
    }
    let mut all: Vec<HashMap<Tick, u32>> = Vec::new();
    for t in tasks {
        let (pid, seen, first_ack, last_ack, sent, desyncs, sums_ok, aim_seen, aim_sent) =
            t.await.expect("client task");
        assert_eq!(desyncs, 0, "player {pid}");
        assert!(sums_ok >= 1, "player {pid} verified at least one checksum");
        assert!(
            last_ack.0 > first_ack.0 + 40,
            "player {pid}: acks advance ({first_ack:?} -> {last_ack:?})"
        );
        assert!(
            last_ack.0 <= sent,
            "player {pid}: never acked beyond what was sent"
        );
        assert_eq!(
            aim_seen, aim_sent,
            "player {pid}: the server applied our aim"
        );
        all.push(seen);
    }
    // Every tick decoded by several clients decoded to the same world.
    let mut compared = 0;
    for (tick, sum) in &all[0] {
        for other in &all[1..] {
            if let Some(s) = other.get(tick) {
                assert_eq!(s, sum, "tick {tick:?}");
                compared += 1;
            }
        }
    }
    assert!(
        compared > 7 * 40,
        "compared {compared} (tick, client) pairs"
    );
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_into_orbs_raises_the_score_by_one_per_orb() {
    let server = start_default().await;
    let mut p = join(&server, "collector", None).await;
    let reach = i64::from((PLAYER_RADIUS + ORB_RADIUS) * POS_SCALE).pow(2);
    let mut checked_pickups = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while p.world().player(p.id).expect("me").score < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "did not collect 3 orbs in 20 s"
        );
        let before = p.world().clone();
        let me = *before.player(p.id).expect("me");
        p.steer_to_nearest_orb().await;
        let after = p.next_world().await.clone();
        if after.tick.diff(before.tick) != 1 {
            continue;
        }
        let now = after.player(p.id).expect("me");
        let gained = now.score - me.score;
        // Orbs that moved away from within our reach are the ones we collected.
        let collected = before
            .orbs
            .iter()
            .zip(&after.orbs)
            .filter(|(b, a)| b != a && b.dist_sq(now.pos) <= reach)
            .count() as u32;
        assert_eq!(
            gained, collected,
            "score change must equal orbs collected at tick {:?}",
            after.tick
        );
        checked_pickups += collected;
    }
    assert!(
        checked_pickups >= 1,
        "at least one pickup was checked tick by tick"
    );
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_hold_up_the_match() {
    let mut config = Config::ephemeral();
    config.tick_hz = 64;
    config.send_buffer = Some(4096);
    config.write_timeout_ms = 60_000;
    let server = start(config).await;
    let stats = server.stats.clone();
    let id = create_match(&server).await;
    let mut reader = join(&server, "reader", Some(id)).await;
    // Seven more players move about so the world changes every tick.
    let mut movers = Vec::new();
    for n in 0..7u16 {
        let mut m = join(&server, &format!("mover{n}"), Some(id)).await;
        movers.push(tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut a = n * 100;
            while start.elapsed() < Duration::from_secs(6) {
                a = a.wrapping_add(23);
                let aim = QAngle::new(a);
                m.send_input(
                    MoveVec::from_f32(aim.to_radians().cos(), aim.to_radians().sin()),
                    aim,
                )
                .await;
                m.next_world().await;
            }
        }));
    }
    // The slow client connects with a tiny receive window and then never reads a byte.
    let mut slow_opts = options(&server, "slow", Some(id));
    slow_opts.recv_buffer = Some(1024);
    let slow = skirmish_shared::client::connect(&slow_opts)
        .await
        .expect("slow joins");

    let seconds = 5.5;
    let start_snapshots = reader.snapshots;
    let start = tokio::time::Instant::now();
    let mut i = 0u16;
    while start.elapsed().as_secs_f64() < seconds {
        i = i.wrapping_add(37);
        let aim = QAngle::new(i);
        reader
            .send_input(
                MoveVec::from_f32(aim.to_radians().cos(), aim.to_radians().sin()),
                aim,
            )
            .await;
        reader.next_world().await;
    }
    let got = reader.snapshots - start_snapshots;
    let expected = 64.0 * start.elapsed().as_secs_f64();
    assert!(
        got as f64 >= 0.9 * expected,
        "reader got {got} snapshots of about {expected:.0}"
    );
    // Now drain the slow client: what it finds in its socket is everything the server wrote
    // for it. It is a bounded amount, it skips ticks, and it still decodes without desync.
    let end_tick = reader.world().tick;
    let (mut slow_rx, _slow_tx) = slow.split();
    let mut drained = 0usize;
    let mut worlds: Option<skirmish_shared::receiver::SnapshotReceiver> = None;
    let mut max_gap = 0;
    let mut last_tick = None;
    loop {
        let (msg, n) = tokio::time::timeout(DEADLINE, slow_rx.recv_message())
            .await
            .expect("in time")
            .expect("open");
        drained += n;
        let snap = match msg {
            ServerMessage::Welcome {
                tick_hz, snapshot, ..
            } => {
                worlds = Some(skirmish_shared::receiver::SnapshotReceiver::new(
                    skirmish_shared::rules::Params::new(tick_hz),
                ));
                snapshot
            }
            ServerMessage::Snapshot(s) => s,
            _ => continue,
        };
        let w = worlds.as_mut().expect("welcome first");
        assert!(
            matches!(
                w.receive(&snap),
                skirmish_shared::receiver::Received::Applied { .. }
            ),
            "decodes"
        );
        if let Some(t) = last_tick {
            max_gap = max_gap.max(snap.tick.diff(t));
        }
        last_tick = Some(snap.tick);
        if snap.tick.is_at_or_after(end_tick) {
            break;
        }
    }
    assert_eq!(worlds.expect("welcomed").desyncs, 0);
    assert!(
        max_gap > 10,
        "the slow client's stream skipped ticks (largest gap {max_gap})"
    );
    assert!(
        drained < 48 * 1024,
        "bytes buffered for the slow client: {drained}"
    );
    assert!(
        drained < reader.bytes_received / 2,
        "slow {drained} vs reader {}",
        reader.bytes_received
    );
    // The server counted those skipped snapshots (counted when the writer resumes).
    assert!(
        stats.snapshots_skipped.get() >= max_gap as u64 - 1,
        "skipped {}",
        stats.snapshots_skipped.get()
    );
    for m in movers {
        m.await.expect("mover");
    }
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_or_create_fills_the_fullest_match_and_refuses_bad_joins() {
    let mut config = Config::ephemeral();
    config.match_size = 2;
    let server = start(config).await;
    let a = join(&server, "a", None).await;
    let b = join(&server, "b", None).await;
    assert_eq!(
        a.match_id, b.match_id,
        "the second player fills the first match"
    );
    let c = join(&server, "c", None).await;
    assert_ne!(c.match_id, a.match_id, "a full match makes a new one");

    let err = skirmish_shared::client::connect(&options(&server, "d", Some(a.match_id)))
        .await
        .expect_err("full");
    assert!(
        matches!(err, skirmish_shared::client::ClientError::Refused { status: 409, ref reason } if reason.contains("full")),
        "{err}"
    );
    let err = skirmish_shared::client::connect(&options(&server, "e", Some(999)))
        .await
        .expect_err("no such match");
    assert!(
        matches!(
            err,
            skirmish_shared::client::ClientError::Refused { status: 404, .. }
        ),
        "{err}"
    );
    let mut wrong = options(&server, "f", None);
    wrong.protocol_version = 999;
    let err = skirmish_shared::client::connect(&wrong)
        .await
        .expect_err("wrong version");
    match err {
        skirmish_shared::client::ClientError::Refused { status, reason } => {
            assert_eq!(status, 400);
            assert!(reason.contains("protocol version mismatch"), "{reason}");
        }
        other => panic!("expected a refusal, got {other}"),
    }
    let (status, body) = http(&server, "GET", "/ws?v=1&name=x").await;
    assert_eq!(status, 400, "a plain GET is not an upgrade: {body}");
    drop((a, b, c));
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_carries_identity_and_pong_answers_ping() {
    let server = start_default().await;
    let mut p = join(&server, "  pinger\n", None).await;
    assert_eq!(
        &*p.world().player(p.id).expect("me").name,
        "pinger",
        "names are cleaned"
    );
    p.tx.send(&skirmish_shared::protocol::ClientMessage::Ping {
        client_time_us: 4242,
    })
    .await
    .expect("ping");
    let pong = tokio::time::timeout(DEADLINE, async {
        loop {
            if let (
                ServerMessage::Pong {
                    client_time_us,
                    server_tick,
                },
                _,
            ) = p.rx.recv_message().await.expect("open")
            {
                return (client_time_us, server_tick);
            }
        }
    })
    .await
    .expect("pong in time");
    assert_eq!(pong.0, 4242);
    server.shutdown().await.expect("clean shutdown");
}
