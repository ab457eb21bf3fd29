//! Every vector of `shared/testdata/srtp/` (RFC 3711 Appendix B, RFC 7714 §16–17, libsrtp's
//! `srtp_driver.c` and cipher known answers, webrtc-rs/pion): protecting the plaintext gives
//! the published packet byte for byte, unprotecting it gives the plaintext back, and
//! flipping any bit of a protected packet makes it fail.
//!
//! The folder is `$SBC_TESTDATA/srtp`, else `<workspace>/../shared/testdata/srtp`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use media_relay::srtp::{
    AuthKind, CipherKind, HeaderOptions, MasterKey, Profile, RawKeys, SessionKeys, SrtpPolicy,
    SrtpReceiver, SrtpSender, Suite, derive_session_key, primitives,
};
use serde_json::Value;

fn testdata() -> PathBuf {
    match std::env::var_os("SBC_TESTDATA") {
        Some(dir) => PathBuf::from(dir).join("srtp"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/srtp"),
    }
}

fn load(name: &str) -> Value {
    let path = testdata().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); set SBC_TESTDATA to the shared testdata folder",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn hex(value: &Value) -> Vec<u8> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn array<const N: usize>(value: &Value) -> [u8; N] {
    hex(value).try_into().unwrap()
}

/// `packet` in a buffer with room for any trailer.
fn buffer(packet: &[u8]) -> Vec<u8> {
    let mut buf = packet.to_vec();
    buf.resize(packet.len() + 256, 0);
    buf
}

/// Every single-bit change of `protected` must fail to unprotect.
fn assert_every_bit_flip_fails(protected: &[u8], mut unprotect: impl FnMut(&mut [u8]) -> bool) {
    for bit in 0..protected.len() * 8 {
        let mut buf = buffer(protected);
        buf[bit / 8] ^= 1 << (bit % 8);
        assert!(!unprotect(&mut buf), "bit {bit} flipped still unprotects");
    }
}

// ---- RFC 3711 Appendix B ----------------------------------------------------------------

#[test]
fn rfc3711_b1_aes_f8() {
    let all = load("rfc3711_appendix_b.json");
    let v = &all["B.1_aes_f8"];
    let mut payload = hex(&v["rtp_payload"]);
    let iv: [u8; 16] = array(&v["iv"]);
    // The IV is 0 ‖ the header after its first octet ‖ ROC.
    let header = hex(&v["rtp_header"]);
    assert_eq!(&iv[1..12], &header[1..]);
    assert_eq!(&iv[12..], &hex(&v["roc"])[..]);
    primitives::aes_f8(&hex(&v["key"]), &hex(&v["salt_key"]), &iv, &mut payload).unwrap();
    assert_eq!(payload, hex(&v["ciphertext_payload"]));

    // The same through the packet transform (ROC d462564a), with the NULL authentication.
    let profile = Profile {
        cipher: CipherKind::AesF8_128,
        auth: AuthKind::Null,
    };
    let mut salt = hex(&v["salt_key"]);
    salt.resize(14, 0x55);
    let keys = SessionKeys::from_raw(
        profile,
        RawKeys {
            cipher_key: &hex(&v["key"]),
            salt: &salt,
            auth_key: &[],
        },
    )
    .unwrap();
    let packet = [header.clone(), hex(&v["rtp_payload"])].concat();
    let mut buf = buffer(&packet);
    let roc = u32::from_be_bytes(array(&v["roc"]));
    let len = keys.protect_rtp(&mut buf, packet.len(), roc, &[]).unwrap();
    assert_eq!(
        &buf[..len],
        &[header, hex(&v["ciphertext_payload"])].concat()[..]
    );
    assert_eq!(keys.unprotect_rtp(&mut buf, len, roc, 0), Ok(packet.len()));
    assert_eq!(&buf[..packet.len()], &packet[..]);
}

#[test]
fn rfc3711_b2_aes_cm_keystream() {
    let all = load("rfc3711_appendix_b.json");
    let v = &all["B.2_aes_cm_keystream"];
    let key = hex(&v["session_key"]);
    let blocks = v["blocks"].as_array().unwrap();
    for block in blocks {
        let mut keystream = [0u8; 16];
        primitives::aes_cm(&key, &array(&block["counter"]), &mut keystream).unwrap();
        assert_eq!(keystream.to_vec(), hex(&block["keystream"]), "{block}");
    }
    // And as one run from block 0: the counter increments across the segment.
    let mut segment = vec![0u8; 16 * 65282];
    primitives::aes_cm(&key, &array(&v["session_salt_shifted"]), &mut segment).unwrap();
    for block in blocks {
        let at = block["block_index"].as_u64().unwrap() as usize * 16;
        assert_eq!(segment[at..at + 16].to_vec(), hex(&block["keystream"]));
    }
}

#[test]
fn rfc3711_b3_key_derivation() {
    let all = load("rfc3711_appendix_b.json");
    let v = &all["B.3_key_derivation"];
    let master = MasterKey::new(&hex(&v["master_key"]), &hex(&v["master_salt"])).unwrap();
    let mut cipher_key = [0u8; 16];
    derive_session_key(&master, 0, &mut cipher_key).unwrap();
    assert_eq!(cipher_key.to_vec(), hex(&v["cipher_key"]["value"]));
    let mut salt = [0u8; 14];
    derive_session_key(&master, 2, &mut salt).unwrap();
    assert_eq!(salt.to_vec(), hex(&v["cipher_salt"]["value"]));
    let mut auth = [0u8; 94];
    derive_session_key(&master, 1, &mut auth).unwrap();
    assert_eq!(auth.to_vec(), hex(&v["auth_key"]["value"]));
}

// ---- RFC 7714 ---------------------------------------------------------------------------

fn gcm_profile(name: &str) -> Profile {
    match name {
        "AEAD_AES_128_GCM" => Suite::AeadAes128Gcm.profile(),
        "AEAD_AES_256_GCM" => Suite::AeadAes256Gcm.profile(),
        other => panic!("unknown AEAD {other}"),
    }
}

#[test]
fn rfc7714_gcm_srtp_and_srtcp() {
    let all = load("rfc7714_aes_gcm.json");
    let vectors = all["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 12);
    for v in vectors {
        let id = v["id"].as_str().unwrap();
        let key = hex(&v["session_key"]);
        let salt = hex(&v["session_salt"]);
        let keys = SessionKeys::from_raw(
            gcm_profile(v["aead"].as_str().unwrap()),
            RawKeys {
                cipher_key: &key,
                salt: &salt,
                auth_key: &[],
            },
        )
        .unwrap();
        let input = hex(&v["input"]);
        let output = hex(&v["output"]);
        let iv: [u8; 12] = array(&v["iv"]);
        let mut buf = buffer(&input);
        match (
            v["packet_type"].as_str().unwrap(),
            v["operation"].as_str().unwrap(),
        ) {
            ("rtp", "encrypt") => {
                let roc = u32::from_be_bytes(array(&v["roc"]));
                let len = keys.protect_rtp(&mut buf, input.len(), roc, &[]).unwrap();
                assert_eq!(&buf[..len], &output[..], "{id}");
                assert_every_bit_flip_fails(&output, |b| {
                    keys.unprotect_rtp(b, output.len(), roc, 0).is_ok()
                });
            }
            ("rtp", "decrypt") => {
                let roc = u32::from_be_bytes(array(&v["roc"]));
                let len = keys.unprotect_rtp(&mut buf, input.len(), roc, 0).unwrap();
                assert_eq!(&buf[12..len], &output[..], "{id}: the payload");
            }
            // Authentication only: the whole packet is AAD, the plaintext is empty (GMAC).
            ("rtp", "tag_only") => {
                let tag = primitives::aes_gcm_seal(&key, iv, &input, &mut []).unwrap();
                assert_eq!([&input[..], &tag].concat(), output, "{id}");
            }
            ("rtp", "verify_only") => {
                let (aad, tag) = input.split_at(input.len() - 16);
                let mut tag = tag.to_vec();
                assert_eq!(
                    primitives::aes_gcm_open(&key, iv, aad, &mut tag),
                    Ok(0),
                    "{id}"
                );
                assert_eq!(input, output, "{id}: the packet stays as it is");
                let mut forged = input.clone();
                forged[20] ^= 1;
                let (aad, tag) = forged.split_at(forged.len() - 16);
                let mut tag = tag.to_vec();
                assert!(primitives::aes_gcm_open(&key, iv, aad, &mut tag).is_err());
            }
            ("rtcp", "encrypt" | "tag_only") => {
                let index = u32::from_be_bytes(array(&v["srtcp_index"]));
                let encrypt = v["operation"] == "encrypt";
                let len = keys
                    .protect_rtcp(&mut buf, input.len(), index, encrypt, &[])
                    .unwrap();
                assert_eq!(&buf[..len], &output[..], "{id}");
                assert_every_bit_flip_fails(&output, |b| {
                    keys.unprotect_rtcp(b, output.len(), 0).is_ok()
                });
            }
            ("rtcp", "decrypt" | "verify_only") => {
                let (len, index) = keys.unprotect_rtcp(&mut buf, input.len(), 0).unwrap();
                assert_eq!(&buf[..len], &output[..], "{id}");
                assert_eq!(index.to_be_bytes(), array::<4>(&v["srtcp_index"]));
            }
            other => panic!("{id}: unexpected {other:?}"),
        }
    }
}

// ---- libsrtp's srtp_driver.c ------------------------------------------------------------

fn libsrtp_profile(profile: &str) -> Profile {
    let suite = |s: Suite| s.profile();
    match profile {
        p if p.starts_with("AES_CM_128_HMAC_SHA1_80") => suite(Suite::AesCm128HmacSha1_80),
        p if p.starts_with("AES_192_CM_HMAC_SHA1_80") => suite(Suite::AesCm192HmacSha1_80),
        p if p.starts_with("AES_256_CM_HMAC_SHA1_80") => suite(Suite::AesCm256HmacSha1_80),
        p if p.starts_with("AEAD_AES_128_GCM") => suite(Suite::AeadAes128Gcm),
        p if p.starts_with("NULL cipher + HMAC_SHA1_80") => Profile {
            cipher: CipherKind::Null,
            auth: AuthKind::HmacSha1_80,
        },
        p if p.starts_with("NULL cipher + NULL auth") => Profile {
            cipher: CipherKind::Null,
            auth: AuthKind::Null,
        },
        other => panic!("unknown profile {other}"),
    }
}

fn header_options(v: &Value) -> HeaderOptions {
    let profile = v["profile"].as_str().unwrap();
    HeaderOptions {
        encrypted_extension_ids: v["encrypted_extension_ids"]
            .as_array()
            .map(|ids| ids.iter().map(|id| id.as_u64().unwrap() as u8).collect())
            .unwrap_or_default(),
        cryptex: profile.contains("Cryptex"),
    }
}

/// The master keys of a vector: the first (with its MKI, if any), then the others.
fn master_keys(v: &Value, profile: Profile) -> Vec<MasterKey> {
    let key_of = |v: &Value| {
        let key = hex(&v["master_key"]);
        let salt = hex(&v["master_salt"]);
        // libsrtp is handed a longer buffer; the profile takes what it needs from it.
        let salt = &salt[..profile.master_salt_len().min(salt.len())];
        let master = MasterKey::new(&key, salt).unwrap();
        match v.get("mki") {
            Some(mki) => master.with_mki(&hex(mki)).unwrap(),
            None => master,
        }
    };
    let mut keys = vec![key_of(v)];
    if let Some(others) = v["other_master_keys"].as_array() {
        keys.extend(others.iter().map(key_of));
    }
    keys
}

#[test]
fn libsrtp_driver_vectors() {
    let all = load("libsrtp_srtp_driver_vectors.json");
    let vectors = all["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 11);
    let mut packets_checked = 0;
    for v in vectors {
        let id = v["id"].as_str().unwrap();
        let profile = libsrtp_profile(v["profile"].as_str().unwrap());
        let header = header_options(v);
        let policy = if profile.cipher == CipherKind::Null && profile.auth == AuthKind::Null {
            None
        } else {
            let mut keys = master_keys(v, profile);
            // The salt of the GCM test's 12-byte master salt is given exactly.
            keys.iter().for_each(|k| assert!(k.fits(profile), "{id}"));
            Some(SrtpPolicy {
                profile,
                keys: std::mem::take(&mut keys),
                header,
                encrypt_rtcp: true,
                max_ssrcs: 4,
            })
        };
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = match v["packets"].as_array() {
            Some(packets) => packets
                .iter()
                .map(|p| (hex(&p["rtp_plaintext"]), hex(&p["srtp_protected"])))
                .collect(),
            None => vec![(hex(&v["rtp_plaintext"]), hex(&v["srtp_protected"]))],
        };
        let Some(policy) = policy else {
            // NULL/NULL: RTP passes unchanged; SRTCP only gains the index word (E = 0).
            let keys = SessionKeys::from_raw(
                profile,
                RawKeys {
                    cipher_key: &[],
                    salt: &[0; 14],
                    auth_key: &[],
                },
            )
            .unwrap();
            let (rtp, srtp) = &pairs[0];
            let mut buf = buffer(rtp);
            let len = keys.protect_rtp(&mut buf, rtp.len(), 0, &[]).unwrap();
            assert_eq!(&buf[..len], &srtp[..], "{id}");
            let rtcp = hex(&v["rtcp_plaintext"]);
            let mut buf = buffer(&rtcp);
            let len = keys
                .protect_rtcp(&mut buf, rtcp.len(), 1, true, &[])
                .unwrap();
            assert_eq!(&buf[..len], &hex(&v["srtcp_protected"])[..], "{id}");
            packets_checked += 2;
            continue;
        };
        // Each packet through a fresh sender and receiver (the Cryptex lists are separate
        // first packets in libsrtp's tests, ROC 0).
        for (rtp, srtp) in &pairs {
            let mut sender = SrtpSender::new(&policy).unwrap();
            let mut buf = buffer(rtp);
            let len = sender.protect_rtp(&mut buf, rtp.len()).unwrap();
            assert_eq!(hex_string(&buf[..len]), hex_string(srtp), "{id}: protect");
            let mut receiver = SrtpReceiver::new(&policy).unwrap();
            let mut buf = buffer(srtp);
            let len = receiver.unprotect_rtp(&mut buf, srtp.len()).unwrap();
            assert_eq!(hex_string(&buf[..len]), hex_string(rtp), "{id}: unprotect");
            assert_every_bit_flip_fails(srtp, |b| {
                SrtpReceiver::new(&policy)
                    .unwrap()
                    .unprotect_rtp(b, srtp.len())
                    .is_ok()
            });
            packets_checked += 1;
        }
        if let (Some(_), Some(_)) = (v.get("rtcp_plaintext"), v.get("srtcp_protected")) {
            let (rtcp, srtcp) = (hex(&v["rtcp_plaintext"]), hex(&v["srtcp_protected"]));
            let mut sender = SrtpSender::new(&policy).unwrap();
            let mut buf = buffer(&rtcp);
            let len = sender.protect_rtcp(&mut buf, rtcp.len()).unwrap();
            assert_eq!(
                hex_string(&buf[..len]),
                hex_string(&srtcp),
                "{id}: protect RTCP"
            );
            let mut receiver = SrtpReceiver::new(&policy).unwrap();
            let mut buf = buffer(&srtcp);
            let len = receiver.unprotect_rtcp(&mut buf, srtcp.len()).unwrap();
            assert_eq!(&buf[..len], &rtcp[..], "{id}: unprotect RTCP");
            assert_every_bit_flip_fails(&srtcp, |b| {
                SrtpReceiver::new(&policy)
                    .unwrap()
                    .unprotect_rtcp(b, srtcp.len())
                    .is_ok()
            });
            packets_checked += 1;
        }
    }
    assert_eq!(packets_checked, 26);
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn libsrtp_mki_selects_the_key_by_its_identifier() {
    let all = load("libsrtp_srtp_driver_vectors.json");
    let v = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "libsrtp-srtp_validate_mki")
        .unwrap()
        .clone();
    let profile = Suite::AesCm128HmacSha1_80.profile();
    let keys = master_keys(&v, profile);
    // A sender holding only the second key, and a receiver holding both: the receiver picks
    // the second key by its MKI.
    let second_only = SrtpPolicy::new(Suite::AesCm128HmacSha1_80, keys[1].clone());
    let both = SrtpPolicy {
        keys: keys.clone(),
        ..second_only.clone()
    };
    let rtp = hex(&v["rtp_plaintext"]);
    let mut buf = buffer(&rtp);
    let len = SrtpSender::new(&second_only)
        .unwrap()
        .protect_rtp(&mut buf, rtp.len())
        .unwrap();
    assert_eq!(
        &buf[len - 14..len - 10],
        &hex(&v["other_master_keys"][0]["mki"])[..]
    );
    let mut receiver = SrtpReceiver::new(&both).unwrap();
    assert_eq!(receiver.unprotect_rtp(&mut buf, len), Ok(rtp.len()));
    // An MKI that names no key (to a receiver that has not seen the packet yet).
    let mut receiver = SrtpReceiver::new(&both).unwrap();
    let mut unknown = buffer(&hex(&v["srtp_protected"]));
    let len = hex(&v["srtp_protected"]).len();
    unknown[len - 14] ^= 0xff;
    assert_eq!(
        receiver
            .unprotect_rtp(&mut unknown, len)
            .map_err(|e| e.name()),
        Err("unknown_mki")
    );
}

// ---- libsrtp's cipher known answers -----------------------------------------------------

#[test]
fn libsrtp_cipher_known_answers() {
    let all = load("libsrtp_cipher_kats.json");
    let vectors = all["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 5);
    for v in vectors {
        let id = v["id"].as_str().unwrap();
        let key = hex(&v["key"]);
        let plaintext = hex(&v["plaintext"]);
        if v.get("counter_iv").is_some() {
            let mut data = plaintext.clone();
            primitives::aes_cm(&key, &array(&v["counter_iv"]), &mut data).unwrap();
            assert_eq!(data, hex(&v["ciphertext"]), "{id}");
        } else {
            let iv: [u8; 12] = array(&v["iv"]);
            let aad = hex(&v["aad"]);
            let mut data = plaintext.clone();
            let tag = primitives::aes_gcm_seal(&key, iv, &aad, &mut data).unwrap();
            let sealed = [data, tag.to_vec()].concat();
            assert_eq!(sealed, hex(&v["ciphertext_and_tag16"]), "{id}");
            // The 8-octet tag is the 16-octet one truncated.
            let tag8 = hex(&v["ciphertext_and_tag8"]);
            assert_eq!(&sealed[..tag8.len()], &tag8[..], "{id}");
            let mut opened = sealed.clone();
            assert_eq!(
                primitives::aes_gcm_open(&key, iv, &aad, &mut opened),
                Ok(plaintext.len())
            );
            assert_eq!(&opened[..plaintext.len()], &plaintext[..]);
        }
    }
}

// ---- webrtc-rs / pion -------------------------------------------------------------------

#[test]
fn webrtc_rs_packets_in_sequence() {
    let all = load("webrtc_rs_vectors.json");
    let rtp = &all["rtp"];
    let key = MasterKey::new(&hex(&rtp["master_key"]), &hex(&rtp["master_salt"])).unwrap();
    let policy = SrtpPolicy::new(Suite::AesCm128HmacSha1_80, key);
    let mut sender = SrtpSender::new(&policy).unwrap();
    let mut receiver = SrtpReceiver::new(&policy).unwrap();
    for packet in rtp["packets"].as_array().unwrap() {
        let plain = hex(&packet["rtp_plaintext"]);
        let protected = hex(&packet["srtp_protected"]);
        let mut buf = buffer(&plain);
        let len = sender.protect_rtp(&mut buf, plain.len()).unwrap();
        assert_eq!(&buf[..len], &protected[..], "seq {}", packet["seq"]);
        let mut buf = buffer(&protected);
        let len = receiver.unprotect_rtp(&mut buf, protected.len()).unwrap();
        assert_eq!(&buf[..len], &plain[..]);
    }
    let rtcp = &all["srtcp"];
    let key = MasterKey::new(&hex(&rtcp["master_key"]), &hex(&rtcp["master_salt"])).unwrap();
    let policy = SrtpPolicy::new(Suite::AesCm128HmacSha1_80, key);
    let plain = hex(&rtcp["rtcp_plaintext"]);
    let protected = hex(&rtcp["srtcp_protected"]);
    let mut buf = buffer(&plain);
    let len = SrtpSender::new(&policy)
        .unwrap()
        .protect_rtcp(&mut buf, plain.len())
        .unwrap();
    assert_eq!(&buf[..len], &protected[..]);
    let mut buf = buffer(&protected);
    let len = SrtpReceiver::new(&policy)
        .unwrap()
        .unprotect_rtcp(&mut buf, protected.len())
        .unwrap();
    assert_eq!(&buf[..len], &plain[..]);
}
