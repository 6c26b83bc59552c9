//! Operating a server: Prometheus metrics, readiness, graceful drain, and the real binary
//! draining on SIGTERM with a bot swarm connected.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fastwebsockets::{Frame, Payload};
use skirmish_bots::behavior::Behavior;
use skirmish_bots::swarm::{self, SwarmConfig};
use skirmish_server::config::Config;
use skirmish_shared::protocol::close_code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_the_documented_series() {
    let server = start_default().await;
    let mut p = join(&server, "counted", None).await;
    for _ in 0..10 {
        p.next_world().await;
    }
    let mut bad = join(&server, "texter", Some(p.match_id)).await;
    bad.tx
        .send_frame(Frame::text(Payload::Borrowed(b"hi")))
        .await
        .expect("send");
    assert_eq!(bad.expect_close().await.0, close_code::UNSUPPORTED_DATA);
    let _ = bad.tx.close(close_code::UNSUPPORTED_DATA, "").await;
    drop(bad);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = http(&server, "GET", "/metrics").await;
    assert_eq!(status, 200);
    for series in [
        "skirmish_connections 1",
        "skirmish_matches{phase=\"running\"} 1",
        "skirmish_players 1",
        "skirmish_tick_duration_seconds_bucket{le=\"0.001\"}",
        "skirmish_tick_duration_seconds_count",
        "skirmish_tick_overruns_total",
        "skirmish_bytes_sent_total",
        "skirmish_messages_sent_total",
        "skirmish_bytes_received_total",
        "skirmish_messages_received_total",
        "skirmish_snapshots_skipped_total",
        "skirmish_inputs_dropped_total",
        "skirmish_closes_total{code=\"1003\"} 1",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        assert!(body.contains(series), "missing `{series}` in:\n{body}");
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_refuses_new_players_lets_the_match_play_on_then_closes_1001() {
    let server = start_default().await;
    let base = server.base_url();
    let mut p = join(&server, "player", None).await;
    assert_eq!(http(&server, "GET", "/readyz").await.0, 200);
    let addr = server.local_addr;
    let drain = tokio::spawn(server.drain(Duration::from_millis(1500)));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (status, body) = skirmish_shared::client::http_request(&base, "GET", "/readyz", None)
        .await
        .expect("readyz");
    assert_eq!(status, 503, "{body:?}");
    let err = skirmish_shared::client::matchmake(&base, "late", None)
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err,
            skirmish_shared::client::ClientError::Refused { status: 503, .. }
        ),
        "{err}"
    );
    // The running match goes on during the drain.
    let before = p.world().tick;
    for _ in 0..15 {
        p.next_world().await;
    }
    assert!(p.world().tick.diff(before) >= 15);
    let started = Instant::now();
    let (code, reason) = p.expect_close().await;
    assert_eq!(code, close_code::GOING_AWAY, "{reason}");
    let _ = p.tx.close(code, "").await;
    tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .expect("drained in time")
        .expect("task")
        .expect("clean");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "no longer listening"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_does_not_wait_for_matches_nobody_is_in() {
    let mut config = Config::ephemeral();
    config.empty_match_ttl_s = 600;
    let server = start(config).await;
    let mut p = join(&server, "leaver", None).await;
    p.next_world().await;
    let _ = p.tx.close(close_code::NORMAL, "bye").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, body) = http(&server, "GET", "/api/matches").await;
    assert!(
        body.contains("\"players\":0"),
        "the match is empty but open: {body}"
    );
    let started = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(20),
        server.drain(Duration::from_secs(30)),
    )
    .await
    .expect("the drain did not wait for the empty match's 600 s")
    .expect("clean");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

/// Reads the server's JSON log lines until it says where it listens.
fn listening_addr(
    stderr_or_out: impl std::io::Read + Send + 'static,
) -> (String, std::thread::JoinHandle<()>) {
    let mut lines = BufReader::new(stderr_or_out).lines();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && let Some(addr) = v["fields"]["local_addr"].as_str()
        {
            let addr = addr.to_string();
            // Keep draining the pipe so the server never blocks on logging.
            let rest = std::thread::spawn(move || for _ in lines {});
            return (addr, rest);
        }
    }
    panic!("the server never logged its address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_server_process_with_bots_connected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("results.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_skirmish-server"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--min-players",
            "1",
            "--countdown",
            "0s",
            "--admin-key",
            "ops-test-key",
        ])
        .args(["--drain-timeout", "2s", "--results-path"])
        .arg(&results)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server binary starts");
    let (addr, _log) = listening_addr(child.stdout.take().expect("stdout"));
    let base = format!("http://{addr}");
    let cfg = SwarmConfig {
        base_url: base.clone(),
        bots: 8,
        match_size: 4,
        duration: Duration::from_secs(60),
        ramp: Duration::from_millis(300),
        warmup: Duration::from_millis(200),
        behavior: Behavior::Wander,
        server_metrics: None,
        seed: 3,
        progress: false,
        tick_hz: 30,
        attackers: 0,
        attack: None,
        admin_key: Some("ops-test-key".into()),
        transport: skirmish_shared::client::Transport::Ws,
        link: skirmish_shared::link_sim::LinkConfig::default(),
        driver_threads: 1,
        verify_every: 1,
    };
    let swarm = tokio::spawn(swarm::run(cfg, std::future::pending()));
    // Let the bots get in and the matches run.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = skirmish_shared::client::http_request(&base, "GET", "/metrics", None)
            .await
            .expect("metrics");
        if String::from_utf8_lossy(&body).contains("skirmish_connections 8") {
            break;
        }
        assert!(Instant::now() < deadline, "the bots never all connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(12),
            "the server did not exit within drain + grace"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    assert!(
        sent.elapsed() >= Duration::from_secs(2),
        "the matches played on during the drain"
    );
    // The bots were closed with 1001 and a reason.
    let report = tokio::time::timeout(Duration::from_secs(70), swarm)
        .await
        .expect("swarm ends")
        .expect("task")
        .expect("report");
    let closed: u64 = report
        .failures
        .iter()
        .filter(|(why, _)| why.starts_with("closed 1001"))
        .map(|(_, n)| *n)
        .sum();
    assert_eq!(closed, 8, "{:?}", report.failures);
    // Both matches' results were written, marked as cut short.
    let text = std::fs::read_to_string(&results).expect("results file");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines
            .iter()
            .all(|r| r["ended_early"] == true
                && r["players"].as_array().is_some_and(|p| p.len() == 4))
    );
}
