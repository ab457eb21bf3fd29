//! `a=crypto:` — SDP Security Descriptions for SRTP (RFC 4568 §9.1).
//!
//! `a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]` where `key-params` is
//! one or more `inline:<base64 key||salt>[|<lifetime>][|<MKI>:<MKI length>]` separated by
//! `;`.

use super::attributes::TypedAttribute;
use super::error::AttributeError;
use super::syntax::{parse_decimal, token_string};

/// One `a=crypto` attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crypto {
    /// Identifies the attribute within the media section (1 to 9 digits).
    pub tag: u32,
    /// `AES_CM_128_HMAC_SHA1_80`, `AEAD_AES_256_GCM` … as received.
    pub suite: Box<str>,
    /// At least one key.
    pub keys: Vec<KeyParam>,
    /// `FEC_ORDER=FEC_SRTP`, `UNENCRYPTED_SRTCP`, `KDR=…` … as received, in order.
    pub session_params: Vec<Box<str>>,
}

/// `<key-method>:<key-info>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyParam {
    Inline(InlineKey),
    /// A key method other than `inline` (none is registered), kept as received.
    Other {
        method: Box<str>,
        info: Box<str>,
    },
}

/// `inline:<key||salt>[|<lifetime>][|<MKI>:<MKI length>]` (RFC 4568 §6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlineKey {
    /// The concatenated master key and salt, base64 as received.
    pub key_salt: Box<str>,
    pub lifetime: Option<Lifetime>,
    pub mki: Option<Mki>,
}

/// The master key lifetime in packets: `2^<n>` or a plain count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    PowerOfTwo(u8),
    Packets(u64),
}

/// `<MKI value>:<MKI length in bytes>`; the length is 1 to 128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mki {
    pub value: u64,
    pub length: u8,
}

impl Crypto {
    /// The master key and salt lengths in bytes of the suites RFC 4568, RFC 6188 and
    /// RFC 7714 define, or `None` for a suite this module does not know.
    pub fn key_and_salt_lengths(suite: &str) -> Option<(usize, usize)> {
        match suite {
            "AES_CM_128_HMAC_SHA1_80" | "AES_CM_128_HMAC_SHA1_32" | "F8_128_HMAC_SHA1_80" => {
                Some((16, 14))
            }
            "AES_192_CM_HMAC_SHA1_80" | "AES_192_CM_HMAC_SHA1_32" => Some((24, 14)),
            "AES_256_CM_HMAC_SHA1_80" | "AES_256_CM_HMAC_SHA1_32" => Some((32, 14)),
            "AEAD_AES_128_GCM" => Some((16, 12)),
            "AEAD_AES_256_GCM" => Some((32, 12)),
            _ => None,
        }
    }

    /// The first inline key's master key and salt, split according to the suite.
    pub fn master_key_and_salt(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let (key_len, salt_len) = Crypto::key_and_salt_lengths(&self.suite)?;
        let inline = self.keys.iter().find_map(|k| match k {
            KeyParam::Inline(inline) => Some(inline),
            KeyParam::Other { .. } => None,
        })?;
        let mut key = inline.key_salt_bytes()?;
        if key.len() != key_len + salt_len {
            return None;
        }
        let salt = key.split_off(key_len);
        Some((key, salt))
    }
}

impl InlineKey {
    /// An inline key from raw key||salt bytes.
    pub fn from_key_salt(key_salt: &[u8]) -> InlineKey {
        InlineKey {
            key_salt: base64_encode(key_salt).into(),
            lifetime: None,
            mki: None,
        }
    }

    /// The decoded key||salt bytes.
    pub fn key_salt_bytes(&self) -> Option<Vec<u8>> {
        base64_decode(self.key_salt.as_bytes())
    }
}

fn is_wsp(b: &u8) -> bool {
    *b == b' ' || *b == b'\t'
}

impl TypedAttribute for Crypto {
    const NAME: &'static str = "crypto";

    fn parse_value(value: &[u8]) -> Result<Crypto, AttributeError> {
        let mut parts = value.split(is_wsp).filter(|p| !p.is_empty());
        let (Some(tag), Some(suite), Some(keys)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(AttributeError::Crypto(
                "expected <tag> <suite> <key-params>",
            ));
        };
        let tag = parse_decimal::<u32>(tag)
            .filter(|_| tag.len() <= 9)
            .ok_or(AttributeError::Crypto("tag is not 1 to 9 digits"))?;
        if !suite
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            return Err(AttributeError::Crypto("suite is not letters, digits and _"));
        }
        let keys = keys
            .split(|&b| b == b';')
            .map(parse_key_param)
            .collect::<Result<Vec<_>, _>>()?;
        let session_params = parts
            .map(|p| {
                if p.iter().all(|b| b.is_ascii_graphic()) {
                    Ok(token_string(p))
                } else {
                    Err(AttributeError::Crypto(
                        "session parameter is not visible ASCII",
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Crypto {
            tag,
            suite: token_string(suite),
            keys,
            session_params,
        })
    }

    fn write_value(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.tag.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.suite.as_bytes());
        out.push(b' ');
        for (i, key) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(b';');
            }
            write_key_param(key, out);
        }
        for param in &self.session_params {
            out.push(b' ');
            out.extend_from_slice(param.as_bytes());
        }
    }
}

fn parse_key_param(param: &[u8]) -> Result<KeyParam, AttributeError> {
    let colon = param
        .iter()
        .position(|&b| b == b':')
        .ok_or(AttributeError::Crypto("key parameter without <method>:"))?;
    let (method, info) = (&param[..colon], &param[colon + 1..]);
    if !method
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
        || method.is_empty()
    {
        return Err(AttributeError::Crypto("key method is not a name"));
    }
    if method != b"inline" {
        if info.is_empty() || !info.iter().all(|b| b.is_ascii_graphic()) {
            return Err(AttributeError::Crypto("key info is not visible ASCII"));
        }
        return Ok(KeyParam::Other {
            method: token_string(method),
            info: token_string(info),
        });
    }
    let mut pieces = info.split(|&b| b == b'|');
    let key_salt = pieces.next().unwrap_or_default();
    if key_salt.is_empty() || base64_decode(key_salt).is_none() {
        return Err(AttributeError::Crypto("inline key is not base64"));
    }
    let mut inline = InlineKey {
        key_salt: token_string(key_salt),
        lifetime: None,
        mki: None,
    };
    for piece in pieces {
        if inline.mki.is_some() {
            return Err(AttributeError::Crypto("field after the MKI"));
        }
        match piece.iter().position(|&b| b == b':') {
            Some(colon) => inline.mki = Some(parse_mki(&piece[..colon], &piece[colon + 1..])?),
            None if inline.lifetime.is_none() => inline.lifetime = Some(parse_lifetime(piece)?),
            None => return Err(AttributeError::Crypto("two lifetimes")),
        }
    }
    Ok(KeyParam::Inline(inline))
}

fn parse_lifetime(text: &[u8]) -> Result<Lifetime, AttributeError> {
    let lifetime = match text.strip_prefix(b"2^") {
        Some(exponent) => parse_decimal::<u8>(exponent)
            .filter(|e| *e < 64)
            .map(Lifetime::PowerOfTwo),
        None => parse_decimal::<u64>(text).map(Lifetime::Packets),
    };
    lifetime.ok_or(AttributeError::Crypto("lifetime is not 2^<n> or a number"))
}

fn parse_mki(value: &[u8], length: &[u8]) -> Result<Mki, AttributeError> {
    let value = parse_decimal::<u64>(value).ok_or(AttributeError::Crypto("MKI is not a number"))?;
    let length = parse_decimal::<u8>(length)
        .filter(|l| (1..=128).contains(l))
        .ok_or(AttributeError::Crypto("MKI length is not in 1..=128"))?;
    Ok(Mki { value, length })
}

fn write_key_param(key: &KeyParam, out: &mut Vec<u8>) {
    match key {
        KeyParam::Inline(inline) => {
            out.extend_from_slice(b"inline:");
            out.extend_from_slice(inline.key_salt.as_bytes());
            match inline.lifetime {
                Some(Lifetime::PowerOfTwo(e)) => {
                    out.extend_from_slice(format!("|2^{e}").as_bytes())
                }
                Some(Lifetime::Packets(n)) => out.extend_from_slice(format!("|{n}").as_bytes()),
                None => {}
            }
            if let Some(mki) = inline.mki {
                out.extend_from_slice(format!("|{}:{}", mki.value, mki.length).as_bytes());
            }
        }
        KeyParam::Other { method, info } => {
            out.extend_from_slice(method.as_bytes());
            out.push(b':');
            out.extend_from_slice(info.as_bytes());
        }
    }
}

impl std::fmt::Display for Lifetime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lifetime::PowerOfTwo(e) => write!(f, "2^{e}"),
            Lifetime::Packets(n) => write!(f, "{n}"),
        }
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648 §4) with padding.
pub(crate) fn base64_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64; padding is optional, nothing else may follow it.
pub(crate) fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    let data = match input.iter().position(|&b| b == b'=') {
        Some(pad) => {
            let (data, padding) = input.split_at(pad);
            if padding.len() > 2 || padding.iter().any(|&b| b != b'=') {
                return None;
            }
            data
        }
        None => input,
    };
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in data {
        let v = BASE64.iter().position(|&b| b == c)?;
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
