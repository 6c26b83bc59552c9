//! Replays (issue 16) end to end: real matches on a real server, played by WebSocket clients
//! with a reconnect, a drop for good and a drain; every recorded file is downloaded,
//! re-simulated bit for bit against its checksums, keyframes and the results file, and shows
//! the world a client saw.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use skirmish_server::Config;
use skirmish_server::replay::cli::verify_file;
use skirmish_shared::client::JoinOptions;
use skirmish_shared::world::{Phase, WorldState};

fn config(dir: &Path) -> Config {
    let mut c = Config::ephemeral();
    c.open = false;
    c.secret = Some("test-secret".into());
    c.no_replays = false;
    c.replay_dir = Some(dir.join("replays"));
    c.no_results_file = false;
    c.results_path = Some(dir.join("results.jsonl"));
    c.min_players = 2;
    c.countdown = Duration::from_millis(300);
    c.match_duration = Duration::from_secs(4);
    c.reconnect_grace = Duration::from_secs(1);
    c
}

/// Steers at orbs for `ticks` snapshots.
async fn play(p: &mut Player, ticks: usize) {
    for _ in 0..ticks {
        p.steer_to_nearest_orb().await;
        p.next_world().await;
    }
}

fn replay_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("replays"))
        .expect("the replay directory exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "skreplay"))
        .collect();
    files.sort();
    files
}

/// `skirmish-server replay ARGS`: exit status, stdout, stderr.
fn replay_cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skirmish-server"))
        .arg("replay")
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_with_a_reconnect_a_drop_and_a_drain_replay_bit_for_bit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(config(dir.path())).await;
    let base = server.base_url();

    // Match 1 runs its course: ann scores, cat drops and comes back, dan drops for good.
    let (mut ann, mm) = matchmake_and_join(&server, "ann", None).await;
    let m1 = mm.match_id;
    let (mut ben, _) = matchmake_and_join(&server, "ben", Some(m1)).await;
    let (mut cat, cat_mm) = matchmake_and_join(&server, "cat", Some(m1)).await;
    let (dan, _) = matchmake_and_join(&server, "dan", Some(m1)).await;
    play(&mut ann, 20).await;
    play(&mut cat, 10).await;
    drop(cat); // moving, then no close frame: it stands still while its seat waits
    drop(dan); // and this one never comes back (the seat expires after a second)
    play(&mut ann, 10).await;
    let mut cat = join_with(JoinOptions::with_token(&base, &cat_mm)).await;
    while ann.world().phase != Phase::Running {
        play(&mut ann, 1).await;
    }
    play(&mut ann, 15).await;
    let seen: WorldState = ann.world().clone();
    let ((ranking, _), _, _) = tokio::join!(
        ann.play_to_the_end(Duration::from_secs(20)),
        ben.play_to_the_end(Duration::from_secs(20)),
        cat.play_to_the_end(Duration::from_secs(20)),
    );

    // Listed with its results once written (the file is synced just after the final
    // ranking goes out), and downloadable byte for byte.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let row = loop {
        let (status, body) = http(&server, "GET", "/api/replays").await;
        assert_eq!(status, 200, "{body}");
        let list: serde_json::Value = serde_json::from_str(&body).expect("json");
        let row = list
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["match_id"] == m1).cloned())
            .unwrap_or_else(|| panic!("match {m1} listed: {body}"));
        if row["recording"] == false {
            break row;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still recording: {row}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        row["results"]["players"].as_array().map(Vec::len),
        Some(ranking.len()),
        "listed with its results: {row}"
    );
    let (status, downloaded) =
        http_bytes(&server, "GET", &format!("/api/matches/{m1}/replay"), None).await;
    assert_eq!(status, 200);
    let files = replay_files(dir.path());
    assert_eq!(files.len(), 1, "one match, one file: {files:?}");
    assert_eq!(
        downloaded,
        std::fs::read(&files[0]).expect("read"),
        "the download is the file"
    );
    let (status, _) = http(&server, "GET", "/api/matches/999/replay").await;
    assert_eq!(status, 404);
    // The viewer's frames carry the game events the players saw: the joins, cat's drop and
    // return.
    let mut kinds = Vec::new();
    let mut from = 0u32;
    loop {
        let path = format!("/api/matches/{m1}/replay/frames?from={from}&count=300");
        let (status, body) = http_bytes(&server, "GET", &path, None).await;
        assert_eq!(status, 200);
        let mut at = 0;
        let mut last = from;
        while at + 4 <= body.len() {
            let len = u32::from_le_bytes(body[at..at + 4].try_into().expect("4 bytes")) as usize;
            let msg = skirmish_shared::protocol::decode_server(&body[at + 4..at + 4 + len])
                .expect("a server message");
            at += 4 + len;
            let skirmish_shared::protocol::ServerMessage::Snapshot(s) = msg else {
                panic!("frames are snapshots");
            };
            last = s.tick.0;
            kinds.extend(s.events.into_iter().map(|e| e.kind));
        }
        if last == from {
            break;
        }
        from = last;
    }
    use skirmish_shared::protocol::EventKind;
    for want in ["ann", "ben", "cat", "dan"] {
        assert!(
            kinds
                .iter()
                .any(|k| matches!(k, EventKind::Joined { name, .. } if name == want)),
            "{want} joined, in the replay's events"
        );
    }
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, EventKind::Disconnected { .. }))
    );
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, EventKind::Reconnected { .. }))
    );

    // Match 2 is running when the server drains: it ends early, recorded to its end.
    let (mut eve, mm2) = matchmake_and_join(&server, "eve", None).await;
    assert_ne!(mm2.match_id, m1);
    let (mut fay, _) = matchmake_and_join(&server, "fay", Some(mm2.match_id)).await;
    while eve.world().phase != Phase::Running {
        play(&mut eve, 1).await;
    }
    play(&mut eve, 50).await;
    let ends = tokio::spawn(async move {
        let (a, b) = tokio::join!(eve.expect_close(), fay.expect_close());
        let _ = eve.tx.close(a.0, "").await;
        let _ = fay.tx.close(b.0, "").await;
        a.0
    });
    server
        .drain(Duration::from_millis(300))
        .await
        .expect("drains");
    assert_eq!(ends.await.expect("players"), 1001, "closed as going away");

    // Every file re-simulates: checksums, keyframes, and the final ranking against the
    // results file (and, for the first match, the ranking its players were sent).
    let results = dir.path().join("results.jsonl");
    let files = replay_files(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    let reports: Vec<_> = files
        .iter()
        .map(|f| {
            verify_file(f, Some(&results))
                .unwrap_or_else(|e| panic!("{} verifies: {e}", f.display()))
        })
        .collect();
    for r in &reports {
        assert!(r.verified.ticks > 60, "{r:?}");
        assert!(r.verified.checksums >= 2, "{r:?}");
    }
    assert_eq!(reports[0].header.match_id, m1);
    assert_eq!(
        reports[0].verified.ranking.as_ref(),
        Some(&ranking),
        "the re-simulated ranking is the one the players were sent"
    );
    assert!(
        reports[1]
            .verified
            .end
            .as_ref()
            .is_some_and(|e| e.ended_early),
        "the drained match is marked ended early"
    );

    // The command line: verify says so; show prints the world ann decoded at that tick.
    let f1 = files[0].to_str().expect("utf-8 path");
    let r = results.to_str().expect("utf-8 path");
    let (code, out, err) = replay_cli(&["verify", f1, "--results", r]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("agrees with"), "{out}");
    let tick = seen.tick.0.to_string();
    let (code, out, err) = replay_cli(&["show", f1, "--tick", &tick, "--json"]);
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        shown["checksum"],
        seen.checksum(),
        "the re-simulated world at tick {tick} is the one a client decoded"
    );
    assert_eq!(
        shown["players"].as_array().map(Vec::len),
        Some(seen.players.len())
    );

    // A damaged file is refused with the reason.
    let mut bytes = std::fs::read(&files[0]).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    let damaged = dir.path().join("damaged.skreplay");
    std::fs::write(&damaged, bytes).expect("write");
    let (code, out, err) = replay_cli(&["verify", damaged.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("block") || err.contains("tick"),
        "says what is wrong: {err}"
    );
}

/// `--spectator-delay`: a spectator gets every tick a second after the players did (never a
/// tick the match published less than the delay ago), the same worlds, and the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spectators_watch_the_delay_behind_and_see_the_end() {
    use skirmish_shared::client::{self, Incoming};
    use skirmish_shared::protocol::ServerMessage;
    use skirmish_shared::receiver::{Received, SnapshotReceiver};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    let mut config = Config::ephemeral();
    config.spectator_delay = Duration::from_secs(1);
    config.match_duration = Duration::from_secs(3);
    let server = start(config).await;
    let mut player = join(&server, "live", None).await;
    let match_id = player.match_id;
    let seen: Arc<Mutex<HashMap<u32, WorldState>>> = Arc::default();
    let record = seen.clone();
    let playing = tokio::spawn(async move {
        while player.world().phase != Phase::Ended {
            player.steer_to_nearest_orb().await;
            let w = player.next_world().await.clone();
            record.lock().expect("lock").insert(w.tick.0, w);
        }
        player.play_to_the_end(Duration::from_secs(20)).await.0
    });

    let mut opts = options(&server, "", Some(match_id));
    opts.spectate = true;
    let (mut rx, _tx) = client::connect(&opts).await.expect("spectate").split();
    let mut worlds = SnapshotReceiver::new(skirmish_shared::rules::Params::new(30));
    let (mut checked, mut compared, mut n) = (0, 0, 0);
    let (ranking, code) = loop {
        let msg = tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .expect("the spectator stream goes on")
            .expect("open");
        let snapshot = match msg {
            Incoming::Message(ServerMessage::Welcome { snapshot, .. }, _) => snapshot,
            Incoming::Message(ServerMessage::Snapshot(s), _) => s,
            Incoming::Message(ServerMessage::MatchEnded { ranking }, _) => {
                let code = loop {
                    if let Incoming::Close { code, .. } = rx.recv().await.expect("close") {
                        break code;
                    }
                };
                break (ranking, code);
            }
            _ => continue,
        };
        let Received::Applied { .. } = worlds.receive(&snapshot) else {
            panic!("the delayed stream decodes");
        };
        let w = worlds.latest().expect("a world").clone();
        n += 1;
        if n % 10 == 0 {
            let (_, body) = http(&server, "GET", "/api/matches").await;
            let rows: serde_json::Value = serde_json::from_str(&body).expect("json");
            if let Some(live) = rows
                .as_array()
                .and_then(|r| r.iter().find(|m| m["id"] == match_id))
                && live["phase"] != "Ended"
            {
                let live_tick = live["tick"].as_u64().expect("tick");
                assert!(
                    u64::from(w.tick.0) + 30 <= live_tick,
                    "spectator at tick {} while the match is at {live_tick}",
                    w.tick.0
                );
                checked += 1;
            }
        }
        if let Some(p) = seen.lock().expect("lock").get(&w.tick.0) {
            assert_eq!(
                p, &w,
                "the spectator sees what the player saw at tick {}",
                w.tick.0
            );
            compared += 1;
        }
    };
    let played = playing.await.expect("player");
    assert_eq!(ranking, played, "the same ranking, a second later");
    assert_eq!(code, 1000);
    assert!(checked >= 3, "lag checked {checked} times");
    assert!(compared >= 60, "{compared} worlds compared");
    server.shutdown().await.expect("shutdown");
}

/// A client hammering the replay endpoints (each seek re-simulates on the server) gets 429
/// after its burst; the replay itself is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reads_are_rate_limited_per_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replays = dir.path().join("replays");
    std::fs::create_dir_all(&replays).expect("dir");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    std::fs::write(
        replays.join(format!("match-4-{now_ms}.skreplay")),
        skirmish_shared::workload::wander_replay(4, 300, 4, now_ms),
    )
    .expect("write");
    let mut c = Config::ephemeral();
    c.no_replays = false;
    c.replay_dir = Some(replays);
    c.rate_limit_loopback = true;
    let server = start(c).await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let (status, _) = http(
            &server,
            "GET",
            "/api/matches/4/replay/frames?from=100&count=30",
        )
        .await;
        statuses.push(status);
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(ok >= 30, "the burst is served: {statuses:?}");
    assert!(limited >= 5, "then refused: {statuses:?}");
    assert_eq!(ok + limited, 40, "{statuses:?}");
    server.shutdown().await.expect("shutdown");
}
