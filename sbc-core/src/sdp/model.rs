//! The session description model: the lines the SBC rewrites are typed, everything else is
//! kept as received, in order.

use std::net::IpAddr;

use bytes::Bytes;

use super::address::{Host, NetAddress};
use super::lines::Lines;
use super::syntax::parse_decimal;

/// A session description (RFC 8866 §5).
///
/// `v=0` is implied (it is always the first line, and `0` is the only version). `o=` and
/// `s=` are the next two lines. [`SessionDescription::lines`] holds every other
/// session-level line in order (`i=`, `u=`, `e=`, `p=`, `c=`, `b=`, `t=`, `r=`, `z=`,
/// `k=`, `a=` and any unknown type), then come the media sections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    /// The `s=` text as received (any bytes but CR and LF; may be a single space).
    pub session_name: Bytes,
    pub lines: Lines,
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// A description with no lines but `v=`, `o=` and `s=`, and no media.
    pub fn new(origin: Origin, session_name: impl Into<Bytes>) -> SessionDescription {
        SessionDescription {
            origin,
            session_name: session_name.into(),
            lines: Lines::default(),
            media: Vec::new(),
        }
    }

    /// The connection that applies to media section `index`: its own first `c=`, else the
    /// session-level one (RFC 8866 §5.7).
    pub fn media_connection(&self, index: usize) -> Option<&Connection> {
        let media = self.media.get(index)?;
        media.lines.connection().or_else(|| self.lines.connection())
    }

    /// The direction that applies to media section `index`: its own direction attribute,
    /// else the session-level one, else `sendrecv` (RFC 8866 §6.7).
    pub fn media_direction(&self, index: usize) -> Option<super::Direction> {
        let media = self.media.get(index)?;
        Some(
            media
                .lines
                .direction()
                .or_else(|| self.lines.direction())
                .unwrap_or(super::Direction::SendRecv),
        )
    }
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The user name as received (`-` when there is none). Any bytes but space, CR, LF.
    pub username: Bytes,
    /// The session id: ASCII digits, kept as received.
    pub session_id: Bytes,
    /// The session version: ASCII digits, kept as received.
    pub session_version: Bytes,
    pub address: NetAddress,
}

impl Origin {
    pub fn new(
        username: impl Into<Bytes>,
        session_id: u64,
        session_version: u64,
        address: NetAddress,
    ) -> Origin {
        Origin {
            username: username.into(),
            session_id: Bytes::from(session_id.to_string()),
            session_version: Bytes::from(session_version.to_string()),
            address,
        }
    }

    /// The session id as a number, when it fits in 64 bits.
    pub fn session_id_u64(&self) -> Option<u64> {
        parse_decimal(&self.session_id)
    }

    /// The session version as a number, when it fits in 64 bits.
    pub fn session_version_u64(&self) -> Option<u64> {
        parse_decimal(&self.session_version)
    }

    pub fn set_session_id(&mut self, id: u64) {
        self.session_id = Bytes::from(id.to_string());
    }

    pub fn set_session_version(&mut self, version: u64) {
        self.session_version = Bytes::from(version.to_string());
    }

    /// Increments the session version, as a changed offer must (RFC 3264 §8). A version
    /// too large for 64 bits restarts at 1.
    pub fn bump_version(&mut self) {
        let next = self
            .session_version_u64()
            .and_then(|v| v.checked_add(1))
            .unwrap_or(1);
        self.set_session_version(next);
    }
}

/// `c=<nettype> <addrtype> <connection-address>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub address: NetAddress,
    /// The multicast suffix after the address without its leading `/`: `ttl[/count]` for
    /// IPv4, `count` for IPv6, digits only, kept as received.
    pub multicast: Option<Bytes>,
}

impl Connection {
    /// `IN IP4 <ip>` or `IN IP6 <ip>`.
    pub fn from_ip(ip: IpAddr) -> Connection {
        Connection {
            address: NetAddress::from_ip(ip),
            multicast: None,
        }
    }

    pub fn host(&self) -> Host<'_> {
        self.address.host()
    }

    pub fn ip(&self) -> Option<IpAddr> {
        self.address.ip()
    }
}

/// The `m=` line: `m=<media> <port>[/<number of ports>] <proto> <fmt> ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, `text`, `application`, `message`, `image` or another token.
    pub kind: Box<str>,
    /// `0` rejects or disables the stream (RFC 3264 §6); `9` is the JSEP/ICE "discard"
    /// placeholder.
    pub port: u16,
    /// The `/<number of ports>` suffix, at least 1, when present.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, `udptl`, … as received.
    pub protocol: Box<str>,
    /// The media formats (RTP payload type numbers for RTP profiles), in order.
    pub formats: Vec<Box<str>>,
}

impl Media {
    pub fn new(kind: &str, port: u16, protocol: &str, formats: &[&str]) -> Media {
        Media {
            kind: kind.into(),
            port,
            port_count: None,
            protocol: protocol.into(),
            formats: formats.iter().map(|&f| f.into()).collect(),
        }
    }

    /// Whether the profile carries RTP (so formats are payload type numbers).
    pub fn is_rtp(&self) -> bool {
        self.protocol.split('/').any(|p| p == "RTP")
    }

    /// Whether the profile is secured (SRTP with SDES or DTLS).
    pub fn is_secure(&self) -> bool {
        self.protocol.split('/').any(|p| p.starts_with("SAVP"))
    }
}

/// One media section: its `m=` line and every line after it up to the next `m=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDescription {
    pub media: Media,
    pub lines: Lines,
}

impl MediaDescription {
    pub fn new(media: Media) -> MediaDescription {
        MediaDescription {
            media,
            lines: Lines::default(),
        }
    }
}

/// `a=<name>[:<value>]`. The name is a token compared exactly (case-sensitive); the value
/// is every byte after the first `:`, as received (`a=x:` has an empty value, `a=x` none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub name: Box<str>,
    pub value: Option<Bytes>,
}

impl Attribute {
    /// A property attribute (`a=rtcp-mux`).
    pub fn flag(name: &str) -> Attribute {
        Attribute {
            name: name.into(),
            value: None,
        }
    }

    /// A value attribute (`a=<name>:<value>`).
    pub fn new(name: &str, value: impl Into<Bytes>) -> Attribute {
        Attribute {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    pub fn is(&self, name: &str) -> bool {
        &*self.name == name
    }
}

/// One line after `s=` (session level) or after an `m=` (media level).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    Connection(Connection),
    Attribute(Attribute),
    /// Any other line, as received without its line end: `i=`, `u=`, `e=`, `p=`, `b=`,
    /// `t=`, `r=`, `z=`, `k=`, an unknown type, an `a=` whose name is not a token, or even
    /// a line that is not `<type>=` at all. Never `v=`, `o=`, `s=`, `m=` or `c=`.
    Other(Bytes),
}

impl Line {
    /// The type letter (`c`, `a`, `b` …), or `None` for a line that is not `<type>=…`.
    pub fn kind(&self) -> Option<u8> {
        match self {
            Line::Connection(_) => Some(b'c'),
            Line::Attribute(_) => Some(b'a'),
            Line::Other(raw) => match raw.as_ref() {
                [kind, b'=', ..] => Some(*kind),
                _ => None,
            },
        }
    }
}
