//! One leg of one stream as the relay keeps it (sans-IO): where its peer receives, where
//! its packets really come from (latching), its counters, the quality of the RTP it sends,
//! and its media protection.

use std::net::SocketAddr;
use std::time::Instant;

use crate::control::RemoteMedia;
use crate::latch::{Admission, Latch};
use crate::packet::Port;
use crate::rtp_quality::RtpReceiver;
use crate::security::LegCrypto;
use crate::stats::LegStats;

#[derive(Debug)]
pub(crate) struct LegState {
    pub(crate) remote: RemoteMedia,
    pub(crate) rtp_latch: Latch,
    pub(crate) rtcp_latch: Latch,
    pub(crate) counters: LegStats,
    pub(crate) rtp: RtpReceiver,
    pub(crate) crypto: LegCrypto,
}

impl LegState {
    pub(crate) fn new(epoch: Instant) -> LegState {
        LegState {
            remote: RemoteMedia::default(),
            rtp_latch: Latch::Open,
            rtcp_latch: Latch::Open,
            counters: LegStats::default(),
            rtp: RtpReceiver::new(epoch),
            crypto: LegCrypto::default(),
        }
    }

    pub(crate) fn update(&mut self, remote: RemoteMedia) {
        let moved = remote.rtp != self.remote.rtp
            || remote.rtcp != self.remote.rtcp
            || remote.signalling_ip != self.remote.signalling_ip;
        if moved {
            self.rtp_latch = Latch::Open;
            self.rtcp_latch = Latch::Open;
        }
        self.remote = remote;
    }

    /// Where RTP for this leg's peer goes: the latched source, else the SDP address.
    pub(crate) fn rtp_destination(&self) -> Option<SocketAddr> {
        self.rtp_latch.address().or(usable(self.remote.rtp))
    }

    /// Where RTCP for this leg's peer goes, and from which of the leg's ports.
    pub(crate) fn rtcp_destination(&self) -> Option<(Port, SocketAddr)> {
        if self.remote.rtcp_mux {
            return self.rtp_destination().map(|to| (Port::Rtp, to));
        }
        let sdp_rtcp = usable(self.remote.rtcp).or_else(|| {
            usable(self.remote.rtp).and_then(|rtp| {
                rtp.port()
                    .checked_add(1)
                    .map(|port| SocketAddr::new(rtp.ip(), port))
            })
        });
        self.rtcp_latch
            .address()
            .or(sdp_rtcp)
            .map(|to| (Port::Rtcp, to))
    }

    pub(crate) fn latch_mut(&mut self, port: Port) -> &mut Latch {
        match port {
            Port::Rtp => &mut self.rtp_latch,
            Port::Rtcp => &mut self.rtcp_latch,
        }
    }

    /// What the latch of `port` says of `source`.
    pub(crate) fn admission(&self, port: Port, source: SocketAddr) -> Admission {
        match port {
            Port::Rtp => self.rtp_latch.check(source, &self.remote, None),
            Port::Rtcp => {
                let rtp_ip = self.rtp_latch.address().map(|a| a.ip());
                self.rtcp_latch.check(source, &self.remote, rtp_ip)
            }
        }
    }

    pub(crate) fn snapshot(&self) -> LegStats {
        LegStats {
            rtp: self.rtp.quality(),
            latched_rtp: self.rtp_latch.address(),
            latched_rtcp: self.rtcp_latch.address(),
            srtp_drops: self.crypto.drops,
            dtls_drops: self.crypto.dtls_drops,
            security: self.crypto.report(),
            ..self.counters
        }
    }
}

/// An SDP address the relay can send to (not port 0, not the `0.0.0.0` hold address).
fn usable(address: Option<SocketAddr>) -> Option<SocketAddr> {
    address.filter(|a| a.port() != 0 && !a.ip().is_unspecified())
}
