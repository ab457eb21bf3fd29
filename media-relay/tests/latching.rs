//! Symmetric latching with hijack protection (see `media_relay::latch` for the rule).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use media_relay::{Leg, RemoteMedia};

#[test]
fn latches_to_the_first_plausible_source_and_drops_everyone_else() {
    let relay = relay(21200, 4);
    let allocation = relay.allocate(1).unwrap();
    let stream = allocation.streams[0];
    let announced = peer(2); // the address in the caller's SDP
    let natted = peer(2); // same host, another port: what a NAT makes of it
    let attacker = peer(9);
    let callee = peer(3);
    relay
        .update(allocation.session, 0, Leg::A, sdp(&announced))
        .unwrap();
    relay
        .update(allocation.session, 0, Leg::B, sdp(&callee))
        .unwrap();

    // Before latching: the attacker (another IP) is dropped and does not latch.
    for seq in 0..5u16 {
        attacker
            .send_to(&rtp(0, seq, 0, 666, 160), stream.a.rtp)
            .unwrap();
    }
    // The real caller's packets come from another port of the SDP IP: they latch.
    let packet = rtp(0, 100, 0, 1, 160);
    natted.send_to(&packet, stream.a.rtp).unwrap();
    assert_eq!(receive(&callee).map(|(p, _)| p), Some(packet));

    // After latching: the attacker, and even the SDP port, are dropped.
    attacker
        .send_to(&rtp(0, 5, 0, 666, 160), stream.a.rtp)
        .unwrap();
    announced
        .send_to(&rtp(0, 101, 0, 1, 160), stream.a.rtp)
        .unwrap();
    assert_silent(&callee, Duration::from_millis(50));

    // The callee's media now goes to where the caller really is, not to its SDP address.
    let back = rtp(0, 1, 0, 2, 160);
    callee.send_to(&back, stream.b.rtp).unwrap();
    assert_eq!(receive(&natted), Some((back, stream.a.rtp)));
    assert_silent(&announced, Duration::from_millis(50));

    let a = relay.session_stats(allocation.session).unwrap().streams[0].a;
    assert_eq!(a.drops.unexpected_source, 7);
    assert_eq!(a.latched_rtp, Some(natted.local_addr().unwrap()));
    assert_eq!(a.packets_sent, 1);
}

#[test]
fn a_nated_peer_latches_through_its_signalling_ip() {
    let relay = relay(21220, 4);
    let allocation = relay.allocate(1).unwrap();
    let stream = allocation.streams[0];
    let phone = peer(4);
    let callee = peer(3);
    let private: SocketAddr = "192.168.1.20:4000".parse().unwrap();
    let caller = RemoteMedia {
        rtp: Some(private),
        signalling_ip: Some(host(4)),
        ..RemoteMedia::default()
    };
    relay.update(allocation.session, 0, Leg::A, caller).unwrap();
    relay
        .update(allocation.session, 0, Leg::B, sdp(&callee))
        .unwrap();

    let packet = rtp(8, 1, 0, 1, 160);
    phone.send_to(&packet, stream.a.rtp).unwrap();
    assert_eq!(receive(&callee).map(|(p, _)| p), Some(packet));
    let back = rtp(8, 1, 0, 2, 160);
    callee.send_to(&back, stream.b.rtp).unwrap();
    assert_eq!(
        receive(&phone).map(|(p, _)| p),
        Some(back),
        "sent to the latched public address"
    );
}

#[test]
fn nothing_is_accepted_from_a_leg_before_its_address_is_known() {
    let relay = relay(21240, 4);
    let allocation = relay.allocate(1).unwrap();
    let stranger = peer(5);
    stranger
        .send_to(&rtp(0, 1, 0, 1, 160), allocation.streams[0].b.rtp)
        .unwrap();
    stranger
        .send_to(&rtcp_rr(1), allocation.streams[0].b.rtcp)
        .unwrap();
    assert!(eventually(Duration::from_secs(2), || {
        relay.session_stats(allocation.session).unwrap().streams[0]
            .b
            .drops
            .unexpected_source
            == 2
    }));
}

#[test]
fn rtcp_latches_separately_and_accepts_the_latched_rtp_host() {
    let relay = relay(21260, 4);
    let allocation = relay.allocate(1).unwrap();
    let stream = allocation.streams[0];
    let (caller_rtp, caller_rtcp) = peer_pair(2, 31300);
    let (callee_rtp, callee_rtcp) = peer_pair(3, 31400);
    let attacker = peer(9);
    relay
        .update(allocation.session, 0, Leg::A, sdp(&caller_rtp))
        .unwrap();
    relay
        .update(allocation.session, 0, Leg::B, sdp(&callee_rtp))
        .unwrap();

    attacker.send_to(&rtcp_rr(9), stream.a.rtcp).unwrap();
    let report = rtcp_rr(1);
    caller_rtcp.send_to(&report, stream.a.rtcp).unwrap();
    assert_eq!(receive(&callee_rtcp).map(|(p, _)| p), Some(report));
    attacker.send_to(&rtcp_rr(9), stream.a.rtcp).unwrap();
    assert_silent(&callee_rtcp, Duration::from_millis(50));
    let a = relay.session_stats(allocation.session).unwrap().streams[0].a;
    assert_eq!(a.drops.unexpected_source, 2);
    assert_eq!(a.latched_rtcp, Some(caller_rtcp.local_addr().unwrap()));
    assert_eq!(a.latched_rtp, None);
}

#[test]
fn a_new_sdp_address_reopens_the_latch() {
    let relay = relay(21280, 4);
    let allocation = relay.allocate(1).unwrap();
    let stream = allocation.streams[0];
    let (first, moved, callee) = (peer(2), peer(6), peer(3));
    relay
        .update(allocation.session, 0, Leg::A, sdp(&first))
        .unwrap();
    relay
        .update(allocation.session, 0, Leg::B, sdp(&callee))
        .unwrap();
    first.send_to(&rtp(0, 1, 0, 1, 10), stream.a.rtp).unwrap();
    assert!(receive(&callee).is_some());

    // Same address again (e.g. a re-INVITE for hold): the latch stays.
    relay
        .update(allocation.session, 0, Leg::A, sdp(&first))
        .unwrap();
    moved.send_to(&rtp(0, 2, 0, 1, 10), stream.a.rtp).unwrap();
    assert_silent(&callee, Duration::from_millis(50));

    // The caller moved to another host: the latch reopens for the new address only.
    relay
        .update(allocation.session, 0, Leg::A, sdp(&moved))
        .unwrap();
    first.send_to(&rtp(0, 3, 0, 1, 10), stream.a.rtp).unwrap();
    assert_silent(&callee, Duration::from_millis(50));
    let packet = rtp(0, 4, 0, 1, 10);
    moved.send_to(&packet, stream.a.rtp).unwrap();
    assert_eq!(receive(&callee).map(|(p, _)| p), Some(packet));
    let a = relay.session_stats(allocation.session).unwrap().streams[0].a;
    assert_eq!(
        (a.drops.unexpected_source, a.latched_rtp),
        (2, Some(moved.local_addr().unwrap()))
    );
}
