//! Who may run a handshake: the node's `max_handshakes` slots, shared fairly, so that sockets
//! from some sources cannot keep out the peers of others.
//!
//! Every accepted socket takes a slot until its handshake ends. When all are taken, a new
//! socket still gets one, by evicting (closing) in this order:
//!
//! 1. the oldest socket that has **not yet sent a byte** (a peer that dials speaks first, at
//!    once: its `Hello`, or its TLS `ClientHello`), from any source;
//! 2. otherwise the oldest socket of the source holding the most slots, if that source holds
//!    more than the newcomer's source would with it (max-min fairness between source
//!    addresses);
//! 3. otherwise nothing: the newcomer is closed.
//!
//! So a flood of silent sockets, from one address or many, only ever holds slots no peer
//! needs, and a source sending bytes slowly holds at most its fair share. A silent socket is
//! also closed after the hello timeout (1 s by default) whether or not the slots are full.
//!
//! Rejections are logged at most once per [`LOG_EVERY`] (with the count of those not logged),
//! so a flood cannot flood the log.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::log_limit::RateLimit;

/// The shortest time between two log lines about rejected connections.
pub(super) const LOG_EVERY: Duration = Duration::from_secs(5);

/// The handshake slots of a node.
pub(super) struct Admission {
    max: usize,
    slots: Mutex<Slots>,
    log: RateLimit,
}

#[derive(Default)]
struct Slots {
    next: u64,
    /// In order of arrival (oldest first); at most `max` long.
    held: Vec<Slot>,
}

struct Slot {
    id: u64,
    source: IpAddr,
    spoke: bool,
    evict: CancellationToken,
}

/// Why a socket got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// Every slot is held by a socket that has spoken, and the newcomer's source already has
    /// its fair share.
    Full,
}

/// A slot, held until dropped. `evicted` is cancelled when a newcomer takes the slot.
pub(super) struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    pub(super) evicted: CancellationToken,
}

impl Ticket {
    /// The socket has sent its first bytes: it is evicted only for fairness from now on.
    pub(super) fn spoke(&self) {
        let mut slots = self.admission.slots.lock();
        if let Some(slot) = slots.held.iter_mut().find(|s| s.id == self.id) {
            slot.spoke = true;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.slots.lock().held.retain(|s| s.id != self.id);
    }
}

impl Admission {
    pub(super) fn new(max: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max,
            slots: Mutex::new(Slots::default()),
            log: RateLimit::new(LOG_EVERY),
        })
    }

    /// A slot for a socket from `source`, evicting another socket when all are taken (see the
    /// module docs).
    pub(super) fn admit(self: &Arc<Self>, source: IpAddr) -> Result<Ticket, Refused> {
        let mut slots = self.slots.lock();
        if slots.held.len() >= self.max {
            let victim = slots.victim(source).ok_or(Refused::Full)?;
            let slot = slots.held.remove(victim);
            slot.evict.cancel();
        }
        let id = slots.next;
        slots.next += 1;
        let evicted = CancellationToken::new();
        slots.held.push(Slot {
            id,
            source,
            spoke: false,
            evict: evicted.clone(),
        });
        Ok(Ticket {
            admission: self.clone(),
            id,
            evicted,
        })
    }

    /// How many slots are held.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.slots.lock().held.len()
    }

    /// Whether a rejection may be logged now: `Some(n)` with the number of rejections not
    /// logged since the last line, `None` to stay quiet.
    pub(super) fn may_log(&self) -> Option<u64> {
        self.log.hit()
    }
}

impl Slots {
    /// The slot to give up for a newcomer from `source`, if any may be.
    fn victim(&self, source: IpAddr) -> Option<usize> {
        if let Some(i) = self.held.iter().position(|s| !s.spoke) {
            return Some(i);
        }
        let count = |ip: IpAddr| self.held.iter().filter(|s| s.source == ip).count();
        // The source holding the most slots (the first to reach that count, on a tie).
        let mut greediest: Option<(IpAddr, usize)> = None;
        for slot in &self.held {
            let n = count(slot.source);
            if greediest.is_none_or(|(_, most)| n > most) {
                greediest = Some((slot.source, n));
            }
        }
        let (ip, most) = greediest?;
        if most > count(source) + 1 {
            self.held.iter().position(|s| s.source == ip)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_newcomer_evicts_the_oldest_silent_socket() {
        let a = Admission::new(2);
        let first = a.admit(ip(1)).unwrap();
        let second = a.admit(ip(1)).unwrap();
        second.spoke();
        let third = a.admit(ip(1)).unwrap();
        assert!(first.evicted.is_cancelled());
        assert!(!second.evicted.is_cancelled());
        assert!(!third.evicted.is_cancelled());
        assert_eq!(a.held(), 2);
        // Dropping an evicted ticket frees nothing twice.
        drop(first);
        assert_eq!(a.held(), 2);
    }

    #[test]
    fn speaking_sockets_of_one_source_yield_to_another_source_down_to_a_fair_share() {
        let a = Admission::new(4);
        let greedy: Vec<Ticket> = (0..4).map(|_| a.admit(ip(1)).unwrap()).collect();
        greedy.iter().for_each(Ticket::spoke);
        // 4 vs 0: the greedy source gives up its oldest.
        let other = a.admit(ip(2)).unwrap();
        other.spoke();
        assert!(greedy[0].evicted.is_cancelled());
        // 3 vs 1: another.
        let other2 = a.admit(ip(2)).unwrap();
        other2.spoke();
        assert!(greedy[1].evicted.is_cancelled());
        // 2 vs 2: no more; the newcomer is refused.
        assert_eq!(a.admit(ip(2)).err(), Some(Refused::Full));
        // Nor may the greedy source take back a slot from a source with fewer.
        assert_eq!(a.admit(ip(1)).err(), Some(Refused::Full));
        assert_eq!(a.held(), 4);
    }

    #[test]
    fn a_finished_handshake_frees_its_slot() {
        let a = Admission::new(1);
        let t = a.admit(ip(1)).unwrap();
        t.spoke();
        assert!(a.admit(ip(1)).is_err());
        drop(t);
        assert!(a.admit(ip(1)).is_ok());
    }
}
