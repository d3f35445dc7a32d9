//! The fuzz targets (`fuzz/`, run by `scripts/fuzz` with cargo-fuzz on nightly) on stable:
//! every input kept in `fuzz/regressions/<target>/` (each one a crash found and fixed), a few
//! hand-made seeds, and random inputs from proptest. A target panics only when a property of
//! ours fails, so each of these is a test that can fail.

use std::path::PathBuf;

use proptest::prelude::*;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 4] = [
    ("frame_decode", ergo::__fuzz::frame_decode),
    ("handshake", ergo::__fuzz::handshake),
    ("registrar", ergo::__fuzz::registrar),
    ("remote_payload", ergo::__fuzz::remote_payload),
];

fn regressions(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut inputs = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        inputs.push((path, bytes));
    }
    inputs
}

#[test]
fn every_kept_input_passes_its_target() {
    for (name, target) in TARGETS {
        for (path, input) in regressions(name) {
            let run = std::panic::catch_unwind(|| target(&input));
            assert!(run.is_ok(), "{name}: {} fails again", path.display());
        }
    }
}

/// A valid frame stream: two frames (an `Attach` and a `Cast` with a payload) fed in pieces.
#[test]
fn a_valid_frame_stream_decodes_and_reencodes() {
    use ergo::net::frame::{FrameCodec, FrameKind, Header, WirePid};
    use ergo::net::BytesMut;
    let codec = FrameCodec::new();
    let mut bytes = BytesMut::new();
    let attach = Header {
        kind: FrameKind::Attach,
        to: WirePid::NODE,
        from: 0,
        correlation: 7,
    };
    codec.encode_frame(&attach, &[], &mut bytes).unwrap();
    let cast = Header {
        kind: FrameKind::Cast,
        to: WirePid::NODE,
        from: 3,
        correlation: 0,
    };
    codec.encode_frame(&cast, b"payload", &mut bytes).unwrap();
    // Max frame length byte, then pieces of 5 bytes.
    let mut input = vec![255];
    for chunk in bytes.chunks(5) {
        input.push(4);
        input.extend_from_slice(chunk);
    }
    ergo::__fuzz::frame_decode(&input);
}

#[test]
fn honest_handshakes_with_and_without_tampering_hold_their_properties() {
    ergo::__fuzz::handshake(&[1]);
    for at in 0..64u8 {
        ergo::__fuzz::handshake(&[1, 0, at, 0x40, 0, at, 0x01]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_inputs_hold_every_targets_properties(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        for (_, target) in TARGETS {
            target(&data);
        }
    }
}
