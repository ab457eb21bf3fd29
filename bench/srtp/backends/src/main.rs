//! Per-packet cost of the candidate SRTP building blocks on 160-byte payloads (see
//! Cargo.toml). Each row runs 400,000 iterations after a warm-up, on one thread.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use aes::cipher::{InnerIvInit, KeyInit, KeyIvInit, StreamCipher, StreamCipherCoreWrapper};
use hmac::Mac;
use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;

const N: u32 = 400_000;

fn rate(name: &str, f: &mut dyn FnMut(u32)) {
    for i in 0..20_000 {
        f(i);
    }
    let start = Instant::now();
    for i in 0..N {
        f(i);
    }
    let s = start.elapsed().as_secs_f64();
    println!("{name:44} {:>10.0}/s {:>8.1} ns", N as f64 / s, s * 1e9 / N as f64);
}

fn counter(i: u32) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[8..12].copy_from_slice(&i.to_be_bytes());
    iv
}

fn nonce(i: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[8..12].copy_from_slice(&i.to_be_bytes());
    iv
}

fn main() {
    let key = [7u8; 16];
    let mut pkt = [0x55u8; 172 + 20];

    let mut ctx = CipherCtx::new().unwrap();
    ctx.encrypt_init(Some(Cipher::aes_128_ctr()), Some(&key), None).unwrap();
    rate("openssl EVP aes-128-ctr (IV re-init)", &mut |i| {
        ctx.encrypt_init(None, None, Some(&counter(i))).unwrap();
        ctx.cipher_update_inplace(&mut pkt[12..172], 160).unwrap();
        black_box(&pkt);
    });
    let (mut ipad, mut opad) = ([0x36u8; 64], [0x5cu8; 64]);
    for k in 0..20 {
        ipad[k] ^= 3;
        opad[k] ^= 3;
    }
    let mut inner = openssl::sha::Sha1::new();
    inner.update(&ipad);
    let mut outer = openssl::sha::Sha1::new();
    outer.update(&opad);
    rate("openssl SHA1 (cloned padded state) HMAC", &mut |i| {
        let mut h = inner.clone();
        h.update(&pkt[..172]);
        h.update(&i.to_be_bytes());
        let d = h.finish();
        let mut o = outer.clone();
        o.update(&d);
        black_box(o.finish());
    });
    let pkey = openssl::pkey::PKey::hmac(&[3u8; 20]).unwrap();
    rate("openssl Signer HMAC (new per packet)", &mut |_| {
        let mut s = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha1(), &pkey).unwrap();
        s.update(&pkt[..176]).unwrap();
        black_box(s.sign_to_vec().unwrap());
    });
    let mut gcm = CipherCtx::new().unwrap();
    gcm.encrypt_init(Some(Cipher::aes_128_gcm()), Some(&key), None).unwrap();
    rate("openssl EVP aes-128-gcm seal", &mut |i| {
        gcm.encrypt_init(None, None, Some(&nonce(i))).unwrap();
        let (h, p) = pkt.split_at_mut(12);
        gcm.cipher_update(h, None).unwrap();
        gcm.cipher_update_inplace(&mut p[..160], 160).unwrap();
        gcm.cipher_final(&mut []).unwrap();
        let mut tag = [0u8; 16];
        gcm.tag(&mut tag).unwrap();
        black_box(tag);
    });

    type Ctr = ctr::Ctr128BE<aes::Aes128>;
    let aes_key = aes::cipher::generic_array::GenericArray::clone_from_slice(&key);
    let block = aes::Aes128::new(&aes_key);
    rate("RustCrypto aes-128-ctr (key expanded per packet)", &mut |i| {
        let mut c = Ctr::new(&aes_key, &counter(i).into());
        c.apply_keystream(&mut pkt[12..172]);
    });
    rate("RustCrypto aes-128-ctr (cloned key schedule)", &mut |i| {
        let core = ctr::CtrCore::inner_iv_init(block.clone(), &counter(i).into());
        let mut c: Ctr = StreamCipherCoreWrapper::from_core(core);
        c.apply_keystream(&mut pkt[12..172]);
    });
    let mac = <hmac::Hmac<sha1::Sha1> as Mac>::new_from_slice(&[3u8; 20]).unwrap();
    rate("RustCrypto HMAC-SHA1 (cloned keyed state)", &mut |_| {
        let mut m = mac.clone();
        m.update(&pkt[..176]);
        black_box(m.finalize());
    });
    use aes_gcm::aead::AeadInPlace;
    let rc_gcm = aes_gcm::Aes128Gcm::new(&aes_key);
    rate("RustCrypto aes-gcm seal", &mut |i| {
        let (h, p) = pkt.split_at_mut(12);
        black_box(rc_gcm.encrypt_in_place_detached(&nonce(i).into(), h, &mut p[..160]).unwrap());
    });
    let ring_gcm = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, &key).unwrap(),
    );
    rate("ring aes-128-gcm seal", &mut |i| {
        let (h, p) = pkt.split_at_mut(12);
        let n = ring::aead::Nonce::assume_unique_for_key(nonce(i));
        let tag = ring_gcm.seal_in_place_separate_tag(n, ring::aead::Aad::from(&h[..]), &mut p[..160]);
        black_box(tag.unwrap());
    });
    let ring_hmac = ring::hmac::Context::with_key(&ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        &[3u8; 20],
    ));
    rate("ring HMAC-SHA1 (cloned context)", &mut |_| {
        let mut m = ring_hmac.clone();
        m.update(&pkt[..176]);
        black_box(m.sign());
    });

    use webrtc_srtp::{context::Context, option, protection_profile::ProtectionProfile};
    for (name, profile, key_len, salt_len) in [
        ("webrtc-srtp AES_CM_128_HMAC_SHA1_80 pair", ProtectionProfile::Aes128CmHmacSha1_80, 16, 14),
        ("webrtc-srtp AEAD_AES_128_GCM pair", ProtectionProfile::AeadAes128Gcm, 16, 12),
    ] {
        let (k, s) = (vec![1u8; key_len], vec![2u8; salt_len]);
        let mut tx = Context::new(&k, &s, profile, None, None).unwrap();
        let replay = Some(option::srtp_replay_protection(128));
        let mut rx = Context::new(&k, &s, profile, replay, None).unwrap();
        let mut plain = vec![0u8; 172];
        plain[0] = 0x80;
        let mut n = 0u32;
        rate(name, &mut |_| {
            n += 1;
            plain[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            let sealed = tx.encrypt_rtp(&plain).unwrap();
            black_box(rx.decrypt_rtp(&sealed).unwrap());
        });
    }
}
