//! Unit tests of the frame codec: round trips, limits, malformed input.

use super::*;

fn header(kind: FrameKind) -> Header {
    Header {
        kind,
        to: WirePid {
            id: 0x0102_0304_0506_0708,
            creation: 0x0a0b_0c0d,
        },
        from: u64::MAX,
        correlation: 42,
    }
}

#[test]
fn kind_codes_are_stable_and_round_trip() {
    assert_eq!(FrameKind::Cast.code(), 1);
    assert_eq!(FrameKind::Down.code(), 13);
    assert_eq!(FrameKind::Heartbeat.code(), 15);
    assert_eq!(FrameKind::Handshake.code(), 16);
    assert_eq!(FrameKind::EventUnsubscribe.code(), 20);
    for (i, kind) in FrameKind::ALL.iter().enumerate() {
        assert_eq!(
            usize::from(kind.code()),
            i + 1,
            "{kind:?} out of order in ALL"
        );
        assert_eq!(FrameKind::from_code(kind.code()), Some(*kind));
    }
    assert_eq!(FrameKind::from_code(0), None);
    assert_eq!(FrameKind::Goodbye.code(), 22);
    assert_eq!(FrameKind::Attach.code(), 23);
    assert_eq!(FrameKind::from_code(24), None);
    assert_eq!(FrameKind::from_code(255), None);
}

#[test]
fn header_layout_is_big_endian_and_29_bytes() {
    let mut buf = BytesMut::new();
    header(FrameKind::Call).encode(&mut buf);
    assert_eq!(buf.len(), HEADER_LEN);
    assert_eq!(
        &buf[..],
        &[
            2, // kind
            1, 2, 3, 4, 5, 6, 7, 8, // to.id
            0x0a, 0x0b, 0x0c, 0x0d, // to.creation
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // from
            0, 0, 0, 0, 0, 0, 0, 42, // correlation
        ][..]
    );
    assert_eq!(Header::decode(&buf).unwrap(), header(FrameKind::Call));
}

#[test]
fn a_frame_arrives_only_when_whole() {
    let codec = FrameCodec::new();
    let mut encoded = BytesMut::new();
    codec
        .encode_frame(&header(FrameKind::Cast), b"hello", &mut encoded)
        .unwrap();
    assert_eq!(encoded.len(), LEN_PREFIX + HEADER_LEN + 5);
    let mut src = BytesMut::new();
    for (i, byte) in encoded.iter().enumerate() {
        assert!(
            codec.decode_frame(&mut src).unwrap().is_none(),
            "early at {i}"
        );
        src.put_u8(*byte);
    }
    let frame = codec.decode_frame(&mut src).unwrap().unwrap();
    assert_eq!(frame.header, header(FrameKind::Cast));
    assert_eq!(&frame.payload[..], b"hello");
    assert!(src.is_empty());
}

#[test]
fn a_declared_gibibyte_is_refused_before_allocating() {
    let mut codec = FrameCodec::new();
    let mut src = BytesMut::with_capacity(64);
    src.put_u32(1 << 30);
    src.put_u8(FrameKind::Cast.code());
    let err = codec.decode(&mut src).unwrap_err();
    assert!(
        matches!(err, FrameError::TooLarge { len, max } if len == 1 << 30 && max == DEFAULT_MAX_FRAME_LEN),
        "{err:?}"
    );
    assert!(src.capacity() <= 64, "capacity grew to {}", src.capacity());
}

#[test]
fn waiting_reserves_at_most_the_declared_length() {
    let codec = FrameCodec::with_max_frame_len(1000);
    let mut src = BytesMut::new();
    src.put_u32(1000);
    assert!(codec.decode_frame(&mut src).unwrap().is_none());
    assert!(src.capacity() >= LEN_PREFIX + 1000);
    assert!(src.capacity() < 4096, "reserved {}", src.capacity());
}

#[test]
fn short_lengths_and_unknown_kinds_are_refused() {
    let codec = FrameCodec::new();
    let mut src = BytesMut::from(&[0, 0, 0, 28][..]);
    assert!(matches!(
        codec.decode_frame(&mut src),
        Err(FrameError::Truncated { len: 28 })
    ));
    // The kind is checked as soon as its byte arrives, before the rest of the frame.
    let mut src = BytesMut::from(&[0, 0, 0, 29, 0][..]);
    assert!(matches!(
        codec.decode_frame(&mut src),
        Err(FrameError::UnknownKind(0))
    ));
    let mut src = BytesMut::from(&[0, 0, 0, 29, 200][..]);
    assert!(matches!(
        codec.decode_frame(&mut src),
        Err(FrameError::UnknownKind(200))
    ));
    assert!(matches!(
        Header::decode(&[1; 10]),
        Err(FrameError::Truncated { len: 10 })
    ));
}

#[test]
fn eof_inside_a_frame_is_an_error_and_at_a_boundary_is_not() {
    let mut codec = FrameCodec::new();
    let mut src = BytesMut::new();
    assert!(codec.decode_eof(&mut src).unwrap().is_none());
    codec
        .encode_frame(&Header::control(FrameKind::Heartbeat), &[], &mut src)
        .unwrap();
    src.truncate(10);
    assert!(matches!(
        codec.decode_eof(&mut src),
        Err(FrameError::UnexpectedEof { buffered: 10 })
    ));
}

#[test]
fn encoding_above_the_maximum_leaves_the_buffer_unchanged() {
    let codec = FrameCodec::with_max_frame_len(HEADER_LEN + 3);
    let mut dst = BytesMut::from(&b"before"[..]);
    let h = Header::control(FrameKind::Heartbeat);
    assert!(codec.encode_frame(&h, b"abc", &mut dst).is_ok());
    let len = dst.len();
    assert!(matches!(
        codec.encode_frame(&h, b"abcd", &mut dst),
        Err(FrameError::TooLarge { len: 33, max: 32 })
    ));
    let res: Result<(), FrameError> = codec.encode_frame_with(&h, &mut dst, |w| {
        w.put_slice(b"abcd");
        Ok(())
    });
    assert!(matches!(res, Err(FrameError::TooLarge { len: 33, .. })));
    let res: Result<(), FrameError> = codec.encode_frame_with(&h, &mut dst, |w| {
        w.put_slice(b"ab");
        Err(FrameError::UnknownKind(9))
    });
    assert!(matches!(res, Err(FrameError::UnknownKind(9))));
    assert_eq!(dst.len(), len);
    assert_eq!(&dst[..6], b"before");
}

#[test]
fn encode_with_matches_encode() {
    let codec = FrameCodec::new();
    let h = header(FrameKind::Reply);
    let mut a = BytesMut::new();
    codec.encode_frame(&h, b"the payload", &mut a).unwrap();
    let mut b = BytesMut::new();
    codec
        .encode_frame_with::<FrameError, _>(&h, &mut b, |w| {
            assert!(w.is_empty());
            w.reserve(11);
            w.put_slice(b"the ");
            w.put_slice(b"payload");
            assert_eq!(w.len(), 11);
            Ok(())
        })
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn the_maximum_is_clamped_to_what_the_prefix_can_say() {
    assert_eq!(
        FrameCodec::with_max_frame_len(0).max_frame_len(),
        HEADER_LEN
    );
    let mut codec = FrameCodec::new();
    codec.set_max_frame_len(usize::MAX);
    assert_eq!(codec.max_frame_len(), u32::MAX as usize);
    assert_eq!(FrameCodec::default(), FrameCodec::new());
}

#[test]
fn wire_pid_drops_the_node() {
    let pid = Pid::new(crate::pid::NodeAtom::intern("wire@h"), 5, 9);
    assert_eq!(WirePid::from(pid), WirePid { id: 5, creation: 9 });
    assert_eq!(WirePid::from(pid).to_string(), "<peer.5.9>");
}
