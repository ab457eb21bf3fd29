//! SRTP sender/receiver behaviour beyond the published vectors: rollover counter across
//! sequence wraps, the replay window, forged floods, the SSRC bound, MKI and key lifetimes,
//! truncation, wrong keys — and round trips of every suite (property-based).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use media_relay::srtp::{
    HeaderOptions, MasterKey, SrtpError, SrtpPolicy, SrtpReceiver, SrtpSender, Suite,
};
use proptest::prelude::*;

fn policy(suite: Suite, seed: u8) -> SrtpPolicy {
    let key: Vec<u8> = (0..suite.master_key_len() as u8)
        .map(|i| i ^ seed)
        .collect();
    let salt: Vec<u8> = (0..suite.master_salt_len() as u8)
        .map(|i| i.wrapping_mul(7) ^ seed)
        .collect();
    SrtpPolicy::new(suite, MasterKey::new(&key, &salt).unwrap())
}

fn rtp(ssrc: u32, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x80, 0];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 201, 0, 1];
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet
}

/// Protects `packet`; returns the SRTP bytes.
fn protect(sender: &mut SrtpSender, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = packet.to_vec();
    buf.resize(packet.len() + sender.max_overhead(), 0);
    let len = sender.protect_rtp(&mut buf, packet.len())?;
    buf.truncate(len);
    Ok(buf)
}

fn unprotect(receiver: &mut SrtpReceiver, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = packet.to_vec();
    let len = receiver.unprotect_rtp(&mut buf, packet.len())?;
    buf.truncate(len);
    Ok(buf)
}

#[test]
fn the_rollover_counter_follows_sequence_wraps() {
    for suite in [Suite::AesCm128HmacSha1_80, Suite::AeadAes128Gcm] {
        let p = policy(suite, 1);
        let (mut tx, mut rx) = (SrtpSender::new(&p).unwrap(), SrtpReceiver::new(&p).unwrap());
        let mut held_back = None;
        // Three wraps of the 16-bit sequence number: dense around each wrap, in steps of
        // 1000 in between; one packet held back across the first wrap and delivered late.
        let indices = (0..4u64)
            .flat_map(|cycle| {
                let wrap = cycle << 16;
                let dense = wrap.saturating_sub(40)..wrap + 40;
                let sparse = (wrap + 40..wrap + 65_496).step_by(1000);
                dense.chain(sparse)
            })
            .skip_while(|i| *i < 65_500);
        for (n, index) in indices.enumerate() {
            let seq = index as u16;
            let packet = rtp(7, seq, &index.to_be_bytes());
            let srtp = protect(&mut tx, &packet).unwrap();
            if n == 30 {
                held_back = Some((srtp, packet));
                continue;
            }
            assert_eq!(
                unprotect(&mut rx, &srtp).as_ref(),
                Ok(&packet),
                "{suite} {index}"
            );
            if n == 60 {
                let (srtp, packet) = held_back.take().unwrap();
                assert_eq!(
                    unprotect(&mut rx, &srtp),
                    Ok(packet),
                    "late across the wrap"
                );
            }
        }
        assert!(held_back.is_none());
    }
}

#[test]
fn replays_and_packets_older_than_the_window_are_refused() {
    let p = policy(Suite::AesCm128HmacSha1_80, 2);
    let (mut tx, mut rx) = (SrtpSender::new(&p).unwrap(), SrtpReceiver::new(&p).unwrap());
    let packets: Vec<Vec<u8>> = (0..300u16)
        .map(|seq| protect(&mut tx, &rtp(9, seq, b"voice")).unwrap())
        .collect();
    for (seq, srtp) in packets.iter().enumerate() {
        if seq != 150 {
            unprotect(&mut rx, srtp).unwrap();
        }
    }
    assert_eq!(unprotect(&mut rx, &packets[299]), Err(SrtpError::Replayed));
    assert_eq!(unprotect(&mut rx, &packets[200]), Err(SrtpError::Replayed));
    assert_eq!(unprotect(&mut rx, &packets[100]), Err(SrtpError::ReplayOld));
    // Within the window and never received: still accepted, once.
    assert!(
        unprotect(&mut rx, &packets[150]).is_err(),
        "150 is 149 behind: too old"
    );
    let mut rx2 = SrtpReceiver::new(&p).unwrap();
    for srtp in &packets[..250] {
        unprotect(&mut rx2, srtp).unwrap();
    }
    assert!(unprotect(&mut rx2, &packets[251]).is_ok());
    assert!(
        unprotect(&mut rx2, &packets[250]).is_ok(),
        "late but within the window"
    );
    assert_eq!(unprotect(&mut rx2, &packets[250]), Err(SrtpError::Replayed));
}

#[test]
fn a_forged_flood_creates_no_state_and_does_not_block_the_real_peer() {
    let p = policy(Suite::AesCm128HmacSha1_80, 3);
    let (mut tx, mut rx) = (SrtpSender::new(&p).unwrap(), SrtpReceiver::new(&p).unwrap());
    let mut state = 0x1234_5678u32;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    for _ in 0..20_000 {
        let mut forged = rtp(next(), next() as u16, &[0xab; 160]);
        forged.extend_from_slice(&next().to_be_bytes());
        forged.extend_from_slice(&next().to_be_bytes());
        forged.extend_from_slice(&[0, 0]);
        assert_eq!(unprotect(&mut rx, &forged), Err(SrtpError::AuthFailed));
    }
    assert_eq!(rx.ssrc_count(), 0);
    // A forged packet with the real SSRC and a far-ahead sequence number moves nothing:
    let real = rtp(42, 1000, b"hello");
    let srtp = protect(&mut tx, &real).unwrap();
    let mut forged = srtp.clone();
    forged[2] = 0x7f;
    assert_eq!(unprotect(&mut rx, &forged), Err(SrtpError::AuthFailed));
    assert_eq!(unprotect(&mut rx, &srtp), Ok(real));
    assert_eq!(rx.ssrc_count(), 1);
}

#[test]
fn wrong_keys_truncation_and_garbage_are_refused() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = (
            SrtpSender::new(&policy(suite, 4)).unwrap(),
            SrtpReceiver::new(&policy(suite, 5)).unwrap(),
        );
        let srtp = protect(&mut tx, &rtp(1, 1, &[0x55; 160])).unwrap();
        assert_eq!(
            unprotect(&mut rx, &srtp),
            Err(SrtpError::AuthFailed),
            "{suite}"
        );
        let mut right = SrtpReceiver::new(&policy(suite, 4)).unwrap();
        for len in 0..srtp.len() {
            let result = unprotect(&mut right, &srtp[..len]);
            assert!(result.is_err(), "{suite}: truncated to {len}");
        }
        assert_eq!(right.ssrc_count(), 0);
        for len in 0..64 {
            let mut buf = vec![0x80u8; len];
            assert!(right.unprotect_rtcp(&mut buf, len).is_err());
            assert!(right.unprotect_rtp(&mut buf, len).is_err());
        }
        assert!(unprotect(&mut right, &srtp).is_ok());
    }
}

#[test]
fn the_sender_never_reuses_an_index() {
    let p = policy(Suite::AeadAes256Gcm, 6);
    let mut tx = SrtpSender::new(&p).unwrap();
    protect(&mut tx, &rtp(5, 100, b"one")).unwrap();
    assert_eq!(
        protect(&mut tx, &rtp(5, 100, b"two")),
        Err(SrtpError::Replayed)
    );
    protect(&mut tx, &rtp(5, 99, b"late")).unwrap();
    assert_eq!(
        protect(&mut tx, &rtp(5, 99, b"again")),
        Err(SrtpError::Replayed)
    );
}

#[test]
fn the_ssrc_table_is_bounded() {
    let mut p = policy(Suite::AesCm128HmacSha1_32, 7);
    p.max_ssrcs = 2;
    let (mut tx, mut rx) = (SrtpSender::new(&p).unwrap(), SrtpReceiver::new(&p).unwrap());
    for ssrc in [1, 2] {
        let srtp = protect(&mut tx, &rtp(ssrc, 1, b"x")).unwrap();
        assert_eq!(srtp.len(), 12 + 1 + 4, "a 32-bit tag");
        unprotect(&mut rx, &srtp).unwrap();
    }
    assert_eq!(
        protect(&mut tx, &rtp(3, 1, b"x")),
        Err(SrtpError::SsrcLimit)
    );
    let mut other = SrtpSender::new(&policy(Suite::AesCm128HmacSha1_32, 7)).unwrap();
    let third = protect(&mut other, &rtp(3, 1, b"x")).unwrap();
    assert_eq!(unprotect(&mut rx, &third), Err(SrtpError::SsrcLimit));
    assert_eq!(SrtpError::SsrcLimit.name(), "unknown_ssrc_limit");
}

#[test]
fn a_sender_moves_to_the_next_key_when_a_lifetime_is_used_up() {
    let key = |seed: u8, mki: u8, lifetime: u64| {
        MasterKey::new(&[seed; 16], &[seed; 14])
            .unwrap()
            .with_mki(&[0, mki])
            .unwrap()
            .with_lifetime(lifetime)
    };
    let p = SrtpPolicy {
        keys: vec![key(1, 1, 3), key(2, 2, 1000)],
        ..policy(Suite::AesCm128HmacSha1_80, 0)
    };
    let (mut tx, mut rx) = (SrtpSender::new(&p).unwrap(), SrtpReceiver::new(&p).unwrap());
    for seq in 0..10u16 {
        let srtp = protect(&mut tx, &rtp(1, seq, b"x")).unwrap();
        let mki = &srtp[srtp.len() - 12..srtp.len() - 10];
        assert_eq!(mki, if seq < 3 { [0, 1] } else { [0, 2] }, "seq {seq}");
        unprotect(&mut rx, &srtp).unwrap();
    }
    let single = SrtpPolicy {
        keys: vec![MasterKey::new(&[1; 16], &[1; 14]).unwrap().with_lifetime(2)],
        ..p.clone()
    };
    let mut tx = SrtpSender::new(&single).unwrap();
    protect(&mut tx, &rtp(1, 1, b"x")).unwrap();
    protect(&mut tx, &rtp(1, 2, b"x")).unwrap();
    assert_eq!(
        protect(&mut tx, &rtp(1, 3, b"x")),
        Err(SrtpError::KeyExpired)
    );
    // Several keys need MKIs, all of one length.
    let bad = SrtpPolicy {
        keys: vec![MasterKey::new(&[1; 16], &[1; 14]).unwrap(); 2],
        ..p
    };
    assert_eq!(SrtpSender::new(&bad).err(), Some(SrtpError::BadKey));
}

#[test]
fn srtcp_round_trips_encrypted_and_unencrypted_with_replay_protection() {
    for suite in Suite::ALL {
        for encrypt_rtcp in [true, false] {
            let mut p = policy(suite, 8);
            p.encrypt_rtcp = encrypt_rtcp;
            let (mut tx, mut rx) = (SrtpSender::new(&p).unwrap(), SrtpReceiver::new(&p).unwrap());
            let mut sent = Vec::new();
            for _ in 0..3 {
                let plain = rtcp_rr(77);
                let mut buf = plain.clone();
                buf.resize(plain.len() + tx.max_overhead(), 0);
                let len = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
                buf.truncate(len);
                let word_at = if suite.is_aead() { len - 4 } else { len - 14 };
                assert_eq!(buf[word_at] & 0x80 != 0, encrypt_rtcp, "{suite}: E flag");
                let mut copy = buf.clone();
                assert_eq!(rx.unprotect_rtcp(&mut copy, len), Ok(plain.len()));
                assert_eq!(&copy[..plain.len()], &plain[..]);
                sent.push(buf);
            }
            let mut replay = sent[1].clone();
            let len = replay.len();
            assert_eq!(
                rx.unprotect_rtcp(&mut replay, len),
                Err(SrtpError::Replayed)
            );
        }
    }
}

#[test]
fn cryptex_adds_an_extension_for_csrcs_and_round_trips() {
    for suite in [Suite::AesCm128HmacSha1_80, Suite::AeadAes128Gcm] {
        let mut p = policy(suite, 9);
        p.header = HeaderOptions {
            cryptex: true,
            ..HeaderOptions::default()
        };
        let (mut tx, mut rx) = (SrtpSender::new(&p).unwrap(), SrtpReceiver::new(&p).unwrap());
        // Two CSRCs, no extension.
        let mut packet = rtp(1, 1, b"");
        packet[0] |= 2;
        packet.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        packet.extend_from_slice(b"payload");
        let srtp = protect(&mut tx, &packet).unwrap();
        assert_eq!(srtp[0] & 0x10, 0x10, "X set");
        assert_eq!(&srtp[20..22], &[0xc0, 0xde]);
        assert_ne!(&srtp[12..20], &packet[12..20], "CSRCs encrypted");
        let plain = unprotect(&mut rx, &srtp).unwrap();
        let mut expected = packet[..20].to_vec();
        expected[0] |= 0x10;
        expected.extend_from_slice(&[0xbe, 0xde, 0, 0]);
        expected.extend_from_slice(b"payload");
        assert_eq!(plain, expected);
    }
}

fn any_suite() -> impl Strategy<Value = Suite> {
    proptest::sample::select(Suite::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_suite_round_trips_any_packet(
        suite in any_suite(),
        seed in any::<u8>(),
        ssrc in any::<u32>(),
        seq in any::<u16>(),
        csrcs in 0usize..4,
        extension in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..3)),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        mki in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..5)),
    ) {
        let mut p = policy(suite, seed);
        if let Some(mki) = &mki {
            p.keys = vec![p.keys[0].clone().with_mki(mki).unwrap()];
        }
        let (mut tx, mut rx) = (SrtpSender::new(&p).unwrap(), SrtpReceiver::new(&p).unwrap());
        let mut packet = rtp(ssrc, seq, &[]);
        packet[0] |= csrcs as u8;
        packet.extend(std::iter::repeat_n(0x11, 4 * csrcs));
        if let Some(words) = &extension {
            packet[0] |= 0x10;
            packet.extend_from_slice(&[0xbe, 0xde, 0, words.len() as u8]);
            for w in words {
                packet.extend_from_slice(&[0x10, *w, 0, 0]);
            }
        }
        packet.extend_from_slice(&payload);
        let srtp = protect(&mut tx, &packet).unwrap();
        prop_assert_eq!(unprotect(&mut rx, &srtp), Ok(packet));
    }

    #[test]
    fn unprotect_never_panics_on_arbitrary_bytes(
        suite in any_suite(),
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut rx = SrtpReceiver::new(&policy(suite, 1)).unwrap();
        let mut buf = bytes.clone();
        let _ = rx.unprotect_rtp(&mut buf, bytes.len());
        let mut buf = bytes.clone();
        let _ = rx.unprotect_rtcp(&mut buf, bytes.len());
        prop_assert_eq!(rx.ssrc_count(), 0);
    }
}
