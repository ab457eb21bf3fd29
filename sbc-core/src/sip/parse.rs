//! The SIP message parser (RFC 3261 §7, §18.3, §25; RFC 4475; RFC 5118).
//!
//! [`parse_message`] takes one whole message: a UDP datagram, or one message the stream
//! framer cut out of a TCP/TLS stream. Header values are slices of the input (zero copy)
//! except where line folding had to be collapsed. The parser checks what every message
//! needs (the start line, Via, From, To, Call-ID, CSeq, Max-Forwards, Content-Length) and
//! the syntax of Contact, Route, Record-Route, Content-Type, Require, Supported and
//! Proxy-Require; everything else stays raw and is decoded on demand.
//!
//! ```
//! use bytes::Bytes;
//! use sbc_core::sip::{parse_message, salvage_for_response, Message, StatusCode};
//!
//! let datagram = Bytes::from_static(
//!     b"OPTIONS sip:bob@example.com SIP/2.0\r\n\
//!       Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK77\r\n\
//!       From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\n\
//!       Call-ID: abc@192.0.2.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
//! );
//! # assert!(parse_message(datagram.clone()).is_ok());
//! match parse_message(datagram.clone()) {
//!     Ok(Message::Request(request)) => {
//!         let via = request.headers.top_via()?;
//!         assert_eq!(via.branch().map(|b| &b[..]), Some(&b"z9hG4bK77"[..]));
//!         let ok = request.make_response(StatusCode::OK, None, Some("to-tag"));
//!         assert!(ok.to_bytes().starts_with(b"SIP/2.0 200 OK\r\n"));
//!     }
//!     Ok(Message::Response(_)) => unreachable!(),
//!     Err(error) => {
//!         // Answer a broken request with 400/505 when enough of it survives.
//!         if let Some(salvage) = salvage_for_response(&datagram) {
//!             let _answer = salvage.make_response(error.status(), error.reason(), None);
//!         }
//!     }
//! }
//! # Ok::<(), sbc_core::sip::ParseError>(())
//! ```
//!
//! # Strict or lenient
//!
//! Strict where RFC 3261 says a message is malformed, lenient only where RFC 4475 says an
//! element should accept: a token display name directly followed by `<` (§3.1.1.6), an
//! extra `:` in an IPv6 reference (RFC 5118 §4.10), a response line with no space before
//! an empty reason phrase, and leading CRLFs before the start line (RFC 3261 §7.5). Every
//! other RFC 4475 "may be lenient" case (§3.1.2.6–3.1.2.15) is refused; `tests/torture.rs`
//! lists them one by one.

mod accessors;
mod error;
mod salvage;
pub(crate) mod scan;
pub(crate) mod typed;
pub(crate) mod uri;

use bytes::Bytes;
use memchr::memchr2;

pub use error::{Field, ParseError};
pub use salvage::{Salvage, salvage_for_response};

use self::scan::Invalid;
use super::{HeaderName, Headers, Message, Method, Request, Response, StatusCode, Uri, Version};

/// Parses one message with datagram semantics: the header section ends at the first
/// empty line; with a Content-Length the body is exactly that many bytes (extra bytes are
/// ignored, RFC 4475 §3.1.1.8; too few is an error); without one the body is the rest
/// (RFC 2543 compatibility, RFC 4475 §3.4.1).
pub fn parse_message(input: Bytes) -> Result<Message, ParseError> {
    let bytes = input.as_ref();
    let mut pos = 0;
    while bytes.get(pos..pos + 2) == Some(b"\r\n") {
        pos += 2;
    }
    let start_end = line_end(bytes, pos)?.ok_or(ParseError::BadStartLine)?;
    let start = StartLineParts::parse(&input, pos, start_end)?;
    pos = start_end + 2;

    let mut headers = Headers::with_capacity(TYPICAL_HEADER_COUNT);
    loop {
        match bytes.get(pos..pos + 2) {
            Some(b"\r\n") => {
                pos += 2;
                break;
            }
            None => return Err(ParseError::UnterminatedHeaders),
            Some(_) => {}
        }
        pos = header_line(&input, pos, &mut headers)?;
    }

    let content_length = check_headers(&headers, &start)?;
    let rest = input.len() - pos;
    let body = match content_length {
        Some(length) if length > rest => return Err(ParseError::ContentLengthMismatch),
        Some(length) => input.slice(pos..pos + length),
        None => input.slice(pos..),
    };
    Ok(match start {
        StartLineParts::Request { method, uri } => Message::Request(Request {
            method,
            uri,
            version: Version::Sip2,
            headers,
            body,
        }),
        StartLineParts::Response { status, reason } => Message::Response(Response {
            version: Version::Sip2,
            status,
            reason,
            headers,
            body,
        }),
    })
}

impl Message {
    /// Parses one message; see [`parse_message`].
    pub fn parse(input: Bytes) -> Result<Message, ParseError> {
        parse_message(input)
    }
}

/// The index of the CR of the CRLF ending the line that starts at `pos`, or `None` when
/// the input ends first. A bare CR or LF is an error.
fn line_end(bytes: &[u8], pos: usize) -> Result<Option<usize>, ParseError> {
    let rest = bytes.get(pos..).unwrap_or_default();
    match memchr2(b'\r', b'\n', rest) {
        None => Ok(None),
        Some(offset) => {
            let cr = pos + offset;
            match (bytes.get(cr), bytes.get(cr + 1)) {
                (Some(b'\r'), Some(b'\n')) => Ok(Some(cr)),
                (Some(b'\r'), None) => Ok(None),
                _ => Err(ParseError::BadLineEnding),
            }
        }
    }
}

/// The initial capacity of the header list: enough for a typical message (about 900
/// bytes with lines of 56 bytes), small enough for the allocator's fast path; a longer
/// list grows once.
const TYPICAL_HEADER_COUNT: usize = 16;

enum StartLineParts {
    Request { method: Method, uri: Uri },
    Response { status: StatusCode, reason: Bytes },
}

impl StartLineParts {
    fn parse(input: &Bytes, start: usize, end: usize) -> Result<StartLineParts, ParseError> {
        let line = input.get(start..end).ok_or(ParseError::BadStartLine)?;
        if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
            return Self::status_line(input, start, line);
        }
        // Request-Line: exactly one SP between the three parts (RFC 4475 §3.1.2.9 and
        // §3.1.2.10 are refused, not repaired).
        let first_sp = memchr::memchr(b' ', line).ok_or(ParseError::BadStartLine)?;
        let last_sp = memchr::memrchr(b' ', line).ok_or(ParseError::BadStartLine)?;
        if last_sp <= first_sp + 1 {
            return Err(ParseError::BadStartLine);
        }
        let method = Method::from_token(&line[..first_sp]).ok_or(ParseError::BadStartLine)?;
        let version = &line[last_sp + 1..];
        if version.len() < 4 || !version[..4].eq_ignore_ascii_case(b"SIP/") {
            return Err(ParseError::BadStartLine);
        }
        if !version.eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(ParseError::BadVersion);
        }
        let uri_text = &line[first_sp + 1..last_sp];
        if uri_text.first() == Some(&b' ') || uri_text.last() == Some(&b' ') {
            return Err(ParseError::BadStartLine);
        }
        let uri = uri::uri(
            input,
            start + first_sp + 1,
            start + last_sp,
            uri::UriContext::RequestLine,
        )
        .map_err(|Invalid| ParseError::BadRequestUri)?;
        Ok(StartLineParts::Request { method, uri })
    }

    fn status_line(input: &Bytes, start: usize, line: &[u8]) -> Result<StartLineParts, ParseError> {
        let version_end = memchr::memchr(b' ', line).ok_or(ParseError::BadStartLine)?;
        if !line[..version_end].eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(ParseError::BadVersion);
        }
        let code_start = version_end + 1;
        let code_end =
            memchr::memchr(b' ', &line[code_start..]).map_or(line.len(), |i| code_start + i);
        let code = &line[code_start..code_end];
        if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::BadStatusCode);
        }
        let value = code
            .iter()
            .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
        let status = StatusCode::new(value).ok_or(ParseError::BadStatusCode)?;
        let reason_start = (code_end + 1).min(line.len());
        let reason = &line[reason_start..];
        let text = std::str::from_utf8(reason).map_err(|_| ParseError::BadReasonPhrase)?;
        if text.chars().any(|c| c.is_control() && c != '\t') {
            return Err(ParseError::BadReasonPhrase);
        }
        Ok(StartLineParts::Response {
            status,
            reason: input.slice(start + reason_start..start + line.len()),
        })
    }
}

/// Parses the header line (with its continuation lines) starting at `pos`, appends it and
/// returns the position of the next line.
fn header_line(input: &Bytes, pos: usize, headers: &mut Headers) -> Result<usize, ParseError> {
    let bytes = input.as_ref();
    let name_end = scan::span(bytes, pos, &scan::TOKEN);
    if name_end == pos {
        return Err(ParseError::BadHeaderLine);
    }
    let colon = scan::skip_ws(bytes, name_end);
    if bytes.get(colon) != Some(&b':') {
        return Err(ParseError::BadHeaderLine);
    }
    let value_start = colon + 1;
    let mut cr = line_end(bytes, value_start)?.ok_or(ParseError::UnterminatedHeaders)?;
    let mut folded = false;
    while bytes.get(cr + 2).copied().is_some_and(scan::is_wsp) {
        folded = true;
        cr = line_end(bytes, cr + 2)?.ok_or(ParseError::UnterminatedHeaders)?;
    }
    let value = if folded {
        unfold(&bytes[value_start..cr])
    } else {
        let start = scan::skip_ws(bytes, value_start);
        let end = scan::trim_end(bytes, start, cr);
        input.slice(start..end)
    };
    headers.push(HeaderName::from_bytes(&bytes[pos..name_end]), value);
    Ok(cr + 2)
}

/// Collapses every line fold (`*WSP CRLF 1*WSP`) to one SP and trims the ends.
fn unfold(raw: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'\r' {
            while out.last().copied().is_some_and(scan::is_wsp) {
                out.pop();
            }
            out.push(b' ');
            i = scan::skip_ws(raw, i + 2);
        } else {
            out.push(b);
            i += 1;
        }
    }
    let start = scan::skip_ws(&out, 0);
    let end = scan::trim_end(&out, start, out.len());
    Bytes::from(out).slice(start..end)
}

/// Where each checked header first appears and how many lines it has.
struct Seen<'a> {
    lines: &'a [super::Header],
    first: [usize; Field::COUNT],
    count: [u32; Field::COUNT],
}

impl<'a> Seen<'a> {
    fn new(headers: &'a Headers) -> Seen<'a> {
        let lines = headers.as_slice();
        let mut seen = Seen {
            lines,
            first: [0; Field::COUNT],
            count: [0; Field::COUNT],
        };
        for (i, header) in lines.iter().enumerate() {
            if let Some(field) = Field::of(&header.name) {
                let f = field as usize;
                if seen.count[f] == 0 {
                    seen.first[f] = i;
                }
                seen.count[f] = seen.count[f].saturating_add(1);
            }
        }
        seen
    }

    /// The only line of a header that must appear once.
    fn single(&self, field: Field) -> Result<&'a Bytes, ParseError> {
        self.optional(field)?.ok_or(ParseError::Missing(field))
    }

    /// The only line of a header that may appear at most once.
    fn optional(&self, field: Field) -> Result<Option<&'a Bytes>, ParseError> {
        let f = field as usize;
        match self.count[f] {
            0 => Ok(None),
            1 => Ok(self.lines.get(self.first[f]).map(|h| &h.value)),
            _ => Err(ParseError::Multiple(field)),
        }
    }

    /// Every line of a header, in order.
    fn all(&self, field: Field) -> impl Iterator<Item = &'a Bytes> + use<'a> {
        let f = field as usize;
        let from = if self.count[f] == 0 {
            self.lines.len()
        } else {
            self.first[f]
        };
        self.lines
            .get(from..)
            .unwrap_or_default()
            .iter()
            .filter(move |h| Field::of(&h.name) == Some(field))
            .map(|h| &h.value)
    }

    /// Checks every element of every line of a list header; `element` returns where the
    /// element it checked stopped.
    fn check_list(
        &self,
        field: Field,
        element: impl Fn(&[u8], usize) -> scan::Scan<usize>,
    ) -> Result<(), ParseError> {
        for value in self.all(field) {
            typed::list(value, |start| element(value, start))
                .map_err(|Invalid| ParseError::Malformed(field))?;
        }
        Ok(())
    }
}

/// Checks the headers every message needs, in a fixed order (the first fault found is
/// the one reported), and returns the Content-Length.
fn check_headers(headers: &Headers, start: &StartLineParts) -> Result<Option<usize>, ParseError> {
    let seen = Seen::new(headers);
    let malformed = |field| move |Invalid| ParseError::Malformed(field);
    if seen.count[Field::Via as usize] == 0 {
        return Err(ParseError::Missing(Field::Via));
    }
    seen.check_list(Field::Via, |v, s| {
        typed::scan_via(v, s).map(|via| via.end())
    })?;
    for field in [Field::From, Field::To] {
        let value = seen.single(field)?;
        typed::whole(value, |s| {
            typed::scan_name_addr(value, s).map(|a| ((), a.end()))
        })
        .map_err(malformed(field))?;
    }
    typed::call_id(seen.single(Field::CallId)?).map_err(malformed(Field::CallId))?;
    let cseq = typed::cseq(seen.single(Field::CSeq)?).map_err(malformed(Field::CSeq))?;
    if let StartLineParts::Request { method, .. } = start
        && cseq.method != *method
    {
        return Err(ParseError::CSeqMethodMismatch);
    }
    if let Some(value) = seen.optional(Field::MaxForwards)? {
        typed::whole_number(value, 255).map_err(malformed(Field::MaxForwards))?;
    }
    let content_length = match seen.optional(Field::ContentLength)? {
        Some(value) => Some(
            typed::whole_number(value, u64::from(u32::MAX))
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(ParseError::Malformed(Field::ContentLength))?,
        ),
        None => None,
    };
    typed::contact(seen.all(Field::Contact), false).map_err(malformed(Field::Contact))?;
    let route = |v: &[u8], s| typed::scan_route(v, s).map(|r| r.end());
    seen.check_list(Field::Route, route)?;
    seen.check_list(Field::RecordRoute, route)?;
    if let Some(value) = seen.optional(Field::ContentType)? {
        typed::check_media_type(value).map_err(malformed(Field::ContentType))?;
    }
    seen.check_list(Field::Require, typed::scan_option_tag)?;
    seen.check_list(Field::ProxyRequire, typed::scan_option_tag)?;
    for value in seen.all(Field::Supported).filter(|v| !v.is_empty()) {
        typed::list(value, |s| typed::scan_option_tag(value, s))
            .map_err(malformed(Field::Supported))?;
    }
    Ok(content_length)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

#[cfg(test)]
mod hostile_tests;
