//! The B2BUA under every ending and under arbitrary input: relay sessions are released in
//! every ending, exactly once; nothing panics, and nothing outlives the call's last
//! transaction.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod b2bua_support;

use std::time::Duration;

use b2bua_support::*;
use bytes::Bytes;
use proptest::prelude::*;
use sbc_core::sip::{Message, Method, Request, Response};

/// Runs the clock far enough for every transaction and call record to end, then checks
/// that nothing is left and every relay session was released once.
fn settle(h: &mut Harness) {
    h.advance(Duration::from_secs(600));
    h.outbox.clear();
    assert_eq!(h.calls(), 0, "calls still in progress");
    assert_eq!(h.records(), 0, "call records left behind");
    assert_eq!(h.endpoint.transactions(), 0, "transactions left behind");
    let media = h.media();
    assert!(
        media.live.is_empty(),
        "relay sessions not released: {:?}",
        media.live
    );
    let mut released = media.released.clone();
    released.sort();
    released.dedup();
    assert_eq!(
        released.len(),
        media.released.len(),
        "a session released twice"
    );
    assert_eq!(released.len(), media.allocated.len());
}

#[test]
fn media_is_released_in_every_ending() {
    // BYE from the caller, from the callee.
    let mut h = Harness::new();
    let (mut caller, _) = establish(&mut h, "e1");
    h.receive_message(self::caller(), &caller.request("BYE", None));
    settle(&mut h);

    let mut h = Harness::new();
    let (_, mut bob) = establish(&mut h, "e2");
    h.receive_message(callee(), &bob.request("BYE", None));
    settle(&mut h);

    // CANCEL.
    let mut h = Harness::new();
    let caller = Caller::invite("e3", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    h.receive_message(self::caller(), &caller.cancel());
    settle(&mut h);

    // A failure, every target timing out, the relay's inactivity report.
    let mut h = Harness::new();
    let caller = Caller::invite("e4", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&invite, 603, None));
    settle(&mut h);

    let mut h = Harness::new();
    let caller = Caller::invite("e5", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    settle(&mut h);

    let mut h = Harness::new();
    establish(&mut h, "e6");
    let session = h.media().allocated[0].0;
    h.media_timeout(session);
    settle(&mut h);

    // No ACK for the 2xx.
    let mut h = Harness::new();
    let caller = Caller::invite("e7", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&invite, 200, Some(&callee_sdp())));
    settle(&mut h);

    // A callee that rings for ever: Timer C cancels it.
    let mut h = Harness::new();
    let caller = Caller::invite("e8", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&invite, 180, None));
    h.advance(Duration::from_secs(182));
    let cancel = h.request_to(CALLEE, "CANCEL");
    h.receive_message(callee(), &bob.respond(&cancel, 200, None));
    h.receive_message(callee(), &bob.respond(&invite, 487, None));
    h.advance(Duration::from_millis(1));
    let statuses: Vec<u16> = h
        .take(CALLER)
        .iter()
        .filter_map(|m| match m {
            Message::Response(r) => Some(r.status.as_u16()),
            Message::Request(_) => None,
        })
        .collect();
    assert!(statuses.contains(&408), "{statuses:?}");
    settle(&mut h);
}

/// One step of an arbitrary conversation.
#[derive(Clone, Debug)]
enum Step {
    /// The caller starts call `n`, with an offer or without.
    Invite {
        n: u8,
        offer: bool,
    },
    /// The callee answers the last request it got (reliably, for a provisional response
    /// with an RSeq).
    CalleeAnswers {
        status: u16,
        sdp: bool,
        rseq: Option<u8>,
    },
    /// The caller answers the last request it got.
    CallerAnswers {
        status: u16,
    },
    /// The caller ACKs the last 2xx it got, or CANCELs its last INVITE.
    CallerAcks,
    CallerCancels,
    /// An in-dialog request from either side.
    CallerSends {
        method: u8,
        sdp: bool,
    },
    CalleeSends {
        method: u8,
        sdp: bool,
    },
    /// The relay reports inactivity of session `n`.
    MediaTimeout {
        n: u8,
    },
    /// Time passes.
    Wait {
        ms: u32,
    },
    /// A recent message comes back damaged, from either side.
    Garbage {
        cut: usize,
        flip: usize,
        byte: u8,
        from_callee: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..4, any::<bool>()).prop_map(|(n, offer)| Step::Invite { n, offer }),
        (
            prop::sample::select(vec![
                100u16, 180, 183, 200, 200, 404, 486, 491, 500, 503, 481
            ]),
            any::<bool>(),
            prop::option::of(0u8..3)
        )
            .prop_map(|(status, sdp, rseq)| Step::CalleeAnswers { status, sdp, rseq }),
        prop::sample::select(vec![200u16, 481, 491, 408])
            .prop_map(|status| Step::CallerAnswers { status }),
        Just(Step::CallerAcks),
        Just(Step::CallerCancels),
        (0u8..5, any::<bool>()).prop_map(|(method, sdp)| Step::CallerSends { method, sdp }),
        (0u8..5, any::<bool>()).prop_map(|(method, sdp)| Step::CalleeSends { method, sdp }),
        (0u8..4).prop_map(|n| Step::MediaTimeout { n }),
        (0u32..40_000).prop_map(|ms| Step::Wait { ms }),
        (0usize..2000, 0usize..2000, any::<u8>(), any::<bool>()).prop_map(
            |(cut, flip, byte, from_callee)| Step::Garbage {
                cut,
                flip,
                byte,
                from_callee
            }
        ),
    ]
}

const METHODS: [&str; 5] = ["INVITE", "BYE", "INFO", "UPDATE", "OPTIONS"];

/// What the fake peers remember of the conversation.
#[derive(Default)]
struct Peers {
    caller: Option<Caller>,
    /// The last request the callee got, and its UA for that dialog.
    to_callee: Option<(Request, Ua)>,
    /// The last request the caller got.
    to_caller: Option<Request>,
    recent: Vec<Bytes>,
}

impl Peers {
    fn observe(&mut self, h: &mut Harness) {
        for sent in h.outbox.drain(..) {
            self.recent.push(sent.bytes.clone());
            if self.recent.len() > 8 {
                self.recent.remove(0);
            }
            match sent.message {
                Message::Request(request) if sent.to == addr(CALLEE) => {
                    let ua = match &self.to_callee {
                        Some((_, ua))
                            if ua.call_id.as_bytes() == &request.headers.call_id().unwrap()[..] =>
                        {
                            ua.clone()
                        }
                        _ => Ua::callee(&request, callee(), "fuzz-bob"),
                    };
                    if request.method != Method::Ack {
                        self.to_callee = Some((request, ua));
                    }
                }
                Message::Request(request) => {
                    if request.method != Method::Ack {
                        self.to_caller = Some(request);
                    }
                }
                Message::Response(response) if sent.to == addr(CALLER) => {
                    self.learn(&response);
                }
                Message::Response(_) => {}
            }
        }
    }

    fn learn(&mut self, response: &Response) {
        let Some(caller) = self.caller.as_mut() else {
            return;
        };
        let same_call = response.headers.call_id().ok() == caller.invite.headers.call_id().ok();
        let tagged = response.headers.to().is_ok_and(|to| to.tag().is_some());
        let invite = response
            .headers
            .cseq()
            .is_ok_and(|c| c.method == Method::Invite && c.seq == 1);
        let dialog_forming = (101..300).contains(&response.status.as_u16())
            && response
                .headers
                .contains(&sbc_core::sip::HeaderName::Contact);
        if same_call && tagged && invite && dialog_forming && caller.ua.is_none() {
            caller.answered(response);
        }
    }
}

fn play(steps: &[Step], max_queued_events: usize) {
    // Calls without media nor session timers end only by the call-duration limit.
    let mut options = Options {
        targets: vec![addr(CALLEE), addr(CALLEE)],
        ..Options::default()
    };
    options.endpoint.layer.max_queued_events = max_queued_events;
    options.config.max_call_duration = Some(Duration::from_secs(300));
    let mut h = Harness::with(options);
    let mut peers = Peers::default();
    for step in steps {
        match step.clone() {
            Step::Invite { n, offer } => {
                let sdp = caller_sdp();
                let caller = Caller::invite(&format!("fz{n}"), offer.then_some(sdp.as_str()));
                h.receive_message(self::caller(), &caller.message());
                peers.caller = Some(caller);
            }
            Step::CalleeAnswers { status, sdp, rseq } => {
                if let Some((request, ua)) = &peers.to_callee {
                    let body = callee_sdp();
                    let mut response = ua.respond(request, status, sdp.then_some(body.as_str()));
                    if let Some(rseq) = rseq {
                        let headers = response.headers_mut();
                        headers.push(sbc_core::sip::HeaderName::Require, "100rel");
                        headers.push(sbc_core::sip::HeaderName::RSeq, rseq.to_string());
                    }
                    h.receive_message(callee(), &response);
                }
            }
            Step::CallerAnswers { status } => {
                if let (Some(request), Some(caller)) = (&peers.to_caller, &peers.caller)
                    && let Some(ua) = &caller.ua
                {
                    let response = ua.respond(request, status, None);
                    h.receive_message(self::caller(), &response);
                }
            }
            Step::CallerAcks => {
                if let Some(caller) = peers.caller.as_mut()
                    && caller.ua.is_some()
                {
                    let ack = caller.ack(None);
                    h.receive_message(self::caller(), &ack);
                }
            }
            Step::CallerCancels => {
                if let Some(caller) = &peers.caller {
                    h.receive_message(self::caller(), &caller.cancel());
                }
            }
            Step::CallerSends { method, sdp } => {
                if let Some(caller) = peers.caller.as_mut()
                    && caller.ua.is_some()
                {
                    let body = caller_sdp();
                    let request =
                        caller.request(METHODS[usize::from(method)], sdp.then_some(body.as_str()));
                    h.receive_message(self::caller(), &request);
                }
            }
            Step::CalleeSends { method, sdp } => {
                if let Some((_, ua)) = peers.to_callee.as_mut() {
                    let body = callee_sdp();
                    let request =
                        ua.request(METHODS[usize::from(method)], sdp.then_some(body.as_str()));
                    h.receive_message(callee(), &request);
                }
            }
            Step::MediaTimeout { n } => {
                let session = h.media().allocated.get(usize::from(n)).map(|(s, _)| *s);
                if let Some(session) = session {
                    h.media_timeout(session);
                }
            }
            Step::Wait { ms } => h.advance(Duration::from_millis(u64::from(ms))),
            Step::Garbage {
                cut,
                flip,
                byte,
                from_callee,
            } => {
                if let Some(recent) = peers.recent.last() {
                    let mut bytes = recent.to_vec();
                    if !bytes.is_empty() {
                        let at = flip % bytes.len();
                        bytes[at] = byte;
                    }
                    bytes.truncate(cut.max(1).min(bytes.len()));
                    let from = if from_callee { callee() } else { caller() };
                    h.receive(from, bytes);
                }
            }
        }
        peers.observe(&mut h);
        assert!(h.calls() <= h.records());
    }
    // End everything: the relay reports every session inactive, then time runs out.
    let sessions: Vec<_> = h.media().live.iter().copied().collect();
    for session in sessions {
        h.media_timeout(session);
    }
    settle(&mut h);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_conversations_never_panic_nor_leak(steps in prop::collection::vec(step(), 1..40)) {
        play(&steps, 4096);
    }

    /// With an event queue so short that the layer drops events (a response, a timeout,
    /// the end of a transaction), nothing leaks either.
    #[test]
    fn lost_events_leak_nothing(steps in prop::collection::vec(step(), 1..40)) {
        play(&steps, 2);
    }
}
