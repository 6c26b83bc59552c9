use super::*;
use proptest::prelude::*;
use skirmish_shared::protocol::{encode, masked_frame};
use std::time::Duration;

const M: [u8; 4] = [7, 1, 9, 3];
const HZ: u32 = 30;

fn reader(now: Instant) -> ConnReader {
    ConnReader::new(Limits::for_tick_rate(HZ), true, now)
}

fn msg(m: &ClientMessage) -> Vec<u8> {
    masked_frame(0x82, &encode(m), M)
}

fn input(seq: u32) -> Vec<u8> {
    msg(&ClientMessage::Input {
        frames: vec![InputFrame {
            seq: Seq(seq),
            ..InputFrame::default()
        }],
    })
}

/// Feeds `bytes` across ticks the way the match loop does: per tick, as much as `room`
/// allows. Returns the events and the close, if any, and how many ticks it took.
fn run(
    r: &mut ConnReader,
    bytes: &[u8],
    t0: Instant,
    tick: Duration,
) -> (Vec<Event>, Option<Close>, u32) {
    let mut out = Vec::new();
    let mut at = 0;
    let mut now = t0;
    for n in 0..10_000u32 {
        r.start_tick();
        if let Err(c) = r.resume(now, &mut out) {
            return (out, Some(c), n);
        }
        loop {
            let take = r.room().min(bytes.len() - at);
            if take == 0 {
                break;
            }
            if let Err(c) = r.feed(&bytes[at..at + take], now, &mut out) {
                return (out, Some(c), n);
            }
            at += take;
        }
        if at == bytes.len() && r.room() > 0 {
            return (out, None, n + 1);
        }
        now += tick;
    }
    panic!("never finished");
}

fn tick() -> Duration {
    Duration::from_secs(1) / HZ
}

#[test]
fn an_honest_client_at_the_tick_rate_is_never_closed() {
    let t0 = Instant::now();
    let mut r = reader(t0);
    let mut out = Vec::new();
    let mut now = t0;
    for seq in 1..=(HZ * 20) {
        r.start_tick();
        let mut bytes = input(seq);
        if seq % HZ == 0 {
            bytes.extend(msg(&ClientMessage::Ping { client_time_us: 1 }));
            bytes.extend(masked_frame(0x89, b"p", M)); // and a WebSocket ping
        }
        r.feed(&bytes, now, &mut out).expect("never closed");
        now += tick();
    }
    let inputs = out.iter().filter(|e| matches!(e, Event::Input(_))).count();
    assert_eq!(inputs, (HZ * 20) as usize);
}

#[test]
fn the_backlog_after_a_1_5_s_upload_stall_is_taken_not_closed() {
    let t0 = Instant::now();
    let mut r = reader(t0);
    // 45 inputs and a ping arrive at once.
    let mut bytes: Vec<u8> = (1..=45).flat_map(input).collect();
    bytes.extend(msg(&ClientMessage::Ping { client_time_us: 5 }));
    let (out, close, ticks) = run(&mut r, &bytes, t0 + Duration::from_millis(1500), tick());
    assert_eq!(close, None);
    assert_eq!(out.len(), 46);
    assert!(
        ticks >= 2,
        "the per-tick frame budget spreads it over ticks ({ticks})"
    );
}

#[test]
fn floods_of_every_kind_are_closed_with_1008_within_a_few_ticks() {
    let floods: [(&str, Vec<u8>); 5] = [
        ("ping frames", masked_frame(0x89, b"", M)),
        ("pong frames", masked_frame(0x8A, b"", M)),
        (
            "protocol pings",
            msg(&ClientMessage::Ping { client_time_us: 0 }),
        ),
        ("full requests", msg(&ClientMessage::RequestFull)),
        ("empty continuations", masked_frame(0x00, b"", M)),
    ];
    for (what, unit) in floods {
        let t0 = Instant::now();
        let mut r = reader(t0);
        let mut bytes = Vec::new();
        if what == "empty continuations" {
            bytes.extend(masked_frame(0x02, b"", M)); // a message that never finishes
        }
        for _ in 0..10_000 {
            bytes.extend_from_slice(&unit);
        }
        let (_, close, ticks) = run(&mut r, &bytes, t0, tick());
        let close = close.unwrap_or_else(|| panic!("{what}: never closed"));
        assert_eq!(close.code, close_code::POLICY, "{what}: {close:?}");
        assert!(ticks <= 10, "{what}: closed only after {ticks} ticks");
        assert!(r.is_closing());
    }
}

#[test]
fn many_new_inputs_per_message_are_an_input_flood() {
    let t0 = Instant::now();
    let mut r = reader(t0);
    let mut bytes = Vec::new();
    let mut seq = 0;
    for _ in 0..200 {
        let frames = (0..8)
            .map(|_| {
                seq += 1;
                InputFrame {
                    seq: Seq(seq),
                    ..InputFrame::default()
                }
            })
            .collect();
        bytes.extend(msg(&ClientMessage::Input { frames }));
    }
    // One message per tick, each with 8 new inputs: 8 per tick is 4x the sustained rate.
    let mut now = t0;
    let mut out = Vec::new();
    let mut closed = None;
    for chunk in bytes.chunks(bytes.len() / 200) {
        r.start_tick();
        if let Err(c) = r.feed(chunk, now, &mut out) {
            closed = Some(c);
            break;
        }
        now += tick();
    }
    let c = closed.expect("closed");
    assert_eq!(c.code, close_code::POLICY);
    assert!(c.reason.contains("input flood"), "{c:?}");
}

#[test]
fn redundant_inputs_are_delivered_once() {
    let t0 = Instant::now();
    let mut r = reader(t0);
    let frames = |a: u32, b: u32| ClientMessage::Input {
        frames: (a..=b)
            .map(|s| InputFrame {
                seq: Seq(s),
                ..InputFrame::default()
            })
            .collect(),
    };
    let mut out = Vec::new();
    r.feed(&msg(&frames(1, 3)), t0, &mut out).expect("ok");
    r.feed(&msg(&frames(2, 4)), t0, &mut out).expect("ok");
    let seqs: Vec<u32> = out
        .iter()
        .filter_map(|e| match e {
            Event::Input(f) => Some(f.seq.0),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
}

#[test]
fn a_new_message_inside_a_fragmented_one_is_a_protocol_error() {
    let t0 = Instant::now();
    let mut r = reader(t0);
    let mut bytes = masked_frame(0x02, b"\x01", M);
    bytes.extend(input(1));
    let err = r
        .feed(&bytes, t0, &mut Vec::new())
        .expect_err("interleaved");
    assert_eq!(err.code, close_code::PROTOCOL_ERROR);
    assert!(err.reason.contains("fragmented"), "{err:?}");
}

#[test]
fn fragments_and_control_frames_between_them_make_one_message() {
    let t0 = Instant::now();
    let mut r = reader(t0);
    let whole = encode(&ClientMessage::Ping { client_time_us: 77 });
    let (a, b) = whole.split_at(1);
    let mut bytes = masked_frame(0x02, a, M);
    bytes.extend(masked_frame(0x89, b"hi", M));
    bytes.extend(masked_frame(0x80, b, M));
    let mut out = Vec::new();
    r.feed(&bytes, t0, &mut out).expect("valid");
    assert_eq!(
        out,
        [
            Event::PingFrame(b"hi".to_vec()),
            Event::Ping { client_time_us: 77 }
        ]
    );
}

#[test]
fn close_codes_for_what_clients_get_wrong() {
    let t0 = Instant::now();
    let cases: [(&str, Vec<u8>, u16); 7] = [
        (
            "text",
            masked_frame(0x81, b"hi", M),
            close_code::UNSUPPORTED_DATA,
        ),
        (
            "garbage",
            masked_frame(0x82, &[0xFF; 9], M),
            close_code::PROTOCOL_ERROR,
        ),
        (
            "unmasked",
            vec![0x82, 0x01, 0x00],
            close_code::PROTOCOL_ERROR,
        ),
        (
            "too big",
            masked_frame(0x82, &[0; 2000], M),
            close_code::TOO_BIG,
        ),
        (
            "lone continuation",
            masked_frame(0x80, b"x", M),
            close_code::PROTOCOL_ERROR,
        ),
        (
            "bad close code",
            masked_frame(0x88, &[0x03, 0xED], M),
            close_code::PROTOCOL_ERROR,
        ),
        (
            "bad UTF-8 in chat",
            masked_frame(0x82, &[3, 2, 0xC3, 0x28], M),
            close_code::INVALID_PAYLOAD,
        ),
    ];
    for (what, bytes, code) in cases {
        let mut r = reader(t0);
        let (_, close, _) = run(&mut r, &bytes, t0, tick());
        assert_eq!(close.map(|c| c.code), Some(code), "{what}");
    }
    let mut spectator = ConnReader::new(Limits::for_tick_rate(HZ), false, t0);
    let err = spectator
        .feed(&input(1), t0, &mut Vec::new())
        .expect_err("spectators send no inputs");
    assert_eq!(err.code, close_code::POLICY);
}

#[test]
fn after_a_close_only_the_peers_close_frame_counts() {
    let t0 = Instant::now();
    let mut r = reader(t0);
    let _ = r.feed(&masked_frame(0x81, b"x", M), t0, &mut Vec::new());
    assert!(r.is_closing());
    let mut out = Vec::new();
    r.start_tick();
    let mut bytes = input(1);
    bytes.extend(masked_frame(0x88, &[0x03, 0xE8], M));
    r.feed(&bytes, t0, &mut out).expect("no second close");
    assert_eq!(out, [Event::PeerClosed { reply: 1000 }]);
}

#[test]
fn a_peer_close_is_echoed_and_1005_answered_with_1000() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    reader(t0)
        .feed(
            &masked_frame(0x88, &[0x0F, 0xA0, b'b', b'y'], M),
            t0,
            &mut out,
        )
        .expect("valid");
    reader(t0)
        .feed(&masked_frame(0x88, &[], M), t0, &mut out)
        .expect("valid");
    assert_eq!(
        out,
        [
            Event::PeerClosed { reply: 4000 },
            Event::PeerClosed { reply: 1000 }
        ]
    );
}

#[test]
fn chat_is_checked_and_rate_limited() {
    let t0 = Instant::now();
    let mut r = reader(t0);
    let chat = |t: &str| msg(&ClientMessage::Chat { text: t.into() });
    let mut out = Vec::new();
    for _ in 0..6 {
        r.feed(&chat("gg"), t0, &mut out).expect("ok");
    }
    r.feed(&chat("  "), t0, &mut out).expect("ok");
    let refused = out
        .iter()
        .filter(|e| matches!(e, Event::ChatRefused(_)))
        .count();
    assert_eq!(refused, 2, "{out:?}");
    r.feed(&chat("later"), t0 + Duration::from_secs(5), &mut out)
        .expect("ok");
    assert_eq!(out.last(), Some(&Event::Chat("later".into())));
}

#[test]
fn the_buffer_stays_bounded_whatever_arrives() {
    let t0 = Instant::now();
    let mut r = reader(t0);
    // Budget spent on frames: no more room this tick.
    let bytes: Vec<u8> = (1..=40).flat_map(input).collect();
    let mut out = Vec::new();
    r.feed(&bytes[..r.room().min(bytes.len())], t0, &mut out)
        .expect("ok");
    assert_eq!(r.room(), 0, "32 frames is the tick's budget");
    assert!(
        r.feed(b"x", t0, &mut out).is_err(),
        "more than room is refused"
    );
}

proptest! {
    /// Arbitrary bytes, fed in arbitrary pieces: no panic, the buffer never outgrows its
    /// bound, and a close, if any, carries a code a server may send.
    #[test]
    fn garbage_never_panics_and_closes_with_a_valid_code(
        bytes in proptest::collection::vec(any::<u8>(), 0..4000),
        cuts in proptest::collection::vec(1usize..300, 1..40),
    ) {
        let t0 = Instant::now();
        let mut r = reader(t0);
        let mut out = Vec::new();
        let mut at = 0;
        let mut cut = cuts.iter().cycle();
        let mut now = t0;
        while at < bytes.len() {
            r.start_tick();
            let take = r.room().min(bytes.len() - at).min(*cut.next().unwrap_or(&1));
            if take == 0 {
                now += tick();
                continue;
            }
            match r.feed(&bytes[at..at + take], now, &mut out) {
                Ok(()) => {}
                Err(c) => {
                    prop_assert!(matches!(c.code, 1002 | 1003 | 1007 | 1008 | 1009), "{:?}", c);
                    break;
                }
            }
            prop_assert!(r.buf.len() <= MAX_FRAME_BYTES.max(r.limits.bytes_per_tick));
            at += take;
            now += tick();
        }
    }

    /// Arbitrary sequences of well-formed frames of every kind: the reader ends in events
    /// or one close, never a panic.
    #[test]
    fn arbitrary_frame_sequences_are_handled(
        frames in proptest::collection::vec(
            (prop_oneof![Just(0x00u8), Just(0x02), Just(0x82), Just(0x80), Just(0x81), Just(0x88), Just(0x89), Just(0x8A)],
             proptest::collection::vec(any::<u8>(), 0..40)),
            0..60),
    ) {
        let t0 = Instant::now();
        let mut r = reader(t0);
        let bytes: Vec<u8> = frames.iter().flat_map(|(b0, p)| masked_frame(*b0, p, M)).collect();
        let (out, close, _) = run(&mut r, &bytes, t0, tick());
        if let Some(c) = close {
            prop_assert!(matches!(c.code, 1002 | 1003 | 1007 | 1008 | 1009), "{:?}", c);
        }
        prop_assert!(out.len() <= frames.len() * protocol::MAX_INPUTS_PER_MESSAGE);
    }
}
