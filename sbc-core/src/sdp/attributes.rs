//! Typed views of the attributes the SBC rewrites: direction (RFC 8866 §6.7), `rtcp`
//! (RFC 3605), `setup` (RFC 4145), `fingerprint` (RFC 8122), `rtpmap` and `fmtp`
//! (RFC 8866 §6.6, §6.15). `crypto` and `candidate` have their own files.
//!
//! Each is decoded on demand from the raw attribute value and written back by
//! [`TypedAttribute::to_attribute`]; the raw attribute stays authoritative until replaced.

use std::fmt;

use bytes::Bytes;

use super::address::NetAddress;
use super::error::AttributeError;
use super::model::Attribute;
use super::syntax::{fields, is_token, parse_decimal, token_string};

/// An attribute with a typed value: how to decode it from, and encode it into, the bytes
/// after `a=<NAME>:`.
pub trait TypedAttribute: Sized {
    /// The attribute name.
    const NAME: &'static str;

    /// Decodes the value (everything after the first `:`).
    fn parse_value(value: &[u8]) -> Result<Self, AttributeError>;

    /// Appends the value in its canonical form.
    fn write_value(&self, out: &mut Vec<u8>);

    /// Decodes an attribute named [`Self::NAME`].
    fn from_attribute(attribute: &Attribute) -> Result<Self, AttributeError> {
        match &attribute.value {
            Some(value) => Self::parse_value(value),
            None => Err(AttributeError::MissingValue),
        }
    }

    /// The canonical value bytes.
    fn to_value(&self) -> Bytes {
        let mut out = Vec::new();
        self.write_value(&mut out);
        Bytes::from(out)
    }

    /// `a=<NAME>:<value>`.
    fn to_attribute(&self) -> Attribute {
        Attribute::new(Self::NAME, self.to_value())
    }
}

/// The media direction property attributes (RFC 8866 §6.7, RFC 3264 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub const ALL: [Direction; 4] = [
        Direction::SendRecv,
        Direction::SendOnly,
        Direction::RecvOnly,
        Direction::Inactive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction named by an attribute name, if it is one.
    pub fn from_name(name: &str) -> Option<Direction> {
        Direction::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// The direction seen from the other end: `sendonly` ⇄ `recvonly`.
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=rtcp:<port> [<nettype> <addrtype> <connection-address>]` (RFC 3605 §2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rtcp {
    pub port: u16,
    pub address: Option<NetAddress>,
}

impl TypedAttribute for Rtcp {
    const NAME: &'static str = "rtcp";

    fn parse_value(value: &[u8]) -> Result<Rtcp, AttributeError> {
        let mut parts = fields(value);
        let port = parts
            .next()
            .and_then(parse_decimal::<u16>)
            .ok_or(AttributeError::Rtcp("port is not a number in 0..=65535"))?;
        let address = match (parts.next(), parts.next(), parts.next()) {
            (None, _, _) => None,
            (Some(net), Some(addr), Some(address)) => Some(
                NetAddress::parse(net, addr, Bytes::copy_from_slice(address))
                    .map_err(AttributeError::Rtcp)?,
            ),
            _ => return Err(AttributeError::Rtcp("incomplete address")),
        };
        if parts.next().is_some() {
            return Err(AttributeError::Rtcp("trailing fields"));
        }
        Ok(Rtcp { port, address })
    }

    fn write_value(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.port.to_string().as_bytes());
        if let Some(address) = &self.address {
            out.push(b' ');
            write_net_address(address, out);
        }
    }
}

pub(crate) fn write_net_address(address: &NetAddress, out: &mut Vec<u8>) {
    out.extend_from_slice(address.net_type.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(address.addr_type.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(&address.address);
}

/// `a=setup:` (RFC 4145 §4): which side opens the (DTLS or TCP) connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setup {
    Active,
    Passive,
    ActPass,
    HoldConn,
}

impl Setup {
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }
}

impl TypedAttribute for Setup {
    const NAME: &'static str = "setup";

    fn parse_value(value: &[u8]) -> Result<Setup, AttributeError> {
        match value {
            b"active" => Ok(Setup::Active),
            b"passive" => Ok(Setup::Passive),
            b"actpass" => Ok(Setup::ActPass),
            b"holdconn" => Ok(Setup::HoldConn),
            _ => Err(AttributeError::Setup(
                "not active, passive, actpass or holdconn",
            )),
        }
    }

    fn write_value(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_str().as_bytes());
    }
}

/// `a=fingerprint:<hash-func> <fingerprint>` (RFC 8122 §5): the hash of a DTLS
/// certificate as colon-separated hex pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// `sha-256`, `sha-1` … as received.
    pub hash_function: Box<str>,
    /// `7B:8B:…` as received (upper- or lower-case hex).
    pub value: Box<str>,
}

impl Fingerprint {
    /// A fingerprint of `digest` written the RFC 8122 way (upper-case hex pairs).
    pub fn from_digest(hash_function: &str, digest: &[u8]) -> Fingerprint {
        let value: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
        Fingerprint {
            hash_function: hash_function.into(),
            value: value.join(":").into(),
        }
    }

    /// The digest bytes.
    pub fn digest(&self) -> Option<Vec<u8>> {
        self.value
            .split(':')
            .map(|pair| match pair.as_bytes() {
                [h, l] => Some(hex_value(*h)? << 4 | hex_value(*l)?),
                _ => None,
            })
            .collect()
    }
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

impl TypedAttribute for Fingerprint {
    const NAME: &'static str = "fingerprint";

    fn parse_value(value: &[u8]) -> Result<Fingerprint, AttributeError> {
        let mut parts = fields(value);
        let (Some(hash), Some(hex), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AttributeError::Fingerprint(
                "expected <hash-func> <fingerprint>",
            ));
        };
        if !is_token(hash) {
            return Err(AttributeError::Fingerprint("hash function is not a token"));
        }
        let fingerprint = Fingerprint {
            hash_function: token_string(hash),
            value: token_string(hex),
        };
        if !hex.is_ascii() || fingerprint.digest().is_none() {
            return Err(AttributeError::Fingerprint("not colon-separated hex pairs"));
        }
        Ok(fingerprint)
    }

    fn write_value(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.hash_function.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.value.as_bytes());
    }
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rtpmap {
    /// 0..=127.
    pub payload_type: u8,
    /// `PCMU`, `opus`, `telephone-event` … as received.
    pub encoding: Box<str>,
    pub clock_rate: u32,
    /// For audio, the number of channels (`2` in `opus/48000/2`).
    pub encoding_params: Option<Box<str>>,
}

impl TypedAttribute for Rtpmap {
    const NAME: &'static str = "rtpmap";

    fn parse_value(value: &[u8]) -> Result<Rtpmap, AttributeError> {
        let mut parts = fields(value);
        let (Some(pt), Some(encoding), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AttributeError::Rtpmap("expected <payload type> <encoding>"));
        };
        let payload_type = parse_decimal::<u8>(pt)
            .filter(|pt| *pt <= 127)
            .ok_or(AttributeError::Rtpmap("payload type is not in 0..=127"))?;
        let encoding = std::str::from_utf8(encoding)
            .map_err(|_| AttributeError::Rtpmap("encoding is not UTF-8"))?;
        let mut pieces = encoding.splitn(3, '/');
        let name = pieces.next().filter(|n| !n.is_empty());
        let clock = pieces
            .next()
            .and_then(|c| parse_decimal::<u32>(c.as_bytes()));
        let (Some(name), Some(clock_rate)) = (name, clock) else {
            return Err(AttributeError::Rtpmap("expected <name>/<clock rate>"));
        };
        let encoding_params = match pieces.next() {
            Some("") => return Err(AttributeError::Rtpmap("empty encoding parameters")),
            other => other.map(Into::into),
        };
        Ok(Rtpmap {
            payload_type,
            encoding: name.into(),
            clock_rate,
            encoding_params,
        })
    }

    fn write_value(&self, out: &mut Vec<u8>) {
        let text = match &self.encoding_params {
            Some(params) => format!(
                "{} {}/{}/{}",
                self.payload_type, self.encoding, self.clock_rate, params
            ),
            None => format!(
                "{} {}/{}",
                self.payload_type, self.encoding, self.clock_rate
            ),
        };
        out.extend_from_slice(text.as_bytes());
    }
}

/// `a=fmtp:<format> <format specific parameters>`; the parameters are kept as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fmtp {
    pub format: Box<str>,
    /// Everything after the space following the format (may be empty).
    pub params: Bytes,
}

impl TypedAttribute for Fmtp {
    const NAME: &'static str = "fmtp";

    fn parse_value(value: &[u8]) -> Result<Fmtp, AttributeError> {
        let (format, params) = match value.iter().position(|&b| b == b' ') {
            Some(space) => (&value[..space], &value[space + 1..]),
            None => (value, &[][..]),
        };
        if !is_token(format) {
            return Err(AttributeError::Fmtp("format is not a token"));
        }
        Ok(Fmtp {
            format: token_string(format),
            params: Bytes::copy_from_slice(params),
        })
    }

    fn write_value(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.format.as_bytes());
        if !self.params.is_empty() {
            out.push(b' ');
            out.extend_from_slice(&self.params);
        }
    }
}
