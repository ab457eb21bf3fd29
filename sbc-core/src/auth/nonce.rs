//! Self-validating nonces and the bounded replay table.
//!
//! A nonce is 60 lower-case hex digits: the time it was minted (milliseconds since the
//! shared epoch, 8 bytes), the minting shard (2 bytes), a serial number (4 bytes), and
//! the first 16 bytes of HMAC-SHA-256(key, time ‖ shard ‖ serial ‖ client IP). Any shard
//! can tell whether a nonce is genuine, how old it is, who minted it and whether it was
//! minted for this client. The serial makes every challenge's nonce unique even when two
//! clients behind one NAT address are challenged in the same millisecond: each then
//! counts `nc` from 1 on a nonce of its own, and neither looks like a replay of the other.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

const MAC_LEN: usize = 16;
const RAW_LEN: usize = 8 + 2 + 4 + MAC_LEN;
/// The length of a nonce in hex digits.
pub const NONCE_LEN: usize = RAW_LEN * 2;

/// Mints and checks nonces under one key; every shard holds a copy with the same key
/// and epoch.
#[derive(Clone)]
pub struct NonceMint {
    key: Vec<u8>,
    epoch: Instant,
    shard: u16,
    /// The serial of the next nonce.
    serial: u32,
}

impl std::fmt::Debug for NonceMint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceMint")
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}

/// What a received nonce is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceCheck {
    /// Minted here, for this client, `age` ago. `stamp` orders nonces by minting time.
    Fresh { stamp: u64, age: Duration },
    /// Genuine and for this client, but too old, or minted by another shard.
    Stale,
    /// Not one of ours, or minted for another client.
    Invalid,
}

impl NonceMint {
    /// A mint with `key` (random, at least 32 bytes, kept in memory only), time measured
    /// from `epoch`, for shard `shard`.
    pub fn new(key: &[u8], epoch: Instant, shard: u16) -> NonceMint {
        NonceMint {
            key: key.to_vec(),
            epoch,
            shard,
            serial: 0,
        }
    }

    /// `now` as a mint stamp (milliseconds since the epoch).
    pub(crate) fn stamp(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    fn mac(&self, stamp: u64, shard: u16, serial: u32, client: IpAddr) -> Option<[u8; MAC_LEN]> {
        let key = PKey::hmac(&self.key).ok()?;
        let mut signer = Signer::new(MessageDigest::sha256(), &key).ok()?;
        signer.update(&stamp.to_be_bytes()).ok()?;
        signer.update(&shard.to_be_bytes()).ok()?;
        signer.update(&serial.to_be_bytes()).ok()?;
        match client {
            IpAddr::V4(v4) => signer.update(&v4.to_ipv6_mapped().octets()).ok()?,
            IpAddr::V6(v6) => signer.update(&v6.octets()).ok()?,
        }
        let full = signer.sign_to_vec().ok()?;
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(full.get(..MAC_LEN)?);
        Some(mac)
    }

    /// A fresh nonce for `client`, never minted before by this mint.
    pub fn mint(&mut self, now: Instant, client: IpAddr) -> String {
        let stamp = self.stamp(now);
        let serial = self.serial;
        self.serial = self.serial.wrapping_add(1);
        let mac = self
            .mac(stamp, self.shard, serial, client)
            .unwrap_or_default();
        let mut raw = Vec::with_capacity(RAW_LEN);
        raw.extend_from_slice(&stamp.to_be_bytes());
        raw.extend_from_slice(&self.shard.to_be_bytes());
        raw.extend_from_slice(&serial.to_be_bytes());
        raw.extend_from_slice(&mac);
        super::hex(&raw)
    }

    /// Checks `nonce` as received from `client` at `now`.
    pub fn check(
        &self,
        now: Instant,
        nonce: &[u8],
        client: IpAddr,
        lifetime: Duration,
    ) -> NonceCheck {
        let Some(raw) = unhex::<RAW_LEN>(nonce) else {
            return NonceCheck::Invalid;
        };
        let (stamp_bytes, rest) = raw.split_at(8);
        let (shard_bytes, rest) = rest.split_at(2);
        let (serial_bytes, mac) = rest.split_at(4);
        let stamp = u64::from_be_bytes(stamp_bytes.try_into().unwrap_or_default());
        let shard = u16::from_be_bytes(shard_bytes.try_into().unwrap_or_default());
        let serial = u32::from_be_bytes(serial_bytes.try_into().unwrap_or_default());
        let Some(expected) = self.mac(stamp, shard, serial, client) else {
            return NonceCheck::Invalid;
        };
        if !openssl::memcmp::eq(&expected, mac) {
            return NonceCheck::Invalid;
        }
        let now_stamp = self.stamp(now);
        if stamp > now_stamp {
            // From the future: a key reused across an epoch change. Not ours to trust.
            return NonceCheck::Invalid;
        }
        let age = Duration::from_millis(now_stamp - stamp);
        if shard != self.shard || age > lifetime {
            return NonceCheck::Stale;
        }
        NonceCheck::Fresh { stamp, age }
    }
}

fn unhex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let high = (*pair.first()? as char).to_digit(16)?;
        let low = (*pair.get(1)? as char).to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

/// What [`ReplayTable::record`] says about one `nc` of one nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceUse {
    /// First use of this count.
    New,
    /// This count was used before (or is too far behind the highest one seen).
    Replayed,
    /// The nonce may have been used and forgotten (it predates an eviction): treat as
    /// stale.
    Forgotten,
}

/// A tracked nonce: its mint stamp (for eviction order) and its text.
type NonceKey = (u64, Box<[u8]>);

/// The `nc` values seen per nonce, at most `capacity` nonces.
#[derive(Debug)]
pub struct ReplayTable {
    /// (mint stamp, nonce) → (highest nc, bitmap of the 64 counts up to it).
    seen: BTreeMap<NonceKey, (u32, u64)>,
    capacity: usize,
    /// Nonces minted at or before this stamp may have been forgotten.
    forgotten_up_to: Option<u64>,
}

impl ReplayTable {
    pub fn new(capacity: usize) -> ReplayTable {
        ReplayTable {
            seen: BTreeMap::new(),
            capacity: capacity.max(1),
            forgotten_up_to: None,
        }
    }

    /// Nonces tracked.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Forgets nonces minted before `oldest_live` (they are stale anyway).
    pub fn expire(&mut self, oldest_live: u64) {
        while let Some(entry) = self.seen.first_entry() {
            if entry.key().0 >= oldest_live {
                break;
            }
            entry.remove();
        }
    }

    /// Records count `nc` of `nonce` (minted at `stamp`).
    pub fn record(&mut self, stamp: u64, nonce: &[u8], nc: u32) -> NonceUse {
        let key = (stamp, Box::<[u8]>::from(nonce));
        if let Some((highest, window)) = self.seen.get_mut(&key) {
            return if nc > *highest {
                let shift = nc - *highest;
                *window = if shift >= 64 { 0 } else { *window << shift } | 1;
                *highest = nc;
                NonceUse::New
            } else {
                let behind = *highest - nc;
                let bit = 1u64.checked_shl(behind).unwrap_or(0);
                if bit == 0 || *window & bit != 0 {
                    NonceUse::Replayed
                } else {
                    *window |= bit;
                    NonceUse::New
                }
            };
        }
        if self.forgotten_up_to.is_some_and(|up_to| stamp <= up_to) {
            return NonceUse::Forgotten;
        }
        while self.seen.len() >= self.capacity {
            match self.seen.pop_first() {
                Some(((evicted, _), _)) => {
                    self.forgotten_up_to =
                        Some(self.forgotten_up_to.map_or(evicted, |up| up.max(evicted)));
                }
                None => break,
            }
        }
        if self.forgotten_up_to.is_some_and(|up_to| stamp <= up_to) {
            return NonceUse::Forgotten;
        }
        self.seen.insert(key, (nc, 1));
        NonceUse::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_bound_to_client_time_and_shard() {
        let epoch = Instant::now();
        let mut mint = NonceMint::new(&[7; 32], epoch, 1);
        let phone: IpAddr = "192.0.2.10".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let other: IpAddr = "192.0.2.11".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let life = Duration::from_secs(300);
        let nonce = mint.mint(epoch + Duration::from_secs(1), phone);
        assert_eq!(nonce.len(), NONCE_LEN);
        // Two challenges to one address in the same millisecond get nonces of their own.
        let twin = mint.mint(epoch + Duration::from_secs(1), phone);
        assert_ne!(twin, nonce);
        let later = epoch + Duration::from_secs(61);
        assert!(matches!(
            mint.check(later, twin.as_bytes(), phone, life),
            NonceCheck::Fresh { .. }
        ));
        assert!(matches!(
            mint.check(later, nonce.as_bytes(), phone, life),
            NonceCheck::Fresh { age, .. } if age == Duration::from_secs(60)
        ));
        assert_eq!(
            mint.check(later, nonce.as_bytes(), other, life),
            NonceCheck::Invalid
        );
        assert_eq!(
            mint.check(
                epoch + Duration::from_secs(302),
                nonce.as_bytes(),
                phone,
                life
            ),
            NonceCheck::Stale
        );
        let other_shard = NonceMint::new(&[7; 32], epoch, 2);
        assert_eq!(
            other_shard.check(later, nonce.as_bytes(), phone, life),
            NonceCheck::Stale
        );
        let other_key = NonceMint::new(&[8; 32], epoch, 1);
        assert_eq!(
            other_key.check(later, nonce.as_bytes(), phone, life),
            NonceCheck::Invalid
        );
        let mut tampered = nonce.into_bytes();
        tampered[3] = if tampered[3] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            mint.check(later, &tampered, phone, life),
            NonceCheck::Invalid
        );
        assert_eq!(mint.check(later, b"zz", phone, life), NonceCheck::Invalid);
    }

    #[test]
    fn counts_are_used_once_within_a_window() {
        let mut table = ReplayTable::new(10);
        assert_eq!(table.record(1, b"n", 1), NonceUse::New);
        assert_eq!(table.record(1, b"n", 1), NonceUse::Replayed);
        assert_eq!(table.record(1, b"n", 3), NonceUse::New);
        // Out of order but unseen: accepted once.
        assert_eq!(table.record(1, b"n", 2), NonceUse::New);
        assert_eq!(table.record(1, b"n", 2), NonceUse::Replayed);
        assert_eq!(table.record(1, b"n", 100), NonceUse::New);
        // Too far behind to know: refused.
        assert_eq!(table.record(1, b"n", 3), NonceUse::Replayed);
    }

    #[test]
    fn eviction_never_reopens_a_replay() {
        let mut table = ReplayTable::new(2);
        assert_eq!(table.record(1, b"a", 1), NonceUse::New);
        assert_eq!(table.record(2, b"b", 1), NonceUse::New);
        assert_eq!(table.record(3, b"c", 1), NonceUse::New);
        assert_eq!(table.len(), 2);
        // "a" was forgotten: it may have been used, so it is stale now.
        assert_eq!(table.record(1, b"a", 1), NonceUse::Forgotten);
        assert_eq!(table.record(1, b"a2", 1), NonceUse::Forgotten);
        // Newer nonces are still fine.
        assert_eq!(table.record(4, b"d", 1), NonceUse::New);
        table.expire(4);
        assert_eq!(table.len(), 1);
    }
}
