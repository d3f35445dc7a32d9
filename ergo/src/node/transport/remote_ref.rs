//! The remote half of an [`ActorRef`](crate::ActorRef): a process of another node, reached
//! through the node's [`Transport`](super::Transport).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::oneshot;

use super::RemoteVTable;
use super::{with_encoded, Peer, PendingCall, Room, SendFailure};
use crate::error::NetError;
use crate::exit::ExitReason;
use crate::node::{Node, Sys};
use crate::{CallError, Pid, SendError, TrySendError};

/// A ref's view of a process of another node. The link is looked up per use, so a ref
/// outlives reconnections (a message to a pid of an earlier run of its node fails as to an
/// ended process).
pub(crate) struct RemoteRef<M> {
    pid: Pid,
    /// The actor's name (for logs).
    actor: &'static str,
    node: Node,
    vtable: RemoteVTable<M>,
}

impl<M> RemoteRef<M> {
    pub(crate) fn new(pid: Pid, actor: &'static str, node: Node, vtable: RemoteVTable<M>) -> Self {
        RemoteRef {
            pid,
            actor,
            node,
            vtable,
        }
    }

    #[inline]
    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    pub(crate) fn call_timeout(&self) -> Duration {
        self.node.call_timeout()
    }

    /// The link to the process's node.
    #[inline]
    fn peer(&self) -> Result<Arc<dyn Peer>, NetError> {
        self.node
            .transport()
            .ok_or(NetError::NotNetworked)?
            .peer(self.pid.node_atom())
    }

    /// Encodes `msg` and queues it.
    fn send(
        &self,
        peer: &dyn Peer,
        call: Option<u64>,
        msg: &M,
        room: Room,
    ) -> Result<(), SendFailure> {
        let encode = self.vtable.encode;
        with_encoded(
            |buf| encode(msg, buf),
            |bytes| peer.send(self.pid, call, bytes, room),
        )
    }

    pub(crate) fn try_cast(&self, msg: M) -> Result<(), TrySendError<M>> {
        let peer = match self.peer() {
            Ok(peer) if !peer.is_stale(self.pid) => peer,
            _ => return Err(TrySendError::Closed(msg)),
        };
        match self.send(&*peer, None, &msg, Room::Bounded) {
            Ok(()) => Ok(()),
            Err(SendFailure::Full) => Err(TrySendError::Full(msg)),
            Err(SendFailure::Closed) => Err(TrySendError::Closed(msg)),
            Err(e) => {
                tracing::error!(to = %self.pid, actor = self.actor, "cast not sent: {e}");
                Err(TrySendError::Closed(msg))
            }
        }
    }

    pub(crate) async fn cast(&self, mut msg: M) -> Result<(), SendError<M>> {
        loop {
            match self.try_cast(msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(m)) => return Err(SendError(m)),
                Err(TrySendError::Full(m)) => {
                    msg = m;
                    if let Ok(peer) = self.peer() {
                        peer.wait_room(self.pid).await;
                    }
                }
            }
        }
    }

    /// Sends a call: its reply slot becomes one of the link's pending calls.
    pub(crate) fn start_call(&self, mut msg: M) -> Result<RemoteCall, CallError> {
        let transport = self.node.transport().ok_or(CallError::NoConnection)?;
        let peer = transport
            .peer(self.pid.node_atom())
            .map_err(|_| CallError::NoConnection)?;
        if peer.is_stale(self.pid) {
            return Err(CallError::NoProc);
        }
        let Some(reply) = (self.vtable.take_reply)(&mut msg) else {
            return Err(CallError::BadMessage("the message is not a call".into()));
        };
        let correlation = transport.next_correlation();
        let error = Arc::new(OnceLock::new());
        peer.expect(
            correlation,
            PendingCall {
                reply,
                error: error.clone(),
            },
        );
        let call = RemoteCall {
            peer,
            correlation,
            error,
        };
        match self.send(&*call.peer, Some(correlation), &msg, Room::Always) {
            Ok(()) => Ok(call),
            Err(SendFailure::Closed) => Err(CallError::NoConnection),
            Err(e) => Err(CallError::BadMessage(e.to_string())),
        }
    }

    pub(crate) fn is_reachable(&self) -> bool {
        self.peer().is_ok_and(|p| !p.is_stale(self.pid))
    }

    pub(crate) fn signal(&self, sys: Sys) -> Result<(), Sys> {
        match self.peer() {
            Ok(peer) => peer.signal(self.pid, sys),
            Err(_) => Err(sys),
        }
    }

    /// Monitors the process from this node (no local process needed) and waits for its end.
    pub(crate) async fn wait(&self) -> ExitReason {
        let Ok(peer) = self.peer() else {
            return ExitReason::NoConnection;
        };
        if peer.is_stale(self.pid) {
            return ExitReason::NoProc;
        }
        let monitor = self.node.next_monitor_ref();
        let (tx, rx) = oneshot::channel();
        if !peer.watch(self.pid, monitor, tx) {
            return ExitReason::NoConnection;
        }
        // Takes the monitor back if the waiter gives up first.
        struct Unwatch<'a>(&'a dyn Peer, Pid, crate::exit::MonitorRef);
        impl Drop for Unwatch<'_> {
            fn drop(&mut self) {
                self.0.unwatch(self.1, self.2);
            }
        }
        let _unwatch = Unwatch(&*peer, self.pid, monitor);
        rx.await.unwrap_or(ExitReason::NoConnection)
    }
}

/// A call in flight to another node: forgets its pending reply when dropped (timeout, caller
/// gone), so a late reply is discarded.
pub(crate) struct RemoteCall {
    peer: Arc<dyn Peer>,
    correlation: u64,
    error: Arc<OnceLock<CallError>>,
}

impl RemoteCall {
    /// Why the call failed (its pending reply was dropped without a value).
    pub(crate) fn error(&self) -> CallError {
        self.error.get().cloned().unwrap_or(CallError::NoConnection)
    }
}

impl Drop for RemoteCall {
    fn drop(&mut self) {
        self.peer.forget(self.correlation);
    }
}
