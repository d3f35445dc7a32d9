//! Exit reasons, exit signals and down notices.
//!
//! Every process ends with an [`ExitReason`]. Linked processes receive it as an exit signal;
//! monitoring processes receive it inside a [`Down`] notice. Reasons are plain data (named as in
//! Erlang) so they can be matched on, logged and, later, sent between nodes.
//!
//! # Propagation
//!
//! - [`ExitReason::Normal`] does not stop a linked process (unless it is the process itself).
//! - Any other reason stops every linked process that does not trap exits, with the same reason.
//! - A process that traps exits receives the signal as a call to its `#[on_exit]` hook instead.
//! - A kill ([`crate::ActorRef::kill`]) cannot be trapped: the process ends with
//!   [`ExitReason::Killed`], which then propagates (trappably) like any other reason.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Pid;

/// Why a process ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ExitReason {
    /// The process finished its work (`ctx.stop()` or returning normally).
    Normal,
    /// The process was asked to stop (by its supervisor, `stop`, or node shutdown).
    Shutdown,
    /// The process was killed; a kill cannot be trapped.
    Killed,
    /// The process did not exist (link or monitor to a dead pid).
    NoProc,
    /// The connection to the node of the process was lost.
    NoConnection,
    /// A handler or hook panicked with this message.
    Panic(String),
    /// The process stopped with an error (a failed `init`, `ctx.stop_with(..)`, ...).
    Error(String),
}

impl ExitReason {
    /// `true` for [`Normal`](ExitReason::Normal) and [`Shutdown`](ExitReason::Shutdown): the
    /// reasons a `transient` child is not restarted for.
    ///
    /// ```
    /// use ergo::ExitReason;
    /// assert!(ExitReason::Shutdown.is_normal());
    /// assert!(!ExitReason::Panic("boom".into()).is_normal());
    /// ```
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal | ExitReason::Shutdown)
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::NoProc => f.write_str("noproc"),
            ExitReason::NoConnection => f.write_str("noconnection"),
            ExitReason::Panic(m) => write!(f, "panic: {m}"),
            ExitReason::Error(m) => write!(f, "error: {m}"),
        }
    }
}

/// Identifies one monitor, as returned by [`crate::Ctx::monitor`]; used to remove it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonitorRef(pub(crate) u64);

/// The notice a monitoring process receives when the monitored process ends.
///
/// Delivered once per monitor to the `#[on_down]` hook. Monitoring a pid that is already dead
/// delivers a `Down` with [`ExitReason::NoProc`] at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Down {
    /// The monitor that fired.
    pub monitor: MonitorRef,
    /// The process that ended.
    pub pid: Pid,
    /// Why it ended.
    pub reason: ExitReason,
}
