//! Symmetric RTP latching with hijack protection.
//!
//! The rule, per leg and per port (RTP and RTCP latch separately):
//!
//! 1. Before the leg latches, a packet is *plausible* when its source IP is
//!    - the IP of the leg's SDP RTP or RTCP address (a peer not behind NAT; any port, since a
//!      NAT or a firewall may rewrite it), or
//!    - the leg's signalling source IP, when signalling gave one (a NATed peer, whose SDP
//!      carries a private address but whose media leaves from the same public IP as its
//!      signalling), or
//!    - for the RTCP port only: the IP the leg's RTP port has latched to.
//!
//!    The first plausible packet latches the port to its exact source (IP and port).
//!    Implausible packets are dropped (`unexpected_source`); a leg with no SDP address and no
//!    signalling IP yet accepts nothing.
//! 2. Once latched, only packets from exactly the latched source are accepted; everything
//!    else is dropped (`unexpected_source`).
//! 3. A new SDP address for the leg (re-INVITE/UPDATE that changes its RTP/RTCP address or
//!    signalling IP) reopens both latches, so a peer that moved can latch again.
//!
//! 4. On SRTP legs a packet latches only once it authenticated (so that forged packets
//!    cannot steal the latch before the real peer's first packet), and an authenticated
//!    packet may latch an open port from any source: only the key holder can make one,
//!    which is stronger evidence than a plausible address (a NATed SRTP phone whose SDP
//!    shows a private address works without the signalling IP). On ICE legs, a connectivity
//!    check with valid credentials moves the latch to its source (the peer chose that path).
//!
//! Until a port latches, the relay sends to the SDP address.

use std::net::{IpAddr, SocketAddr};

use crate::control::RemoteMedia;

/// Where one port of a leg accepts packets from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latch {
    /// Not latched yet: the first plausible source wins.
    Open,
    /// Latched to this exact source.
    Latched(SocketAddr),
}

/// What a latch says of a packet's source, before anything is changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// From exactly the latched source.
    Latched,
    /// Not latched yet, and the source is plausible: accepting the packet latches the port.
    Plausible,
    /// Not latched yet, and the source is not plausible.
    Implausible,
    /// Latched to another source.
    Elsewhere,
}

impl Latch {
    /// Judges a packet from `source` without latching (see [`Latch::admit`]).
    pub fn check(
        &self,
        source: SocketAddr,
        remote: &RemoteMedia,
        latched_rtp_ip: Option<IpAddr>,
    ) -> Admission {
        match *self {
            Latch::Latched(latched) if same_address(latched, source) => Admission::Latched,
            Latch::Latched(_) => Admission::Elsewhere,
            Latch::Open if is_plausible(source.ip(), remote, latched_rtp_ip) => {
                Admission::Plausible
            }
            Latch::Open => Admission::Implausible,
        }
    }

    /// Latches to `source` (after a packet from it was accepted).
    pub fn latch_to(&mut self, source: SocketAddr) {
        *self = Latch::Latched(canonical(source));
    }

    /// Decides whether a packet from `source` is accepted, latching on the first plausible one.
    /// `latched_rtp_ip` is the IP the leg's RTP port latched to, offered to the RTCP latch.
    pub fn admit(
        &mut self,
        source: SocketAddr,
        remote: &RemoteMedia,
        latched_rtp_ip: Option<IpAddr>,
    ) -> bool {
        match *self {
            Latch::Latched(latched) => same_address(latched, source),
            Latch::Open => {
                if is_plausible(source.ip(), remote, latched_rtp_ip) {
                    *self = Latch::Latched(canonical(source));
                    true
                } else {
                    false
                }
            }
        }
    }

    /// The latched source, if any.
    pub fn address(&self) -> Option<SocketAddr> {
        match self {
            Latch::Open => None,
            Latch::Latched(address) => Some(*address),
        }
    }
}

/// Whether `source` may be the leg's peer (see the module docs).
pub fn is_plausible(source: IpAddr, remote: &RemoteMedia, latched_rtp_ip: Option<IpAddr>) -> bool {
    let source = source.to_canonical();
    let matches = |candidate: Option<IpAddr>| {
        candidate.is_some_and(|ip| !ip.is_unspecified() && ip.to_canonical() == source)
    };
    matches(remote.rtp.map(|a| a.ip()))
        || matches(remote.rtcp.map(|a| a.ip()))
        || matches(remote.signalling_ip)
        || matches(latched_rtp_ip)
}

fn canonical(address: SocketAddr) -> SocketAddr {
    SocketAddr::new(address.ip().to_canonical(), address.port())
}

fn same_address(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    fn sdp(rtp: &str) -> RemoteMedia {
        RemoteMedia {
            rtp: Some(addr(rtp)),
            ..RemoteMedia::default()
        }
    }

    #[test]
    fn latches_on_the_sdp_ip_with_any_port_then_only_that_source() {
        let remote = sdp("10.0.0.1:4000");
        let mut latch = Latch::Open;
        assert!(!latch.admit(addr("10.0.0.2:4000"), &remote, None));
        assert_eq!(latch, Latch::Open);
        assert!(latch.admit(addr("10.0.0.1:5555"), &remote, None));
        assert!(latch.admit(addr("10.0.0.1:5555"), &remote, None));
        assert!(!latch.admit(addr("10.0.0.1:4000"), &remote, None));
        assert_eq!(latch.address(), Some(addr("10.0.0.1:5555")));
    }

    #[test]
    fn a_nated_peer_latches_on_its_signalling_ip() {
        let remote = RemoteMedia {
            signalling_ip: Some(addr("203.0.113.9:0").ip()),
            ..sdp("192.168.1.20:4000")
        };
        let mut latch = Latch::Open;
        assert!(!latch.admit(addr("198.51.100.1:4000"), &remote, None));
        assert!(latch.admit(addr("203.0.113.9:61000"), &remote, None));
    }

    #[test]
    fn nothing_is_plausible_without_an_address() {
        assert!(!is_plausible(
            addr("10.0.0.1:1").ip(),
            &RemoteMedia::default(),
            None
        ));
        assert!(!is_plausible(
            addr("0.0.0.0:1").ip(),
            &sdp("0.0.0.0:4000"),
            None
        ));
        assert!(is_plausible(
            addr("10.0.0.7:1").ip(),
            &RemoteMedia::default(),
            Some(addr("10.0.0.7:9").ip())
        ));
        assert!(is_plausible(
            addr("[::ffff:10.0.0.1]:1").ip(),
            &sdp("10.0.0.1:4000"),
            None
        ));
    }
}
