//! Signals across a peer link, both directions of the mapping in one place: a [`Sys`] for a
//! peer's process becomes a frame ([`send`]), and a signal frame from the peer becomes a
//! [`Sys`] for a process of this node ([`receive`]).
//!
//! | signal | frame | `from` | `correlation` | payload |
//! | --- | --- | --- | --- | --- |
//! | exit from a linked process | `LinkExit` | the linked process | 0 | reason |
//! | `exit(pid, reason)` | `Exit` | 0 | 0 | (reason, sender pid) |
//! | kill | `Kill` | 0 | 0 | — |
//! | stop | `Stop` | 0 | 0 | reason |
//! | link / unlink | `Link` / `Unlink` | the linking process | 0 | — |
//! | monitor / demonitor | `Monitor` / `Demonitor` | the watcher | monitor ref | — |
//! | down notice | `Down` | the monitored process | monitor ref | reason |
//!
//! Links and monitors are recorded in the link's [`LinkTable`](super::links::LinkTable) on the
//! way out and on the way in, so that the link's loss fires each once.

use std::sync::Arc;

use super::conn::Conn;
use super::frame::{FrameKind, Header};
use super::inbound::answer_header;
use super::links::{deliver_down, Watcher};
use super::peer::PeerLink;
use crate::exit::{ExitReason, MonitorRef};
use crate::node::codec::decode_cbor;
use crate::node::{Sys, Target};
use crate::{Node, Pid};

/// Sends a signal to the peer's process `to` as a frame; records links and monitors so the
/// link's loss fires them. Hands the signal back if it could not be sent.
pub(super) fn send(link: &PeerLink, to: Pid, sys: Sys) -> Result<(), Sys> {
    if link.is_down() {
        return Err(sys);
    }
    let conn = link.out_for(to.id());
    let header = |kind, from: u64, correlation| PeerLink::header_to(kind, to, from, correlation);
    let codec = &link.codec;
    let pushed = match &sys {
        Sys::Exit {
            from,
            reason,
            linked: true,
        } => {
            link.reg.lock().links.remove(&(from.id(), to.id()));
            conn.push_value(codec, &header(FrameKind::LinkExit, from.id(), 0), reason)
        }
        Sys::Exit { from, reason, .. } => conn.push_value(
            codec,
            &header(FrameKind::Exit, 0, 0),
            &(reason.clone(), *from),
        ),
        Sys::Kill => conn.push_empty(codec, &header(FrameKind::Kill, 0, 0)),
        Sys::Stop(reason) => conn.push_value(codec, &header(FrameKind::Stop, 0, 0), reason),
        Sys::Link(me) => {
            let me = me.pid();
            link.reg.lock().links.insert((me.id(), to.id()), to);
            conn.push_empty(codec, &header(FrameKind::Link, me.id(), 0))
        }
        Sys::Unlink(me) => {
            link.reg.lock().links.remove(&(me.id(), to.id()));
            conn.push_empty(codec, &header(FrameKind::Unlink, me.id(), 0))
        }
        Sys::Monitor { by, monitor } => {
            let by = by.pid();
            link.reg
                .lock()
                .monitors
                .insert(monitor.0, (Watcher::Process(by.id()), to));
            conn.push_empty(codec, &header(FrameKind::Monitor, by.id(), monitor.0))
        }
        Sys::Demonitor { by, monitor } => {
            link.reg.lock().monitors.remove(&monitor.0);
            conn.push_empty(codec, &header(FrameKind::Demonitor, by.id(), monitor.0))
        }
        Sys::Down(down) => {
            link.reg
                .lock()
                .watched
                .remove(&(down.pid.id(), down.monitor.0, to));
            conn.push_value(
                codec,
                &header(FrameKind::Down, down.pid.id(), down.monitor.0),
                &down.reason,
            )
        }
    };
    match pushed {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::debug!(peer = %link.name, "signal not sent: {e}");
            Err(sys)
        }
    }
}

/// Handles a signal frame from the peer. `false` if `h` is not a signal frame.
///
/// # Errors
///
/// A payload that does not decode (the link goes down).
pub(super) fn receive(
    node: &Node,
    link: &Arc<PeerLink>,
    conn: &Conn,
    h: &Header,
    payload: &[u8],
) -> Result<bool, String> {
    let from = || link.remote_pid(h.from);
    let reason = || decode_cbor::<ExitReason>(payload);
    let to = || node.local_process(h.to.id, h.to.creation);
    let peer = || Target::Remote {
        pid: from(),
        peer: link.clone(),
    };
    match h.kind {
        FrameKind::Exit => {
            let (reason, sender) = decode_cbor::<(ExitReason, Pid)>(payload)?;
            if let Some(p) = to() {
                let _ = p.send_sys(Sys::Exit {
                    from: sender,
                    reason,
                    linked: false,
                });
            }
        }
        FrameKind::LinkExit => {
            let reason = reason()?;
            let pid = link.reg.lock().links.remove(&(h.to.id, h.from));
            if let (Some(pid), Some(p)) = (pid, node.local_process_any(h.to.id)) {
                let _ = p.send_sys(Sys::Exit {
                    from: pid,
                    reason,
                    linked: true,
                });
            }
        }
        FrameKind::Kill => {
            if let Some(p) = to() {
                p.core().kill();
            }
        }
        FrameKind::Stop => {
            let reason = reason()?;
            if let Some(p) = to() {
                let _ = p.send_sys(Sys::Stop(reason));
            }
        }
        FrameKind::Link => {
            let key = (h.to.id, h.from);
            let linked = to().is_some_and(|p| {
                link.reg.lock().links.insert(key, from());
                if p.core().send_sys(Sys::Link(peer())).is_ok() {
                    true
                } else {
                    link.reg.lock().links.remove(&key);
                    false
                }
            });
            if !linked {
                let header = answer_header(link, FrameKind::LinkExit, h);
                let _ = conn.push_value(&link.codec, &header, &ExitReason::NoProc);
            }
        }
        FrameKind::Unlink => {
            link.reg.lock().links.remove(&(h.to.id, h.from));
            if let Some(p) = node.local_process_any(h.to.id) {
                let _ = p.send_sys(Sys::Unlink(from()));
            }
        }
        FrameKind::Monitor => {
            let key = (h.to.id, h.correlation, from());
            let monitored = to().is_some_and(|p| {
                link.reg.lock().watched.insert(key);
                let sys = Sys::Monitor {
                    by: peer(),
                    monitor: MonitorRef(h.correlation),
                };
                if p.core().send_sys(sys).is_ok() {
                    true
                } else {
                    link.reg.lock().watched.remove(&key);
                    false
                }
            });
            if !monitored {
                let header = answer_header(link, FrameKind::Down, h);
                let _ = conn.push_value(&link.codec, &header, &ExitReason::NoProc);
            }
        }
        FrameKind::Demonitor => {
            let watcher = from();
            link.reg
                .lock()
                .watched
                .remove(&(h.to.id, h.correlation, watcher));
            if let Some(p) = node.local_process_any(h.to.id) {
                let _ = p.send_sys(Sys::Demonitor {
                    by: watcher,
                    monitor: MonitorRef(h.correlation),
                });
            }
        }
        FrameKind::Down => {
            let reason = reason()?;
            let entry = link.reg.lock().monitors.remove(&h.correlation);
            if let Some((watcher, pid)) = entry {
                deliver_down(node, watcher, MonitorRef(h.correlation), pid, reason);
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}
