//! The relay converting media protection over loopback: SDES-SRTP on one leg and plain RTP
//! on the other (both ways, RTCP too), SRTP on both legs with different keys, forged,
//! replayed, truncated and wrong-key packets dropped and counted, DTLS-SRTP handshakes on
//! the media port, and ICE-lite connectivity checks that move the latch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;
use media_relay::dtls::{
    DtlsContext, DtlsEndpoint, DtlsEvent, DtlsIdentity, DtlsRole, DtlsSrtpKeys,
};
use media_relay::srtp::{MasterKey, SrtpPolicy, SrtpReceiver, SrtpSender, Suite};
use media_relay::{
    DtlsSetup, IceCredentials, Leg, LegSecurity, Protection, ProtectionKind, Relay, SdesKeys,
    SessionId,
};

fn key(relay: &Relay, suite: Suite) -> MasterKey {
    relay.new_sdes_key(suite).unwrap()
}

fn sdes(suite: Suite, send: MasterKey, receive: Option<MasterKey>) -> LegSecurity {
    LegSecurity {
        protection: Protection::Sdes(SdesKeys {
            suite,
            send: vec![send],
            receive: receive.into_iter().collect(),
            unencrypted_srtcp: false,
        }),
        ice: None,
    }
}

/// Protects `packet` for the relay as the peer would.
fn seal(sender: &mut SrtpSender, packet: &[u8], rtcp: bool) -> Vec<u8> {
    let mut buf = packet.to_vec();
    buf.resize(packet.len() + 64, 0);
    let len = if rtcp {
        sender.protect_rtcp(&mut buf, packet.len()).unwrap()
    } else {
        sender.protect_rtp(&mut buf, packet.len()).unwrap()
    };
    buf.truncate(len);
    buf
}

fn open(receiver: &mut SrtpReceiver, packet: &[u8], rtcp: bool) -> Vec<u8> {
    let mut buf = packet.to_vec();
    let len = if rtcp {
        receiver.unprotect_rtcp(&mut buf, packet.len())
    } else {
        receiver.unprotect_rtp(&mut buf, packet.len())
    }
    .expect("the peer decrypts what the relay sent");
    buf.truncate(len);
    buf
}

/// A session of one stream with the caller (A) and callee (B) at their SDP addresses.
fn call(
    relay: &Relay,
    caller: &UdpSocket,
    callee: &UdpSocket,
) -> (SessionId, media_relay::StreamAddrs) {
    let allocation = relay.allocate(1).unwrap();
    relay
        .update(allocation.session, 0, Leg::A, sdp(caller))
        .unwrap();
    relay
        .update(allocation.session, 0, Leg::B, sdp(callee))
        .unwrap();
    (allocation.session, allocation.streams[0])
}

#[test]
fn sdes_srtp_on_one_leg_and_plain_rtp_on_the_other_convert_both_ways() {
    for (n, suite) in Suite::ALL.into_iter().enumerate() {
        let relay = relay(23000 + 20 * n as u16, 4);
        let (caller_rtp, caller_rtcp) = peer_pair(2, 33000 + 100 * n as u16);
        let callee = peer(3);
        let (session, stream) = call(&relay, &caller_rtp, &callee);
        // The callee multiplexes RTCP on its RTP port.
        relay
            .update(
                session,
                0,
                Leg::B,
                media_relay::RemoteMedia {
                    rtcp_mux: true,
                    ..sdp(&callee)
                },
            )
            .unwrap();
        // The caller's key (from its a=crypto) and the relay's key toward it.
        let (caller_key, relay_key) = (key(&relay, suite), key(&relay, suite));
        relay
            .protect(
                session,
                0,
                Leg::A,
                sdes(suite, relay_key.clone(), Some(caller_key.clone())),
            )
            .unwrap();
        let mut caller_tx = SrtpSender::new(&SrtpPolicy::new(suite, caller_key)).unwrap();
        let mut caller_rx = SrtpReceiver::new(&SrtpPolicy::new(suite, relay_key)).unwrap();

        for seq in 0..10u16 {
            let packet = rtp(0, 100 + seq, 160 * u32::from(seq), 0xca11e4, 160);
            caller_rtp
                .send_to(&seal(&mut caller_tx, &packet, false), stream.a.rtp)
                .unwrap();
            assert_eq!(receive(&callee).map(|(p, _)| p), Some(packet), "{suite}");

            let answer = rtp(8, 500 + seq, 160 * u32::from(seq), 0xca11ee, 160);
            callee.send_to(&answer, stream.b.rtp).unwrap();
            let (srtp, from) = receive(&caller_rtp).expect("caller receives SRTP");
            assert_eq!(from, stream.a.rtp);
            assert_ne!(srtp[12..172], answer[12..172], "{suite}: encrypted");
            assert_eq!(open(&mut caller_rx, &srtp, false), answer, "{suite}");
        }
        // SRTCP from the caller's RTCP port arrives as RTCP; RTCP the other way as SRTCP.
        let report = rtcp_rr(0xca11e4);
        caller_rtcp
            .send_to(&seal(&mut caller_tx, &report, true), stream.a.rtcp)
            .unwrap();
        assert_eq!(receive(&callee).map(|(p, _)| p), Some(report));
        let report = rtcp_rr(0xca11ee);
        callee.send_to(&report, stream.b.rtp).unwrap();
        let (srtcp, _) = receive(&caller_rtcp).expect("caller receives SRTCP");
        assert_eq!(open(&mut caller_rx, &srtcp, true), report, "{suite}");

        let stats = relay.session_stats(session).unwrap().streams[0];
        let security = stats.a.security;
        assert_eq!(security.protection, ProtectionKind::Sdes);
        assert_eq!(security.suite, Some(suite));
        assert!(security.established);
        assert_eq!((security.srtp_received, security.srtp_sent), (11, 11));
        assert_eq!(stats.b.security.protection, ProtectionKind::Plain);
        assert_eq!(stats.a.drops.total() + stats.b.drops.total(), 0);
    }
}

#[test]
fn srtp_on_both_legs_with_different_keys() {
    let relay = relay(23200, 4);
    let (caller, callee) = (peer(2), peer(3));
    let (session, stream) = call(&relay, &caller, &callee);
    let (a_suite, b_suite) = (Suite::AesCm128HmacSha1_80, Suite::AeadAes256Gcm);
    let (a_peer, a_relay) = (key(&relay, a_suite), key(&relay, a_suite));
    let (b_peer, b_relay) = (key(&relay, b_suite), key(&relay, b_suite));
    relay
        .protect(
            session,
            0,
            Leg::A,
            sdes(a_suite, a_relay, Some(a_peer.clone())),
        )
        .unwrap();
    relay
        .protect(
            session,
            0,
            Leg::B,
            sdes(b_suite, b_relay.clone(), Some(b_peer)),
        )
        .unwrap();
    let mut caller_tx = SrtpSender::new(&SrtpPolicy::new(a_suite, a_peer)).unwrap();
    let mut callee_rx = SrtpReceiver::new(&SrtpPolicy::new(b_suite, b_relay)).unwrap();
    for seq in 0..5u16 {
        let packet = rtp(0, seq, 0, 7, 160);
        caller
            .send_to(&seal(&mut caller_tx, &packet, false), stream.a.rtp)
            .unwrap();
        let (srtp, _) = receive(&callee).unwrap();
        assert_eq!(srtp.len(), packet.len() + 16, "re-encrypted with GCM");
        assert_eq!(open(&mut callee_rx, &srtp, false), packet);
    }
}

#[test]
fn forged_replayed_truncated_and_wrong_key_packets_are_dropped_and_counted() {
    let relay = relay(23220, 4);
    let (caller, callee) = (peer(2), peer(3));
    let (session, stream) = call(&relay, &caller, &callee);
    let suite = Suite::AesCm128HmacSha1_80;
    let (caller_key, relay_key) = (key(&relay, suite), key(&relay, suite));
    relay
        .protect(
            session,
            0,
            Leg::A,
            sdes(suite, relay_key, Some(caller_key.clone())),
        )
        .unwrap();
    let mut caller_tx = SrtpSender::new(&SrtpPolicy::new(suite, caller_key)).unwrap();
    let mut stranger_tx = SrtpSender::new(&SrtpPolicy::new(suite, key(&relay, suite))).unwrap();

    // Before the first good packet: forgeries neither pass nor latch.
    let first = seal(&mut caller_tx, &rtp(0, 1, 0, 9, 160), false);
    let mut forged = first.clone();
    forged[40] ^= 1;
    caller.send_to(&forged, stream.a.rtp).unwrap();
    let wrong_key = seal(&mut stranger_tx, &rtp(0, 1, 0, 9, 160), false);
    caller.send_to(&wrong_key, stream.a.rtp).unwrap();
    assert_silent(&callee, Duration::from_millis(100));
    assert_eq!(
        relay.session_stats(session).unwrap().streams[0]
            .a
            .latched_rtp,
        None
    );

    caller.send_to(&first, stream.a.rtp).unwrap();
    assert!(receive(&callee).is_some(), "the genuine packet passes");
    caller.send_to(&first, stream.a.rtp).unwrap(); // a replay
    let fresh = seal(&mut caller_tx, &rtp(0, 5, 0, 9, 160), false);
    caller.send_to(&fresh[..20], stream.a.rtp).unwrap(); // truncated
    let mut flipped_tag = seal(&mut caller_tx, &rtp(0, 2, 0, 9, 160), false);
    let last = flipped_tag.len() - 1;
    flipped_tag[last] ^= 0x80;
    caller.send_to(&flipped_tag, stream.a.rtp).unwrap();
    // A genuine packet from another host than the latched one.
    let intruder = peer(9);
    let third = seal(&mut caller_tx, &rtp(0, 3, 0, 9, 160), false);
    intruder.send_to(&third, stream.a.rtp).unwrap();
    assert_silent(&callee, Duration::from_millis(100));

    let stats = relay.session_stats(session).unwrap().streams[0];
    let a = stats.a;
    assert_eq!(
        a.srtp_drops.auth_failed, 3,
        "forged, wrong key, flipped tag"
    );
    assert_eq!(a.srtp_drops.replayed, 1);
    assert_eq!(a.srtp_drops.too_short, 1);
    assert_eq!(a.drops.srtp, 5);
    assert_eq!(a.drops.unexpected_source, 1);
    assert_eq!(a.security.srtp_received, 1);
    assert_eq!(
        stats.b.packets_sent, 1,
        "exactly one packet reached the other leg"
    );
    assert_eq!(a.latched_rtp, Some(caller.local_addr().unwrap()));
}

#[test]
fn an_authenticated_packet_latches_an_srtp_leg_from_an_address_its_sdp_did_not_show() {
    let relay = relay(23340, 4);
    let (caller, callee) = (peer(2), peer(3));
    let (session, stream) = call(&relay, &caller, &callee);
    let suite = Suite::AesCm128HmacSha1_32;
    let (caller_key, relay_key) = (key(&relay, suite), key(&relay, suite));
    relay
        .protect(
            session,
            0,
            Leg::A,
            sdes(suite, relay_key, Some(caller_key.clone())),
        )
        .unwrap();
    let mut caller_tx = SrtpSender::new(&SrtpPolicy::new(suite, caller_key)).unwrap();
    // Behind a NAT: the SDP shows 127.0.0.2, the packets come from 127.0.0.8.
    let natted = peer(8);
    let packet = seal(&mut caller_tx, &rtp(0, 1, 0, 9, 160), false);
    let mut forged = packet.clone();
    forged[20] ^= 4;
    natted.send_to(&forged, stream.a.rtp).unwrap();
    assert_silent(&callee, Duration::from_millis(100));
    assert_eq!(
        relay.session_stats(session).unwrap().streams[0]
            .a
            .latched_rtp,
        None
    );
    natted.send_to(&packet, stream.a.rtp).unwrap();
    assert!(receive(&callee).is_some());
    callee.send_to(&rtp(0, 1, 0, 4, 160), stream.b.rtp).unwrap();
    assert!(
        receive(&natted).is_some(),
        "answers go to where the genuine packet came from"
    );
}

#[test]
fn a_leg_whose_peer_key_is_not_known_yet_drops_as_keys_pending() {
    let relay = relay(23240, 4);
    let (caller, callee) = (peer(2), peer(3));
    let (session, stream) = call(&relay, &caller, &callee);
    let suite = Suite::AeadAes128Gcm;
    relay
        .protect(session, 0, Leg::B, sdes(suite, key(&relay, suite), None))
        .unwrap();
    callee.send_to(&rtp(0, 1, 0, 5, 160), stream.b.rtp).unwrap();
    // Toward B the relay already encrypts with its own key.
    caller.send_to(&rtp(0, 1, 0, 6, 160), stream.a.rtp).unwrap();
    let (srtp, _) = receive(&callee).unwrap();
    assert_eq!(srtp.len(), 172 + 16);
    assert_silent(&caller, Duration::from_millis(100));
    let b = relay.session_stats(session).unwrap().streams[0].b;
    assert_eq!(b.drops.keys_pending, 1);
    assert!(!b.security.established);
    // Keys that do not fit the suite are refused at once.
    let short = MasterKey::new(&[1; 16], &[2; 14]).unwrap();
    assert!(
        relay
            .protect(session, 0, Leg::A, sdes(Suite::AeadAes256Gcm, short, None))
            .is_err()
    );
}

/// Drives a peer's DTLS endpoint over its socket until it reports an outcome.
fn handshake(
    endpoint: &mut DtlsEndpoint,
    socket: &UdpSocket,
    relay_port: SocketAddr,
) -> DtlsSrtpKeys {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..200 {
        while let Some(record) = endpoint.poll_transmit() {
            socket.send_to(&record, relay_port).unwrap();
        }
        if let Some(event) = endpoint.poll_event() {
            match event {
                DtlsEvent::Connected(keys) => {
                    socket
                        .set_read_timeout(Some(Duration::from_millis(500)))
                        .unwrap();
                    return keys;
                }
                DtlsEvent::Failed(error) => panic!("handshake failed: {error}"),
            }
        }
        match socket.recv_from(&mut buf) {
            Ok((len, _)) => endpoint.handle_datagram(&buf[..len]),
            Err(_) => endpoint.handle_timeout(),
        }
    }
    panic!("no DTLS outcome");
}

#[test]
fn dtls_srtp_in_both_roles_then_media_converts_to_plain() {
    for (n, relay_role) in [DtlsRole::Server, DtlsRole::Client].into_iter().enumerate() {
        let relay = relay(23260 + 20 * n as u16, 4);
        let (caller, callee) = (peer(2), peer(3));
        let (session, stream) = call(&relay, &caller, &callee);
        let context = DtlsContext::new(DtlsIdentity::generate().unwrap()).unwrap();
        let peer_role = match relay_role {
            DtlsRole::Server => DtlsRole::Client,
            DtlsRole::Client => DtlsRole::Server,
        };
        let mut endpoint =
            DtlsEndpoint::new(&context, peer_role, relay.dtls_fingerprint().clone()).unwrap();
        // rtcp-mux: one handshake on the RTP port.
        relay
            .update(
                session,
                0,
                Leg::A,
                media_relay::RemoteMedia {
                    rtcp_mux: true,
                    ..sdp(&caller)
                },
            )
            .unwrap();
        relay
            .protect(
                session,
                0,
                Leg::A,
                LegSecurity {
                    protection: Protection::Dtls(DtlsSetup {
                        role: relay_role,
                        fingerprint: Some(context.identity().fingerprint().clone()),
                    }),
                    ice: None,
                },
            )
            .unwrap();
        let keys = handshake(&mut endpoint, &caller, stream.a.rtp);
        let mut caller_tx = SrtpSender::new(&SrtpPolicy::new(keys.suite, keys.send)).unwrap();
        let mut caller_rx = SrtpReceiver::new(&SrtpPolicy::new(keys.suite, keys.receive)).unwrap();
        assert!(eventually(Duration::from_secs(2), || {
            relay.session_stats(session).unwrap().streams[0]
                .a
                .security
                .established
        }));
        for seq in 0..5u16 {
            let packet = rtp(0, seq, 0, 3, 160);
            caller
                .send_to(&seal(&mut caller_tx, &packet, false), stream.a.rtp)
                .unwrap();
            assert_eq!(receive(&callee).map(|(p, _)| p), Some(packet));
            let back = rtp(0, seq, 0, 4, 160);
            callee.send_to(&back, stream.b.rtp).unwrap();
            let (srtp, _) = receive(&caller).unwrap();
            assert_eq!(open(&mut caller_rx, &srtp, false), back);
        }
        let report = relay.session_stats(session).unwrap().streams[0].a.security;
        assert_eq!(report.protection, ProtectionKind::Dtls);
        assert_eq!(report.suite, Some(keys.suite));
        assert_eq!(report.dtls_failure, None);
    }
}

#[test]
fn dtls_with_a_certificate_other_than_the_sdp_fingerprint_gives_no_keys() {
    let relay = relay(23300, 4);
    let (caller, callee) = (peer(2), peer(3));
    let (session, stream) = call(&relay, &caller, &callee);
    let context = DtlsContext::new(DtlsIdentity::generate().unwrap()).unwrap();
    let other = DtlsIdentity::generate().unwrap();
    relay
        .protect(
            session,
            0,
            Leg::A,
            LegSecurity {
                protection: Protection::Dtls(DtlsSetup {
                    role: DtlsRole::Server,
                    fingerprint: Some(other.fingerprint().clone()),
                }),
                ice: None,
            },
        )
        .unwrap();
    let mut endpoint =
        DtlsEndpoint::new(&context, DtlsRole::Client, relay.dtls_fingerprint().clone()).unwrap();
    caller
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..40 {
        while let Some(record) = endpoint.poll_transmit() {
            caller.send_to(&record, stream.a.rtp).unwrap();
        }
        if let Ok((len, _)) = caller.recv_from(&mut buf) {
            endpoint.handle_datagram(&buf[..len]);
        }
        if endpoint.poll_event().is_some() {
            break;
        }
    }
    assert!(eventually(Duration::from_secs(2), || {
        relay.session_stats(session).unwrap().streams[0]
            .a
            .security
            .dtls_failure
            == Some(media_relay::dtls::DtlsError::FingerprintMismatch)
    }));
    let a = relay.session_stats(session).unwrap().streams[0].a;
    assert!(!a.security.established);
    // Media keeps being refused.
    let mut fake = SrtpSender::new(&SrtpPolicy::new(
        Suite::AesCm128HmacSha1_80,
        MasterKey::new(&[1; 16], &[1; 14]).unwrap(),
    ))
    .unwrap();
    caller
        .send_to(&seal(&mut fake, &rtp(0, 1, 0, 1, 160), false), stream.a.rtp)
        .unwrap();
    assert_silent(&callee, Duration::from_millis(100));
}

/// A STUN binding request as a controlling ICE agent sends it.
fn binding_request(username: &str, password: &str) -> Vec<u8> {
    use hmac::Mac;
    let mut m = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42];
    m.extend_from_slice(b"abcdefghijkl");
    let attribute = |m: &mut Vec<u8>, kind: u16, value: &[u8]| {
        m.extend_from_slice(&kind.to_be_bytes());
        m.extend_from_slice(&(value.len() as u16).to_be_bytes());
        m.extend_from_slice(value);
        while !m.len().is_multiple_of(4) {
            m.push(0);
        }
    };
    attribute(&mut m, 0x0006, username.as_bytes());
    attribute(&mut m, 0x0025, &[]); // USE-CANDIDATE
    let length = (m.len() + 24 - 20) as u16;
    m[2..4].copy_from_slice(&length.to_be_bytes());
    let mut mac = <hmac::Hmac<sha1::Sha1> as Mac>::new_from_slice(password.as_bytes()).unwrap();
    mac.update(&m);
    let tag = mac.finalize().into_bytes();
    attribute(&mut m, 0x0008, &tag);
    m
}

#[test]
fn ice_lite_answers_checks_with_our_credentials_and_moves_the_latch() {
    let relay = relay(23320, 4);
    let (caller, callee) = (peer(2), peer(3));
    let (session, stream) = call(&relay, &caller, &callee);
    let ice = relay.new_ice_credentials("peerfrag").unwrap();
    assert_eq!((ice.local_ufrag.len(), ice.local_pwd.len()), (8, 24));
    assert!(
        !format!("{ice:?}").contains(&ice.local_pwd),
        "Debug hides the password"
    );
    relay
        .protect(
            session,
            0,
            Leg::A,
            LegSecurity {
                protection: Protection::Plain,
                ice: Some(ice.clone()),
            },
        )
        .unwrap();
    caller.send_to(&rtp(0, 1, 0, 1, 20), stream.a.rtp).unwrap();
    assert!(receive(&callee).is_some());
    // The peer's media moves to another address (ICE picked another path): checks from there
    // with good credentials are answered and move the latch; bad ones are not.
    let moved = peer(7);
    let username = format!("{}:peerfrag", ice.local_ufrag);
    moved
        .send_to(&binding_request(&username, "wrong-password"), stream.a.rtp)
        .unwrap();
    assert_silent(&moved, Duration::from_millis(100));
    moved
        .send_to(&binding_request(&username, &ice.local_pwd), stream.a.rtp)
        .unwrap();
    let (response, from) = receive(&moved).expect("a binding response");
    assert_eq!(from, stream.a.rtp);
    assert_eq!(&response[..2], &[0x01, 0x01]);
    callee.send_to(&rtp(0, 2, 0, 2, 20), stream.b.rtp).unwrap();
    assert!(receive(&moved).is_some(), "media follows the check");
    let a = relay.session_stats(session).unwrap().streams[0].a;
    assert_eq!(a.latched_rtp, Some(moved.local_addr().unwrap()));
    assert_eq!(a.drops.stun, 1);
    assert!(a.security.ice);
    let _: &IceCredentials = &ice;
}
