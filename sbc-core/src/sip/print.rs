//! The SIP printer: messages to wire bytes, typed values to header values.
//!
//! # Content-Length
//!
//! A printed message always carries exactly one `Content-Length`, equal to the body
//! length: the first Content-Length line stays where it is and keeps its value when that
//! value already states the body length (so a parsed message prints back unchanged),
//! otherwise its value is rewritten; further Content-Length lines are dropped; when there
//! is none, one is appended after the last header. Code that builds messages therefore
//! never sets Content-Length itself.
//!
//! # Header injection
//!
//! Header values, reason phrases and the Request-Line's method and URI are printed as
//! they are, except that any CR or LF in them (which the parser never produces, but code
//! building messages might) is printed as a space, so no value can start a new header
//! line. An unknown header name built by code that is not a token has its other bytes
//! printed as `-`, and one that spells Content-Length (in any case, or compact) counts as
//! the Content-Length line.

use std::fmt::{self, Display, Formatter, Write as _};

use bytes::Bytes;

use super::parse::scan::TOKEN;
use super::{
    CSeq, Contact, Header, HeaderName, Headers, Host, HostPort, MediaType, Message, NameAddr,
    Params, Request, Response, SipUri, StatusCode, TelUri, Transport, Uri, Version, Via,
};

impl Message {
    /// The message in wire form.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.printed_size_hint());
        self.write_to(&mut out);
        Bytes::from(out)
    }

    /// Appends the message in wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Message::Request(request) => request.write_to(out),
            Message::Response(response) => response.write_to(out),
        }
    }

    fn printed_size_hint(&self) -> usize {
        let headers = self.headers();
        let header_bytes: usize = headers.iter().map(|h| h.value.len() + 24).sum();
        header_bytes + self.body().len() + 128
    }
}

impl Request {
    /// The request in wire form.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(512 + self.body.len());
        self.write_to(&mut out);
        Bytes::from(out)
    }

    /// Appends the request in wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        self.uri.wire(out);
        // A method or URI built by code may hold CR or LF; the parser never produces one.
        blank_line_breaks(out.get_mut(start..).unwrap_or_default());
        out.push(b' ');
        out.extend_from_slice(version(self.version));
        out.extend_from_slice(b"\r\n");
        write_headers_and_body(&self.headers, &self.body, out);
    }
}

impl Response {
    /// The response in wire form.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(512 + self.body.len());
        self.write_to(&mut out);
        Bytes::from(out)
    }

    /// Appends the response in wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(version(self.version));
        out.push(b' ');
        decimal(u64::from(self.status.as_u16()), out);
        out.push(b' ');
        write_sanitised(&self.reason, out);
        out.extend_from_slice(b"\r\n");
        write_headers_and_body(&self.headers, &self.body, out);
    }
}

fn version(version: Version) -> &'static [u8] {
    match version {
        Version::Sip2 => b"SIP/2.0",
    }
}

fn write_headers_and_body(headers: &Headers, body: &Bytes, out: &mut Vec<u8>) {
    let mut content_length_written = false;
    for Header { name, value } in headers {
        // An `Other` that spells Content-Length equals it too (see `HeaderName`'s `PartialEq`):
        // the printer must never write a second Content-Length line.
        if *name == HeaderName::ContentLength {
            if !content_length_written {
                write_content_length(Some(value), body.len(), out);
                content_length_written = true;
            }
            continue;
        }
        write_name(name, out);
        out.extend_from_slice(b": ");
        write_sanitised(value, out);
        out.extend_from_slice(b"\r\n");
    }
    if !content_length_written {
        write_content_length(None, body.len(), out);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

fn write_content_length(existing: Option<&Bytes>, length: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(b"Content-Length: ");
    let keeps = existing.is_some_and(|v| {
        !v.is_empty()
            && v.iter().all(u8::is_ascii_digit)
            && crate::sip::parse::typed::whole_number(v, u64::MAX).ok()
                == u64::try_from(length).ok()
    });
    match existing {
        Some(value) if keeps => out.extend_from_slice(value),
        _ => decimal(length as u64, out),
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes a header name. Names the parser produced are tokens; an unknown name built by
/// code that is empty or holds a non-token byte (a `:`, a space, a line break …) is
/// printed with each such byte as `-` (and an empty one as `-`), so that it can neither
/// start another line nor end the name early.
fn write_name(name: &HeaderName, out: &mut Vec<u8>) {
    let text = name.as_str().as_bytes();
    if !matches!(name, HeaderName::Other(_))
        || (!text.is_empty() && text.iter().all(|&b| TOKEN[usize::from(b)]))
    {
        out.extend_from_slice(text);
    } else if text.is_empty() {
        out.push(b'-');
    } else {
        out.extend(
            text.iter()
                .map(|&b| if TOKEN[usize::from(b)] { b } else { b'-' }),
        );
    }
}

/// Replaces every CR and LF in `printed` by a space.
fn blank_line_breaks(printed: &mut [u8]) {
    if memchr::memchr2(b'\r', b'\n', printed).is_none() {
        return;
    }
    for b in printed {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
}

fn write_sanitised(value: &[u8], out: &mut Vec<u8>) {
    if memchr::memchr2(b'\r', b'\n', value).is_none() {
        out.extend_from_slice(value);
        return;
    }
    out.extend(
        value
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

/// Typed values write themselves as header bytes, losslessly (a quoted display name may
/// hold bytes that are not UTF-8). `Display` goes through this and is lossy only then.
trait Wire {
    fn wire(&self, out: &mut Vec<u8>);
}

fn decimal(value: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut rest = value;
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

impl Wire for Host {
    fn wire(&self, out: &mut Vec<u8>) {
        match self {
            Host::Name(name) => out.extend_from_slice(name.as_bytes()),
            Host::V4(address) => {
                let _ = write!(VecWriter(out), "{address}");
            }
            Host::V6(address) => {
                let _ = write!(VecWriter(out), "[{address}]");
            }
        }
    }
}

impl Wire for HostPort {
    fn wire(&self, out: &mut Vec<u8>) {
        self.host.wire(out);
        if let Some(port) = self.port {
            out.push(b':');
            decimal(u64::from(port), out);
        }
    }
}

impl Wire for Params {
    fn wire(&self, out: &mut Vec<u8>) {
        for param in self.iter() {
            out.push(b';');
            out.extend_from_slice(param.name.as_bytes());
            if let Some(value) = &param.value {
                out.push(b'=');
                out.extend_from_slice(value);
            }
        }
    }
}

impl Wire for SipUri {
    fn wire(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if self.secure { b"sips:" } else { b"sip:" });
        if let Some(user) = &self.user {
            out.extend_from_slice(user);
            if let Some(password) = &self.password {
                out.push(b':');
                out.extend_from_slice(password);
            }
            out.push(b'@');
        }
        self.host.wire(out);
        self.params.wire(out);
        if let Some(headers) = &self.headers {
            out.push(b'?');
            out.extend_from_slice(headers);
        }
    }
}

impl Wire for TelUri {
    fn wire(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"tel:");
        out.extend_from_slice(&self.number);
        self.params.wire(out);
    }
}

impl Wire for Uri {
    fn wire(&self, out: &mut Vec<u8>) {
        match self {
            Uri::Sip(uri) => uri.wire(out),
            Uri::Tel(uri) => uri.wire(out),
            Uri::Other { scheme, rest } => {
                out.extend_from_slice(scheme.as_bytes());
                out.push(b':');
                out.extend_from_slice(rest);
            }
        }
    }
}

impl Uri {
    /// Whether the URI must be written inside `<…>` in a name-addr: it has parameters or
    /// headers, or holds `,`, `;` or `?` (RFC 3261 §20.10).
    pub fn needs_angle_brackets(&self) -> bool {
        let risky = |b: &Bytes| memchr::memchr3(b',', b';', b'?', b).is_some();
        match self {
            Uri::Sip(uri) => {
                !uri.params.is_empty()
                    || uri.headers.is_some()
                    || uri.user.as_ref().is_some_and(risky)
                    || uri.password.as_ref().is_some_and(risky)
            }
            Uri::Tel(uri) => !uri.params.is_empty() || risky(&uri.number),
            Uri::Other { rest, .. } => risky(rest),
        }
    }
}

impl Wire for NameAddr {
    fn wire(&self, out: &mut Vec<u8>) {
        if let Some(display_name) = &self.display_name {
            out.extend_from_slice(display_name);
            out.push(b' ');
        }
        if self.angle_brackets || self.display_name.is_some() || self.uri.needs_angle_brackets() {
            out.push(b'<');
            self.uri.wire(out);
            out.push(b'>');
        } else {
            self.uri.wire(out);
        }
        self.params.wire(out);
    }
}

impl Transport {
    /// The transport token as printed in a Via.
    pub fn as_str(&self) -> &str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(token) => token,
        }
    }
}

impl Display for Transport {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Wire for Via {
    fn wire(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"SIP/2.0/");
        out.extend_from_slice(self.transport.as_str().as_bytes());
        out.push(b' ');
        self.sent_by.wire(out);
        self.params.wire(out);
    }
}

impl Wire for CSeq {
    fn wire(&self, out: &mut Vec<u8>) {
        decimal(u64::from(self.seq), out);
        out.push(b' ');
        out.extend_from_slice(self.method.as_str().as_bytes());
    }
}

impl Wire for MediaType {
    fn wire(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.kind.as_bytes());
        out.push(b'/');
        out.extend_from_slice(self.subtype.as_bytes());
        self.params.wire(out);
    }
}

impl Wire for Contact {
    fn wire(&self, out: &mut Vec<u8>) {
        match self {
            Contact::Star => out.push(b'*'),
            Contact::Addresses(addresses) => {
                for (i, address) in addresses.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    address.wire(out);
                }
            }
        }
    }
}

impl Display for StatusCode {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u16())
    }
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

macro_rules! printable {
    ($($ty:ty),*) => {
        $(
            impl $ty {
                /// The value as header bytes (lossless).
                pub fn to_bytes(&self) -> Bytes {
                    let mut out = Vec::with_capacity(64);
                    self.wire(&mut out);
                    Bytes::from(out)
                }

                /// Appends the value as header bytes to `out`.
                pub fn write_to(&self, out: &mut Vec<u8>) {
                    self.wire(out);
                }
            }

            impl Display for $ty {
                fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
                    let mut out = Vec::with_capacity(64);
                    self.wire(&mut out);
                    f.write_str(&String::from_utf8_lossy(&out))
                }
            }

            impl From<&$ty> for Bytes {
                fn from(value: &$ty) -> Bytes {
                    value.to_bytes()
                }
            }
        )*
    };
}

printable!(
    Host, HostPort, Params, SipUri, TelUri, Uri, Via, NameAddr, CSeq, MediaType, Contact
);
