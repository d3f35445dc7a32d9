use super::*;

use bytes::BufMut;
use tokio::io::{duplex, DuplexStream};

fn config(name: &str, creation: u32, cookie: &str) -> HandshakeConfig {
    HandshakeConfig::new(name, creation, cookie).unwrap()
}

fn encode(msg: &Message) -> BytesMut {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf);
    buf
}

/// Moves the next queued message of `from` into `to`.
fn relay(from: &mut Handshake, to: &mut Handshake) -> Result<Status, HandshakeError> {
    let msg = from.next_outgoing().expect("a queued message");
    to.receive(&encode(&msg))
}

fn pair(a_cookie: &str, b_cookie: &str) -> (Handshake, Handshake) {
    let a = Handshake::new(Role::Initiator, &config("a@h", 1, a_cookie)).unwrap();
    let b = Handshake::new(Role::Acceptor, &config("b@h", 2, b_cookie)).unwrap();
    (a, b)
}

// ---- the state machine ----

#[test]
fn both_sides_authenticate_with_the_same_cookie() {
    let cfg_a = config("a@h", 1, "cookie").flags(Flags::from_bits(0b1011));
    let cfg_b = config("b@h", 2, "cookie").flags(Flags::from_bits(0b0110));
    let mut a = Handshake::new(Role::Initiator, &cfg_a).unwrap();
    let mut b = Handshake::new(Role::Acceptor, &cfg_b).unwrap();
    assert!(b.next_outgoing().is_none(), "the acceptor waits for Hello");
    assert_eq!(relay(&mut a, &mut b).unwrap(), Status::InProgress);
    assert_eq!(relay(&mut b, &mut a).unwrap(), Status::InProgress);
    let Status::Authenticated(a_seen_by_b) = relay(&mut a, &mut b).unwrap() else {
        panic!("b not authenticated")
    };
    let Status::Authenticated(b_seen_by_a) = relay(&mut b, &mut a).unwrap() else {
        panic!("a not authenticated")
    };
    let expect = |name: &str, creation| Peer {
        name: name.into(),
        creation,
        version: PROTOCOL_VERSION,
        flags: Flags::from_bits(0b0010),
    };
    assert_eq!(a_seen_by_b, expect("a@h", 1));
    assert_eq!(b_seen_by_a, expect("b@h", 2));
    assert!(a.is_over() && b.is_over());
    assert!(a.next_outgoing().is_none() && b.next_outgoing().is_none());
}

#[test]
fn a_wrong_cookie_fails_on_both_sides_with_bad_cookie() {
    let (mut a, mut b) = pair("cookie", "other cookie");
    relay(&mut a, &mut b).unwrap();
    relay(&mut b, &mut a).unwrap();
    assert!(matches!(
        relay(&mut a, &mut b),
        Err(HandshakeError::BadCookie)
    ));
    // The acceptor proves nothing to a side that failed to prove the cookie: it only rejects.
    let reject = b.next_outgoing().unwrap();
    assert_eq!(reject, Message::Reject(RejectReason::BadCookie));
    assert!(b.next_outgoing().is_none());
    assert!(matches!(
        a.receive(&encode(&reject)),
        Err(HandshakeError::BadCookie)
    ));
    assert!(a.is_over() && b.is_over());
}

#[test]
fn an_acceptor_with_the_wrong_cookie_cannot_fake_its_proof() {
    // The impostor skips checking the initiator's proof and answers with one of its own cookie.
    let (mut a, mut impostor) = pair("cookie", "guess");
    relay(&mut a, &mut impostor).unwrap();
    relay(&mut impostor, &mut a).unwrap();
    let _proof_a = a.next_outgoing().unwrap();
    let State::AwaitInitiatorProof { transcript, .. } = &impostor.state else {
        panic!("impostor waits for a proof")
    };
    let forged = Cookie::new(b"guess")
        .unwrap()
        .mac(ACCEPTOR_LABEL, transcript)
        .finalize()
        .into_bytes()
        .into();
    assert!(matches!(
        a.receive(&encode(&Message::Proof { mac: forged })),
        Err(HandshakeError::BadCookie)
    ));
}

#[test]
fn a_replayed_proof_fails_against_a_fresh_nonce() {
    // Record a genuine exchange.
    let (mut a, mut b) = pair("cookie", "cookie");
    let hello = a.next_outgoing().unwrap();
    b.receive(&encode(&hello)).unwrap();
    let challenge = b.next_outgoing().unwrap();
    a.receive(&encode(&challenge)).unwrap();
    let proof_a = a.next_outgoing().unwrap();
    assert!(matches!(
        b.receive(&encode(&proof_a)),
        Ok(Status::Authenticated(_))
    ));
    let proof_b = b.next_outgoing().unwrap();

    // An eavesdropper replays a's Hello and proof to the same node: its new nonce defeats it.
    let mut b2 = Handshake::new(Role::Acceptor, &config("b@h", 2, "cookie")).unwrap();
    b2.receive(&encode(&hello)).unwrap();
    assert_ne!(b2.next_outgoing().unwrap(), challenge, "fresh nonce");
    assert!(matches!(
        b2.receive(&encode(&proof_a)),
        Err(HandshakeError::BadCookie)
    ));

    // The same with a Hello of its own (another nonce), and the captured proof.
    let mut b3 = Handshake::new(Role::Acceptor, &config("b@h", 2, "cookie")).unwrap();
    let mut attacker = Handshake::with_nonce(Role::Initiator, &config("a@h", 1, "?"), [1; 32]);
    relay(&mut attacker, &mut b3).unwrap();
    assert!(matches!(
        b3.receive(&encode(&proof_a)),
        Err(HandshakeError::BadCookie)
    ));

    // And an impostor acceptor replaying b's old proof to a new initiator.
    let mut a2 = Handshake::new(Role::Initiator, &config("a@h", 1, "cookie")).unwrap();
    let _hello2 = a2.next_outgoing().unwrap();
    a2.receive(&encode(&challenge)).unwrap();
    assert!(matches!(
        a2.receive(&encode(&proof_b)),
        Err(HandshakeError::BadCookie)
    ));
}

#[test]
fn a_proof_cannot_be_reflected_to_its_sender() {
    // An acceptor that echoes the initiator's own proof back fails: the labels differ.
    let (mut a, mut b) = pair("cookie", "cookie");
    relay(&mut a, &mut b).unwrap();
    relay(&mut b, &mut a).unwrap();
    let proof_a = a.next_outgoing().unwrap();
    assert!(matches!(
        a.receive(&encode(&proof_a)),
        Err(HandshakeError::BadCookie)
    ));
}

#[test]
fn a_challenge_changed_in_transit_fails_the_proofs() {
    let (mut a, mut b) = pair("cookie", "cookie");
    relay(&mut a, &mut b).unwrap();
    let Message::Challenge {
        version,
        flags,
        nonce,
        name,
        ..
    } = b.next_outgoing().unwrap()
    else {
        panic!("a challenge")
    };
    let tampered = Message::Challenge {
        version,
        flags,
        creation: 99,
        nonce,
        name,
    };
    a.receive(&encode(&tampered)).unwrap();
    assert!(matches!(
        relay(&mut a, &mut b),
        Err(HandshakeError::BadCookie)
    ));
}

#[test]
fn no_common_version_fails_on_both_sides() {
    let mut newer = config("b@h", 2, "cookie");
    newer.versions = 2..=3;
    let mut a = Handshake::new(Role::Initiator, &config("a@h", 1, "cookie")).unwrap();
    let mut b = Handshake::new(Role::Acceptor, &newer).unwrap();
    let err = relay(&mut a, &mut b).unwrap_err();
    assert!(
        matches!(&err, HandshakeError::VersionMismatch { ours, theirs } if *ours == (2..=3) && *theirs == (1..=1)),
        "{err:?}"
    );
    let err = relay(&mut b, &mut a).unwrap_err();
    assert!(
        matches!(&err, HandshakeError::VersionMismatch { ours, theirs } if *ours == (1..=1) && *theirs == (2..=3)),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "no common protocol version: we speak 1..=1, the peer 2..=3"
    );
}

#[test]
fn the_acceptor_picks_the_highest_common_version() {
    let mut a_cfg = config("a@h", 1, "cookie");
    a_cfg.versions = 1..=4;
    let mut b_cfg = config("b@h", 2, "cookie");
    b_cfg.versions = 2..=3;
    let mut a = Handshake::new(Role::Initiator, &a_cfg).unwrap();
    let mut b = Handshake::new(Role::Acceptor, &b_cfg).unwrap();
    relay(&mut a, &mut b).unwrap();
    relay(&mut b, &mut a).unwrap();
    let Ok(Status::Authenticated(peer)) = relay(&mut a, &mut b) else {
        panic!("not authenticated")
    };
    assert_eq!(peer.version, 3);
}

#[test]
fn a_challenge_with_a_version_we_do_not_speak_is_refused() {
    let mut a = Handshake::new(Role::Initiator, &config("a@h", 1, "cookie")).unwrap();
    let _ = a.next_outgoing();
    let challenge = Message::Challenge {
        version: 9,
        flags: Flags::EMPTY,
        creation: 1,
        nonce: [0; NONCE_LEN],
        name: "b@h".into(),
    };
    assert!(matches!(
        a.receive(&encode(&challenge)),
        Err(HandshakeError::VersionMismatch { .. })
    ));
    assert_eq!(
        a.next_outgoing(),
        Some(Message::Reject(RejectReason::VersionMismatch {
            min: 1,
            max: 1
        }))
    );
}

#[test]
fn messages_out_of_order_are_malformed_and_rejected() {
    let (mut a, mut b) = pair("cookie", "cookie");
    // An acceptor receiving a Proof first.
    let proof = Message::Proof { mac: [0; MAC_LEN] };
    let err = b.receive(&encode(&proof)).unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::Malformed(Malformed::UnexpectedMessage {
                got: "Proof",
                expected: "Hello"
            })
        ),
        "{err:?}"
    );
    assert_eq!(
        b.next_outgoing(),
        Some(Message::Reject(RejectReason::Malformed))
    );
    // Over now: anything else fails too, without further replies.
    assert!(matches!(
        b.receive(&encode(&a.next_outgoing().unwrap())),
        Err(HandshakeError::Malformed(
            Malformed::UnexpectedMessage { .. }
        ))
    ));
    assert!(b.next_outgoing().is_none());
    // The initiator learns why.
    assert!(matches!(
        a.receive(&encode(&Message::Reject(RejectReason::Malformed))),
        Err(HandshakeError::Malformed(Malformed::RejectedByPeer))
    ));
}

#[test]
fn garbage_payloads_are_malformed() {
    let (_, mut b) = pair("cookie", "cookie");
    assert!(matches!(
        b.receive(b""),
        Err(HandshakeError::Malformed(Malformed::BadMessage { .. }))
    ));
    let (_, mut b) = pair("cookie", "cookie");
    assert!(matches!(
        b.receive(b"GET / HTTP/1.1\r\n"),
        Err(HandshakeError::Malformed(Malformed::UnknownMessage(b'G')))
    ));
    assert_eq!(
        b.next_outgoing(),
        Some(Message::Reject(RejectReason::Malformed))
    );
}

#[test]
fn messages_round_trip_and_bad_encodings_are_refused() {
    let hello = Message::Hello {
        min_version: 1,
        max_version: 2,
        flags: Flags::from_bits(u64::MAX),
        creation: 77,
        nonce: [3; NONCE_LEN],
        name: "ä@höst".into(),
    };
    let msgs = [
        hello.clone(),
        Message::Challenge {
            version: 1,
            flags: Flags::EMPTY,
            creation: 0,
            nonce: [4; NONCE_LEN],
            name: "n".repeat(MAX_NAME_LEN),
        },
        Message::Proof { mac: [5; MAC_LEN] },
        Message::Reject(RejectReason::BadCookie),
        Message::Reject(RejectReason::VersionMismatch { min: 3, max: 8 }),
        Message::Reject(RejectReason::Malformed),
    ];
    for msg in &msgs {
        let buf = encode(msg);
        assert_eq!(&Message::decode(&buf).unwrap(), msg);
        // Every prefix is refused, none panics.
        for cut in 0..buf.len() {
            assert!(
                Message::decode(&buf[..cut]).is_err(),
                "{msg:?} cut at {cut}"
            );
        }
        // Trailing bytes: extensions in a Hello, an error anywhere else.
        let mut longer = buf.clone();
        longer.put_u8(0);
        assert_eq!(
            Message::decode(&longer).is_ok(),
            matches!(msg, Message::Hello { .. }),
            "{msg:?}"
        );
    }
    // min > max, an empty name, a name that is not UTF-8, an unknown reject reason.
    let mut buf = encode(&hello);
    buf[1..5].copy_from_slice(&[0, 3, 0, 2]);
    assert!(matches!(
        Message::decode(&buf),
        Err(Malformed::BadMessage {
            problem: "min_version above max_version",
            ..
        })
    ));
    let mut buf = BytesMut::new();
    buf.put_u8(2); // Challenge
    buf.put_slice(&[0; 2 + 8 + 4 + NONCE_LEN]);
    buf.put_u8(0);
    assert!(matches!(
        Message::decode(&buf),
        Err(Malformed::BadMessage {
            problem: "empty node name",
            ..
        })
    ));
    buf.truncate(buf.len() - 1);
    buf.put_slice(&[2, 0xff, 0xfe]);
    assert!(matches!(
        Message::decode(&buf),
        Err(Malformed::BadMessage {
            problem: "node name is not UTF-8",
            ..
        })
    ));
    assert!(matches!(
        Message::decode(&[4, 9]), // Reject, reason 9
        Err(Malformed::BadMessage {
            problem: "unknown reason",
            ..
        })
    ));
}

#[test]
fn configuration_refuses_empty_cookies_and_bad_names() {
    assert!(matches!(
        HandshakeConfig::new("a@h", 1, ""),
        Err(HandshakeError::EmptyCookie)
    ));
    assert!(matches!(
        HandshakeConfig::new("", 1, "c"),
        Err(HandshakeError::InvalidName(_))
    ));
    assert!(matches!(
        HandshakeConfig::new("x".repeat(256), 1, "c"),
        Err(HandshakeError::InvalidName(_))
    ));
    assert!(HandshakeConfig::new("x".repeat(255), 1, "c").is_ok());
    let cfg = config("a@h", 3, "hunter2").timeout(Duration::from_millis(5));
    assert_eq!(cfg.creation(), 3);
    assert_eq!(cfg.handshake_timeout(), Duration::from_millis(5));
    let shown = format!("{cfg:?}");
    assert!(
        shown.contains("<redacted>") && !shown.contains("hunter2"),
        "{shown}"
    );
}

#[test]
fn nonces_are_fresh_per_handshake() {
    let cfg = config("a@h", 1, "cookie");
    let nonce = |hs: &mut Handshake| match hs.next_outgoing() {
        Some(Message::Hello { nonce, .. }) => nonce,
        other => panic!("{other:?}"),
    };
    let n1 = nonce(&mut Handshake::new(Role::Initiator, &cfg).unwrap());
    let n2 = nonce(&mut Handshake::new(Role::Initiator, &cfg).unwrap());
    assert_ne!(n1, n2);
    assert_ne!(n1, [0; NONCE_LEN]);
}

#[test]
fn flags_intersect_and_contain() {
    let f = Flags::from_bits(0b110);
    assert!(f.contains(Flags::from_bits(0b100)));
    assert!(!f.contains(Flags::from_bits(0b001)));
    assert_eq!(f.intersection(Flags::from_bits(0b011)).bits(), 0b010);
    assert_eq!(Flags::default(), Flags::EMPTY);
}

// ---- the async driver ----

fn configs() -> (HandshakeConfig, HandshakeConfig) {
    (config("a@h", 1, "cookie"), config("b@h", 2, "cookie"))
}

/// Writes one raw frame of `kind` with `payload` to `stream`.
async fn write_frame(stream: &mut DuplexStream, kind: FrameKind, payload: &[u8]) {
    let mut buf = BytesMut::new();
    FrameCodec::new()
        .encode_frame(&Header::control(kind), payload, &mut buf)
        .unwrap();
    stream.write_all(&buf).await.unwrap();
}

/// Reads one frame from `stream` (for tests playing a peer by hand).
async fn read_message(stream: &mut DuplexStream) -> Message {
    let mut body = BytesMut::new();
    read_frame(stream, &FrameCodec::new(), &mut body)
        .await
        .unwrap();
    Message::decode(&body[HEADER_LEN..]).unwrap()
}

#[tokio::test]
async fn two_drivers_authenticate_and_leave_the_stream_at_the_first_frame() {
    let (a_cfg, b_cfg) = configs();
    let (mut left, mut right) = duplex(4096);
    let acceptor = async {
        let peer = handshake(&mut right, Role::Acceptor, &b_cfg).await?;
        // The acceptor writes its first frame right behind its proof.
        write_frame(&mut right, FrameKind::Heartbeat, b"first").await;
        Ok::<_, HandshakeError>(peer)
    };
    let (b_seen_by_a, a_seen_by_b) =
        tokio::try_join!(handshake(&mut left, Role::Initiator, &a_cfg), acceptor).unwrap();
    assert_eq!(
        (b_seen_by_a.name.as_str(), b_seen_by_a.creation),
        ("b@h", 2)
    );
    assert_eq!(
        (a_seen_by_b.name.as_str(), a_seen_by_b.creation),
        ("a@h", 1)
    );
    let mut inbox = BytesMut::new();
    let frame = loop {
        if let Some(frame) = FrameCodec::new().decode_frame(&mut inbox).unwrap() {
            break frame;
        }
        assert_ne!(left.read_buf(&mut inbox).await.unwrap(), 0);
    };
    assert_eq!(frame.header.kind, FrameKind::Heartbeat);
    assert_eq!(&frame.payload[..], b"first");
}

#[tokio::test]
async fn drivers_with_different_cookies_both_fail_with_bad_cookie() {
    let a_cfg = config("a@h", 1, "cookie");
    let b_cfg = config("b@h", 2, "another");
    let (mut left, mut right) = duplex(4096);
    let (a, b) = tokio::join!(
        handshake(&mut left, Role::Initiator, &a_cfg),
        handshake(&mut right, Role::Acceptor, &b_cfg),
    );
    assert!(matches!(a, Err(HandshakeError::BadCookie)), "{a:?}");
    assert!(matches!(b, Err(HandshakeError::BadCookie)), "{b:?}");
}

#[tokio::test]
async fn drivers_without_a_common_version_both_fail() {
    let (a_cfg, mut b_cfg) = configs();
    b_cfg.versions = 5..=6;
    let (mut left, mut right) = duplex(4096);
    let (a, b) = tokio::join!(
        handshake(&mut left, Role::Initiator, &a_cfg),
        handshake(&mut right, Role::Acceptor, &b_cfg),
    );
    assert!(
        matches!(a, Err(HandshakeError::VersionMismatch { .. })),
        "{a:?}"
    );
    assert!(
        matches!(b, Err(HandshakeError::VersionMismatch { .. })),
        "{b:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_times_out() {
    let (_, b_cfg) = configs();
    let (_silent, mut right) = duplex(4096);
    let started = tokio::time::Instant::now();
    let res = handshake(&mut right, Role::Acceptor, &b_cfg).await;
    assert!(matches!(res, Err(HandshakeError::Timeout(d)) if d == DEFAULT_HANDSHAKE_TIMEOUT));
    assert_eq!(started.elapsed(), DEFAULT_HANDSHAKE_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_midway_times_out_at_the_configured_limit() {
    let (a_cfg, _) = configs();
    let a_cfg = a_cfg.timeout(Duration::from_millis(300));
    let (mut left, mut right) = duplex(4096);
    let peer = async {
        let _hello = read_message(&mut right).await;
        // Starts a frame, never finishes it.
        right.write_all(&[0, 0, 0, 40, 16]).await.unwrap();
        std::future::pending::<()>().await
    };
    tokio::select! {
        res = handshake(&mut left, Role::Initiator, &a_cfg) => {
            assert!(matches!(res, Err(HandshakeError::Timeout(_))), "{res:?}");
        }
        _ = peer => unreachable!(),
    }
}

#[tokio::test]
async fn garbage_bytes_are_malformed_not_a_panic() {
    let (_, b_cfg) = configs();
    // Not a frame at all: "GET " declares 1.2 GB, refused by the 64 KiB pre-auth limit.
    let (mut left, mut right) = duplex(4096);
    left.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let res = handshake(&mut right, Role::Acceptor, &b_cfg).await;
    assert!(
        matches!(
            res,
            Err(HandshakeError::Malformed(Malformed::Frame(
                FrameError::TooLarge { .. }
            )))
        ),
        "{res:?}"
    );

    // A frame, but of an ordinary kind before authentication.
    let (mut left, mut right) = duplex(4096);
    write_frame(&mut left, FrameKind::Cast, b"hi").await;
    let res = handshake(&mut right, Role::Acceptor, &b_cfg).await;
    assert!(
        matches!(
            res,
            Err(HandshakeError::Malformed(Malformed::UnexpectedKind(
                FrameKind::Cast
            )))
        ),
        "{res:?}"
    );

    // A handshake frame with junk inside: refused, and the peer is told.
    let (mut left, mut right) = duplex(4096);
    write_frame(&mut left, FrameKind::Handshake, &[0xee; 40]).await;
    let res = handshake(&mut right, Role::Acceptor, &b_cfg).await;
    assert!(
        matches!(
            res,
            Err(HandshakeError::Malformed(Malformed::UnknownMessage(0xee)))
        ),
        "{res:?}"
    );
    assert_eq!(
        read_message(&mut left).await,
        Message::Reject(RejectReason::Malformed)
    );

    // An unknown frame kind.
    let (mut left, mut right) = duplex(4096);
    let mut raw = vec![0, 0, 0, HEADER_LEN as u8, 0x99];
    raw.extend_from_slice(&[0; HEADER_LEN - 1]);
    left.write_all(&raw).await.unwrap();
    let res = handshake(&mut right, Role::Acceptor, &b_cfg).await;
    assert!(
        matches!(
            res,
            Err(HandshakeError::Malformed(Malformed::Frame(
                FrameError::UnknownKind(0x99)
            )))
        ),
        "{res:?}"
    );
}

#[tokio::test]
async fn an_oversized_pre_auth_frame_is_refused_unread() {
    let (_, b_cfg) = configs();
    let (mut left, mut right) = duplex(4096);
    let declared = HANDSHAKE_MAX_FRAME_LEN as u32 + 1;
    left.write_all(&declared.to_be_bytes()).await.unwrap();
    left.write_all(&[FrameKind::Handshake.code()])
        .await
        .unwrap();
    let res = handshake(&mut right, Role::Acceptor, &b_cfg).await;
    assert!(
        matches!(
            res,
            Err(HandshakeError::Malformed(Malformed::Frame(FrameError::TooLarge { len, max })))
                if len == declared as usize && max == HANDSHAKE_MAX_FRAME_LEN
        ),
        "{res:?}"
    );
    // A frame of exactly 64 KiB is within the limit (and then malformed as a message).
    let (mut left, mut right) = duplex(128 * 1024);
    write_frame(
        &mut left,
        FrameKind::Handshake,
        &vec![0xee; HANDSHAKE_MAX_FRAME_LEN - HEADER_LEN],
    )
    .await;
    let res = handshake(&mut right, Role::Acceptor, &b_cfg).await;
    assert!(
        matches!(
            res,
            Err(HandshakeError::Malformed(Malformed::UnknownMessage(0xee)))
        ),
        "{res:?}"
    );
}

#[tokio::test]
async fn a_peer_that_hangs_up_midway_is_reported_closed() {
    let (a_cfg, _) = configs();
    let (mut left, mut right) = duplex(4096);
    let peer = async move {
        let _hello = read_message(&mut right).await;
        drop(right);
    };
    let (res, ()) = tokio::join!(handshake(&mut left, Role::Initiator, &a_cfg), peer);
    assert!(matches!(res, Err(HandshakeError::Closed)), "{res:?}");
}

// ---- properties ----

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(crate::net::frame::proptests::config())]

        /// Whatever arrives, in whatever state: an error or progress, never a panic, and
        /// never authentication without the cookie.
        #[test]
        fn arbitrary_payloads_never_panic_nor_authenticate(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..400), 1..4),
            initiator in any::<bool>(),
            valid_hello_first in any::<bool>(),
        ) {
            let role = if initiator { Role::Initiator } else { Role::Acceptor };
            let mut hs = Handshake::new(role, &config("prop@h", 1, "cookie")).unwrap();
            if valid_hello_first && role == Role::Acceptor {
                let mut stranger =
                    Handshake::new(Role::Initiator, &config("x@h", 2, "other")).unwrap();
                relay(&mut stranger, &mut hs).unwrap();
            }
            for p in &payloads {
                let res = hs.receive(p);
                prop_assert!(!matches!(res, Ok(Status::Authenticated(_))));
                while hs.next_outgoing().is_some() {}
            }
        }
    }
}
