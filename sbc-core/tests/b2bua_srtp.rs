//! Media security negotiation through the B2BUA on a virtual clock: each leg answered in
//! its own profile (SDES-SRTP, DTLS-SRTP with ICE-lite, plain RTP), keys that never cross
//! from one leg to the other, the relay told each leg's keys, policies that refuse (488),
//! and re-INVITEs that keep or renew keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod b2bua_support;

use b2bua_support::*;
use sbc_core::media::Leg;
use sbc_core::media::security::{DtlsRole, LegProtection, MediaPolicy, Requirement, SrtpSuite};

/// 30 bytes of key material, base64 (AES_CM_128 key and salt): the caller's key.
const CALLER_KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
const CALLER_KEY_2: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk";

fn sdes_offer(key: &str) -> String {
    format!(
        "v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
m=audio 49170 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=cryptex\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:encrypt urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:2 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{key}|2^20|1:4\r\n\
a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n"
    )
}

fn webrtc_offer() -> String {
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\na=fingerprint:sha-256 \
19:E2:1C:3B:4B:9F:81:E6:B8:5C:F4:A5:A8:D8:73:04:BB:05:2F:70:9F:04:A9:0E:05:E9:26:33:E8:70:88:A2\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:EsAw\r\na=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\na=ice-options:trickle\r\n\
a=candidate:1 1 udp 2122260223 192.0.2.33 54321 typ host\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
        .into()
}

fn sdes_answer(tag: u32, suite: &str, key: &str) -> String {
    format!(
        "v=0\r\no=bob 7 7 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\nt=0 0\r\n\
m=audio 39876 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
a=crypto:{tag} {suite} inline:{key}\r\n"
    )
}

fn policy(sdes: Requirement, dtls: Requirement) -> MediaPolicy {
    MediaPolicy {
        sdes,
        dtls,
        // The harness signals over UDP.
        sdes_over_insecure_signalling: true,
        ..MediaPolicy::default()
    }
}

fn harness(caller: MediaPolicy, callee: MediaPolicy) -> Harness {
    Harness::with(Options {
        caller_media: caller,
        callee_media: callee,
        ..Options::default()
    })
}

fn body(message: &sbc_core::sip::Message) -> String {
    String::from_utf8(message.body().to_vec()).unwrap()
}

/// The last protection the relay was told for `leg` of stream 0.
fn protection(h: &Harness, leg: Leg) -> Option<sbc_core::media::security::LegSecurity> {
    h.media()
        .protected
        .iter()
        .rev()
        .find(|(_, stream, l, _)| *stream == 0 && *l == leg)
        .map(|(_, _, _, security)| security.clone())
}

#[test]
fn an_sdes_caller_gets_an_srtp_answer_while_the_carrier_gets_plain_rtp() {
    let mut h = harness(
        policy(Requirement::Allow, Requirement::Allow),
        MediaPolicy::default(),
    );
    let mut caller = Caller::invite("s1", Some(&sdes_offer(CALLER_KEY)));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let offer = body(&sbc_core::sip::Message::Request(invite.clone()));
    assert!(offer.contains("m=audio 20000 RTP/AVP 0\r\n"), "{offer}");
    assert!(!offer.contains("crypto"), "no key crosses: {offer}");
    assert!(!offer.contains(CALLER_KEY));
    assert!(
        !offer.contains("cryptex") && !offer.contains("hdrext:encrypt"),
        "{offer}"
    );
    assert!(
        offer.contains("a=extmap:2 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"),
        "{offer}"
    );

    let ua = Ua::callee(&invite, callee(), "bob-s1");
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(&callee_sdp())));
    let ok = h.response_to(CALLER, 200);
    let answer = body(&sbc_core::sip::Message::Response(ok.clone()));
    // The caller's first acceptable line (tag 1, the 32-bit suite) with our own key.
    assert!(answer.contains("m=audio 20000 RTP/SAVP 0\r\n"), "{answer}");
    let crypto: Vec<&str> = answer
        .lines()
        .filter(|l| l.starts_with("a=crypto:"))
        .collect();
    assert_eq!(crypto.len(), 1, "{answer}");
    assert!(crypto[0].starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:"));
    assert!(!crypto[0].contains(CALLER_KEY));
    assert!(!answer.contains("|1:4"), "our key carries no MKI");

    // The relay: leg A decrypts with the caller's key (its MKI and lifetime) and encrypts
    // with ours; leg B is plain.
    let Some(LegProtection::Sdes {
        suite,
        send,
        receive,
        ..
    }) = protection(&h, Leg::A).map(|s| s.protection)
    else {
        panic!("leg A is SDES");
    };
    assert_eq!(suite, SrtpSuite::AesCm128HmacSha1_32);
    assert_eq!(receive.len(), 1);
    assert_eq!(receive[0].mki.as_deref(), Some(&[0, 0, 0, 1][..]));
    assert_eq!(receive[0].lifetime, Some(1 << 20));
    assert_eq!(send.len(), 1);
    assert_ne!(send[0].key_salt, receive[0].key_salt);
    assert!(protection(&h, Leg::B).is_none(), "plain needs no call");

    caller.answered(&ok);
    h.receive_message(self::caller(), &caller.ack(None));
}

#[test]
fn sdes_keys_are_not_answered_over_plain_signalling_unless_allowed() {
    let mut h = harness(MediaPolicy::default(), MediaPolicy::default());
    let caller = Caller::invite("s2", Some(&sdes_offer(CALLER_KEY)));
    h.receive_message(self::caller(), &caller.message());
    h.response_to(CALLER, 488);
    h.nothing_to(CALLEE);
}

#[test]
fn policies_refuse_what_they_forbid_or_do_not_get_what_they_require() {
    let cases = [
        // A plain offer where SRTP is required.
        (
            policy(Requirement::Require, Requirement::Allow),
            caller_sdp(),
        ),
        // SDES where it is forbidden.
        (
            policy(Requirement::Forbid, Requirement::Allow),
            sdes_offer(CALLER_KEY),
        ),
        // DTLS where it is forbidden.
        (
            policy(Requirement::Allow, Requirement::Forbid),
            webrtc_offer(),
        ),
    ];
    for (n, (caller_policy, offer)) in cases.into_iter().enumerate() {
        let mut h = harness(caller_policy, MediaPolicy::default());
        let caller = Caller::invite(&format!("s3-{n}"), Some(&offer));
        h.receive_message(self::caller(), &caller.message());
        h.response_to(CALLER, 488);
        h.nothing_to(CALLEE);
        assert!(h.media().live.is_empty(), "the relay session is released");
    }
}

#[test]
fn a_trunk_that_requires_sdes_gets_an_offer_with_every_suite_and_answers_one() {
    let mut h = harness(
        MediaPolicy::default(),
        policy(Requirement::Require, Requirement::Allow),
    );
    let mut caller = Caller::invite("s4", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let offer = body(&sbc_core::sip::Message::Request(invite.clone()));
    assert!(
        offer.contains("m=audio 20000 RTP/SAVP 0 8 101\r\n"),
        "{offer}"
    );
    let lines: Vec<&str> = offer
        .lines()
        .filter(|l| l.starts_with("a=crypto:"))
        .collect();
    assert_eq!(lines.len(), 4, "{offer}");
    assert!(lines[0].starts_with("a=crypto:1 AEAD_AES_256_GCM inline:"));
    assert!(lines[2].starts_with("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:"));

    let ua = Ua::callee(&invite, callee(), "bob-s4");
    let answer = sdes_answer(3, "AES_CM_128_HMAC_SHA1_80", CALLER_KEY_2);
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(&answer)));
    let ok = h.response_to(CALLER, 200);
    let toward_caller = body(&sbc_core::sip::Message::Response(ok.clone()));
    assert!(toward_caller.contains("RTP/AVP 0"), "{toward_caller}");
    assert!(!toward_caller.contains("crypto"));
    let Some(LegProtection::Sdes {
        suite,
        send,
        receive,
        ..
    }) = protection(&h, Leg::B).map(|s| s.protection)
    else {
        panic!("leg B is SDES");
    };
    assert_eq!(suite, SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!(receive.len(), 1);
    // Our key is the one of the line B chose (the third key made).
    assert_eq!(send[0].key_salt, vec![3u8; 30]);
    caller.answered(&ok);
    h.receive_message(self::caller(), &caller.ack(None));

    // A plain answer to a required SDES offer is refused.
    let mut h = harness(
        MediaPolicy::default(),
        policy(Requirement::Require, Requirement::Allow),
    );
    let caller = Caller::invite("s4b", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let ua = Ua::callee(&invite, callee(), "bob-s4b");
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(&callee_sdp())));
    let ok = h.response_to(CALLER, 200);
    assert!(
        ok.body.is_empty(),
        "no answer leaves for an unacceptable one"
    );
}

#[test]
fn a_webrtc_caller_gets_dtls_srtp_with_ice_lite_and_the_carrier_plain_rtp() {
    let mut h = harness(MediaPolicy::default(), MediaPolicy::default());
    let mut caller = Caller::invite("s5", Some(&webrtc_offer()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let offer = body(&sbc_core::sip::Message::Request(invite.clone()));
    assert!(
        offer.contains("m=audio 20000 RTP/AVPF 111\r\n"),
        "feedback kept: {offer}"
    );
    for gone in ["fingerprint", "setup", "ice-", "candidate"] {
        assert!(!offer.contains(gone), "{gone}: {offer}");
    }
    let ua = Ua::callee(&invite, callee(), "bob-s5");
    let plain = callee_sdp().replace("RTP/AVP 0", "RTP/AVPF 111");
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(&plain)));
    let ok = h.response_to(CALLER, 200);
    let answer = body(&sbc_core::sip::Message::Response(ok.clone()));
    assert!(
        answer.contains("m=audio 20000 UDP/TLS/RTP/SAVPF 111\r\n"),
        "{answer}"
    );
    assert!(answer.contains("a=ice-lite\r\n"), "{answer}");
    assert!(answer.contains("a=ice-ufrag:sbcufrag\r\n"));
    assert!(answer.contains("a=ice-pwd:sbc-ice-password-24chars\r\n"));
    assert!(
        answer.contains("a=candidate:1 1 UDP 2130706431 203.0.113.100 20000 typ host\r\n"),
        "{answer}"
    );
    assert!(
        !answer.contains("192.0.2.33"),
        "the caller's candidates stay on its leg"
    );
    assert!(
        answer.contains("a=setup:passive\r\n"),
        "an ICE peer starts the handshake: {answer}"
    );
    assert!(answer.contains("a=fingerprint:sha-256 AB:AB:"), "{answer}");
    assert!(!answer.contains("19:E2:1C"), "{answer}");
    let security = protection(&h, Leg::A).unwrap();
    assert_eq!(
        security.protection,
        LegProtection::Dtls {
            role: DtlsRole::Server,
            fingerprint: Some(sbc_core::media::security::CertFingerprint {
                hash: "sha-256".into(),
                digest: vec![
                    0x19, 0xE2, 0x1C, 0x3B, 0x4B, 0x9F, 0x81, 0xE6, 0xB8, 0x5C, 0xF4, 0xA5, 0xA8,
                    0xD8, 0x73, 0x04, 0xBB, 0x05, 0x2F, 0x70, 0x9F, 0x04, 0xA9, 0x0E, 0x05, 0xE9,
                    0x26, 0x33, 0xE8, 0x70, 0x88, 0xA2
                ],
            }),
        }
    );
    assert_eq!(security.ice.unwrap().remote_ufrag, "EsAw");
    caller.answered(&ok);
    h.receive_message(self::caller(), &caller.ack(None));
}

#[test]
fn a_trunk_that_prefers_dtls_gets_actpass_and_its_role_is_taken_from_the_answer() {
    let mut h = harness(
        MediaPolicy::default(),
        policy(Requirement::Allow, Requirement::Prefer),
    );
    let caller = Caller::invite("s6", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let offer = body(&sbc_core::sip::Message::Request(invite.clone()));
    assert!(offer.contains("UDP/TLS/RTP/SAVP 0 8 101"), "{offer}");
    assert!(offer.contains("a=setup:actpass\r\n"));
    assert!(offer.contains("a=fingerprint:sha-256 AB:"));
    let answer = "v=0\r\no=bob 7 7 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\nt=0 0\r\n\
m=audio 39876 UDP/TLS/RTP/SAVP 0\r\na=setup:active\r\n\
a=fingerprint:sha-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB\r\n";
    let ua = Ua::callee(&invite, callee(), "bob-s6");
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(answer)));
    let ok = h.response_to(CALLER, 200);
    assert!(body(&sbc_core::sip::Message::Response(ok)).contains("RTP/AVP 0"));
    let Some(LegProtection::Dtls { role, fingerprint }) =
        protection(&h, Leg::B).map(|s| s.protection)
    else {
        panic!("leg B is DTLS");
    };
    assert_eq!(role, DtlsRole::Server, "the callee is active");
    assert_eq!(fingerprint.unwrap().hash, "sha-1");
}

#[test]
fn a_re_invite_with_the_same_key_keeps_ours_and_a_new_key_renews_it() {
    let mut h = harness(
        policy(Requirement::Allow, Requirement::Allow),
        MediaPolicy::default(),
    );
    let mut caller = Caller::invite("s7", Some(&sdes_offer(CALLER_KEY)));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let mut ua = Ua::callee(&invite, callee(), "bob-s7");
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(&callee_sdp())));
    let ok = h.response_to(CALLER, 200);
    let first_answer = body(&sbc_core::sip::Message::Response(ok.clone()));
    caller.answered(&ok);
    h.receive_message(self::caller(), &caller.ack(None));
    let _ = h.request_to(CALLEE, "ACK");
    let calls_before = h.media().protected.len();

    // Same key (new o= version): same answer key, nothing new for the relay.
    let same = sdes_offer(CALLER_KEY).replace("o=alice 1 1", "o=alice 1 2");
    h.receive_message(self::caller(), &caller.request("INVITE", Some(&same)));
    let reinvite = h.request_to(CALLEE, "INVITE");
    h.receive_message(callee(), &ua.respond(&reinvite, 200, Some(&callee_sdp())));
    let ok = h.response_to(CALLER, 200);
    let again = body(&sbc_core::sip::Message::Response(ok));
    let key_line = |sdp: &str| {
        sdp.lines()
            .find(|l| l.starts_with("a=crypto"))
            .unwrap()
            .to_string()
    };
    assert_eq!(key_line(&again), key_line(&first_answer));
    assert_eq!(h.media().protected.len(), calls_before);
    h.receive_message(self::caller(), &caller.ack(None));
    let _ = h.request_to(CALLEE, "ACK");

    // A new key from the caller: we re-key too.
    let renewed = sdes_offer(CALLER_KEY_2).replace("o=alice 1 1", "o=alice 1 3");
    h.receive_message(self::caller(), &caller.request("INVITE", Some(&renewed)));
    let reinvite = h.request_to(CALLEE, "INVITE");
    h.receive_message(callee(), &ua.respond(&reinvite, 200, Some(&callee_sdp())));
    let ok = h.response_to(CALLER, 200);
    let third = body(&sbc_core::sip::Message::Response(ok));
    assert_ne!(key_line(&third), key_line(&first_answer));
    assert!(h.media().protected.len() > calls_before);
    let _ = &mut ua;
}

#[test]
fn an_early_answer_and_the_same_answer_in_the_2xx_give_the_caller_one_answer() {
    let mut h = harness(
        policy(Requirement::Allow, Requirement::Allow),
        MediaPolicy::default(),
    );
    let mut caller = Caller::invite("s8", Some(&sdes_offer(CALLER_KEY)));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let ua = Ua::callee(&invite, callee(), "bob-s8");
    h.receive_message(callee(), &ua.respond(&invite, 183, Some(&callee_sdp())));
    let early = h.response_to(CALLER, 183);
    let early = body(&sbc_core::sip::Message::Response(early));
    assert!(early.contains("RTP/SAVP"), "{early}");
    let protected_once = h.media().protected.len();
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(&callee_sdp())));
    let ok = h.response_to(CALLER, 200);
    let answer = body(&sbc_core::sip::Message::Response(ok.clone()));
    assert_eq!(answer, early, "the 2xx repeats the early answer");
    assert_eq!(
        h.media().protected.len(),
        protected_once,
        "nothing re-keyed"
    );
    caller.answered(&ok);
    h.receive_message(self::caller(), &caller.ack(None));
}

#[test]
fn an_offer_in_the_callees_2xx_is_answered_by_the_callers_ack() {
    let mut h = harness(
        policy(Requirement::Prefer, Requirement::Allow),
        MediaPolicy::default(),
    );
    let mut caller = Caller::invite("s9", None);
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let ua = Ua::callee(&invite, callee(), "bob-s9");
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(&callee_sdp())));
    let ok = h.response_to(CALLER, 200);
    let offer = body(&sbc_core::sip::Message::Response(ok.clone()));
    // The caller's side prefers SDES: the SBC's offer to it carries every suite,
    // best-effort (RTP/AVP, so that a phone without SRTP can still answer plain).
    assert!(offer.contains("m=audio 20000 RTP/AVP 0"), "{offer}");
    assert_eq!(offer.matches("a=crypto:").count(), 4, "{offer}");
    caller.answered(&ok);
    let answer = sdes_answer(4, "AES_CM_128_HMAC_SHA1_32", CALLER_KEY)
        .replace(
            "o=bob 7 7 IN IP4 198.51.100.20",
            "o=alice 1 1 IN IP4 192.0.2.10",
        )
        .replace("198.51.100.20", "192.0.2.10");
    h.receive_message(self::caller(), &caller.ack(Some(&answer)));
    let ack = h.request_to(CALLEE, "ACK");
    let toward_callee = body(&sbc_core::sip::Message::Request(ack));
    assert!(toward_callee.contains("RTP/AVP 0") && !toward_callee.contains("crypto"));
    let Some(LegProtection::Sdes { suite, receive, .. }) =
        protection(&h, Leg::A).map(|s| s.protection)
    else {
        panic!("leg A is SDES");
    };
    assert_eq!(suite, SrtpSuite::AesCm128HmacSha1_32);
    assert_eq!(receive.len(), 1);
}

#[test]
fn best_effort_srtp_offers_get_srtp_when_sdes_is_usable_and_plain_otherwise() {
    let best_effort = sdes_offer(CALLER_KEY).replace("RTP/SAVP", "RTP/AVP");
    // Over plain signalling without the allowance: answered plain, the call goes on.
    let mut h = harness(MediaPolicy::default(), MediaPolicy::default());
    let caller = Caller::invite("s11", Some(&best_effort));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let ua = Ua::callee(&invite, callee(), "bob-s11");
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(&callee_sdp())));
    let answer = body(&sbc_core::sip::Message::Response(
        h.response_to(CALLER, 200),
    ));
    assert!(
        answer.contains("RTP/AVP 0") && !answer.contains("crypto"),
        "{answer}"
    );

    // Allowed: SRTP in the best-effort profile.
    let mut h = harness(
        policy(Requirement::Allow, Requirement::Allow),
        MediaPolicy::default(),
    );
    let caller = Caller::invite("s12", Some(&best_effort));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let ua = Ua::callee(&invite, callee(), "bob-s12");
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(&callee_sdp())));
    let answer = body(&sbc_core::sip::Message::Response(
        h.response_to(CALLER, 200),
    ));
    assert!(answer.contains("m=audio 20000 RTP/AVP 0"), "{answer}");
    assert_eq!(
        answer.matches("a=crypto:1 AES_CM_128_HMAC_SHA1_32").count(),
        1,
        "{answer}"
    );
    assert!(matches!(
        protection(&h, Leg::A).map(|s| s.protection),
        Some(LegProtection::Sdes { .. })
    ));

    // A callee that ignores a best-effort offer and answers plain: plain on its leg.
    let mut h = harness(
        MediaPolicy::default(),
        policy(Requirement::Prefer, Requirement::Allow),
    );
    let caller = Caller::invite("s13", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let offer = body(&sbc_core::sip::Message::Request(invite.clone()));
    assert!(
        offer.contains("RTP/AVP 0 8 101") && offer.contains("a=crypto:"),
        "{offer}"
    );
    let ua = Ua::callee(&invite, callee(), "bob-s13");
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(&callee_sdp())));
    let _ = h.response_to(CALLER, 200);
    assert!(matches!(
        protection(&h, Leg::B).map(|s| s.protection),
        Some(LegProtection::Plain)
    ));
}

#[test]
fn the_call_record_says_how_each_legs_media_was_protected() {
    use sbc_core::b2bua::B2buaConfig;
    use sbc_core::b2bua::summary::MediaProtection;
    let defaults = Options::default();
    let mut h = Harness::with(Options {
        caller_media: policy(Requirement::Allow, Requirement::Allow),
        config: B2buaConfig {
            call_records: 4,
            ..defaults.config.clone()
        },
        ..defaults
    });
    let mut caller = Caller::invite("s14", Some(&sdes_offer(CALLER_KEY)));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let ua = Ua::callee(&invite, callee(), "bob-s14");
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(&callee_sdp())));
    let ok = h.response_to(CALLER, 200);
    caller.answered(&ok);
    h.receive_message(self::caller(), &caller.ack(None));
    h.receive_message(self::caller(), &caller.request("BYE", None));
    h.response_to(CALLER, 200);
    let record = std::iter::from_fn(|| h.endpoint.poll_call_record())
        .next()
        .expect("a record");
    assert_eq!(
        record.security.a.media,
        MediaProtection::SdesSrtp {
            suite: "AES_CM_128_HMAC_SHA1_32".into()
        }
    );
    assert!(record.security.a.media.encrypted());
    assert_eq!(record.security.b.media, MediaProtection::Plain);
}
