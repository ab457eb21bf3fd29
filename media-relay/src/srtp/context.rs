//! The per-direction SRTP state: which master key, and per SSRC the rollover counter and
//! replay window (RFC 3711 §3.2, §3.3).
//!
//! An [`SrtpReceiver`] unprotects what one peer sends; an [`SrtpSender`] protects what the
//! relay sends to a peer. Both hold at most `max_ssrcs` SSRCs in a table allocated when the
//! context is made; a receiver adds an SSRC only once a packet from it authenticated, so a
//! flood of forged packets neither grows memory nor fills the table.

use super::SrtpError;
use super::keys::{HeaderOptions, MasterKey, SessionKeys};
use super::replay::{ReplayWindow, estimate_index};
use super::suite::{Profile, Suite};
use super::transform::{MAX_SRTCP_INDEX, rtcp_ssrc, rtp_ssrc_seq};

/// The default bound on SSRCs per context (an audio call has one or two; WebRTC video with
/// simulcast and retransmission streams stays well below).
pub const DEFAULT_MAX_SSRCS: usize = 32;

/// Everything a context is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpPolicy {
    pub profile: Profile,
    /// One or more master keys. With more than one, every key must carry an MKI of the
    /// same length; a sender uses them in order, moving on when one's lifetime is used up.
    pub keys: Vec<MasterKey>,
    pub header: HeaderOptions,
    /// Send SRTCP encrypted (E = 1); false for the SDES `UNENCRYPTED_SRTCP` parameter.
    pub encrypt_rtcp: bool,
    pub max_ssrcs: usize,
}

impl SrtpPolicy {
    /// A policy for `suite` with one master key and the defaults.
    pub fn new(suite: Suite, key: MasterKey) -> SrtpPolicy {
        SrtpPolicy {
            profile: suite.profile(),
            keys: vec![key],
            header: HeaderOptions::default(),
            encrypt_rtcp: true,
            max_ssrcs: DEFAULT_MAX_SSRCS,
        }
    }
}

/// One master key's session keys and how much of its lifetime is used.
struct KeyState {
    keys: SessionKeys,
    mki: Box<[u8]>,
    lifetime: u64,
    used: u64,
}

impl KeyState {
    fn take_one(&mut self) -> Result<(), SrtpError> {
        if self.used >= self.lifetime {
            return Err(SrtpError::KeyExpired);
        }
        self.used += 1;
        Ok(())
    }
}

/// The master keys of a context, all with MKIs of `mki_len` bytes (0: no MKI).
struct Keys {
    all: Vec<KeyState>,
    mki_len: usize,
}

impl Keys {
    fn new(policy: &SrtpPolicy) -> Result<Keys, SrtpError> {
        let first = policy.keys.first().ok_or(SrtpError::BadKey)?;
        let mki_len = first.mki().map_or(0, <[u8]>::len);
        if policy.keys.len() > 1 && mki_len == 0 {
            return Err(SrtpError::BadKey);
        }
        let mut all = Vec::with_capacity(policy.keys.len());
        for key in &policy.keys {
            if key.mki().map_or(0, <[u8]>::len) != mki_len {
                return Err(SrtpError::BadKey);
            }
            all.push(KeyState {
                keys: SessionKeys::derive_with(policy.profile, key, &policy.header)?,
                mki: key.mki().unwrap_or_default().into(),
                // RFC 3711 §9.2: at most 2^48 SRTP packets and 2^31 SRTCP packets per key.
                lifetime: key.lifetime().unwrap_or(1 << 48).min(1 << 48),
                used: 0,
            });
        }
        Ok(Keys { all, mki_len })
    }

    /// The key whose MKI a received packet carries at `mki_at`.
    fn by_mki(&mut self, packet: &[u8], mki_at: Option<usize>) -> Result<&mut KeyState, SrtpError> {
        if self.mki_len == 0 {
            return self.all.first_mut().ok_or(SrtpError::UnknownMki);
        }
        let mki = mki_at
            .and_then(|at| packet.get(at..at + self.mki_len))
            .ok_or(SrtpError::TooShort)?;
        self.all
            .iter_mut()
            .find(|k| &*k.mki == mki)
            .ok_or(SrtpError::UnknownMki)
    }
}

#[derive(Debug, Clone, Copy)]
struct ReceivedSsrc {
    ssrc: u32,
    rtp: Option<ReplayWindow>,
    rtcp: Option<ReplayWindow>,
}

/// Unprotects the SRTP and SRTCP packets one peer sends.
pub struct SrtpReceiver {
    keys: Keys,
    ssrcs: Vec<ReceivedSsrc>,
    max_ssrcs: usize,
}

impl std::fmt::Debug for SrtpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpReceiver")
            .field("keys", &self.keys.all.len())
            .field("ssrcs", &self.ssrcs.len())
            .finish()
    }
}

impl SrtpReceiver {
    pub fn new(policy: &SrtpPolicy) -> Result<SrtpReceiver, SrtpError> {
        Ok(SrtpReceiver {
            keys: Keys::new(policy)?,
            ssrcs: Vec::with_capacity(policy.max_ssrcs),
            max_ssrcs: policy.max_ssrcs,
        })
    }

    /// SSRCs whose packets have authenticated.
    pub fn ssrc_count(&self) -> usize {
        self.ssrcs.len()
    }

    fn slot(&self, ssrc: u32) -> Result<Option<usize>, SrtpError> {
        match self.ssrcs.iter().position(|s| s.ssrc == ssrc) {
            Some(slot) => Ok(Some(slot)),
            None if self.ssrcs.len() < self.max_ssrcs => Ok(None),
            None => Err(SrtpError::SsrcLimit),
        }
    }

    /// Verifies and decrypts the SRTP packet `buf[..len]` in place; returns the length of
    /// the RTP packet. Replays, forgeries and packets too old for the window are refused;
    /// the state changes only for packets that authenticated.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::TooShort)?;
        let (ssrc, seq) = rtp_ssrc_seq(packet).ok_or(SrtpError::TooShort)?;
        let slot = self.slot(ssrc)?;
        let window = slot.and_then(|s| self.ssrcs.get(s)).and_then(|s| s.rtp);
        let index = match window {
            Some(window) => {
                let index = estimate_index(window.highest(), seq).ok_or(SrtpError::ReplayOld)?;
                window.check(index)?;
                index
            }
            None => u64::from(seq),
        };
        let mki_len = self.keys.mki_len;
        let profile_tag = self.keys.all.first().map_or(0, |k| k.keys.rtp_tag_len());
        let mki_at = if self.is_aead() {
            len.checked_sub(mki_len)
        } else {
            len.checked_sub(mki_len + profile_tag)
        };
        let key = self.keys.by_mki(packet, mki_at)?;
        if key.used >= key.lifetime {
            return Err(SrtpError::KeyExpired);
        }
        let plain = key
            .keys
            .unprotect_rtp(buf, len, (index >> 16) as u32, mki_len)?;
        key.used += 1;
        match slot.and_then(|s| self.ssrcs.get_mut(s)) {
            Some(state) => match &mut state.rtp {
                Some(window) => window.accept(index),
                None => state.rtp = Some(ReplayWindow::starting_at(index)),
            },
            None => self.ssrcs.push(ReceivedSsrc {
                ssrc,
                rtp: Some(ReplayWindow::starting_at(index)),
                rtcp: None,
            }),
        }
        Ok(plain)
    }

    /// Verifies and decrypts the SRTCP packet `buf[..len]` in place; returns the length of
    /// the RTCP packet.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::TooShort)?;
        let ssrc = rtcp_ssrc(packet).ok_or(SrtpError::TooShort)?;
        let slot = self.slot(ssrc)?;
        let mki_len = self.keys.mki_len;
        let first = &self.keys.all.first().ok_or(SrtpError::UnknownMki)?.keys;
        let (_, index) = first
            .srtcp_index(packet, mki_len)
            .ok_or(SrtpError::TooShort)?;
        let window = slot.and_then(|s| self.ssrcs.get(s)).and_then(|s| s.rtcp);
        if let Some(window) = window {
            window.check(u64::from(index))?;
        }
        let tag_len = first.profile.rtcp_tag_len();
        let mki_at = if self.is_aead() {
            len.checked_sub(mki_len)
        } else {
            len.checked_sub(mki_len + tag_len)
        };
        let key = self.keys.by_mki(packet, mki_at)?;
        if key.used >= key.lifetime {
            return Err(SrtpError::KeyExpired);
        }
        let (plain, index) = key.keys.unprotect_rtcp(buf, len, mki_len)?;
        key.used += 1;
        let index = u64::from(index);
        match slot.and_then(|s| self.ssrcs.get_mut(s)) {
            Some(state) => match &mut state.rtcp {
                Some(window) => window.accept(index),
                None => state.rtcp = Some(ReplayWindow::starting_at(index)),
            },
            None => self.ssrcs.push(ReceivedSsrc {
                ssrc,
                rtp: None,
                rtcp: Some(ReplayWindow::starting_at(index)),
            }),
        }
        Ok(plain)
    }

    fn is_aead(&self) -> bool {
        self.keys
            .all
            .first()
            .is_some_and(|k| k.keys.profile.is_aead())
    }
}

#[derive(Debug, Clone, Copy)]
struct SentSsrc {
    ssrc: u32,
    rtp: Option<ReplayWindow>,
    /// The last SRTCP index used (0: none yet; the first packet gets index 1, as libsrtp).
    rtcp_index: u32,
}

/// Protects the RTP and RTCP packets the relay sends to one peer.
pub struct SrtpSender {
    keys: Keys,
    active: usize,
    ssrcs: Vec<SentSsrc>,
    max_ssrcs: usize,
    encrypt_rtcp: bool,
}

impl std::fmt::Debug for SrtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSender")
            .field("keys", &self.keys.all.len())
            .field("active", &self.active)
            .field("ssrcs", &self.ssrcs.len())
            .finish()
    }
}

impl SrtpSender {
    pub fn new(policy: &SrtpPolicy) -> Result<SrtpSender, SrtpError> {
        Ok(SrtpSender {
            keys: Keys::new(policy)?,
            active: 0,
            ssrcs: Vec::with_capacity(policy.max_ssrcs),
            max_ssrcs: policy.max_ssrcs,
            encrypt_rtcp: policy.encrypt_rtcp,
        })
    }

    /// The number of bytes protection adds at most (tag, MKI, SRTCP index, Cryptex block).
    pub fn max_overhead(&self) -> usize {
        super::transform::max_overhead(self.keys.mki_len)
    }

    /// The SSRC's slot, `None` for a new SSRC there is room for.
    fn slot(&self, ssrc: u32) -> Result<Option<usize>, SrtpError> {
        match self.ssrcs.iter().position(|s| s.ssrc == ssrc) {
            Some(slot) => Ok(Some(slot)),
            None if self.ssrcs.len() < self.max_ssrcs => Ok(None),
            None => Err(SrtpError::SsrcLimit),
        }
    }

    /// The state of an SSRC once a packet of it was protected.
    fn state(&mut self, slot: Option<usize>, ssrc: u32) -> Option<&mut SentSsrc> {
        let slot = match slot {
            Some(slot) => slot,
            None => {
                self.ssrcs.push(SentSsrc {
                    ssrc,
                    rtp: None,
                    rtcp_index: 0,
                });
                self.ssrcs.len() - 1
            }
        };
        self.ssrcs.get_mut(slot)
    }

    /// The key to protect with, moving to the next one when the active key's lifetime is
    /// used up.
    fn active_key(&mut self) -> Result<&mut KeyState, SrtpError> {
        while self
            .keys
            .all
            .get(self.active)
            .is_some_and(|k| k.used >= k.lifetime)
        {
            self.active += 1;
        }
        self.keys
            .all
            .get_mut(self.active)
            .ok_or(SrtpError::KeyExpired)
    }

    /// Protects the RTP packet `buf[..len]` in place; returns the SRTP packet's length.
    /// `buf` needs [`SrtpSender::max_overhead`] bytes of room after the packet. An index
    /// that was already sent (a repeated sequence number) is refused, so that no
    /// keystream is ever used twice.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::NoRoom)?;
        let (ssrc, seq) = rtp_ssrc_seq(packet).ok_or(SrtpError::Malformed)?;
        let slot = self.slot(ssrc)?;
        let window = slot.and_then(|s| self.ssrcs.get(s)).and_then(|s| s.rtp);
        let index = match window {
            Some(window) => {
                let index = estimate_index(window.highest(), seq).ok_or(SrtpError::ReplayOld)?;
                window.check(index)?;
                index
            }
            None => u64::from(seq),
        };
        let key = self.active_key()?;
        let out = key
            .keys
            .protect_rtp(buf, len, (index >> 16) as u32, &key.mki)?;
        key.take_one()?;
        if let Some(state) = self.state(slot, ssrc) {
            match &mut state.rtp {
                Some(window) => window.accept(index),
                None => state.rtp = Some(ReplayWindow::starting_at(index)),
            }
        }
        Ok(out)
    }

    /// Protects the RTCP packet `buf[..len]` in place with the SSRC's next SRTCP index;
    /// returns the SRTCP packet's length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::NoRoom)?;
        let ssrc = rtcp_ssrc(packet).ok_or(SrtpError::Malformed)?;
        let slot = self.slot(ssrc)?;
        let index = slot
            .and_then(|s| self.ssrcs.get(s))
            .map_or(1, |s| s.rtcp_index.wrapping_add(1));
        if index > MAX_SRTCP_INDEX {
            return Err(SrtpError::KeyExpired);
        }
        let encrypt = self.encrypt_rtcp;
        let key = self.active_key()?;
        let out = key.keys.protect_rtcp(buf, len, index, encrypt, &key.mki)?;
        key.take_one()?;
        if let Some(state) = self.state(slot, ssrc) {
            state.rtcp_index = index;
        }
        Ok(out)
    }
}
