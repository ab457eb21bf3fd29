//! Decoders of the typed header values (RFC 3261 §20, §25.1).
//!
//! Each value is decoded in two steps, like URIs: a `scan_*` function checks the grammar
//! and returns positions (no allocation: that is all validation at parse time needs), and
//! the matching builder turns positions into model types, slicing the shared [`Bytes`]
//! instead of copying. Header values arrive unfolded (folds already replaced by a space).

use bytes::Bytes;

use super::scan::{self, Invalid, Scan, Span, at, expect, skip_ws, span, span1, trim_end};
use super::uri::{self, HostToken, UriContext, UriSpan};
use crate::sip::{
    CSeq, Contact, HostPort, MediaType, Method, NameAddr, Param, Params, Transport, Via,
};

/// A checked `via-parm`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ViaSpan {
    transport: Span,
    host: HostToken,
    port: Option<u16>,
    params: Span,
}

/// Checks one `via-parm` at `start`: `SIP / 2.0 / transport LWS sent-by *( SEMI
/// via-params )`. Stops before a `,` or the end of `input`.
pub(crate) fn scan_via(input: &[u8], start: usize) -> Scan<ViaSpan> {
    let pos = skip_ws(input, start);
    let name_end = span1(input, pos, &scan::TOKEN)?;
    if !input[pos..name_end].eq_ignore_ascii_case(b"SIP") {
        return Err(Invalid);
    }
    let pos = skip_ws(input, expect(input, skip_ws(input, name_end), b'/')?);
    let version_end = span1(input, pos, &scan::TOKEN)?;
    if &input[pos..version_end] != b"2.0" {
        return Err(Invalid);
    }
    let transport_start = skip_ws(input, expect(input, skip_ws(input, version_end), b'/')?);
    let transport_end = span1(input, transport_start, &scan::TOKEN)?;
    let host_start = skip_ws(input, transport_end);
    if host_start == transport_end {
        return Err(Invalid);
    }
    let (host, host_end) = uri::host(input, host_start)?;
    let colon = skip_ws(input, host_end);
    let (port, params_start) = if at(input, colon) == Some(b':') {
        let (port, port_end) = uri::port(input, skip_ws(input, colon + 1))?;
        (Some(port), port_end)
    } else {
        (None, host_end)
    };
    let end = header_params(input, params_start, |_, _| {})?;
    Ok(ViaSpan {
        transport: (transport_start, transport_end),
        host,
        port,
        params: (params_start, end),
    })
}

/// Decodes one `via-parm`.
pub(crate) fn via(src: &Bytes, span: &ViaSpan) -> Scan<Via> {
    Ok(Via {
        transport: transport(src.get(span.transport.0..span.transport.1).ok_or(Invalid)?)?,
        sent_by: HostPort {
            host: uri::build_host(src, span.host)?,
            port: span.port,
        },
        params: build_header_params(src, span.params)?,
    })
}

fn transport(token: &[u8]) -> Scan<Transport> {
    let known = [
        (&b"UDP"[..], Transport::Udp),
        (b"TCP", Transport::Tcp),
        (b"TLS", Transport::Tls),
        (b"SCTP", Transport::Sctp),
        (b"WS", Transport::Ws),
        (b"WSS", Transport::Wss),
    ];
    for (name, transport) in known {
        if token.eq_ignore_ascii_case(name) {
            return Ok(transport);
        }
    }
    Ok(Transport::Other(uri::ascii_str(token)?))
}

/// `*( SEMI generic-param )` from `pos`, whitespace allowed around `;` and `=`. A value is
/// a token, a host (IPv6 with or without brackets, RFC 5118 §4.5) or a quoted string.
/// Calls `each` with the name and value spans; stops (returning the position) before
/// anything that is not a `;` after whitespace, such as a `,` or the end of `input`.
pub(crate) fn header_params(
    input: &[u8],
    pos: usize,
    mut each: impl FnMut(Span, Option<Span>),
) -> Scan<usize> {
    let mut end = pos;
    let mut pos = skip_ws(input, pos);
    while at(input, pos) == Some(b';') {
        pos = skip_ws(input, pos + 1);
        let name_end = span1(input, pos, &scan::TOKEN)?;
        let name = (pos, name_end);
        end = name_end;
        pos = skip_ws(input, name_end);
        if at(input, pos) == Some(b'=') {
            let value_start = skip_ws(input, pos + 1);
            let value_end = if at(input, value_start) == Some(b'"') {
                scan::quoted_string(input, value_start)?
            } else {
                span1(input, value_start, &scan::GEN_VALUE)?
            };
            each(name, Some((value_start, value_end)));
            end = value_end;
            pos = skip_ws(input, value_end);
        } else {
            each(name, None);
        }
    }
    Ok(end)
}

/// Builds the parameters a successful [`header_params`] over `src[start..end]` saw.
pub(crate) fn build_header_params(src: &Bytes, (start, end): Span) -> Scan<Params> {
    let input = src.get(..end).ok_or(Invalid)?;
    let mut params = Params::default();
    let mut failed = false;
    header_params(input, start, |name, value| {
        match input.get(name.0..name.1).map(uri::ascii_str) {
            Some(Ok(name)) => params.0.push(Param {
                name,
                value: value.map(|(s, e)| src.slice(s..e)),
            }),
            _ => failed = true,
        }
    })?;
    if failed { Err(Invalid) } else { Ok(params) }
}

/// How a display name was written.
#[derive(Clone, Copy, Debug)]
enum DisplaySpan {
    /// A quoted string, or tokens separated by single spaces: kept as received.
    Verbatim(Span),
    /// Tokens separated by other whitespace: normalised to single spaces when built.
    Tokens(Span),
}

/// A checked name-addr or addr-spec with its header parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NameAddrSpan {
    display_name: Option<DisplaySpan>,
    uri: UriSpan,
    angle_brackets: bool,
    params: Span,
}

/// Checks a `name-addr` or `addr-spec` at `start` followed by header parameters (From,
/// To, Contact, Route …). Stops before a `,` or the end of `input`.
pub(crate) fn scan_name_addr(input: &[u8], start: usize) -> Scan<NameAddrSpan> {
    let pos = skip_ws(input, start);
    let display_name;
    let laquot;
    if at(input, pos) == Some(b'"') {
        let quote_end = scan::quoted_string(input, pos)?;
        display_name = Some(DisplaySpan::Verbatim((pos, quote_end)));
        laquot = skip_ws(input, quote_end);
        if at(input, laquot) != Some(b'<') {
            return Err(Invalid);
        }
    } else {
        // `*(token LWS)` then `<` (RFC 4475 §3.1.1.6: the LWS before `<` may be
        // missing); anything else is an addr-spec, whose scheme ends at a `:`.
        let tokens_end = span(input, pos, &scan::TOKEN_OR_SPACE);
        if at(input, tokens_end) != Some(b'<') {
            return scan_addr_spec(input, pos);
        }
        laquot = tokens_end;
        display_name = token_display_name(input, pos, laquot);
    }
    let uri_start = laquot + 1;
    let raquot =
        memchr::memchr(b'>', input.get(uri_start..).ok_or(Invalid)?).ok_or(Invalid)? + uri_start;
    let uri = uri::scan_uri(input, uri_start, raquot, UriContext::Bracketed)?;
    let end = header_params(input, raquot + 1, |_, _| {})?;
    Ok(NameAddrSpan {
        display_name,
        uri,
        angle_brackets: true,
        params: (raquot + 1, end),
    })
}

/// The display name in `input[start..end]` (tokens and whitespace, already checked).
fn token_display_name(input: &[u8], start: usize, end: usize) -> Option<DisplaySpan> {
    let end = trim_end(input, start, end);
    if end == start {
        return None;
    }
    let mut normalised = true;
    let mut previous_space = false;
    for &b in &input[start..end] {
        let space = scan::is_wsp(b);
        if space && (b != b' ' || previous_space) {
            normalised = false;
        }
        previous_space = space;
    }
    Some(if normalised {
        DisplaySpan::Verbatim((start, end))
    } else {
        DisplaySpan::Tokens((start, end))
    })
}

/// An `addr-spec` without brackets: the URI ends at the first `;` or `,`, after which
/// come header parameters (RFC 3261 §20.10, RFC 4475 §3.3.12).
fn scan_addr_spec(input: &[u8], start: usize) -> Scan<NameAddrSpan> {
    let uri_end = span(input, start, &scan::ADDR_SPEC);
    let uri_end_trimmed = trim_end(input, start, uri_end);
    let uri = uri::scan_uri(input, start, uri_end_trimmed, UriContext::AddrSpec)?;
    let end = header_params(input, uri_end_trimmed, |_, _| {})?;
    Ok(NameAddrSpan {
        display_name: None,
        uri,
        angle_brackets: false,
        params: (uri_end_trimmed, end),
    })
}

/// Decodes a name-addr or addr-spec with its header parameters.
pub(crate) fn name_addr(src: &Bytes, span: &NameAddrSpan) -> Scan<NameAddr> {
    let display_name = match span.display_name {
        None => None,
        Some(DisplaySpan::Verbatim((s, e))) => Some(src.slice(s..e)),
        Some(DisplaySpan::Tokens((s, e))) => {
            let text = src.get(s..e).ok_or(Invalid)?;
            let mut out = Vec::with_capacity(text.len());
            for word in text.split(|&b| scan::is_wsp(b)).filter(|w| !w.is_empty()) {
                if !out.is_empty() {
                    out.push(b' ');
                }
                out.extend_from_slice(word);
            }
            Some(Bytes::from(out))
        }
    };
    Ok(NameAddr {
        display_name,
        uri: uri::build_uri(src, &span.uri)?,
        params: build_header_params(src, span.params)?,
        angle_brackets: span.angle_brackets,
    })
}

/// `CSeq: 1*DIGIT LWS Method`, the number at most 2^32 - 1 (RFC 3261 §8.1.1.5, §25.1).
pub(crate) fn cseq(input: &[u8]) -> Scan<CSeq> {
    let pos = skip_ws(input, 0);
    let (seq, digits_end) = scan::number(input, pos, u64::from(u32::MAX))?;
    let method_start = skip_ws(input, digits_end);
    if method_start == digits_end {
        return Err(Invalid);
    }
    let method_end = span1(input, method_start, &scan::TOKEN)?;
    if skip_ws(input, method_end) != input.len() {
        return Err(Invalid);
    }
    let method = Method::from_token(&input[method_start..method_end]).ok_or(Invalid)?;
    Ok(CSeq {
        seq: u32::try_from(seq).map_err(|_| Invalid)?,
        method,
    })
}

/// `callid = word [ "@" word ]`.
pub(crate) fn call_id(input: &[u8]) -> Scan<()> {
    let first_end = span1(input, 0, &scan::WORD)?;
    let end = if at(input, first_end) == Some(b'@') {
        span1(input, first_end + 1, &scan::WORD)?
    } else {
        first_end
    };
    if end == input.len() {
        Ok(())
    } else {
        Err(Invalid)
    }
}

/// A whole value that is one decimal number at most `max` (Max-Forwards, Content-Length).
pub(crate) fn whole_number(input: &[u8], max: u64) -> Scan<u64> {
    let pos = skip_ws(input, 0);
    let (value, end) = scan::number(input, pos, max)?;
    if skip_ws(input, end) == input.len() {
        Ok(value)
    } else {
        Err(Invalid)
    }
}

/// Checks `m-type "/" m-subtype *( SEMI m-parameter )`; returns the type, subtype and
/// parameter spans.
fn scan_media_type(input: &[u8]) -> Scan<(Span, Span, Span)> {
    let pos = skip_ws(input, 0);
    let kind_end = span1(input, pos, &scan::TOKEN)?;
    let slash = expect(input, skip_ws(input, kind_end), b'/')?;
    let subtype_start = skip_ws(input, slash);
    let subtype_end = span1(input, subtype_start, &scan::TOKEN)?;
    let mut valueless = false;
    let end = header_params(input, subtype_end, |_, value| valueless |= value.is_none())?;
    if valueless || skip_ws(input, end) != input.len() {
        return Err(Invalid);
    }
    Ok((
        (pos, kind_end),
        (subtype_start, subtype_end),
        (subtype_end, end),
    ))
}

/// Checks a Content-Type value.
pub(crate) fn check_media_type(input: &[u8]) -> Scan<()> {
    scan_media_type(input).map(drop)
}

/// Decodes a Content-Type value.
pub(crate) fn media_type(src: &Bytes) -> Scan<MediaType> {
    let (kind, subtype, params) = scan_media_type(src)?;
    let text = |(s, e): Span| src.get(s..e).ok_or(Invalid).and_then(uri::ascii_str);
    Ok(MediaType {
        kind: text(kind)?,
        subtype: text(subtype)?,
        params: build_header_params(src, params)?,
    })
}

/// Runs `element` on every element of a comma-separated list value. `element` is given
/// the element's start and returns where it stopped, which must be the end of the value
/// or, after optional whitespace, a `,` and another element.
pub(crate) fn list(input: &[u8], mut element: impl FnMut(usize) -> Scan<usize>) -> Scan<()> {
    let mut pos = skip_ws(input, 0);
    loop {
        if pos >= input.len() {
            return Err(Invalid);
        }
        let next = skip_ws(input, element(pos)?);
        match at(input, next) {
            None => return Ok(()),
            Some(b',') => pos = skip_ws(input, next + 1),
            Some(_) => return Err(Invalid),
        }
    }
}

/// Runs `element` on a whole value that must hold exactly one element.
pub(crate) fn whole<T>(input: &[u8], element: impl FnOnce(usize) -> Scan<(T, usize)>) -> Scan<T> {
    let (value, end) = element(0)?;
    if skip_ws(input, end) == input.len() {
        Ok(value)
    } else {
        Err(Invalid)
    }
}

impl ViaSpan {
    /// Where the value stopped.
    pub(crate) fn end(&self) -> usize {
        self.params.1
    }
}

impl NameAddrSpan {
    /// Where the value stopped.
    pub(crate) fn end(&self) -> usize {
        self.params.1
    }
}

/// Checks one option tag (Require, Supported, Proxy-Require, Unsupported) at `start`.
pub(crate) fn scan_option_tag(input: &[u8], start: usize) -> Scan<usize> {
    span1(input, start, &scan::TOKEN)
}

/// Checks a Route or Record-Route element at `start`: a name-addr with brackets (RFC 3261
/// §25.1 `route-param`).
pub(crate) fn scan_route(input: &[u8], start: usize) -> Scan<NameAddrSpan> {
    let span = scan_name_addr(input, start)?;
    if span.angle_brackets {
        Ok(span)
    } else {
        Err(Invalid)
    }
}

/// Checks or decodes a Contact value (all its lines): `*` alone, or name-addrs. With
/// `build` false nothing is allocated and the result holds no addresses.
pub(crate) fn contact<'a>(
    values: impl Iterator<Item = &'a Bytes>,
    build: bool,
) -> Scan<Option<Contact>> {
    let mut addresses = Vec::new();
    let mut star = false;
    let mut any = false;
    for value in values {
        if star {
            return Err(Invalid);
        }
        if value.as_ref() == b"*" {
            if any {
                return Err(Invalid);
            }
            star = true;
        } else {
            list(value, |start| {
                let span = scan_name_addr(value, start)?;
                if build {
                    addresses.push(name_addr(value, &span)?);
                }
                Ok(span.end())
            })?;
        }
        any = true;
    }
    Ok(match (any, star) {
        (false, _) => None,
        (true, true) => Some(Contact::Star),
        (true, false) => Some(Contact::Addresses(addresses)),
    })
}
