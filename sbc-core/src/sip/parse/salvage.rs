//! What can be rescued from a request that failed to parse, to answer it with `400`/`505`
//! (RFC 3261 §8.2.6, §16.3; RFC 4475 §3.1.2).

use bytes::Bytes;

use super::scan;
use crate::sip::{HeaderName, Headers, Method, Response, StatusCode};

/// The raw lines of a malformed request that a response must copy (RFC 3261 §8.2.6.2).
/// Values are taken as they are, one per line, unfolded; nothing is checked beyond the
/// line structure, so a salvaged Via may itself be what was malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Salvage {
    /// The request method (never answer an `ACK`).
    pub method: Method,
    /// Every Via line, in order.
    pub vias: Vec<Bytes>,
    pub from: Option<Bytes>,
    pub to: Option<Bytes>,
    pub call_id: Option<Bytes>,
    pub cseq: Option<Bytes>,
}

/// Most lines looked at; a request with more is not worth answering.
const MAX_LINES: usize = 256;

/// Rescues the lines needed to answer `input`, which [`super::parse_message`] refused.
/// Returns `None` when the input is not a request (its first word is not a method token
/// followed by a space) or has no Via line: such a message is dropped, not answered.
pub fn salvage_for_response(input: &Bytes) -> Option<Salvage> {
    let bytes = input.as_ref();
    let mut lines = Lines { bytes, pos: 0 };
    while bytes.get(lines.pos..lines.pos + 2) == Some(b"\r\n") {
        lines.pos += 2;
    }
    let (first_start, first_end) = lines.next()?;
    let first = &bytes[first_start..first_end];
    let method_end = memchr::memchr(b' ', first)?;
    let method = Method::from_token(&first[..method_end])?;

    let mut salvage = Salvage {
        method,
        vias: Vec::new(),
        from: None,
        to: None,
        call_id: None,
        cseq: None,
    };
    for (start, end) in lines.take(MAX_LINES) {
        if start == end {
            break;
        }
        let line = &bytes[start..end];
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name_end = scan::trim_end(line, 0, colon);
        let name = &line[..name_end];
        if name.is_empty() || !name.iter().all(|&b| scan::TOKEN[usize::from(b)]) {
            continue;
        }
        let value_start = scan::skip_ws(line, colon + 1);
        let value_end = scan::trim_end(line, value_start, line.len());
        let value = || input.slice(start + value_start..start + value_end);
        match HeaderName::from_bytes(name) {
            HeaderName::Via => salvage.vias.push(value()),
            HeaderName::From => {
                salvage.from.get_or_insert_with(value);
            }
            HeaderName::To => {
                salvage.to.get_or_insert_with(value);
            }
            HeaderName::CallId => {
                salvage.call_id.get_or_insert_with(value);
            }
            HeaderName::CSeq => {
                salvage.cseq.get_or_insert_with(value);
            }
            _ => {}
        }
    }
    if salvage.vias.is_empty() {
        return None;
    }
    Some(salvage)
}

/// Physical lines ended by CRLF, a bare LF or the end of the input. Folded continuation
/// lines are not joined: a salvaged value is only its first line.
struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Iterator for Lines<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let rest = self.bytes.get(self.pos..).filter(|r| !r.is_empty())?;
        let start = self.pos;
        let (end, next) = match memchr::memchr(b'\n', rest) {
            Some(offset) => {
                let lf = start + offset;
                let end = if lf > start && self.bytes.get(lf - 1) == Some(&b'\r') {
                    lf - 1
                } else {
                    lf
                };
                (end, lf + 1)
            }
            None => (self.bytes.len(), self.bytes.len()),
        };
        self.pos = next;
        Some((start, end))
    }
}

impl Salvage {
    /// A response to the malformed request: its Via lines, From, To (with `to_tag` added
    /// when it has none), Call-ID and CSeq copied as received, and no body.
    pub fn make_response(
        &self,
        status: StatusCode,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Response {
        let mut headers = Headers::with_capacity(self.vias.len() + 4);
        for via in &self.vias {
            headers.push(HeaderName::Via, via.clone());
        }
        if let Some(from) = &self.from {
            headers.push(HeaderName::From, from.clone());
        }
        if let Some(to) = &self.to {
            headers.push(HeaderName::To, crate::sip::message::to_with_tag(to, to_tag));
        }
        if let Some(call_id) = &self.call_id {
            headers.push(HeaderName::CallId, call_id.clone());
        }
        if let Some(cseq) = &self.cseq {
            headers.push(HeaderName::CSeq, cseq.clone());
        }
        Response {
            version: crate::sip::Version::Sip2,
            status,
            reason: Bytes::copy_from_slice(reason.as_bytes()),
            headers,
            body: Bytes::new(),
        }
    }
}
