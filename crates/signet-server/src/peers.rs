//! Per-peer connection caps: how many connections one client IP address may hold in a given
//! state (handshaking on the TLS listener, open on the probe listener), so that one peer
//! cannot take a whole budget of connections that need no credential.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts of connections per peer address, each at most `cap`.
#[derive(Debug)]
pub(crate) struct PeerCaps {
    cap: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; dropping it gives the place back.
#[derive(Debug)]
pub(crate) struct PeerSlot {
    caps: Arc<PeerCaps>,
    peer: IpAddr,
}

impl PeerCaps {
    pub(crate) fn new(cap: usize) -> Arc<PeerCaps> {
        Arc::new(PeerCaps {
            cap: cap.max(1),
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more connection of `peer`, or `None` when it holds `cap` already.
    pub(crate) fn try_take(self: &Arc<Self>, peer: IpAddr) -> Option<PeerSlot> {
        // An IPv4 client of a dual-stack socket is the same peer as over IPv4.
        let peer = peer.to_canonical();
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(peer).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            caps: self.clone(),
            peer,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut counts = self.caps.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_holds_at_most_cap_and_gets_places_back() {
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let caps = PeerCaps::new(2);
        let s1 = caps.try_take(a);
        let s2 = caps.try_take(a);
        assert!(s1.is_some() && s2.is_some());
        assert!(caps.try_take(a).is_none());
        assert!(caps.try_take(b).is_some());
        drop(s1);
        assert!(caps.try_take(a).is_some());
        drop(s2);
        let mapped = IpAddr::from(std::net::Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        let _x = caps.try_take(a);
        let _y = caps.try_take(mapped);
        assert!(
            caps.try_take(a).is_none(),
            "a mapped IPv6 address is the same peer"
        );
    }
}
