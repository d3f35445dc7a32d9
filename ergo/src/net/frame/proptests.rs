//! Properties of the frame codec, through its `tokio_util` `Decoder` impl.
//!
//! `PROPTEST_CASES` sets the number of cases of each property (256 by default).

use proptest::prelude::*;

use super::*;

pub(crate) fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn header() -> impl Strategy<Value = Header> {
    (
        proptest::sample::select(FrameKind::ALL.to_vec()),
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(kind, id, creation, from, correlation)| Header {
            kind,
            to: WirePid { id, creation },
            from,
            correlation,
        })
}

fn frames() -> impl Strategy<Value = Vec<Frame>> {
    let frame =
        (header(), proptest::collection::vec(any::<u8>(), 0..600)).prop_map(|(header, payload)| {
            Frame {
                header,
                payload: Bytes::from(payload),
            }
        });
    proptest::collection::vec(frame, 1..8)
}

/// Feeds `stream` to the decoder in chunks ending at `cuts` (sorted offsets), as a socket
/// would deliver it, collecting frames until the stream ends or the decoder fails.
fn decode_in_chunks(
    codec: &mut FrameCodec,
    stream: &[u8],
    cuts: &[usize],
) -> Result<Vec<Frame>, FrameError> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        let cut = cut.clamp(at, stream.len());
        buf.extend_from_slice(&stream[at..cut]);
        at = cut;
        while let Some(frame) = codec.decode(&mut buf)? {
            out.push(frame);
        }
    }
    while let Some(frame) = codec.decode_eof(&mut buf)? {
        out.push(frame);
    }
    Ok(out)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn frames_round_trip_across_any_split_of_the_stream(
        frames in frames(),
        mut cuts in proptest::collection::vec(0usize..6000, 0..12),
        through_closure in any::<bool>(),
    ) {
        let mut codec = FrameCodec::new();
        let mut stream = BytesMut::new();
        for f in &frames {
            if through_closure {
                codec.encode_frame_with::<FrameError, _>(&f.header, &mut stream, |w| {
                    w.put_slice(&f.payload);
                    Ok(())
                })?;
            } else {
                codec.encode(f, &mut stream)?;
            }
        }
        cuts.sort_unstable();
        let decoded = decode_in_chunks(&mut codec, &stream, &cuts)?;
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        mut cuts in proptest::collection::vec(0usize..2048, 0..8),
        max in prop_oneof![Just(DEFAULT_MAX_FRAME_LEN), 0usize..4096],
        plausible_prefix in any::<bool>(),
    ) {
        let mut codec = FrameCodec::with_max_frame_len(max);
        let mut stream = Vec::new();
        if plausible_prefix {
            // A length that fits and a kind byte that mostly does, so that garbage reaches the
            // header and payload paths too, not only the length check.
            let len = (HEADER_LEN + bytes.len() / 2) as u32;
            stream.extend_from_slice(&len.to_be_bytes());
            stream.push(bytes.first().map_or(1, |b| b % 18));
        }
        stream.extend_from_slice(&bytes);
        cuts.sort_unstable();
        // Any error is fine and a panic fails the property; frames must respect the limit,
        // and the buffer never grows past the limit while waiting.
        if let Ok(frames) = decode_in_chunks(&mut codec, &stream, &cuts) {
            for f in frames {
                prop_assert!(HEADER_LEN + f.payload.len() <= codec.max_frame_len());
            }
        }
    }

    #[test]
    fn a_declared_length_above_the_maximum_never_grows_the_buffer(
        excess in 1u64..=(u32::MAX as u64 - DEFAULT_MAX_FRAME_LEN as u64),
        kind in any::<u8>(),
    ) {
        let len = DEFAULT_MAX_FRAME_LEN as u64 + excess;
        let mut codec = FrameCodec::new();
        let mut src = BytesMut::with_capacity(64);
        src.put_u32(len as u32);
        src.put_u8(kind);
        let err = codec.decode(&mut src).unwrap_err();
        let too_large = matches!(err, FrameError::TooLarge { len: l, .. } if l as u64 == len);
        prop_assert!(too_large);
        prop_assert!(src.capacity() <= 64);
    }
}
