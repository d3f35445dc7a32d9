//! Process identifiers.
//!
//! A [`Pid`] names one process for its whole life: the node it runs on, a number unique on that
//! node, and the node's `creation` (which changes every time a node with the same name starts, so
//! a pid from an earlier run never reaches a process of a later one).
//!
//! # Examples
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
//! use ergo::prelude::*;
//!
//! struct Idle;
//! #[actor]
//! impl Idle {
//!     #[handle]
//!     fn ping(&self) {}
//! }
//!
//! let node = Node::builder("demo@localhost").start().await?;
//! let a = node.spawn(Idle).await?;
//! let b = node.spawn(Idle).await?;
//! assert_ne!(a.pid(), b.pid());
//! assert_eq!(&*a.pid().node_name(), "demo@localhost");
//! println!("{}", a.pid()); // <demo@localhost.1.N>
//! # Ok(()) }
//! ```

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

/// The longest node name a decoded pid may carry (the handshake's limit too).
pub(crate) const MAX_NODE_NAME: usize = 255;

/// An interned node name: a small copyable number that stands for a `name@host` string.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct NodeAtom(u32);

struct AtomTable {
    names: Vec<Arc<str>>,
    index: HashMap<Arc<str>, u32>,
}

fn atoms() -> &'static RwLock<AtomTable> {
    static ATOMS: OnceLock<RwLock<AtomTable>> = OnceLock::new();
    ATOMS.get_or_init(|| {
        RwLock::new(AtomTable {
            names: Vec::new(),
            index: HashMap::new(),
        })
    })
}

impl NodeAtom {
    /// Interns `name`, returning the same atom for the same string every time.
    pub(crate) fn intern(name: &str) -> NodeAtom {
        if let Some(&i) = atoms().read().index.get(name) {
            return NodeAtom(i);
        }
        let mut table = atoms().write();
        if let Some(&i) = table.index.get(name) {
            return NodeAtom(i);
        }
        let i = u32::try_from(table.names.len()).expect("more than 2^32 node names interned");
        let name: Arc<str> = Arc::from(name);
        table.names.push(name.clone());
        table.index.insert(name, i);
        NodeAtom(i)
    }

    pub(crate) fn name(self) -> Arc<str> {
        atoms().read().names[self.0 as usize].clone()
    }
}

/// The identifier of one process: node, number on that node, and the node's creation.
///
/// `Pid` is `Copy` (16 bytes), printable as `<node.id.creation>`, and totally ordered (by node
/// name, then number, then creation). It serializes (serde) as `{ node, id, creation }` with the
/// node's name, so it names the same process wherever it is decoded.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pid {
    node: NodeAtom,
    creation: u32,
    id: u64,
}

impl Pid {
    pub(crate) fn new(node: NodeAtom, id: u64, creation: u32) -> Pid {
        Pid { node, creation, id }
    }

    /// The number of this process on its node (unique for one creation of the node).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The creation of the node that spawned this process.
    pub fn creation(&self) -> u32 {
        self.creation
    }

    /// The name of the node this process runs on (`name@host`).
    pub fn node_name(&self) -> Arc<str> {
        self.node.name()
    }

    pub(crate) fn node_atom(&self) -> NodeAtom {
        self.node
    }
}

impl Ord for Pid {
    fn cmp(&self, other: &Self) -> Ordering {
        let by_node = if self.node == other.node {
            Ordering::Equal
        } else {
            self.node.name().cmp(&other.node.name())
        };
        by_node
            .then(self.id.cmp(&other.id))
            .then(self.creation.cmp(&other.creation))
    }
}

impl PartialOrd for Pid {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}.{}.{}>", self.node.name(), self.id, self.creation)
    }
}

/// On the wire a pid is its node's name, its id and its creation, so it means the same process
/// on every node that decodes it (node names are interned again on arrival).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename = "Pid")]
struct WirePid<'a> {
    #[serde(borrow)]
    node: std::borrow::Cow<'a, str>,
    id: u64,
    creation: u32,
}

impl serde::Serialize for Pid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WirePid {
            node: std::borrow::Cow::Owned(self.node.name().to_string()),
            id: self.id,
            creation: self.creation,
        }
        .serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Pid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WirePid::deserialize(deserializer)?;
        // Node names are interned for the life of the process: refuse oversized ones (a peer
        // could otherwise grow the table with every message).
        if wire.node.len() > crate::pid::MAX_NODE_NAME {
            return Err(serde::de::Error::custom(format_args!(
                "a pid's node name is longer than {} bytes",
                crate::pid::MAX_NODE_NAME
            )));
        }
        if wire.node.is_empty() || !wire.node.contains('@') {
            return Err(serde::de::Error::custom(format_args!(
                "a pid's node must look like `name@host`, found `{}`",
                wire.node
            )));
        }
        Ok(Pid::new(
            NodeAtom::intern(&wire.node),
            wire.id,
            wire.creation,
        ))
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_returns_the_same_atom_for_the_same_name() {
        assert!(NodeAtom::intern("a@h") == NodeAtom::intern("a@h"));
        assert!(NodeAtom::intern("a@h") != NodeAtom::intern("b@h"));
    }

    #[test]
    fn pids_survive_a_cbor_round_trip_with_their_node_name() {
        let pid = Pid::new(NodeAtom::intern("wire-a@h"), 42, 7);
        let mut bytes = Vec::new();
        ciborium::into_writer(&pid, &mut bytes).unwrap();
        let back: Pid = ciborium::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(back, pid);
        assert_eq!(back.to_string(), "<wire-a@h.42.7>");
    }

    #[test]
    fn a_decoded_pid_of_an_unknown_node_is_interned() {
        #[derive(serde::Serialize)]
        struct Foreign<'a> {
            node: &'a str,
            id: u64,
            creation: u32,
        }
        let mut bytes = Vec::new();
        let foreign = Foreign {
            node: "never-seen-before@far",
            id: 3,
            creation: 9,
        };
        ciborium::into_writer(&foreign, &mut bytes).unwrap();
        let pid: Pid = ciborium::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(&*pid.node_name(), "never-seen-before@far");
        assert_eq!((pid.id(), pid.creation()), (3, 9));
        assert_eq!(
            pid,
            Pid::new(NodeAtom::intern("never-seen-before@far"), 3, 9)
        );
    }

    #[test]
    fn a_pid_with_a_malformed_node_name_is_a_decode_error() {
        #[derive(serde::Serialize)]
        struct Foreign<'a> {
            node: &'a str,
            id: u64,
            creation: u32,
        }
        let mut bytes = Vec::new();
        ciborium::into_writer(
            &Foreign {
                node: "",
                id: 1,
                creation: 1,
            },
            &mut bytes,
        )
        .unwrap();
        let err = ciborium::from_reader::<Pid, _>(bytes.as_slice()).unwrap_err();
        assert!(err.to_string().contains("name@host"), "{err}");
    }

    #[test]
    fn pids_order_by_node_name_then_id_then_creation() {
        let b = NodeAtom::intern("zz-b@h");
        let a = NodeAtom::intern("zz-a@h");
        assert!(Pid::new(a, 9, 1) < Pid::new(b, 1, 1));
        assert!(Pid::new(a, 1, 2) < Pid::new(a, 2, 1));
        assert!(Pid::new(a, 1, 1) < Pid::new(a, 1, 2));
        assert_eq!(Pid::new(a, 3, 4).to_string(), "<zz-a@h.3.4>");
    }
}
