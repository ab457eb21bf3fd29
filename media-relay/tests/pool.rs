//! The port pool: exhaustion is a clean error, and the pool is whole again after many
//! thousands of allocate/release cycles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;
use media_relay::{RelayConfig, RelayError};

#[test]
fn exhaustion_is_a_typed_error_and_release_makes_room_again() {
    let relay = relay(21400, 8);
    assert_eq!(relay.port_pairs(), (8, 8));
    let sessions: Vec<_> = (0..4).map(|_| relay.allocate(1).unwrap()).collect();
    let error = relay.allocate(1).unwrap_err();
    assert_eq!(error, RelayError::PoolExhausted { needed: 2, free: 0 });
    assert_eq!(error.name(), "pool_exhausted");
    assert!(matches!(
        relay.add_streams(sessions[0].session, 1),
        Err(RelayError::PoolExhausted { .. })
    ));

    relay.release(sessions[1].session);
    relay.release(sessions[1].session); // twice: harmless
    assert!(eventually(Duration::from_secs(2), || relay.port_pairs().1 == 2));
    relay.allocate(1).unwrap();
    assert_eq!(relay.port_pairs(), (8, 0));
    assert_eq!(relay.session_count(), 4);

    // Every port is even/odd and distinct.
    let mut ports: Vec<u16> = sessions
        .iter()
        .flat_map(|s| s.streams.iter().flat_map(|st| [st.a, st.b]))
        .flat_map(|leg| [leg.rtp.port(), leg.rtcp.port()])
        .collect();
    assert!(ports.chunks(2).all(|p| p[0] % 2 == 0 && p[1] == p[0] + 1));
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 16);
}

#[test]
fn stream_counts_are_checked() {
    let relay = relay(21440, 8);
    assert!(matches!(
        relay.allocate(0),
        Err(RelayError::InvalidStreamCount { .. })
    ));
    assert!(matches!(
        relay.allocate(17),
        Err(RelayError::InvalidStreamCount { .. })
    ));
    assert_eq!(
        relay.update(
            media_relay::SessionId(999),
            0,
            media_relay::Leg::A,
            Default::default()
        ),
        Err(RelayError::UnknownSession(999))
    );
    assert_eq!(relay.port_pairs().1, 8);
}

#[test]
fn a_pair_held_by_another_process_is_skipped() {
    let relay = relay(21460, 4);
    let squatter = UdpSocket::bind(SocketAddr::new(host(1), 21461)).unwrap();
    let allocation = relay.allocate(1).unwrap();
    let ports: Vec<u16> = [allocation.streams[0].a, allocation.streams[0].b]
        .iter()
        .map(|l| l.rtp.port())
        .collect();
    assert!(!ports.contains(&21460), "{ports:?}");
    drop(squatter);
    relay.release(allocation.session);
    assert!(eventually(Duration::from_secs(2), || relay.port_pairs() == (4, 4)));
}

#[test]
fn the_pool_is_whole_again_after_ten_thousand_calls() {
    let relay = relay_with(RelayConfig {
        port_min: 21500,
        port_max: 21500 + 2 * 64 - 1,
        workers: 2,
        ..RelayConfig::default()
    });
    let mut live = std::collections::VecDeque::new();
    let mut allocated = 0;
    while allocated < 10_000 {
        match relay.allocate(if allocated % 7 == 0 { 2 } else { 1 }) {
            Ok(allocation) => {
                allocated += 1;
                if allocated % 5 == 0 {
                    // Some calls grow a stream on re-INVITE.
                    let _ = relay.add_streams(allocation.session, 1);
                }
                live.push_back(allocation.session);
                // Keep about 10 calls up at once; end the oldest.
                if live.len() > 10 {
                    relay.release(live.pop_front().unwrap());
                }
            }
            // The workers have not closed the released calls' sockets yet.
            Err(RelayError::PoolExhausted { .. }) => std::thread::yield_now(),
            Err(other) => panic!("allocate failed: {other}"),
        }
    }
    for session in live {
        relay.release(session);
    }
    assert!(
        eventually(Duration::from_secs(5), || relay.port_pairs() == (64, 64)),
        "{:?}",
        relay.port_pairs()
    );
    assert_eq!(relay.session_count(), 0);
    let totals = media_relay::WorkerStats::sum(&relay.worker_stats().unwrap());
    assert_eq!((totals.sessions, totals.sockets), (0, 0));
}
