//! Frames: the unit of traffic between two nodes.
//!
//! A frame is a 4-byte big-endian length, a fixed [`HEADER_LEN`]-byte [`Header`] and an opaque
//! payload:
//!
//! ```text
//! offset  size  field
//!      0     4  length      u32 BE: bytes after this field (header + payload)
//!      4     1  kind        FrameKind code (0 is never valid)
//!      5     8  to.id       u64 BE: the target process on the receiving node (0 = the node)
//!     13     4  to.creation u32 BE: the creation of the receiving node the sender knows of
//!     17     8  from        u64 BE: the sending process on the sending node (0 = the node)
//!     25     8  correlation u64 BE: call id, monitor ref, ... (0 when the kind has none)
//!     33     …  payload     length - 29 bytes (CBOR for the kinds that carry data)
//! ```
//!
//! # Pids on the wire
//!
//! A [`crate::Pid`]'s node is a process-local atom, so it never crosses the wire. A frame always
//! travels on one authenticated connection between two nodes whose names and creations the
//! handshake established, so the header names no node at all:
//!
//! - `to` is a process **of the receiving node**: its id and the creation the sender believes
//!   the receiver has ([`WirePid`]). A frame whose `to.creation` is not the receiver's current
//!   creation is for a process of an earlier run and must fail with `NoProc`.
//! - `from` is a process **of the sending node**: only its id; its node and creation are the
//!   connection peer's. A peer can therefore speak only for its own processes: it cannot forge a
//!   sender on a third node. A pid of a third node (say the `from` of `exit(pid, reason)`) travels
//!   inside the payload, with its node name as a string.
//!
//! Process ids start at 1; id 0 in `to` or `from` stands for the node itself (node-level
//! requests such as [`FrameKind::Lookup`], and [`FrameKind::Heartbeat`]).
//!
//! # Limits
//!
//! [`FrameCodec`] refuses a frame whose declared length is above its maximum
//! ([`DEFAULT_MAX_FRAME_LEN`], 16 MiB, unless configured) as soon as the 4 length bytes have
//! arrived, before reserving room for it: a peer declaring 1 GiB gets
//! [`FrameError::TooLarge`] and nothing big is allocated. Before authentication the handshake
//! uses a 64 KiB maximum instead.
//!
//! # Errors
//!
//! Every decoding failure is a [`FrameError`]; none is recoverable on that connection (the byte
//! stream has lost its framing or the peer is hostile), so the caller closes it and logs the
//! reason. The decoder never panics, whatever the bytes.

use std::fmt;
use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::Pid;

/// Size of the length prefix in front of every frame.
pub const LEN_PREFIX: usize = 4;

/// Size of the encoded [`Header`]; the smallest valid declared length.
pub const HEADER_LEN: usize = 29;

/// Default maximum declared length of a frame (header + payload): 16 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// What a frame asks of its receiver. The `u8` codes are part of the protocol and never change.
///
/// For each kind: what `to`, `from`, `correlation` and the payload mean. A field not mentioned
/// is 0 (or empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum FrameKind {
    /// A message for `to`'s mailbox from `from`; payload: the message (CBOR).
    Cast = 1,
    /// A request from `from` to `to`; `correlation`: the call id the reply carries back;
    /// payload: the message (CBOR).
    Call = 2,
    /// The answer to a [`Call`](FrameKind::Call) (or a [`Lookup`](FrameKind::Lookup)): `to` is
    /// the caller, `from` the callee, `correlation` the call id; payload: the value (CBOR).
    Reply = 3,
    /// A call or lookup that will get no reply (no such process, a request that does not decode
    /// as the target's message type, ...): `to` is the caller, `correlation` the call id;
    /// payload: the reason (CBOR).
    CallFailed = 4,
    /// An exit signal sent with `exit(pid, reason)` to `to`; payload: the reason (CBOR), and the
    /// sender's pid when it is not `from`.
    Exit = 5,
    /// The exit signal of a link: `from`, linked to `to`, ended; payload: the reason (CBOR).
    /// Ignored by `to` when the link is already gone.
    LinkExit = 6,
    /// An untrappable kill of `to`.
    Kill = 7,
    /// A request that `to` stop gracefully; payload: the reason (CBOR).
    Stop = 8,
    /// `from` links to `to`.
    Link = 9,
    /// `from` removes its link to `to`.
    Unlink = 10,
    /// `from` monitors `to`; `correlation`: the monitor ref.
    Monitor = 11,
    /// `from` stops monitoring `to`; `correlation`: the monitor ref.
    Demonitor = 12,
    /// `from`, monitored by `to`, ended; `correlation`: the monitor ref; payload: the reason
    /// (CBOR).
    Down = 13,
    /// A request from `from` to the receiving node to resolve a registered name; `correlation`:
    /// the call id; payload: the name (CBOR). Answered by a `Reply` or a `CallFailed`.
    Lookup = 14,
    /// Keeps a quiet connection alive and proves the peer still answers; no fields.
    Heartbeat = 15,
    /// One handshake message (payload: see [`super::handshake`]); valid only before
    /// authentication, and the only kind valid then.
    Handshake = 16,
    /// A request from `from` to the receiving node to forward an event's values: `correlation`:
    /// the subscription id the values will carry (chosen by the subscribing node); payload: the
    /// event name and payload type (CBOR). Answered by a `Reply` (the owner's pid) or a
    /// `CallFailed`; then `EventPublish` frames follow.
    EventSubscribe = 17,
    /// One published value of a subscribed event: `correlation`: the subscription id; payload:
    /// the value (CBOR).
    EventPublish = 18,
    /// The event's registration ended: `correlation`: the subscription id; payload: the owner's
    /// exit reason (CBOR). No values follow.
    EventDown = 19,
    /// The subscribing node no longer wants the values: `correlation`: the subscription id.
    EventUnsubscribe = 20,
    /// A request to the receiving node itself (start an allow-listed actor or application):
    /// `correlation`: the call id; payload: the request (CBOR). Answered by a `Reply`.
    NodeRequest = 21,
    /// The sender is closing this connection on purpose (its node is shutting down): everything
    /// it sent on the connection came before this frame, and nothing follows. No fields.
    Goodbye = 22,
    /// The first frame on every connection after the handshake, in each direction:
    /// `correlation` names the link of the sender the connection belongs to (a number the
    /// sender never reuses while it runs, larger for a later link). The receiver keeps the
    /// connections of one link of the peer together, and stops reading the connections of
    /// an older link before it delivers anything from a newer one. No payload.
    Attach = 23,
}

impl FrameKind {
    /// Every kind, in code order.
    pub const ALL: [FrameKind; 23] = [
        FrameKind::Cast,
        FrameKind::Call,
        FrameKind::Reply,
        FrameKind::CallFailed,
        FrameKind::Exit,
        FrameKind::LinkExit,
        FrameKind::Kill,
        FrameKind::Stop,
        FrameKind::Link,
        FrameKind::Unlink,
        FrameKind::Monitor,
        FrameKind::Demonitor,
        FrameKind::Down,
        FrameKind::Lookup,
        FrameKind::Heartbeat,
        FrameKind::Handshake,
        FrameKind::EventSubscribe,
        FrameKind::EventPublish,
        FrameKind::EventDown,
        FrameKind::EventUnsubscribe,
        FrameKind::NodeRequest,
        FrameKind::Goodbye,
        FrameKind::Attach,
    ];

    /// The kind's code on the wire.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The kind with this code, if any.
    ///
    /// ```
    /// use ergo::net::frame::FrameKind;
    /// assert_eq!(FrameKind::from_code(2), Some(FrameKind::Call));
    /// assert_eq!(FrameKind::from_code(0), None);
    /// ```
    pub const fn from_code(code: u8) -> Option<FrameKind> {
        if code >= 1 && code as usize <= FrameKind::ALL.len() {
            Some(FrameKind::ALL[code as usize - 1])
        } else {
            None
        }
    }
}

impl TryFrom<u8> for FrameKind {
    type Error = FrameError;

    fn try_from(code: u8) -> Result<Self, FrameError> {
        FrameKind::from_code(code).ok_or(FrameError::UnknownKind(code))
    }
}

/// A pid as a header carries it: the node is implied by the connection (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WirePid {
    /// The process's number on its node; 0 stands for the node itself.
    pub id: u64,
    /// The creation of the process's node.
    pub creation: u32,
}

impl WirePid {
    /// "No process": the node itself (id 0, creation 0).
    pub const NODE: WirePid = WirePid { id: 0, creation: 0 };
}

impl From<Pid> for WirePid {
    /// Drops the node: use it only for a pid of the node at the other end of the connection.
    fn from(pid: Pid) -> WirePid {
        WirePid {
            id: pid.id(),
            creation: pid.creation(),
        }
    }
}

impl fmt::Display for WirePid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<peer.{}.{}>", self.id, self.creation)
    }
}

/// The fixed part of a frame: what it is, for whom, from whom, and which request it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// What the frame asks of its receiver.
    pub kind: FrameKind,
    /// The target process on the receiving node.
    pub to: WirePid,
    /// The id of the sending process on the sending node (0 = the node itself).
    pub from: u64,
    /// Call id or monitor ref, depending on the kind; 0 when the kind has none.
    pub correlation: u64,
}

impl Header {
    /// A header of `kind` with every other field 0 (for node-level kinds such as
    /// [`FrameKind::Heartbeat`]).
    pub const fn control(kind: FrameKind) -> Header {
        Header {
            kind,
            to: WirePid::NODE,
            from: 0,
            correlation: 0,
        }
    }

    /// Appends the [`HEADER_LEN`] bytes of this header to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(HEADER_LEN);
        dst.put_u8(self.kind.code());
        dst.put_u64(self.to.id);
        dst.put_u32(self.to.creation);
        dst.put_u64(self.from);
        dst.put_u64(self.correlation);
    }

    /// Reads a header from the first [`HEADER_LEN`] bytes of `src` (the rest is ignored).
    ///
    /// # Errors
    ///
    /// [`FrameError::Truncated`] when `src` is shorter than a header, [`FrameError::UnknownKind`]
    /// when the kind byte is no [`FrameKind`] code.
    pub fn decode(mut src: &[u8]) -> Result<Header, FrameError> {
        if src.len() < HEADER_LEN {
            return Err(FrameError::Truncated { len: src.len() });
        }
        let kind = FrameKind::try_from(src.get_u8())?;
        let to = WirePid {
            id: src.get_u64(),
            creation: src.get_u32(),
        };
        Ok(Header {
            kind,
            to,
            from: src.get_u64(),
            correlation: src.get_u64(),
        })
    }
}

/// A decoded frame: its header and its payload (a slice of the read buffer, not a copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The header.
    pub header: Header,
    /// The payload, opaque at this layer.
    pub payload: Bytes,
}

/// Why a frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame's length (header + payload, declared or about to be encoded) is above the
    /// maximum. Decoding reports this before reserving any room for the frame.
    #[error("frame of {len} bytes is above the maximum of {max} bytes")]
    TooLarge {
        /// The frame's length.
        len: usize,
        /// The maximum in force.
        max: usize,
    },
    /// The declared length is too short to hold a header.
    #[error("frame of {len} bytes is shorter than its {HEADER_LEN}-byte header")]
    Truncated {
        /// The declared length.
        len: usize,
    },
    /// The header's kind byte is no known [`FrameKind`] code.
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({buffered} bytes buffered)")]
    UnexpectedEof {
        /// The bytes of the unfinished frame that had arrived.
        buffered: usize,
    },
    /// Reading or writing the stream failed (only through a `tokio_util` `Framed`, which
    /// reports its I/O errors as the codec's error type).
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Appends a frame's payload to the frame being encoded (see
/// [`FrameCodec::encode_frame_with`]). Append-only, so it cannot disturb the header or the
/// frames before it; implements [`io::Write`] for serializers that write to one (such as
/// `ciborium::into_writer`).
#[derive(Debug)]
pub struct PayloadWriter<'a> {
    dst: &'a mut BytesMut,
    start: usize,
}

impl PayloadWriter<'_> {
    /// Appends `bytes`.
    pub fn put_slice(&mut self, bytes: &[u8]) {
        self.dst.extend_from_slice(bytes);
    }

    /// Reserves room for at least `additional` more bytes.
    pub fn reserve(&mut self, additional: usize) {
        self.dst.reserve(additional);
    }

    /// The payload bytes written so far.
    pub fn len(&self) -> usize {
        self.dst.len() - self.start
    }

    /// `true` when nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl io::Write for PayloadWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.put_slice(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.put_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Encodes and decodes frames, enforcing a maximum frame length.
///
/// Use it directly on a `BytesMut` ([`encode_frame`](FrameCodec::encode_frame),
/// [`decode_frame`](FrameCodec::decode_frame)), or as a `tokio_util` [`Decoder`]/[`Encoder`]
/// in a `FramedRead`/`FramedWrite`. The maximum applies to the declared length (header +
/// payload, without the 4-byte prefix) in both directions; it can be raised after the
/// handshake with [`set_max_frame_len`](FrameCodec::set_max_frame_len).
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use ergo::net::frame::{FrameCodec, FrameKind, Header, WirePid};
///
/// let codec = FrameCodec::new();
/// let header = Header {
///     kind: FrameKind::Call,
///     to: WirePid { id: 7, creation: 3 },
///     from: 12,
///     correlation: 99,
/// };
/// let mut buf = BytesMut::new();
/// codec.encode_frame(&header, b"payload", &mut buf)?;
/// codec.encode_frame(&header, b"second", &mut buf)?; // frames coalesce in one buffer
///
/// let first = codec.decode_frame(&mut buf)?.expect("a whole frame");
/// assert_eq!(first.header, header);
/// assert_eq!(&first.payload[..], b"payload");
/// assert_eq!(&codec.decode_frame(&mut buf)?.expect("a whole frame").payload[..], b"second");
/// assert!(codec.decode_frame(&mut buf)?.is_none());
/// # Ok::<(), ergo::net::frame::FrameError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameCodec {
    max_frame_len: usize,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new()
    }
}

impl FrameCodec {
    /// A codec with the default maximum, [`DEFAULT_MAX_FRAME_LEN`] (16 MiB).
    pub const fn new() -> FrameCodec {
        FrameCodec {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }

    /// A codec refusing frames whose length (header + payload) is above `max`.
    ///
    /// `max` is kept between [`HEADER_LEN`] and `u32::MAX` (what the prefix can declare).
    pub const fn with_max_frame_len(max: usize) -> FrameCodec {
        FrameCodec {
            max_frame_len: clamp_max(max),
        }
    }

    /// The maximum frame length (header + payload).
    pub const fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Changes the maximum (clamped as in [`with_max_frame_len`](Self::with_max_frame_len)),
    /// for example from the handshake's 64 KiB to the node's limit once authenticated.
    pub fn set_max_frame_len(&mut self, max: usize) {
        self.max_frame_len = clamp_max(max);
    }

    /// Appends one frame to `dst`.
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLarge`] when header + payload exceed the maximum; `dst` is then left
    /// as it was.
    pub fn encode_frame(
        &self,
        header: &Header,
        payload: &[u8],
        dst: &mut BytesMut,
    ) -> Result<(), FrameError> {
        let len = HEADER_LEN.saturating_add(payload.len());
        if len > self.max_frame_len {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        dst.reserve(LEN_PREFIX + len);
        // `len <= max_frame_len <= u32::MAX`.
        dst.put_u32(len as u32);
        header.encode(dst);
        dst.extend_from_slice(payload);
        Ok(())
    }

    /// Appends one frame to `dst`, letting `write_payload` serialize the payload straight into
    /// the buffer (no intermediate `Vec`); the length prefix is filled in afterwards.
    ///
    /// # Errors
    ///
    /// The error of `write_payload`, or [`FrameError::TooLarge`] (converted into `E`) when the
    /// frame came out above the maximum. On any error `dst` is truncated back to what it was.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use bytes::BytesMut;
    /// use ergo::net::frame::{FrameCodec, FrameError, FrameKind, Header};
    ///
    /// let codec = FrameCodec::with_max_frame_len(64);
    /// let mut buf = BytesMut::new();
    /// let header = Header::control(FrameKind::Heartbeat);
    /// codec.encode_frame_with(&header, &mut buf, |w| {
    ///     w.write_all(b"small").map_err(FrameError::Io)
    /// })?;
    /// let too_big = codec.encode_frame_with(&header, &mut buf, |w| {
    ///     w.write_all(&[0; 100]).map_err(FrameError::Io)
    /// });
    /// assert!(matches!(too_big, Err(FrameError::TooLarge { .. })));
    /// assert_eq!(buf.len(), 4 + 29 + 5); // only the first frame
    /// # Ok::<(), FrameError>(())
    /// ```
    pub fn encode_frame_with<E, F>(
        &self,
        header: &Header,
        dst: &mut BytesMut,
        write_payload: F,
    ) -> Result<(), E>
    where
        E: From<FrameError>,
        F: FnOnce(&mut PayloadWriter<'_>) -> Result<(), E>,
    {
        let start = dst.len();
        dst.reserve(LEN_PREFIX + HEADER_LEN);
        dst.put_u32(0);
        header.encode(dst);
        let mut writer = PayloadWriter {
            start: dst.len(),
            dst,
        };
        if let Err(e) = write_payload(&mut writer) {
            dst.truncate(start);
            return Err(e);
        }
        let len = dst.len() - start - LEN_PREFIX;
        if len > self.max_frame_len {
            dst.truncate(start);
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame_len,
            }
            .into());
        }
        // `len <= max_frame_len <= u32::MAX`.
        dst[start..start + LEN_PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }

    /// Checks a length prefix: the declared frame length, if acceptable.
    ///
    /// For readers that read exactly one frame at a time (read 4 bytes, check, read the rest).
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLarge`] above the maximum, [`FrameError::Truncated`] below
    /// [`HEADER_LEN`].
    pub fn check_len(&self, prefix: [u8; LEN_PREFIX]) -> Result<usize, FrameError> {
        let len = u32::from_be_bytes(prefix) as usize;
        if len > self.max_frame_len {
            Err(FrameError::TooLarge {
                len,
                max: self.max_frame_len,
            })
        } else if len < HEADER_LEN {
            Err(FrameError::Truncated { len })
        } else {
            Ok(len)
        }
    }

    /// Takes one whole frame off the front of `src`, or returns `Ok(None)` (and reserves room
    /// for the rest of the frame, never more than the maximum) when it has not fully arrived.
    ///
    /// The length is checked as soon as the prefix is in, and the kind as soon as its byte is.
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLarge`], [`FrameError::Truncated`] or [`FrameError::UnknownKind`]; the
    /// connection's framing is then lost.
    pub fn decode_frame(&self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(prefix) = src.first_chunk::<LEN_PREFIX>() else {
            return Ok(None);
        };
        let len = self.check_len(*prefix)?;
        if let Some(&code) = src.get(LEN_PREFIX) {
            FrameKind::try_from(code)?;
        }
        let total = LEN_PREFIX + len;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(LEN_PREFIX);
        let mut body = src.split_to(len);
        let header = Header::decode(&body)?;
        body.advance(HEADER_LEN);
        Ok(Some(Frame {
            header,
            payload: body.freeze(),
        }))
    }
}

const fn clamp_max(max: usize) -> usize {
    let ceiling = u32::MAX as usize;
    if max < HEADER_LEN {
        HEADER_LEN
    } else if max > ceiling {
        ceiling
    } else {
        max
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        self.decode_frame(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.decode_frame(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::UnexpectedEof {
                buffered: src.len(),
            }),
        }
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode_frame(&frame.header, &frame.payload, dst)
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode_frame(&frame.header, &frame.payload, dst)
    }
}

#[cfg(test)]
pub(crate) mod proptests;

#[cfg(test)]
mod tests;
