//! The `Authorization` / `Proxy-Authorization` value of a Digest answer (RFC 3261
//! §25.1 `digest-response`, RFC 7616 §3.4), parsed without allocation surprises: at most
//! [`MAX_PARAMS`] parameters and [`MAX_LEN`] bytes.

use bytes::Bytes;

/// The longest credentials value accepted.
pub const MAX_LEN: usize = 4096;
/// The most parameters accepted in one value.
pub const MAX_PARAMS: usize = 32;

/// Why a credentials value does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseDigestError {
    #[error("not a Digest credentials value")]
    NotDigest,
    #[error("credentials value too long")]
    TooLong,
    #[error("too many parameters")]
    TooManyParams,
    #[error("malformed parameter list")]
    Malformed,
    #[error("a required parameter is missing")]
    MissingParam,
}

impl ParseDigestError {
    /// A stable name for metric labels.
    pub fn name(self) -> &'static str {
        match self {
            ParseDigestError::NotDigest => "not_digest",
            ParseDigestError::TooLong => "too_long",
            ParseDigestError::TooManyParams => "too_many_params",
            ParseDigestError::Malformed => "malformed",
            ParseDigestError::MissingParam => "missing_param",
        }
    }
}

/// A parsed Digest answer. Values are unquoted (quoted-pair escapes removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestResponse {
    pub username: Bytes,
    pub realm: Bytes,
    pub nonce: Bytes,
    pub uri: Bytes,
    pub response: Bytes,
    pub algorithm: Option<Bytes>,
    pub cnonce: Option<Bytes>,
    pub opaque: Option<Bytes>,
    pub qop: Option<Bytes>,
    pub nc: Option<Bytes>,
}

impl DigestResponse {
    /// Parses `Digest name=value, name="value", …`.
    pub fn parse(value: &[u8]) -> Result<DigestResponse, ParseDigestError> {
        if value.len() > MAX_LEN {
            return Err(ParseDigestError::TooLong);
        }
        let value = value.trim_ascii();
        let scheme_end = value
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .ok_or(ParseDigestError::NotDigest)?;
        let (scheme, mut rest) = value.split_at(scheme_end);
        if !scheme.eq_ignore_ascii_case(b"Digest") {
            return Err(ParseDigestError::NotDigest);
        }
        let mut fields: [Option<Bytes>; 10] = Default::default();
        let mut count = 0;
        loop {
            rest = rest.trim_ascii_start();
            if rest.is_empty() {
                break;
            }
            count += 1;
            if count > MAX_PARAMS {
                return Err(ParseDigestError::TooManyParams);
            }
            let eq = rest
                .iter()
                .position(|&b| b == b'=')
                .ok_or(ParseDigestError::Malformed)?;
            let name = rest
                .get(..eq)
                .ok_or(ParseDigestError::Malformed)?
                .trim_ascii();
            if name.is_empty() || !name.iter().all(|b| is_token(*b)) {
                return Err(ParseDigestError::Malformed);
            }
            rest = rest.get(eq + 1..).unwrap_or_default().trim_ascii_start();
            let (field, after) = if rest.first() == Some(&b'"') {
                unquote(rest)?
            } else {
                let end = rest
                    .iter()
                    .position(|&b| b == b',' || b.is_ascii_whitespace())
                    .unwrap_or(rest.len());
                let (token, after) = rest.split_at(end);
                if token.is_empty() || !token.iter().all(|b| is_token(*b)) {
                    return Err(ParseDigestError::Malformed);
                }
                (token.to_vec(), after)
            };
            rest = after.trim_ascii_start();
            match rest.first() {
                None => {}
                Some(b',') => rest = rest.get(1..).unwrap_or_default(),
                Some(_) => return Err(ParseDigestError::Malformed),
            }
            let slot = match name.to_ascii_lowercase().as_slice() {
                b"username" => Some(0),
                b"realm" => Some(1),
                b"nonce" => Some(2),
                b"uri" => Some(3),
                b"response" => Some(4),
                b"algorithm" => Some(5),
                b"cnonce" => Some(6),
                b"opaque" => Some(7),
                b"qop" => Some(8),
                b"nc" => Some(9),
                // auth-param extensions (userhash …) are ignored.
                _ => None,
            };
            if let Some(slot) = slot
                && let Some(place) = fields.get_mut(slot)
                && place.is_none()
            {
                *place = Some(Bytes::from(field));
            }
        }
        let [
            username,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            cnonce,
            opaque,
            qop,
            nc,
        ] = fields;
        let required = |field: Option<Bytes>| field.ok_or(ParseDigestError::MissingParam);
        Ok(DigestResponse {
            username: required(username)?,
            realm: required(realm)?,
            nonce: required(nonce)?,
            uri: required(uri)?,
            response: required(response)?,
            algorithm,
            cnonce,
            opaque,
            qop,
            nc,
        })
    }
}

fn is_token(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&byte)
}

/// A quoted string at the start of `input` (which starts with `"`): its unescaped value
/// and what follows the closing quote.
fn unquote(input: &[u8]) -> Result<(Vec<u8>, &[u8]), ParseDigestError> {
    let mut value = Vec::new();
    let mut index = 1;
    while let Some(&byte) = input.get(index) {
        match byte {
            b'"' => return Ok((value, input.get(index + 1..).unwrap_or_default())),
            b'\\' => {
                let escaped = *input.get(index + 1).ok_or(ParseDigestError::Malformed)?;
                value.push(escaped);
                index += 2;
            }
            b'\r' | b'\n' | 0 => return Err(ParseDigestError::Malformed),
            other => {
                value.push(other);
                index += 1;
            }
        }
    }
    Err(ParseDigestError::Malformed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_a_full_answer() {
        let parsed = DigestResponse::parse(
            br#"Digest username="alice", realm="example.com", nonce="abc", uri="sip:example.com",
              response="0123", algorithm=SHA-256, cnonce="x\"y", qop=auth, nc=00000001, opaque="""#,
        )
        .unwrap();
        assert_eq!(parsed.username, "alice");
        assert_eq!(parsed.algorithm.as_deref(), Some(&b"SHA-256"[..]));
        assert_eq!(parsed.cnonce.as_deref(), Some(&b"x\"y"[..]));
        assert_eq!(parsed.qop.as_deref(), Some(&b"auth"[..]));
        assert_eq!(parsed.nc.as_deref(), Some(&b"00000001"[..]));
        assert_eq!(parsed.opaque.as_deref(), Some(&b""[..]));
    }

    #[test]
    fn refuses_what_is_not_a_digest_answer() {
        assert_eq!(
            DigestResponse::parse(b"Basic YWxpY2U6cGFzcw=="),
            Err(ParseDigestError::NotDigest)
        );
        assert_eq!(
            DigestResponse::parse(b"Digest username=\"a"),
            Err(ParseDigestError::Malformed)
        );
        assert_eq!(
            DigestResponse::parse(b"Digest username=\"a\""),
            Err(ParseDigestError::MissingParam)
        );
        let many = format!("Digest {}", "a=b, ".repeat(40));
        assert_eq!(
            DigestResponse::parse(many.as_bytes()),
            Err(ParseDigestError::TooManyParams)
        );
        let long = format!("Digest username=\"{}\"", "a".repeat(5000));
        assert_eq!(
            DigestResponse::parse(long.as_bytes()),
            Err(ParseDigestError::TooLong)
        );
    }
}
