//! What the B2BUA writes on each leg besides the SDP: fresh identifiers (tags, Call-IDs,
//! branches), its own Via and Contact, and which of the other side's headers pass.
//!
//! Header policy, in order:
//! 1. The headers the B2BUA builds itself never pass ([`is_built`]): Via, From, To,
//!    Call-ID, CSeq, Max-Forwards, Contact, Route, Record-Route, Content-Length,
//!    Content-Type (set with the body), Allow and Supported (our own), RSeq/RAck, Path,
//!    Service-Route.
//! 2. Headers that reveal the other side's topology or software never pass
//!    ([`is_topology`]): Server, User-Agent, Warning, Organization, History-Info and the
//!    P-headers carrying network addresses.
//! 3. The headers of the extensions the B2BUA relays pass always: Session-Expires and
//!    Min-SE (RFC 4028), and Require with the option tags the B2BUA supports.
//! 4. Everything else passes when the trunk's [`HeaderFilter`] lets it.

use std::net::SocketAddr;

use bytes::Bytes;

use super::router::HeaderFilter;
use crate::net::Protocol;
use crate::sip::{HeaderName, Headers, Host, HostPort, Param, Params, SipUri, Uri};
use crate::transaction::MAGIC_COOKIE;

/// The methods the B2BUA relays; what `Allow` lists.
pub(crate) const ALLOWED_METHODS: &str =
    "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK, MESSAGE";

/// Whether the B2BUA builds this header itself (it never passes from the other side).
pub(crate) fn is_built(name: &HeaderName) -> bool {
    matches!(
        name,
        HeaderName::Via
            | HeaderName::From
            | HeaderName::To
            | HeaderName::CallId
            | HeaderName::CSeq
            | HeaderName::MaxForwards
            | HeaderName::Contact
            | HeaderName::Route
            | HeaderName::RecordRoute
            | HeaderName::ContentLength
            | HeaderName::ContentType
            | HeaderName::Allow
            | HeaderName::Supported
            | HeaderName::RSeq
            | HeaderName::RAck
            | HeaderName::Path
            | HeaderName::ServiceRoute
    )
}

/// Headers stripped always because they reveal the other side's network or software.
const TOPOLOGY_HEADERS: [&str; 6] = [
    "organization",
    "history-info",
    "p-charging-vector",
    "p-access-network-info",
    "p-visited-network-id",
    "error-info",
];

/// Whether this header reveals the other side's topology and so never passes.
pub(crate) fn is_topology(name: &HeaderName) -> bool {
    match name {
        HeaderName::Server | HeaderName::UserAgent | HeaderName::Warning => true,
        HeaderName::Other(other) => TOPOLOGY_HEADERS
            .iter()
            .any(|stripped| other.eq_ignore_ascii_case(stripped)),
        _ => false,
    }
}

/// Copies the headers of `from` that pass the policy (see the module docs) to `to`, in
/// order. `Require` passes only with the option tags in `supported`.
pub(crate) fn copy_passing(
    from: &Headers,
    to: &mut Headers,
    filter: &dyn HeaderFilter,
    supported: &[&str],
) {
    for header in from {
        let protocol = matches!(
            header.name,
            HeaderName::SessionExpires | HeaderName::MinSe | HeaderName::Require
        );
        if is_built(&header.name)
            || is_topology(&header.name)
            || !(protocol || filter.passes(&header.name))
        {
            continue;
        }
        if header.name == HeaderName::Require {
            if let Some(value) = only_tags(std::slice::from_ref(&header.value), supported) {
                to.push(HeaderName::Require, value);
            }
            continue;
        }
        to.push(header.name.clone(), header.value.clone());
    }
}

/// Our `Supported` for a message relayed from one that carried `from`: the option tags
/// both the other side and the B2BUA support, or `None` when there are none.
pub(crate) fn supported_for(from: &Headers, supported: &[&str]) -> Option<Bytes> {
    let values: Vec<Bytes> = from.get_all(&HeaderName::Supported).cloned().collect();
    only_tags(&values, supported)
}

/// The comma-separated option tags of `values` that are in `keep`, or `None`.
fn only_tags(values: &[Bytes], keep: &[&str]) -> Option<Bytes> {
    let mut out = Vec::new();
    for value in values {
        for tag in value.split(|&b| b == b',') {
            let tag = tag.trim_ascii();
            if tag.is_empty() || !keep.iter().any(|k| k.as_bytes().eq_ignore_ascii_case(tag)) {
                continue;
            }
            if !out.is_empty() {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(tag);
        }
    }
    (!out.is_empty()).then(|| Bytes::from(out))
}

/// Draws identifiers from injected randomness.
pub(crate) struct Ids<'a> {
    pub random: &'a mut (dyn FnMut() -> u64 + Send),
    /// Marks our branches, for loop detection.
    pub marker: u32,
}

impl Ids<'_> {
    /// A tag: 64 random bits in hex (RFC 3261 §19.3 asks for at least 32).
    pub(crate) fn tag(&mut self) -> String {
        format!("{:016x}", (self.random)())
    }

    /// A Call-ID: 128 random bits in hex, with no host part (which would name us).
    pub(crate) fn call_id(&mut self) -> String {
        format!("{:016x}{:016x}", (self.random)(), (self.random)())
    }

    /// A branch: the magic cookie, our marker, a hash of the Request-URI (so that a request
    /// coming back to us with the same Request-URI is a loop, and with another a spiral),
    /// and 64 random bits.
    pub(crate) fn branch(&mut self, request_uri: &Uri) -> String {
        format!(
            "{MAGIC_COOKIE}{:08x}{:08x}{:016x}",
            self.marker,
            uri_hash(request_uri),
            (self.random)()
        )
    }
}

/// FNV-1a of the printed URI.
fn uri_hash(uri: &Uri) -> u32 {
    uri.to_bytes().iter().fold(0x811c_9dc5_u32, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// Whether one of `branches` (of a received request's Vias) is ours for this very
/// Request-URI: the request went out from us and came back unchanged (RFC 3261 §16.3
/// item 4, loop detection).
pub(crate) fn is_loop<'a>(
    branches: impl IntoIterator<Item = &'a [u8]>,
    marker: u32,
    request_uri: &Uri,
) -> bool {
    let ours = format!("{MAGIC_COOKIE}{marker:08x}{:08x}", uri_hash(request_uri));
    branches
        .into_iter()
        .any(|branch| branch.starts_with(ours.as_bytes()))
}

/// The transport token of our Via on `protocol`.
fn via_transport(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Udp => "UDP",
        Protocol::Tcp => "TCP",
        Protocol::Tls => "TLS",
    }
}

/// Our Via for a request sent on `protocol` from `local`.
pub(crate) fn via(protocol: Protocol, local: SocketAddr, branch: &str) -> String {
    let rport = if protocol == Protocol::Udp {
        ";rport"
    } else {
        ""
    };
    format!(
        "SIP/2.0/{} {local};branch={branch}{rport}",
        via_transport(protocol)
    )
}

/// Our Contact on `protocol` at `local`; `secure` for a `sips:` dialog.
pub(crate) fn contact(protocol: Protocol, local: SocketAddr, secure: bool) -> String {
    match (protocol, secure) {
        (Protocol::Tls, true) => format!("<sips:{local}>"),
        (Protocol::Udp, _) => format!("<sip:{local}>"),
        (Protocol::Tcp, _) => format!("<sip:{local};transport=tcp>"),
        (Protocol::Tls, false) => format!("<sip:{local};transport=tls>"),
    }
}

/// The host (and port, for an address) to write for a target: its name when it has one,
/// else its address.
pub(crate) fn target_host(addr: SocketAddr, server_name: Option<&str>) -> HostPort {
    match server_name {
        Some(name) => HostPort {
            host: Host::Name(name.into()),
            port: None,
        },
        None => HostPort {
            host: match addr.ip() {
                std::net::IpAddr::V4(v4) => Host::V4(v4),
                std::net::IpAddr::V6(v6) => Host::V6(v6),
            },
            port: Some(addr.port()),
        },
    }
}

/// URI parameters that name a hop of the other side and so do not pass.
const HOP_PARAMS: [&str; 5] = ["transport", "maddr", "lr", "ob", "received"];

/// `uri` with its user part kept and its host replaced by `host`: parameters that name a
/// hop are dropped, URI headers too. A `tel:` URI becomes `sip:<number>@host;user=phone`.
/// `secure` keeps `sips:` (only over TLS).
pub(crate) fn rehost(uri: &Uri, host: &HostPort, secure: bool) -> Option<SipUri> {
    match uri {
        Uri::Sip(sip) => {
            let params = sip
                .params
                .iter()
                .filter(|p| {
                    !HOP_PARAMS
                        .iter()
                        .any(|hop| p.name.eq_ignore_ascii_case(hop))
                })
                .cloned()
                .collect();
            Some(SipUri {
                secure: sip.secure && secure,
                user: sip.user.clone(),
                password: None,
                host: host.clone(),
                params: Params(params),
                headers: None,
            })
        }
        Uri::Tel(tel) => Some(SipUri {
            secure: false,
            user: Some(tel.number.clone()),
            password: None,
            host: host.clone(),
            params: Params(vec![Param {
                name: "user".into(),
                value: Some(Bytes::from_static(b"phone")),
            }]),
            headers: None,
        }),
        Uri::Other { .. } => None,
    }
}

/// The body of a message the B2BUA sends.
#[derive(Clone, Debug, Default)]
pub(crate) enum Body {
    #[default]
    Empty,
    /// An SDP we anchored.
    Sdp(Bytes),
    /// Any other body, relayed with its Content-Type.
    Other { content_type: Bytes, bytes: Bytes },
}

impl Body {
    /// Whether a received message's body is SDP (by its Content-Type).
    pub(crate) fn is_sdp(headers: &Headers, body: &Bytes) -> bool {
        !body.is_empty()
            && matches!(
                headers.content_type(),
                Ok(Some(media)) if media.kind.eq_ignore_ascii_case("application")
                    && media.subtype.eq_ignore_ascii_case("sdp")
            )
    }

    /// A received non-SDP body, relayed as it is.
    pub(crate) fn relayed(headers: &Headers, body: &Bytes) -> Body {
        match headers.get(&HeaderName::ContentType) {
            Some(content_type) if !body.is_empty() => Body::Other {
                content_type: content_type.clone(),
                bytes: body.clone(),
            },
            _ => Body::Empty,
        }
    }

    /// Sets the body and its Content-Type on a message being built.
    pub(crate) fn attach(self, headers: &mut Headers, body: &mut Bytes) {
        match self {
            Body::Empty => {}
            Body::Sdp(bytes) => {
                headers.push(HeaderName::ContentType, "application/sdp");
                *body = bytes;
            }
            Body::Other {
                content_type,
                bytes,
            } => {
                headers.push(HeaderName::ContentType, content_type);
                *body = bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_supported_tags_pass() {
        let values = [Bytes::from_static(b"100rel, timer,replaces")];
        assert_eq!(
            only_tags(&values, &["timer"]),
            Some(Bytes::from_static(b"timer"))
        );
        assert_eq!(only_tags(&values, &["path"]), None);
    }

    #[test]
    fn loops_are_told_from_spirals() {
        let mut counter = 0;
        let mut random = move || {
            counter += 1;
            counter
        };
        let mut ids = Ids {
            random: &mut random,
            marker: 0xfeed,
        };
        let uri = Uri::parse(b"sip:bob@192.0.2.1").unwrap();
        let branch = ids.branch(&uri);
        assert!(is_loop([branch.as_bytes()], 0xfeed, &uri));
        let other = Uri::parse(b"sip:carol@192.0.2.1").unwrap();
        assert!(!is_loop([branch.as_bytes()], 0xfeed, &other));
        assert!(!is_loop([branch.as_bytes()], 0xbeef, &uri));
    }
}
