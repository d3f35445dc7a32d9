//! The way back for a call that came from another node: [`ReplyRoute`] and the reply slot
//! built on it.

use std::fmt;
use std::sync::Arc;

use super::{with_encoded, CallFailure, SendFailure};
use crate::node::ProcHandle;
use crate::Pid;

/// The connection a call came in on, as its reply's way back.
pub(crate) trait ReplyChannel: Send + Sync + 'static {
    /// Queues the encoded reply to call `correlation` of the peer's process `caller`, from
    /// `callee`.
    fn reply(
        &self,
        caller: u64,
        correlation: u64,
        callee: Pid,
        payload: &[u8],
    ) -> Result<(), SendFailure>;

    /// Tells the caller its call failed.
    fn fail(&self, caller: u64, correlation: u64, callee: Pid, failure: &CallFailure);

    /// Whether the connection is still open (the caller may still wait).
    fn is_open(&self) -> bool;

    /// The peer node's name (for logs).
    fn peer_name(&self) -> &str;
}

/// Where the reply to a call from another node goes: back over the connection it came on.
/// Built by the transport when the call arrives; generated code puts it in the message's
/// [`ReplyTo`](crate::ReplyTo). Not public API.
pub struct ReplyRoute {
    channel: Arc<dyn ReplyChannel>,
    caller: u64,
    correlation: u64,
    callee: ProcHandle,
}

impl ReplyRoute {
    pub(crate) fn new(
        channel: Arc<dyn ReplyChannel>,
        caller: u64,
        correlation: u64,
        callee: ProcHandle,
    ) -> ReplyRoute {
        ReplyRoute {
            channel,
            caller,
            correlation,
            callee,
        }
    }

    fn callee(&self) -> Pid {
        self.callee.core().pid()
    }

    fn fail(&self, failure: &CallFailure) {
        self.channel
            .fail(self.caller, self.correlation, self.callee(), failure);
    }
}

impl fmt::Debug for ReplyRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ReplyRoute({}#{})",
            self.channel.peer_name(),
            self.correlation
        )
    }
}

/// The reply slot of a call that came from another node.
pub(crate) struct RemoteReply<R> {
    route: Option<ReplyRoute>,
    encode: fn(&R, &mut Vec<u8>) -> Result<(), String>,
}

impl<R> RemoteReply<R> {
    pub(crate) fn new(
        route: ReplyRoute,
        encode: fn(&R, &mut Vec<u8>) -> Result<(), String>,
    ) -> Self {
        RemoteReply {
            route: Some(route),
            encode,
        }
    }

    pub(crate) fn send(&mut self, reply: &R) {
        let Some(route) = self.route.take() else {
            return;
        };
        let encode = self.encode;
        let callee = route.callee();
        let sent = with_encoded(
            |buf| encode(reply, buf),
            |bytes| {
                route
                    .channel
                    .reply(route.caller, route.correlation, callee, bytes)
            },
        );
        match sent {
            Ok(()) | Err(SendFailure::Closed) => {}
            Err(e) => {
                tracing::error!(callee = %callee, "reply not sent: {e}");
                route.fail(&CallFailure::BadMessage(format!(
                    "the reply was not sent: {e}"
                )));
            }
        }
    }

    pub(crate) fn is_waiting(&self) -> bool {
        self.route.as_ref().is_some_and(|r| r.channel.is_open())
    }
}

impl<R> Drop for RemoteReply<R> {
    /// A call dropped without a reply (its process ended first): the caller learns why.
    fn drop(&mut self) {
        let Some(route) = self.route.take() else {
            return;
        };
        let core = route.callee.core();
        if let Some(reason) = core.exit_reason() {
            route.fail(&CallFailure::Exited(reason.clone()));
            return;
        }
        // Dropped while the process unwinds from a panic: its reason comes a moment later.
        let node = core.node.clone();
        let timeout = node.call_timeout();
        node.runtime().spawn(async move {
            let callee = route.callee.clone();
            if let Ok(reason) = tokio::time::timeout(timeout, callee.core().wait_reason()).await {
                route.fail(&CallFailure::Exited(reason));
            }
        });
    }
}
