//! SRTP protect and unprotect rates of the relay's implementation for 160-byte (G.711,
//! 20 ms) payloads, measured the same way as `bench/srtp/libsrtp_bench.c`: batches of 1024
//! packets of one SSRC with consecutive sequence numbers are protected (timed), then
//! unprotected by a receiver (timed), on the thread's CPU clock, so the figures are per
//! core even on a shared machine. Replay protection is on, as always.
//!
//! Prints one line per suite: `<name> <protect/s> <unprotect/s>` (bench/srtp.sh makes the
//! table). Usage: `srtp_bench [seconds per suite]`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use media_relay::srtp::{MasterKey, SrtpPolicy, SrtpReceiver, SrtpSender, Suite};

const BATCH: usize = 1024;
const HEADER: usize = 12;
const PAYLOAD: usize = 160;
const ROOM: usize = HEADER + PAYLOAD + 64;

fn cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map_or(1.0, |s| s.parse().expect("seconds"));
    let key: Vec<u8> = (0..64u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(1))
        .collect();
    for suite in [
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::AeadAes128Gcm,
        Suite::AeadAes256Gcm,
    ] {
        let (key_len, salt_len) = (suite.master_key_len(), suite.master_salt_len());
        let master = MasterKey::new(&key[..key_len], &key[key_len..key_len + salt_len]).unwrap();
        let policy = SrtpPolicy::new(suite, master);
        let mut sender = SrtpSender::new(&policy).unwrap();
        let mut receiver = SrtpReceiver::new(&policy).unwrap();
        let mut packets = vec![[0u8; ROOM]; BATCH];
        let mut lengths = [0usize; BATCH];
        let (mut seq, mut count) = (0u16, 0u64);
        let (mut protect_time, mut unprotect_time) = (0.0, 0.0);
        while protect_time + unprotect_time < seconds {
            let start = cpu_seconds();
            for (packet, length) in packets.iter_mut().zip(lengths.iter_mut()) {
                packet[..HEADER + PAYLOAD].fill(0xab);
                packet[..4].copy_from_slice(&[0x80, 0, (seq >> 8) as u8, seq as u8]);
                packet[8..12].copy_from_slice(&0xcafe_babe_u32.to_be_bytes());
                seq = seq.wrapping_add(1);
                *length = sender.protect_rtp(packet, HEADER + PAYLOAD).unwrap();
            }
            let middle = cpu_seconds();
            for (packet, length) in packets.iter_mut().zip(lengths.iter_mut()) {
                *length = receiver.unprotect_rtp(packet, *length).unwrap();
            }
            let end = cpu_seconds();
            protect_time += middle - start;
            unprotect_time += end - middle;
            count += BATCH as u64;
        }
        println!(
            "{} {:.0} {:.0}",
            suite.sdes_name(),
            count as f64 / protect_time,
            count as f64 / unprotect_time
        );
    }
}
