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

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::sip::{first_line, header, status_code, token};
use common::{Sbc, SbcConfig, free_ports, require_tool};
use media_relay::dtls::{
    DtlsContext, DtlsEndpoint, DtlsEvent, DtlsIdentity, DtlsRole, Fingerprint, HashFunction,
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

fn rtp(seq: u16) -> Vec<u8> {
    let mut packet = vec![0x80, 0];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(160 * u32::from(seq)).to_be_bytes());
    packet.extend_from_slice(&0x0BE0_C0DEu32.to_be_bytes());
    packet.extend((0..160).map(|i| (i as u16 ^ seq) as u8));
    packet
}

#[test]
fn a_webrtc_style_peer_gets_ice_lite_dtls_srtp_and_its_audio_through_a_plain_peer() {
    let config = SbcConfig::new();
    let callee_ip = config.net.host(2);
    let peer_ip = config.net.host(3);
    let [callee_port, echo_port] = free_ports(callee_ip);
    let sbc = Sbc::start(config.with_peer(SocketAddr::new(callee_ip, callee_port)));
    let sbc_sip = sbc.config.sip_address();
    let mut uas = Command::new(require_tool("sipp"))
        .arg("-sf")
        .arg(common::repo_root().join("tests/scenarios/uas_echo.xml"))
        .args(["-i", &callee_ip.to_string(), "-p", &callee_port.to_string()])
        .args(["-mi", &callee_ip.to_string(), "-mp", &echo_port.to_string()])
        .args(["-rtp_echo", "-m", "1", "-timeout", "40s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp uas starts");
    thread::sleep(Duration::from_millis(300));

    let identity = DtlsIdentity::generate().unwrap();
    let our_fingerprint = identity.fingerprint().hex();
    let context = DtlsContext::new(identity).unwrap();
    let signalling = UdpSocket::bind((peer_ip, 0)).unwrap();
    let media = UdpSocket::bind((peer_ip, 0)).unwrap();
    let local = signalling.local_addr().unwrap();

    // INVITE, and the SBC's 200 with its answer.
    let sdp = offer(peer_ip, &our_fingerprint);
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
            Some(code) if code >= 300 => panic!("{}\n{}", first_line(&message), sbc.log_tail()),
            _ => {}
        }
    };
    let to = header(&ok, "To").unwrap().to_owned();
    let ack = format!(
        "ACK sip:callee@{sbc_sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{}\r\n\
Max-Forwards: 70\r\nFrom: <sip:browser@{peer_ip}>;tag={from_tag}\r\nTo: {to}\r\n\
Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        token()
    );
    signalling.send_to(ack.as_bytes(), sbc_sip).unwrap();

    let answer = body(&ok);
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
    let ufrag = attribute(answer, "ice-ufrag").unwrap();
    let pwd = attribute(answer, "ice-pwd").unwrap();
    let candidate: Vec<&str> = attribute(answer, "candidate").unwrap().split(' ').collect();
    let relay: SocketAddr = format!("{}:{}", candidate[4], candidate[5])
        .parse()
        .unwrap();
    assert_eq!(relay.ip(), sbc.config.ip);
    let fingerprint = attribute(answer, "fingerprint").unwrap();
    let (hash, hex) = fingerprint.split_once(' ').unwrap();
    let sbc_fingerprint = Fingerprint {
        hash: HashFunction::from_name(hash).unwrap(),
        digest: hex
            .split(':')
            .map(|pair| u8::from_str_radix(pair, 16).unwrap())
            .collect(),
    };

    // ICE: a check with the SBC's credentials is answered with our address.
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

    // DTLS: we are the client (the SBC answered passive), the SBC's certificate must have
    // the fingerprint of its SDP.
    let mut endpoint = DtlsEndpoint::new(&context, DtlsRole::Client, sbc_fingerprint).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let keys = loop {
        assert!(
            Instant::now() < deadline,
            "no DTLS outcome\n{}",
            sbc.log_tail()
        );
        while let Some(record) = endpoint.poll_transmit() {
            media.send_to(&record, relay).unwrap();
        }
        match endpoint.poll_event() {
            Some(DtlsEvent::Connected(keys)) => break keys,
            Some(DtlsEvent::Failed(error)) => panic!("DTLS failed: {error}"),
            None => {}
        }
        match media.recv_from(&mut buf) {
            Ok((len, _)) if (20..=63).contains(&buf[0]) => endpoint.handle_datagram(&buf[..len]),
            Ok(_) => {}
            Err(_) => endpoint.handle_timeout(),
        }
    };

    // SRTP out, plain to SIPp, echoed, SRTP back.
    let mut sender = SrtpSender::new(&SrtpPolicy::new(keys.suite, keys.send.clone())).unwrap();
    let mut receiver =
        SrtpReceiver::new(&SrtpPolicy::new(keys.suite, keys.receive.clone())).unwrap();
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

    let bye = format!(
        "BYE sip:callee@{sbc_sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{}\r\n\
Max-Forwards: 70\r\nFrom: <sip:browser@{peer_ip}>;tag={from_tag}\r\nTo: {to}\r\n\
Call-ID: {call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        token()
    );
    signalling.send_to(bye.as_bytes(), sbc_sip).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while uas.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = uas.kill();
            panic!("SIPp did not see the BYE\n{}", sbc.log_tail());
        }
        thread::sleep(Duration::from_millis(50));
    }
}
