//! A WebRTC-style peer calls a plain-RTP SIPp UAS through the `sbc` binary, the way a
//! WebRTC gateway's browser leg does: its offer is `UDP/TLS/RTP/SAVPF` with a fingerprint,
//! `a=setup:actpass`, ICE credentials, rtcp-mux and BUNDLE, and a `c=0.0.0.0` port 9
//! placeholder (the SBC learns the address only from the peer's ICE checks).
//!
//! The SBC must answer ICE-lite (its credentials, a host candidate, `a=ice-lite`), with its
//! fingerprint, `a=setup:passive`, rtcp-mux, the mid and the bundle. The peer then sends an
//! ICE check (STUN, MESSAGE-INTEGRITY with the SBC's password) to the candidate and gets a
//! success response naming its address; runs the DTLS handshake as client against the
//! fingerprint of the SBC's SDP; and sends SRTP with the exported keys. SIPp echoes the
//! plain RTP it gets, and the peer decrypts the echo: its payloads come back unchanged.
//! The peer's ICE, DTLS and SRTP code here is the relay crate's (the STUN request is built
//! by hand, HMAC from OpenSSL); what is under test is the binary end to end.
//!
//! The second test bundles audio and video on one transport (RFC 8843), as browsers do:
//! the SBC answers one port for both, SIPp gets a port per stream (its `-rtp_echo` echoes
//! audio on `-mp` and video on `-mp` + 2), and what comes back on the one transport is
//! each stream's own media: the relay told the browser's audio and video apart (the video
//! by its announced `a=ssrc`, the audio by the payload type only it uses) and sent each to
//! its own SIPp port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::sip::{first_line, header, status_code, token};
use common::{Sbc, SbcConfig, free_ports, require_tool};
use media_relay::dtls::{
    DtlsContext, DtlsEndpoint, DtlsEvent, DtlsIdentity, DtlsRole, DtlsSrtpKeys, Fingerprint,
    HashFunction,
};
use media_relay::srtp::{SrtpPolicy, SrtpReceiver, SrtpSender};

fn offer(ip: IpAddr, fingerprint: &str) -> String {
    format!(
        "v=0\r\no=- 46117 2 IN IP4 {ip}\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
a=fingerprint:sha-256 {fingerprint}\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:peerfrag\r\na=ice-pwd:peer-password-1234567890\r\na=ice-options:trickle\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:0 PCMU/8000\r\n"
    )
}

/// The value of the first `a=<name>:` line.
fn attribute<'s>(sdp: &'s str, name: &str) -> Option<&'s str> {
    let prefix = format!("a={name}:");
    sdp.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
}

fn body(message: &str) -> &str {
    message.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// A STUN binding request with USERNAME, USE-CANDIDATE and MESSAGE-INTEGRITY.
fn binding_request(username: &str, password: &str) -> Vec<u8> {
    let mut m = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42];
    m.extend_from_slice(b"webrtc-check");
    let attribute = |m: &mut Vec<u8>, kind: u16, value: &[u8]| {
        m.extend_from_slice(&kind.to_be_bytes());
        m.extend_from_slice(&(value.len() as u16).to_be_bytes());
        m.extend_from_slice(value);
        while !m.len().is_multiple_of(4) {
            m.push(0);
        }
    };
    attribute(&mut m, 0x0006, username.as_bytes());
    attribute(&mut m, 0x0025, &[]);
    let length = (m.len() + 24 - 20) as u16;
    m[2..4].copy_from_slice(&length.to_be_bytes());
    let key = openssl::pkey::PKey::hmac(password.as_bytes()).unwrap();
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha1(), &key).unwrap();
    signer.update(&m).unwrap();
    let tag = signer.sign_to_vec().unwrap();
    attribute(&mut m, 0x0008, &tag);
    m
}

const AUDIO_SSRC: u32 = 0x0BE0_C0DE;
const VIDEO_SSRC: u32 = 0x71DE_0001;

fn rtp(seq: u16) -> Vec<u8> {
    media_packet(0, AUDIO_SSRC, seq, 160)
}

/// An RTP packet of `ssrc` whose payload depends on the SSRC and sequence number.
fn media_packet(payload_type: u8, ssrc: u32, seq: u16, len: usize) -> Vec<u8> {
    let mut packet = vec![0x80, payload_type];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(160 * u32::from(seq)).to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend((0..len).map(|i| (i as u32 ^ u32::from(seq) ^ ssrc) as u8));
    packet
}

/// An audio and a video section bundled on one transport, the video's source announced.
fn bundled_offer(ip: IpAddr, fingerprint: &str) -> String {
    format!(
        "v=0\r\no=- 46118 2 IN IP4 {ip}\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
a=fingerprint:sha-256 {fingerprint}\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:peerfrag\r\na=ice-pwd:peer-password-1234567890\r\na=ice-options:trickle\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:peerfrag\r\na=ice-pwd:peer-password-1234567890\r\na=ice-options:trickle\r\n\
a=setup:actpass\r\na=mid:1\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n\
a=ssrc:{VIDEO_SSRC} cname:peer-video\r\n"
    )
}

/// The media sections of an SDP body, each as its lines.
fn sections(sdp: &str) -> Vec<Vec<&str>> {
    let mut sections: Vec<Vec<&str>> = Vec::new();
    for line in sdp.lines() {
        if line.starts_with("m=") {
            sections.push(vec![line]);
        } else if let Some(section) = sections.last_mut() {
            section.push(line);
        }
    }
    sections
}

fn start_uas(scenario: &str, ip: IpAddr, port: u16, echo_port: u16) -> Child {
    let uas = Command::new(require_tool("sipp"))
        .arg("-sf")
        .arg(common::repo_root().join("tests/scenarios").join(scenario))
        .args(["-i", &ip.to_string(), "-p", &port.to_string()])
        .args(["-mi", &ip.to_string(), "-mp", &echo_port.to_string()])
        .args(["-rtp_echo", "-m", "1", "-timeout", "40s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp uas starts");
    thread::sleep(Duration::from_millis(300));
    uas
}

/// The browser's dialog with the SBC.
struct Dialog {
    signalling: UdpSocket,
    sbc_sip: SocketAddr,
    peer_ip: IpAddr,
    call_id: String,
    from_tag: String,
    to: String,
}

impl Dialog {
    /// Sends an INVITE with `sdp`, waits for the 200 and acknowledges it; returns the
    /// dialog and the SBC's answer.
    fn invite(sbc: &Sbc, peer_ip: IpAddr, sdp: &str) -> (Dialog, String) {
        let sbc_sip = sbc.config.sip_address();
        let signalling = UdpSocket::bind((peer_ip, 0)).unwrap();
        let local = signalling.local_addr().unwrap();
        let (call_id, from_tag, branch) = (token(), token(), token());
        let invite = format!(
            "INVITE sip:callee@{sbc_sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:browser@{peer_ip}>;tag={from_tag}\r\nTo: <sip:callee@{sbc_sip}>\r\n\
Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:browser@{local}>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        signalling.send_to(invite.as_bytes(), sbc_sip).unwrap();
        signalling
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let ok = loop {
            assert!(Instant::now() < deadline, "no 200 OK\n{}", sbc.log_tail());
            let mut buf = vec![0u8; 65_536];
            let Ok(len) = signalling.recv(&mut buf) else {
                continue;
            };
            let message = String::from_utf8_lossy(&buf[..len]).into_owned();
            match status_code(&message) {
                Some(200) => break message,
                Some(code) if code >= 300 => {
                    panic!("{}\n{}", first_line(&message), sbc.log_tail())
                }
                _ => {}
            }
        };
        let dialog = Dialog {
            signalling,
            sbc_sip,
            peer_ip,
            call_id,
            from_tag,
            to: header(&ok, "To").unwrap().to_owned(),
        };
        dialog.request("ACK", 1);
        (dialog, body(&ok).to_owned())
    }

    fn request(&self, method: &str, cseq: u32) {
        let Dialog {
            sbc_sip,
            peer_ip,
            call_id,
            from_tag,
            to,
            ..
        } = self;
        let local = self.signalling.local_addr().unwrap();
        let request = format!(
            "{method} sip:callee@{sbc_sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{}\r\n\
Max-Forwards: 70\r\nFrom: <sip:browser@{peer_ip}>;tag={from_tag}\r\nTo: {to}\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            token()
        );
        self.signalling
            .send_to(request.as_bytes(), *sbc_sip)
            .unwrap();
    }

    /// Ends the call and waits for SIPp to have seen the BYE.
    fn hang_up(&self, sbc: &Sbc, mut uas: Child) {
        self.request("BYE", 2);
        let deadline = Instant::now() + Duration::from_secs(10);
        while uas.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = uas.kill();
                panic!("SIPp did not see the BYE\n{}", sbc.log_tail());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The relay's candidate in `answer`, after checking the SBC's ICE-lite side: a check with
/// its credentials is answered with our address, a wrong password is not.
fn ice_check(sbc: &Sbc, media: &UdpSocket, answer: &str) -> SocketAddr {
    let ufrag = attribute(answer, "ice-ufrag").unwrap();
    let pwd = attribute(answer, "ice-pwd").unwrap();
    let candidate: Vec<&str> = attribute(answer, "candidate").unwrap().split(' ').collect();
    let relay: SocketAddr = format!("{}:{}", candidate[4], candidate[5])
        .parse()
        .unwrap();
    assert_eq!(relay.ip(), sbc.config.ip);
    media
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let check = binding_request(&format!("{ufrag}:peerfrag"), pwd);
    let mut buf = [0u8; 2048];
    let mut answered = None;
    for _ in 0..10 {
        media.send_to(&check, relay).unwrap();
        if let Ok((len, from)) = media.recv_from(&mut buf) {
            answered = Some((buf[..len].to_vec(), from));
            break;
        }
    }
    let (response, from) = answered.expect("the SBC answers the ICE check");
    assert_eq!(from, relay);
    assert_eq!(&response[..2], &[0x01, 0x01], "a binding success response");
    assert_eq!(&response[8..20], b"webrtc-check");
    let port = u16::from_be_bytes([response[26], response[27]]) ^ 0x2112;
    assert_eq!(
        port,
        media.local_addr().unwrap().port(),
        "XOR-MAPPED-ADDRESS"
    );
    let wrong = binding_request(&format!("{ufrag}:peerfrag"), "not-the-password");
    media.send_to(&wrong, relay).unwrap();
    relay
}

/// The DTLS handshake as client (the SBC answered passive): the SBC's certificate must
/// have the fingerprint of its SDP. Returns the exported SRTP keys.
fn dtls_handshake(
    sbc: &Sbc,
    media: &UdpSocket,
    relay: SocketAddr,
    context: &DtlsContext,
    answer: &str,
) -> DtlsSrtpKeys {
    let fingerprint = attribute(answer, "fingerprint").unwrap();
    let (hash, hex) = fingerprint.split_once(' ').unwrap();
    let sbc_fingerprint = Fingerprint {
        hash: HashFunction::from_name(hash).unwrap(),
        digest: hex
            .split(':')
            .map(|pair| u8::from_str_radix(pair, 16).unwrap())
            .collect(),
    };
    let mut endpoint = DtlsEndpoint::new(context, DtlsRole::Client, sbc_fingerprint).unwrap();
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            Instant::now() < deadline,
            "no DTLS outcome\n{}",
            sbc.log_tail()
        );
        while let Some(record) = endpoint.poll_transmit() {
            media.send_to(&record, relay).unwrap();
        }
        match endpoint.poll_event() {
            Some(DtlsEvent::Connected(keys)) => return keys,
            Some(DtlsEvent::Failed(error)) => panic!("DTLS failed: {error}"),
            None => {}
        }
        match media.recv_from(&mut buf) {
            Ok((len, _)) if (20..=63).contains(&buf[0]) => endpoint.handle_datagram(&buf[..len]),
            Ok(_) => {}
            Err(_) => endpoint.handle_timeout(),
        }
    }
}

#[test]
fn a_webrtc_style_peer_gets_ice_lite_dtls_srtp_and_its_audio_through_a_plain_peer() {
    let config = SbcConfig::new();
    let callee_ip = config.net.host(2);
    let peer_ip = config.net.host(3);
    let [callee_port, echo_port] = free_ports(callee_ip);
    let sbc = Sbc::start(config.with_peer(SocketAddr::new(callee_ip, callee_port)));
    let uas = start_uas("uas_echo.xml", callee_ip, callee_port, echo_port);

    let identity = DtlsIdentity::generate().unwrap();
    let our_fingerprint = identity.fingerprint().hex();
    let context = DtlsContext::new(identity).unwrap();
    let media = UdpSocket::bind((peer_ip, 0)).unwrap();

    // INVITE, and the SBC's 200 with its answer.
    let (dialog, answer) = Dialog::invite(&sbc, peer_ip, &offer(peer_ip, &our_fingerprint));
    let answer = answer.as_str();
    assert!(answer.contains("m=audio "), "{answer}");
    assert!(answer.contains(" UDP/TLS/RTP/SAVPF 0"), "{answer}");
    for needed in [
        "a=ice-lite\r\n",
        "a=setup:passive\r\n",
        "a=rtcp-mux\r\n",
        "a=mid:0\r\n",
    ] {
        assert!(answer.contains(needed), "{needed:?} missing: {answer}");
    }
    assert!(answer.contains("a=group:BUNDLE 0\r\n"), "{answer}");
    assert!(
        !answer.contains(&our_fingerprint),
        "our fingerprint stays ours: {answer}"
    );

    // ICE, then DTLS against the fingerprint of the SBC's SDP.
    let relay = ice_check(&sbc, &media, answer);
    let keys = dtls_handshake(&sbc, &media, relay, &context, answer);

    // SRTP out, plain to SIPp, echoed, SRTP back.
    let mut sender = SrtpSender::new(&SrtpPolicy::new(keys.suite, keys.send.clone())).unwrap();
    let mut receiver =
        SrtpReceiver::new(&SrtpPolicy::new(keys.suite, keys.receive.clone())).unwrap();
    let mut buf = [0u8; 2048];
    let mut echoed = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    for seq in 0..50u16 {
        let packet = rtp(seq);
        let mut out = packet.clone();
        out.resize(packet.len() + 64, 0);
        let len = sender.protect_rtp(&mut out, packet.len()).unwrap();
        media.send_to(&out[..len], relay).unwrap();
        while let Ok((len, _)) = media.recv_from(&mut buf) {
            if buf[0] >> 6 != 2 {
                continue;
            }
            let plain = receiver
                .unprotect_rtp(&mut buf, len)
                .expect("the echo decrypts");
            let seq = u16::from_be_bytes([buf[2], buf[3]]);
            assert_eq!(
                &buf[12..plain],
                &rtp(seq)[12..],
                "the payload came back unchanged"
            );
            echoed += 1;
            if echoed >= 5 {
                break;
            }
        }
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        echoed >= 5,
        "{echoed} packets came back\n{}",
        sbc.log_tail()
    );

    // The call in progress names the DTLS-SRTP profile the handshake chose.
    let calls = sbc.admin().get("/calls");
    assert_eq!(calls.status, 200, "{}", calls.body);
    let media = &calls.json()["items"][0]["security"]["a"]["media"];
    assert_eq!(media["protection"], "dtls_srtp", "{}", calls.body);
    assert_eq!(
        media["suite"],
        keys.suite.openssl_profile_name().unwrap(),
        "{}",
        calls.body
    );
    assert_eq!(
        calls.json()["items"][0]["security"]["b"]["media"]["protection"],
        "plain"
    );

    dialog.hang_up(&sbc, uas);
}

#[test]
fn a_browser_bundling_audio_and_video_on_one_port_reaches_a_sip_peer_with_a_port_each() {
    let config = SbcConfig::new();
    let callee_ip = config.net.host(2);
    let peer_ip = config.net.host(3);
    // SIPp echoes audio on the -mp port and video on the one two above it.
    let [callee_port, echo_port] = free_ports(callee_ip);
    let sbc = Sbc::start(config.with_peer(SocketAddr::new(callee_ip, callee_port)));
    let uas = start_uas("uas_echo_av.xml", callee_ip, callee_port, echo_port);

    let identity = DtlsIdentity::generate().unwrap();
    let context = DtlsContext::new(identity.clone()).unwrap();
    let media = UdpSocket::bind((peer_ip, 0)).unwrap();
    let offer = bundled_offer(peer_ip, &identity.fingerprint().hex());
    let (dialog, answer) = Dialog::invite(&sbc, peer_ip, &offer);

    // One group, one port; the transport's attributes in the tagged (audio) section only.
    assert!(answer.contains("a=group:BUNDLE 0 1\r\n"), "{answer}");
    let sections = sections(&answer);
    assert_eq!(sections.len(), 2, "{answer}");
    let port = |section: &[&str]| section[0].split(' ').nth(1).unwrap().to_owned();
    assert_eq!(port(&sections[0]), port(&sections[1]), "{answer}");
    assert_ne!(port(&sections[0]), "0", "{answer}");
    assert!(sections[1][0].contains(" UDP/TLS/RTP/SAVPF 96"), "{answer}");
    assert!(sections[1].contains(&"a=mid:1"), "{answer}");
    for transport in ["a=candidate:", "a=fingerprint:", "a=ice-ufrag:", "a=setup:"] {
        assert!(
            sections[0].iter().any(|l| l.starts_with(transport)),
            "{transport} in the tagged section: {answer}"
        );
        assert!(
            !sections[1].iter().any(|l| l.starts_with(transport)),
            "no {transport} in the bundled video: {answer}"
        );
    }

    let relay = ice_check(&sbc, &media, &answer);
    let keys = dtls_handshake(&sbc, &media, relay, &context, &answer);

    // Audio and video interleaved on the one transport; SIPp echoes each on its own port,
    // and both come back here, each as it was sent.
    let mut sender = SrtpSender::new(&SrtpPolicy::new(keys.suite, keys.send.clone())).unwrap();
    let mut receiver =
        SrtpReceiver::new(&SrtpPolicy::new(keys.suite, keys.receive.clone())).unwrap();
    let video = |seq: u16| media_packet(96, VIDEO_SSRC, seq, 600);
    let mut buf = [0u8; 2048];
    let (mut audio_back, mut video_back) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    for seq in 0..60u16 {
        for packet in [rtp(seq), video(seq)] {
            let mut out = packet.clone();
            out.resize(packet.len() + 64, 0);
            let len = sender.protect_rtp(&mut out, packet.len()).unwrap();
            media.send_to(&out[..len], relay).unwrap();
        }
        while let Ok((len, from)) = media.recv_from(&mut buf) {
            if buf[0] >> 6 != 2 {
                continue;
            }
            assert_eq!(from, relay, "everything comes back on the one transport");
            let plain = receiver
                .unprotect_rtp(&mut buf, len)
                .expect("the echo decrypts");
            let seq = u16::from_be_bytes([buf[2], buf[3]]);
            let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
            let sent = match ssrc {
                AUDIO_SSRC => {
                    audio_back += 1;
                    rtp(seq)
                }
                VIDEO_SSRC => {
                    video_back += 1;
                    video(seq)
                }
                other => panic!("an echo of SSRC {other:#x} we never sent"),
            };
            assert_eq!(&buf[..plain], &sent[..], "came back as it was sent");
            if audio_back >= 5 && video_back >= 5 {
                break;
            }
        }
        if audio_back >= 5 && video_back >= 5 {
            break;
        }
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        audio_back >= 5 && video_back >= 5,
        "{audio_back} audio and {video_back} video packets came back\n{}",
        sbc.log_tail()
    );

    // Each stream went to its own SIPp port, and came back from there: toward SIPp the
    // audio stream carried only audio-sized packets (plain RTP, 172 bytes), the video's
    // only video-sized ones (612).
    let calls = sbc.admin().get("/calls");
    assert_eq!(calls.status, 200, "{}", calls.body);
    let streams = calls.json()["items"][0]["media"]["stats"]["streams"].clone();
    let count = |stream: usize, leg: &str, name: &str| {
        streams[stream][leg][name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} of {leg}{stream}: {}", calls.body))
    };
    for (stream, size) in [(0, 172), (1, 612)] {
        let sent = count(stream, "b", "packets_sent");
        assert!(sent >= 5, "stream {stream}: {}", calls.body);
        assert_eq!(
            count(stream, "b", "bytes_sent"),
            size * sent,
            "{}",
            calls.body
        );
        assert!(
            count(stream, "b", "packets_received") >= 5,
            "{}",
            calls.body
        );
    }
    // The browser's video came on the audio's transport, none on the video's own port.
    assert_eq!(count(1, "a", "packets_received"), 0, "{}", calls.body);
    assert!(count(0, "a", "packets_received") >= 10, "{}", calls.body);
    dialog.hang_up(&sbc, uas);
}
