//! Advertised addresses: what the SBC writes in the messages it sends is the configured
//! `advertise` address (of the SIP listener, and of the media relay in SDP), never the
//! address it is bound on, as a deployment behind a 1:1 NAT needs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::sip;
use common::{Sbc, SbcConfig};

/// The first INVITE the peer receives within `within`.
fn receive_invite(peer: &UdpSocket, sbc: &Sbc, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut buffer = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no INVITE relayed\n{}", sbc.log_tail());
        peer.set_read_timeout(Some(left)).unwrap();
        let Ok((len, _)) = peer.recv_from(&mut buffer) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
        if text.starts_with("INVITE ") {
            return text;
        }
    }
}

#[test]
fn relayed_invites_carry_the_advertised_sip_and_media_addresses() {
    let mut config = SbcConfig::new();
    let peer = UdpSocket::bind((config.net.host(2), 0)).unwrap();
    config = config.with_peer(peer.local_addr().unwrap());
    // Addresses of this test's own /24 that nothing is bound on: "the NAT's public side".
    let public_sip = format!("{}:15060", config.net.host(9));
    let public_media = config.net.host(10).to_string();
    config.sip_advertise = Some(public_sip.clone());
    config.media_advertise = Some(public_media.clone());
    let mut sbc = Sbc::start(config);

    let caller = sip::udp_socket(sbc.config.net.host(3));
    let target = sbc.config.sip_address();
    let invite = sip::request("INVITE", target, "UDP", caller.local_addr().unwrap());
    caller.send_to(invite.text.as_bytes(), target).unwrap();

    let relayed = receive_invite(&peer, &sbc, Duration::from_secs(10));
    let via = sip::header(&relayed, "Via").unwrap_or_default();
    assert!(
        via.starts_with(&format!("SIP/2.0/UDP {public_sip};")),
        "Via names the advertised address: {relayed}"
    );
    let contact = sip::header(&relayed, "Contact").unwrap_or_default();
    assert!(
        contact.contains(&public_sip),
        "Contact names the advertised address: {relayed}"
    );
    assert!(
        relayed.contains(&format!("c=IN IP4 {public_media}\r\n")),
        "SDP names the advertised media address: {relayed}"
    );
    let bound = sbc.config.ip.to_string();
    let names_bound = relayed
        .match_indices(&bound)
        .any(|(at, _)| !relayed[at + bound.len()..].starts_with(|c: char| c.is_ascii_digit()));
    assert!(
        !names_bound,
        "the bound address {bound} must not appear: {relayed}"
    );
    sbc.assert_alive("an INVITE relayed with advertised addresses");
}
