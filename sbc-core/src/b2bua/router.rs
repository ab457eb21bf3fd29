//! What the B2BUA needs from routing: for a new call, where it goes and which headers
//! pass. The routing module's `RoutingTable` implements [`CallRouter`]; tests implement it
//! with a fixed table.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::net::{Destination, Protocol};
use crate::sip::{HeaderName, Request};

/// One next hop of a route, already resolved.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub addr: SocketAddr,
    pub protocol: Protocol,
    /// The target's host name when it was configured by name: written as the host of the
    /// B-leg Request-URI and To, and checked against the certificate on TLS. `None`: the
    /// address is used.
    pub server_name: Option<String>,
    /// A registered contact of an access user (see [`crate::registrar`]): the B-leg goes
    /// to its Contact URI, through its Path, on the flow it registered on only.
    pub registered: Option<std::sync::Arc<crate::registrar::RegisteredContact>>,
}

impl Target {
    pub fn new(protocol: Protocol, addr: SocketAddr) -> Target {
        Target {
            addr,
            protocol,
            server_name: None,
            registered: None,
        }
    }

    /// Where the network driver sends to reach the target.
    pub fn destination(&self) -> Destination {
        Destination {
            protocol: self.protocol,
            addr: self.addr,
            server_name: self.server_name.clone(),
        }
    }
}

/// Which headers a trunk lets through the B2BUA, besides those the B2BUA builds itself
/// (Via, From, To, Call-ID, CSeq, Contact, Route …, which never pass) and those it strips
/// always because they reveal topology (Record-Route, Warning, Server …).
pub trait HeaderFilter: Send + Sync + fmt::Debug {
    fn passes(&self, name: &HeaderName) -> bool;

    /// Whether the peer is inside the trust domain: it then receives identity headers
    /// and the caller's Privacy request untouched; otherwise the SBC applies the privacy
    /// the caller asked for (see [`crate::policy::egress`]).
    fn trusted(&self) -> bool {
        true
    }

    /// The peer's media security policy (SDES/DTLS-SRTP required, preferred, allowed or
    /// forbidden). This trait is the trunk's policy object; its default is the built-in
    /// policy (SRTP accepted when offered, plain RTP offered).
    fn media(&self) -> crate::media::security::MediaPolicy {
        crate::media::security::MediaPolicy::default()
    }
}

/// Lets every header through (subject to the B2BUA's own rules).
#[derive(Clone, Copy, Debug, Default)]
pub struct PassAll;

impl HeaderFilter for PassAll {
    fn passes(&self, _: &HeaderName) -> bool {
        true
    }
}

/// Lets only the listed headers through.
#[derive(Clone, Debug, Default)]
pub struct AllowList(pub Vec<HeaderName>);

impl HeaderFilter for AllowList {
    fn passes(&self, name: &HeaderName) -> bool {
        self.0.contains(name)
    }
}

/// Lets every header through but the listed ones.
#[derive(Clone, Debug, Default)]
pub struct DenyList(pub Vec<HeaderName>);

impl HeaderFilter for DenyList {
    fn passes(&self, name: &HeaderName) -> bool {
        !self.0.contains(name)
    }
}

/// Where a new call goes.
#[derive(Clone, Debug)]
pub struct RouteChoice {
    /// The destination trunk's name (for logs, records and its identity policy).
    pub trunk: String,
    /// The trunk the call came from (by source address), `None` for a peer that is no
    /// trunk of ours: whose identity policy applies to the caller's side.
    pub source_trunk: Option<String>,
    /// The targets in failover order (the first is tried first). At most
    /// [`super::B2buaConfig::max_targets`] are used.
    pub targets: Vec<Target>,
    /// The policy of the destination trunk: which headers of the caller's messages reach
    /// the callee.
    pub toward_callee: Arc<dyn HeaderFilter>,
    /// The policy of the source (the caller's trunk, or the default for unknown
    /// sources): which headers of the callee's messages reach the caller.
    pub toward_caller: Arc<dyn HeaderFilter>,
}

/// Why a new call has no route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoRoute {
    /// No route matches the request (answered `404 Not Found`).
    NotFound,
    /// The source may not place calls (answered `403 Forbidden`).
    Forbidden,
    /// A route matches but its trunk has no usable target (answered `503`).
    Unavailable,
}

/// How a call attempt to a target ended, for routing to mark targets down and up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetOutcome {
    /// The target answered (any final response but 408 and 5xx).
    Answered,
    /// The target failed: timeout, transport error, 408 or 5xx.
    Failed,
}

/// Routing as the B2BUA sees it.
pub trait CallRouter: Send {
    /// Where a new call (`request`, a dialog-creating INVITE received from `source`) goes.
    /// `random` orders targets of equal priority (RFC 2782 weights).
    fn route(
        &mut self,
        source: SocketAddr,
        request: &Request,
        random: &mut dyn FnMut() -> u64,
    ) -> Result<RouteChoice, NoRoute>;

    /// How an attempt to `target` ended. Does nothing unless routing tracks targets.
    fn report(&mut self, target: &Target, outcome: TargetOutcome) {
        let _ = (target, outcome);
    }
}
