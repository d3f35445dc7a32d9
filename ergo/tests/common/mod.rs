//! Helpers shared by the behaviour tests.
#![allow(dead_code, unused_imports, unreachable_pub)]

pub use ergo_testkit::node;
pub use ergo_testkit::wait::{eventually, within};

/// Log capture (the tests of what the runtime logs).
pub mod logs;

/// Nodes on the network (the `net_*` tests).
#[cfg(feature = "net")]
pub mod net;
