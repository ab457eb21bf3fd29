//! The SIP `Identity` header (RFC 8224 §4.1):
//!
//! ```text
//! Identity = "Identity" HCOLON signed-identity-digest SEMI ident-info *( SEMI ident-info-params )
//! signed-identity-digest = 1*(base64-char / ".")
//! ident-info = "info" EQUAL ident-info-uri          ; LAQUOT absoluteURI RAQUOT
//! ident-info-params = ident-info-alg / ident-type / ident-info-extension
//! ```
//!
//! A request may carry several (several lines, or values separated by commas): a SHAKEN
//! PASSporT and a `div` one, for instance.

use std::fmt;

use bytes::Bytes;

use crate::sip::{HeaderName, Headers};

use super::passport::MAX_TOKEN_BYTES;

/// Most Identity header values looked at in one request.
pub const MAX_IDENTITY_HEADERS: usize = 4;

/// One Identity header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityHeader {
    /// The PASSporT, full (`h.c.s`) or compact (`..s`) form.
    pub token: String,
    /// `info`: where the certificate is (without the angle brackets). RFC 8224 makes it
    /// mandatory; a header without one is parsed (and then refused by the verifier).
    pub info: Option<String>,
    /// `alg` (absent means ES256).
    pub alg: Option<String>,
    /// `ppt` (absent means a base PASSporT).
    pub ppt: Option<String>,
    /// Other parameters, in order.
    pub extensions: Vec<(String, Option<String>)>,
}

/// Why an Identity header value does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("Identity header value too long")]
    TooLong,
    #[error("Identity header value does not start with a token")]
    NoToken,
    #[error("Identity header token has characters outside base64url and '.'")]
    BadToken,
    #[error("malformed Identity header parameter")]
    BadParameter,
    #[error("Identity header parameter repeated")]
    RepeatedParameter,
    #[error("Identity header info is not <absoluteURI>")]
    BadInfo,
}

impl IdentityHeader {
    /// A full-form header for `token` with the certificate at `info`.
    pub fn new(token: String, info: &str, ppt: Option<&str>) -> IdentityHeader {
        IdentityHeader {
            token,
            info: Some(info.to_owned()),
            alg: Some(super::passport::ES256.to_owned()),
            ppt: ppt.map(str::to_owned),
            extensions: Vec::new(),
        }
    }

    /// Parses one value.
    pub fn parse(value: &str) -> Result<IdentityHeader, HeaderError> {
        if value.len() > MAX_TOKEN_BYTES + 2_048 {
            return Err(HeaderError::TooLong);
        }
        let value = value.trim();
        let (token, mut rest) = value.split_once(';').unwrap_or((value, ""));
        let token = token.trim();
        if token.is_empty() {
            return Err(HeaderError::NoToken);
        }
        if !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(HeaderError::BadToken);
        }
        let mut header = IdentityHeader {
            token: token.to_owned(),
            info: None,
            alg: None,
            ppt: None,
            extensions: Vec::new(),
        };
        while !rest.is_empty() {
            let (param, after) = next_param(rest)?;
            rest = after;
            let (name, value) = match param.split_once('=') {
                Some((name, value)) => (name.trim(), Some(value.trim())),
                None => (param.trim(), None),
            };
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(HeaderError::BadParameter);
            }
            let slot = match name.to_ascii_lowercase().as_str() {
                "info" => {
                    let uri = value
                        .and_then(|v| v.strip_prefix('<'))
                        .and_then(|v| v.strip_suffix('>'))
                        .filter(|uri| !uri.is_empty() && !uri.contains(['<', '>', ' ']))
                        .ok_or(HeaderError::BadInfo)?;
                    set_once(&mut header.info, uri)?;
                    continue;
                }
                "alg" => &mut header.alg,
                "ppt" => &mut header.ppt,
                _ => {
                    header
                        .extensions
                        .push((name.to_owned(), value.map(str::to_owned)));
                    continue;
                }
            };
            let value = value.map(unquote).ok_or(HeaderError::BadParameter)?;
            if value.is_empty() || !value.bytes().all(is_token_byte) {
                return Err(HeaderError::BadParameter);
            }
            set_once(slot, value)?;
        }
        Ok(header)
    }

    /// Whether the token is in compact form (`..signature`).
    pub fn is_compact(&self) -> bool {
        self.token.starts_with("..")
    }

    /// Every Identity value of a request (at most [`MAX_IDENTITY_HEADERS`]), each parsed
    /// on its own. Values on one line are separated by commas outside `<…>`.
    pub fn all_of(headers: &Headers) -> Vec<Result<IdentityHeader, HeaderError>> {
        let mut out = Vec::new();
        for line in headers.get_all(&HeaderName::Identity) {
            let Ok(line) = std::str::from_utf8(line) else {
                out.push(Err(HeaderError::BadToken));
                continue;
            };
            for value in split_values(line) {
                if out.len() == MAX_IDENTITY_HEADERS {
                    return out;
                }
                out.push(IdentityHeader::parse(value));
            }
        }
        out
    }

    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(self.to_string())
    }
}

impl fmt::Display for IdentityHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.token)?;
        if let Some(info) = &self.info {
            write!(f, ";info=<{info}>")?;
        }
        if let Some(alg) = &self.alg {
            write!(f, ";alg={alg}")?;
        }
        if let Some(ppt) = &self.ppt {
            write!(f, ";ppt={ppt}")?;
        }
        for (name, value) in &self.extensions {
            match value {
                Some(value) => write!(f, ";{name}={value}")?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

/// The next `;`-separated parameter of `rest`, and what follows it. A `<…>` value may
/// hold `;`.
fn next_param(rest: &str) -> Result<(&str, &str), HeaderError> {
    let mut in_brackets = false;
    let mut in_quotes = false;
    for (index, byte) in rest.bytes().enumerate() {
        match byte {
            b'<' if !in_quotes => in_brackets = true,
            b'>' if !in_quotes => in_brackets = false,
            b'"' if !in_brackets => in_quotes = !in_quotes,
            b';' if !in_brackets && !in_quotes => {
                return Ok((&rest[..index], &rest[index + 1..]));
            }
            _ => {}
        }
    }
    if in_brackets || in_quotes {
        return Err(HeaderError::BadParameter);
    }
    Ok((rest, ""))
}

/// The values of one header line, split at commas outside `<…>` and quotes.
fn split_values(line: &str) -> Vec<&str> {
    let mut values = Vec::new();
    let mut start = 0;
    let mut in_brackets = false;
    let mut in_quotes = false;
    for (index, byte) in line.bytes().enumerate() {
        match byte {
            b'<' if !in_quotes => in_brackets = true,
            b'>' if !in_quotes => in_brackets = false,
            b'"' if !in_brackets => in_quotes = !in_quotes,
            b',' if !in_brackets && !in_quotes => {
                values.push(line[start..index].trim());
                start = index + 1;
            }
            _ => {}
        }
    }
    values.push(line[start..].trim());
    values.retain(|value| !value.is_empty());
    values
}

fn set_once(slot: &mut Option<String>, value: &str) -> Result<(), HeaderError> {
    if slot.is_some() {
        return Err(HeaderError::RepeatedParameter);
    }
    *slot = Some(value.to_owned());
    Ok(())
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// RFC 3261 `token` characters.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn full_header_with_every_parameter() {
        let header = IdentityHeader::parse(
            "eyJh.eyJk.c2ln;info=<https://cert.example.org/a;b.pem>;alg=ES256;ppt=\"shaken\";x=1",
        )
        .unwrap();
        assert_eq!(header.token, "eyJh.eyJk.c2ln");
        assert_eq!(
            header.info.as_deref(),
            Some("https://cert.example.org/a;b.pem")
        );
        assert_eq!(header.alg.as_deref(), Some("ES256"));
        assert_eq!(header.ppt.as_deref(), Some("shaken"));
        assert_eq!(header.extensions, vec![("x".into(), Some("1".into()))]);
        assert!(!header.is_compact());
        let printed = header.to_string();
        assert_eq!(
            printed,
            "eyJh.eyJk.c2ln;info=<https://cert.example.org/a;b.pem>;alg=ES256;ppt=shaken;x=1"
        );
        assert_eq!(IdentityHeader::parse(&printed).unwrap().ppt, header.ppt);
    }

    #[test]
    fn bad_values_are_refused() {
        assert_eq!(IdentityHeader::parse(""), Err(HeaderError::NoToken));
        assert_eq!(
            IdentityHeader::parse("a b;info=<x>"),
            Err(HeaderError::BadToken)
        );
        assert_eq!(IdentityHeader::parse("a;info=x"), Err(HeaderError::BadInfo));
        assert_eq!(
            IdentityHeader::parse("a;info=<x>;info=<y>"),
            Err(HeaderError::RepeatedParameter)
        );
        assert_eq!(
            IdentityHeader::parse("a;info=<x"),
            Err(HeaderError::BadParameter)
        );
        assert_eq!(
            IdentityHeader::parse("a;alg"),
            Err(HeaderError::BadParameter)
        );
        assert!(IdentityHeader::parse("..sig").unwrap().is_compact());
    }

    #[test]
    fn several_values_per_request() {
        let mut headers = Headers::new();
        headers.push(
            HeaderName::Identity,
            "a.b.c;info=<https://x/1,2>, d.e.f;info=<https://y>",
        );
        headers.push(HeaderName::Identity, "g.h.i;info=<https://z>;ppt=div");
        let all = IdentityHeader::all_of(&headers);
        assert_eq!(all.len(), 3);
        assert_eq!(
            all[0].as_ref().unwrap().info.as_deref(),
            Some("https://x/1,2")
        );
        assert_eq!(all[2].as_ref().unwrap().ppt.as_deref(), Some("div"));
    }
}
