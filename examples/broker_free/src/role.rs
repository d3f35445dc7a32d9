//! A service as an OS process: its role on the command line, its life, its ready line.

use std::net::SocketAddr;
use std::time::Duration;

use ergo::prelude::*;

use super::{start_audit, start_billing, BillingConfig, BrokerFreeError, READY};
use ergo_testkit::process::{
    self, parse_loopback_addr, ChildProcess, HEARTBEAT, HEARTBEAT_TIMEOUT,
};

/// What a service process runs: its role, its node's name and where it listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A billing instance ([`start_billing`]).
    Billing {
        /// The node's name.
        node: String,
        /// Where it accepts peers (loopback).
        listen: SocketAddr,
    },
    /// The audit ([`start_audit`]), subscribed to [`ORDERS`](super::ORDERS) on the orders node.
    Audit {
        /// The node's name.
        node: String,
        /// Where it accepts peers (loopback).
        listen: SocketAddr,
        /// The orders node's name.
        orders_node: String,
        /// Where the orders node listens.
        orders_addr: SocketAddr,
    },
}

impl Role {
    /// The node's name.
    pub fn node(&self) -> &str {
        match self {
            Role::Billing { node, .. } | Role::Audit { node, .. } => node,
        }
    }

    /// Where the node listens.
    pub fn listen(&self) -> SocketAddr {
        match self {
            Role::Billing { listen, .. } | Role::Audit { listen, .. } => *listen,
        }
    }

    /// The role as arguments: `billing NODE IP:PORT` or
    /// `audit NODE IP:PORT ORDERS_NODE ORDERS_IP:PORT` (what [`Role::parse`] reads).
    pub fn args(&self) -> Vec<String> {
        match self {
            Role::Billing { node, listen } => {
                vec!["billing".into(), node.clone(), listen.to_string()]
            }
            Role::Audit {
                node,
                listen,
                orders_node,
                orders_addr,
            } => vec![
                "audit".into(),
                node.clone(),
                listen.to_string(),
                orders_node.clone(),
                orders_addr.to_string(),
            ],
        }
    }

    /// Reads a role from the arguments [`Role::args`] makes.
    ///
    /// # Errors
    ///
    /// A message saying what is wrong: an unknown role, a missing argument, an address that
    /// does not parse or is not a loopback address.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Role, String> {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        match args[..] {
            ["billing", node, listen] => Ok(Role::Billing {
                node: node.into(),
                listen: parse_loopback_addr(listen)?,
            }),
            ["audit", node, listen, orders_node, orders_addr] => Ok(Role::Audit {
                node: node.into(),
                listen: parse_loopback_addr(listen)?,
                orders_node: orders_node.into(),
                orders_addr: parse_loopback_addr(orders_addr)?,
            }),
            _ => Err(format!(
                "expected `billing NODE IP:PORT` or `audit NODE IP:PORT ORDERS_NODE IP:PORT`, \
                 got `{}`",
                args.join(" ")
            )),
        }
    }
}

/// A service's whole life as an OS process: starts its node and service, prints the
/// [`READY`] line on stdout, serves until stdin reaches its end (the parent closed it, or died)
/// or Ctrl-C, then shuts the node down (see [`process::wait_for_release`]).
///
/// # Errors
///
/// [`BrokerFreeError::Start`] if the node or the service cannot start.
pub async fn run_role(role: &Role, cookie: &str) -> Result<(), BrokerFreeError> {
    let mut builder = Node::builder(role.node())
        .cookie(cookie)
        .no_registrar()
        .listen(role.listen().to_string())
        .heartbeat(HEARTBEAT, HEARTBEAT_TIMEOUT);
    if let Role::Audit {
        orders_node,
        orders_addr,
        ..
    } = role
    {
        builder = builder.route(orders_node.as_str(), orders_addr.to_string());
    }
    let node = builder
        .start()
        .await
        .map_err(|e| BrokerFreeError::Start(format!("node `{}`: {e}", role.node())))?;
    let started = match role {
        Role::Billing { .. } => start_billing(&node, BillingConfig::default())
            .await
            .map(drop)
            .map_err(|e| BrokerFreeError::Start(format!("billing on `{}`: {e}", role.node()))),
        Role::Audit { orders_node, .. } => start_audit(&node, orders_node, Duration::from_secs(10))
            .await
            .map(drop),
    };
    if let Err(e) = started {
        node.shutdown(Duration::from_secs(1)).await;
        return Err(e);
    }
    let addr = node
        .listen_addr()
        .map_or_else(|| "none".to_string(), |a| a.to_string());
    process::announce_ready(&format!("{READY} node={} addr={addr}", node.name()));
    let released = process::wait_for_release().await;
    node.shutdown(Duration::from_secs(1)).await;
    released.map_err(|e| BrokerFreeError::Start(format!("cannot watch stdin: {e}")))
}

/// Waits (at most `within`) for the [`READY`] line of the service `child` (the marker may
/// follow other output on its line, as a test harness's `test name ... `); returns where it
/// listens.
///
/// # Errors
///
/// [`BrokerFreeError::NotReady`] if the process ends first, the time runs out or the line
/// names no address.
pub(super) async fn service_ready(
    child: &mut ChildProcess,
    within: Duration,
) -> Result<SocketAddr, BrokerFreeError> {
    let parse = |line: &str| {
        let at = line.find(READY)?;
        let addr = line[at..]
            .split_whitespace()
            .find_map(|f| f.strip_prefix("addr="))
            .and_then(|a| a.parse().ok());
        Some(addr.ok_or_else(|| line.to_string()))
    };
    child
        .ready(within, parse)
        .await?
        .map_err(|line| BrokerFreeError::NotReady {
            node: child.name().to_string(),
            why: format!("a malformed line `{line}`"),
        })
}
