//! Decoders of the typed header values (RFC 3261 §20, §25.1). Each takes one header
//! value, already unfolded, as a range of a shared [`Bytes`]; values are sliced, not copied.

use bytes::Bytes;

use super::scan::{self, Invalid, Scan, at, expect, skip_ws, span1, trim_end};
use super::uri::{self, UriContext};
use crate::sip::{CSeq, Contact, MediaType, Method, NameAddr, Param, Params, Transport, Via};

/// One `via-parm`: `SIP / 2.0 / transport LWS sent-by *( SEMI via-params )`.
pub(crate) fn via(src: &Bytes, start: usize, end: usize) -> Scan<Via> {
    let input = src.get(..end).ok_or(Invalid)?;
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
    let pos = skip_ws(input, expect(input, skip_ws(input, version_end), b'/')?);
    let transport_end = span1(input, pos, &scan::TOKEN)?;
    let transport = transport(&input[pos..transport_end])?;
    let host_start = skip_ws(input, transport_end);
    if host_start == transport_end {
        return Err(Invalid);
    }
    let (host, host_end) = uri::host(input, host_start)?;
    let mut pos = skip_ws(input, host_end);
    let port = if at(input, pos) == Some(b':') {
        let (port, port_end) = uri::port(input, skip_ws(input, pos + 1))?;
        pos = port_end;
        Some(port)
    } else {
        pos = host_end;
        None
    };
    let params = header_params(src, input, pos)?;
    Ok(Via {
        transport,
        sent_by: crate::sip::HostPort { host, port },
        params,
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

/// `*( SEMI generic-param )` from `pos` to the end of `input`, with whitespace allowed
/// around `;` and `=`. Values are a token, a host or a quoted string, kept as received.
pub(crate) fn header_params(src: &Bytes, input: &[u8], pos: usize) -> Scan<Params> {
    let mut params = Params::default();
    let mut pos = skip_ws(input, pos);
    while pos < input.len() {
        pos = skip_ws(input, expect(input, pos, b';')?);
        let name_end = span1(input, pos, &scan::TOKEN)?;
        let name = uri::ascii_str(&input[pos..name_end])?;
        pos = skip_ws(input, name_end);
        let mut value = None;
        if at(input, pos) == Some(b'=') {
            let value_start = skip_ws(input, pos + 1);
            let value_end = if at(input, value_start) == Some(b'"') {
                scan::quoted_string(input, value_start)?
            } else {
                span1(input, value_start, &scan::GEN_VALUE)?
            };
            value = Some(src.slice(value_start..value_end));
            pos = skip_ws(input, value_end);
        }
        params.0.push(Param { name, value });
    }
    Ok(params)
}

/// `name-addr` or `addr-spec`, followed by header parameters (From, To, Contact, Route …).
pub(crate) fn name_addr(src: &Bytes, start: usize, end: usize) -> Scan<NameAddr> {
    let input = src.get(..end).ok_or(Invalid)?;
    let pos = skip_ws(input, start);
    let display_name;
    let laquot;
    if at(input, pos) == Some(b'"') {
        let quote_end = scan::quoted_string(input, pos)?;
        display_name = Some(src.slice(pos..quote_end));
        laquot = skip_ws(input, quote_end);
        if at(input, laquot) != Some(b'<') {
            return Err(Invalid);
        }
    } else {
        // A token display name holds no `;` or `"`, so a `<` after either is not a LAQUOT.
        match memchr::memchr3(b'<', b';', b'"', &input[pos..]) {
            Some(offset) if input[pos + offset] == b'<' => {
                laquot = pos + offset;
                display_name = token_display_name(src, input, pos, laquot)?;
            }
            _ => return addr_spec(src, input, pos),
        }
    }
    let uri_start = laquot + 1;
    let raquot = memchr::memchr(b'>', &input[uri_start..]).ok_or(Invalid)? + uri_start;
    let uri = uri::uri(src, uri_start, raquot, UriContext::Bracketed)?;
    let params = header_params(src, input, raquot + 1)?;
    Ok(NameAddr {
        display_name,
        uri,
        params,
        angle_brackets: true,
    })
}

/// `*(token LWS)` before `<` (RFC 4475 §3.1.1.6: the LWS before `<` may be missing).
/// Whitespace runs inside are kept when they are single spaces, else normalised.
fn token_display_name(src: &Bytes, input: &[u8], start: usize, end: usize) -> Scan<Option<Bytes>> {
    let end = trim_end(input, start, end);
    if end == start {
        return Ok(None);
    }
    let text = &input[start..end];
    let mut normalised = true;
    let mut previous_space = false;
    for &b in text {
        let space = scan::is_wsp(b);
        if !space && !scan::TOKEN[usize::from(b)] {
            return Err(Invalid);
        }
        if space && (b != b' ' || previous_space) {
            normalised = false;
        }
        previous_space = space;
    }
    if normalised {
        return Ok(Some(src.slice(start..end)));
    }
    let mut out = Vec::with_capacity(text.len());
    for word in text.split(|&b| scan::is_wsp(b)).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(word);
    }
    Ok(Some(Bytes::from(out)))
}

/// An `addr-spec` without brackets: the URI ends at the first `;`, after which come
/// header parameters (RFC 3261 §20.10, RFC 4475 §3.3.12).
fn addr_spec(src: &Bytes, input: &[u8], start: usize) -> Scan<NameAddr> {
    let uri_end = memchr::memchr(b';', &input[start..]).map_or(input.len(), |i| start + i);
    let uri_end_trimmed = trim_end(input, start, uri_end);
    let uri = uri::uri(src, start, uri_end_trimmed, UriContext::AddrSpec)?;
    let params = header_params(src, input, uri_end)?;
    Ok(NameAddr {
        display_name: None,
        uri,
        params,
        angle_brackets: false,
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

/// `Content-Type: m-type "/" m-subtype *( SEMI m-parameter )`.
pub(crate) fn media_type(src: &Bytes, start: usize, end: usize) -> Scan<MediaType> {
    let input = src.get(..end).ok_or(Invalid)?;
    let pos = skip_ws(input, start);
    let kind_end = span1(input, pos, &scan::TOKEN)?;
    let slash = expect(input, skip_ws(input, kind_end), b'/')?;
    let subtype_start = skip_ws(input, slash);
    let subtype_end = span1(input, subtype_start, &scan::TOKEN)?;
    let params = header_params(src, input, subtype_end)?;
    if params.iter().any(|p| p.value.is_none()) {
        return Err(Invalid);
    }
    Ok(MediaType {
        kind: uri::ascii_str(&input[pos..kind_end])?,
        subtype: uri::ascii_str(&input[subtype_start..subtype_end])?,
        params,
    })
}

/// The elements of a comma-separated list value, each checked by `element`; empty
/// elements are refused.
pub(crate) fn list<T>(
    src: &Bytes,
    mut element: impl FnMut(&Bytes, usize, usize) -> Scan<T>,
    mut sink: impl FnMut(T),
) -> Scan<()> {
    for range in scan::split_list(src) {
        let (start, end) = range?;
        if start == end {
            return Err(Invalid);
        }
        sink(element(src, start, end)?);
    }
    Ok(())
}

/// One option tag (Require, Supported, Proxy-Require, Unsupported).
pub(crate) fn option_tag(src: &Bytes, start: usize, end: usize) -> Scan<Bytes> {
    let input = src.get(..end).ok_or(Invalid)?;
    if span1(input, start, &scan::TOKEN)? == end {
        Ok(src.slice(start..end))
    } else {
        Err(Invalid)
    }
}

/// A Contact value (all its lines): `*` alone, or name-addrs.
pub(crate) fn contact<'a>(values: impl Iterator<Item = &'a Bytes>) -> Scan<Option<Contact>> {
    let mut addresses = Vec::new();
    let mut star = false;
    let mut any = false;
    for value in values {
        if any && star {
            return Err(Invalid);
        }
        any = true;
        if value.as_ref() == b"*" {
            if !addresses.is_empty() {
                return Err(Invalid);
            }
            star = true;
            continue;
        }
        list(value, name_addr, |a| addresses.push(a))?;
    }
    Ok(match (any, star) {
        (false, _) => None,
        (true, true) => Some(Contact::Star),
        (true, false) => Some(Contact::Addresses(addresses)),
    })
}

/// A Route or Record-Route element: a name-addr with brackets (RFC 3261 §25.1 `route-param`).
pub(crate) fn route(src: &Bytes, start: usize, end: usize) -> Scan<NameAddr> {
    let address = name_addr(src, start, end)?;
    if address.angle_brackets {
        Ok(address)
    } else {
        Err(Invalid)
    }
}
