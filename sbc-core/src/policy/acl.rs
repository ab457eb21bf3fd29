//! Address networks and allow/deny lists (IPv4 and IPv6).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP network in CIDR notation; a bare address is a full-length prefix. IPv4-mapped
/// IPv6 addresses match IPv4 networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// A string that is not an address or a network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or a CIDR network (e.g. 192.0.2.0/24, 2001:db8::/32)")]
pub struct CidrError(pub String);

impl Cidr {
    pub fn new(address: IpAddr, prefix: u8) -> Option<Cidr> {
        let address = canonical(address);
        let max = if address.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return None;
        }
        Some(Cidr {
            network: mask(address, prefix),
            prefix,
        })
    }

    /// The network of exactly one address.
    pub fn host(address: IpAddr) -> Cidr {
        let address = canonical(address);
        Cidr {
            network: address,
            prefix: if address.is_ipv4() { 32 } else { 128 },
        }
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        address.is_ipv4() == self.network.is_ipv4() && mask(address, self.prefix) == self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn network(&self) -> IpAddr {
        self.network
    }
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let bad = || CidrError(text.to_owned());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let address: IpAddr = address.parse().map_err(|_| bad())?;
        match prefix {
            None => Ok(Cidr::host(address)),
            Some(prefix) => {
                let prefix: u8 = prefix.parse().map_err(|_| bad())?;
                // An IPv4-mapped IPv6 network is written with an IPv6 prefix length.
                let prefix = match address {
                    IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
                        prefix.checked_sub(96).ok_or_else(bad)?
                    }
                    _ => prefix,
                };
                Cidr::new(address, prefix).ok_or_else(bad)
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = if self.network.is_ipv4() { 32 } else { 128 };
        if self.prefix == full {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn mask(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let bits = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from(std::net::Ipv4Addr::from(u32::from(v4) & bits))
        }
        IpAddr::V6(v6) => {
            let bits = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from(std::net::Ipv6Addr::from(u128::from(v6) & bits))
        }
    }
}

/// An access-control list: a source is refused when a `deny` network contains it, else
/// admitted when `allow` is empty or one of its networks contains it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acl {
    pub allow: Vec<Cidr>,
    pub deny: Vec<Cidr>,
}

impl Acl {
    /// Admits everything.
    pub fn open() -> Acl {
        Acl::default()
    }

    pub fn admits(&self, address: IpAddr) -> bool {
        !self.deny.iter().any(|net| net.contains(address))
            && (self.allow.is_empty() || self.allow.iter().any(|net| net.contains(address)))
    }

    /// Whether `address` is on the allow list explicitly (not merely not denied).
    pub fn lists(&self, address: IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(address))
            && !self.deny.iter().any(|net| net.contains(address))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn networks_match_their_addresses() {
        let net: Cidr = "192.0.2.77/24".parse().unwrap();
        assert_eq!(net.to_string(), "192.0.2.0/24");
        assert!(net.contains("192.0.2.1".parse().unwrap()));
        assert!(net.contains("::ffff:192.0.2.9".parse().unwrap()));
        assert!(!net.contains("192.0.3.1".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("192.0.2.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.5".parse().unwrap()));
        assert!("192.0.2.1/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        assert_eq!(
            "2001:db8::1".parse::<Cidr>().unwrap().to_string(),
            "2001:db8::1"
        );
    }

    #[test]
    fn deny_wins_over_allow() {
        let acl = Acl {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            deny: vec!["10.1.0.0/16".parse().unwrap()],
        };
        assert!(acl.admits("10.2.3.4".parse().unwrap()));
        assert!(!acl.admits("10.1.3.4".parse().unwrap()));
        assert!(!acl.admits("192.0.2.1".parse().unwrap()));
        assert!(Acl::open().admits("192.0.2.1".parse().unwrap()));
    }
}
