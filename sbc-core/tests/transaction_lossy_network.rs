//! A UAC layer and a UAS layer talking over a deterministic lossy network (drops,
//! duplicates, delays and so reorders), on a virtual clock, with simple TUs on both
//! sides. Whatever the seed and the loss rate (below 100 %):
//!
//! * every client transaction ends with a final response or a timeout at the client;
//! * a final response the client got is the one the server's TU sent;
//! * the server's TU never sees a request twice;
//! * both layers and the network end empty.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transaction_support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sbc_core::sip::{Message, Method, Request, Response, parse::parse_message};
use sbc_core::transaction::{
    Event, LayerConfig, Peer, Timer, TransactionId, TransactionLayer, branch_from_random,
};
use transaction_support::network::{Conditions, Datagram, Network, Rng};
use transaction_support::{RequestSpec, alice, bob, cancel_for, ms, response};

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Pending,
    Final(u16),
    TimedOut(Timer),
}

#[derive(Debug)]
struct Call {
    method: Method,
    call_id: String,
    request: Request,
    outcome: Outcome,
    cancel_at: Option<Instant>,
}

/// The client side: sends its planned requests, ACKs 2xx, cancels some INVITEs.
#[derive(Debug)]
struct Uac {
    layer: TransactionLayer,
    calls: Vec<Call>,
    by_transaction: HashMap<TransactionId, usize>,
    plan: BTreeMap<(Instant, usize), usize>,
}

#[derive(Debug)]
enum UasAction {
    Respond(Response),
    /// RFC 3261 §13.3.1.4: the UAS core retransmits its 2xx until the ACK.
    Retransmit2xx {
        response: Response,
        interval: Duration,
    },
}

/// The server side: answers every request, retransmits 2xx, honours CANCEL.
#[derive(Debug, Default)]
struct UasTu {
    seen: HashMap<(String, u32, String), u32>,
    invites: HashMap<String, Request>,
    finals: HashMap<(String, String), u16>,
    acked: HashSet<String>,
    actions: BTreeMap<(Instant, u64), UasAction>,
    sequence: u64,
}

struct Simulation {
    rng: Rng,
    network: Network,
    uac: Uac,
    uas: TransactionLayer,
    tu: UasTu,
    now: Instant,
}

fn call_id_of(message_headers: &sbc_core::sip::Headers) -> String {
    String::from_utf8_lossy(message_headers.call_id().unwrap()).into_owned()
}

impl Simulation {
    fn new(seed: u64, conditions: Conditions, requests: usize) -> Simulation {
        let mut rng = Rng::new(seed);
        let start = Instant::now();
        let mut calls = Vec::new();
        let mut plan = BTreeMap::new();
        for index in 0..requests {
            let method = match rng.below(3) {
                0 => "OPTIONS",
                1 => "MESSAGE",
                _ => "INVITE",
            };
            let branch = branch_from_random(rng.bytes16());
            let call_id = format!("call-{seed}-{index}");
            let request = RequestSpec::new(method, &branch)
                .via(format!("SIP/2.0/UDP 192.0.2.1:5060;branch={branch}"))
                .call_id(call_id.clone())
                .cseq(1)
                .build();
            let at = start + ms(rng.below(3_000)) + ms(u64::try_from(index).unwrap());
            let cancel_at =
                (method == "INVITE" && rng.chance(300)).then(|| at + ms(rng.below(2_500)));
            plan.insert((at, index), index);
            calls.push(Call {
                method: request.method.clone(),
                call_id,
                request,
                outcome: Outcome::Pending,
                cancel_at,
            });
        }
        Simulation {
            network: Network::new(rng.next_u64(), conditions),
            rng,
            uac: Uac {
                layer: TransactionLayer::new(LayerConfig::default()),
                calls,
                by_transaction: HashMap::new(),
                plan,
            },
            uas: TransactionLayer::new(LayerConfig::default()),
            tu: UasTu::default(),
            now: start,
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let cancels = self
            .uac
            .calls
            .iter()
            .filter(|c| c.outcome == Outcome::Pending)
            .filter_map(|c| c.cancel_at)
            .filter(|&at| at >= self.now);
        [
            self.uac.layer.poll_timeout(),
            self.uas.poll_timeout(),
            self.network.next_delivery(),
            self.uac.plan.keys().next().map(|&(at, _)| at),
            self.tu.actions.keys().next().map(|&(at, _)| at),
        ]
        .into_iter()
        .flatten()
        .chain(cancels)
        .min()
    }

    fn run(&mut self) {
        let limit = self.now + Duration::from_secs(1_000);
        while let Some(next) = self.next_wakeup() {
            assert!(next <= limit, "simulation did not settle");
            self.now = self.now.max(next);
            self.step();
        }
    }

    fn step(&mut self) {
        let now = self.now;
        // Planned requests and cancels.
        while let Some((&(at, index), _)) = self.uac.plan.iter().next() {
            if at > now {
                break;
            }
            self.uac.plan.remove(&(at, index));
            let request = self.uac.calls[index].request.clone();
            let id = self
                .uac
                .layer
                .handle_send_request(now, request, bob())
                .unwrap();
            self.uac.by_transaction.insert(id, index);
        }
        for index in 0..self.uac.calls.len() {
            let call = &mut self.uac.calls[index];
            if call.cancel_at == Some(now) && call.outcome == Outcome::Pending {
                call.cancel_at = None;
                let cancel = cancel_for(&call.request);
                // The INVITE may not be sent yet; cancelling needs it in flight.
                let _ = self.uac.layer.handle_send_request(now, cancel, bob());
            }
        }
        // The network.
        while let Some(datagram) = self.network.deliver(now) {
            let message = parse_message(datagram.payload).unwrap();
            if datagram.to == bob() {
                self.uas
                    .handle_incoming(now, message, datagram.from)
                    .unwrap();
            } else {
                self.uac
                    .layer
                    .handle_incoming(now, message, datagram.from)
                    .unwrap();
            }
        }
        // Timers.
        self.uac.layer.handle_timeout(now);
        self.uas.handle_timeout(now);
        // The UAS TU's scheduled work.
        while let Some((&key, _)) = self.tu.actions.iter().next() {
            if key.0 > now {
                break;
            }
            let action = self.tu.actions.remove(&key).unwrap();
            self.uas_act(action);
        }
        self.drain();
    }

    /// Drains both layers until neither has output left.
    fn drain(&mut self) {
        loop {
            let mut progress = false;
            while let Some(event) = self.uas.poll_event() {
                progress = true;
                self.uas_event(event);
            }
            while let Some(event) = self.uac.layer.poll_event() {
                progress = true;
                self.uac_event(event);
            }
            while let Some(t) = self.uas.poll_transmit() {
                progress = true;
                self.send(bob(), t.destination, t.payload);
            }
            while let Some(t) = self.uac.layer.poll_transmit() {
                progress = true;
                self.send(alice(), t.destination, t.payload);
            }
            if !progress {
                return;
            }
        }
    }

    fn send(&mut self, from: Peer, to: Peer, payload: Bytes) {
        self.network.send(self.now, Datagram { from, to, payload });
    }

    fn schedule(&mut self, after: Duration, action: UasAction) {
        self.tu.sequence += 1;
        self.tu
            .actions
            .insert((self.now + after, self.tu.sequence), action);
    }

    fn uas_event(&mut self, event: Event) {
        match event {
            Event::Request { request, .. } => {
                let call_id = call_id_of(&request.headers);
                let seq = request.headers.cseq().unwrap().seq;
                let count = self
                    .tu
                    .seen
                    .entry((call_id.clone(), seq, request.method.to_string()))
                    .or_default();
                *count += 1;
                assert_eq!(*count, 1, "the TU saw {} {call_id} twice", request.method);
                let tag = format!("uas-{call_id}");
                match request.method {
                    Method::Invite => {
                        if self.rng.chance(500) {
                            let ringing = response(&request, 180, Some(&tag));
                            let after = ms(self.rng.below(300));
                            self.schedule(after, UasAction::Respond(ringing));
                        }
                        let status = if self.rng.chance(500) { 200 } else { 486 };
                        let after = ms(300 + self.rng.below(2_000));
                        let answer = response(&request, status, Some(&tag));
                        self.schedule(after, UasAction::Respond(answer));
                        self.tu.invites.insert(call_id, request);
                    }
                    Method::Cancel => {
                        self.uas_respond(response(&request, 200, Some(&tag)));
                        if self.uas.invite_cancelled_by(&request).is_some()
                            && let Some(invite) = self.tu.invites.get(&call_id).cloned()
                        {
                            self.uas_respond(response(&invite, 487, Some(&tag)));
                        }
                    }
                    _ => {
                        let after = ms(self.rng.below(300));
                        let answer = response(&request, 200, Some(&tag));
                        self.schedule(after, UasAction::Respond(answer));
                    }
                }
            }
            Event::Ack { request, .. } => {
                self.tu.acked.insert(call_id_of(&request.headers));
            }
            Event::StrayResponse { .. } => panic!("the UAS got a response"),
            Event::Response { .. } => panic!("the UAS has no client transactions"),
            Event::TimedOut { .. } | Event::TransportError { .. } | Event::Terminated { .. } => {}
        }
    }

    fn uas_act(&mut self, action: UasAction) {
        match action {
            UasAction::Respond(response) => self.uas_respond(response),
            UasAction::Retransmit2xx { response, interval } => {
                if self.tu.acked.contains(&call_id_of(&response.headers)) {
                    return;
                }
                if self
                    .uas
                    .handle_send_response(self.now, response.clone())
                    .is_ok()
                {
                    let interval = (interval * 2).min(T2);
                    self.schedule(interval, UasAction::Retransmit2xx { response, interval });
                }
            }
        }
    }

    fn uas_respond(&mut self, response: Response) {
        let status = response.status;
        let cseq = response.headers.cseq().unwrap();
        if self
            .uas
            .handle_send_response(self.now, response.clone())
            .is_err()
        {
            // Already answered (a CANCEL raced the planned final), or gone.
            return;
        }
        if status.is_final() {
            let key = (call_id_of(&response.headers), cseq.method.to_string());
            let previous = self.tu.finals.insert(key, status.as_u16());
            assert_eq!(previous, None, "two finals accepted for one transaction");
            if status.is_success() && cseq.method == Method::Invite {
                self.schedule(
                    T1,
                    UasAction::Retransmit2xx {
                        response,
                        interval: T1,
                    },
                );
            }
        }
    }

    fn uac_event(&mut self, event: Event) {
        match event {
            Event::Response {
                transaction,
                response,
            } => {
                let Some(&index) = self.uac.by_transaction.get(&transaction) else {
                    return; // a CANCEL's response
                };
                let status = response.status;
                let call = &mut self.uac.calls[index];
                if status.is_final() {
                    match call.outcome {
                        Outcome::Pending => call.outcome = Outcome::Final(status.as_u16()),
                        Outcome::Final(previous) => assert!(
                            previous == status.as_u16() && status.is_success(),
                            "second final {status:?} after {previous} reached the TU"
                        ),
                        Outcome::TimedOut(_) => panic!("final response after a timeout"),
                    }
                }
                if status.is_success() && call.method == Method::Invite {
                    let ack = ack_for_2xx(call, &response, &mut self.rng);
                    self.uac
                        .layer
                        .handle_send_stateless(&Message::Request(ack), bob())
                        .unwrap();
                }
            }
            // Timer C only asks the TU to cancel; Timer B follows it.
            Event::TimedOut {
                timer: Timer::C, ..
            } => {}
            Event::TimedOut { transaction, timer } => {
                if let Some(&index) = self.uac.by_transaction.get(&transaction) {
                    let call = &mut self.uac.calls[index];
                    if call.outcome == Outcome::Pending {
                        call.outcome = Outcome::TimedOut(timer);
                    }
                }
            }
            Event::Request { .. } | Event::Ack { .. } => panic!("the UAC got a request"),
            Event::StrayResponse { .. } | Event::TransportError { .. } => {}
            Event::Terminated { .. } => {}
        }
    }

    fn check(&self) {
        assert!(self.uac.layer.is_empty(), "UAC transactions left");
        assert!(self.uas.is_empty(), "UAS transactions left");
        assert!(self.network.is_empty());
        for call in &self.uac.calls {
            match call.outcome {
                Outcome::Pending => panic!("{} {} never ended", call.method, call.call_id),
                Outcome::Final(status) => {
                    let sent = self
                        .tu
                        .finals
                        .get(&(call.call_id.clone(), call.method.to_string()));
                    assert_eq!(
                        sent,
                        Some(&status),
                        "{} {}: client got {status}, server sent {sent:?}",
                        call.method,
                        call.call_id
                    );
                }
                Outcome::TimedOut(timer) => {
                    assert!(matches!(timer, Timer::B | Timer::F));
                }
            }
        }
    }

    fn statuses(&self) -> impl Iterator<Item = u16> + '_ {
        self.uac.calls.iter().filter_map(|c| match c.outcome {
            Outcome::Final(status) => Some(status),
            _ => None,
        })
    }

    fn finals(&self) -> usize {
        self.uac
            .calls
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Final(_)))
            .count()
    }
}

/// The ACK for a 2xx, sent by the UAC core with its own branch (RFC 3261 §13.2.2.4).
fn ack_for_2xx(call: &Call, ok: &Response, rng: &mut Rng) -> Request {
    let to_tag = ok.headers.to().unwrap().tag().cloned().unwrap();
    let branch = branch_from_random(rng.bytes16());
    RequestSpec::new("ACK", &branch)
        .via(format!("SIP/2.0/UDP 192.0.2.1:5060;branch={branch}"))
        .call_id(call.call_id.clone())
        .cseq(1)
        .with_to_tag(std::str::from_utf8(&to_tag).unwrap())
        .build()
}

fn simulate(seed: u64, conditions: Conditions, requests: usize) -> Simulation {
    let mut simulation = Simulation::new(seed, conditions, requests);
    simulation.run();
    simulation.check();
    simulation
}

#[test]
fn perfect_network_every_transaction_completes() {
    for seed in 0..20 {
        let sim = simulate(seed, Conditions::PERFECT, 12);
        assert_eq!(sim.finals(), 12, "seed {seed}");
        assert_eq!(sim.uas.stats().retransmissions_absorbed, 0);
    }
}

#[test]
fn duplicated_and_reordered_datagrams_never_reach_the_tu_twice() {
    let conditions = Conditions {
        loss: 0,
        duplicate: 1_000,
        max_delay: ms(300),
    };
    for seed in 0..30 {
        let sim = simulate(seed, conditions, 12);
        assert_eq!(sim.finals(), 12, "seed {seed}");
        assert!(sim.uas.stats().retransmissions_absorbed > 0);
    }
}

#[test]
fn every_transaction_completes_or_times_out_whatever_the_loss() {
    let mut timed_out = 0;
    let mut completed = 0;
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for seed in 0..300 {
        let mut rng = Rng::new(seed);
        let conditions = Conditions {
            loss: u32::try_from(rng.below(950)).unwrap(),
            duplicate: u32::try_from(rng.below(300)).unwrap(),
            max_delay: ms(rng.below(350)),
        };
        let sim = simulate(seed, conditions, 8);
        completed += sim.finals();
        for status in sim.statuses() {
            *statuses.entry(status).or_default() += 1;
        }
        timed_out += 8 - sim.finals();
    }
    // Both outcomes are exercised.
    assert!(completed > 1_000, "{completed} completed");
    assert!(timed_out > 50, "{timed_out} timed out");
    // Accepted, rejected and cancelled INVITEs, and answered non-INVITEs.
    for status in [200, 486, 487] {
        assert!(
            statuses.get(&status).copied().unwrap_or(0) > 10,
            "{statuses:?}"
        );
    }
}

#[test]
fn moderate_loss_is_recovered_by_retransmissions() {
    let conditions = Conditions {
        loss: 200,
        duplicate: 50,
        max_delay: ms(100),
    };
    let mut finals = 0;
    for seed in 0..50 {
        finals += simulate(seed, conditions, 10).finals();
    }
    // With 20 % loss and ~7–11 retransmissions per transaction, nearly all complete.
    assert!(finals >= 490, "{finals} of 500 completed");
}
