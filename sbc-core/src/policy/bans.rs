//! The live ban table: addresses (automatic bans) and networks (an operator's), with
//! expiry, bounded.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Instant;

use super::acl::Cidr;

/// Why a source is banned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanEntry {
    pub reason: String,
    /// `None`: until lifted.
    pub until: Option<Instant>,
    /// Messages dropped because of it since it was added.
    pub hits: u64,
}

/// Bans of single addresses (looked up in O(1)) and of networks (a short list, scanned).
#[derive(Debug)]
pub struct BanTable {
    hosts: HashMap<IpAddr, BanEntry>,
    networks: Vec<(Cidr, BanEntry)>,
    /// (expiry, address) of host bans that expire, for sweeping and eviction.
    expiries: BTreeSet<(Instant, IpAddr)>,
    capacity: usize,
}

impl BanTable {
    pub fn new(capacity: usize) -> BanTable {
        BanTable {
            hosts: HashMap::new(),
            networks: Vec::new(),
            expiries: BTreeSet::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.hosts.len() + self.networks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `address` is banned at `now`; counts a hit when it is.
    pub fn hit(&mut self, now: Instant, address: IpAddr) -> bool {
        self.expire(now);
        if let Some(entry) = self.hosts.get_mut(&address) {
            entry.hits += 1;
            return true;
        }
        if let Some((_, entry)) = self
            .networks
            .iter_mut()
            .find(|(net, entry)| net.contains(address) && entry.until.is_none_or(|t| t > now))
        {
            entry.hits += 1;
            return true;
        }
        false
    }

    /// Bans `network` (a host or a network) for `reason` until `until`. A full table
    /// makes room by dropping the ban that would lapse first; `false` when no room can
    /// be made (every ban is permanent).
    pub fn insert(
        &mut self,
        now: Instant,
        network: Cidr,
        reason: &str,
        until: Option<Instant>,
    ) -> bool {
        self.expire(now);
        self.remove(network);
        if self.len() >= self.capacity {
            let Some(&first) = self.expiries.iter().next() else {
                return false;
            };
            self.expiries.remove(&first);
            self.hosts.remove(&first.1);
        }
        let entry = BanEntry {
            reason: reason.to_owned(),
            until,
            hits: 0,
        };
        let full = if network.network().is_ipv4() { 32 } else { 128 };
        if network.prefix() == full {
            let address = network.network();
            if let Some(until) = until {
                self.expiries.insert((until, address));
            }
            self.hosts.insert(address, entry);
        } else {
            self.networks.push((network, entry));
        }
        true
    }

    /// Lifts the ban of exactly `network`; `true` when there was one.
    pub fn remove(&mut self, network: Cidr) -> bool {
        let full = if network.network().is_ipv4() { 32 } else { 128 };
        if network.prefix() == full {
            let address = network.network();
            match self.hosts.remove(&address) {
                Some(entry) => {
                    if let Some(until) = entry.until {
                        self.expiries.remove(&(until, address));
                    }
                    true
                }
                None => false,
            }
        } else {
            let before = self.networks.len();
            self.networks.retain(|(net, _)| *net != network);
            before != self.networks.len()
        }
    }

    /// The ban of exactly `network`, if any.
    pub fn get(&self, network: Cidr) -> Option<&BanEntry> {
        let full = if network.network().is_ipv4() { 32 } else { 128 };
        if network.prefix() == full {
            self.hosts.get(&network.network())
        } else {
            self.networks
                .iter()
                .find(|(net, _)| *net == network)
                .map(|(_, entry)| entry)
        }
    }

    /// Drops bans that lapsed.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(until, address)) = self.expiries.iter().next() {
            if until > now {
                break;
            }
            self.expiries.remove(&(until, address));
            self.hosts.remove(&address);
        }
        self.networks
            .retain(|(_, entry)| entry.until.is_none_or(|until| until > now));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    #[test]
    fn bans_expire_and_are_bounded() {
        let now = Instant::now();
        let mut bans = BanTable::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        assert!(bans.insert(
            now,
            Cidr::host(a),
            "scanner",
            Some(now + Duration::from_secs(10))
        ));
        assert!(bans.insert(
            now,
            Cidr::host(b),
            "auth_failures",
            Some(now + Duration::from_secs(20))
        ));
        assert!(bans.hit(now, a));
        // Full: the ban that lapses first makes room.
        assert!(bans.insert(
            now,
            Cidr::host(c),
            "scanner",
            Some(now + Duration::from_secs(30))
        ));
        assert!(!bans.hit(now, a));
        assert!(bans.hit(now, b));
        assert_eq!(bans.get(Cidr::host(b)).unwrap().hits, 1);
        assert!(!bans.hit(now + Duration::from_secs(21), b));
        assert!(bans.hit(now + Duration::from_secs(21), c));
        assert!(bans.remove(Cidr::host(c)));
        assert!(!bans.hit(now, c));
        assert!(bans.is_empty());
    }

    #[test]
    fn network_bans_cover_their_addresses() {
        let now = Instant::now();
        let mut bans = BanTable::new(10);
        let net: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(bans.insert(now, net, "operator", None));
        assert!(bans.hit(now, "2001:db8::7".parse().unwrap()));
        assert!(!bans.hit(now, "2001:db9::7".parse().unwrap()));
        assert!(bans.remove(net));
        assert!(!bans.hit(now, "2001:db8::7".parse().unwrap()));
    }
}
