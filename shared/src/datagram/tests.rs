use super::*;

const SERVER_KEY: Key = [7; 32];

fn claims(expires_at: u64) -> Claims {
    Claims {
        match_id: 3,
        seat: 5,
        name: "alice".into(),
        instance: 99,
        expires_at,
        client_to_server: [1; 32],
        server_to_client: [2; 32],
    }
}

#[test]
fn a_good_token_opens_on_the_server_with_its_claims() {
    let token = ConnectToken::seal(&SERVER_KEY, &claims(1000), [9; 24]);
    assert_eq!(token.sealed.len(), SEALED_TOKEN_BYTES);
    let packet = request(&token);
    assert_eq!(packet.len(), REQUEST_BYTES);
    assert_eq!(open_request(&SERVER_KEY, &packet, 999), Ok(claims(1000)));
}

#[test]
fn a_token_survives_its_text_form() {
    let token = ConnectToken::seal(&SERVER_KEY, &claims(1000), [9; 24]);
    assert_eq!(ConnectToken::from_text(&token.to_text()), Ok(token));
    assert_eq!(
        ConnectToken::from_text("not base64!"),
        Err(DatagramError::Malformed)
    );
}

#[test]
fn expired_forged_and_tampered_tokens_are_refused() {
    let token = ConnectToken::seal(&SERVER_KEY, &claims(1000), [9; 24]);
    let packet = request(&token);
    assert_eq!(
        open_request(&SERVER_KEY, &packet, 1000),
        Err(DatagramError::Expired)
    );
    // Sealed with another key: forged.
    assert_eq!(
        open_request(&[8; 32], &packet, 1),
        Err(DatagramError::Forged)
    );
    // A client moving its expiry forward breaks the seal (the expiry is associated data).
    let mut later = packet.clone();
    later[1..9].copy_from_slice(&5000u64.to_le_bytes());
    assert_eq!(
        open_request(&SERVER_KEY, &later, 1),
        Err(DatagramError::Forged)
    );
    // Any flipped byte of the sealed part.
    let mut flipped = packet.clone();
    flipped[100] ^= 1;
    assert_eq!(
        open_request(&SERVER_KEY, &flipped, 1),
        Err(DatagramError::Forged)
    );
    // Not the request size: dropped unread.
    assert_eq!(
        open_request(&SERVER_KEY, &packet[..REQUEST_BYTES - 1], 1),
        Err(DatagramError::Malformed)
    );
}

#[test]
fn packets_authenticate_in_their_direction_only_and_replays_are_dropped() {
    let c = claims(1000);
    let mut client_out = Sealer::new(&c.client_to_server);
    let mut server_in = Opener::new(&c.client_to_server);
    let mut wrong_direction = Opener::new(&c.server_to_client);
    let p1 = client_out.seal(Kind::Payload, b"input 1");
    let p2 = client_out.seal(Kind::Payload, b"input 2");
    assert_eq!(wrong_direction.open(&p1), Err(DatagramError::Forged));
    assert_eq!(
        server_in.open(&p2),
        Ok((Kind::Payload, 1, b"input 2".to_vec()))
    );
    assert_eq!(
        server_in.open(&p1),
        Ok((Kind::Payload, 0, b"input 1".to_vec())),
        "reordered is fine"
    );
    assert_eq!(server_in.open(&p1), Err(DatagramError::Replayed));
    let mut tampered = client_out.seal(Kind::Payload, b"input 3");
    let last = tampered.len() - 1;
    tampered[last] ^= 0x80;
    assert_eq!(server_in.open(&tampered), Err(DatagramError::Forged));
    // The kind is authenticated too.
    let mut rekind = client_out.seal(Kind::Payload, b"x");
    rekind[0] = (rekind[0] & !0x07) | Kind::Disconnect as u8;
    assert_eq!(server_in.open(&rekind), Err(DatagramError::Forged));
}

#[test]
fn the_replay_window_slides() {
    let mut w = ReplayWindow::default();
    for s in [0, 1, 2, 5, 300] {
        assert!(w.fresh(s));
        w.mark(s);
        assert!(!w.fresh(s));
    }
    assert!(!w.fresh(300 - REPLAY_WINDOW), "older than the window");
    assert!(w.fresh(299));
    assert!(w.fresh(100), "inside the window, never seen");
    w.mark(100);
    assert!(!w.fresh(100));
    w.mark(1000);
    assert!(!w.fresh(300), "slid out");
    assert!(w.fresh(999));
}

#[test]
fn a_wrong_version_is_told_apart() {
    let mut p = Sealer::new(&[1; 32]).seal(Kind::Payload, b"x");
    p[0] = (3 << 6) | 3;
    assert_eq!(kind(&p), Err(DatagramError::Version(3)));
}

#[test]
fn sequence_numbers_take_as_few_bytes_as_they_need() {
    let key = [4; 32];
    let mut sealer = Sealer::new(&key);
    let mut opener = Opener::new(&key);
    let first = sealer.seal(Kind::Payload, b"hello");
    assert_eq!(
        first.len(),
        1 + 1 + 5 + 16,
        "prefix, one sequence byte, payload, tag"
    );
    for _ in 1..300 {
        let p = sealer.seal(Kind::Payload, b"hello");
        assert!(opener.open(&p).is_ok());
    }
    let later = sealer.seal(Kind::Payload, b"hello");
    assert_eq!(later.len(), 1 + 2 + 5 + 16, "seq 300 takes two bytes");
    assert_eq!(
        opener.open(&later).map(|(_, seq, b)| (seq, b)),
        Ok((300, b"hello".to_vec()))
    );
    // The length bits are authenticated: changing them breaks the packet.
    let mut bent = sealer.seal(Kind::Payload, b"hello");
    bent[0] ^= 1 << 3;
    assert!(opener.open(&bent).is_err());
}

#[test]
fn the_handshake_seats_the_token_holder_and_its_packets_flow_both_ways() {
    let mut server: Handshake<&str> = Handshake::new(SERVER_KEY);
    let token = ConnectToken::seal(&SERVER_KEY, &claims(1000), [4; 24]);
    let mut client = ClientHandshake::new(token);
    let req = client.request();
    let Step::Reply(challenge) = server.on_packet(&"1.2.3.4:5", &req, 10, [0xAB; 8]) else {
        panic!("a challenge");
    };
    assert!(
        challenge.len() < req.len() / 4,
        "no amplification: {} bytes",
        challenge.len()
    );
    let response = client
        .on_challenge(&challenge)
        .expect("readable by the token holder");
    let Step::Connected(mut session) = server.on_packet(&"1.2.3.4:5", &response, 11, [0; 8]) else {
        panic!("connected");
    };
    assert_eq!(session.claims.seat, 5);
    assert_eq!(server.pending(), 0);
    let (mut up, mut down) = client.into_session();
    let p = up.seal(Kind::Payload, b"inputs");
    assert_eq!(
        session.from_client.open(&p).map(|(_, _, b)| b),
        Ok(b"inputs".to_vec())
    );
    let s = session.to_client.seal(Kind::Payload, b"snapshot");
    assert_eq!(down.open(&s).map(|(_, _, b)| b), Ok(b"snapshot".to_vec()));
}

#[test]
fn a_spoofed_source_cannot_complete_and_a_token_works_from_one_address() {
    let mut server: Handshake<&str> = Handshake::new(SERVER_KEY);
    let token = ConnectToken::seal(&SERVER_KEY, &claims(1000), [5; 24]);
    let req = request(&token);
    // The attacker sends the request with the victim's address: the challenge goes to the
    // victim; the attacker, not seeing it, cannot echo its cookie.
    let Step::Reply(_) = server.on_packet(&"victim:1", &req, 10, [0x11; 8]) else {
        panic!("a challenge to the victim");
    };
    let mut guess = Sealer::new(&token.client_to_server);
    let forged = guess.seal(Kind::Response, &[0; 8]);
    assert!(matches!(
        server.on_packet(&"victim:1", &forged, 10, [0; 8]),
        Step::Drop(DatagramError::Forged)
    ));
    // The same token from another address: refused.
    assert!(matches!(
        server.on_packet(&"other:2", &req, 10, [0x22; 8]),
        Step::Drop(DatagramError::Replayed)
    ));
    // A request that does not open gets no reply at all.
    let mut junk = req.clone();
    junk[500] ^= 1;
    assert!(matches!(
        server.on_packet(&"x:3", &junk, 10, [0; 8]),
        Step::Drop(DatagramError::Forged)
    ));
    // Challenges expire.
    let _ = server.on_packet(&"late:4", &[0; 3], 10 + CHALLENGE_TIMEOUT_S, [0; 8]);
    assert_eq!(server.pending(), 0);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes never open and never panic, as a request or as a packet.
        #[test]
        fn garbage_is_refused(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
            prop_assert!(open_request(&SERVER_KEY, &bytes, 1).is_err());
            prop_assert!(Opener::new(&[1; 32]).open(&bytes).is_err());
        }

        /// The window agrees with a set of the last REPLAY_WINDOW numbers seen.
        #[test]
        fn the_window_matches_a_model(seqs in proptest::collection::vec(0u64..600, 1..200)) {
            let mut w = ReplayWindow::default();
            let mut seen = std::collections::BTreeSet::new();
            let mut top = 0u64;
            for s in seqs {
                let model_fresh = !seen.contains(&s) && (s >= top || top - 1 - s < REPLAY_WINDOW);
                prop_assert_eq!(w.fresh(s), model_fresh, "seq {}", s);
                if model_fresh {
                    w.mark(s);
                    seen.insert(s);
                    top = top.max(s + 1);
                }
            }
        }
    }
}
