//! The encoding of what crosses the seam: CBOR for messages, replies and the node services'
//! frames, and the node that refs inside a message being decoded are bound to.

use std::cell::RefCell;
use std::io;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Node;

/// Writes `value` as CBOR.
pub(crate) fn encode_cbor<T: Serialize>(value: &T, out: &mut dyn io::Write) -> Result<(), String> {
    ciborium::into_writer(value, out).map_err(|e| e.to_string())
}

/// Appends `value` as CBOR to `out` (statically dispatched writes: the hot path).
pub(crate) fn encode_cbor_vec<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), String> {
    ciborium::into_writer(value, out).map_err(|e| e.to_string())
}

/// Reads a `T` from CBOR bytes.
pub(crate) fn decode_cbor<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    // The scratch holds keys and short borrowed strings only (owned strings are copied out
    // anyway, longer ones are allocated): 256 bytes instead of ciborium's default 4 KiB, which
    // it would zero for every message.
    let mut scratch = [0u8; 256];
    ciborium::de::from_reader_with_buffer(bytes, &mut scratch).map_err(|e| e.to_string())
}

thread_local! {
    /// The node decoding an incoming message on this thread, if any: refs inside the message
    /// are bound to it.
    static DECODING_NODE: RefCell<Option<Node>> = const { RefCell::new(None) };
}

/// Runs `f` (a decode) with `node` as the node refs are bound to.
pub(crate) fn decoding_with<T>(node: &Node, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<Node>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let previous = self.0.take();
            DECODING_NODE.with(|n| *n.borrow_mut() = previous);
        }
    }
    let previous = DECODING_NODE.with(|n| n.borrow_mut().replace(node.clone()));
    let _reset = Reset(previous);
    f()
}

/// The node decoding on this thread (inside [`decoding_with`]), if any.
pub(crate) fn decoding_node() -> Option<Node> {
    DECODING_NODE.with(|n| n.borrow().clone())
}
