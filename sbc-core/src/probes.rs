//! Trunk keep-alive on the wire: sends the OPTIONS probes a [`TrunkMonitor`] asks for
//! through the transaction layer and feeds it their outcomes.
//!
//! The monitor decides when to probe and when a target is up or down; this module only
//! turns a probe into a request (RFC 3261 §11: OPTIONS to the target's address, our Via
//! and Contact), remembers which transaction belongs to which target, and reports final
//! responses, timeouts and transport failures back. Sans-IO like the rest: the endpoint
//! calls it with `now` and its layer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use crate::b2bua::OwnsCallId;
use crate::net::{Destination, Protocol};
use crate::routing::{ProbeResult, RoutingTable, TargetChange, TrunkMonitor, build_options};
use crate::sip::{Host, HostPort, Params, SipUri};
use crate::transaction::{Event, Peer, Reliability, TransactionId, TransactionLayer};

/// Sends a monitor's probes and reports their outcomes; see the module docs.
pub struct Prober {
    monitor: TrunkMonitor,
    /// Our own address per transport (Via, From, Contact).
    local: Vec<(Protocol, SocketAddr)>,
    /// Which Call-IDs this shard owns (probe responses must come back to it).
    owns: Option<Arc<OwnsCallId>>,
    /// Probes in flight: at most one per watched target.
    in_flight: HashMap<TransactionId, SocketAddr>,
    /// How to reach each probed target (protocol and TLS name), for the driver.
    destinations: HashMap<SocketAddr, Destination>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("watched", &self.monitor.len())
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl Prober {
    pub fn new(local: Vec<(Protocol, SocketAddr)>, owns: Option<Arc<OwnsCallId>>) -> Prober {
        Prober {
            monitor: TrunkMonitor::new(),
            local,
            owns,
            in_flight: HashMap::new(),
            destinations: HashMap::new(),
        }
    }

    /// Takes the targets to watch from the routing table (after it changed).
    pub fn sync(&mut self, now: Instant, table: &RoutingTable) {
        self.monitor.sync(now, table);
        self.destinations.clear();
        for trunk in table.trunks() {
            for target in table.resolved(trunk.id) {
                self.destinations.insert(
                    target.addr,
                    Destination {
                        protocol: target.protocol,
                        addr: target.addr,
                        server_name: target.server_name.clone(),
                    },
                );
            }
        }
    }

    /// Sends the probes that are due.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        random: &mut dyn FnMut() -> u64,
    ) {
        self.monitor.handle_timeout(now);
        while let Some(probe) = self.monitor.poll_probe() {
            let target = probe.target;
            let local = self.local_for(target.protocol);
            let contact = SipUri {
                secure: target.protocol == Protocol::Tls,
                user: None,
                password: None,
                host: HostPort {
                    host: match local.ip() {
                        IpAddr::V4(ip) => Host::V4(ip),
                        IpAddr::V6(ip) => Host::V6(ip),
                    },
                    port: Some(local.port()),
                },
                params: Params::default(),
                headers: None,
            };
            let mut branch_bits = [0u8; 16];
            branch_bits[..8].copy_from_slice(&random().to_le_bytes());
            branch_bits[8..].copy_from_slice(&random().to_le_bytes());
            let branch = crate::transaction::branch_from_random(branch_bits);
            let call_id = self.call_id(random);
            let tag = format!("{:016x}", random());
            let request = build_options(&target, &contact, &branch, &call_id, &tag);
            let reliability = match target.protocol {
                Protocol::Udp => Reliability::Unreliable,
                Protocol::Tcp | Protocol::Tls => Reliability::Reliable,
            };
            let peer = Peer {
                remote: target.addr,
                reliability,
                flow: None,
            };
            match layer.handle_send_request(now, request, peer) {
                Ok(transaction) => {
                    self.in_flight.insert(transaction, target.addr);
                }
                // The layer is full: the probe counts as unanswered.
                Err(_) => {
                    self.monitor
                        .handle_probe_result(now, target.addr, ProbeResult::TimedOut);
                }
            }
        }
    }

    /// Takes the events of probe transactions; returns the others untouched.
    pub fn handle_event(&mut self, now: Instant, event: Event) -> Option<Event> {
        let (transaction, result) = match &event {
            Event::Response {
                transaction,
                response,
            } if response.status.is_final() => {
                (*transaction, Some(ProbeResult::Answered(response.status)))
            }
            Event::Response { transaction, .. } => (*transaction, None),
            Event::TimedOut { transaction, .. } | Event::TransportError { transaction } => {
                (*transaction, Some(ProbeResult::TimedOut))
            }
            Event::Terminated { transaction } => {
                // Ended without an outcome reported (should not happen): forget it.
                if let Some(target) = self.in_flight.remove(transaction) {
                    self.monitor
                        .handle_probe_result(now, target, ProbeResult::TimedOut);
                    return None;
                }
                return Some(event);
            }
            _ => return Some(event),
        };
        if !self.in_flight.contains_key(&transaction) {
            return Some(event);
        }
        if let Some(result) = result
            && let Some(target) = self.in_flight.remove(&transaction)
        {
            self.monitor.handle_probe_result(now, target, result);
        }
        None
    }

    /// A target whose reachability changed.
    pub fn poll_change(&mut self) -> Option<TargetChange> {
        self.monitor.poll_change()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.monitor.poll_timeout()
    }

    /// How to reach a probed target.
    pub fn destination(&self, peer: &Peer) -> Option<&Destination> {
        self.destinations.get(&peer.remote)
    }

    fn local_for(&self, protocol: Protocol) -> SocketAddr {
        self.local
            .iter()
            .find(|(p, _)| *p == protocol)
            .or(self.local.first())
            .map_or(SocketAddr::from(([127, 0, 0, 1], 5060)), |&(_, addr)| addr)
    }

    /// A Call-ID this shard owns (so that the answer comes back here).
    fn call_id(&self, random: &mut dyn FnMut() -> u64) -> String {
        let mut call_id = format!("{:016x}{:016x}", random(), random());
        if let Some(owns) = &self.owns {
            for _ in 0..4_096 {
                if owns(call_id.as_bytes()) {
                    break;
                }
                call_id = format!("{:016x}{:016x}", random(), random());
            }
        }
        call_id
    }
}
