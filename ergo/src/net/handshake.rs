//! The cookie handshake: two nodes prove to each other that they share a secret cookie.
//!
//! Both sides prove the cookie with HMAC-SHA256 over fresh random nonces of both, compared in
//! constant time; they also agree on a protocol version and learn each other's name, creation
//! and capability flags. The logic is a sans-IO state machine, [`Handshake`] (payloads in,
//! [`Message`]s out), and [`handshake`] drives it over any async byte stream with a timeout.
//!
//! # Messages
//!
//! Each message is the payload of one [`FrameKind::Handshake`] frame, at most
//! [`HANDSHAKE_MAX_FRAME_LEN`] (64 KiB) long. `I` is the side that connected (the
//! [`Role::Initiator`]), `A` the side that accepted:
//!
//! ```text
//! I -> A  Hello     { min_version, max_version, flags, creation, nonce_i, name }
//! A -> I  Challenge { version, flags, creation, nonce_a, name }     (or Reject)
//! I -> A  Proof     { HMAC(cookie, "initiator" label || T) }
//! A -> I  Proof     { HMAC(cookie, "acceptor"  label || T) }        (or Reject)
//! ```
//!
//! `T` is the SHA-256 transcript of the exact bytes of `Hello` and `Challenge`, so each proof
//! covers both nonces, both names and creations, the version and the flags: a proof is good for
//! one handshake only, a captured one fails against any other nonce, and neither side's
//! parameters can be changed in transit without the proofs failing. The labels make the two
//! proofs differ, so a proof cannot be reflected back to its sender. `A` proves the cookie only
//! after `I` has: a stranger who connects learns nothing that depends on the cookie.
//!
//! `A` picks the highest version both support. A side that gives up sends a `Reject` (bad
//! cookie, no common version, or a malformed message) before closing, so both ends report the
//! same [`HandshakeError`]; a `Reject` is not authenticated and only ever ends a handshake.
//!
//! The stream is read exactly frame by frame, never past the last handshake message: when
//! [`handshake`] returns, the next byte is the first frame the peer sent after authenticating.
//!
//! # Errors
//!
//! [`HandshakeError`]: [`BadCookie`](HandshakeError::BadCookie) when the proofs do not match
//! (either side may hold the wrong cookie: they cannot tell which),
//! [`VersionMismatch`](HandshakeError::VersionMismatch),
//! [`Malformed`](HandshakeError::Malformed) for anything that is not the expected message
//! (including bytes that are not frames at all, or a frame above 64 KiB),
//! [`Timeout`](HandshakeError::Timeout), [`Closed`](HandshakeError::Closed) and
//! [`Io`](HandshakeError::Io). Configuration is checked up front:
//! [`EmptyCookie`](HandshakeError::EmptyCookie), [`InvalidName`](HandshakeError::InvalidName).
//! On any error the connection must be closed; nothing about the peer may be trusted.

use std::cmp::{max, min};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::BytesMut;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::frame::{FrameCodec, FrameError, FrameKind, Header, HEADER_LEN, LEN_PREFIX};

mod message;

pub use message::{Message, RejectReason};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Length of each side's nonce: 256 bits, drawn from the operating system.
pub const NONCE_LEN: usize = 32;

/// Length of a proof (an HMAC-SHA256 tag).
pub const MAC_LEN: usize = 32;

/// Largest frame accepted before authentication: 64 KiB (a handshake message needs < 400 B).
pub const HANDSHAKE_MAX_FRAME_LEN: usize = 64 * 1024;

/// Default time allowed for a whole handshake: 5 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest node name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

const INITIATOR_LABEL: &[u8] = b"ergo handshake v1: initiator proof";
const ACCEPTOR_LABEL: &[u8] = b"ergo handshake v1: acceptor proof";

type HmacSha256 = Hmac<Sha256>;

/// Which end of the connection this side is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that connected: speaks first.
    Initiator,
    /// The side that accepted the connection.
    Acceptor,
}

/// Capability flags, exchanged in the handshake; a connection uses those both sides set.
///
/// No flag is defined by protocol version 1; later features announce themselves here so that
/// nodes of different builds can talk, each using what the other supports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(u64);

impl Flags {
    /// No flag set.
    pub const EMPTY: Flags = Flags(0);

    /// Flags from their bits.
    pub const fn from_bits(bits: u64) -> Flags {
        Flags(bits)
    }

    /// The bits of these flags.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// `true` when every flag of `other` is set here.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flags set in both.
    pub const fn intersection(self, other: Flags) -> Flags {
        Flags(self.0 & other.0)
    }
}

/// The shared secret, kept only as a keyed HMAC state (the raw bytes are not stored).
#[derive(Clone)]
struct Cookie(HmacSha256);

impl Cookie {
    fn new(secret: &[u8]) -> Result<Cookie, HandshakeError> {
        if secret.is_empty() {
            return Err(HandshakeError::EmptyCookie);
        }
        // HMAC takes keys of any length: this never fails for a non-empty cookie.
        HmacSha256::new_from_slice(secret)
            .map(Cookie)
            .map_err(|_| HandshakeError::EmptyCookie)
    }

    fn mac(&self, label: &[u8], transcript: &[u8; 32]) -> HmacSha256 {
        let mut mac = self.0.clone();
        mac.update(label);
        mac.update(transcript);
        mac
    }
}

/// What one side brings to a handshake: its name, creation, cookie, flags and time limit.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ergo::net::handshake::{HandshakeConfig, HandshakeError};
///
/// let config = HandshakeConfig::new("a@localhost", 1, "secret")?
///     .timeout(Duration::from_secs(2));
/// assert_eq!(config.name(), "a@localhost");
/// assert!(matches!(HandshakeConfig::new("a@localhost", 1, ""), Err(HandshakeError::EmptyCookie)));
/// # Ok::<(), HandshakeError>(())
/// ```
#[derive(Clone)]
pub struct HandshakeConfig {
    name: String,
    creation: u32,
    cookie: Cookie,
    flags: Flags,
    timeout: Duration,
    versions: RangeInclusive<u16>,
}

impl HandshakeConfig {
    /// A configuration for the node `name` (of this `creation`) holding `cookie`; no flags, a
    /// timeout of [`DEFAULT_HANDSHAKE_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// [`HandshakeError::EmptyCookie`] for an empty cookie; [`HandshakeError::InvalidName`] for
    /// a name that is empty or longer than [`MAX_NAME_LEN`] bytes.
    pub fn new(
        name: impl Into<String>,
        creation: u32,
        cookie: impl AsRef<[u8]>,
    ) -> Result<HandshakeConfig, HandshakeError> {
        let name = name.into();
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(HandshakeError::InvalidName(name));
        }
        Ok(HandshakeConfig {
            name,
            creation,
            cookie: Cookie::new(cookie.as_ref())?,
            flags: Flags::EMPTY,
            timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            versions: PROTOCOL_VERSION..=PROTOCOL_VERSION,
        })
    }

    /// Sets the capability flags this side offers.
    pub fn flags(mut self, flags: Flags) -> HandshakeConfig {
        self.flags = flags;
        self
    }

    /// Sets the time allowed for a whole handshake (see [`handshake`]).
    pub fn timeout(mut self, timeout: Duration) -> HandshakeConfig {
        self.timeout = timeout;
        self
    }

    /// This side's node name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This side's creation.
    pub fn creation(&self) -> u32 {
        self.creation
    }

    /// The time allowed for a whole handshake.
    pub fn handshake_timeout(&self) -> Duration {
        self.timeout
    }
}

impl fmt::Debug for HandshakeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeConfig")
            .field("name", &self.name)
            .field("creation", &self.creation)
            .field("cookie", &"<redacted>")
            .field("flags", &self.flags)
            .field("timeout", &self.timeout)
            .field("versions", &self.versions)
            .finish()
    }
}

/// The authenticated other end of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Peer {
    /// The peer's node name.
    pub name: String,
    /// The peer's creation: the creation of every pid that arrives in `from` on this connection.
    pub creation: u32,
    /// The protocol version both sides use.
    pub version: u16,
    /// The capability flags both sides offered.
    pub flags: Flags,
}

/// What was wrong with what the peer sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// The bytes are not a frame within the handshake's limits (too large, too short, unknown
    /// kind).
    #[error("bad frame: {0}")]
    Frame(FrameError),
    /// A frame of another kind than [`FrameKind::Handshake`] arrived.
    #[error("a {0:?} frame arrived before authentication")]
    UnexpectedKind(FrameKind),
    /// The message tag is unknown.
    #[error("unknown handshake message {0:#04x}")]
    UnknownMessage(u8),
    /// A known message that does not decode.
    #[error("bad {message} message: {problem}")]
    BadMessage {
        /// The message.
        message: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A valid message at the wrong moment.
    #[error("unexpected {got} message (expected {expected})")]
    UnexpectedMessage {
        /// What arrived.
        got: &'static str,
        /// What the handshake waited for.
        expected: &'static str,
    },
    /// The peer refused our messages as malformed.
    #[error("the peer found our handshake malformed")]
    RejectedByPeer,
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The configured cookie is empty: refused, since it would let anyone in.
    #[error("an empty cookie is refused")]
    EmptyCookie,
    /// The configured node name is empty or longer than [`MAX_NAME_LEN`] bytes.
    #[error("invalid node name `{0}` (1 to 255 bytes)")]
    InvalidName(String),
    /// The proofs do not match: one side holds another cookie (or a proof was replayed or
    /// tampered with).
    #[error("the peer's cookie proof does not match")]
    BadCookie,
    /// The two sides have no protocol version in common.
    #[error("no common protocol version: we speak {ours:?}, the peer {theirs:?}")]
    VersionMismatch {
        /// The versions this side speaks.
        ours: RangeInclusive<u16>,
        /// The versions the peer speaks (or chose).
        theirs: RangeInclusive<u16>,
    },
    /// The peer sent something that is not the expected handshake message.
    #[error("malformed handshake: {0}")]
    Malformed(#[from] Malformed),
    /// The handshake did not finish in time.
    #[error("handshake timed out after {0:?}")]
    Timeout(Duration),
    /// The peer closed the connection before the handshake finished.
    #[error("connection closed during the handshake")]
    Closed,
    /// Reading or writing the stream failed.
    #[error("i/o error during the handshake: {0}")]
    Io(#[from] io::Error),
    /// The operating system gave no randomness for a nonce.
    #[error("no randomness for the handshake nonce: {0}")]
    Entropy(String),
}

/// Where a [`Handshake`] stands after a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Send what [`Handshake::next_outgoing`] gives, then wait for the next message.
    InProgress,
    /// Authenticated: send what [`Handshake::next_outgoing`] still gives; the connection is
    /// open to ordinary frames from now on.
    Authenticated(Peer),
}

enum State {
    AwaitHello,
    AwaitChallenge,
    AwaitInitiatorProof { peer: Peer, transcript: [u8; 32] },
    AwaitAcceptorProof { peer: Peer, transcript: [u8; 32] },
    Over,
}

impl State {
    fn expects(&self) -> &'static str {
        match self {
            State::AwaitHello => "Hello",
            State::AwaitChallenge => "Challenge",
            State::AwaitInitiatorProof { .. } | State::AwaitAcceptorProof { .. } => "Proof",
            State::Over => "nothing: the handshake is over",
        }
    }
}

/// The handshake as a sans-IO state machine: feed it the payloads of the handshake frames that
/// arrive, send the messages it hands out, in order.
///
/// An initiator has its `Hello` ready as soon as it is made. After an error, send what
/// [`next_outgoing`](Handshake::next_outgoing) still gives (a `Reject`), then close.
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use ergo::net::handshake::{Handshake, HandshakeConfig, Role, Status};
///
/// let mut a = Handshake::new(Role::Initiator, &HandshakeConfig::new("a@h", 1, "secret")?)?;
/// let mut b = Handshake::new(Role::Acceptor, &HandshakeConfig::new("b@h", 2, "secret")?)?;
/// let mut relay = |from: &mut Handshake, to: &mut Handshake| {
///     let mut buf = BytesMut::new();
///     from.next_outgoing().expect("a message").encode(&mut buf);
///     to.receive(&buf)
/// };
/// assert_eq!(relay(&mut a, &mut b)?, Status::InProgress); // Hello
/// assert_eq!(relay(&mut b, &mut a)?, Status::InProgress); // Challenge
/// let Status::Authenticated(peer_of_b) = relay(&mut a, &mut b)? else { panic!() }; // Proof
/// let Status::Authenticated(peer_of_a) = relay(&mut b, &mut a)? else { panic!() }; // Proof
/// assert_eq!((peer_of_b.name.as_str(), peer_of_b.creation), ("a@h", 1));
/// assert_eq!((peer_of_a.name.as_str(), peer_of_a.creation), ("b@h", 2));
/// # Ok::<(), ergo::net::handshake::HandshakeError>(())
/// ```
pub struct Handshake {
    role: Role,
    config: HandshakeConfig,
    nonce: [u8; NONCE_LEN],
    transcript: Sha256,
    state: State,
    outgoing: VecDeque<Message>,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("role", &self.role)
            .field("name", &self.config.name)
            .field("expects", &self.state.expects())
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// Starts a handshake as `role`, with a fresh nonce from the operating system.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::Entropy`] when the operating system has no randomness to give.
    pub fn new(role: Role, config: &HandshakeConfig) -> Result<Handshake, HandshakeError> {
        let mut nonce = [0; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| HandshakeError::Entropy(e.to_string()))?;
        Ok(Handshake::with_nonce(role, config, nonce))
    }

    fn with_nonce(role: Role, config: &HandshakeConfig, nonce: [u8; NONCE_LEN]) -> Handshake {
        let mut hs = Handshake {
            role,
            config: config.clone(),
            nonce,
            transcript: Sha256::new(),
            state: State::AwaitHello,
            outgoing: VecDeque::with_capacity(2),
        };
        if role == Role::Initiator {
            hs.state = State::AwaitChallenge;
            let hello = Message::Hello {
                min_version: *config.versions.start(),
                max_version: *config.versions.end(),
                flags: config.flags,
                creation: config.creation,
                nonce,
                name: config.name.clone(),
            };
            hs.send_recorded(hello);
        }
        hs
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The next message to send, if any.
    pub fn next_outgoing(&mut self) -> Option<Message> {
        self.outgoing.pop_front()
    }

    /// `true` once the handshake has authenticated the peer or failed.
    pub fn is_over(&self) -> bool {
        matches!(self.state, State::Over)
    }

    /// Takes in the payload of one handshake frame from the peer.
    ///
    /// # Errors
    ///
    /// A [`HandshakeError`] (see the module docs) ends the handshake: every later call fails
    /// with [`Malformed::UnexpectedMessage`].
    pub fn receive(&mut self, payload: &[u8]) -> Result<Status, HandshakeError> {
        let state = std::mem::replace(&mut self.state, State::Over);
        let msg = match Message::decode(payload) {
            Ok(msg) => msg,
            Err(e) => {
                if !matches!(state, State::Over) {
                    self.send(Message::Reject(RejectReason::Malformed));
                }
                return Err(e.into());
            }
        };
        match (state, msg) {
            (State::Over, msg) => Err(Malformed::UnexpectedMessage {
                got: msg.name(),
                expected: State::Over.expects(),
            }
            .into()),
            (_, Message::Reject(reason)) => Err(self.rejected(reason)),
            (
                State::AwaitHello,
                Message::Hello {
                    min_version,
                    max_version,
                    flags,
                    creation,
                    name,
                    ..
                },
            ) => {
                let ours = self.config.versions.clone();
                let version = min(*ours.end(), max_version);
                if version < max(*ours.start(), min_version) {
                    self.send(Message::Reject(RejectReason::VersionMismatch {
                        min: *ours.start(),
                        max: *ours.end(),
                    }));
                    return Err(HandshakeError::VersionMismatch {
                        ours,
                        theirs: min_version..=max_version,
                    });
                }
                self.record(payload);
                self.send_recorded(Message::Challenge {
                    version,
                    flags: self.config.flags,
                    creation: self.config.creation,
                    nonce: self.nonce,
                    name: self.config.name.clone(),
                });
                self.state = State::AwaitInitiatorProof {
                    peer: Peer {
                        name,
                        creation,
                        version,
                        flags: flags.intersection(self.config.flags),
                    },
                    transcript: self.transcript.clone().finalize().into(),
                };
                Ok(Status::InProgress)
            }
            (
                State::AwaitChallenge,
                Message::Challenge {
                    version,
                    flags,
                    creation,
                    name,
                    ..
                },
            ) => {
                if !self.config.versions.contains(&version) {
                    let ours = self.config.versions.clone();
                    self.send(Message::Reject(RejectReason::VersionMismatch {
                        min: *ours.start(),
                        max: *ours.end(),
                    }));
                    return Err(HandshakeError::VersionMismatch {
                        ours,
                        theirs: version..=version,
                    });
                }
                self.record(payload);
                let transcript: [u8; 32] = self.transcript.clone().finalize().into();
                let mac = self.config.cookie.mac(INITIATOR_LABEL, &transcript);
                self.send(Message::Proof {
                    mac: mac.finalize().into_bytes().into(),
                });
                self.state = State::AwaitAcceptorProof {
                    peer: Peer {
                        name,
                        creation,
                        version,
                        flags: flags.intersection(self.config.flags),
                    },
                    transcript,
                };
                Ok(Status::InProgress)
            }
            (State::AwaitInitiatorProof { peer, transcript }, Message::Proof { mac }) => {
                let expected = self.config.cookie.mac(INITIATOR_LABEL, &transcript);
                if expected.verify_slice(&mac).is_err() {
                    self.send(Message::Reject(RejectReason::BadCookie));
                    return Err(HandshakeError::BadCookie);
                }
                let ours = self.config.cookie.mac(ACCEPTOR_LABEL, &transcript);
                self.send(Message::Proof {
                    mac: ours.finalize().into_bytes().into(),
                });
                Ok(Status::Authenticated(peer))
            }
            (State::AwaitAcceptorProof { peer, transcript }, Message::Proof { mac }) => {
                let expected = self.config.cookie.mac(ACCEPTOR_LABEL, &transcript);
                if expected.verify_slice(&mac).is_err() {
                    return Err(HandshakeError::BadCookie);
                }
                Ok(Status::Authenticated(peer))
            }
            (state, msg) => {
                self.send(Message::Reject(RejectReason::Malformed));
                Err(Malformed::UnexpectedMessage {
                    got: msg.name(),
                    expected: state.expects(),
                }
                .into())
            }
        }
    }

    fn rejected(&self, reason: RejectReason) -> HandshakeError {
        match reason {
            RejectReason::BadCookie => HandshakeError::BadCookie,
            RejectReason::VersionMismatch { min, max } => HandshakeError::VersionMismatch {
                ours: self.config.versions.clone(),
                theirs: min..=max,
            },
            RejectReason::Malformed => Malformed::RejectedByPeer.into(),
        }
    }

    /// Adds the exact bytes of one message to the transcript.
    fn record(&mut self, encoded: &[u8]) {
        // Lengths below 2^32: handshake payloads fit in a 64 KiB frame.
        self.transcript.update((encoded.len() as u32).to_be_bytes());
        self.transcript.update(encoded);
    }

    fn send_recorded(&mut self, msg: Message) {
        let mut buf = BytesMut::with_capacity(128);
        msg.encode(&mut buf);
        self.record(&buf);
        self.send(msg);
    }

    fn send(&mut self, msg: Message) {
        self.outgoing.push_back(msg);
    }
}

/// Runs the handshake over `stream` as `role`: the whole exchange must finish within the
/// configured timeout ([`DEFAULT_HANDSHAKE_TIMEOUT`] unless set).
///
/// Frames above [`HANDSHAKE_MAX_FRAME_LEN`] are refused before they are read. The stream is
/// read exactly up to the end of the last handshake message, so it can be handed to the
/// ordinary frame reader as it is (with the node's own maximum frame length).
///
/// # Errors
///
/// A [`HandshakeError`] (see the module docs); before returning one, a `Reject` is sent when
/// the peer can be told why. Close the stream then.
///
/// # Cancel safety
///
/// Not cancel safe: dropped midway, it leaves the stream inside the handshake; close it.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), ergo::net::handshake::HandshakeError> {
/// use ergo::net::handshake::{handshake, HandshakeConfig, Role};
///
/// let (mut left, mut right) = tokio::io::duplex(1024);
/// let a = HandshakeConfig::new("a@localhost", 1, "secret")?;
/// let b = HandshakeConfig::new("b@localhost", 7, "secret")?;
/// let (peer_of_a, peer_of_b) = tokio::try_join!(
///     handshake(&mut left, Role::Initiator, &a),
///     handshake(&mut right, Role::Acceptor, &b),
/// )?;
/// assert_eq!((peer_of_a.name.as_str(), peer_of_a.creation), ("b@localhost", 7));
/// assert_eq!((peer_of_b.name.as_str(), peer_of_b.creation), ("a@localhost", 1));
/// # Ok(()) }
/// ```
pub async fn handshake<S>(
    stream: &mut S,
    role: Role,
    config: &HandshakeConfig,
) -> Result<Peer, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    match tokio::time::timeout(config.timeout, drive(stream, role, config)).await {
        Ok(result) => result,
        Err(_) => Err(HandshakeError::Timeout(config.timeout)),
    }
}

async fn drive<S>(
    stream: &mut S,
    role: Role,
    config: &HandshakeConfig,
) -> Result<Peer, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut hs = Handshake::new(role, config)?;
    let codec = FrameCodec::with_max_frame_len(HANDSHAKE_MAX_FRAME_LEN);
    let mut out = BytesMut::with_capacity(512);
    let mut body = BytesMut::new();
    loop {
        flush(&mut hs, &codec, &mut out, stream).await?;
        read_frame(stream, &codec, &mut body).await?;
        match hs.receive(&body[HEADER_LEN..]) {
            Ok(Status::InProgress) => {}
            Ok(Status::Authenticated(peer)) => {
                flush(&mut hs, &codec, &mut out, stream).await?;
                return Ok(peer);
            }
            Err(e) => {
                // Best effort: tell the peer why; the handshake has failed either way.
                let _ = flush(&mut hs, &codec, &mut out, stream).await;
                return Err(e);
            }
        }
    }
}

/// Writes every queued message, one frame each, in one write.
async fn flush<S>(
    hs: &mut Handshake,
    codec: &FrameCodec,
    out: &mut BytesMut,
    stream: &mut S,
) -> Result<(), HandshakeError>
where
    S: AsyncWrite + Unpin + ?Sized,
{
    out.clear();
    let mut payload = BytesMut::with_capacity(128);
    while let Some(msg) = hs.next_outgoing() {
        payload.clear();
        msg.encode(&mut payload);
        codec
            .encode_frame(&Header::control(FrameKind::Handshake), &payload, out)
            .map_err(Malformed::Frame)?;
    }
    if !out.is_empty() {
        stream.write_all(out).await?;
        stream.flush().await?;
    }
    Ok(())
}

/// Reads exactly one handshake frame into `body` (header + payload, without the prefix).
async fn read_frame<S>(
    stream: &mut S,
    codec: &FrameCodec,
    body: &mut BytesMut,
) -> Result<(), HandshakeError>
where
    S: AsyncRead + Unpin + ?Sized,
{
    let mut prefix = [0; LEN_PREFIX];
    read_exact(stream, &mut prefix).await?;
    let len = codec.check_len(prefix).map_err(Malformed::Frame)?;
    body.clear();
    body.resize(len, 0);
    read_exact(stream, body).await?;
    let header = Header::decode(body).map_err(Malformed::Frame)?;
    if header.kind != FrameKind::Handshake {
        return Err(Malformed::UnexpectedKind(header.kind).into());
    }
    Ok(())
}

async fn read_exact<S>(stream: &mut S, buf: &mut [u8]) -> Result<(), HandshakeError>
where
    S: AsyncRead + Unpin + ?Sized,
{
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(HandshakeError::Closed),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests;
