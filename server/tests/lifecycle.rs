//! Matches with a beginning and an end: matchmaking and tokens, reconnect, phases and
//! results, game events for slow clients, chat, spectators.

mod common;

use std::time::Duration;

use common::*;
use skirmish_server::Config;
use skirmish_server::token::Claims;
use skirmish_shared::client::{self, ClientError, JoinOptions};
use skirmish_shared::protocol::{ClientMessage, EventKind, ServerMessage, close_code};
use skirmish_shared::quant::{MoveVec, QAngle};
use skirmish_shared::world::Phase;

/// Token mode (no `--open`), a fixed secret.
fn token_config() -> Config {
    let mut c = Config::ephemeral();
    c.open = false;
    c.secret = Some("test-secret".into());
    c
}

fn refused(err: ClientError) -> (u16, String) {
    match err {
        ClientError::Refused { status, reason } => (status, reason),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matchmake_then_join_and_bad_tokens_are_refused_before_the_upgrade() {
    let server = start(token_config()).await;
    let base = server.base_url();
    let (p, mm) = matchmake_and_join(&server, "alice", None).await;
    assert_eq!(p.match_id, mm.match_id);
    assert!(
        mm.ws_url.starts_with("ws://") && mm.ws_url.contains("token="),
        "{}",
        mm.ws_url
    );

    // No token at all.
    let (status, reason) = refused(
        client::connect(&JoinOptions::new(&base, "mallory"))
            .await
            .expect_err("no token"),
    );
    assert_eq!(status, 401, "{reason}");
    assert!(reason.contains("missing token"), "{reason}");

    // A forged token: alice's claims with another seat, same signature.
    let mut forged = JoinOptions::with_token(&base, &mm);
    let (payload, sig) = mm.token.split_once('.').expect("token");
    let mut bytes = payload.as_bytes().to_vec();
    bytes[5] ^= 1;
    forged.token = Some(format!(
        "{}.{sig}",
        String::from_utf8(bytes).expect("ascii")
    ));
    let (status, reason) = refused(client::connect(&forged).await.expect_err("forged"));
    assert_eq!(status, 401);
    assert!(
        reason.contains("forged") || reason.contains("malformed"),
        "{reason}"
    );

    // An expired token, properly signed.
    let expired = server.state.tokens.sign(&Claims {
        match_id: mm.match_id,
        seat: mm.seat,
        name: "alice".into(),
        exp: 1,
        instance: server.state.tokens.instance,
        spectator: false,
    });
    let mut opts = JoinOptions::with_token(&base, &mm);
    opts.token = Some(expired);
    let (status, reason) = refused(client::connect(&opts).await.expect_err("expired"));
    assert_eq!(
        (status, reason.contains("expired")),
        (401, true),
        "{reason}"
    );

    // Another match's token.
    let other = create_match(&server).await;
    let (_, bob) = {
        let mm = client::matchmake(&base, "bob", Some(other))
            .await
            .expect("matchmake bob");
        ((), mm)
    };
    let mut opts = JoinOptions::with_token(&base, &bob);
    opts.match_id = Some(mm.match_id);
    let (status, reason) = refused(client::connect(&opts).await.expect_err("wrong match"));
    assert_eq!(status, 403, "{reason}");
    assert!(
        reason.contains(&format!("token is for match {other}")),
        "{reason}"
    );

    // Replaying alice's token while she is connected.
    let (status, reason) = refused(
        client::connect(&JoinOptions::with_token(&base, &mm))
            .await
            .expect_err("replay"),
    );
    assert_eq!(status, 403);
    assert!(reason.contains("already in use"), "{reason}");
    drop(p);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_reservation_frees_its_seat() {
    let mut config = token_config();
    config.seat_reservation = Duration::from_millis(500);
    let server = start(config).await;
    let mm = client::matchmake(&server.base_url(), "ghost", None)
        .await
        .expect("matchmake");
    let (_, body) = http(&server, "GET", "/api/matches").await;
    assert!(body.contains("\"players\":1"), "{body}");
    // The expiry rule itself is a unit test with injected time (`match::seats`); here the
    // running match frees the seat within the deadline.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (_, body) = http(&server, "GET", "/api/matches").await;
        if body.contains("\"players\":0") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "seat never freed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, reason) = refused(
        client::connect(&JoinOptions::with_token(server.base_url(), &mm))
            .await
            .expect_err("late"),
    );
    assert_eq!(status, 403);
    assert!(reason.contains("no longer reserved"), "{reason}");
    server.shutdown().await.expect("shutdown");
}

/// Steers `p` at the nearest orb until its score is at least `score`.
async fn collect_orbs(p: &mut Player, score: u32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while p.world().player(p.id).expect("me").score < score {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no orbs collected in 20 s"
        );
        p.steer_to_nearest_orb().await;
        p.next_world().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_player_reconnects_to_the_same_seat_and_score_then_the_seat_expires() {
    let mut config = token_config();
    config.reconnect_grace = Duration::from_secs(2);
    let server = start(config).await;
    let base = server.base_url();
    let (mut p, mm) = matchmake_and_join(&server, "wifi", None).await;
    let (mut watcher, _) = matchmake_and_join(&server, "watcher", Some(mm.match_id)).await;
    collect_orbs(&mut p, 1).await;
    let (id, score) = (p.id, p.world().player(p.id).expect("me").score);
    drop(p); // the Wi-Fi goes: no close frame

    // The watcher sees the player stay (standing still) and the Disconnected event.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !watcher
        .events
        .iter()
        .any(|e| e.kind == EventKind::Disconnected { player: id })
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Disconnected event"
        );
        watcher.next_world().await;
    }
    assert!(
        watcher.world().player(id).is_some(),
        "the seat and avatar are kept"
    );

    let mut back = join_with(JoinOptions::with_token(&base, &mm)).await;
    assert_eq!(back.id, id, "same player id");
    assert_eq!(
        back.world().player(id).expect("me").score,
        score,
        "score kept"
    );
    back.next_world().await;

    // Drop again and stay away past the grace window: the seat is freed.
    drop(back);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while watcher.world().player(id).is_some() {
        assert!(tokio::time::Instant::now() < deadline, "seat never freed");
        watcher.next_world().await;
    }
    assert!(
        watcher
            .events
            .iter()
            .any(|e| e.kind == EventKind::Left { player: id })
    );
    let (status, reason) = refused(
        client::connect(&JoinOptions::with_token(&base, &mm))
            .await
            .expect_err("too late"),
    );
    assert_eq!(status, 403, "{reason}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_match_runs_through_every_phase_and_keeps_its_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results_path = dir.path().join("results.jsonl");
    let mut config = token_config();
    config.no_results_file = false;
    config.results_path = Some(results_path.clone());
    config.min_players = 2;
    config.countdown = Duration::from_millis(500);
    config.match_duration = Duration::from_secs(3);
    let server = start(config.clone()).await;
    let (mut a, mm) = matchmake_and_join(&server, "ann", None).await;
    assert_eq!(
        a.world().phase,
        Phase::Waiting,
        "one player waits for a second"
    );
    let (mut b, _) = matchmake_and_join(&server, "ben", Some(mm.match_id)).await;
    let (mut c, _) = matchmake_and_join(&server, "cat", Some(mm.match_id)).await;
    // Ann plays for points; the others just watch the clock.
    let ann = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while a.world().phase != Phase::Running && tokio::time::Instant::now() < deadline {
            a.next_world().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), collect_orbs(&mut a, 1)).await;
        let end = a.play_to_the_end(Duration::from_secs(10)).await;
        (end, a.events)
    });
    let (rb, code_b) = b.play_to_the_end(Duration::from_secs(10)).await;
    let (rc, code_c) = c.play_to_the_end(Duration::from_secs(10)).await;
    let ((ra, code_a), ann_events) = ann.await.expect("ann");
    assert_eq!(
        (code_a, code_b, code_c),
        (close_code::NORMAL, close_code::NORMAL, close_code::NORMAL)
    );
    assert_eq!(ra, rb);
    assert_eq!(rb, rc);
    assert_eq!(ra.len(), 3);
    // Ann was there from the start: she saw every phase change.
    let phases: Vec<Phase> = ann_events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::PhaseChanged { phase, .. } => Some(phase),
            _ => None,
        })
        .collect();
    assert_eq!(
        phases,
        vec![Phase::Countdown, Phase::Running, Phase::Ended],
        "every phase, in order"
    );

    // The endpoint and the file hold the result, with the same ranking.
    let (status, body) = http(
        &server,
        "GET",
        &format!("/api/matches/{}/results", mm.match_id),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let result: serde_json::Value = serde_json::from_str(&body).expect("json");
    let ranked: Vec<(u64, u64)> = result["players"]
        .as_array()
        .expect("players")
        .iter()
        .map(|p| {
            (
                p["player_id"].as_u64().expect("id"),
                p["rank"].as_u64().expect("rank"),
            )
        })
        .collect();
    let expected: Vec<(u64, u64)> = ra
        .iter()
        .map(|r| (u64::from(r.player_id.0), u64::from(r.rank)))
        .collect();
    assert_eq!(ranked, expected);
    assert_eq!(result["ended_early"], false);
    server.shutdown().await.expect("shutdown");

    // After a restart the file still holds it, and so does the endpoint.
    let line = std::fs::read_to_string(&results_path).expect("results file");
    assert_eq!(line.lines().count(), 1);
    assert!(line.contains(&format!("\"match_id\":{}", mm.match_id)));
    let again = start(config).await;
    let (status, body2) = http(
        &again,
        "GET",
        &format!("/api/matches/{}/results", mm.match_id),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body2).expect("json"),
        result
    );
    let new_match = create_match(&again).await;
    assert!(
        new_match > mm.match_id,
        "match ids continue after the restart"
    );
    again.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_still_gets_every_event_once_and_in_order() {
    let mut config = Config::ephemeral();
    config.tick_hz = 128;
    config.send_buffer = Some(4096);
    let server = start(config).await;
    let id = create_match(&server).await;
    let mut fast = join(&server, "fast", Some(id)).await;
    let mut slow_opts = options(&server, "slow", Some(id));
    slow_opts.recv_buffer = Some(1024);
    let mut slow = join_with(slow_opts).await;
    let mut busy = join(&server, "busy", Some(id)).await;
    // `busy` chats and collects orbs; `slow` stops reading for a while.
    let start_event = fast.events.len();
    for i in 0..4 {
        busy.tx
            .send(&ClientMessage::Chat {
                text: format!("line {i}"),
            })
            .await
            .expect("chat");
    }
    collect_orbs(&mut busy, 2).await;
    // Keep the world busy for a few seconds while `slow` does not read at all.
    let mut latest_tick = busy.world().tick;
    let started = tokio::time::Instant::now();
    let mut a = 0u16;
    while started.elapsed() < Duration::from_secs(4) {
        a = a.wrapping_add(29);
        busy.send_input(
            MoveVec::from_f32(
                QAngle::new(a).to_radians().cos(),
                QAngle::new(a).to_radians().sin(),
            ),
            QAngle::new(a),
        )
        .await;
        busy.next_world().await;
        fast.next_world().await;
        latest_tick = fast.world().tick;
    }
    // Now the slow one catches up.
    while slow.world().tick.diff(latest_tick) < 0 {
        slow.next_world().await;
    }
    while fast.world().tick.diff(slow.world().tick) < 0 {
        fast.next_world().await;
    }
    let ids: Vec<u64> = slow.events.iter().map(|e| e.id).collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive, no duplicates: {ids:?}"
    );
    assert!(
        slow.events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Chat { .. }))
            .count()
            == 4
    );
    assert!(
        slow.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::OrbCollected { .. }))
    );
    // Both saw the same events over the same span.
    let first = slow.events.first().map(|e| e.id).expect("events");
    let last = slow.events.last().map(|e| e.id).expect("events");
    let fast_span: Vec<_> = fast.events[start_event..]
        .iter()
        .filter(|e| e.id >= first && e.id <= last)
        .cloned()
        .collect();
    assert_eq!(fast_span, slow.events);
    // It really fell behind: its writer skipped snapshots and sent it its own catch-up deltas.
    assert!(
        server.stats.snapshots_skipped.get() > 0,
        "the slow client never fell behind"
    );
    assert!(server.stats.snapshots_encoded_per_client.get() > 0);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_is_length_and_rate_limited_and_the_tick_rate_holds() {
    let server = start_default().await;
    let id = create_match(&server).await;
    let mut talker = join(&server, "talker", Some(id)).await;
    let mut listener = join(&server, "listener", Some(id)).await;
    talker
        .tx
        .send(&ClientMessage::Chat {
            text: "x".repeat(201),
        })
        .await
        .expect("send");
    let start_tick = listener.world().tick;
    let started = tokio::time::Instant::now();
    for i in 0..20 {
        talker
            .tx
            .send(&ClientMessage::Chat {
                text: format!("burst {i}"),
            })
            .await
            .expect("send");
    }
    // Read for a second on both sides.
    while started.elapsed() < Duration::from_secs(1) {
        listener.next_world().await;
    }
    while talker.world().tick.diff(listener.world().tick) < 0 {
        talker.next_world().await;
    }
    let chats: Vec<String> = listener
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Chat { from, text } if *from == talker.id => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        chats,
        (0..5).map(|i| format!("burst {i}")).collect::<Vec<_>>(),
        "the first 5 of the burst, in order; not the long one"
    );
    let rejections: Vec<&str> = talker
        .other
        .iter()
        .filter_map(|m| match m {
            ServerMessage::ChatRejected { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(rejections.len(), 16, "{rejections:?}");
    assert!(
        rejections[0].contains("longer than 200"),
        "{}",
        rejections[0]
    );
    assert!(rejections[1..].iter().all(|r| r.contains("rate limit")));
    let ticks = listener.world().tick.diff(start_tick) as f64;
    let secs = started.elapsed().as_secs_f64();
    assert!(ticks >= 0.9 * 30.0 * secs, "{ticks} ticks in {secs:.2} s");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spectators_watch_without_a_seat_and_cannot_play() {
    let mut config = Config::ephemeral();
    config.match_size = 1;
    let server = start(config).await;
    let mut player = join(&server, "solo", None).await;
    let mut opts = options(&server, "", Some(player.match_id));
    opts.spectate = true;
    let (mut rx, mut tx) = client::connect(&opts).await.expect("spectate").split();
    let (msg, _) = rx.recv_message().await.expect("welcome");
    let ServerMessage::Welcome {
        player_id,
        snapshot,
        ..
    } = msg
    else {
        panic!("{msg:?}")
    };
    assert_eq!(player_id, None);
    assert_eq!(snapshot.baseline_age, 0);
    let (_, body) = http(&server, "GET", "/api/matches").await;
    assert!(
        body.contains("\"players\":1") && body.contains("\"spectators\":1"),
        "{body}"
    );
    // Snapshots keep coming.
    for _ in 0..5 {
        loop {
            if let (ServerMessage::Snapshot(_), _) = rx.recv_message().await.expect("open") {
                break;
            }
        }
    }
    player.next_world().await;
    tx.send(&ClientMessage::Input {
        frames: vec![Default::default()],
    })
    .await
    .expect("send");
    let code = loop {
        match rx.recv().await.expect("open") {
            client::Incoming::Close { code, .. } => break code,
            client::Incoming::Message(..) => {}
        }
    };
    assert_eq!(code, close_code::POLICY);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cuts_a_running_match_short_and_keeps_its_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::ephemeral();
    config.no_results_file = false;
    config.results_path = Some(dir.path().join("results.jsonl"));
    let server = start(config.clone()).await;
    let mut p = join(&server, "stayer", None).await;
    while p.world().phase != Phase::Running {
        p.next_world().await;
    }
    let shutdown = tokio::spawn(server.shutdown());
    let (code, _) = p.expect_close().await;
    assert_eq!(code, close_code::GOING_AWAY);
    let _ = p.tx.close(code, "").await;
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("in time")
        .expect("task")
        .expect("clean");
    let text = std::fs::read_to_string(config.results_file().expect("results file"))
        .expect("results written before exit");
    let r: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a line")).expect("json");
    assert_eq!(r["ended_early"], true);
    assert_eq!(r["players"][0]["name"], "stayer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_joiners_fill_one_new_match() {
    let server = start(token_config()).await;
    let base = server.base_url();
    let calls: Vec<_> = (0..16)
        .map(|i| {
            let base = base.clone();
            tokio::spawn(async move {
                client::matchmake(&base, &format!("p{i}"), None)
                    .await
                    .expect("seat")
            })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for c in calls {
        ids.insert(c.await.expect("task").match_id);
    }
    assert_eq!(
        ids.len(),
        1,
        "16 joiners, match size 16: one match, got {ids:?}"
    );
    let seventeenth = client::matchmake(&base, "p16", None).await.expect("seat");
    assert!(
        !ids.contains(&seventeenth.match_id),
        "the 17th starts a second match"
    );
    server.shutdown().await.expect("shutdown");
}
