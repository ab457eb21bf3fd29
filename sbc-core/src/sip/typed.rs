//! Typed views of the headers the SBC acts on. Each is decoded on demand from a raw value
//! in [`super::Headers`] and printed back by the printer.

use bytes::Bytes;

use super::{HostPort, Method, Params, Uri};

/// The transport token of a Via (RFC 3261 §20.42); unknown ones are kept (RFC 4475
/// §3.1.1.10).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
    Other(Box<str>),
}

/// One Via value: `SIP/2.0/<transport> <sent-by>;params`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    pub transport: Transport,
    pub sent_by: HostPort,
    /// `branch`, `received`, `rport`, `maddr`, `ttl` and any other parameter, in order.
    pub params: Params,
}

impl Via {
    /// The `branch` parameter, if present with a value.
    pub fn branch(&self) -> Option<&Bytes> {
        self.params.get("branch").flatten()
    }

    /// The `received` parameter's value (an address, RFC 3261 §18.2.1; with or without
    /// brackets for IPv6, RFC 5118 §4.5).
    pub fn received(&self) -> Option<&Bytes> {
        self.params.get("received").flatten()
    }

    /// The `rport` parameter (RFC 3581): `Some(None)` when present without a value.
    pub fn rport(&self) -> Option<Option<&Bytes>> {
        self.params.get("rport")
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&Bytes> {
        self.params.get("maddr").flatten()
    }
}

/// `[display-name] <uri>;params` or a bare addr-spec (From, To, Contact, Route,
/// Record-Route, P-Asserted-Identity …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name as received: a quoted string keeps its quotes and escapes, a run of
    /// tokens is kept with single spaces.
    pub display_name: Option<Bytes>,
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `q` …), after the `>` (or, for an addr-spec,
    /// after the URI — RFC 3261 §20: they belong to the header, not the URI).
    pub params: Params,
    /// Whether the URI was written inside `<…>`. The printer always uses angle brackets
    /// when the URI has parameters or headers, or there is a display name.
    pub angle_brackets: bool,
}

impl NameAddr {
    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&Bytes> {
        self.params.get("tag").flatten()
    }
}

/// `CSeq: <number> <method>`; the number is below 2^31 per RFC 3261 §8.1.1.5 on send, but
/// anything up to 2^32 - 1 is accepted (§25.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

/// The Contact header: `*` or a list of name-addrs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contact {
    Star,
    Addresses(Vec<NameAddr>),
}

/// A media type with its parameters (`Content-Type`, `Accept`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaType {
    pub kind: Box<str>,
    pub subtype: Box<str>,
    pub params: Params,
}
