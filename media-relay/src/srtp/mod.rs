//! SRTP and SRTCP (RFC 3711), with AES-GCM (RFC 7714), AES-192/256 counter mode
//! (RFC 6188), encrypted header extensions (RFC 6904) and Cryptex (RFC 9335).
//!
//! Two layers:
//!
//! * [`SessionKeys`]: the keys derived from one [`MasterKey`] and the packet transforms for
//!   a given index — stateless, in place, allocation-free. The published test vectors are
//!   checked at this level.
//! * [`SrtpSender`] / [`SrtpReceiver`]: one direction of one leg. They track the rollover
//!   counter per SSRC (estimating the index of each packet, RFC 3711 §3.3.1), keep the
//!   replay window (always on, 128 packets), pick the master key by MKI and enforce key
//!   lifetimes. A receiver adds an SSRC to its bounded table only after a packet of it
//!   authenticated.
//!
//! Packets are transformed in place: the caller passes a buffer holding the packet with
//! room for the trailer after it ([`SrtpSender::max_overhead`]) and gets the new length.
//! Every failure is an [`SrtpError`] with a stable name for drop counters.
//!
//! ```
//! use media_relay::srtp::{MasterKey, SrtpPolicy, SrtpReceiver, SrtpSender, Suite};
//!
//! let key = MasterKey::new(&[7; 16], &[9; 14])?;
//! let policy = SrtpPolicy::new(Suite::AesCm128HmacSha1_80, key);
//! let (mut sender, mut receiver) = (SrtpSender::new(&policy)?, SrtpReceiver::new(&policy)?);
//!
//! let mut buf = [0u8; 1500];
//! let rtp = [0x80, 0, 0, 1, 0, 0, 0, 160, 0xca, 0xfe, 0xba, 0xbe, 1, 2, 3, 4];
//! buf[..rtp.len()].copy_from_slice(&rtp);
//! let protected = sender.protect_rtp(&mut buf, rtp.len())?;
//! assert_eq!(protected, rtp.len() + 10);
//!
//! let mut replay = buf;
//! assert_eq!(receiver.unprotect_rtp(&mut buf, protected)?, rtp.len());
//! assert_eq!(&buf[..rtp.len()], &rtp);
//! assert_eq!(receiver.unprotect_rtp(&mut replay, protected).map_err(|e| e.name()), Err("replayed"));
//! # Ok::<(), media_relay::srtp::SrtpError>(())
//! ```

mod cipher;
mod context;
mod header;
mod keys;
mod replay;
mod suite;
mod transform;

pub use cipher::primitives;
pub use context::{DEFAULT_MAX_SSRCS, SrtpPolicy, SrtpReceiver, SrtpSender};
pub use keys::{HeaderOptions, MAX_MKI_LEN, MasterKey, RawKeys, SessionKeys, derive_session_key};
pub use replay::REPLAY_WINDOW;
pub use suite::{AuthKind, CipherKind, Profile, Suite};
pub use transform::{MAX_SRTCP_INDEX, max_overhead, rtcp_ssrc, rtp_ssrc_seq};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a packet could not be protected or unprotected, or a context not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error, Serialize, Deserialize)]
pub enum SrtpError {
    /// Shorter than its header, tag, MKI and (SRTCP) index need.
    #[error("packet too short for SRTP")]
    TooShort,
    /// The RTP/RTCP header does not parse (e.g. an extension longer than the packet).
    #[error("malformed RTP/RTCP header")]
    Malformed,
    /// The authentication tag does not verify: forged, corrupted or wrong key.
    #[error("SRTP authentication failed")]
    AuthFailed,
    /// The index was already received (or, sending, already sent).
    #[error("replayed SRTP packet")]
    Replayed,
    /// The index is older than the replay window reaches.
    #[error("SRTP packet too old for the replay window")]
    ReplayOld,
    /// The MKI names no key of the context.
    #[error("unknown SRTP master key identifier")]
    UnknownMki,
    /// A new SSRC while the context already tracks as many as it may.
    #[error("too many SSRCs in one SRTP context")]
    SsrcLimit,
    /// The master key's lifetime is used up and there is no next key.
    #[error("SRTP master key lifetime exhausted")]
    KeyExpired,
    /// The buffer has no room for the trailer (a bug of the caller).
    #[error("no room in the buffer for the SRTP trailer")]
    NoRoom,
    /// Key, salt or MKI lengths do not fit the profile, or the profile is invalid.
    #[error("invalid SRTP key material")]
    BadKey,
}

impl SrtpError {
    /// Errors a packet can cause, in the order of [`SrtpDrops`] fields.
    pub const PACKET_ERRORS: [SrtpError; 9] = [
        SrtpError::TooShort,
        SrtpError::Malformed,
        SrtpError::AuthFailed,
        SrtpError::Replayed,
        SrtpError::ReplayOld,
        SrtpError::UnknownMki,
        SrtpError::SsrcLimit,
        SrtpError::KeyExpired,
        SrtpError::NoRoom,
    ];

    /// A stable name for metric labels.
    pub fn name(self) -> &'static str {
        match self {
            SrtpError::TooShort => "too_short",
            SrtpError::Malformed => "malformed",
            SrtpError::AuthFailed => "auth_failed",
            SrtpError::Replayed => "replayed",
            SrtpError::ReplayOld => "replay_old",
            SrtpError::UnknownMki => "unknown_mki",
            SrtpError::SsrcLimit => "unknown_ssrc_limit",
            SrtpError::KeyExpired => "key_expired",
            SrtpError::NoRoom => "no_room",
            SrtpError::BadKey => "bad_key",
        }
    }
}

/// SRTP/SRTCP packets dropped, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SrtpDrops {
    pub too_short: u64,
    pub malformed: u64,
    pub auth_failed: u64,
    pub replayed: u64,
    pub replay_old: u64,
    pub unknown_mki: u64,
    pub unknown_ssrc_limit: u64,
    pub key_expired: u64,
    pub no_room: u64,
}

impl SrtpDrops {
    fn slot(&mut self, error: SrtpError) -> &mut u64 {
        match error {
            SrtpError::TooShort => &mut self.too_short,
            SrtpError::Malformed | SrtpError::BadKey => &mut self.malformed,
            SrtpError::AuthFailed => &mut self.auth_failed,
            SrtpError::Replayed => &mut self.replayed,
            SrtpError::ReplayOld => &mut self.replay_old,
            SrtpError::UnknownMki => &mut self.unknown_mki,
            SrtpError::SsrcLimit => &mut self.unknown_ssrc_limit,
            SrtpError::KeyExpired => &mut self.key_expired,
            SrtpError::NoRoom => &mut self.no_room,
        }
    }

    pub fn add(&mut self, error: SrtpError, packets: u64) {
        let slot = self.slot(error);
        *slot = slot.wrapping_add(packets);
    }

    pub fn get(&self, error: SrtpError) -> u64 {
        let mut copy = *self;
        *copy.slot(error)
    }

    pub fn total(&self) -> u64 {
        SrtpError::PACKET_ERRORS.iter().map(|e| self.get(*e)).sum()
    }

    pub fn merge(&mut self, other: &SrtpDrops) {
        for error in SrtpError::PACKET_ERRORS {
            self.add(error, other.get(error));
        }
    }
}
