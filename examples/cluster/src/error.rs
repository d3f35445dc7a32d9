//! Why a cluster, or a job submitted to it, failed.

use std::fmt;
use std::io;

use ergo::prelude::*;

use ergo_testkit::process::ChildError;

/// Why a cluster could not be started or driven.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClusterError {
    /// A node, or an actor on it, could not start; or the configuration is unusable.
    Start(String),
    /// Starting, reading or stopping a back node's OS process failed.
    Process {
        /// The back node.
        node: String,
        /// What went wrong.
        error: io::Error,
    },
    /// A back node's process ended, or did not say it was ready, in time.
    NotReady {
        /// The back node.
        node: String,
        /// Why.
        why: String,
    },
    /// A step did not happen within its timeout.
    Timeout(String),
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Start(why) => write!(f, "cannot start: {why}"),
            ClusterError::Process { node, error } => {
                write!(f, "the process of back node `{node}`: {error}")
            }
            ClusterError::NotReady { node, why } => {
                write!(f, "back node `{node}` is not ready: {why}")
            }
            ClusterError::Timeout(what) => write!(f, "timed out waiting for: {what}"),
        }
    }
}

impl std::error::Error for ClusterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClusterError::Process { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Why a submitted job did not complete. Every job that is not [`Completed`](super::Completed) ends with one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobError {
    /// The worker refused the job (its own error, the same on every worker: not retried).
    Rejected(String),
    /// Every attempt failed (the workers or their nodes went away, or did not answer in time).
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        last: CallError,
    },
    /// No live worker was known until the job's deadline.
    NoBackend {
        /// Attempts made before (all failed).
        attempts: u32,
        /// Why the last of them failed, if there was one.
        last: Option<CallError>,
    },
    /// The front's dispatcher has ended (the front was stopped).
    FrontDown,
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Rejected(why) => write!(f, "rejected: {why}"),
            JobError::Exhausted { attempts, last } => {
                write!(
                    f,
                    "failed after {attempts} attempt(s), the last with: {last}"
                )
            }
            JobError::NoBackend { attempts, last } => {
                write!(
                    f,
                    "no live back node until the deadline ({attempts} attempt(s)"
                )?;
                match last {
                    Some(last) => write!(f, ", the last failed with: {last})"),
                    None => f.write_str(")"),
                }
            }
            JobError::FrontDown => f.write_str("the front has stopped"),
        }
    }
}

impl std::error::Error for JobError {}

impl From<ChildError> for ClusterError {
    /// A back node's process failed: [`ClusterError::Process`] for an I/O error, otherwise
    /// [`ClusterError::NotReady`].
    fn from(error: ChildError) -> Self {
        match error {
            ChildError::Io { name, error } => ClusterError::Process { node: name, error },
            ChildError::Ended { name, status } => {
                let status =
                    status.map_or_else(|| "closed its stdout".to_string(), |s| s.to_string());
                ClusterError::NotReady {
                    node: name,
                    why: format!("the process ended before it was ready ({status})"),
                }
            }
            ChildError::NoReadyLine { name, within } => ClusterError::NotReady {
                node: name,
                why: format!("no ready line within {within:?}"),
            },
            other => ClusterError::NotReady {
                node: other.child().to_string(),
                why: other.to_string(),
            },
        }
    }
}
