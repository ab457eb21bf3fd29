//! Calls in progress, their media statistics and their security summary (also the
//! `media_stats` and `security` of a CDR).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A call in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CallInfo {
    /// Names the call while it lasts (`DELETE /calls/{id}` ends it).
    #[schema(example = "0-17")]
    pub id: String,
    /// `trying`, `early` (ringing or early media), `answered`, `ending`.
    pub state: String,
    /// Unix ms.
    pub started_at: i64,
    pub answered_at: Option<i64>,
    /// Since the answer, in ms (0 before it).
    pub duration_ms: i64,
    pub caller: String,
    pub callee: String,
    /// The trunk the call was routed to.
    pub trunk: String,
    /// The caller's leg.
    pub a: CallLeg,
    /// The callee's leg.
    pub b: CallLeg,
    pub media: MediaInfo,
    pub security: SecurityInfo,
}

/// One leg of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CallLeg {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    /// Where this leg's signalling goes (`ip:port`).
    pub peer: String,
    /// `udp`, `tcp`, `tls`.
    pub transport: String,
    /// The relay address this leg's peer sends media to.
    pub relay: Option<String>,
    /// Codecs of the SDP last sent to this leg.
    pub codecs: Vec<String>,
}

/// A call's media: its relay session and what the relay counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MediaInfo {
    pub session: Option<u64>,
    pub stats: Option<MediaStats>,
}

/// What the relay counted, per stream (`m=` line).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MediaStats {
    pub streams: Vec<StreamMedia>,
}

/// Both legs of one stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StreamMedia {
    pub a: LegMedia,
    pub b: LegMedia,
}

/// One leg of one stream: what its peer sent the relay and what the relay sent it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LegMedia {
    pub packets_received: u64,
    pub bytes_received: u64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    /// Received packets the relay dropped (any reason).
    pub packets_dropped: u64,
    /// RTP packets lost on the way from this leg's peer (RFC 3550 A.3).
    pub rtp_lost: i64,
    /// Interarrival jitter of this leg's RTP, in ms (RFC 3550 A.8).
    pub jitter_ms: f64,
    /// Where the relay latched this leg's RTP.
    pub latched: Option<String>,
}

/// Is this call secure? Per leg and property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecurityInfo {
    pub a: LegSecurityInfo,
    pub b: LegSecurityInfo,
    /// `not_checked`, `tn_validation_passed`, `tn_validation_failed`, `no_tn_validation`.
    pub identity: String,
}

/// One leg's protection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LegSecurityInfo {
    pub signalling: SignallingInfo,
    pub media: MediaProtectionInfo,
}

/// A leg's signalling protection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignallingInfo {
    /// `udp`, `tcp`, `tls`.
    pub transport: String,
    pub encrypted: bool,
    /// `not_applicable`, `verified`, `not_verified`.
    pub peer_certificate: String,
}

/// A leg's media protection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MediaProtectionInfo {
    /// `no_media`, `plain`, `sdes_srtp`, `dtls_srtp`.
    pub protection: String,
    pub encrypted: bool,
    /// The SRTP crypto suite or protection profile.
    pub suite: Option<String>,
}
