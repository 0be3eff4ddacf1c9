//! Connections per peer: one peer (an IPv4 address, or an IPv6 /64, which
//! one host holds whole) may hold only its share of the connection slots,
//! so that its silent sockets cannot shut every other client out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::api::gate::peer_of;

/// The open connections of each peer, within `cap` each.
#[derive(Debug)]
pub(crate) struct Peers {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection counted against its peer until it is dropped.
#[derive(Debug)]
pub(crate) struct PeerSlot {
    peers: Arc<Peers>,
    peer: IpAddr,
}

impl Peers {
    pub(crate) fn new(cap: usize) -> Arc<Peers> {
        Arc::new(Peers {
            cap,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The connections each peer may hold.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// A slot for a connection from `ip`, or `None` when its peer holds
    /// its share already.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<PeerSlot> {
        let peer = peer_of(ip);
        let mut open = self.open.lock().expect("the peers' lock is never poisoned");
        let count = open.entry(peer).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            peers: self.clone(),
            peer,
        })
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.open.lock().unwrap().len()
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = (self.peers.open.lock()).expect("the peers' lock is never poisoned");
        if let Some(count) = open.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_peer_holds_at_most_its_share_and_gets_it_back_as_connections_close() {
        let peers = Peers::new(2);
        let a = peers.admit(ip("2001:db8::1")).expect("first");
        let b = peers.admit(ip("2001:db8::2")).expect("second, same /64");
        assert!(peers.admit(ip("2001:db8::3")).is_none(), "third of the /64");
        let other = peers.admit(ip("192.0.2.1")).expect("another peer");
        drop(a);
        let c = peers.admit(ip("2001:db8::3")).expect("a slot came back");
        drop((b, c, other));
        assert_eq!(peers.tracked(), 0, "no peer is kept once it has gone");
    }
}
