//! Decoding of `sip:`, `sips:`, `tel:` and other absolute URIs (RFC 3261 §19.1.1, §25.1;
//! RFC 3966; RFC 5118; RFC 5954).

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

use super::scan::{self, Invalid, Scan, at, span, span_escaped, span1};
use crate::sip::{Host, HostPort, Param, Params, SipUri, TelUri, Uri};

/// Where a URI appears, which decides what it may contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UriContext {
    /// The Request-URI: no `?headers` (RFC 4475 §3.1.2.11, we refuse rather than strip).
    RequestLine,
    /// Inside `<…>` of a name-addr: everything is allowed.
    Bracketed,
    /// A bare addr-spec: the caller already cut it at the first `;`; `?headers` are
    /// refused because RFC 3261 §20.10 requires brackets then (RFC 4475 §3.1.2.13).
    AddrSpec,
}

/// Decodes `input[start..end]` as a URI.
pub(crate) fn uri(src: &Bytes, start: usize, end: usize, context: UriContext) -> Scan<Uri> {
    let input = src.get(..end).ok_or(Invalid)?;
    let colon = memchr::memchr(b':', input.get(start..).ok_or(Invalid)?).ok_or(Invalid)? + start;
    let scheme = &input[start..colon];
    let first_is_alpha = scheme.first().is_some_and(u8::is_ascii_alphabetic);
    let scheme_ok = scheme
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !first_is_alpha || !scheme_ok {
        return Err(Invalid);
    }
    if scheme.eq_ignore_ascii_case(b"sip") {
        sip_uri(src, input, colon + 1, false, context).map(Uri::Sip)
    } else if scheme.eq_ignore_ascii_case(b"sips") {
        sip_uri(src, input, colon + 1, true, context).map(Uri::Sip)
    } else if scheme.eq_ignore_ascii_case(b"tel") {
        tel_uri(src, input, colon + 1).map(Uri::Tel)
    } else {
        let rest_end = span(input, colon + 1, &scan::URIC);
        if rest_end != input.len() || rest_end == colon + 1 {
            return Err(Invalid);
        }
        Ok(Uri::Other {
            scheme: ascii_str(scheme)?,
            rest: src.slice(colon + 1..rest_end),
        })
    }
}

fn sip_uri(
    src: &Bytes,
    input: &[u8],
    start: usize,
    secure: bool,
    context: UriContext,
) -> Scan<SipUri> {
    let end = input.len();
    // `@` cannot appear unescaped after the userinfo, so the first one ends it. The user
    // part may hold `;`, `?` and `,` (RFC 4475 §3.1.1.2, §3.1.1.9).
    let (user, password, host_start) = match memchr::memchr(b'@', &input[start..]) {
        Some(offset) => {
            let at_sign = start + offset;
            let user_end = span_escaped(input, start, &scan::USER)?;
            if user_end == start {
                return Err(Invalid);
            }
            let password = if user_end == at_sign {
                None
            } else if at(input, user_end) == Some(b':') {
                let pw_end = span_escaped(input, user_end + 1, &scan::PASSWORD)?;
                if pw_end != at_sign {
                    return Err(Invalid);
                }
                Some(src.slice(user_end + 1..pw_end))
            } else {
                return Err(Invalid);
            };
            (Some(src.slice(start..user_end)), password, at_sign + 1)
        }
        None => (None, None, start),
    };
    let (host, mut pos) = host_port(input, host_start)?;
    let params = uri_params(src, input, &mut pos)?;
    let headers = if at(input, pos) == Some(b'?') {
        if context != UriContext::Bracketed {
            return Err(Invalid);
        }
        let headers_end = span_escaped(input, pos + 1, &scan::URI_HEADERS)?;
        if headers_end == pos + 1 {
            return Err(Invalid);
        }
        let headers = src.slice(pos + 1..headers_end);
        pos = headers_end;
        Some(headers)
    } else {
        None
    };
    if pos != end {
        return Err(Invalid);
    }
    Ok(SipUri {
        secure,
        user,
        password,
        host,
        params,
        headers,
    })
}

fn tel_uri(src: &Bytes, input: &[u8], start: usize) -> Scan<TelUri> {
    let number_end = span1(input, start, &scan::TEL_NUMBER)?;
    let mut pos = number_end;
    let params = uri_params(src, input, &mut pos)?;
    if pos != input.len() {
        return Err(Invalid);
    }
    Ok(TelUri {
        number: src.slice(start..number_end),
        params,
    })
}

/// `*( ";" pname [ "=" pvalue ] )` of a URI; advances `pos` past them.
fn uri_params(src: &Bytes, input: &[u8], pos: &mut usize) -> Scan<Params> {
    let mut params = Params::default();
    while at(input, *pos) == Some(b';') {
        let name_start = *pos + 1;
        let name_end = span_escaped(input, name_start, &scan::PARAM)?;
        if name_end == name_start {
            return Err(Invalid);
        }
        let (value, next) = if at(input, name_end) == Some(b'=') {
            let value_end = span_escaped(input, name_end + 1, &scan::PARAM)?;
            if value_end == name_end + 1 {
                return Err(Invalid);
            }
            (Some(src.slice(name_end + 1..value_end)), value_end)
        } else {
            (None, name_end)
        };
        params.0.push(Param {
            name: ascii_str(&input[name_start..name_end])?,
            value,
        });
        *pos = next;
    }
    Ok(params)
}

/// `host [ ":" port ]` at `pos`, with no whitespace (URIs). Returns it and the position
/// after it.
pub(crate) fn host_port(input: &[u8], pos: usize) -> Scan<(HostPort, usize)> {
    let (host, mut pos) = host(input, pos)?;
    let port = if at(input, pos) == Some(b':') {
        let (port, end) = port(input, pos + 1)?;
        pos = end;
        Some(port)
    } else {
        None
    };
    Ok((HostPort { host, port }, pos))
}

/// A port number, `0..=65535`.
pub(crate) fn port(input: &[u8], pos: usize) -> Scan<(u16, usize)> {
    let (value, end) = scan::number(input, pos, u64::from(u16::MAX))?;
    Ok((u16::try_from(value).map_err(|_| Invalid)?, end))
}

/// A host: `[IPv6]`, an IPv4 address or a host name.
pub(crate) fn host(input: &[u8], pos: usize) -> Scan<(Host, usize)> {
    if at(input, pos) == Some(b'[') {
        let close = memchr::memchr(b']', input.get(pos..).ok_or(Invalid)?).ok_or(Invalid)? + pos;
        let address = ipv6(&input[pos + 1..close])?;
        return Ok((Host::V6(address), close + 1));
    }
    let end = span1(input, pos, &scan::HOST_NAME)?;
    let text = &input[pos..end];
    Ok((host_name_or_v4(text)?, end))
}

/// Classifies a bracket-less host: an IPv4 address when it is one, else a host name
/// whose last label does not start with a digit (RFC 3261 `toplabel`).
fn host_name_or_v4(text: &[u8]) -> Scan<Host> {
    let name = std::str::from_utf8(text).map_err(|_| Invalid)?;
    if let Ok(v4) = name.parse::<Ipv4Addr>() {
        return Ok(Host::V4(v4));
    }
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    let labels_ok = trimmed
        .split('.')
        .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
    let top_ok = trimmed
        .rsplit('.')
        .next()
        .and_then(|top| top.bytes().next())
        .is_some_and(|b| b.is_ascii_alphabetic());
    if labels_ok && top_ok {
        Ok(Host::Name(name.into()))
    } else {
        Err(Invalid)
    }
}

/// The inside of an IPv6 reference. RFC 5118 §4.10 asks parsers to tolerate the
/// `2001:db8:::192.0.2.1` form that the RFC 3261 ABNF allowed by mistake; we accept it by
/// reading `:::` as `::` (our policy, see `tests/torture.rs`). RFC 5954 makes it invalid,
/// so we never produce it: the address prints in its canonical form.
pub(crate) fn ipv6(text: &[u8]) -> Scan<Ipv6Addr> {
    let text = std::str::from_utf8(text).map_err(|_| Invalid)?;
    if let Ok(address) = text.parse::<Ipv6Addr>() {
        return Ok(address);
    }
    match text.find(":::") {
        Some(i) if !text[i + 3..].contains("::") => {
            let repaired = format!("{}::{}", &text[..i], &text[i + 3..]);
            repaired.parse::<Ipv6Addr>().map_err(|_| Invalid)
        }
        _ => Err(Invalid),
    }
}

/// The text of an ASCII run the caller has already checked.
pub(crate) fn ascii_str(bytes: &[u8]) -> Scan<Box<str>> {
    std::str::from_utf8(bytes)
        .map(Box::from)
        .map_err(|_| Invalid)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Scan<Uri> {
        let b = Bytes::copy_from_slice(s.as_bytes());
        uri(&b, 0, b.len(), UriContext::Bracketed)
    }

    #[test]
    fn sip_uri_with_everything() {
        let Uri::Sip(u) =
            parse("sips:alice:pw@[2001:db8::1]:5061;transport=tls;lr?Subject=x").unwrap()
        else {
            panic!("not sip")
        };
        assert!(u.secure);
        assert_eq!(u.user.as_deref(), Some(&b"alice"[..]));
        assert_eq!(u.password.as_deref(), Some(&b"pw"[..]));
        assert_eq!(u.host.host, Host::V6("2001:db8::1".parse().unwrap()));
        assert_eq!(u.host.port, Some(5061));
        assert!(u.params.contains("lr"));
        assert_eq!(u.headers.as_deref(), Some(&b"Subject=x"[..]));
    }

    #[test]
    fn bad_uris() {
        for bad in [
            "sip:",
            "sip:@host",
            "sip:host:",
            "sip:host:70000",
            "sip:2001:db8::10",
            "sip:user@host;",
            "sip:user@host;a=",
            "sip:us%4gr@host",
            "sip:host name",
            "<sip:x>",
            "1sip:x",
            "sip:999.1.1.1",
            "sip:[::1",
        ] {
            assert_eq!(parse(bad), Err(Invalid), "{bad}");
        }
    }

    #[test]
    fn three_colon_ipv6_is_tolerated() {
        assert_eq!(
            ipv6(b"2001:db8:::192.0.2.1"),
            Ok("2001:db8::192.0.2.1".parse().unwrap())
        );
        assert_eq!(ipv6(b"1:::2::3"), Err(Invalid));
    }
}
