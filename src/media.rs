//! The B2BUA's [`MediaAnchor`] on top of the media relay's control API.
//!
//! sbc-core and media-relay know nothing of each other; this adapter maps one vocabulary
//! onto the other. Each signalling shard has its own adapter (a clone of the relay
//! handle), so no lock is shared on the call path.
//!
//! Each adapter allocates for its shard ([`RelayAnchor::for_shard`]): the relay remembers
//! the owner of every session, and its inactivity events go to that shard only
//! ([`deliver_inactive`]).
//!
//! With a [`Finaliser`], a released session is not freed on the shard's thread: the
//! finaliser's thread first asks the relay for the session's final statistics (a round
//! trip to its worker, which a shard must not wait for), then frees it, and hands the
//! statistics on (to the CDR writer).

use std::net::{IpAddr, SocketAddr};

use media_relay::dtls::{DtlsRole as RelayDtlsRole, Fingerprint, HashFunction};
use media_relay::srtp::{MasterKey, Suite};
use media_relay::{Relay, RelayError};
use sbc_core::media::security::{
    CertFingerprint, DtlsRole, IceCredentials, LegProtection, LegSecurity, SdesKey, SrtpSuite,
};
use sbc_core::media::{
    Leg, LegAddr, MediaAllocation, MediaAnchor, MediaBundle, MediaError, MediaSessionId,
    RemoteMedia, StreamAddrs,
};

/// A shard's handle on the relay.
#[derive(Debug, Clone)]
pub struct RelayAnchor {
    relay: Relay,
    /// The address written in SDP for the relay's ports (`media.advertise`, else the
    /// address they are bound on).
    advertised: IpAddr,
    /// Failed allocations so far (logged at 1, 2, 4, 8 … so a storm cannot flood the log).
    failures: u64,
    finaliser: Option<Finaliser>,
    /// The signalling shard the sessions allocated here belong to.
    shard: u32,
}

impl RelayAnchor {
    pub fn new(relay: Relay, advertised: IpAddr) -> RelayAnchor {
        RelayAnchor {
            relay,
            advertised,
            failures: 0,
            finaliser: None,
            shard: 0,
        }
    }

    /// Sessions allocated here belong to signalling shard `shard`: the relay's events about
    /// them go to it (see [`deliver_inactive`]).
    pub fn for_shard(mut self, shard: usize) -> RelayAnchor {
        self.shard = u32::try_from(shard).unwrap_or(u32::MAX);
        self
    }

    /// Released sessions go through `finaliser` (see the module docs).
    pub fn with_finaliser(mut self, finaliser: Finaliser) -> RelayAnchor {
        self.finaliser = Some(finaliser);
        self
    }

    /// The relay's ports as peers must address them.
    fn stream_addrs(&self, stream: &media_relay::StreamAddrs) -> StreamAddrs {
        let leg = |leg: media_relay::LegAddr| LegAddr {
            rtp: SocketAddr::new(self.advertised, leg.rtp.port()),
            rtcp: SocketAddr::new(self.advertised, leg.rtcp.port()),
        };
        StreamAddrs {
            a: leg(stream.a),
            b: leg(stream.b),
        }
    }
}

impl MediaAnchor for RelayAnchor {
    fn allocate(&mut self, streams: usize) -> Result<MediaAllocation, MediaError> {
        let allocation = self
            .relay
            .allocate_for(self.shard, streams)
            .map_err(|error| {
                self.failures += 1;
                if self.failures.is_power_of_two() {
                    // Calls get 503; the operator needs to know why (ports, file descriptors).
                    tracing::warn!(
                        %error,
                        reason = error.name(),
                        failures = self.failures,
                        "media relay cannot allocate ports for a call"
                    );
                }
                media_error(error)
            })?;
        Ok(MediaAllocation {
            session: MediaSessionId(allocation.session.0),
            streams: allocation
                .streams
                .iter()
                .map(|stream| self.stream_addrs(stream))
                .collect(),
        })
    }

    fn update(
        &mut self,
        session: MediaSessionId,
        stream: usize,
        leg: Leg,
        remote: RemoteMedia,
    ) -> Result<(), MediaError> {
        let remote = media_relay::RemoteMedia {
            rtp: remote.rtp,
            rtcp: remote.rtcp,
            rtcp_mux: remote.rtcp_mux,
            // Where the leg's signalling comes from: lets a phone behind NAT latch.
            // (The B2BUA does not pass it yet; latching then needs the SDP address.)
            signalling_ip: None,
        };
        self.relay
            .update(
                media_relay::SessionId(session.0),
                stream,
                relay_leg(leg),
                remote,
            )
            .map_err(media_error)
    }

    fn add_streams(
        &mut self,
        session: MediaSessionId,
        count: usize,
    ) -> Result<Vec<StreamAddrs>, MediaError> {
        let added = self
            .relay
            .add_streams(media_relay::SessionId(session.0), count)
            .map_err(media_error)?;
        Ok(added
            .iter()
            .map(|stream| self.stream_addrs(stream))
            .collect())
    }

    fn release(&mut self, session: MediaSessionId) {
        if let Some(finaliser) = &self.finaliser
            && finaliser.queue.try_send(session).is_ok()
        {
            return;
        }
        // No finaliser, or it is behind: free at once (the CDR goes without statistics).
        self.relay.release(media_relay::SessionId(session.0));
    }

    fn protect(
        &mut self,
        session: MediaSessionId,
        stream: usize,
        leg: Leg,
        security: &LegSecurity,
    ) -> Result<(), MediaError> {
        let protection = match &security.protection {
            LegProtection::Plain => media_relay::Protection::Plain,
            LegProtection::Sdes {
                suite,
                send,
                receive,
                unencrypted_srtcp,
            } => {
                let suite = relay_suite(*suite);
                let keys = |keys: &[SdesKey]| -> Result<Vec<MasterKey>, MediaError> {
                    keys.iter().map(|k| master_key(suite, k)).collect()
                };
                media_relay::Protection::Sdes(media_relay::SdesKeys {
                    suite,
                    send: keys(send)?,
                    receive: keys(receive)?,
                    unencrypted_srtcp: *unencrypted_srtcp,
                })
            }
            LegProtection::Dtls { role, fingerprint } => {
                media_relay::Protection::Dtls(media_relay::DtlsSetup {
                    role: match role {
                        DtlsRole::Client => RelayDtlsRole::Client,
                        DtlsRole::Server => RelayDtlsRole::Server,
                    },
                    fingerprint: match fingerprint {
                        Some(f) => Some(relay_fingerprint(f).ok_or(MediaError::Unsupported)?),
                        None => None,
                    },
                })
            }
        };
        let ice = security
            .ice
            .as_ref()
            .map(|ice| media_relay::IceCredentials {
                local_ufrag: ice.local_ufrag.clone(),
                local_pwd: ice.local_pwd.clone(),
                remote_ufrag: ice.remote_ufrag.clone(),
            });
        self.relay
            .protect(
                media_relay::SessionId(session.0),
                stream,
                relay_leg(leg),
                media_relay::LegSecurity { protection, ice },
            )
            .map_err(media_error)
    }

    fn bundle(
        &mut self,
        session: MediaSessionId,
        leg: Leg,
        bundle: Option<&MediaBundle>,
    ) -> Result<(), MediaError> {
        let bundle = bundle.map(|bundle| media_relay::Bundle {
            transport: bundle.transport,
            members: bundle
                .members
                .iter()
                .map(|member| media_relay::BundleMember {
                    stream: member.stream,
                    mid: member.mid.clone(),
                    ssrcs: member.ssrcs.clone(),
                    payload_types: member.payload_types.clone(),
                })
                .collect(),
            mid_extension: bundle.mid_extension,
        });
        self.relay
            .bundle(media_relay::SessionId(session.0), relay_leg(leg), bundle)
            .map_err(media_error)
    }

    fn new_sdes_key(&mut self, suite: SrtpSuite) -> Result<SdesKey, MediaError> {
        let key = self
            .relay
            .new_sdes_key(relay_suite(suite))
            .map_err(media_error)?;
        Ok(SdesKey::new(key.concatenated()))
    }

    fn new_ice_credentials(&mut self, remote_ufrag: &str) -> Result<IceCredentials, MediaError> {
        let ice = self
            .relay
            .new_ice_credentials(remote_ufrag)
            .map_err(media_error)?;
        Ok(IceCredentials {
            local_ufrag: ice.local_ufrag,
            local_pwd: ice.local_pwd,
            remote_ufrag: ice.remote_ufrag,
        })
    }

    fn dtls_fingerprint(&self) -> Option<CertFingerprint> {
        let fingerprint = self.relay.dtls_fingerprint();
        Some(CertFingerprint {
            hash: fingerprint.hash.name().to_string(),
            digest: fingerprint.digest.clone(),
        })
    }
}

fn relay_suite(suite: SrtpSuite) -> Suite {
    match suite {
        SrtpSuite::AesCm128HmacSha1_80 => Suite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32 => Suite::AesCm128HmacSha1_32,
        SrtpSuite::AesCm192HmacSha1_80 => Suite::AesCm192HmacSha1_80,
        SrtpSuite::AesCm192HmacSha1_32 => Suite::AesCm192HmacSha1_32,
        SrtpSuite::AesCm256HmacSha1_80 => Suite::AesCm256HmacSha1_80,
        SrtpSuite::AesCm256HmacSha1_32 => Suite::AesCm256HmacSha1_32,
        SrtpSuite::AeadAes128Gcm => Suite::AeadAes128Gcm,
        SrtpSuite::AeadAes256Gcm => Suite::AeadAes256Gcm,
    }
}

fn master_key(suite: Suite, key: &SdesKey) -> Result<MasterKey, MediaError> {
    let mut master = MasterKey::from_concatenated(suite.profile(), &key.key_salt)
        .map_err(|_| MediaError::Unsupported)?;
    if let Some(mki) = &key.mki {
        master = master.with_mki(mki).map_err(|_| MediaError::Unsupported)?;
    }
    if let Some(lifetime) = key.lifetime {
        master = master.with_lifetime(lifetime);
    }
    Ok(master)
}

fn relay_fingerprint(fingerprint: &CertFingerprint) -> Option<Fingerprint> {
    Some(Fingerprint {
        hash: HashFunction::from_name(&fingerprint.hash)?,
        digest: fingerprint.digest.clone(),
    })
}

/// Where the relay's inactivity event about `session` went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// To the shard that allocated the session.
    Owner(usize),
    /// Nowhere: the session was released meanwhile (its call is over), or its owner is not
    /// one of `shards`.
    Released,
    /// Lost: the owner's queue was full or closed. The call then lasts until a BYE, its
    /// session timer, or the B2BUA's watchdog ends it.
    Lost,
}

/// Hands the relay's inactivity event about `session` to the shard that allocated it, the
/// only one that knows the session; never blocks.
pub fn deliver_inactive(
    relay: &Relay,
    shards: &[tokio::sync::mpsc::Sender<MediaSessionId>],
    session: media_relay::SessionId,
) -> Delivery {
    let Some(owner) = relay
        .owner_of(session)
        .and_then(|owner| usize::try_from(owner).ok())
    else {
        return Delivery::Released;
    };
    match shards.get(owner) {
        Some(shard) => match shard.try_send(MediaSessionId(session.0)) {
            Ok(()) => Delivery::Owner(owner),
            Err(_) => Delivery::Lost,
        },
        None => Delivery::Released,
    }
}

fn relay_leg(leg: Leg) -> media_relay::Leg {
    match leg {
        Leg::A => media_relay::Leg::A,
        Leg::B => media_relay::Leg::B,
    }
}

fn media_error(error: RelayError) -> MediaError {
    match error {
        RelayError::PoolExhausted { .. } => MediaError::PortsExhausted,
        RelayError::WorkerBusy(_) => MediaError::Overloaded,
        RelayError::UnknownSession(_) => MediaError::UnknownSession,
        RelayError::UnknownStream { .. } | RelayError::InvalidStreamCount { .. } => {
            MediaError::UnknownStream
        }
        RelayError::InvalidKeys(_) => MediaError::Unsupported,
        _ => MediaError::Unavailable,
    }
}

/// Sessions waiting for their final statistics at most.
const FINALISER_QUEUE: usize = 4_096;

/// The queue of released sessions to a finaliser thread.
#[derive(Debug, Clone)]
pub struct Finaliser {
    queue: std::sync::mpsc::SyncSender<MediaSessionId>,
}

/// Starts the thread that reads the final statistics of released sessions, frees them,
/// and gives the statistics (`None` when the relay could not tell) to `deliver`. It ends
/// when every [`Finaliser`] is dropped.
pub fn spawn_finaliser(
    relay: Relay,
    mut deliver: impl FnMut(MediaSessionId, Option<media_relay::SessionStats>) + Send + 'static,
) -> std::io::Result<(Finaliser, std::thread::JoinHandle<()>)> {
    let (queue, sessions) = std::sync::mpsc::sync_channel::<MediaSessionId>(FINALISER_QUEUE);
    let thread = std::thread::Builder::new()
        .name("sbc-media-final".into())
        .spawn(move || {
            while let Ok(session) = sessions.recv() {
                let id = media_relay::SessionId(session.0);
                let stats = relay.session_stats(id).ok();
                relay.release(id);
                deliver(session, stats);
            }
        })?;
    Ok((Finaliser { queue }, thread))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::sync::mpsc;

    /// An inactivity event reaches the shard that allocated the session, and no other.
    #[test]
    fn inactivity_goes_to_the_owning_shard_only() {
        let relay = Relay::start(media_relay::RelayConfig {
            address: IpAddr::from([127, 0, 83, 1]),
            port_min: 31_000,
            port_max: 31_031,
            workers: 1,
            ..media_relay::RelayConfig::default()
        })
        .unwrap();
        let (shards, mut queues): (Vec<_>, Vec<_>) = (0..3).map(|_| mpsc::channel(4)).unzip();
        let mut anchor =
            RelayAnchor::new(relay.clone(), IpAddr::from([127, 0, 83, 1])).for_shard(2);
        let session = anchor.allocate(1).unwrap().session;
        let id = media_relay::SessionId(session.0);
        assert_eq!(deliver_inactive(&relay, &shards, id), Delivery::Owner(2));
        assert_eq!(queues[2].try_recv().ok(), Some(session));
        assert!(queues[0].try_recv().is_err() && queues[1].try_recv().is_err());
        // A full queue loses the event without blocking.
        for _ in 0..4 {
            assert_eq!(deliver_inactive(&relay, &shards, id), Delivery::Owner(2));
        }
        assert_eq!(deliver_inactive(&relay, &shards, id), Delivery::Lost);
        // Once released, the event goes nowhere.
        anchor.release(session);
        assert_eq!(deliver_inactive(&relay, &shards, id), Delivery::Released);
        // A shard the handle does not know (a stale owner) gets nothing either.
        let mut other = RelayAnchor::new(relay.clone(), IpAddr::from([127, 0, 83, 1])).for_shard(7);
        let stray = other.allocate(1).unwrap().session;
        assert_eq!(
            deliver_inactive(&relay, &shards, media_relay::SessionId(stray.0)),
            Delivery::Released
        );
        other.release(stray);
    }

    /// The CNAME signalling writes in SDP is the one the relay writes in RTCP SDES.
    #[test]
    fn sdp_and_rtcp_present_the_same_cname() {
        for ssrc in [0, 1, 1337, 0x5bc0_5bc0, 0xdead_beef, u32::MAX] {
            let relay = media_relay::rtcp::opaque_cname(ssrc);
            assert_eq!(sbc_core::media::opaque_cname(ssrc).as_bytes(), &relay[..]);
        }
    }
}
