//! [`PeerLink`]: everything this node shares with one peer node over a group of connections,
//! and the [`Peer`] the core sees of it.
//!
//! # Lanes
//!
//! The link sends on the connections it dialled (`outs`); the one for a target pid is chosen
//! by the pid's id, so everything sent to one process keeps its order. When the peer dialled
//! this node instead, `outs` is the connection it opened. Further connections the peer opens
//! are read from and replied on, and closed with the link.
//!
//! # Links of the peer
//!
//! Every connection starts, in each direction, with an `Attach` frame naming the sender's
//! link. A link carries the connections of exactly one link of the peer (`peer_link`): a
//! connection of another of the peer's links never joins it. A connection of a newer link of
//! the peer replaces this link instead (it goes down first), so nothing the peer sent on an
//! older link is delivered after what it sends on a newer one (see `Net::read_loop`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify};

use super::conn::{limit, Conn, PushError};
use super::frame::{FrameCodec, FrameKind, Header, WirePid};
use super::links::LinkTable;
use crate::error::NetError;
use crate::exit::{ExitReason, MonitorRef};
use crate::node::transport::PendingReply;
use crate::node::transport::{Peer, PendingCall, Room, SendFailure, ServiceFrame};
use crate::node::Sys;
use crate::pid::NodeAtom;
use crate::{CallError, Pid};

pub(crate) const CONNECTING: u8 = 0;
pub(crate) const UP: u8 = 1;
pub(crate) const DOWN: u8 = 2;

/// Call ids, request ids and subscription ids, unique in the process.
static NEXT_CORRELATION: AtomicU64 = AtomicU64::new(1);

/// Link ids ([`Peer::id`]), unique in the process.
static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_correlation() -> u64 {
    NEXT_CORRELATION.fetch_add(1, Ordering::Relaxed)
}

/// Everything this node shares with one peer node over a group of connections.
pub(crate) struct PeerLink {
    pub(super) id: u64,
    pub(super) atom: NodeAtom,
    pub(super) name: Arc<str>,
    pub(super) creation: AtomicU32,
    pub(super) state: AtomicU8,
    pub(super) up: Notify,
    /// The connections this node sends on (fixed when the link is made).
    pub(super) outs: Vec<Arc<Conn>>,
    /// Further connections the peer opened (read from, replied on, closed with the link).
    pub(super) extra: Mutex<Vec<Arc<Conn>>>,
    /// Calls and requests waiting for their answer, by correlation.
    pub(super) pending: Mutex<HashMap<u64, PendingCall>>,
    /// Links and monitors across the link, so its loss fires each once.
    pub(super) reg: Mutex<LinkTable>,
    pub(super) down_reason: OnceLock<String>,
    /// The peer's link whose connections this link carries (from their `Attach` frames; 0
    /// until the first arrives).
    pub(super) peer_link: AtomicU64,
    /// How many of the link's connections the peer said `Goodbye` on.
    goodbyes: AtomicUsize,
    pub(super) codec: FrameCodec,
}

impl PeerLink {
    pub(super) fn new(
        atom: NodeAtom,
        state: u8,
        outs: Vec<Arc<Conn>>,
        codec: FrameCodec,
    ) -> Arc<PeerLink> {
        let id = NEXT_LINK.fetch_add(1, Ordering::Relaxed);
        for conn in &outs {
            // First in the buffer, before anything a sender queues while the link connects.
            conn.push_attach(&codec, id);
        }
        Arc::new(PeerLink {
            id,
            atom,
            name: atom.name(),
            creation: AtomicU32::new(0),
            state: AtomicU8::new(state),
            up: Notify::new(),
            outs,
            extra: Mutex::new(Vec::new()),
            pending: Mutex::new(HashMap::new()),
            reg: Mutex::new(LinkTable::default()),
            down_reason: OnceLock::new(),
            peer_link: AtomicU64::new(0),
            goodbyes: AtomicUsize::new(0),
            codec,
        })
    }

    /// Records that one of this link's connections belongs to the peer's link `theirs`: `Ok`
    /// when that is the link this one carries (or the first connection told), else the one it
    /// carries.
    pub(super) fn attach(&self, theirs: u64) -> Result<(), u64> {
        match self
            .peer_link
            .compare_exchange(0, theirs, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(()),
            Err(current) if current == theirs => Ok(()),
            Err(current) => Err(current),
        }
    }

    pub(super) fn is_down(&self) -> bool {
        self.state.load(Ordering::Acquire) == DOWN
    }

    /// The peer's creation, once a connection is up (0 before).
    pub(super) fn creation(&self) -> u32 {
        self.creation.load(Ordering::Acquire)
    }

    /// The connection that carries traffic for the peer's process `id`.
    #[inline]
    pub(super) fn out_for(&self, id: u64) -> &Arc<Conn> {
        &self.outs[(id % self.outs.len() as u64) as usize]
    }

    /// A pid of the peer's current run.
    pub(super) fn remote_pid(&self, id: u64) -> Pid {
        Pid::new(self.atom, id, self.creation())
    }

    /// The header of a frame for the peer's process `to`.
    #[inline]
    pub(super) fn header_to(kind: FrameKind, to: Pid, from: u64, correlation: u64) -> Header {
        Header {
            kind,
            to: WirePid {
                id: to.id(),
                creation: to.creation(),
            },
            from,
            correlation,
        }
    }

    pub(super) fn take_pending(&self, correlation: u64) -> Option<PendingCall> {
        self.pending.lock().remove(&correlation)
    }

    /// Every connection of the link: the ones it sends on, then the further ones the peer
    /// opened.
    pub(super) fn conns(&self) -> Vec<Arc<Conn>> {
        let extra = self.extra.lock();
        self.outs.iter().chain(extra.iter()).cloned().collect()
    }

    /// Closes every connection of the link.
    /// Closes every connection; returns the frames they dropped (see `Conn::close`).
    pub(super) fn close_all(&self) -> u64 {
        let extra = self.extra.lock().clone();
        self.outs
            .iter()
            .chain(extra.iter())
            .map(|c| c.close())
            .sum()
    }

    /// The peer said `Goodbye` on one more of the link's connections. True once it said so on
    /// all of them: the link is over, and its end was meant.
    pub(super) fn said_goodbye(&self) -> bool {
        let n = self.goodbyes.fetch_add(1, Ordering::AcqRel) + 1;
        n >= self.outs.len() + self.extra.lock().len()
    }

    /// Whether the peer said `Goodbye` on any connection: the link is ending because the peer
    /// shuts down, not because something broke.
    pub(super) fn saying_goodbye(&self) -> bool {
        self.goodbyes.load(Ordering::Acquire) > 0
    }

    /// Sends a node-level request of `kind` on the connection chosen by `route` and waits up
    /// to `timeout` for the bytes of its `Reply`.
    pub(super) async fn request_bytes(
        self: Arc<Self>,
        kind: FrameKind,
        route: u64,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, NetError> {
        let correlation = next_correlation();
        let (tx, rx) = oneshot::channel::<Vec<u8>>();
        self.pending.lock().insert(
            correlation,
            PendingCall {
                reply: PendingReply {
                    deliver: Box::new(move |bytes: &[u8], _: &OnceLock<CallError>| {
                        let _ = tx.send(bytes.to_vec());
                        Ok(())
                    }),
                },
                error: Arc::new(OnceLock::new()),
            },
        );
        // Removes the pending entry if the caller gives up (timeout, or its future dropped).
        struct Forget<'a>(&'a PeerLink, u64);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                self.0.take_pending(self.1);
            }
        }
        let _forget = Forget(&self, correlation);
        let header = Header {
            kind,
            to: WirePid::NODE,
            from: 0,
            correlation,
        };
        if self
            .out_for(route)
            .push_bytes(usize::MAX, &self.codec, &header, &payload)
            .is_err()
        {
            return Err(self.no_connection());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(self.no_connection()),
            Err(_) => Err(NetError::Timeout(self.name.to_string())),
        }
    }
}

/// The frame kind of a node service's frame.
pub(super) fn service_kind(frame: ServiceFrame) -> FrameKind {
    match frame {
        ServiceFrame::Subscribe => FrameKind::EventSubscribe,
        ServiceFrame::Publish => FrameKind::EventPublish,
        ServiceFrame::Down => FrameKind::EventDown,
        ServiceFrame::Unsubscribe => FrameKind::EventUnsubscribe,
    }
}

/// The node service frame a frame kind carries, if it is one.
pub(super) fn service_frame(kind: FrameKind) -> Option<ServiceFrame> {
    Some(match kind {
        FrameKind::EventSubscribe => ServiceFrame::Subscribe,
        FrameKind::EventPublish => ServiceFrame::Publish,
        FrameKind::EventDown => ServiceFrame::Down,
        FrameKind::EventUnsubscribe => ServiceFrame::Unsubscribe,
        _ => return None,
    })
}

impl Peer for PeerLink {
    fn id(&self) -> u64 {
        self.id
    }

    fn node(&self) -> NodeAtom {
        self.atom
    }

    #[inline]
    fn is_down(&self) -> bool {
        self.state.load(Ordering::Acquire) == DOWN
    }

    #[inline]
    fn is_stale(&self, pid: Pid) -> bool {
        let creation = self.creation();
        creation != 0 && creation != pid.creation()
    }

    #[inline]
    fn send(
        &self,
        to: Pid,
        call: Option<u64>,
        payload: &[u8],
        room: Room,
    ) -> Result<(), SendFailure> {
        let header = match call {
            None => PeerLink::header_to(FrameKind::Cast, to, 0, 0),
            Some(correlation) => PeerLink::header_to(FrameKind::Call, to, 0, correlation),
        };
        self.out_for(to.id())
            .push_bytes(limit(room), &self.codec, &header, payload)
            .map_err(SendFailure::from)
    }

    fn wait_room(&self, to: Pid) -> BoxFuture<'_, ()> {
        Box::pin(self.out_for(to.id()).wait_room())
    }

    fn expect(&self, correlation: u64, call: PendingCall) {
        self.pending.lock().insert(correlation, call);
    }

    fn forget(&self, correlation: u64) {
        self.take_pending(correlation);
    }

    fn signal(&self, to: Pid, sys: Sys) -> Result<(), Sys> {
        super::signals::send(self, to, sys)
    }

    fn watch(&self, pid: Pid, monitor: MonitorRef, down: oneshot::Sender<ExitReason>) -> bool {
        super::links::watch(self, pid, monitor, down)
    }

    fn unwatch(&self, pid: Pid, monitor: MonitorRef) {
        super::links::unwatch(self, pid, monitor)
    }

    fn request(
        self: Arc<Self>,
        frame: ServiceFrame,
        route: u64,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, NetError>> {
        Box::pin(self.request_bytes(service_kind(frame), route, payload, timeout))
    }

    fn notify(
        &self,
        frame: ServiceFrame,
        correlation: u64,
        room: Room,
        write: &mut dyn FnMut(&mut dyn std::io::Write) -> Result<(), String>,
    ) -> Result<(), SendFailure> {
        let header = Header {
            kind: service_kind(frame),
            to: WirePid::NODE,
            from: 0,
            correlation,
        };
        self.out_for(correlation)
            .push_below(limit(room), &self.codec, &header, |w| {
                write(w as &mut dyn std::io::Write).map_err(PushError::Encode)
            })
            .map_err(SendFailure::from)
    }

    fn no_connection(&self) -> NetError {
        NetError::NoConnection {
            node: self.name.to_string(),
            reason: self
                .down_reason
                .get()
                .cloned()
                .unwrap_or_else(|| "connection lost".into()),
        }
    }
}
