//! Forwarding over loopback: RTP both ways byte-exact, RTCP on rtp+1, rtcp-mux (RFC 5761),
//! garbage, and sending to the SDP address before anything was received.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use media_relay::{Leg, RemoteMedia};

#[test]
fn rtp_is_forwarded_both_ways_byte_exact_from_the_relay_ports() {
    let relay = relay(21000, 4);
    let allocation = relay.allocate(1).unwrap();
    let stream = allocation.streams[0];
    let (caller, callee) = (peer(2), peer(3));
    relay
        .update(allocation.session, 0, Leg::A, sdp(&caller))
        .unwrap();
    relay
        .update(allocation.session, 0, Leg::B, sdp(&callee))
        .unwrap();

    // The callee speaks first: nothing was received from the caller, so its SDP address is used.
    for seq in 0..20u16 {
        let packet = rtp(8, 1000 + seq, 160 * u32::from(seq), 0xbbbb, 160);
        callee.send_to(&packet, stream.b.rtp).unwrap();
        let (got, from) = receive(&caller).expect("caller receives");
        assert_eq!(got, packet);
        assert_eq!(
            from, stream.a.rtp,
            "the caller sees only the relay's A-leg address"
        );
    }
    for seq in 0..20u16 {
        let packet = rtp(0, seq, 160 * u32::from(seq), 0xaaaa, 160);
        caller.send_to(&packet, stream.a.rtp).unwrap();
        let (got, from) = receive(&callee).expect("callee receives");
        assert_eq!(got, packet);
        assert_eq!(from, stream.b.rtp);
    }

    let stats = relay.session_stats(allocation.session).unwrap();
    let (a, b) = (stats.streams[0].a, stats.streams[0].b);
    assert_eq!((a.packets_received, a.packets_sent), (20, 20));
    assert_eq!((b.packets_received, b.packets_sent), (20, 20));
    assert_eq!(a.bytes_received, 20 * 172);
    assert_eq!(a.drops.total() + b.drops.total(), 0);
    assert_eq!(a.latched_rtp, Some(caller.local_addr().unwrap()));
    assert_eq!(
        (a.rtp.received, a.rtp.lost, a.rtp.ssrc),
        (20, 0, Some(0xaaaa))
    );
}

#[test]
fn rtcp_uses_the_odd_ports_and_rtp_plus_one_by_default() {
    let relay = relay(21020, 4);
    let allocation = relay.allocate(1).unwrap();
    let stream = allocation.streams[0];
    let (caller_rtp, caller_rtcp) = peer_pair(2, 31000);
    let (callee_rtp, callee_rtcp) = peer_pair(3, 31100);
    relay
        .update(allocation.session, 0, Leg::A, sdp(&caller_rtp))
        .unwrap();
    // The callee announces its RTCP address explicitly (RFC 3605 a=rtcp).
    let callee = RemoteMedia {
        rtcp: Some(callee_rtcp.local_addr().unwrap()),
        ..sdp(&callee_rtp)
    };
    relay.update(allocation.session, 0, Leg::B, callee).unwrap();

    let report = rtcp_rr(0xaaaa);
    caller_rtcp.send_to(&report, stream.a.rtcp).unwrap();
    assert_eq!(receive(&callee_rtcp), Some((report, stream.b.rtcp)));

    let report = rtcp_rr(0xbbbb);
    callee_rtcp.send_to(&report, stream.b.rtcp).unwrap();
    assert_eq!(receive(&caller_rtcp), Some((report, stream.a.rtcp)));
    assert_silent(&caller_rtp, Duration::from_millis(50));
    assert_eq!(
        relay.session_stats(allocation.session).unwrap().streams[0]
            .a
            .rtcp_received,
        1
    );
}

#[test]
fn multiplexed_rtcp_reaches_a_non_multiplexed_leg_on_its_rtcp_port_and_back() {
    let relay = relay(21040, 4);
    let allocation = relay.allocate(1).unwrap();
    let stream = allocation.streams[0];
    let caller = peer(2); // rtcp-mux: one socket for everything
    let (callee_rtp, callee_rtcp) = peer_pair(3, 31200);
    relay
        .update(
            allocation.session,
            0,
            Leg::A,
            RemoteMedia {
                rtcp_mux: true,
                ..sdp(&caller)
            },
        )
        .unwrap();
    relay
        .update(allocation.session, 0, Leg::B, sdp(&callee_rtp))
        .unwrap();

    // RTP and RTCP from the muxed caller, both on its RTP port.
    let media = rtp(0, 1, 160, 0xaaaa, 160);
    let report = rtcp_rr(0xaaaa);
    caller.send_to(&media, stream.a.rtp).unwrap();
    caller.send_to(&report, stream.a.rtp).unwrap();
    assert_eq!(receive(&callee_rtp), Some((media, stream.b.rtp)));
    assert_eq!(receive(&callee_rtcp), Some((report, stream.b.rtcp)));

    // RTCP from the callee's RTCP port goes to the caller's one port, from the relay's RTP port.
    let report = rtcp_rr(0xbbbb);
    callee_rtcp.send_to(&report, stream.b.rtcp).unwrap();
    assert_eq!(receive(&caller), Some((report, stream.a.rtp)));
    let stats = relay.session_stats(allocation.session).unwrap().streams[0];
    assert_eq!((stats.a.rtcp_received, stats.a.rtp.received), (1, 1));
}

#[test]
fn garbage_and_short_packets_are_dropped_and_counted_without_harm() {
    let relay = relay(21060, 4);
    let allocation = relay.allocate(1).unwrap();
    let stream = allocation.streams[0];
    let (caller, callee) = (peer(2), peer(3));
    relay
        .update(allocation.session, 0, Leg::A, sdp(&caller))
        .unwrap();
    relay
        .update(allocation.session, 0, Leg::B, sdp(&callee))
        .unwrap();

    let garbage: [&[u8]; 6] = [
        &[],
        &[0x80],
        &[0x80, 0, 0, 1],
        &[0u8; 12],
        &[0xff; 1400],
        b"INVITE sip:x SIP/2.0\r\n",
    ];
    for datagram in garbage {
        caller.send_to(datagram, stream.a.rtp).unwrap();
        caller.send_to(datagram, stream.a.rtcp).unwrap();
    }
    let packet = rtp(0, 7, 0, 1, 20);
    caller.send_to(&packet, stream.a.rtp).unwrap();
    assert_eq!(
        receive(&callee).map(|(p, _)| p),
        Some(packet),
        "the relay still forwards"
    );
    assert_silent(&callee, Duration::from_millis(50));
    let a = relay.session_stats(allocation.session).unwrap().streams[0].a;
    assert_eq!(a.drops.malformed, 12);
    assert_eq!(a.packets_received, 13);
    assert_eq!(
        a.latched_rtp,
        Some(caller.local_addr().unwrap()),
        "garbage did not latch first"
    );
}

#[test]
fn packets_for_a_leg_without_address_are_dropped_as_no_destination() {
    let relay = relay(21080, 4);
    let allocation = relay.allocate(2).unwrap();
    let caller = peer(2);
    relay
        .update(allocation.session, 1, Leg::A, sdp(&caller))
        .unwrap();
    caller
        .send_to(&rtp(0, 1, 0, 1, 20), allocation.streams[1].a.rtp)
        .unwrap();
    assert!(eventually(Duration::from_secs(2), || {
        relay.session_stats(allocation.session).unwrap().streams[1]
            .a
            .drops
            .no_destination
            == 1
    }));
    let totals = media_relay::WorkerStats::sum(&relay.worker_stats().unwrap());
    assert_eq!(
        (totals.sessions, totals.sockets, totals.packets_forwarded),
        (1, 8, 0)
    );
}

#[test]
fn added_streams_forward_like_the_first_ones() {
    let relay = relay(21100, 8);
    let allocation = relay.allocate(1).unwrap();
    let added = relay.add_streams(allocation.session, 1).unwrap();
    assert_eq!(added.len(), 1);
    let (caller, callee) = (peer(2), peer(3));
    relay
        .update(allocation.session, 1, Leg::A, sdp(&caller))
        .unwrap();
    relay
        .update(allocation.session, 1, Leg::B, sdp(&callee))
        .unwrap();
    let packet = rtp(96, 1, 0, 5, 100);
    caller.send_to(&packet, added[0].a.rtp).unwrap();
    assert_eq!(receive(&callee), Some((packet, added[0].b.rtp)));
    assert_eq!(
        relay.update(allocation.session, 2, Leg::A, sdp(&caller)),
        Err(media_relay::RelayError::UnknownStream {
            session: allocation.session.0,
            stream: 2
        })
    );
}

#[test]
fn bursts_of_mixed_sizes_arrive_whole_and_in_order_with_gso_and_with_sendmmsg() {
    for (port_min, gso) in [(21120, true), (21140, false)] {
        let relay = relay_with(media_relay::RelayConfig {
            port_min,
            port_max: port_min + 7,
            workers: 1,
            gso,
            ..media_relay::RelayConfig::default()
        });
        let allocation = relay.allocate(1).unwrap();
        let stream = allocation.streams[0];
        let (caller, callee) = (peer(2), peer(3));
        relay
            .update(allocation.session, 0, Leg::A, sdp(&caller))
            .unwrap();
        relay
            .update(allocation.session, 0, Leg::B, sdp(&callee))
            .unwrap();
        // Equal sizes (one GSO train) with shorter and longer ones in between.
        let sizes = [
            160, 160, 160, 160, 80, 160, 160, 320, 320, 20, 160, 160, 160,
        ];
        let packets: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| rtp(0, i as u16, 0, 1, n))
            .collect();
        for packet in &packets {
            caller.send_to(packet, stream.a.rtp).unwrap();
        }
        for (i, packet) in packets.iter().enumerate() {
            assert_eq!(
                receive(&callee).map(|(p, _)| p).as_ref(),
                Some(packet),
                "gso {gso}, packet {i}"
            );
        }
        let b = relay.session_stats(allocation.session).unwrap().streams[0].b;
        assert_eq!(b.packets_sent, sizes.len() as u64);
    }
}

#[test]
fn rtcp_sdes_reaches_the_other_side_with_only_an_opaque_cname() {
    let relay = relay(21300, 4);
    let allocation = relay.allocate(1).unwrap();
    let stream = allocation.streams[0];
    let (caller_rtp, caller_rtcp) = peer_pair(2, 31400);
    let (callee_rtp, callee_rtcp) = peer_pair(3, 31500);
    relay
        .update(allocation.session, 0, Leg::A, sdp(&caller_rtp))
        .unwrap();
    relay
        .update(allocation.session, 0, Leg::B, sdp(&callee_rtp))
        .unwrap();

    // RR + SDES { CNAME "alice@127.0.0.2", TOOL "softphone 1.0" } from the caller.
    let mut compound = rtcp_rr(0xaaaa);
    let mut sdes = vec![0x81, 202, 0, 0, 0, 0, 0xaa, 0xaa];
    for (kind, value) in [(1u8, &b"alice@127.0.0.2"[..]), (6, b"softphone 1.0")] {
        sdes.push(kind);
        sdes.push(value.len() as u8);
        sdes.extend_from_slice(value);
    }
    sdes.push(0);
    while sdes.len() % 4 != 0 {
        sdes.push(0);
    }
    let words = (sdes.len() / 4 - 1) as u16;
    sdes[2..4].copy_from_slice(&words.to_be_bytes());
    compound.extend_from_slice(&sdes);
    caller_rtcp.send_to(&compound, stream.a.rtcp).unwrap();

    let (got, from) = receive(&callee_rtcp).expect("callee receives the RTCP");
    assert_eq!(from, stream.b.rtcp);
    let report = rtcp_rr(0xaaaa);
    assert_eq!(
        &got[..report.len()],
        &report[..],
        "the report passes unchanged"
    );
    let mut expected_sdes = vec![0x81, 202, 0, 4, 0, 0, 0xaa, 0xaa, 1, 8];
    expected_sdes.extend_from_slice(&media_relay::rtcp::opaque_cname(0xaaaa));
    expected_sdes.extend_from_slice(&[0, 0]);
    assert_eq!(&got[report.len()..], &expected_sdes[..]);
}
