//! SRTP and SRTCP unprotect on arbitrary bytes, for every suite, with and without an MKI:
//! never a panic, never an accepted forgery, never state for a packet that did not
//! authenticate. Then a genuine packet (protected from the input) with the input's bytes
//! XORed over it: it unprotects to the original only when nothing was changed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_relay::srtp::{MasterKey, SrtpPolicy, SrtpReceiver, SrtpSender, Suite};

fn policy(suite: Suite, mki: bool) -> SrtpPolicy {
    let key = MasterKey::new(
        &[0x42; 32][..suite.master_key_len()],
        &[0x24; 14][..suite.master_salt_len()],
    )
    .expect("valid key lengths");
    let key = if mki {
        key.with_mki(&[0, 0, 0, 7]).expect("valid MKI")
    } else {
        key
    };
    SrtpPolicy::new(suite, key)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let suite = Suite::ALL[usize::from(selector) % Suite::ALL.len()];
    let policy = policy(suite, selector & 0x80 != 0);
    let mut receiver = SrtpReceiver::new(&policy).expect("receiver");

    // Arbitrary bytes as SRTP and as SRTCP.
    let mut buf = rest.to_vec();
    assert!(receiver.unprotect_rtp(&mut buf, rest.len()).is_err());
    let mut buf = rest.to_vec();
    assert!(receiver.unprotect_rtcp(&mut buf, rest.len()).is_err());
    assert_eq!(receiver.ssrc_count(), 0, "state from a forgery");

    // A genuine packet built from the input, then damaged by it.
    let payload = rest.get(..rest.len().min(200)).unwrap_or_default();
    let mut packet = vec![0x80, 0, 0x12, 0x34, 0, 0, 0, 1, 0xca, 0xfe, 0xba, 0xbe];
    packet.extend_from_slice(payload);
    let mut sender = SrtpSender::new(&policy).expect("sender");
    let mut buf = packet.clone();
    buf.resize(packet.len() + sender.max_overhead(), 0);
    let len = sender.protect_rtp(&mut buf, packet.len()).expect("protect");
    let mut damaged = buf[..len].to_vec();
    let mut changed = false;
    for (byte, flip) in damaged.iter_mut().zip(rest.iter().skip(200)) {
        *byte ^= flip;
        changed |= *flip != 0;
    }
    let mut receiver = SrtpReceiver::new(&policy).expect("receiver");
    match receiver.unprotect_rtp(&mut damaged, len) {
        Ok(plain) => {
            assert!(!changed, "a damaged packet authenticated");
            assert_eq!(&damaged[..plain], &packet[..]);
        }
        Err(_) => assert!(changed, "a genuine packet was refused"),
    }
});
