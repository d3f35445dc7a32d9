//! One connection's outgoing side: the buffer frames are queued in, and the writer task that
//! drains it into the socket.
//!
//! # Flow
//!
//! A sender encodes its frame straight into the connection's buffer under a short lock and
//! wakes the writer only when the buffer was empty. The writer swaps the buffer for a spare
//! one and writes everything queued meanwhile in one `write_all`, so a busy connection costs
//! one syscall per wake-up, not per frame.
//!
//! # Limits
//!
//! - Above [`HIGH_WATER`] (256 KiB) queued, casts are refused with `Full` (a cast waits for
//!   [`Conn::wait_room`], `try_cast` reports it); published event values above
//!   [`EVENT_HIGH_WATER`] (4 MiB: a publish never waits, it drops and counts). This is also
//!   the bound on what a break can lose silently from this node's side: a connection holds at
//!   most `HIGH_WATER` of casts (`EVENT_HIGH_WATER` of events, plus one frame) queued and as
//!   much again being written; what the
//!   kernel already took (its socket buffers, on both hosts) is lost with it too. Frames still
//!   queued or being written when a connection closes are counted
//!   ([`Node::frames_dropped`](crate::Node::frames_dropped)) and logged with the link's end.
//! - Above [`HARD_LIMIT`] bytes even replies and signals stop: the peer does not read what it
//!   asks for, and the connection is given up.
//! - A write that makes no progress for the heartbeat timeout gives the connection up too.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::frame::{FrameCodec, FrameError, FrameKind, Header, PayloadWriter};
use crate::node::codec::encode_cbor;
use crate::node::transport::{Room, SendFailure};

/// A connection's outgoing buffer above which casts wait (and `try_cast` reports `Full`).
///
/// 256 KiB: small enough to bound what a break loses (4 MiB before: ~196 000 casts per cut in
/// `scripts/chaos`, 87 000 with this), large enough that the writer still sends in big
/// batches (`remote_tell_p1` 3.15 M msg/s with 4 MiB, 3.20 M with 256 KiB, same machine).
pub(crate) const HIGH_WATER: usize = 256 * 1024;

/// A connection's outgoing buffer above which published event values are dropped (4 MiB):
/// publishing never waits, so events get a larger window than casts, which wait for room.
pub(crate) const EVENT_HIGH_WATER: usize = 4 * 1024 * 1024;

/// A writer keeps buffers up to this capacity between writes (two per connection), so a busy
/// connection does not reallocate (and page-fault) its buffers on every burst.
const KEEP_CAPACITY: usize = 2 * EVENT_HIGH_WATER;

/// A connection's outgoing buffer above which nothing more is queued and the connection is
/// given up (its peer does not read what it asks for).
const HARD_LIMIT: usize = 32 * 1024 * 1024;

/// One connection's outgoing side.
pub(crate) struct Conn {
    /// Why this connection was given up on by its own side (its buffer overflowed, its peer
    /// stopped reading): the reader reports it and the link goes down.
    failure: OnceLock<String>,
    out: Mutex<Outbox>,
    wake: Notify,
    room: Notify,
    pub(super) cancel: CancellationToken,
}

struct Outbox {
    bytes: BytesMut,
    closed: bool,
    /// A `Goodbye` is queued last: nothing more is taken, the writer sends what is queued, shuts
    /// its side of the socket down and ends.
    finishing: bool,
    /// The writer did so.
    finished: bool,
    /// Frames in `bytes`.
    frames: u64,
    /// Frames the writer took and has not finished writing.
    in_flight: u64,
    /// The frames dropped at the close were counted (once).
    counted: bool,
}

/// Why a frame was not queued.
#[derive(Debug)]
pub(crate) enum PushError {
    Closed,
    Full,
    Encode(String),
    Frame(FrameError),
}

impl From<FrameError> for PushError {
    fn from(e: FrameError) -> Self {
        PushError::Frame(e)
    }
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Closed => f.write_str("the connection is closed"),
            PushError::Full => f.write_str("the connection's buffer is full"),
            PushError::Encode(e) => write!(f, "the message could not be encoded: {e}"),
            PushError::Frame(e) => write!(f, "{e}"),
        }
    }
}

impl From<PushError> for SendFailure {
    fn from(e: PushError) -> Self {
        match e {
            PushError::Closed => SendFailure::Closed,
            PushError::Full => SendFailure::Full,
            other => SendFailure::Refused(other.to_string()),
        }
    }
}

/// The most a [`Room`] lets a buffer hold before a push is refused.
pub(crate) fn limit(room: Room) -> usize {
    match room {
        Room::Bounded => HIGH_WATER,
        Room::Events => EVENT_HIGH_WATER,
        Room::Always => usize::MAX,
    }
}

impl Conn {
    pub(crate) fn new(cancel: CancellationToken) -> std::sync::Arc<Conn> {
        std::sync::Arc::new(Conn {
            failure: OnceLock::new(),
            out: Mutex::new(Outbox {
                bytes: BytesMut::new(),
                closed: false,
                finishing: false,
                finished: false,
                frames: 0,
                in_flight: 0,
                counted: false,
            }),
            wake: Notify::new(),
            room: Notify::new(),
            cancel,
        })
    }

    /// Appends one frame to the buffer and wakes the writer if it was idle.
    pub(crate) fn push(
        &self,
        codec: &FrameCodec,
        header: &Header,
        payload: impl FnOnce(&mut PayloadWriter<'_>) -> Result<(), PushError>,
    ) -> Result<(), PushError> {
        self.push_below(usize::MAX, codec, header, payload)
    }

    /// A frame without a payload.
    pub(crate) fn push_empty(&self, codec: &FrameCodec, header: &Header) -> Result<(), PushError> {
        self.push(codec, header, |_| Ok(()))
    }

    /// [`Conn::push`] unless the buffer already holds `limit` bytes or more.
    #[inline]
    pub(crate) fn push_below(
        &self,
        limit: usize,
        codec: &FrameCodec,
        header: &Header,
        payload: impl FnOnce(&mut PayloadWriter<'_>) -> Result<(), PushError>,
    ) -> Result<(), PushError> {
        let mut out = self.out.lock();
        if out.closed || out.finishing {
            return Err(PushError::Closed);
        }
        if out.bytes.len() >= limit {
            return Err(PushError::Full);
        }
        if out.bytes.len() >= HARD_LIMIT {
            // Even frames that never wait (replies, signals) stop here: the peer does not read
            // what it asks for. Give the connection up rather than grow without bound.
            out.closed = true;
            drop(out);
            self.fail(format!(
                "more than {HARD_LIMIT} bytes queued for a peer that does not read them"
            ));
            return Err(PushError::Closed);
        }
        let was_empty = out.bytes.is_empty();
        codec.encode_frame_with(header, &mut out.bytes, payload)?;
        out.frames += 1;
        drop(out);
        if was_empty {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The `Attach` frame that opens the connection: it belongs to this node's link `link`.
    pub(crate) fn push_attach(&self, codec: &FrameCodec, link: u64) {
        let header = Header {
            kind: FrameKind::Attach,
            to: super::frame::WirePid::NODE,
            from: 0,
            correlation: link,
        };
        let _ = self.push_empty(codec, &header);
    }

    /// A frame whose payload is `bytes`, already encoded.
    #[inline]
    pub(crate) fn push_bytes(
        &self,
        limit: usize,
        codec: &FrameCodec,
        header: &Header,
        bytes: &[u8],
    ) -> Result<(), PushError> {
        self.push_below(limit, codec, header, |w| {
            w.put_slice(bytes);
            Ok(())
        })
    }

    /// A frame whose payload is `value` in CBOR.
    pub(crate) fn push_value<T: Serialize>(
        &self,
        codec: &FrameCodec,
        header: &Header,
        value: &T,
    ) -> Result<(), PushError> {
        self.push(codec, header, |w| {
            encode_cbor(value, w as &mut dyn std::io::Write).map_err(PushError::Encode)
        })
    }

    /// Closes the connection cleanly: queues a `Goodbye` after everything already queued and
    /// refuses anything more; the writer sends it all, shuts its half of the socket down and
    /// ends ([`Conn::is_finished`]). The peer's reader knows from the `Goodbye` that the end was
    /// meant.
    pub(crate) fn finish(&self, codec: &FrameCodec) {
        let mut out = self.out.lock();
        if out.closed || out.finishing {
            return;
        }
        if codec
            .encode_frame(&Header::control(FrameKind::Goodbye), &[], &mut out.bytes)
            .is_ok()
        {
            out.finishing = true;
        }
        drop(out);
        self.wake.notify_one();
    }

    /// Whether the writer has sent the `Goodbye` of [`Conn::finish`] (or the connection is
    /// closed, so it never will).
    pub(crate) fn is_finished(&self) -> bool {
        let out = self.out.lock();
        out.finished || out.closed
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.out.lock().closed
    }

    /// Whether frames are queued that the writer has not taken yet.
    pub(crate) fn has_queued(&self) -> bool {
        !self.out.lock().bytes.is_empty()
    }

    /// Gives the connection up: its reader ends with `reason` and takes the link down.
    pub(crate) fn fail(&self, reason: String) {
        let _ = self.failure.set(reason);
        self.close();
    }

    /// Why the connection was given up, if it was (for the reader to report).
    pub(crate) fn ended(&self) -> Result<(), String> {
        match self.failure.get() {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    /// Closes the connection; returns how many frames it drops (queued, or taken by the
    /// writer and not yet written), counted on the first call only.
    pub(crate) fn close(&self) -> u64 {
        let dropped = {
            let mut out = self.out.lock();
            out.closed = true;
            if std::mem::replace(&mut out.counted, true) {
                0
            } else {
                out.frames + out.in_flight
            }
        };
        self.cancel.cancel();
        self.room.notify_waiters();
        dropped
    }

    /// Waits until the buffer has room (or the connection closes).
    pub(crate) async fn wait_room(&self) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let out = self.out.lock();
                if out.closed || out.bytes.len() < HIGH_WATER {
                    return;
                }
            }
            notified.await;
        }
    }
}

/// Drains a connection's buffer into the socket, one write per wake-up; sends a heartbeat
/// when nothing was written for `heartbeat`.
pub(crate) async fn write_loop<W: tokio::io::AsyncWrite + Unpin>(
    conn: &Conn,
    mut write: W,
    (heartbeat, stall): (Duration, Duration),
) -> Result<(), String> {
    let codec = FrameCodec::new();
    let mut spare = BytesMut::with_capacity(64 * 1024);
    loop {
        let notified = conn.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let finished = {
            let mut out = conn.out.lock();
            if out.closed {
                return Ok(());
            }
            std::mem::swap(&mut out.bytes, &mut spare);
            out.in_flight = std::mem::take(&mut out.frames);
            spare.is_empty() && out.finishing
        };
        if finished {
            // Everything up to the `Goodbye` is written: end the stream (a FIN, not a reset).
            let _ = tokio::time::timeout(stall, write.shutdown()).await;
            conn.out.lock().finished = true;
            return Ok(());
        }
        if spare.is_empty() {
            tokio::select! {
                _ = &mut notified => continue,
                _ = conn.cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(heartbeat) => {
                    codec
                        .encode_frame(&Header::control(FrameKind::Heartbeat), &[], &mut spare)
                        .map_err(|e| e.to_string())?;
                }
            }
        } else {
            conn.room.notify_waiters();
        }
        tokio::select! {
            written = tokio::time::timeout(stall, write.write_all(&spare)) => match written {
                Ok(written) => written.map_err(|e| format!("write failed: {e}"))?,
                // The peer has not taken a byte for the heartbeat timeout.
                Err(_) => return Err(format!("the peer has not read for {stall:?}")),
            },
            _ = conn.cancel.cancelled() => return Ok(()),
        }
        conn.out.lock().in_flight = 0;
        spare.clear();
        if spare.capacity() > KEEP_CAPACITY {
            spare = BytesMut::with_capacity(64 * 1024);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::frame::WirePid;

    fn cast() -> Header {
        Header {
            kind: FrameKind::Cast,
            to: WirePid::NODE,
            from: 1,
            correlation: 0,
        }
    }

    #[test]
    fn closing_counts_the_frames_it_drops_once() {
        let conn = Conn::new(CancellationToken::new());
        let codec = FrameCodec::new();
        for _ in 0..3 {
            conn.push_bytes(HIGH_WATER, &codec, &cast(), b"x").unwrap();
        }
        assert_eq!(conn.close(), 3);
        assert_eq!(conn.close(), 0);
        assert!(matches!(
            conn.push_bytes(HIGH_WATER, &codec, &cast(), b"x"),
            Err(PushError::Closed)
        ));
    }

    #[tokio::test]
    async fn frames_a_writer_could_not_write_are_counted_as_dropped() {
        // A peer that never reads: a duplex pipe of 64 bytes nobody drains.
        let (_reader, writer) = tokio::io::duplex(64);
        let conn = Conn::new(CancellationToken::new());
        let codec = FrameCodec::new();
        for _ in 0..10 {
            conn.push_bytes(HIGH_WATER, &codec, &cast(), &[0; 100])
                .unwrap();
        }
        let c = conn.clone();
        let writer = tokio::spawn(async move {
            write_loop(
                &c,
                writer,
                (Duration::from_secs(60), Duration::from_secs(60)),
            )
            .await
        });
        // The writer takes the batch and blocks on the full pipe; two more are queued.
        tokio::time::timeout(Duration::from_secs(5), async {
            while conn.has_queued() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        conn.push_bytes(HIGH_WATER, &codec, &cast(), b"y").unwrap();
        conn.push_bytes(HIGH_WATER, &codec, &cast(), b"z").unwrap();
        assert_eq!(conn.close(), 12);
        assert!(writer.await.unwrap().is_ok());
    }
}
