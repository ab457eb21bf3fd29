//! `<nettype> <addrtype> <address>` as used by `o=`, `c=` and `a=rtcp:` (RFC 8866 §5.2,
//! §5.7; IPv6 written without brackets, RFC 5118 §4.6).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

use super::syntax::{is_token, token_string};

/// The network type. Only `IN` (Internet) is defined; others are kept as received.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NetType {
    In,
    Other(Box<str>),
}

impl NetType {
    pub fn as_str(&self) -> &str {
        match self {
            NetType::In => "IN",
            NetType::Other(token) => token,
        }
    }

    /// Decodes a token (the caller has checked it is one). Matching is exact: `in` is
    /// kept as an unknown type so that it prints back as received.
    pub(crate) fn from_token(token: &[u8]) -> NetType {
        match token {
            b"IN" => NetType::In,
            other => NetType::Other(token_string(other)),
        }
    }
}

/// The address type: `IP4`, `IP6`, or an extension kept as received.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AddrType {
    Ip4,
    Ip6,
    Other(Box<str>),
}

impl AddrType {
    pub fn as_str(&self) -> &str {
        match self {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
            AddrType::Other(token) => token,
        }
    }

    pub(crate) fn from_token(token: &[u8]) -> AddrType {
        match token {
            b"IP4" => AddrType::Ip4,
            b"IP6" => AddrType::Ip6,
            other => AddrType::Other(token_string(other)),
        }
    }
}

/// What an address field holds, decoded on demand from its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host<'a> {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    /// A fully qualified domain name (or any other non-IP text), as received.
    Name(&'a [u8]),
}

impl Host<'_> {
    /// The IP address, when the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Host::V4(ip) => Some(IpAddr::V4(ip)),
            Host::V6(ip) => Some(IpAddr::V6(ip)),
            Host::Name(_) => None,
        }
    }
}

/// `<nettype> <addrtype> <address>`. The address is kept as received (so an IPv6 address
/// in a non-canonical form prints back unchanged); [`NetAddress::host`] decodes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NetAddress {
    pub net_type: NetType,
    pub addr_type: AddrType,
    /// The unicast address or name, without any multicast `/ttl/count` suffix. Never empty
    /// and without spaces when printed.
    pub address: Bytes,
}

impl NetAddress {
    /// `IN IP4 <ip>` or `IN IP6 <ip>`.
    pub fn from_ip(ip: IpAddr) -> NetAddress {
        let addr_type = match ip {
            IpAddr::V4(_) => AddrType::Ip4,
            IpAddr::V6(_) => AddrType::Ip6,
        };
        NetAddress {
            net_type: NetType::In,
            addr_type,
            address: Bytes::from(ip.to_string()),
        }
    }

    /// `IN <addr_type> <name>` for a domain name.
    pub fn from_name(addr_type: AddrType, name: &str) -> NetAddress {
        NetAddress {
            net_type: NetType::In,
            addr_type,
            address: Bytes::copy_from_slice(name.as_bytes()),
        }
    }

    /// Replaces the address by `ip`, setting the network and address types to match.
    pub fn set_ip(&mut self, ip: IpAddr) {
        *self = NetAddress::from_ip(ip);
    }

    /// The address decoded: an IPv4 or IPv6 address, or a name.
    pub fn host(&self) -> Host<'_> {
        decode_host(&self.address)
    }

    /// The IP address, when the address is one (not a name).
    pub fn ip(&self) -> Option<IpAddr> {
        self.host().ip()
    }

    /// Decodes the three fields, checking that an `IN` address agrees with its type.
    pub(crate) fn parse(
        net_type: &[u8],
        addr_type: &[u8],
        address: Bytes,
    ) -> Result<NetAddress, &'static str> {
        if !is_token(net_type) {
            return Err("network type is not a token");
        }
        if !is_token(addr_type) {
            return Err("address type is not a token");
        }
        let net_type = NetType::from_token(net_type);
        let addr_type = AddrType::from_token(addr_type);
        if net_type == NetType::In {
            check_address(&addr_type, &address)?;
        } else if address.is_empty() {
            return Err("empty address");
        }
        Ok(NetAddress {
            net_type,
            addr_type,
            address,
        })
    }
}

impl fmt::Display for NetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.net_type.as_str(),
            self.addr_type.as_str(),
            String::from_utf8_lossy(&self.address)
        )
    }
}

pub(crate) fn decode_host(text: &[u8]) -> Host<'_> {
    if let Ok(s) = std::str::from_utf8(text) {
        if let Ok(ip) = s.parse::<Ipv4Addr>() {
            return Host::V4(ip);
        }
        if let Ok(ip) = s.parse::<Ipv6Addr>() {
            return Host::V6(ip);
        }
    }
    Host::Name(text)
}

fn looks_like_ipv4(text: &[u8]) -> bool {
    text.iter().all(|&b| b.is_ascii_digit() || b == b'.')
}

/// RFC 8866 §5.7 / RFC 5118 §4.6: an `IP4` address is a dotted quad or a name, an `IP6`
/// address is an IPv6 address without brackets or a name. A name is anything else without
/// spaces (an FQDN, or the `placeholder` of RFC 4317 §3.1).
fn check_address(addr_type: &AddrType, text: &[u8]) -> Result<(), &'static str> {
    if text.is_empty() {
        return Err("empty address");
    }
    match addr_type {
        AddrType::Ip4 => {
            if text.contains(&b':') {
                return Err("IPv6 address with address type IP4");
            }
            if looks_like_ipv4(text) && !matches!(decode_host(text), Host::V4(_)) {
                return Err("malformed IPv4 address");
            }
        }
        AddrType::Ip6 => {
            if text.contains(&b'[') || text.contains(&b']') {
                return Err("IPv6 address in brackets");
            }
            if text.contains(&b':') && !matches!(decode_host(text), Host::V6(_)) {
                return Err("malformed IPv6 address");
            }
            if looks_like_ipv4(text) {
                return Err("IPv4 address with address type IP6");
            }
        }
        AddrType::Other(_) => {}
    }
    Ok(())
}
