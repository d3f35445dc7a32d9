//! Meta processes: sockets owned by their own tasks, turning I/O into messages for actors.
//!
//! Blocking or long-running I/O never runs inside an actor's message loop. A meta process owns a
//! socket in its own tokio task, turns what happens on it into typed events delivered to an
//! actor's mailbox, and gives the actor a handle to write back:
//!
//! - [`tcp::TcpServer`] binds an address and accepts connections; each connection gets a new
//!   actor, made by your factory and started under a [`SimpleSupervisor`] (restart type
//!   `Temporary`), that receives [`tcp::TcpEvent`]s and writes through a [`tcp::TcpHandle`].
//! - [`tcp::TcpClient`] connects out, with the same events and handle, reconnecting with a
//!   [`tcp::Backoff`] when asked.
//! - [`udp::Udp`] binds a UDP socket; datagrams arrive as [`udp::UdpEvent`]s and the actor sends
//!   through a [`udp::UdpHandle`].
//! - `http` (feature `http`) serves HTTP routes from actors or pools (504 on timeout, 500 on a
//!   crash, 503 on a full mailbox, 413 past the body limit) and turns each WebSocket connection
//!   into an actor with the same event/handle shape as TCP.
//!
//! # Events reach an `#[actor]`
//!
//! The meta process does not know your actor's message enum, so the actor type says how an event
//! becomes one of its messages: implement [`tcp::TcpHandler`] (or [`udp::UdpHandler`]) with one
//! line that wraps the event in the variant `#[actor]` generated for a handler taking it.
//!
//! # Framing
//!
//! A [`Codec`] decides what one `Data` event holds: whatever bytes one read returned
//! ([`Codec::Raw`]), one line without its line ending ([`Codec::Lines`]), or one frame with a
//! 4-byte big-endian length prefix ([`Codec::LengthDelimited`]). What the actor sends is framed
//! the same way. The codecs are `tokio-util`'s.
//!
//! # Backpressure
//!
//! Writes go through a bounded channel to a writer task: [`tcp::TcpHandle::send`] waits for room
//! when the peer reads slowly, [`tcp::TcpHandle::try_send`] reports
//! [`TrySendError::Full`] instead. Events are delivered with an ordinary cast, so an actor with a
//! bounded mailbox slows the reading of its socket down rather than letting memory grow.
//!
//! # Failure
//!
//! A connection ends with a [`CloseReason`], delivered as the last event. A connection actor
//! that ends (a panic among others) closes only its own socket; the server goes on serving.
//!
//! [`SimpleSupervisor`]: crate::supervisor::SimpleSupervisor

use std::fmt;
use std::io;

use bytes::{BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec, LinesCodec, LinesCodecError};

#[cfg(feature = "http")]
pub mod http;
pub mod tcp;
pub mod udp;

/// The byte buffer type of every event and send (re-exported from the `bytes` crate).
pub use bytes::Bytes;

/// How a byte stream is cut into `Data` events, and how sent data is framed.
///
/// ```
/// use ergo::meta::Codec;
/// assert_eq!(Codec::default(), Codec::Raw);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// No framing: each read gives one `Data` event with what arrived; sends are written as is.
    #[default]
    Raw,
    /// Newline-delimited text: one `Data` per line, without `\n` or `\r\n`, always valid
    /// UTF-8; each send gets a `\n` appended. A line longer than the maximum frame size closes
    /// the connection with [`CloseReason::FrameTooLarge`].
    Lines,
    /// Frames with a 4-byte big-endian length prefix: one `Data` per frame; each send becomes
    /// one frame. A length above the maximum frame size closes the connection with
    /// [`CloseReason::FrameTooLarge`] before the frame is read.
    LengthDelimited,
}

/// Why a connection closed: the last event a connection actor receives for it.
///
/// ```
/// use ergo::meta::CloseReason;
/// assert_eq!(CloseReason::FrameTooLarge.to_string(), "frame too large");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed its side (end of stream).
    PeerClosed,
    /// This side closed it ([`tcp::TcpHandle::close`]).
    Closed,
    /// No data arrived within the idle timeout.
    IdleTimeout,
    /// A frame (or line) was longer than the maximum frame size.
    FrameTooLarge,
    /// The peer sent data the codec cannot decode (a line that is not UTF-8).
    InvalidData(String),
    /// The server or client was stopped.
    Shutdown,
    /// A socket error.
    Io(String),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("closed by the peer"),
            CloseReason::Closed => f.write_str("closed by this side"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::FrameTooLarge => f.write_str("frame too large"),
            CloseReason::InvalidData(e) => write!(f, "invalid data: {e}"),
            CloseReason::Shutdown => f.write_str("shutdown"),
            CloseReason::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

/// A send on a closed connection; the data is handed back.
///
/// ```
/// use ergo::meta::{Bytes, SendError};
/// let err = SendError(Bytes::from_static(b"hi"));
/// assert_eq!(err.to_string(), "the connection is closed; data returned");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SendError(pub Bytes);

impl fmt::Debug for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SendError({} bytes)", self.0.len())
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the connection is closed; data returned")
    }
}

impl std::error::Error for SendError {}

/// A send that would have had to wait failed; the data is handed back.
///
/// ```
/// use ergo::meta::{Bytes, TrySendError};
/// let err = TrySendError::Full(Bytes::from_static(b"hi"));
/// assert_eq!(err.into_inner(), Bytes::from_static(b"hi"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum TrySendError {
    /// The write buffer is full: the peer reads more slowly than the actor writes.
    Full(Bytes),
    /// The connection is closed.
    Closed(Bytes),
}

impl TrySendError {
    /// The data that was not sent.
    pub fn into_inner(self) -> Bytes {
        match self {
            TrySendError::Full(b) | TrySendError::Closed(b) => b,
        }
    }
}

impl fmt::Debug for TrySendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(b) => write!(f, "Full({} bytes)", b.len()),
            TrySendError::Closed(b) => write!(f, "Closed({} bytes)", b.len()),
        }
    }
}

impl fmt::Display for TrySendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("the write buffer is full; data returned"),
            TrySendError::Closed(_) => f.write_str("the connection is closed; data returned"),
        }
    }
}

impl std::error::Error for TrySendError {}

pub use crate::error::StartError;

/// A `tokio-util` codec per [`Codec`], decoding into [`Bytes`].
pub(crate) enum FrameCodec {
    Raw,
    Lines(LinesCodec),
    Length(LengthDelimitedCodec),
}

impl FrameCodec {
    pub(crate) fn new(codec: Codec, max_frame: usize) -> Self {
        match codec {
            Codec::Raw => FrameCodec::Raw,
            Codec::Lines => FrameCodec::Lines(LinesCodec::new_with_max_length(max_frame)),
            Codec::LengthDelimited => FrameCodec::Length(
                LengthDelimitedCodec::builder()
                    .max_frame_length(max_frame)
                    .new_codec(),
            ),
        }
    }

    /// The next frame in `buf`, if complete.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CloseReason> {
        match self {
            FrameCodec::Raw if buf.is_empty() => Ok(None),
            FrameCodec::Raw => Ok(Some(buf.split().freeze())),
            FrameCodec::Lines(c) => c.decode(buf).map(|l| l.map(Bytes::from)).map_err(lines_err),
            FrameCodec::Length(c) => c
                .decode(buf)
                .map(|f| f.map(BytesMut::freeze))
                .map_err(length_err),
        }
    }

    /// The last frame at end of stream (a final line without a line ending); a partial
    /// length-delimited frame is dropped.
    pub(crate) fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Bytes> {
        match self {
            FrameCodec::Raw => self.decode(buf).ok().flatten(),
            FrameCodec::Lines(c) => c.decode_eof(buf).ok().flatten().map(Bytes::from),
            FrameCodec::Length(c) => c.decode(buf).ok().flatten().map(BytesMut::freeze),
        }
    }

    /// Appends `data`, framed, to `dst`.
    pub(crate) fn encode(&mut self, data: Bytes, dst: &mut BytesMut) -> Result<(), CloseReason> {
        match self {
            FrameCodec::Raw => dst.put(data),
            FrameCodec::Lines(_) => {
                dst.put(data);
                dst.put_u8(b'\n');
            }
            FrameCodec::Length(c) => c.encode(data, dst).map_err(length_err)?,
        }
        Ok(())
    }
}

fn lines_err(e: LinesCodecError) -> CloseReason {
    match e {
        LinesCodecError::MaxLineLengthExceeded => CloseReason::FrameTooLarge,
        LinesCodecError::Io(e) if e.kind() == io::ErrorKind::InvalidData => {
            CloseReason::InvalidData("a line is not valid UTF-8".into())
        }
        LinesCodecError::Io(e) => CloseReason::Io(e.to_string()),
    }
}

fn length_err(e: io::Error) -> CloseReason {
    let too_large = e
        .get_ref()
        .is_some_and(|inner| inner.is::<tokio_util::codec::LengthDelimitedCodecError>());
    if too_large {
        CloseReason::FrameTooLarge
    } else {
        CloseReason::InvalidData(e.to_string())
    }
}

/// Closes a connection (or a client) once, remembering why.
#[derive(Debug)]
pub(crate) struct Closer {
    pub(crate) token: tokio_util::sync::CancellationToken,
    reason: parking_lot::Mutex<Option<CloseReason>>,
}

impl Closer {
    pub(crate) fn new(token: tokio_util::sync::CancellationToken) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Closer {
            token,
            reason: parking_lot::Mutex::new(None),
        })
    }

    /// Closes with `reason` unless already closed (the first reason wins).
    pub(crate) fn close(&self, reason: CloseReason) {
        self.reason.lock().get_or_insert(reason);
        self.token.cancel();
    }

    pub(crate) fn reason(&self) -> Option<CloseReason> {
        self.reason.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(codec: Codec, max: usize, input: &[u8]) -> (Vec<Bytes>, Option<CloseReason>) {
        let mut c = FrameCodec::new(codec, max);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match c.decode(&mut buf) {
                Ok(Some(f)) => out.push(f),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn lines_split_on_newline_and_strip_cr() {
        let (f, err) = frames(Codec::Lines, 64, b"one\r\ntwo\nthr");
        assert_eq!(f, vec![Bytes::from("one"), Bytes::from("two")]);
        assert_eq!(err, None);
    }

    #[test]
    fn line_longer_than_max_is_frame_too_large() {
        let (_, err) = frames(Codec::Lines, 8, b"0123456789abcdef");
        assert_eq!(err, Some(CloseReason::FrameTooLarge));
    }

    #[test]
    fn non_utf8_line_is_invalid_data() {
        let (_, err) = frames(Codec::Lines, 64, b"\xff\xfe\n");
        assert!(matches!(err, Some(CloseReason::InvalidData(_))), "{err:?}");
    }

    #[test]
    fn length_delimited_round_trips_and_checks_length_before_reading() {
        let mut c = FrameCodec::new(Codec::LengthDelimited, 16);
        let mut wire = BytesMut::new();
        c.encode(Bytes::from("hello"), &mut wire).unwrap();
        c.encode(Bytes::from(""), &mut wire).unwrap();
        let (f, err) = frames(Codec::LengthDelimited, 16, &wire);
        assert_eq!(f, vec![Bytes::from("hello"), Bytes::new()]);
        assert_eq!(err, None);
        // Only the 4-byte header of a 1 MiB frame: refused before any body arrives.
        let (_, err) = frames(Codec::LengthDelimited, 16, &[0, 0x10, 0, 0]);
        assert_eq!(err, Some(CloseReason::FrameTooLarge));
    }

    #[test]
    fn sending_a_frame_above_the_maximum_is_frame_too_large() {
        let mut c = FrameCodec::new(Codec::LengthDelimited, 4);
        let mut wire = BytesMut::new();
        assert_eq!(
            c.encode(Bytes::from("too long"), &mut wire),
            Err(CloseReason::FrameTooLarge)
        );
    }

    #[test]
    fn lines_encode_appends_newline_and_final_line_is_kept_at_eof() {
        let mut c = FrameCodec::new(Codec::Lines, 64);
        let mut wire = BytesMut::new();
        c.encode(Bytes::from("hi"), &mut wire).unwrap();
        assert_eq!(&wire[..], b"hi\n");
        let mut rest = BytesMut::from(&b"last"[..]);
        assert_eq!(c.decode(&mut rest), Ok(None));
        assert_eq!(c.decode_eof(&mut rest), Some(Bytes::from("last")));
    }
}
