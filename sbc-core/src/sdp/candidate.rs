//! ICE candidates (`a=candidate:`, RFC 8839 §5.1).

use std::net::IpAddr;

use bytes::Bytes;

use super::address::{Host, decode_host};
use super::attributes::TypedAttribute;
use super::error::AttributeError;
use super::syntax::{fields, is_token, is_token_char, parse_decimal, token_string};

/// `a=candidate:<foundation> <component> <transport> <priority> <address> <port>
/// typ <type> [raddr <address>] [rport <port>] *(<extension name> <extension value>)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub foundation: Box<str>,
    /// 1 for RTP, 2 for RTCP.
    pub component: u16,
    /// `UDP`, `udp`, `tcp` … as received.
    pub transport: Box<str>,
    pub priority: u32,
    /// An IP address or a name (an mDNS `….local` name from a browser), as received.
    pub address: Bytes,
    pub port: u16,
    pub kind: CandidateType,
    pub related_address: Option<Bytes>,
    pub related_port: Option<u16>,
    /// `generation 0`, `network-id 1`, `tcptype active`, `ufrag …` …, in order.
    pub extensions: Vec<(Box<str>, Bytes)>,
}

/// The candidate type after `typ`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CandidateType {
    Host,
    ServerReflexive,
    PeerReflexive,
    Relayed,
    Other(Box<str>),
}

impl CandidateType {
    pub fn as_str(&self) -> &str {
        match self {
            CandidateType::Host => "host",
            CandidateType::ServerReflexive => "srflx",
            CandidateType::PeerReflexive => "prflx",
            CandidateType::Relayed => "relay",
            CandidateType::Other(token) => token,
        }
    }

    fn from_token(token: &[u8]) -> CandidateType {
        match token {
            b"host" => CandidateType::Host,
            b"srflx" => CandidateType::ServerReflexive,
            b"prflx" => CandidateType::PeerReflexive,
            b"relay" => CandidateType::Relayed,
            other => CandidateType::Other(token_string(other)),
        }
    }
}

impl Candidate {
    /// The candidate address decoded.
    pub fn host(&self) -> Host<'_> {
        decode_host(&self.address)
    }

    pub fn ip(&self) -> Option<IpAddr> {
        self.host().ip()
    }
}

fn bad(reason: &'static str) -> AttributeError {
    AttributeError::Candidate(reason)
}

impl TypedAttribute for Candidate {
    const NAME: &'static str = "candidate";

    fn parse_value(value: &[u8]) -> Result<Candidate, AttributeError> {
        let mut parts = fields(value);
        let mut next = |what: &'static str| parts.next().ok_or(bad(what));
        let foundation = next("missing foundation")?;
        if foundation.len() > 32 || !foundation.iter().all(|&b| is_token_char(b) || b == b'/') {
            return Err(bad("foundation is not 1 to 32 ice-chars"));
        }
        let component = parse_decimal::<u16>(next("missing component")?)
            .ok_or(bad("component is not a number"))?;
        let transport = next("missing transport")?;
        if !is_token(transport) {
            return Err(bad("transport is not a token"));
        }
        let priority = parse_decimal::<u32>(next("missing priority")?)
            .ok_or(bad("priority is not a 32-bit number"))?;
        let address = Bytes::copy_from_slice(next("missing address")?);
        let port = parse_decimal::<u16>(next("missing port")?).ok_or(bad("bad port"))?;
        if next("missing typ")? != b"typ" {
            return Err(bad("expected typ"));
        }
        let kind = next("missing candidate type")?;
        if !is_token(kind) {
            return Err(bad("candidate type is not a token"));
        }
        let mut candidate = Candidate {
            foundation: token_string(foundation),
            component,
            transport: token_string(transport),
            priority,
            address,
            port,
            kind: CandidateType::from_token(kind),
            related_address: None,
            related_port: None,
            extensions: Vec::new(),
        };
        while let Some(name) = parts.next() {
            let value = parts.next().ok_or(bad("extension without a value"))?;
            let in_order = candidate.extensions.is_empty();
            match name {
                b"raddr"
                    if in_order
                        && candidate.related_address.is_none()
                        && candidate.related_port.is_none() =>
                {
                    candidate.related_address = Some(Bytes::copy_from_slice(value));
                }
                b"rport" if in_order && candidate.related_port.is_none() => {
                    candidate.related_port =
                        Some(parse_decimal::<u16>(value).ok_or(bad("bad rport"))?);
                }
                _ if is_token(name) => candidate
                    .extensions
                    .push((token_string(name), Bytes::copy_from_slice(value))),
                _ => return Err(bad("extension name is not a token")),
            }
        }
        Ok(candidate)
    }

    fn write_value(&self, out: &mut Vec<u8>) {
        let head = format!(
            "{} {} {} {} ",
            self.foundation, self.component, self.transport, self.priority
        );
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&self.address);
        out.extend_from_slice(format!(" {} typ {}", self.port, self.kind.as_str()).as_bytes());
        if let Some(address) = &self.related_address {
            out.extend_from_slice(b" raddr ");
            out.extend_from_slice(address);
        }
        if let Some(port) = self.related_port {
            out.extend_from_slice(format!(" rport {port}").as_bytes());
        }
        for (name, value) in &self.extensions {
            out.push(b' ');
            out.extend_from_slice(name.as_bytes());
            out.push(b' ');
            out.extend_from_slice(value);
        }
    }
}
