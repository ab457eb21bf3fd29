//! `sip:`, `sips:` and `tel:` URIs (RFC 3261 §19.1, §25.1; RFC 3966), with IPv6 references
//! (RFC 5118, RFC 5954).
//!
//! User parts, passwords, parameter values and header values are kept in their escaped
//! wire form so that a URI prints exactly as it was received; `%`-decoding is done on
//! demand and never recursively (RFC 4475 §3.1.1.3).

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

/// A host: a domain name (kept as received; compare case-insensitively), an IPv4 address,
/// or an IPv6 reference (printed with brackets).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    Name(Box<str>),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// A host with an optional port (`hostport`, also a Via `sent-by`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: Host,
    pub port: Option<u16>,
}

/// One `;name[=value]` parameter. The name is a token kept as received (compare
/// case-insensitively); the value is kept in its wire form (a quoted string keeps its
/// quotes, escapes stay escaped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: Box<str>,
    pub value: Option<Bytes>,
}

/// An ordered parameter list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(pub Vec<Param>);

impl Params {
    /// Whether a parameter with this name is present (with or without a value).
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The value of the first parameter with this name: `Some(None)` for a flag parameter.
    pub fn get(&self, name: &str) -> Option<Option<&Bytes>> {
        self.0
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_ref())
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Param> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets `name` to `value`, replacing an existing parameter of that name in place.
    pub fn set(&mut self, name: &str, value: Option<Bytes>) {
        match self
            .0
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(p) => p.value = value,
            None => self.0.push(Param {
                name: name.into(),
                value,
            }),
        }
    }

    /// Removes every parameter with this name.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name));
    }
}

/// A `sip:` or `sips:` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` when true.
    pub secure: bool,
    /// The user part, escaped as received (it may contain `;`, RFC 4475 §3.1.1.9).
    pub user: Option<Bytes>,
    /// The password, escaped as received.
    pub password: Option<Bytes>,
    pub host: HostPort,
    pub params: Params,
    /// The `?hname=hvalue&…` part without the `?`, escaped as received.
    pub headers: Option<Bytes>,
}

/// A `tel:` URI (RFC 3966): the number as received (global `+…` or local) and its
/// parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelUri {
    pub number: Bytes,
    pub params: Params,
}

/// A URI in a request line or a name-addr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    Tel(TelUri),
    /// Any other absolute URI (`im:`, `http:`, an unknown scheme): the scheme as received
    /// and everything after the first `:`. Such a request is refused with `416` above the
    /// parser, not by it.
    Other {
        scheme: Box<str>,
        rest: Bytes,
    },
}

/// Decodes `%HH` escapes once. Invalid escapes are kept as they are.
pub fn unescape(input: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !input.contains(&b'%') {
        return std::borrow::Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && i + 2 < input.len()
            && let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
