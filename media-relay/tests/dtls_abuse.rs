//! DTLS abuse bounds over loopback: a peer flooding its media port with ClientHellos gets
//! only its leg's share of the handshake thread (the rest is dropped and counted by
//! reason), and another call's DTLS-SRTP handshake completes meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use media_relay::dtls::{
    BURST, CLIENT_HELLO_COST, DtlsContext, DtlsEndpoint, DtlsEvent, DtlsIdentity, DtlsRole,
    PER_SECOND,
};
use media_relay::{DtlsSetup, Leg, LegSecurity, Protection, RemoteMedia};

fn dtls_server(fingerprint: media_relay::dtls::Fingerprint) -> LegSecurity {
    LegSecurity {
        protection: Protection::Dtls(DtlsSetup {
            role: DtlsRole::Server,
            fingerprint: Some(fingerprint),
        }),
        ice: None,
    }
}

#[test]
fn a_client_hello_flood_is_held_to_its_legs_share_and_other_handshakes_complete() {
    let relay = relay(23600, 6);
    let context = DtlsContext::new(DtlsIdentity::generate().unwrap()).unwrap();
    let fingerprint = context.identity().fingerprint().clone();

    // The attacker's call: a DTLS leg whose peer floods it.
    let (attacker, attacked_callee) = (peer(4), peer(5));
    let flood = relay.allocate(1).unwrap();
    for (leg, socket) in [(Leg::A, &attacker), (Leg::B, &attacked_callee)] {
        let remote = RemoteMedia {
            rtcp_mux: true,
            ..sdp(socket)
        };
        relay.update(flood.session, 0, leg, remote).unwrap();
    }
    relay
        .protect(flood.session, 0, Leg::A, dtls_server(fingerprint.clone()))
        .unwrap();

    // The victim's call, set up the same way.
    let (caller, callee) = (peer(2), peer(3));
    let call = relay.allocate(1).unwrap();
    for (leg, socket) in [(Leg::A, &caller), (Leg::B, &callee)] {
        let remote = RemoteMedia {
            rtcp_mux: true,
            ..sdp(socket)
        };
        relay.update(call.session, 0, leg, remote).unwrap();
    }
    relay
        .protect(call.session, 0, Leg::A, dtls_server(fingerprint))
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));

    // Flood: a real ClientHello, sent again and again for a second.
    let mut hello_maker =
        DtlsEndpoint::new(&context, DtlsRole::Client, relay.dtls_fingerprint().clone()).unwrap();
    let hello = hello_maker.poll_transmit().unwrap();
    assert!(media_relay::dtls::is_client_hello(&hello));
    let stop = Arc::new(AtomicBool::new(false));
    let flooding = {
        let stop = Arc::clone(&stop);
        let target = flood.streams[0].a.rtp;
        std::thread::spawn(move || {
            let mut sent = 0u64;
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(3) {
                for _ in 0..64 {
                    if attacker.send_to(&hello, target).is_ok() {
                        sent += 1;
                    }
                }
                std::thread::yield_now();
            }
            sent
        })
    };

    // Meanwhile the victim's handshake runs to its end.
    let started = Instant::now();
    let mut endpoint =
        DtlsEndpoint::new(&context, DtlsRole::Client, relay.dtls_fingerprint().clone()).unwrap();
    caller
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let connected = loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the victim's handshake did not complete"
        );
        while let Some(record) = endpoint.poll_transmit() {
            caller.send_to(&record, call.streams[0].a.rtp).unwrap();
        }
        match endpoint.poll_event() {
            Some(DtlsEvent::Connected(_)) => break started.elapsed(),
            Some(DtlsEvent::Failed(error)) => panic!("the victim's handshake failed: {error}"),
            None => {}
        }
        match caller.recv_from(&mut buf) {
            Ok((len, _)) => endpoint.handle_datagram(&buf[..len]),
            Err(_) => endpoint.handle_timeout(),
        }
    };
    let flood_time = Duration::from_secs(1).saturating_sub(started.elapsed());
    std::thread::sleep(flood_time);
    stop.store(true, Ordering::Relaxed);
    let sent = flooding.join().unwrap();
    assert!(
        connected < Duration::from_secs(5),
        "handshake took {connected:?}"
    );
    assert!(eventually(Duration::from_secs(2), || {
        relay.session_stats(call.session).unwrap().streams[0]
            .a
            .security
            .established
    }));

    // The attacker got its share and no more: everything else was dropped, by reason.
    std::thread::sleep(Duration::from_millis(100));
    let leg = relay.session_stats(flood.session).unwrap().streams[0].a;
    let dropped = leg.dtls_drops.total();
    let admitted = leg.packets_received - leg.drops.total();
    let elapsed = started.elapsed().as_secs() + 1;
    let share = u64::from(BURST / CLIENT_HELLO_COST)
        + elapsed * u64::from(PER_SECOND / CLIENT_HELLO_COST + 1);
    assert!(
        sent > 1_000 && leg.packets_received > 1_000,
        "sent {sent}, received {}",
        leg.packets_received
    );
    assert!(
        admitted <= share,
        "{admitted} records reached the handshake thread (share {share}): {leg:?}"
    );
    assert_eq!(leg.drops.dtls, dropped);
    assert!(
        leg.dtls_drops.rate_limited + leg.dtls_drops.handshake_failed > 0,
        "{:?}",
        leg.dtls_drops
    );
    let worker = media_relay::WorkerStats::sum(&relay.worker_stats().unwrap());
    assert!(worker.dtls_drops.total() >= dropped);
    assert_eq!(worker.dtls_handshakes, 1, "only the victim's completed");
}
