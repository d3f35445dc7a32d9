//! The wire layer between nodes: frames and the cookie handshake (feature `net`).
//!
//! Two nodes talk over one byte stream (TCP, or TLS over it) in two phases:
//!
//! 1. **Handshake** ([`handshake`]): before anything else, both sides prove that they hold the
//!    same secret cookie, agree on a protocol version and capability flags, and learn each
//!    other's node name and creation. Frames are limited to 64 KiB and the whole exchange to a
//!    timeout (5 s by default).
//! 2. **Frames** ([`frame`]): after it, every message, call, reply, exit signal, link, monitor,
//!    down notice and heartbeat is one length-prefixed [`frame::Frame`]: a fixed 29-byte
//!    [`frame::Header`] and an opaque payload (CBOR, produced and read by the layer above).
//!
//! This module is the wire layer only: it owns no socket and starts no task. The node's
//! connection layer (the next step of the networking work) uses it so: dial or accept a
//! `TcpStream`, run [`handshake::handshake`] on it (the stream is left exactly at the first
//! frame), then hand the halves to a reader task (a `FramedRead` with a [`frame::FrameCodec`]
//! at the node's maximum frame length, giving [`frame::Frame`]s whose `to`/`from` it turns
//! into local pids with the [`handshake::Peer`]'s name and creation) and a writer task that
//! encodes queued frames into one `BytesMut` ([`frame::FrameCodec::encode_frame_with`] lets a
//! serializer write the payload in place) and writes it in one go.
//!
//! # Pids on the wire
//!
//! Node names are never repeated in frames: a connection's two ends are fixed by the handshake,
//! so a header's `to` is a process of the receiver (id + the creation the sender knows, checked
//! by the receiver: a stale creation means `NoProc`) and `from` a process of the sender (id
//! only). A peer cannot claim to speak for a process of another node; pids of third nodes
//! travel only inside payloads, with their node names. See [`frame`].
//!
//! # Errors
//!
//! [`frame::FrameError`] for bytes that are not a valid frame (too large for the maximum —
//! checked before allocating —, shorter than a header, of an unknown kind, cut short by the end
//! of the stream); [`handshake::HandshakeError`] for a failed handshake. Neither can be
//! recovered on that connection: close it, log the reason, and let the node go on. No input
//! makes this layer panic.
//!
//! # Security notes
//!
//! What the cookie protects:
//!
//! - **Who may connect.** Only a peer that holds the cookie completes the handshake; until it
//!   has, it can send at most a few small frames and nothing is registered or spawned for it.
//!   Both sides prove the cookie, so a node also never talks to an impostor it dialled.
//! - **The cookie itself.** It is never sent: each side sends an HMAC-SHA256 of a transcript
//!   that includes a fresh 256-bit random nonce from each side, compared in constant time. A
//!   captured proof is worthless in any other handshake.
//! - **The handshake's parameters.** Names, creations, version and flags are covered by the
//!   proofs, so they cannot be changed in transit.
//!
//! What it does **not** protect:
//!
//! - **Nothing after the handshake is encrypted or authenticated.** Anyone who can read the
//!   traffic reads every message; anyone who can change it (a machine on the path) can inject,
//!   drop or alter frames, or take over an authenticated connection. Turn on mutual TLS
//!   between nodes (feature `tls`, `ergo::net::tls`) on any network you do not fully trust: it encrypts
//!   and authenticates every byte, the handshake included.
//! - **A weak cookie.** An eavesdropper who records one handshake can test cookie guesses
//!   offline against it. Use a long random cookie (32 random bytes, say), not a word.
//! - **A peer that holds the cookie.** Any node with the cookie is fully trusted: it can send
//!   any process any message, link, monitor or kill it (which is why remote spawn is off by
//!   default and allow-listed by name, [`Node::allow_spawn`](crate::Node::allow_spawn)).
//! - **Resource exhaustion by strangers** is limited, not prevented: the handshake caps frames
//!   at 64 KiB and time at the timeout, and the node shares its concurrent handshake slots
//!   fairly (silent sockets yield theirs, and one source address cannot take them all; see
//!   `NodeBuilder::max_handshakes`).
//!
//! # Examples
//!
//! Two ends of an in-memory stream authenticate each other, then exchange a frame:
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ergo::net::frame::{FrameCodec, FrameKind, Header, WirePid};
//! use ergo::net::handshake::{handshake, HandshakeConfig, Role};
//! use ergo::net::BytesMut;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let (mut dialer, mut listener) = tokio::io::duplex(64 * 1024);
//! let a = HandshakeConfig::new("a@localhost", 1, "a long random cookie")?;
//! let b = HandshakeConfig::new("b@localhost", 2, "a long random cookie")?;
//! let (b_seen_by_a, a_seen_by_b) = tokio::try_join!(
//!     handshake(&mut dialer, Role::Initiator, &a),
//!     handshake(&mut listener, Role::Acceptor, &b),
//! )?;
//! assert_eq!(b_seen_by_a.name, "b@localhost");
//! assert_eq!(a_seen_by_b.creation, 1);
//!
//! // a's process 5 casts to b's process 9 (of b's creation 2).
//! let codec = FrameCodec::new();
//! let header = Header {
//!     kind: FrameKind::Cast,
//!     to: WirePid { id: 9, creation: b_seen_by_a.creation },
//!     from: 5,
//!     correlation: 0,
//! };
//! let mut out = BytesMut::new();
//! codec.encode_frame(&header, b"<cbor>", &mut out)?;
//! dialer.write_all(&out).await?;
//!
//! let mut inbox = BytesMut::new();
//! let frame = loop {
//!     if let Some(frame) = codec.decode_frame(&mut inbox)? {
//!         break frame;
//!     }
//!     listener.read_buf(&mut inbox).await?;
//! };
//! assert_eq!(frame.header, header);
//! assert_eq!(&frame.payload[..], b"<cbor>");
//! # Ok(()) }
//! ```

mod admission;
mod api;
mod config;
mod conn;
mod connect;
#[cfg(feature = "etcd")]
mod etcd;
pub mod frame;
#[doc(hidden)]
pub mod fuzz;
pub mod handshake;
mod inbound;
mod links;
mod lookup;
mod peer;
pub mod registrar;
mod signals;
mod spawn;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;

pub use crate::error::{NetError, RemoteSpawnError};
#[cfg(feature = "etcd")]
pub use etcd::EtcdRegistrar;
pub use registrar::{
    EmbeddedRegistrar, Membership, Registrar, RegistrarError, StaticRoutes, DEFAULT_REGISTRAR_PORT,
};

/// The byte buffer types of the frame API (re-exported from the `bytes` crate).
pub use bytes::{Bytes, BytesMut};
