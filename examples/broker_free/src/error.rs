//! Why a service or the scenario failed.

use std::fmt;
use std::io;

use ergo_testkit::process::ChildError;

/// Why a service or the scenario could not be started or driven.
#[derive(Debug)]
#[non_exhaustive]
pub enum BrokerFreeError {
    /// A node, or an actor on it, could not start; or a role is unusable.
    Start(String),
    /// Starting or stopping a service's OS process failed.
    Process {
        /// The service's node.
        node: String,
        /// What went wrong.
        error: io::Error,
    },
    /// A service's process ended, or did not say it was ready, in time.
    NotReady {
        /// The service's node.
        node: String,
        /// Why.
        why: String,
    },
    /// A step did not happen within its timeout.
    Timeout(String),
}

impl fmt::Display for BrokerFreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerFreeError::Start(why) => write!(f, "cannot start: {why}"),
            BrokerFreeError::Process { node, error } => {
                write!(f, "the process of `{node}`: {error}")
            }
            BrokerFreeError::NotReady { node, why } => write!(f, "`{node}` is not ready: {why}"),
            BrokerFreeError::Timeout(what) => write!(f, "timed out waiting for: {what}"),
        }
    }
}

impl std::error::Error for BrokerFreeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BrokerFreeError::Process { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<ChildError> for BrokerFreeError {
    /// A service's process failed: [`BrokerFreeError::Process`] for an I/O error, otherwise
    /// [`BrokerFreeError::NotReady`].
    fn from(error: ChildError) -> Self {
        let (node, why) = match error {
            ChildError::Io { name, error } => {
                return BrokerFreeError::Process { node: name, error }
            }
            ChildError::Ended { name, .. } => (
                name,
                "the process ended (or closed its stdout) before it was ready".to_string(),
            ),
            ChildError::NoReadyLine { name, within } => {
                (name, format!("no ready line within {within:?}"))
            }
            other => (other.child().to_string(), other.to_string()),
        };
        BrokerFreeError::NotReady { node, why }
    }
}
