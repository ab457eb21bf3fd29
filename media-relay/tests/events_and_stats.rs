//! Inactivity events, loss and jitter through the relay, worker counters, and the serde
//! shape of the control API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use media_relay::{
    ControlRequest, ControlResponse, Leg, RelayConfig, RelayEvent, RemoteMedia, SessionId,
};

fn relay_with_timeout(port_min: u16, timeout: Duration) -> media_relay::Relay {
    relay_with(RelayConfig {
        port_min,
        port_max: port_min + 15,
        workers: 1,
        inactivity_timeout: timeout,
        ..RelayConfig::default()
    })
}

#[test]
fn a_silent_session_raises_inactive_once_and_an_active_one_does_not() {
    // Generous margins: the suite runs on a loaded 2-core machine, where a thread can
    // stall for a few hundred milliseconds; the active session must never look silent.
    let relay = relay_with_timeout(21700, Duration::from_millis(1_500));
    let silent = relay.allocate_for(7, 1).unwrap();
    let active = relay.allocate(1).unwrap();
    let (caller, callee) = (peer(2), peer(3));
    relay
        .update(active.session, 0, Leg::A, sdp(&caller))
        .unwrap();
    relay
        .update(active.session, 0, Leg::B, sdp(&callee))
        .unwrap();

    let start = Instant::now();
    let mut seq = 0u16;
    let mut events = Vec::new();
    while start.elapsed() < Duration::from_millis(2_500) {
        caller
            .send_to(&rtp(0, seq, 0, 1, 20), active.streams[0].a.rtp)
            .unwrap();
        seq += 1;
        if let Some(event) = relay.wait_event(Duration::from_millis(20)) {
            events.push((event, start.elapsed()));
        }
    }
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, RelayEvent::Inactive(silent.session));
    assert!(events[0].1 >= Duration::from_millis(1_500), "{events:?}");
    // The event names the session; its owner is what it was allocated for.
    assert_eq!(relay.owner_of(silent.session), Some(7));
    assert_eq!(relay.owner_of(active.session), Some(0));
    relay.release(silent.session);
    assert_eq!(relay.owner_of(silent.session), None);

    // Once the active one stops, it times out too.
    assert_eq!(
        relay.wait_event(Duration::from_secs(4)),
        Some(RelayEvent::Inactive(active.session))
    );
    assert_eq!(relay.poll_event(), None);
}

#[test]
fn loss_and_jitter_of_a_stream_with_gaps() {
    let relay = relay_with_timeout(21720, Duration::ZERO);
    let allocation = relay.allocate(1).unwrap();
    let (caller, callee) = (peer(2), peer(3));
    relay
        .update(allocation.session, 0, Leg::A, sdp(&caller))
        .unwrap();
    relay
        .update(allocation.session, 0, Leg::B, sdp(&callee))
        .unwrap();

    // 100 packets of a 20 ms G.711 stream sent in a burst: 10 missing from the sequence, and
    // timestamps 20 ms apart although they arrive together, so jitter builds up.
    let mut sent = 0;
    for seq in 0..100u16 {
        if seq % 10 == 4 {
            continue;
        }
        caller
            .send_to(
                &rtp(0, 5000 + seq, 160 * u32::from(seq), 42, 160),
                allocation.streams[0].a.rtp,
            )
            .unwrap();
        sent += 1;
        if seq % 8 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    for _ in 0..sent {
        assert!(receive(&callee).is_some());
    }
    let a = relay.session_stats(allocation.session).unwrap().streams[0].a;
    assert_eq!((a.rtp.expected, a.rtp.received, a.rtp.lost), (100, 90, 10));
    assert!(
        a.rtp.jitter > 100,
        "jitter {} timestamp units",
        a.rtp.jitter
    );
    assert!((a.rtp.jitter_ms - f64::from(a.rtp.jitter) / 8.0).abs() < 1e-9);
    assert_eq!(a.rtp.ssrc, Some(42));

    let workers = relay.worker_stats().unwrap();
    assert_eq!(workers.len(), 1);
    let w = workers[0];
    assert_eq!((w.packets_received, w.packets_forwarded), (90, 90));
    assert_eq!(w.bytes_forwarded, 90 * 172);
    assert!(w.receive_calls >= 1 && w.send_calls >= 1 && w.cpu_time_ns > 0);
}

#[test]
fn control_requests_and_responses_travel_as_json() {
    let relay = relay_with_timeout(21740, Duration::ZERO);
    let request: ControlRequest = serde_json::from_str(r#"{"Allocate":{"streams":1}}"#).unwrap();
    let ControlResponse::Allocated(allocation) = relay.execute(request) else {
        panic!("not allocated")
    };
    let remote = RemoteMedia {
        rtp: Some("127.0.0.2:4000".parse().unwrap()),
        rtcp_mux: true,
        ..Default::default()
    };
    let update = ControlRequest::Update {
        session: allocation.session,
        stream: 0,
        leg: Leg::B,
        remote,
    };
    let json = serde_json::to_string(&update).unwrap();
    assert_eq!(
        serde_json::from_str::<ControlRequest>(&json).unwrap(),
        update
    );
    assert_eq!(relay.execute(update), ControlResponse::Updated);

    let stats = relay.execute(ControlRequest::SessionStats {
        session: allocation.session,
    });
    let json = serde_json::to_string(&stats).unwrap();
    assert_eq!(
        serde_json::from_str::<ControlResponse>(&json).unwrap(),
        stats
    );

    let error = relay.execute(ControlRequest::SessionStats {
        session: SessionId(12345),
    });
    let json = serde_json::to_string(&error).unwrap();
    assert!(json.contains("UnknownSession"), "{json}");
    assert_eq!(
        relay.execute(ControlRequest::Release {
            session: allocation.session
        }),
        ControlResponse::Released
    );

    let config: RelayConfig =
        serde_json::from_str(r#"{"port_min":30000,"port_max":30099}"#).unwrap();
    assert_eq!((config.port_min, config.pair_count()), (30000, 50));
    assert!(serde_json::from_str::<RelayConfig>(r#"{"port_mn":1}"#).is_err());
}

#[test]
fn bad_configurations_are_refused() {
    for config in [
        RelayConfig {
            port_min: 30000,
            port_max: 30002,
            ..RelayConfig::default()
        },
        RelayConfig {
            port_min: 30010,
            port_max: 30000,
            ..RelayConfig::default()
        },
        RelayConfig {
            address: "0.0.0.0".parse().unwrap(),
            ..RelayConfig::default()
        },
    ] {
        let error = media_relay::Relay::start(config).unwrap_err();
        assert_eq!(error.name(), "invalid_config");
    }
}
