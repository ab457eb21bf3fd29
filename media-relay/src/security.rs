//! The media protection of one leg (sans-IO): its SRTP contexts, its ICE-lite agent and the
//! state of its DTLS handshakes. The session asks it to unprotect what the leg's peer sent
//! and to protect what goes to that peer; the DTLS handshakes themselves run elsewhere
//! (`io::dtls`), and their keys are installed here when they complete.

use std::net::SocketAddr;

use crate::control::{LegSecurity, Protection, SdesKeys};
use std::time::Instant;

use crate::dtls::{
    DtlsBudget, DtlsDrop, DtlsDrops, DtlsError, DtlsRole, DtlsSrtpKeys, Fingerprint,
};
use crate::error::RelayError;
use crate::packet::Port;
use crate::srtp::{
    DEFAULT_MAX_SSRCS, HeaderOptions, MasterKey, SrtpDrops, SrtpError, SrtpPolicy, SrtpReceiver,
    SrtpSender, Suite,
};
use crate::stats::{LegSecurityReport, ProtectionKind};
use crate::stun::IceAgent;

/// Why a packet could not be (un)protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CryptoDrop {
    /// The leg's keys are not known yet.
    KeysPending,
    Srtp(SrtpError),
}

/// A receiving and a sending SRTP context.
#[derive(Debug, Default)]
struct Contexts {
    rx: Option<SrtpReceiver>,
    tx: Option<SrtpSender>,
}

/// The DTLS handshake on one port of the leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Handshake {
    #[default]
    Pending,
    Connected,
    Failed(DtlsError),
}

/// A DTLS endpoint the driver must start (or restart) for this leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DtlsStart {
    pub port: Port,
    pub role: DtlsRole,
    pub fingerprint: Fingerprint,
}

/// What the driver has to do with the DTLS endpoints of a leg after a change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DtlsChanges {
    pub stop: Vec<Port>,
    pub start: Vec<DtlsStart>,
}

/// The protection state of one leg.
#[derive(Debug, Default)]
pub(crate) struct LegCrypto {
    config: LegSecurity,
    kind: ProtectionKind,
    suite: Option<Suite>,
    /// RTP, and RTCP too unless a separate RTCP-port handshake gave its own keys.
    main: Contexts,
    /// DTLS on a separate RTCP port (no rtcp-mux): the keys of that handshake.
    rtcp: Option<Contexts>,
    ice: Option<IceAgent>,
    handshakes: [Handshake; 2],
    /// Where the last DTLS record on each port came from (the handshake's peer).
    dtls_peers: [Option<SocketAddr>; 2],
    /// A handshake was started on the port (the peer's fingerprint is known).
    dtls_started: [bool; 2],
    /// What of the peer's DTLS traffic may still reach the handshake thread.
    dtls_budget: DtlsBudget,
    pub drops: SrtpDrops,
    pub dtls_drops: DtlsDrops,
    received: u64,
    sent: u64,
}

fn port_index(port: Port) -> usize {
    match port {
        Port::Rtp => 0,
        Port::Rtcp => 1,
    }
}

fn policy(suite: Suite, keys: &[MasterKey], encrypt_rtcp: bool) -> Result<SrtpPolicy, RelayError> {
    if keys.iter().any(|k| !k.fits(suite.profile())) {
        return Err(RelayError::InvalidKeys(format!(
            "key or salt length does not fit {suite}"
        )));
    }
    Ok(SrtpPolicy {
        profile: suite.profile(),
        keys: keys.to_vec(),
        header: HeaderOptions::default(),
        encrypt_rtcp,
        max_ssrcs: DEFAULT_MAX_SSRCS,
    })
}

fn invalid(error: SrtpError) -> RelayError {
    RelayError::InvalidKeys(error.name().into())
}

impl LegCrypto {
    /// Applies a new configuration; keeps whatever state the unchanged parts have (an SDES
    /// re-offer with the same keys keeps rollover counters and replay windows; a DTLS leg
    /// with the same role and fingerprint keeps its handshake and keys). Returns the DTLS
    /// endpoints to stop and start. `rtcp_mux`: whether RTCP shares the RTP port.
    pub(crate) fn configure(
        &mut self,
        security: &LegSecurity,
        rtcp_mux: bool,
    ) -> Result<DtlsChanges, RelayError> {
        let mut changes = DtlsChanges::default();
        self.ice = security.ice.as_ref().map(|ice| IceAgent {
            local_ufrag: ice.local_ufrag.clone(),
            local_pwd: ice.local_pwd.clone(),
            remote_ufrag: ice.remote_ufrag.clone(),
        });
        let previous = std::mem::replace(&mut self.config, security.clone());
        let had_dtls = matches!(previous.protection, Protection::Dtls(_));
        match &security.protection {
            Protection::Plain => {
                self.kind = ProtectionKind::Plain;
                self.suite = None;
                self.main = Contexts::default();
                self.rtcp = None;
            }
            Protection::Sdes(keys) => {
                let old = match &previous.protection {
                    Protection::Sdes(old) => Some(old),
                    _ => None,
                };
                if let Err(error) = self.configure_sdes(keys, old) {
                    self.config = previous;
                    return Err(error);
                }
                self.kind = ProtectionKind::Sdes;
                self.rtcp = None;
            }
            Protection::Dtls(setup) => {
                let unchanged =
                    matches!(&previous.protection, Protection::Dtls(old) if old == setup);
                self.kind = ProtectionKind::Dtls;
                if !unchanged || !had_dtls {
                    self.main = Contexts::default();
                    self.rtcp = None;
                    self.suite = None;
                    self.handshakes = [Handshake::Pending; 2];
                    self.dtls_started = [false; 2];
                    if had_dtls {
                        changes.stop = vec![Port::Rtp, Port::Rtcp];
                    }
                    if let Some(fingerprint) = &setup.fingerprint {
                        let ports: &[Port] = if rtcp_mux {
                            &[Port::Rtp]
                        } else {
                            &[Port::Rtp, Port::Rtcp]
                        };
                        for port in ports {
                            self.dtls_started[port_index(*port)] = true;
                        }
                        changes.start = ports
                            .iter()
                            .map(|port| DtlsStart {
                                port: *port,
                                role: setup.role,
                                fingerprint: fingerprint.clone(),
                            })
                            .collect();
                    }
                }
            }
        }
        if had_dtls && !matches!(security.protection, Protection::Dtls(_)) {
            changes.stop = vec![Port::Rtp, Port::Rtcp];
            self.handshakes = [Handshake::Pending; 2];
            self.dtls_started = [false; 2];
        }
        Ok(changes)
    }

    fn configure_sdes(
        &mut self,
        keys: &SdesKeys,
        old: Option<&SdesKeys>,
    ) -> Result<(), RelayError> {
        if keys.send.is_empty() {
            return Err(RelayError::InvalidKeys("no key to send with".into()));
        }
        let same_suite = old.is_some_and(|o| o.suite == keys.suite);
        let send_unchanged = same_suite
            && old.is_some_and(|o| {
                o.send == keys.send && o.unencrypted_srtcp == keys.unencrypted_srtcp
            })
            && self.main.tx.is_some();
        let receive_unchanged = same_suite
            && old.is_some_and(|o| o.receive == keys.receive)
            && (self.main.rx.is_some() || keys.receive.is_empty());
        let tx = if send_unchanged {
            self.main.tx.take()
        } else {
            let policy = policy(keys.suite, &keys.send, !keys.unencrypted_srtcp)?;
            Some(SrtpSender::new(&policy).map_err(invalid)?)
        };
        let rx = if receive_unchanged {
            self.main.rx.take()
        } else if keys.receive.is_empty() {
            None
        } else {
            // The peer's SRTCP may be unencrypted (E = 0) either way: the flag is
            // authenticated and the receiver follows it.
            let policy = policy(keys.suite, &keys.receive, true)?;
            Some(SrtpReceiver::new(&policy).map_err(invalid)?)
        };
        self.main = Contexts { rx, tx };
        self.suite = Some(keys.suite);
        Ok(())
    }

    /// Installs the keys a DTLS handshake on `port` exported.
    pub(crate) fn dtls_connected(&mut self, port: Port, keys: &DtlsSrtpKeys) {
        if self.kind != ProtectionKind::Dtls {
            return;
        }
        let make = || -> Result<Contexts, SrtpError> {
            let send = SrtpPolicy::new(keys.suite, keys.send.clone());
            let receive = SrtpPolicy::new(keys.suite, keys.receive.clone());
            Ok(Contexts {
                rx: Some(SrtpReceiver::new(&receive)?),
                tx: Some(SrtpSender::new(&send)?),
            })
        };
        let Ok(contexts) = make() else {
            self.handshakes[port_index(port)] = Handshake::Failed(DtlsError::NoSrtpProfile);
            return;
        };
        match port {
            Port::Rtp => self.main = contexts,
            Port::Rtcp => self.rtcp = Some(contexts),
        }
        self.suite = Some(keys.suite);
        self.handshakes[port_index(port)] = Handshake::Connected;
    }

    pub(crate) fn dtls_failed(&mut self, port: Port, error: DtlsError) {
        self.handshakes[port_index(port)] = Handshake::Failed(error);
    }

    pub(crate) fn is_dtls(&self) -> bool {
        self.kind == ProtectionKind::Dtls
    }

    pub(crate) fn is_protected(&self) -> bool {
        self.kind != ProtectionKind::Plain
    }

    pub(crate) fn ice(&self) -> Option<&IceAgent> {
        self.ice.as_ref()
    }

    /// Whether a DTLS record of the peer on `port` may go to the handshake thread at `now`
    /// (see [`crate::dtls::DtlsBudget`]); counts it by reason when not.
    pub(crate) fn admit_dtls(
        &mut self,
        now: Instant,
        port: Port,
        record: &[u8],
    ) -> Result<(), DtlsDrop> {
        let index = port_index(port);
        let verdict = if self.kind != ProtectionKind::Dtls {
            Err(DtlsDrop::NotDtls)
        } else if matches!(self.handshakes[index], Handshake::Failed(_)) {
            Err(DtlsDrop::HandshakeFailed)
        } else if !self.dtls_started[index] {
            Err(DtlsDrop::NoHandshake)
        } else if !self.dtls_budget.admit(now, record) {
            Err(DtlsDrop::RateLimited)
        } else {
            Ok(())
        };
        if let Err(reason) = verdict {
            self.dtls_drops.add(reason, 1);
        }
        verdict
    }

    /// Counts a DTLS record of the peer dropped for `reason` outside [`Self::admit_dtls`].
    pub(crate) fn count_dtls_drop(&mut self, reason: DtlsDrop) {
        self.dtls_drops.add(reason, 1);
    }

    /// Remembers where the last DTLS record on `port` came from.
    pub(crate) fn set_dtls_peer(&mut self, port: Port, source: SocketAddr) {
        self.dtls_peers[port_index(port)] = Some(source);
    }

    pub(crate) fn dtls_peer(&self, port: Port) -> Option<SocketAddr> {
        self.dtls_peers[port_index(port)]
    }

    fn contexts(&mut self, rtcp: bool) -> &mut Contexts {
        match (&mut self.rtcp, rtcp) {
            (Some(separate), true) => separate,
            _ => &mut self.main,
        }
    }

    /// Verifies and decrypts a packet of the leg's peer in `buf[..len]`; returns the plain
    /// length. Plain legs return `len` unchanged.
    pub(crate) fn unprotect(
        &mut self,
        rtcp: bool,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, CryptoDrop> {
        if self.kind == ProtectionKind::Plain {
            return Ok(len);
        }
        let Some(rx) = self.contexts(rtcp).rx.as_mut() else {
            return Err(CryptoDrop::KeysPending);
        };
        let result = if rtcp {
            rx.unprotect_rtcp(buf, len)
        } else {
            rx.unprotect_rtp(buf, len)
        };
        match result {
            Ok(plain) => {
                self.received += 1;
                Ok(plain)
            }
            Err(error) => {
                self.drops.add(error, 1);
                Err(CryptoDrop::Srtp(error))
            }
        }
    }

    /// Protects a packet for the leg's peer in `buf[..len]` (with room after it); returns
    /// the protected length. Plain legs return `len` unchanged.
    pub(crate) fn protect(
        &mut self,
        rtcp: bool,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, CryptoDrop> {
        if self.kind == ProtectionKind::Plain {
            return Ok(len);
        }
        let Some(tx) = self.contexts(rtcp).tx.as_mut() else {
            return Err(CryptoDrop::KeysPending);
        };
        let result = if rtcp {
            tx.protect_rtcp(buf, len)
        } else {
            tx.protect_rtp(buf, len)
        };
        match result {
            Ok(protected) => {
                self.sent += 1;
                Ok(protected)
            }
            // Counted by the caller on the leg the packet came from.
            Err(error) => Err(CryptoDrop::Srtp(error)),
        }
    }

    pub(crate) fn report(&self) -> LegSecurityReport {
        let established = match self.kind {
            ProtectionKind::Plain => false,
            ProtectionKind::Sdes => self.main.rx.is_some() && self.main.tx.is_some(),
            ProtectionKind::Dtls => self.main.rx.is_some() && self.main.tx.is_some(),
        };
        let dtls_failure = self.handshakes.iter().find_map(|h| match h {
            Handshake::Failed(error) => Some(*error),
            _ => None,
        });
        LegSecurityReport {
            protection: self.kind,
            suite: self.suite,
            established,
            dtls_failure,
            ice: self.ice.is_some(),
            srtp_received: self.received,
            srtp_sent: self.sent,
        }
    }
}
