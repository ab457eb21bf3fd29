//! Decoding of `sip:`, `sips:`, `tel:` and other absolute URIs (RFC 3261 §19.1.1, §25.1;
//! RFC 3966; RFC 5118; RFC 5954).
//!
//! Two steps: [`scan_uri`] checks the grammar and returns positions only (no allocation,
//! which is all the parser needs to validate a message); [`build_uri`] turns those
//! positions into a [`Uri`] when someone asks for it.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

use super::scan::{self, Invalid, Scan, Span, at, span, span_escaped, span1};
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

/// A checked host: addresses are decoded, names are a span of the input.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HostToken {
    Name(Span),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// A checked URI, as positions into the input.
#[derive(Clone, Copy, Debug)]
pub(crate) enum UriSpan {
    Sip {
        secure: bool,
        user: Option<Span>,
        password: Option<Span>,
        host: HostToken,
        port: Option<u16>,
        params: Span,
        headers: Option<Span>,
    },
    Tel {
        number: Span,
        params: Span,
    },
    Other {
        scheme: Span,
        rest: Span,
    },
}

/// Decodes `src[start..end]` as a URI.
pub(crate) fn uri(src: &Bytes, start: usize, end: usize, context: UriContext) -> Scan<Uri> {
    build_uri(src, &scan_uri(src, start, end, context)?)
}

/// Checks `input[start..end]` as a URI.
pub(crate) fn scan_uri(
    input: &[u8],
    start: usize,
    end: usize,
    context: UriContext,
) -> Scan<UriSpan> {
    let input = input.get(..end).ok_or(Invalid)?;
    let colon = span(input, start, &scan::SCHEME);
    let scheme = input.get(start..colon).ok_or(Invalid)?;
    if at(input, colon) != Some(b':') || !scheme.first().is_some_and(u8::is_ascii_alphabetic) {
        return Err(Invalid);
    }
    if scheme.eq_ignore_ascii_case(b"sip") {
        scan_sip_uri(input, colon + 1, false, context)
    } else if scheme.eq_ignore_ascii_case(b"sips") {
        scan_sip_uri(input, colon + 1, true, context)
    } else if scheme.eq_ignore_ascii_case(b"tel") {
        let number_end = span1(input, colon + 1, &scan::TEL_NUMBER)?;
        if !tel_number(input.get(colon + 1..number_end).ok_or(Invalid)?) {
            return Err(Invalid);
        }
        let params_end = uri_params(input, number_end, |_, _| {})?;
        if params_end != input.len() {
            return Err(Invalid);
        }
        Ok(UriSpan::Tel {
            number: (colon + 1, number_end),
            params: (number_end, params_end),
        })
    } else {
        let rest_end = span(input, colon + 1, &scan::URIC);
        if rest_end != input.len() || rest_end == colon + 1 {
            return Err(Invalid);
        }
        Ok(UriSpan::Other {
            scheme: (start, colon),
            rest: (colon + 1, rest_end),
        })
    }
}

/// The digits of a `telephone-subscriber` (RFC 3966 §3): a global number, `+` then
/// digits and visual separators with at least one digit, or a local number, hex digits,
/// `*`, `#` and visual separators with at least one that is not a separator. (The
/// `phone-context` a local number should carry is not required: some PBXs omit it.)
fn tel_number(number: &[u8]) -> bool {
    let separator = |b: &u8| matches!(b, b'-' | b'.' | b'(' | b')');
    match number.split_first() {
        Some((b'+', digits)) => {
            digits.iter().all(|b| b.is_ascii_digit() || separator(b))
                && digits.iter().any(u8::is_ascii_digit)
        }
        _ => {
            number
                .iter()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b'*' | b'#') || separator(b))
                && !number.iter().all(separator)
        }
    }
}

fn scan_sip_uri(input: &[u8], start: usize, secure: bool, context: UriContext) -> Scan<UriSpan> {
    let end = input.len();
    // `@` cannot appear unescaped after the userinfo, so a run of user characters ending
    // at `@` (or at `:` and a password ending at `@`) is the userinfo; otherwise the URI
    // has none. The user part may hold `;`, `?` and `,` (RFC 4475 §3.1.1.2, §3.1.1.9).
    let has_at = memchr::memchr(b'@', &input[start..]).is_some();
    let user_end = if has_at {
        span_escaped(input, start, &scan::USER)?
    } else {
        start
    };
    let (user, password, host_start) = match at(input, user_end) {
        Some(b'@') if user_end > start => (Some((start, user_end)), None, user_end + 1),
        Some(b':') if user_end > start => {
            let pw_end = span_escaped(input, user_end + 1, &scan::PASSWORD)?;
            if at(input, pw_end) == Some(b'@') {
                (
                    Some((start, user_end)),
                    Some((user_end + 1, pw_end)),
                    pw_end + 1,
                )
            } else {
                (None, None, start)
            }
        }
        _ => (None, None, start),
    };
    let (host, host_end) = host(input, host_start)?;
    let (port, params_start) = if at(input, host_end) == Some(b':') {
        let (port, port_end) = port(input, host_end + 1)?;
        (Some(port), port_end)
    } else {
        (None, host_end)
    };
    let params_end = uri_params(input, params_start, |_, _| {})?;
    let mut pos = params_end;
    let headers = if at(input, pos) == Some(b'?') {
        if context != UriContext::Bracketed {
            return Err(Invalid);
        }
        let headers_end = span_escaped(input, pos + 1, &scan::URI_HEADERS)?;
        if headers_end == pos + 1 {
            return Err(Invalid);
        }
        let headers = (pos + 1, headers_end);
        pos = headers_end;
        Some(headers)
    } else {
        None
    };
    if pos != end {
        return Err(Invalid);
    }
    Ok(UriSpan::Sip {
        secure,
        user,
        password,
        host,
        port,
        params: (params_start, params_end),
        headers,
    })
}

/// Builds the [`Uri`] a successful [`scan_uri`] of `src` described.
pub(crate) fn build_uri(src: &Bytes, span: &UriSpan) -> Scan<Uri> {
    let slice = |(s, e): Span| src.slice(s..e);
    Ok(match *span {
        UriSpan::Sip {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        } => Uri::Sip(SipUri {
            secure,
            user: user.map(slice),
            password: password.map(slice),
            host: HostPort {
                host: build_host(src, host)?,
                port,
            },
            params: build_uri_params(src, params)?,
            headers: headers.map(slice),
        }),
        UriSpan::Tel { number, params } => Uri::Tel(TelUri {
            number: slice(number),
            params: build_uri_params(src, params)?,
        }),
        UriSpan::Other { scheme, rest } => Uri::Other {
            scheme: ascii_str(src.get(scheme.0..scheme.1).ok_or(Invalid)?)?,
            rest: slice(rest),
        },
    })
}

pub(crate) fn build_host(src: &[u8], host: HostToken) -> Scan<Host> {
    Ok(match host {
        HostToken::Name((s, e)) => Host::Name(ascii_str(src.get(s..e).ok_or(Invalid)?)?),
        HostToken::V4(address) => Host::V4(address),
        HostToken::V6(address) => Host::V6(address),
    })
}

/// `*( ";" pname [ "=" pvalue ] )` of a URI from `pos`; calls `each` with the name and
/// value spans and returns the position after them.
fn uri_params(
    input: &[u8],
    mut pos: usize,
    mut each: impl FnMut(Span, Option<Span>),
) -> Scan<usize> {
    while at(input, pos) == Some(b';') {
        let name_start = pos + 1;
        let name_end = span_escaped(input, name_start, &scan::PARAM)?;
        if name_end == name_start {
            return Err(Invalid);
        }
        if at(input, name_end) == Some(b'=') {
            let value_end = span_escaped(input, name_end + 1, &scan::PARAM)?;
            if value_end == name_end + 1 {
                return Err(Invalid);
            }
            each((name_start, name_end), Some((name_end + 1, value_end)));
            pos = value_end;
        } else {
            each((name_start, name_end), None);
            pos = name_end;
        }
    }
    Ok(pos)
}

fn build_uri_params(src: &Bytes, (start, end): Span) -> Scan<Params> {
    let input = src.get(..end).ok_or(Invalid)?;
    let mut params = Params::default();
    let mut failed = false;
    uri_params(input, start, |name, value| {
        match input.get(name.0..name.1).map(ascii_str) {
            Some(Ok(name)) => params.0.push(Param {
                name,
                value: value.map(|(s, e)| src.slice(s..e)),
            }),
            _ => failed = true,
        }
    })?;
    if failed { Err(Invalid) } else { Ok(params) }
}

/// A port number, `0..=65535`.
pub(crate) fn port(input: &[u8], pos: usize) -> Scan<(u16, usize)> {
    let (value, end) = scan::number(input, pos, u64::from(u16::MAX))?;
    Ok((u16::try_from(value).map_err(|_| Invalid)?, end))
}

/// A host at `pos`: `[IPv6]`, an IPv4 address or a host name. Returns it and the
/// position after it.
pub(crate) fn host(input: &[u8], pos: usize) -> Scan<(HostToken, usize)> {
    if at(input, pos) == Some(b'[') {
        let close = memchr::memchr(b']', input.get(pos..).ok_or(Invalid)?).ok_or(Invalid)? + pos;
        let address = ipv6(&input[pos + 1..close])?;
        return Ok((HostToken::V6(address), close + 1));
    }
    // A run of host-name characters whose last label starts with a letter is a host name
    // (RFC 3261 `toplabel`); one whose last label starts with a digit must be an IPv4
    // address. Label syntax beyond that (empty labels, `-` placement) is not checked: it
    // costs a pass over every host and such a name only fails to resolve.
    let end = span1(input, pos, &scan::HOST_NAME)?;
    let text = &input[pos..end];
    if text.first() == Some(&b'.') {
        return Err(Invalid);
    }
    let labels = text.strip_suffix(b".").unwrap_or(text);
    let top = memchr::memrchr(b'.', labels).map_or(labels.first(), |dot| labels.get(dot + 1));
    match top {
        Some(b) if b.is_ascii_alphabetic() => Ok((HostToken::Name((pos, end)), end)),
        Some(b) if b.is_ascii_digit() => {
            ipv4(text).map(|v4| (HostToken::V4(v4), end)).ok_or(Invalid)
        }
        _ => Err(Invalid),
    }
}

/// A dotted-quad IPv4 address: four decimal parts of at most 255 without leading zeros.
pub(crate) fn ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut part = 0;
    let mut value: u16 = 0;
    let mut digits = 0;
    for &b in text {
        match b {
            b'0'..=b'9' => {
                if digits > 0 && value == 0 {
                    return None;
                }
                value = value * 10 + u16::from(b - b'0');
                digits += 1;
                if value > 255 {
                    return None;
                }
            }
            b'.' if digits > 0 && part < 3 => {
                *octets.get_mut(part)? = u8::try_from(value).ok()?;
                part += 1;
                value = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    if part != 3 || digits == 0 {
        return None;
    }
    *octets.get_mut(3)? = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
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
        assert_eq!(u.params.get("transport"), Some(Some(&Bytes::from("tls"))));
        assert_eq!(u.headers.as_deref(), Some(&b"Subject=x"[..]));
    }

    #[test]
    fn tel_and_other() {
        let Uri::Tel(t) = parse("tel:+1-201-555-0123;phone-context=example.com").unwrap() else {
            panic!("not tel")
        };
        assert_eq!(t.number.as_ref(), b"+1-201-555-0123");
        assert!(t.params.contains("phone-context"));
        for good in [
            "tel:+1(201)555.0123",
            "tel:7042;phone-context=example.com",
            "tel:*21#;phone-context=+1",
            "tel:abcdef;phone-context=x",
        ] {
            assert!(matches!(parse(good), Ok(Uri::Tel(_))), "{good}");
        }
        for bad in [
            "tel:+", "tel:+-", "tel:--", "tel:1+2", "tel:+1a", "tel:xyz", "tel:12g4", "tel:+1*",
        ] {
            assert_eq!(parse(bad), Err(Invalid), "{bad}");
        }
        assert!(matches!(
            parse("urn:service:sos").unwrap(),
            Uri::Other { .. }
        ));
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
            "tel:",
            "x:",
        ] {
            assert_eq!(parse(bad), Err(Invalid), "{bad}");
        }
    }

    #[test]
    fn ipv4_addresses() {
        assert_eq!(ipv4(b"192.0.2.1"), Some(Ipv4Addr::new(192, 0, 2, 1)));
        for bad in [
            &b"256.1.1.1"[..],
            b"1.2.3",
            b"1.2.3.4.5",
            b"01.2.3.4",
            b"1..2.3",
            b"a.b.c.d",
        ] {
            assert_eq!(ipv4(bad), None);
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
