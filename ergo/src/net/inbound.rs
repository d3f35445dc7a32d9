//! The read side of a connection: the loop that decodes frames, and where each kind of frame
//! goes.
//!
//! - `Cast`, `Call`: to the target process, which decodes its own message
//!   (`deliver_encoded`); a call carries its way back, a [`ReplyRoute`] over this connection.
//! - `Reply`, `CallFailed`: to the pending call or request with that correlation.
//! - signal frames: [`super::signals::receive`].
//! - `Lookup`, `NodeRequest`: answered by this node ([`super::lookup`], [`super::spawn`]).
//! - event frames: to the node service registered for them (events across nodes).
//! - `Heartbeat`: nothing (hearing anything keeps the connection alive).
//! - `Goodbye`: the peer closes the connection on purpose, after everything it sent on it; the
//!   reader stops, and the link goes down (logged as a clean end) once the peer said so on every
//!   connection.
//!
//! A frame that does not decode, or a handshake frame after authentication, ends the
//! connection and takes its link down.

use std::sync::Arc;

use bytes::BytesMut;
use serde::Serialize;
use tokio::io::AsyncReadExt;

use super::conn::Conn;
use super::frame::{Frame, FrameKind, Header, WirePid};
use super::peer::{service_frame, PeerLink};
use super::transport::Net;
use crate::node::codec::decode_cbor;
use crate::node::transport::{
    CallFailure, DeliverError, Peer, ReplyChannel, ReplyRoute, SendFailure,
};
use crate::{CallError, Node, Pid};

/// The header of a frame back to the sender of `h` (an answer, a failed call, a refused link
/// or monitor): to the process that sent it, from the one it was for, same correlation.
pub(super) fn answer_header(link: &PeerLink, kind: FrameKind, h: &Header) -> Header {
    back_header(link, kind, h.from, h.to.id, h.correlation)
}

/// The header of a frame to the peer's process `to` (of the run linked) from this node's
/// process `from`.
fn back_header(link: &PeerLink, kind: FrameKind, to: u64, from: u64, correlation: u64) -> Header {
    Header {
        kind,
        to: WirePid {
            id: to,
            creation: link.creation(),
        },
        from,
        correlation,
    }
}

/// Answers a node-level request (`Lookup`, `EventSubscribe`, `NodeRequest`) on the connection
/// it came on.
pub(super) fn answer<T: Serialize>(conn: &Conn, link: &PeerLink, h: &Header, answer: &T) {
    let header = answer_header(link, FrameKind::Reply, h);
    let _ = conn.push_value(&link.codec, &header, answer);
}

/// One connection of a link, as the way back for the calls that came in on it.
pub(super) struct ConnRoute {
    pub(super) conn: Arc<Conn>,
    pub(super) link: Arc<PeerLink>,
}

impl ReplyChannel for ConnRoute {
    fn reply(
        &self,
        caller: u64,
        correlation: u64,
        callee: Pid,
        payload: &[u8],
    ) -> Result<(), SendFailure> {
        let header = back_header(
            &self.link,
            FrameKind::Reply,
            caller,
            callee.id(),
            correlation,
        );
        self.conn
            .push_bytes(usize::MAX, &self.link.codec, &header, payload)
            .map_err(SendFailure::from)
    }

    fn fail(&self, caller: u64, correlation: u64, callee: Pid, failure: &CallFailure) {
        let header = back_header(
            &self.link,
            FrameKind::CallFailed,
            caller,
            callee.id(),
            correlation,
        );
        let _ = self.conn.push_value(&self.link.codec, &header, failure);
    }

    fn is_open(&self) -> bool {
        !self.conn.is_closed()
    }

    fn peer_name(&self) -> &str {
        &self.link.name
    }
}

impl Net {
    /// Reads and delivers one connection's frames until it ends. A connection this node
    /// dialled (`dialled`) must open with the peer's `Attach`; the acceptor has read it already.
    ///
    /// # Order across links
    ///
    /// Frames are delivered a read at a time while holding the peer's gate shared, and only
    /// while the connection is open. Before its first frame, the reader takes the gate once
    /// exclusively: a link replaced by this one was taken down (its connections closed) before
    /// this reader started, so once it holds the gate the old readers have finished what they
    /// were delivering and will deliver nothing more, even frames already in their buffers.
    pub(super) async fn read_loop<R: tokio::io::AsyncRead + Unpin>(
        self: &Arc<Self>,
        node: &Node,
        route: &Arc<ConnRoute>,
        mut read: R,
        dialled: bool,
    ) -> Result<(), String> {
        let gate = self.gate(route.link.atom);
        drop(gate.write());
        let mut attached = !dialled;
        let mut inbox = BytesMut::with_capacity(64 * 1024);
        loop {
            {
                let _open = gate.read();
                if route.conn.cancel.is_cancelled() {
                    return route.conn.ended();
                }
                loop {
                    match self.codec.decode_frame(&mut inbox) {
                        Ok(Some(frame)) if !attached => {
                            attached = true;
                            let h = frame.header;
                            if h.kind != FrameKind::Attach || h.correlation == 0 {
                                return Err(format!(
                                    "the first frame is a {:?}, not an Attach",
                                    h.kind
                                ));
                            }
                            if let Err(carried) = route.link.attach(h.correlation) {
                                return Err(format!(
                                    "the peer put this connection in its link {}, not in {carried} \
                                     (the one this link carries)",
                                    h.correlation
                                ));
                            }
                        }
                        Ok(Some(frame)) if frame.header.kind == FrameKind::Goodbye => {
                            // Nothing follows on this connection. The link ends once the peer
                            // said so on all of them (frames on the others may still be coming).
                            return if route.link.said_goodbye() {
                                Err("the peer shut down".into())
                            } else {
                                Ok(())
                            };
                        }
                        Ok(Some(frame)) => {
                            self.dispatch(node, route, frame)?;
                        }
                        Ok(None) => break,
                        Err(e) => return Err(format!("malformed frame: {e}")),
                    }
                }
            }
            if inbox.capacity() - inbox.len() < 16 * 1024 {
                inbox.reserve(64 * 1024);
            }
            let read = tokio::select! {
                _ = route.conn.cancel.cancelled() => return route.conn.ended(),
                read = tokio::time::timeout(self.opts.heartbeat_timeout, read.read_buf(&mut inbox)) => read,
            };
            match read {
                Err(_) => {
                    return Err(format!(
                        "nothing heard for {:?} (heartbeat timeout)",
                        self.opts.heartbeat_timeout
                    ))
                }
                Ok(Ok(0)) => return Err("the connection was closed".into()),
                Ok(Err(e)) => return Err(format!("read failed: {e}")),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Handles one incoming frame.
    fn dispatch(
        self: &Arc<Self>,
        node: &Node,
        route: &Arc<ConnRoute>,
        frame: Frame,
    ) -> Result<(), String> {
        let (link, conn) = (&route.link, &*route.conn);
        let h = frame.header;
        let payload = &frame.payload[..];
        match h.kind {
            FrameKind::Cast => match node.local_process(h.to.id, h.to.creation) {
                Some(p) => match p.deliver_encoded(payload, None) {
                    Ok(()) => return Ok(()),
                    Err(e) => tracing::warn!(peer = %link.name, to = h.to.id, "cast dropped: {e}"),
                },
                None => tracing::debug!(peer = %link.name, to = h.to.id, "cast to no process"),
            },
            FrameKind::Call => {
                let failure = match node.local_process(h.to.id, h.to.creation) {
                    None => CallFailure::NoProc,
                    Some(p) => {
                        let back = ReplyRoute::new(route.clone(), h.from, h.correlation, p.clone());
                        match p.deliver_encoded(payload, Some(back)) {
                            Ok(()) => return Ok(()),
                            Err(DeliverError::NoProc) => CallFailure::NoProc,
                            Err(e) => {
                                tracing::warn!(peer = %link.name, to = h.to.id, "call refused: {e}");
                                CallFailure::BadMessage(e.to_string())
                            }
                        }
                    }
                };
                let header = answer_header(link, FrameKind::CallFailed, &h);
                let _ = conn.push_value(&link.codec, &header, &failure);
            }
            FrameKind::Reply => {
                if let Some(pending) = link.take_pending(h.correlation) {
                    // The reply slot records a decoding error itself, before it lets the
                    // caller see the reply is gone.
                    if let Err(e) = (pending.reply.deliver)(payload, &pending.error) {
                        tracing::warn!(peer = %link.name, "a reply did not decode: {e}");
                    }
                }
            }
            FrameKind::CallFailed => {
                if let Some(pending) = link.take_pending(h.correlation) {
                    let error = decode_cbor::<CallFailure>(payload)
                        .map(CallError::from)
                        .unwrap_or_else(CallError::BadMessage);
                    let _ = pending.error.set(error);
                }
            }
            FrameKind::Lookup => super::lookup::serve(node, link, conn, &h, payload)?,
            FrameKind::NodeRequest => {
                let request = decode_cbor::<super::spawn::NodeRequest>(payload)?;
                self.serve_request(node, link, &route.conn, h, request);
            }
            FrameKind::Heartbeat => {}
            FrameKind::Handshake => return Err("a handshake frame after authentication".into()),
            FrameKind::Attach => return Err("a second Attach frame".into()),
            kind => {
                if let Some(frame) = service_frame(kind) {
                    return self.to_service(node, route, &h, frame, payload);
                }
                if !super::signals::receive(node, link, conn, &h, payload)? {
                    tracing::debug!(peer = %link.name, ?kind, "a frame of no known use");
                }
            }
        }
        Ok(())
    }

    /// Hands a node service's frame to the service registered for it.
    fn to_service(
        &self,
        node: &Node,
        route: &ConnRoute,
        h: &Header,
        frame: crate::node::transport::ServiceFrame,
        payload: &[u8],
    ) -> Result<(), String> {
        let service = self
            .services
            .read()
            .iter()
            .find(|s| s.handles(frame))
            .cloned();
        let Some(service) = service else {
            tracing::debug!(peer = %route.link.name, ?frame, "no service for this frame");
            return Ok(());
        };
        let peer: Arc<dyn Peer> = route.link.clone();
        let header = answer_header(&route.link, FrameKind::Reply, h);
        let mut reply = |bytes: &[u8]| {
            let _ = route
                .conn
                .push_bytes(usize::MAX, &route.link.codec, &header, bytes);
        };
        service.on_frame(node, &peer, frame, h.correlation, payload, &mut reply)
    }
}
