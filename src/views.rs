//! The signalling side's values as the admin API and the CDRs show them: the security
//! summary, relay statistics, calls in progress, and wall-clock times.
//!
//! The JSON stored in a CDR's `media_stats` and `security` columns is exactly these
//! types (admin_api::model::MediaStats and SecurityInfo), so the API can read them back.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use admin_api::model::{
    CallInfo, CallLeg, LegMedia, LegSecurityInfo, MediaInfo, MediaProtectionInfo, MediaStats,
    SecurityInfo, SignallingInfo, StreamMedia,
};
use sbc_core::b2bua::summary::{LegSecurity, SecuritySummary};
use sbc_core::b2bua::{CallView, LegView};

/// Converts the monotonic instants of signalling into unix milliseconds, from one
/// reading of both clocks taken at start.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    instant: Instant,
    unix_ms: i64,
}

impl WallClock {
    /// Reads both clocks now.
    pub fn now() -> WallClock {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        WallClock {
            instant: Instant::now(),
            unix_ms,
        }
    }

    /// `at` in unix milliseconds.
    pub fn unix_ms(&self, at: Instant) -> i64 {
        let millis =
            |duration: std::time::Duration| i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        if at >= self.instant {
            self.unix_ms.saturating_add(millis(at - self.instant))
        } else {
            self.unix_ms.saturating_sub(millis(self.instant - at))
        }
    }
}

fn leg_security(leg: &LegSecurity) -> LegSecurityInfo {
    LegSecurityInfo {
        signalling: SignallingInfo {
            transport: leg.signalling.protocol.name().to_owned(),
            encrypted: leg.signalling.encrypted(),
            peer_certificate: leg.signalling.peer_certificate.name().to_owned(),
        },
        media: MediaProtectionInfo {
            protection: leg.media.name().to_owned(),
            encrypted: leg.media.encrypted(),
            suite: leg.media.detail().map(str::to_owned),
        },
    }
}

/// The security summary as the API and CDRs show it.
pub fn security_info(summary: &SecuritySummary) -> SecurityInfo {
    SecurityInfo {
        a: leg_security(&summary.a),
        b: leg_security(&summary.b),
        identity: summary.identity.name().to_owned(),
    }
}

fn leg_media(leg: &media_relay::LegStats) -> LegMedia {
    LegMedia {
        packets_received: leg.packets_received,
        bytes_received: leg.bytes_received,
        packets_sent: leg.packets_sent,
        bytes_sent: leg.bytes_sent,
        packets_dropped: leg.drops.total(),
        rtp_lost: leg.rtp.lost,
        jitter_ms: leg.rtp.jitter_ms,
        latched: leg.latched_rtp.map(|addr| addr.to_string()),
    }
}

/// The relay's statistics of a session as the API and CDRs show them.
pub fn media_stats(stats: &media_relay::SessionStats) -> MediaStats {
    MediaStats {
        streams: stats
            .streams
            .iter()
            .map(|stream| StreamMedia {
                a: leg_media(&stream.a),
                b: leg_media(&stream.b),
            })
            .collect(),
    }
}

fn call_leg(leg: &LegView) -> CallLeg {
    CallLeg {
        call_id: leg.call_id.clone(),
        local_tag: leg.local_tag.clone(),
        remote_tag: leg.remote_tag.clone(),
        peer: leg.peer.to_string(),
        transport: leg.protocol.name().to_owned(),
        relay: leg.relay.map(|addr| addr.to_string()),
        codecs: leg.codecs.clone(),
    }
}

/// The API id of call `id` of shard `shard`.
pub fn call_id(shard: usize, id: u64) -> String {
    format!("{shard}-{id}")
}

/// The shard and id an API call id names.
pub fn parse_call_id(text: &str) -> Option<(usize, u64)> {
    let (shard, id) = text.split_once('-')?;
    let digits = |part: &str| {
        !part.is_empty() && part.len() <= 20 && part.bytes().all(|b| b.is_ascii_digit())
    };
    if !(digits(shard) && digits(id)) {
        return None;
    }
    Some((shard.parse().ok()?, id.parse().ok()?))
}

/// A call in progress as the API shows it.
pub fn call_info(
    shard: usize,
    view: &CallView,
    clock: &WallClock,
    now: Instant,
    stats: Option<MediaStats>,
) -> CallInfo {
    CallInfo {
        id: call_id(shard, view.id),
        state: view.state.name().to_owned(),
        started_at: clock.unix_ms(view.started),
        answered_at: view.answered.map(|at| clock.unix_ms(at)),
        duration_ms: view
            .answered
            .map(|at| {
                i64::try_from(now.saturating_duration_since(at).as_millis()).unwrap_or(i64::MAX)
            })
            .unwrap_or(0),
        caller: view.caller.clone(),
        callee: view.callee.clone(),
        trunk: view.trunk.clone(),
        a: call_leg(&view.a),
        b: call_leg(&view.b),
        media: MediaInfo {
            session: view.media_session.map(|session| session.0),
            stats,
        },
        security: security_info(&view.security),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_round_trip_and_garbage_is_refused() {
        assert_eq!(parse_call_id(&call_id(3, 42)), Some((3, 42)));
        for bad in [
            "",
            "-",
            "3-",
            "-4",
            "a-1",
            "1-b",
            "1-2-3",
            "+1-2",
            "99999999999999999999999-1",
        ] {
            assert_eq!(parse_call_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_wall_clock_converts_both_ways() {
        let clock = WallClock {
            instant: Instant::now(),
            unix_ms: 1_000_000,
        };
        let later = clock.instant + std::time::Duration::from_millis(250);
        assert_eq!(clock.unix_ms(later), 1_000_250);
        if let Some(earlier) = clock
            .instant
            .checked_sub(std::time::Duration::from_millis(10))
        {
            assert_eq!(clock.unix_ms(earlier), 999_990);
        }
    }
}
