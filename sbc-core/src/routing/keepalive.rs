//! OPTIONS keep-alives to trunk targets: when to probe, and when a target goes down or up.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;

use super::{KeepAlive, ResolvedTarget, RoutingTable};
use crate::net::Protocol;
use crate::sip::{
    CSeq, HeaderName, Host, HostPort, Method, NameAddr, Param, Params, Request, SipUri, StatusCode,
    Transport, Uri, Via,
};

/// An OPTIONS to send now to `target` (build it with [`build_options`] and send it in a
/// client transaction), then report its outcome with [`TrunkMonitor::handle_probe_result`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub target: ResolvedTarget,
}

/// The outcome of a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    /// A final response (provisional ones are ignored: the probe is still running).
    Answered(StatusCode),
    /// No final response: the transaction timed out (Timer F) or the transport failed.
    TimedOut,
}

/// A target that went down or came back up: apply it with [`RoutingTable::mark_target`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetChange {
    pub target: ResolvedTarget,
    pub up: bool,
}

/// Whether an answer to a probe shows the peer alive: any final response except `503`
/// (RFC 3261 §21.5.4: the server is overloaded or in maintenance, so calls must not go
/// there). A `4xx`, other `5xx` or `6xx` means a SIP stack received the OPTIONS, parsed it
/// and answered, which is what a keep-alive checks; many peers answer OPTIONS with `404`
/// or `405` and still take calls.
pub fn is_alive_answer(status: StatusCode) -> bool {
    status.is_final() && status != StatusCode::SERVICE_UNAVAILABLE
}

/// Decides when to send OPTIONS to each resolved target of the trunks configured with
/// [`KeepAlive`], and marks a target down after `down_after` failed probes in a row and up
/// after `up_after` answered ones in a row (see [`is_alive_answer`]).
///
/// A target shared by several trunks is probed once, with the settings of the first of
/// them (configuration order). One probe per target is in flight at a time; the next one
/// goes `interval` after the previous one's outcome.
///
/// Drain contract: after [`TrunkMonitor::sync`], [`TrunkMonitor::handle_timeout`] or
/// [`TrunkMonitor::handle_probe_result`], take every [`TrunkMonitor::poll_probe`] and
/// [`TrunkMonitor::poll_change`], then sleep until [`TrunkMonitor::poll_timeout`].
#[derive(Clone, Debug, Default)]
pub struct TrunkMonitor {
    /// Bounded by the routing table: one per distinct target address.
    targets: Vec<Monitored>,
    /// At most one pending change per target.
    changes: VecDeque<TargetChange>,
}

#[derive(Clone, Debug)]
struct Monitored {
    target: ResolvedTarget,
    settings: KeepAlive,
    up: bool,
    streak: Streak,
    probe: ProbeState,
}

/// Consecutive outcomes of the same kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Streak {
    None,
    Failures(u32),
    Answers(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProbeState {
    /// The next probe is due at this time.
    Waiting { next: Instant },
    /// Due since this time; handed out by `poll_probe`.
    Due { since: Instant },
    /// Sent; counts as timed out at `give_up_at` unless its result comes first.
    InFlight { give_up_at: Instant },
}

impl TrunkMonitor {
    pub fn new() -> TrunkMonitor {
        TrunkMonitor::default()
    }

    /// Takes the targets to watch from the table: every resolved target of every trunk with
    /// keep-alive. Targets already watched keep their schedule; new ones are probed at
    /// once; gone ones are forgotten. Every watched target's up/down state is taken from
    /// the table (a target someone else marked down comes back after `up_after` answers).
    /// Call it after [`RoutingTable::set_resolved`] and after marking targets yourself.
    pub fn sync(&mut self, now: Instant, table: &RoutingTable) {
        let mut watched: Vec<Monitored> = Vec::with_capacity(self.targets.len());
        for trunk in table.trunks() {
            let Some(settings) = &trunk.keep_alive else {
                continue;
            };
            for target in table.resolved(trunk.id) {
                if watched.iter().any(|m| m.target.addr == target.addr) {
                    continue;
                }
                let up = table.is_target_up(target.addr);
                let existing = self
                    .targets
                    .iter()
                    .position(|m| m.target.addr == target.addr);
                let mut monitored = match existing {
                    Some(i) => self.targets.swap_remove(i),
                    None => Monitored {
                        target: target.clone(),
                        settings: settings.clone(),
                        up,
                        streak: Streak::None,
                        probe: ProbeState::Waiting { next: now },
                    },
                };
                if monitored.up != up {
                    monitored.up = up;
                    monitored.streak = Streak::None;
                }
                monitored.target = target.clone();
                monitored.settings = settings.clone();
                watched.push(monitored);
            }
        }
        self.targets = watched;
        let targets = &self.targets;
        self.changes
            .retain(|c| targets.iter().any(|m| m.target.addr == c.target.addr));
    }

    /// Makes due probes available to [`TrunkMonitor::poll_probe`] and fails probes whose
    /// result never came.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.targets.len() {
            let Some(monitored) = self.targets.get_mut(i) else {
                continue;
            };
            match monitored.probe {
                ProbeState::Waiting { next } if next <= now => {
                    monitored.probe = ProbeState::Due { since: now };
                }
                ProbeState::InFlight { give_up_at } if give_up_at <= now => {
                    self.record(now, i, false);
                }
                _ => {}
            }
        }
    }

    /// The next probe to send, if one is due.
    pub fn poll_probe(&mut self) -> Option<Probe> {
        let monitored = self
            .targets
            .iter_mut()
            .find(|m| matches!(m.probe, ProbeState::Due { .. }))?;
        if let ProbeState::Due { since } = monitored.probe {
            monitored.probe = ProbeState::InFlight {
                give_up_at: since + monitored.settings.give_up_after,
            };
        }
        Some(Probe {
            target: monitored.target.clone(),
        })
    }

    /// The outcome of the probe sent to `target`. Results for a target with no probe in
    /// flight (late, or after it was given up on) and provisional responses are ignored.
    pub fn handle_probe_result(&mut self, now: Instant, target: SocketAddr, result: ProbeResult) {
        let alive = match result {
            ProbeResult::Answered(status) if status.is_provisional() => return,
            ProbeResult::Answered(status) => is_alive_answer(status),
            ProbeResult::TimedOut => false,
        };
        if let Some(i) = self
            .targets
            .iter()
            .position(|m| m.target.addr == target && matches!(m.probe, ProbeState::InFlight { .. }))
        {
            self.record(now, i, alive);
        }
    }

    /// The next target that went down or came back up.
    pub fn poll_change(&mut self) -> Option<TargetChange> {
        self.changes.pop_front()
    }

    /// When to call [`TrunkMonitor::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.targets
            .iter()
            .map(|m| match m.probe {
                ProbeState::Waiting { next } => next,
                ProbeState::Due { since } => since,
                ProbeState::InFlight { give_up_at } => give_up_at,
            })
            .min()
    }

    /// The monitor's view of a watched target: `Some(true)` when up.
    pub fn is_up(&self, target: SocketAddr) -> Option<bool> {
        self.targets
            .iter()
            .find(|m| m.target.addr == target)
            .map(|m| m.up)
    }

    /// How many targets are watched.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Counts an outcome for the target at `index`, schedules its next probe, and queues a
    /// change when its state flips.
    fn record(&mut self, now: Instant, index: usize, alive: bool) {
        let Some(monitored) = self.targets.get_mut(index) else {
            return;
        };
        monitored.probe = ProbeState::Waiting {
            next: now + monitored.settings.interval,
        };
        monitored.streak = match (monitored.streak, alive) {
            (Streak::Answers(n), true) => Streak::Answers(n.saturating_add(1)),
            (_, true) => Streak::Answers(1),
            (Streak::Failures(n), false) => Streak::Failures(n.saturating_add(1)),
            (_, false) => Streak::Failures(1),
        };
        let flips = match monitored.streak {
            Streak::Failures(n) => monitored.up && n >= monitored.settings.down_after,
            Streak::Answers(n) => !monitored.up && n >= monitored.settings.up_after,
            Streak::None => false,
        };
        if !flips {
            return;
        }
        monitored.up = !monitored.up;
        let change = TargetChange {
            target: monitored.target.clone(),
            up: monitored.up,
        };
        match self
            .changes
            .iter_mut()
            .find(|c| c.target.addr == change.target.addr)
        {
            Some(pending) => *pending = change,
            None => self.changes.push_back(change),
        }
    }
}

/// An OPTIONS keep-alive to `target`, ready for the transaction layer:
///
/// * Request-URI `sip:<ip>:<port>` (`;transport=tcp` over TCP, `sips:` over TLS);
/// * top Via `SIP/2.0/<transport>` with `local_contact`'s host and port as sent-by, the
///   given `branch` (an RFC 3261 branch, `transaction::branch_from_random`) and, over UDP,
///   `rport` (RFC 3581);
/// * `Max-Forwards: 70`, From `<local_contact>` (without its parameters) with `tag`, To the
///   Request-URI, `Call-ID: call_id`, `CSeq: 1 OPTIONS`, Contact `<local_contact>`,
///   `Accept: application/sdp`; no body.
pub fn build_options(
    target: &ResolvedTarget,
    local_contact: &SipUri,
    branch: &str,
    call_id: &str,
    tag: &str,
) -> Request {
    let request_uri = Uri::Sip(SipUri {
        secure: target.protocol == Protocol::Tls,
        user: None,
        password: None,
        host: HostPort {
            host: match target.addr.ip() {
                IpAddr::V4(ip) => Host::V4(ip),
                IpAddr::V6(ip) => Host::V6(ip),
            },
            port: Some(target.addr.port()),
        },
        params: match target.protocol {
            Protocol::Tcp => Params(vec![param("transport", Some("tcp"))]),
            Protocol::Udp | Protocol::Tls => Params::default(),
        },
        headers: None,
    });
    let mut via_params = vec![param("branch", Some(branch))];
    if target.protocol == Protocol::Udp {
        via_params.push(param("rport", None));
    }
    let via = Via {
        transport: match target.protocol {
            Protocol::Udp => Transport::Udp,
            Protocol::Tcp => Transport::Tcp,
            Protocol::Tls => Transport::Tls,
        },
        sent_by: local_contact.host.clone(),
        params: Params(via_params),
    };
    let from_uri = SipUri {
        params: Params::default(),
        headers: None,
        ..local_contact.clone()
    };
    let from = NameAddr {
        display_name: None,
        uri: Uri::Sip(from_uri),
        params: Params(vec![param("tag", Some(tag))]),
        angle_brackets: true,
    };
    let to = NameAddr {
        display_name: None,
        uri: request_uri.clone(),
        params: Params::default(),
        angle_brackets: true,
    };
    let contact = NameAddr {
        display_name: None,
        uri: Uri::Sip(local_contact.clone()),
        params: Params::default(),
        angle_brackets: true,
    };
    let cseq = CSeq {
        seq: 1,
        method: Method::Options,
    };
    let mut request = Request::new(Method::Options, request_uri);
    let headers = &mut request.headers;
    headers.push(HeaderName::Via, via.to_bytes());
    headers.push(HeaderName::MaxForwards, Bytes::from_static(b"70"));
    headers.push(HeaderName::From, from.to_bytes());
    headers.push(HeaderName::To, to.to_bytes());
    headers.push(
        HeaderName::CallId,
        Bytes::copy_from_slice(call_id.as_bytes()),
    );
    headers.push(HeaderName::CSeq, cseq.to_bytes());
    headers.push(HeaderName::Contact, contact.to_bytes());
    headers.push(HeaderName::Accept, Bytes::from_static(b"application/sdp"));
    request
}

fn param(name: &str, value: Option<&str>) -> Param {
    Param {
        name: name.into(),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
    }
}
