//! Why a session description, or one typed attribute in it, was refused.

use thiserror::Error;

/// Why [`SessionDescription::parse`](super::SessionDescription::parse) refused its input.
///
/// Only faults that break the model are errors (the first lines, `o=`, `c=`, `m=` and
/// the limits); every other oddity is kept as received. `line` is 1-based. The SIP layer
/// answers such a body with `400` (or `488` above the parser) and counts it by
/// [`SdpError::name`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SdpError {
    #[error("SDP body of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("SDP has more than {max} lines")]
    TooManyLines { max: usize },
    #[error("line {line}: SDP has more than {max} media sections")]
    TooManyMedia { line: usize, max: usize },
    #[error("line {line}: longer than {max} bytes")]
    LineTooLong { line: usize, max: usize },
    #[error("line {line}: the first line must be `v=`")]
    MissingVersion { line: usize },
    #[error("line {line}: protocol version must be `v=0`")]
    BadVersion { line: usize },
    #[error("line {line}: the second line must be `o=`")]
    MissingOrigin { line: usize },
    #[error("line {line}: malformed `o=`: {reason}")]
    BadOrigin { line: usize, reason: &'static str },
    #[error("line {line}: the third line must be `s=`")]
    MissingSessionName { line: usize },
    #[error("line {line}: `v=`, `o=` or `s=` repeated or out of place")]
    MisplacedLine { line: usize },
    #[error("line {line}: malformed `c=`: {reason}")]
    BadConnection { line: usize, reason: &'static str },
    #[error("line {line}: malformed `m=`: {reason}")]
    BadMediaLine { line: usize, reason: &'static str },
    #[error("line {line}: port or port count out of range")]
    BadPort { line: usize },
}

impl SdpError {
    /// A stable name for metric labels and logs.
    pub fn name(&self) -> &'static str {
        match self {
            SdpError::TooLarge { .. } => "too_large",
            SdpError::TooManyLines { .. } => "too_many_lines",
            SdpError::TooManyMedia { .. } => "too_many_media",
            SdpError::LineTooLong { .. } => "line_too_long",
            SdpError::MissingVersion { .. } => "missing_version",
            SdpError::BadVersion { .. } => "bad_version",
            SdpError::MissingOrigin { .. } => "missing_origin",
            SdpError::BadOrigin { .. } => "bad_origin",
            SdpError::MissingSessionName { .. } => "missing_session_name",
            SdpError::MisplacedLine { .. } => "misplaced_line",
            SdpError::BadConnection { .. } => "bad_connection",
            SdpError::BadMediaLine { .. } => "bad_media_line",
            SdpError::BadPort { .. } => "bad_port",
        }
    }

    /// The 1-based line the fault is on, when it is on one line.
    pub fn line(&self) -> Option<usize> {
        match self {
            SdpError::TooLarge { .. } | SdpError::TooManyLines { .. } => None,
            SdpError::TooManyMedia { line, .. }
            | SdpError::LineTooLong { line, .. }
            | SdpError::MissingVersion { line }
            | SdpError::BadVersion { line }
            | SdpError::MissingOrigin { line }
            | SdpError::BadOrigin { line, .. }
            | SdpError::MissingSessionName { line }
            | SdpError::MisplacedLine { line }
            | SdpError::BadConnection { line, .. }
            | SdpError::BadMediaLine { line, .. }
            | SdpError::BadPort { line } => Some(*line),
        }
    }
}

/// Why a typed view of one attribute could not be decoded. The attribute itself stays in
/// the description as received; only the typed view fails.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AttributeError {
    #[error("malformed a=rtcp: {0}")]
    Rtcp(&'static str),
    #[error("malformed a=crypto: {0}")]
    Crypto(&'static str),
    #[error("malformed a=fingerprint: {0}")]
    Fingerprint(&'static str),
    #[error("malformed a=setup: {0}")]
    Setup(&'static str),
    #[error("malformed a=candidate: {0}")]
    Candidate(&'static str),
    #[error("malformed a=rtpmap: {0}")]
    Rtpmap(&'static str),
    #[error("malformed a=fmtp: {0}")]
    Fmtp(&'static str),
    #[error("attribute has no value")]
    MissingValue,
}

impl AttributeError {
    /// A stable name for metric labels and logs.
    pub fn name(&self) -> &'static str {
        match self {
            AttributeError::Rtcp(_) => "bad_rtcp",
            AttributeError::Crypto(_) => "bad_crypto",
            AttributeError::Fingerprint(_) => "bad_fingerprint",
            AttributeError::Setup(_) => "bad_setup",
            AttributeError::Candidate(_) => "bad_candidate",
            AttributeError::Rtpmap(_) => "bad_rtpmap",
            AttributeError::Fmtp(_) => "bad_fmtp",
            AttributeError::MissingValue => "missing_value",
        }
    }
}
