//! Links and monitors across a peer link: what each side holds on the other's processes, so
//! that the link's loss fires each of them once with [`ExitReason::NoConnection`].

use std::collections::{HashMap, HashSet};

use tokio::sync::oneshot;

use super::frame::FrameKind;
use super::peer::PeerLink;
use crate::exit::{Down, ExitReason, MonitorRef};
use crate::node::Sys;
use crate::{Node, Pid};

/// Links and monitors across one peer link.
#[derive(Default)]
pub(crate) struct LinkTable {
    /// (local process id, remote pid id) -> the remote pid, for links in either direction.
    pub(super) links: HashMap<(u64, u64), Pid>,
    /// Monitors held by this node's processes (or waiters) on the peer's: ref -> (watcher,
    /// the monitored pid).
    pub(super) monitors: HashMap<u64, (Watcher, Pid)>,
    /// Monitors the peer's processes hold on this node's: (local id, ref, remote watcher).
    pub(super) watched: HashSet<(u64, u64, Pid)>,
}

/// Who learns that a monitored process of the peer ended.
pub(crate) enum Watcher {
    /// A process of this node (by id).
    Process(u64),
    /// A task of this node waiting in `ActorRef::wait`.
    Waiter(oneshot::Sender<ExitReason>),
}

/// Hands a down notice to a local watcher (a process, or a task waiting in `ActorRef::wait`).
pub(super) fn deliver_down(
    node: &Node,
    watcher: Watcher,
    monitor: MonitorRef,
    pid: Pid,
    reason: ExitReason,
) {
    match watcher {
        Watcher::Process(id) => {
            if let Some(p) = node.local_process_any(id) {
                let _ = p.send_sys(Sys::Down(Down {
                    monitor,
                    pid,
                    reason,
                }));
            }
        }
        Watcher::Waiter(tx) => {
            let _ = tx.send(reason);
        }
    }
}

/// Monitors the peer's process `pid` for this node itself.
pub(super) fn watch(
    link: &PeerLink,
    pid: Pid,
    monitor: MonitorRef,
    down: oneshot::Sender<ExitReason>,
) -> bool {
    link.reg
        .lock()
        .monitors
        .insert(monitor.0, (Watcher::Waiter(down), pid));
    let header = PeerLink::header_to(FrameKind::Monitor, pid, 0, monitor.0);
    if link
        .out_for(pid.id())
        .push_empty(&link.codec, &header)
        .is_err()
    {
        link.reg.lock().monitors.remove(&monitor.0);
        return false;
    }
    true
}

/// Takes back a [`watch`] that has not fired.
pub(super) fn unwatch(link: &PeerLink, pid: Pid, monitor: MonitorRef) {
    if link.reg.lock().monitors.remove(&monitor.0).is_some() {
        let header = PeerLink::header_to(FrameKind::Demonitor, pid, 0, monitor.0);
        let _ = link.out_for(pid.id()).push_empty(&link.codec, &header);
    }
}

impl PeerLink {
    /// The link is down: every link across it fires, every monitor of a peer's process
    /// delivers `NoConnection`, and the peer's monitors of this node's processes are removed.
    pub(super) fn fire_all(&self, node: &Node) {
        let reg = std::mem::take(&mut *self.reg.lock());
        for ((local, _), remote) in reg.links {
            if let Some(p) = node.local_process_any(local) {
                let _ = p.send_sys(Sys::Exit {
                    from: remote,
                    reason: ExitReason::NoConnection,
                    linked: true,
                });
            }
        }
        for (monitor, (watcher, pid)) in reg.monitors {
            deliver_down(
                node,
                watcher,
                MonitorRef(monitor),
                pid,
                ExitReason::NoConnection,
            );
        }
        for (local, monitor, watcher) in reg.watched {
            if let Some(p) = node.local_process_any(local) {
                let _ = p.send_sys(Sys::Demonitor {
                    by: watcher,
                    monitor: MonitorRef(monitor),
                });
            }
        }
    }
}
