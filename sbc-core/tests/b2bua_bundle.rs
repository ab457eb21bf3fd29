//! BUNDLE (RFC 8843) toward a WebRTC caller on a virtual clock, with the JSEP examples
//! (RFC 9429 §7, `shared/testdata/sdp/jsep/`): the caller's audio and video share one
//! relay port (its answer has one group, one port, the transport's attributes in the
//! tagged `m=` line only), the relay is told the group and what tells its streams apart,
//! and the SIP trunk on the other leg gets a port per stream and no group. A data channel
//! (which would need the relay's DTLS) is refused on both legs; a stream the trunk rejects
//! leaves the group; the SBC's later offers to the caller keep the group.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod b2bua_support;

use std::path::PathBuf;

use b2bua_support::*;
use sbc_core::media::security::{LegProtection, MediaPolicy};
use sbc_core::media::{Leg, MediaBundle};
use sbc_core::sip::Message;

fn jsep(name: &str) -> String {
    let root = std::env::var("SBC_TESTDATA").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"),
        PathBuf::from,
    );
    let path = root.join("sdp/jsep").join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set SBC_TESTDATA)", path.display()))
}

fn body(message: &Message) -> String {
    String::from_utf8(message.body().to_vec()).unwrap()
}

/// The lines of the `m=` section starting with `m=<kind>` (the first such).
fn section<'s>(sdp: &'s str, kind: &str) -> Vec<&'s str> {
    let mut lines = sdp
        .lines()
        .skip_while(|l| !l.starts_with(&format!("m={kind}")));
    let first = lines.next().into_iter();
    first
        .chain(lines.take_while(|l| !l.starts_with("m=")))
        .collect()
}

fn port(section: &[&str]) -> u16 {
    section[0].split(' ').nth(1).unwrap().parse().unwrap()
}

/// A plain SIP trunk answering audio and video on its own ports.
const TRUNK_AUDIO_VIDEO: &str = "v=0\r\no=carrier 7 7 IN IP4 198.51.100.20\r\ns=-\r\n\
c=IN IP4 198.51.100.20\r\nt=0 0\r\nm=audio 39876 RTP/AVPF 0 8\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 39878 RTP/AVPF 100\r\na=rtpmap:100 VP8/90000\r\n";

fn last_bundle(h: &Harness, leg: Leg) -> Option<MediaBundle> {
    h.media()
        .bundles
        .iter()
        .rev()
        .find(|(_, l, _)| *l == leg)
        .and_then(|(_, _, bundle)| bundle.clone())
}

fn last_protection(h: &Harness, stream: usize, leg: Leg) -> Option<LegProtection> {
    h.media()
        .protected
        .iter()
        .rev()
        .find(|(_, s, l, _)| *s == stream && *l == leg)
        .map(|(_, _, _, security)| security.protection.clone())
}

#[test]
fn jsep_a1_audio_and_video_share_one_relay_port_toward_the_browser_and_two_toward_the_trunk() {
    let mut h = Harness::with(Options::default());
    let mut caller = Caller::invite("b1", Some(&jsep("offer-A1.sdp")));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let offer = body(&Message::Request(invite.clone()));
    // The trunk: one port per stream, no group, none of the browser's transport.
    let (audio, video) = (section(&offer, "audio"), section(&offer, "video"));
    assert_ne!(port(&audio), port(&video), "{offer}");
    assert!(!offer.contains("BUNDLE"), "{offer}");
    for gone in ["ice-", "candidate", "fingerprint", "setup", "203.0.113.100"] {
        assert!(!offer.contains(gone), "{gone}: {offer}");
    }
    assert!(audio[0].ends_with("RTP/AVPF 96 0 8 97 98"), "{offer}");

    let ua = Ua::callee(&invite, callee(), "carrier-b1");
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(TRUNK_AUDIO_VIDEO)));
    h.request_to(CALLEE, "ACK");
    let ok = h.response_to(CALLER, 200);
    let answer = body(&Message::Response(ok.clone()));
    let (audio, video) = (section(&answer, "audio"), section(&answer, "video"));
    // The browser: one group, one port, the transport's attributes in the tagged line.
    assert!(answer.contains("a=group:BUNDLE a1 v1\r\n"), "{answer}");
    assert_eq!(port(&audio), port(&video), "{answer}");
    assert_eq!(port(&audio), 20000);
    assert!(audio[0].ends_with("UDP/TLS/RTP/SAVPF 0 8"), "{answer}");
    assert!(video[0].ends_with("UDP/TLS/RTP/SAVPF 100"), "{answer}");
    for needed in [
        "a=mid:a1",
        "a=rtcp-mux",
        "a=setup:passive",
        "a=ice-ufrag:sbcufrag",
        "a=candidate:1 1 UDP 2130706431 203.0.113.100 20000 typ host",
    ] {
        assert!(
            audio.contains(&needed),
            "{needed} in the tagged line: {answer}"
        );
    }
    assert!(
        audio
            .iter()
            .any(|l| l.starts_with("a=fingerprint:sha-256 AB:")),
        "{answer}"
    );
    assert!(video.contains(&"a=mid:v1"), "{answer}");
    for gone in [
        "a=ice-",
        "a=candidate",
        "a=fingerprint",
        "a=setup",
        "a=rtcp",
    ] {
        assert!(
            !video.iter().any(|l| l.starts_with(gone)),
            "{gone} only in the tagged line: {answer}"
        );
    }
    assert!(answer.contains("a=ice-lite\r\n"));

    // The relay: leg A bundled onto stream 0, with the browser's SSRCs, payload types and
    // MID extension id; the trunk's leg not; DTLS on the transport only.
    let bundle = last_bundle(&h, Leg::A).expect("leg A is bundled");
    assert_eq!(bundle.transport, 0);
    assert_eq!(bundle.mid_extension, Some(1));
    let mids: Vec<&str> = bundle.members.iter().map(|m| m.mid.as_str()).collect();
    assert_eq!(mids, ["a1", "v1"]);
    assert_eq!(bundle.members[0].payload_types, [96, 0, 8, 97, 98]);
    assert_eq!(bundle.members[1].payload_types, [100, 101, 102, 103]);
    assert_eq!(last_bundle(&h, Leg::B), None);
    assert!(matches!(
        last_protection(&h, 0, Leg::A),
        Some(LegProtection::Dtls {
            fingerprint: Some(_),
            ..
        })
    ));
    assert!(matches!(
        last_protection(&h, 1, Leg::A),
        None | Some(LegProtection::Plain)
    ));
    // The relay sends to where the trunk's video is, on stream 1.
    let session = *h.media().live.iter().next().unwrap();
    assert_eq!(
        h.media().remote(session, 1, Leg::B).unwrap().rtp,
        Some(addr("198.51.100.20:39878"))
    );
    caller.answered(&ok);
    h.receive_message(self::caller(), &caller.ack(None));

    // The trunk puts the call on hold: the SBC's offer to the browser keeps the group,
    // the one port, the mids, rtcp-mux and its DTLS role and ICE credentials.
    let mut trunk = ua;
    let hold = TRUNK_AUDIO_VIDEO
        .replace("o=carrier 7 7", "o=carrier 7 8")
        .replace(
            "a=rtpmap:0 PCMU/8000\r\n",
            "a=rtpmap:0 PCMU/8000\r\na=sendonly\r\n",
        );
    h.receive_message(callee(), &trunk.request("INVITE", Some(&hold)));
    let reinvite = h.request_to(CALLER, "INVITE");
    let reoffer = body(&Message::Request(reinvite.clone()));
    let (audio, video) = (section(&reoffer, "audio"), section(&reoffer, "video"));
    assert!(reoffer.contains("a=group:BUNDLE a1 v1\r\n"), "{reoffer}");
    assert_eq!(port(&audio), port(&video));
    assert_eq!(port(&audio), 20000);
    for needed in [
        "a=mid:a1",
        "a=rtcp-mux",
        "a=setup:passive",
        "a=ice-ufrag:sbcufrag",
    ] {
        assert!(audio.contains(&needed), "{needed}: {reoffer}");
    }
    assert!(video.contains(&"a=mid:v1"), "{reoffer}");
    assert!(!video.iter().any(|l| l.starts_with("a=ice-")), "{reoffer}");

    // The browser answers (JSEP's answer A1, as if it had been the answerer): the group
    // stays with the relay.
    let browser_answer = jsep("answer-A1.sdp");
    let browser = caller.ua.as_ref().unwrap().clone();
    h.receive_message(
        self::caller(),
        &browser.respond(&reinvite, 200, Some(&browser_answer)),
    );
    h.request_to(CALLER, "ACK");
    h.response_to(CALLEE, 200);
    let bundle = last_bundle(&h, Leg::A).expect("still bundled");
    assert_eq!(bundle.transport, 0);
    assert_eq!(bundle.members.len(), 2);
}

#[test]
fn jsep_b1_a_bundle_only_data_channel_is_refused_and_a_single_stream_keeps_its_group() {
    let mut h = Harness::with(Options::default());
    let caller = Caller::invite("b2", Some(&jsep("offer-B1.sdp")));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let offer = body(&Message::Request(invite.clone()));
    let data = section(&offer, "application");
    assert_eq!(port(&data), 0, "{offer}");
    let answer_sdp = "v=0\r\no=carrier 7 7 IN IP4 198.51.100.20\r\ns=-\r\n\
c=IN IP4 198.51.100.20\r\nt=0 0\r\nm=audio 39876 RTP/AVPF 0\r\na=rtpmap:0 PCMU/8000\r\n\
m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n";
    let ua = Ua::callee(&invite, callee(), "carrier-b2");
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(answer_sdp)));
    let ok = h.response_to(CALLER, 200);
    let answer = body(&Message::Response(ok));
    assert!(answer.contains("a=group:BUNDLE a1\r\n"), "{answer}");
    assert_eq!(port(&section(&answer, "application")), 0, "{answer}");
    assert_eq!(port(&section(&answer, "audio")), 20000);
    // One stream: its own transport, nothing to bundle on the relay.
    assert_eq!(last_bundle(&h, Leg::A), None);
}

#[test]
fn a_data_channel_with_a_port_is_refused_on_both_legs_and_a_rejected_video_leaves_the_group() {
    // JSEP's B2 offer (audio, data channel and two videos, all bundled on one port), as a
    // caller's offer.
    let mut h = Harness::with(Options::default());
    let caller = Caller::invite("b3", Some(&jsep("offer-B2.sdp")));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let offer = body(&Message::Request(invite.clone()));
    assert_eq!(port(&section(&offer, "application")), 0, "{offer}");
    let ports: Vec<u16> = offer
        .lines()
        .filter(|l| l.starts_with("m=audio") || l.starts_with("m=video"))
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(ports.len(), 3);
    assert!(ports[0] != ports[1] && ports[1] != ports[2], "{offer}");
    // The trunk takes the audio and the first video, and rejects the second.
    let answer_sdp = "v=0\r\no=carrier 7 7 IN IP4 198.51.100.20\r\ns=-\r\n\
c=IN IP4 198.51.100.20\r\nt=0 0\r\nm=audio 39876 RTP/AVPF 0\r\n\
m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\nm=video 39878 RTP/AVPF 100\r\n\
m=video 0 RTP/AVPF 100\r\n";
    let ua = Ua::callee(&invite, callee(), "carrier-b3");
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(answer_sdp)));
    let ok = h.response_to(CALLER, 200);
    let answer = body(&Message::Response(ok));
    assert!(answer.contains("a=group:BUNDLE a1 v1\r\n"), "{answer}");
    let ports: Vec<u16> = answer
        .lines()
        .filter(|l| l.starts_with("m="))
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(ports, [20000, 0, 20000, 0], "{answer}");
    let bundle = last_bundle(&h, Leg::A).unwrap();
    let streams: Vec<usize> = bundle.members.iter().map(|m| m.stream).collect();
    assert_eq!(streams, [0, 2]);
}

#[test]
fn a_caller_without_bundle_keeps_a_port_per_stream() {
    let offer = jsep("offer-A1.sdp").replace("a=group:BUNDLE a1 v1\r\n", "");
    let mut h = Harness::with(Options {
        callee_media: MediaPolicy::default(),
        ..Options::default()
    });
    let caller = Caller::invite("b4", Some(&offer));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let ua = Ua::callee(&invite, callee(), "carrier-b4");
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(TRUNK_AUDIO_VIDEO)));
    let answer = body(&Message::Response(h.response_to(CALLER, 200)));
    assert!(!answer.contains("BUNDLE"), "{answer}");
    let (audio, video) = (section(&answer, "audio"), section(&answer, "video"));
    assert_ne!(port(&audio), port(&video));
    assert!(
        video.iter().any(|l| l.starts_with("a=ice-ufrag")),
        "{answer}"
    );
    assert!(h.media().bundles.is_empty());
}

#[test]
fn a_bundle_only_video_is_live_and_gets_a_port_of_its_own_toward_the_trunk() {
    // Max-bundle as JSEP §5.2.1 writes it: the second m= line at port 0 with bundle-only.
    let offer = jsep("offer-A1.sdp").replacen(
        "m=video 10102 UDP/TLS/RTP/SAVPF 100 101 102 103\r\n",
        "m=video 0 UDP/TLS/RTP/SAVPF 100 101 102 103\r\na=bundle-only\r\n",
        1,
    );
    let mut h = Harness::with(Options::default());
    let caller = Caller::invite("b5", Some(&offer));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let toward_trunk = body(&Message::Request(invite.clone()));
    let video = section(&toward_trunk, "video");
    assert_ne!(port(&video), 0, "{toward_trunk}");
    assert!(!toward_trunk.contains("bundle-only"), "{toward_trunk}");
    let ua = Ua::callee(&invite, callee(), "carrier-b5");
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(TRUNK_AUDIO_VIDEO)));
    let answer = body(&Message::Response(h.response_to(CALLER, 200)));
    assert!(answer.contains("a=group:BUNDLE a1 v1\r\n"), "{answer}");
    assert_eq!(port(&section(&answer, "video")), 20000, "{answer}");
    assert_eq!(last_bundle(&h, Leg::A).unwrap().members.len(), 2);
}
