//! Which addresses a certificate may be fetched from: never the special-purpose ranges of
//! RFC 6890 (loopback, private, link-local, documentation, multicast …) unless the
//! configuration allows a range explicitly. Checked on every address a name resolves
//! to, so a public name pointing at an internal address is refused too.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address range `address/prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressRange {
    pub address: IpAddr,
    pub prefix: u8,
}

/// A range that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address range (address/prefix)")]
pub struct BadRange(pub String);

impl FromStr for AddressRange {
    type Err = BadRange;

    fn from_str(text: &str) -> Result<AddressRange, BadRange> {
        let bad = || BadRange(text.to_owned());
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| bad())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(bad)?,
        };
        Ok(AddressRange { address, prefix })
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl AddressRange {
    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> AddressRange {
        AddressRange {
            address: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    const fn v6(segments: [u16; 8], prefix: u8) -> AddressRange {
        let [a, b, c, d, e, f, g, h] = segments;
        AddressRange {
            address: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The special-purpose ranges of RFC 6890 (and its updates: RFC 8190), plus multicast
/// and the IPv4 reserved block.
pub const SPECIAL_PURPOSE: [AddressRange; 27] = [
    AddressRange::v4(0, 0, 0, 0, 8),
    AddressRange::v4(10, 0, 0, 0, 8),
    AddressRange::v4(100, 64, 0, 0, 10),
    AddressRange::v4(127, 0, 0, 0, 8),
    AddressRange::v4(169, 254, 0, 0, 16),
    AddressRange::v4(172, 16, 0, 0, 12),
    AddressRange::v4(192, 0, 0, 0, 24),
    AddressRange::v4(192, 0, 2, 0, 24),
    AddressRange::v4(192, 31, 196, 0, 24),
    AddressRange::v4(192, 52, 193, 0, 24),
    AddressRange::v4(192, 88, 99, 0, 24),
    AddressRange::v4(192, 168, 0, 0, 16),
    AddressRange::v4(192, 175, 48, 0, 24),
    AddressRange::v4(198, 18, 0, 0, 15),
    AddressRange::v4(198, 51, 100, 0, 24),
    AddressRange::v4(203, 0, 113, 0, 24),
    AddressRange::v4(224, 0, 0, 0, 4),
    AddressRange::v4(240, 0, 0, 0, 4),
    AddressRange::v6([0, 0, 0, 0, 0, 0, 0, 0], 127), // :: and ::1
    AddressRange::v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96), // IPv4-mapped (checked as IPv4)
    AddressRange::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),
    AddressRange::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
    AddressRange::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
    AddressRange::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
    AddressRange::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
    AddressRange::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
    AddressRange::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
];

/// Whether the fetcher may connect to `ip`: not special-purpose, or in an `allowed`
/// range. An IPv4-mapped IPv6 address is judged as the IPv4 address it maps.
pub fn may_fetch_from(ip: IpAddr, allowed: &[AddressRange]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    allowed.iter().any(|range| range.contains(ip))
        || !SPECIAL_PURPOSE.iter().any(|range| range.contains(ip))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn special_purpose_addresses_are_refused() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.7",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!may_fetch_from(ip(refused), &[]), "{refused}");
        }
        for allowed in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "172.32.0.1",
        ] {
            assert!(may_fetch_from(ip(allowed), &[]), "{allowed}");
        }
    }

    #[test]
    fn configured_ranges_are_allowed() {
        let loopback: AddressRange = "127.0.0.0/8".parse().unwrap();
        assert!(may_fetch_from(ip("127.1.2.3"), &[loopback]));
        assert!(!may_fetch_from(ip("10.0.0.1"), &[loopback]));
        let one: AddressRange = "::1".parse().unwrap();
        assert_eq!(one.prefix, 128);
        assert!(may_fetch_from(ip("::1"), &[one]));
        assert!("10.0.0.0/33".parse::<AddressRange>().is_err());
        assert!("nonsense".parse::<AddressRange>().is_err());
        let all: AddressRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("10.0.0.1")));
    }
}
