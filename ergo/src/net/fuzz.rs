//! The bodies of the fuzz targets in `fuzz/` (cargo-fuzz), here so that they see the crate's
//! internals and so that the inputs kept in `fuzz/regressions/` run as ordinary tests on
//! stable (`tests/fuzz_regressions.rs`). Reached as `ergo::__fuzz`. Not public API.
//!
//! Each function takes arbitrary bytes and panics only when a property of ours fails; any
//! input the code under test must refuse is refused with an error, never a panic.

use std::sync::OnceLock;

use bytes::BytesMut;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::net::frame::{FrameCodec, LEN_PREFIX};
use crate::net::handshake::{Handshake, HandshakeConfig, Role, Status};
use crate::node::codec::{decode_cbor, decoding_with, encode_cbor_vec};
use crate::{ActorRef, ExitReason, Node, Pid};

/// Frame decoding: `data[0]` picks the maximum frame length, the rest arrives in pieces whose
/// sizes the input picks. Every decoded frame re-encodes to exactly the bytes it came from,
/// the buffer never reserves more than one frame's worth, and an error is final.
pub fn frame_decode(data: &[u8]) {
    let Some((&max, mut rest)) = data.split_first() else {
        return;
    };
    let max = 32 + usize::from(max) * 64;
    let codec = FrameCodec::with_max_frame_len(max);
    let (mut buf, mut fed, mut frames) = (BytesMut::new(), Vec::new(), Vec::new());
    while let Some((&piece, more)) = rest.split_first() {
        let take = (usize::from(piece) % 64 + 1).min(more.len());
        buf.extend_from_slice(&more[..take]);
        fed.extend_from_slice(&more[..take]);
        rest = &more[take..];
        loop {
            match codec.decode_frame(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => return check_reencode(&codec, &frames, &fed),
            }
        }
        let bound = 2 * (LEN_PREFIX + codec.max_frame_len()) + 4096;
        assert!(
            buf.capacity() <= bound,
            "reserved {} bytes for frames of at most {}",
            buf.capacity(),
            codec.max_frame_len()
        );
    }
    check_reencode(&codec, &frames, &fed);
}

fn check_reencode(codec: &FrameCodec, frames: &[crate::net::frame::Frame], fed: &[u8]) {
    let mut out = BytesMut::new();
    for frame in frames {
        codec
            .encode_frame(&frame.header, &frame.payload, &mut out)
            .expect("a decoded frame encodes");
    }
    assert_eq!(
        &out[..],
        &fed[..out.len()],
        "a frame re-encodes differently"
    );
}

/// The cookie handshake. `data[0]` picks the mode:
///
/// - even: a stranger without the cookie sends the payloads (2-byte length each) to a node
///   in the role bit 1 picks; the node must never authenticate it;
/// - odd: two honest nodes with the cookie, and the rest of the input changes their
///   messages in transit (an offset and a byte to xor, per message); if both end
///   authenticated, each must have learnt exactly the other's name and creation.
pub fn handshake(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let cookie = "the fuzzed nodes' cookie";
    let a = HandshakeConfig::new("fuzz-a@localhost", 11, cookie).expect("valid");
    let b = HandshakeConfig::new("fuzz-b@localhost", 22, cookie).expect("valid");
    if mode & 1 == 0 {
        let role = if mode & 2 == 0 {
            Role::Acceptor
        } else {
            Role::Initiator
        };
        let mut node = Handshake::new(role, &a).expect("entropy");
        let mut input = rest;
        while let [hi, lo, more @ ..] = input {
            let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(more.len());
            let (payload, more) = more.split_at(len);
            input = more;
            while node.next_outgoing().is_some() {}
            match node.receive(payload) {
                Ok(Status::Authenticated(peer)) => {
                    panic!("a stranger without the cookie authenticated as {peer:?}")
                }
                Ok(Status::InProgress) => {}
                Err(_) => return,
            }
        }
        return;
    }
    let mut initiator = Handshake::new(Role::Initiator, &a).expect("entropy");
    let mut acceptor = Handshake::new(Role::Acceptor, &b).expect("entropy");
    let (mut seen_by_i, mut seen_by_a) = (None, None);
    let mut tamper = rest.chunks(3);
    for _ in 0..8 {
        let Ok(forth) = relay(&mut initiator, &mut acceptor, &mut seen_by_a, &mut tamper) else {
            return;
        };
        let Ok(back) = relay(&mut acceptor, &mut initiator, &mut seen_by_i, &mut tamper) else {
            return;
        };
        if !forth && !back {
            break;
        }
    }
    if let (Some(i), Some(a_side)) = (&seen_by_i, &seen_by_a) {
        assert_eq!((i.name.as_str(), i.creation), ("fuzz-b@localhost", 22));
        assert_eq!(
            (a_side.name.as_str(), a_side.creation),
            ("fuzz-a@localhost", 11)
        );
    }
}

/// Hands every message `from` has to send to `to`, changed as `tamper` says; whether any
/// moved, or `Err` once `to` refused one.
fn relay(
    from: &mut Handshake,
    to: &mut Handshake,
    seen: &mut Option<crate::net::handshake::Peer>,
    tamper: &mut std::slice::Chunks<'_, u8>,
) -> Result<bool, ()> {
    let mut moved = false;
    while let Some(msg) = from.next_outgoing() {
        moved = true;
        let mut bytes = BytesMut::new();
        msg.encode(&mut bytes);
        if let Some(change) = tamper.next() {
            let at = change
                .iter()
                .take(2)
                .fold(0usize, |n, b| n << 8 | usize::from(*b));
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] ^= change[change.len() - 1];
            }
        }
        match to.receive(&bytes) {
            Ok(Status::Authenticated(peer)) => *seen = Some(peer),
            Ok(Status::InProgress) => {}
            Err(_) => return Err(()),
        }
    }
    Ok(moved)
}

/// The embedded registrar's server on arbitrary requests from two connections.
pub fn registrar(data: &[u8]) {
    crate::net::registrar::fuzz_serve(data);
}

/// A remote actor whose message enum the payload target decodes into.
#[derive(Debug)]
pub struct FuzzTarget;

#[crate::actor(remote)]
impl FuzzTarget {
    #[handle]
    fn add(&mut self, by: u64) -> u64 {
        by
    }

    #[handle]
    fn put(&mut self, key: String, value: Vec<u8>, tags: Option<Vec<(String, i64)>>) {
        let _ = (key, value, tags);
    }

    #[handle]
    fn forward(&mut self, to: ActorRef<FuzzTarget>, from: Pid, why: ExitReason) -> bool {
        let _ = (to, from, why);
        true
    }
}

/// The node refs in fuzzed payloads are bound to (without a network: refs to other nodes
/// must be refused cleanly).
fn fuzz_node() -> &'static Node {
    static NODE: OnceLock<(tokio::runtime::Runtime, Node)> = OnceLock::new();
    &NODE
        .get_or_init(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let node = rt
                .block_on(Node::builder("fuzz@localhost").start())
                .expect("a node");
            (rt, node)
        })
        .1
}

/// Decodes `data` as a `T` the way a message from another node is decoded; what decodes
/// must encode, and decode again from that encoding.
fn payload<T: Serialize + DeserializeOwned>(data: &[u8]) {
    let node = fuzz_node();
    let Ok(value) = decoding_with(node, || decode_cbor::<T>(data)) else {
        return;
    };
    let mut again = Vec::new();
    encode_cbor_vec(&value, &mut again).expect("a decoded message encodes");
    decoding_with(node, || decode_cbor::<T>(&again)).expect("an encoded message decodes");
}

/// Payload decoding for a remote actor: `data[0]` picks the type (the generated message enum,
/// a pid, a ref, an exit reason), the rest is the CBOR.
pub fn remote_payload(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    match pick % 4 {
        0 => payload::<FuzzTargetMsg>(rest),
        1 => payload::<Pid>(rest),
        2 => payload::<ActorRef<FuzzTarget>>(rest),
        _ => payload::<ExitReason>(rest),
    }
}
