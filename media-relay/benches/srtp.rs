//! SRTP protect and unprotect of one 172-byte G.711 packet (12-byte header, 160-byte
//! payload) per suite, with criterion's wall-clock statistics. `bench/srtp.sh` measures the
//! per-core rates beside libsrtp; this is for quick comparisons while changing the code.
//!
//! Run with `cargo bench -p media-relay --bench srtp` (or `bench/srtp.sh --criterion`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use media_relay::srtp::{MasterKey, SrtpPolicy, SrtpReceiver, SrtpSender, Suite};

const LEN: usize = 172;

fn policy(suite: Suite) -> SrtpPolicy {
    let key = [0x42u8; 32];
    let salt = [0x24u8; 14];
    let master = MasterKey::new(
        &key[..suite.master_key_len()],
        &salt[..suite.master_salt_len()],
    )
    .unwrap();
    SrtpPolicy::new(suite, master)
}

fn packet(seq: u16) -> [u8; LEN + 64] {
    let mut p = [0xabu8; LEN + 64];
    p[..4].copy_from_slice(&[0x80, 0, (seq >> 8) as u8, seq as u8]);
    p[8..12].copy_from_slice(&[0xca, 0xfe, 0xba, 0xbe]);
    p
}

fn srtp(c: &mut Criterion) {
    let mut group = c.benchmark_group("srtp");
    group.throughput(Throughput::Elements(1));
    for suite in [
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::AeadAes128Gcm,
        Suite::AeadAes256Gcm,
    ] {
        let policy = policy(suite);
        let mut sender = SrtpSender::new(&policy).unwrap();
        let mut seq = 0u16;
        group.bench_function(format!("protect/{}", suite.sdes_name()), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                let mut buf = packet(seq);
                black_box(sender.protect_rtp(&mut buf, LEN).unwrap());
            })
        });
        // Unprotect: each iteration decrypts a fresh copy of a packet protected ahead, with
        // a receiver whose window is moved on so that the copy is never a replay.
        let mut sender = SrtpSender::new(&policy).unwrap();
        let mut receiver = SrtpReceiver::new(&policy).unwrap();
        let mut seq = 0u16;
        group.bench_function(format!("protect+unprotect/{}", suite.sdes_name()), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                let mut buf = packet(seq);
                let len = sender.protect_rtp(&mut buf, LEN).unwrap();
                black_box(receiver.unprotect_rtp(&mut buf, len).unwrap());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, srtp);
criterion_main!(benches);
