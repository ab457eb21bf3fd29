//! Which signalling shard owns a message: calls are sharded by Call-ID.
//!
//! Each shard owns its transactions and calls outright, so the call path takes no lock.
//! Every message of a call carries the Call-ID of its leg; the A-leg's comes from the
//! caller, and the B-leg's is chosen by the shard that owns the call so that it hashes to
//! that same shard ([`Sharding::owns`]). So the hash of the Call-ID alone routes every
//! message, in both directions, without any table.
//!
//! The hash is keyed with a per-process random key, so a peer cannot pick Call-IDs that
//! all land on one shard. A message whose Call-ID cannot be found goes to shard 0, where
//! the parser refuses it properly.

use std::hash::{BuildHasher, Hasher, RandomState};

/// How many shards there are, and the keyed hash that maps Call-IDs to them.
#[derive(Clone, Debug)]
pub struct Sharding {
    shards: usize,
    key: RandomState,
}

/// Most bytes looked at for the Call-ID; a header section longer than this is refused by
/// the parser anyway.
const SCAN_LIMIT: usize = 16 * 1024;

impl Sharding {
    /// `shards` shards (at least one), with a fresh random key.
    pub fn new(shards: usize) -> Sharding {
        Sharding {
            shards: shards.max(1),
            key: RandomState::new(),
        }
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The shard of a Call-ID value (compared byte for byte, as RFC 3261 §20.8 says).
    pub fn shard_of_call_id(&self, call_id: &[u8]) -> usize {
        if self.shards == 1 {
            return 0;
        }
        let mut hasher = self.key.build_hasher();
        hasher.write(call_id);
        (hasher.finish() % self.shards as u64) as usize
    }

    /// The shard of a whole unparsed message: that of its Call-ID, or 0 without one.
    pub fn shard_of_message(&self, message: &[u8]) -> usize {
        if self.shards == 1 {
            return 0;
        }
        call_id_of(message).map_or(0, |call_id| self.shard_of_call_id(call_id))
    }

    /// Whether `shard` owns `call_id`: a shard draws random Call-IDs for its B-legs until
    /// one it owns comes up (on average `shards` draws).
    pub fn owns(&self, shard: usize, call_id: &[u8]) -> bool {
        self.shard_of_call_id(call_id) == shard
    }
}

/// The value of the first `Call-ID` (or compact `i`) header of an unparsed message,
/// trimmed. Header lines are scanned up to the empty line; folded continuation lines are
/// skipped (a folded Call-ID is so rare that sending it to shard 0 is fine: the hash must
/// only be consistent, and the folded form is consistent too).
pub fn call_id_of(message: &[u8]) -> Option<&[u8]> {
    let head = &message[..message.len().min(SCAN_LIMIT)];
    let mut lines = head.split(|&b| b == b'\n');
    lines.next()?; // the start line
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
            let value = line[colon + 1..].trim_ascii();
            return (!value.is_empty()).then_some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_call_id_in_long_and_compact_form() {
        let long = b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCall-ID:  abc@h \r\n\r\n";
        assert_eq!(call_id_of(long), Some(&b"abc@h"[..]));
        let compact = b"SIP/2.0 200 OK\r\ni:xyz\r\nCALL-ID: later\r\n\r\n";
        assert_eq!(call_id_of(compact), Some(&b"xyz"[..]));
        let body_only = b"MESSAGE sip:b@x SIP/2.0\r\nTo: b\r\n\r\nCall-ID: in-body\r\n";
        assert_eq!(call_id_of(body_only), None);
        assert_eq!(call_id_of(b""), None);
        assert_eq!(call_id_of(b"garbage without lines"), None);
        assert_eq!(call_id_of(b"X\r\nCall-ID:\r\n\r\n"), None);
    }

    #[test]
    fn both_legs_of_a_call_land_on_the_shard_that_owns_it() {
        let sharding = Sharding::new(4);
        let a_leg = b"a-leg-call-id@phone";
        let shard = sharding.shard_of_call_id(a_leg);
        // The owning shard draws B-leg Call-IDs until one hashes back to it.
        let b_leg = (0u64..)
            .map(|n| format!("b-{n}"))
            .find(|id| sharding.owns(shard, id.as_bytes()))
            .unwrap_or_default();
        let response = format!("SIP/2.0 180 Ringing\r\nCall-ID: {b_leg}\r\n\r\n");
        assert_eq!(sharding.shard_of_message(response.as_bytes()), shard);
        let request = format!("BYE sip:x SIP/2.0\r\ni: {}\r\n\r\n", "a-leg-call-id@phone");
        assert_eq!(sharding.shard_of_message(request.as_bytes()), shard);
    }

    #[test]
    fn spreads_call_ids_over_every_shard() {
        let sharding = Sharding::new(4);
        let mut counts = [0usize; 4];
        for n in 0..4_000 {
            counts[sharding.shard_of_call_id(format!("call-{n}@host").as_bytes())] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1_200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn one_shard_takes_everything() {
        let sharding = Sharding::new(0);
        assert_eq!(sharding.shards(), 1);
        assert_eq!(sharding.shard_of_message(b"anything"), 0);
    }
}
