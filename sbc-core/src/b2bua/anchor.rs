//! SDP rewriting for media anchoring: read where a leg's peer receives media, and rewrite
//! the description so that the other leg sends to the relay instead.
//!
//! What changes on the way through (everything else is kept as received, in order):
//!
//! * `o=`: the user name is the configured one (`-` by default), the session id is ours
//!   (one per leg, drawn at random), the version ours (incremented only when what we send
//!   to that leg changes, RFC 3264 §8), the address the relay's.
//! * `c=` at session and media level: the relay's address. A hold keeps its direction
//!   attribute (`a=sendonly`, `a=inactive`) but never `c=0.0.0.0`: the address is always
//!   the relay's, and the relay stops sending to a leg whose peer said 0.0.0.0.
//! * `m=` ports: the relay's port of that stream for the receiving leg; port 0 (a
//!   disabled or rejected stream) stays 0.
//! * `a=rtcp:` (RFC 3605): the relay's RTCP port (and address, when one was given).
//! * ICE attributes are removed: their candidates are the peer's addresses, and the relay
//!   does not speak ICE.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use crate::media::{Leg, RemoteMedia, StreamAddrs};
use crate::sdp::{Attribute, Connection, NetAddress, Rtcp, SdpError, SessionDescription};

/// The `o=` line we present to one leg, and what we last sent it.
#[derive(Clone, Debug)]
pub(crate) struct OriginState {
    session_id: u64,
    version: u64,
    last: Option<SessionDescription>,
}

impl OriginState {
    pub(crate) fn new(session_id: u64) -> OriginState {
        OriginState {
            // Below 2^62, so that the printed id never looks negative to a signed parser.
            session_id: session_id >> 2,
            version: 1,
            last: None,
        }
    }

    /// The description we last sent this leg (what its peer was told to use).
    pub(crate) fn last_sent(&self) -> Option<&SessionDescription> {
        self.last.as_ref()
    }
}

/// Reads a body as SDP.
pub(crate) fn parse(body: &Bytes) -> Result<SessionDescription, SdpError> {
    SessionDescription::parse_bytes(body.clone(), &crate::sdp::Limits::DEFAULT)
}

/// Where the peer that wrote `sdp` receives media, per `m=` line.
pub(crate) fn remote_media(sdp: &SessionDescription) -> Vec<RemoteMedia> {
    (0..sdp.media.len())
        .map(|index| remote_of_stream(sdp, index))
        .collect()
}

fn remote_of_stream(sdp: &SessionDescription, index: usize) -> RemoteMedia {
    let Some(section) = sdp.media.get(index) else {
        return RemoteMedia::default();
    };
    let rtcp_mux = section.lines.rtcp_mux();
    let ip = sdp
        .media_connection(index)
        .and_then(Connection::ip)
        .filter(|ip| !ip.is_unspecified());
    let port = section.media.port;
    let (Some(ip), true) = (ip, port != 0) else {
        return RemoteMedia {
            rtp: None,
            rtcp: None,
            rtcp_mux,
        };
    };
    let rtp = SocketAddr::new(ip, port);
    let rtcp = match section.lines.rtcp() {
        Some(Ok(rtcp)) => {
            let rtcp_ip = rtcp.address.as_ref().and_then(NetAddress::ip).unwrap_or(ip);
            Some(SocketAddr::new(rtcp_ip, rtcp.port))
        }
        _ if rtcp_mux => Some(rtp),
        _ => port.checked_add(1).map(|port| SocketAddr::new(ip, port)),
    };
    RemoteMedia {
        rtp: Some(rtp),
        rtcp,
        rtcp_mux,
    }
}

/// RFC 5576 `a=ssrc:<id> cname:<value>` names the sender, often as `user@host:port`:
/// the value is replaced by an opaque one derived from the SSRC (stable, so both the offer
/// and a later re-offer say the same, and equal to the CNAME the relay writes into the
/// RTCP it forwards). Other source attributes are kept; the SSRC itself
/// passes, as the relay passes it unchanged in RTP.
fn hide_ssrc_cnames(lines: &mut crate::sdp::Lines) {
    let rewritten: Vec<Attribute> = lines
        .attributes_named("ssrc")
        .map(|attribute| {
            let Some(value) = &attribute.value else {
                return attribute.clone();
            };
            let mut parts = value.splitn(2, |&b| b == b' ');
            let id = parts.next().unwrap_or_default();
            match parts.next() {
                Some(rest) if rest.len() >= 5 && rest[..5].eq_ignore_ascii_case(b"cname") => {
                    let ssrc = std::str::from_utf8(id)
                        .ok()
                        .and_then(|id| id.parse::<u32>().ok());
                    let opaque = crate::media::opaque_cname(ssrc.unwrap_or(0));
                    let mut new = id.to_vec();
                    new.extend_from_slice(b" cname:");
                    new.extend_from_slice(opaque.as_bytes());
                    Attribute::new("ssrc", new)
                }
                _ => attribute.clone(),
            }
        })
        .collect();
    if !rewritten.is_empty() {
        lines.replace_attributes("ssrc", rewritten);
    }
}

/// Rewrites `sdp` for the leg `toward` so that every stream goes through the relay
/// (`streams[i]` for `m=` line `i`; the caller has made sure there are enough), and prints
/// it with our `o=` line for that leg.
pub(crate) fn anchor(
    mut sdp: SessionDescription,
    streams: &[StreamAddrs],
    toward: Leg,
    username: &str,
    origin: &mut OriginState,
) -> Bytes {
    let Some(first) = streams.first() else {
        // Not reached: a session always has at least one stream.
        return sdp.to_bytes();
    };
    let relay_ip: IpAddr = first.toward(toward).rtp.ip();

    if sdp.lines.connection().is_some() {
        sdp.lines
            .set_connection(Some(Connection::from_ip(relay_ip)));
    }
    sdp.lines.remove_ice();
    let session_has_connection = sdp.lines.connection().is_some();
    for (section, stream) in sdp.media.iter_mut().zip(streams) {
        let relay = stream.toward(toward);
        if section.media.port != 0 {
            section.media.port = relay.rtp.port();
        }
        if !session_has_connection
            || section.lines.connection().is_some()
            || relay.rtp.ip() != relay_ip
        {
            section
                .lines
                .set_connection(Some(Connection::from_ip(relay.rtp.ip())));
        }
        if let Some(Ok(rtcp)) = section.lines.rtcp() {
            section.lines.set_rtcp(Some(&Rtcp {
                port: relay.rtcp.port(),
                address: rtcp
                    .address
                    .as_ref()
                    .map(|_| NetAddress::from_ip(relay.rtcp.ip())),
            }));
        } else if section.lines.rtcp().is_some() {
            // An `a=rtcp` that does not decode may hold anything: drop it.
            section.lines.remove_attributes("rtcp");
        }
        section.lines.remove_ice();
        hide_ssrc_cnames(&mut section.lines);
    }
    hide_ssrc_cnames(&mut sdp.lines);

    sdp.origin.username = Bytes::copy_from_slice(username.as_bytes());
    sdp.origin.set_session_id(origin.session_id);
    sdp.origin.set_session_version(origin.version);
    sdp.origin.address.set_ip(relay_ip);
    if origin.last.as_ref().is_some_and(|last| *last != sdp) {
        origin.version = origin.version.wrapping_add(1).max(1);
        sdp.origin.set_session_version(origin.version);
    }
    let printed = sdp.to_bytes();
    origin.last = Some(sdp);
    printed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::media::LegAddr;

    fn addrs(a: u16, b: u16) -> StreamAddrs {
        let leg = |port: u16| LegAddr {
            rtp: SocketAddr::from(([203, 0, 113, 1], port)),
            rtcp: SocketAddr::from(([203, 0, 113, 1], port + 1)),
        };
        StreamAddrs {
            a: leg(a),
            b: leg(b),
        }
    }

    const OFFER: &[u8] = b"v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n\
t=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4005 IN IP4 192.0.2.11\r\na=sendonly\r\n\
a=candidate:1 1 udp 1 192.0.2.10 4000 typ host\r\nm=video 0 RTP/AVP 96\r\n";

    #[test]
    fn ssrc_cnames_that_name_hosts_are_replaced() {
        let offer = b"v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n\
t=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=ssrc:1337 cname:sip:alice@192.0.2.10:5070\r\n\
a=ssrc:1337 msid:stream track\r\na=ssrc:42 CNAME:alice.example.com\r\n";
        let sdp = parse(&Bytes::from_static(offer)).unwrap();
        let mut origin = OriginState::new(400);
        let out = anchor(sdp, &[addrs(20000, 20002)], Leg::B, "-", &mut origin);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(!text.contains("192.0.2"), "{text}");
        assert!(!text.contains("alice"), "{text}");
        assert!(text.contains("a=ssrc:1337 cname:"), "{text}");
        assert!(text.contains("a=ssrc:42 cname:"), "{text}");
        assert!(text.contains("a=ssrc:1337 msid:stream track\r\n"), "{text}");
    }

    #[test]
    fn reads_the_peer_addresses() {
        let sdp = parse(&Bytes::from_static(OFFER)).unwrap();
        let remote = remote_media(&sdp);
        assert_eq!(remote.len(), 2);
        assert_eq!(remote[0].rtp, Some("192.0.2.10:4000".parse().unwrap()));
        assert_eq!(remote[0].rtcp, Some("192.0.2.11:4005".parse().unwrap()));
        assert_eq!(remote[1].rtp, None);
    }

    #[test]
    fn rewrites_every_address_and_keeps_the_rest() {
        let sdp = parse(&Bytes::from_static(OFFER)).unwrap();
        let mut origin = OriginState::new(400);
        let out = anchor(
            sdp.clone(),
            &[addrs(20000, 20002), addrs(20004, 20006)],
            Leg::B,
            "-",
            &mut origin,
        );
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.contains("o=- 100 1 IN IP4 203.0.113.1\r\n"), "{text}");
        assert!(text.contains("c=IN IP4 203.0.113.1\r\n"));
        assert!(text.contains("m=audio 20002 RTP/AVP 0\r\n"));
        assert!(text.contains("a=rtcp:20003 IN IP4 203.0.113.1\r\n"));
        assert!(text.contains("a=sendonly\r\n"));
        assert!(text.contains("m=video 0 RTP/AVP 96\r\n"));
        assert!(!text.contains("192.0.2"));
        assert!(!text.contains("candidate"));

        // The same again keeps the version; a change bumps it.
        let again = anchor(
            sdp.clone(),
            &[addrs(20000, 20002), addrs(20004, 20006)],
            Leg::B,
            "-",
            &mut origin,
        );
        assert_eq!(again, out);
        let mut changed = sdp;
        changed.media[0].lines.set_direction(None);
        let third = anchor(
            changed,
            &[addrs(20000, 20002), addrs(20004, 20006)],
            Leg::B,
            "-",
            &mut origin,
        );
        assert!(
            String::from_utf8(third.to_vec())
                .unwrap()
                .contains("o=- 100 2 IN IP4")
        );
    }
}
