//! Misbehaving clients get the documented close code and reason; the match goes on for
//! everyone else.

mod common;

use std::time::Duration;

use common::*;
use fastwebsockets::{Frame, Payload};
use skirmish_server::Server;
use skirmish_shared::protocol::{ClientMessage, InputFrame, MAX_CLIENT_MESSAGE_BYTES, close_code};
use skirmish_shared::quant::{MoveVec, QAngle};
use skirmish_shared::tick::Seq;

/// An observer that keeps playing in the match; returns how many snapshots it got.
async fn observer_keeps_receiving(observer: &mut Player, ticks: usize) {
    let before = observer.world().tick;
    for _ in 0..ticks {
        observer
            .send_input(MoveVec::from_f32(1.0, 0.0), QAngle::new(0))
            .await;
        observer.next_world().await;
    }
    let advanced = observer.world().tick.diff(before);
    assert!(
        advanced >= ticks as i32,
        "observer advanced {advanced} ticks"
    );
    assert_eq!(observer.worlds.desyncs, 0);
}

async fn setup() -> (Server, Player, u32) {
    let server = start_default().await;
    let id = create_match(&server).await;
    let observer = join(&server, "observer", Some(id)).await;
    (server, observer, id)
}

async fn player_count(observer: &mut Player) -> usize {
    observer.next_world().await.players.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_frame_is_closed_1003() {
    let (server, mut observer, id) = setup().await;
    let mut bad = join(&server, "texter", Some(id)).await;
    bad.tx
        .send_frame(Frame::text(Payload::Borrowed(b"hello")))
        .await
        .expect("send");
    let (code, reason) = bad.expect_close().await;
    assert_eq!(code, close_code::UNSUPPORTED_DATA);
    assert!(reason.contains("binary"), "{reason}");
    observer_keeps_receiving(&mut observer, 15).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_are_closed_1002_with_a_reason() {
    let (server, mut observer, id) = setup().await;
    let mut bad = join(&server, "garbler", Some(id)).await;
    bad.tx
        .send_frame(Frame::binary(Payload::Owned(vec![0xFF, 0x13, 0x37, 0x00])))
        .await
        .expect("send");
    let (code, reason) = bad.expect_close().await;
    assert_eq!(code, close_code::PROTOCOL_ERROR);
    assert!(reason.starts_with("bad message"), "{reason}");
    observer_keeps_receiving(&mut observer, 15).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_is_closed_1009() {
    let (server, mut observer, id) = setup().await;
    let mut bad = join(&server, "bigmouth", Some(id)).await;
    bad.tx
        .send_frame(Frame::binary(Payload::Owned(vec![
            0;
            MAX_CLIENT_MESSAGE_BYTES
                + 1
        ])))
        .await
        .expect("send");
    let (code, reason) = bad.expect_close().await;
    assert_eq!(code, close_code::TOO_BIG);
    assert!(reason.contains("larger than"), "{reason}");
    observer_keeps_receiving(&mut observer, 15).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_at_the_limit_is_accepted() {
    let (server, _observer, id) = setup().await;
    let mut p = join(&server, "padder", Some(id)).await;
    // A valid Input message is small; pad a Ping up to the limit: bincode rejects the
    // trailing bytes (1002), which proves the frame itself passed the size check.
    let mut bytes = skirmish_shared::protocol::encode(&ClientMessage::Ping { client_time_us: 1 });
    bytes.resize(MAX_CLIENT_MESSAGE_BYTES, 0);
    p.tx.send_frame(Frame::binary(Payload::Owned(bytes)))
        .await
        .expect("send");
    let (code, _) = p.expect_close().await;
    assert_eq!(
        code,
        close_code::PROTOCOL_ERROR,
        "not 1009: the limit is inclusive"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_input_flood_is_closed_1008_and_counted() {
    let (server, mut observer, id) = setup().await;
    let mut bad = join(&server, "flooder", Some(id)).await;
    let flooder = tokio::spawn(async move {
        let mut seq = 1u32;
        // Far more inputs than ticks; stop when the server closes us.
        for _ in 0..20_000 {
            let frame = InputFrame {
                seq: Seq(seq),
                mv: MoveVec::default(),
                aim: QAngle::new(0),
                buttons: 0,
                view_tick: Default::default(),
            };
            seq += 1;
            if bad
                .tx
                .send(&ClientMessage::Input {
                    frames: vec![frame],
                })
                .await
                .is_err()
            {
                break;
            }
            if seq.is_multiple_of(64) {
                tokio::task::yield_now().await;
            }
        }
        bad
    });
    let mut bad = flooder.await.expect("flooder");
    let (code, reason) = bad.expect_close().await;
    assert_eq!(code, close_code::POLICY);
    assert!(reason.contains("flood"), "{reason}");
    assert!(server.stats.inputs_dropped.get() > 30);
    observer_keeps_receiving(&mut observer, 15).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abrupt_disconnect_removes_the_player_and_the_match_goes_on() {
    let (server, mut observer, id) = setup().await;
    let gone = join(&server, "dropper", Some(id)).await;
    let gone_id = gone.id;
    assert_eq!(player_count(&mut observer).await, 2);
    drop(gone); // TCP closes without a close frame
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while observer.next_world().await.player(gone_id).is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "player still in the world"
        );
    }
    observer_keeps_receiving(&mut observer, 15).await;
    let (_, body) = http(&server, "GET", "/api/matches").await;
    assert!(body.contains("\"players\":1"), "{body}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_is_echoed_and_invalid_close_gets_1002() {
    let (server, mut observer, id) = setup().await;
    let mut polite = join(&server, "polite", Some(id)).await;
    polite
        .tx
        .close(close_code::NORMAL, "bye")
        .await
        .expect("close");
    assert_eq!(polite.expect_close().await.0, close_code::NORMAL);

    let mut rude = join(&server, "rude", Some(id)).await;
    // 1005 must never be sent on the wire.
    rude.tx
        .send_frame(Frame::close_raw(Payload::Owned(vec![0x03, 0xED])))
        .await
        .expect("send");
    assert_eq!(rude.expect_close().await.0, close_code::PROTOCOL_ERROR);

    let mut long = join(&server, "long", Some(id)).await;
    // A reason that is not UTF-8.
    long.tx
        .send_frame(Frame::close_raw(Payload::Owned(vec![
            0x03, 0xE8, 0xC3, 0x28,
        ])))
        .await
        .expect("send");
    assert_eq!(long.expect_close().await.0, close_code::PROTOCOL_ERROR);
    observer_keeps_receiving(&mut observer, 15).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_closes_clients_with_1001() {
    let (server, mut observer, _) = setup().await;
    let shutdown = tokio::spawn(server.shutdown());
    let (code, reason) = observer.expect_close().await;
    assert_eq!(code, close_code::GOING_AWAY);
    assert!(reason.contains("shutting down"), "{reason}");
    // Answer the close so the server's handshake completes.
    let _ = observer.tx.close(code, "").await;
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown in time")
        .expect("task")
        .expect("clean");
}
