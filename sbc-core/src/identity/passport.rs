//! PASSporT tokens (RFC 8225) with the SHAKEN (RFC 8588) and `div` (RFC 8946)
//! extensions: the JOSE header and the claims, their canonical encoding, and the compact
//! JWS they travel in.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::json;

/// The only signature algorithm of SHAKEN (RFC 8588 §3): ECDSA P-256 with SHA-256.
pub const ES256: &str = "ES256";
/// The `typ` of a PASSporT (RFC 8225 §4.1).
pub const PASSPORT_TYP: &str = "passport";
/// The `ppt` of SHAKEN PASSporTs (RFC 8588).
pub const PPT_SHAKEN: &str = "shaken";
/// The `ppt` of diversion PASSporTs (RFC 8946).
pub const PPT_DIV: &str = "div";

/// Most bytes of a whole token accepted (three base64url parts and two dots).
pub const MAX_TOKEN_BYTES: usize = 8_192;

/// An originating or diverting party: a telephone number (canonical, RFC 8224 §8.3) or a
/// URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Party {
    Tn(String),
    Uri(String),
}

impl Party {
    fn to_json(&self) -> Value {
        let mut map = Map::new();
        match self {
            Party::Tn(tn) => map.insert("tn".into(), Value::String(tn.clone())),
            Party::Uri(uri) => map.insert("uri".into(), Value::String(uri.clone())),
        };
        Value::Object(map)
    }

    /// `{"tn": "…"}` or `{"uri": "…"}`: exactly one member, a string.
    fn from_json(value: &Value) -> Result<Party, TokenError> {
        let Value::Object(map) = value else {
            return Err(TokenError::InvalidClaims("party is not an object"));
        };
        if map.len() != 1 {
            return Err(TokenError::InvalidClaims("party must name one tn or uri"));
        }
        match (map.get("tn"), map.get("uri")) {
            (Some(Value::String(tn)), None) => Ok(Party::Tn(tn.clone())),
            (None, Some(Value::String(uri))) => Ok(Party::Uri(uri.clone())),
            _ => Err(TokenError::InvalidClaims(
                "party must be a tn or uri string",
            )),
        }
    }
}

/// The `dest` claim: telephone numbers and URIs, each an array (RFC 8225 §5.2.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Destinations {
    pub tn: Vec<String>,
    pub uri: Vec<String>,
}

impl Destinations {
    pub fn tn(tn: impl Into<String>) -> Destinations {
        Destinations {
            tn: vec![tn.into()],
            uri: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tn.is_empty() && self.uri.is_empty()
    }

    fn to_json(&self) -> Value {
        let mut map = Map::new();
        let strings = |items: &[String]| {
            Value::Array(items.iter().cloned().map(Value::String).collect::<Vec<_>>())
        };
        if !self.tn.is_empty() {
            map.insert("tn".into(), strings(&self.tn));
        }
        if !self.uri.is_empty() {
            map.insert("uri".into(), strings(&self.uri));
        }
        Value::Object(map)
    }

    fn from_json(value: &Value) -> Result<Destinations, TokenError> {
        let Value::Object(map) = value else {
            return Err(TokenError::InvalidClaims("dest is not an object"));
        };
        let strings = |key: &str| -> Result<Vec<String>, TokenError> {
            match map.get(key) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) if items.len() <= 16 => items
                    .iter()
                    .map(|item| match item {
                        Value::String(text) => Ok(text.clone()),
                        _ => Err(TokenError::InvalidClaims("dest entries must be strings")),
                    })
                    .collect(),
                Some(_) => Err(TokenError::InvalidClaims("dest tn/uri must be an array")),
            }
        };
        let dest = Destinations {
            tn: strings("tn")?,
            uri: strings("uri")?,
        };
        if dest.is_empty() {
            return Err(TokenError::InvalidClaims("dest names nobody"));
        }
        Ok(dest)
    }
}

/// The SHAKEN attestation level (RFC 8588 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attestation {
    /// Full: the signer authenticated the caller and knows it may use the number.
    A,
    /// Partial: the signer knows where the call came from, not that the number is theirs.
    B,
    /// Gateway: the signer only knows where it received the call.
    C,
}

impl Attestation {
    pub fn as_str(self) -> &'static str {
        match self {
            Attestation::A => "A",
            Attestation::B => "B",
            Attestation::C => "C",
        }
    }

    pub fn parse(text: &str) -> Option<Attestation> {
        match text {
            "A" => Some(Attestation::A),
            "B" => Some(Attestation::B),
            "C" => Some(Attestation::C),
            _ => None,
        }
    }

    /// The weaker of two levels.
    pub fn weakest(self, other: Attestation) -> Attestation {
        self.max(other)
    }
}

/// The JOSE header of a PASSporT (RFC 8225 §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassportHeader {
    pub alg: String,
    /// `passport` for PASSporTs; absent or anything else is not one.
    pub typ: Option<String>,
    /// The extension (`shaken`, `div` …); absent for a base PASSporT.
    pub ppt: Option<String>,
    /// Where the signer's certificate is.
    pub x5u: String,
}

impl PassportHeader {
    /// A SHAKEN header signed with ES256 by the certificate at `x5u`.
    pub fn shaken(x5u: impl Into<String>) -> PassportHeader {
        PassportHeader::with_ppt(x5u, Some(PPT_SHAKEN))
    }

    pub fn with_ppt(x5u: impl Into<String>, ppt: Option<&str>) -> PassportHeader {
        PassportHeader {
            alg: ES256.into(),
            typ: Some(PASSPORT_TYP.into()),
            ppt: ppt.map(str::to_owned),
            x5u: x5u.into(),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("alg".into(), Value::String(self.alg.clone()));
        if let Some(typ) = &self.typ {
            map.insert("typ".into(), Value::String(typ.clone()));
        }
        if let Some(ppt) = &self.ppt {
            map.insert("ppt".into(), Value::String(ppt.clone()));
        }
        map.insert("x5u".into(), Value::String(self.x5u.clone()));
        Value::Object(map)
    }

    fn from_json(map: &Map<String, Value>) -> Result<PassportHeader, TokenError> {
        let string = |key: &str| match map.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(TokenError::MalformedHeader("header member is not a string")),
        };
        Ok(PassportHeader {
            alg: string("alg")?.ok_or(TokenError::MalformedHeader("no alg"))?,
            typ: string("typ")?,
            ppt: string("ppt")?,
            x5u: string("x5u")?.ok_or(TokenError::MalformedHeader("no x5u"))?,
        })
    }
}

/// The claims of a PASSporT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub orig: Party,
    pub dest: Destinations,
    /// Issued at, seconds since the Unix epoch (a JSON integer: RFC 8225 §5.1.1).
    pub iat: u64,
    /// SHAKEN: the attestation level.
    pub attest: Option<Attestation>,
    /// SHAKEN: an opaque (UUID) identifier of where the call entered the network.
    pub origid: Option<String>,
    /// `div` (RFC 8946): the destination the call was first placed to.
    pub div: Option<Party>,
}

impl Claims {
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("orig".into(), self.orig.to_json());
        map.insert("dest".into(), self.dest.to_json());
        map.insert("iat".into(), Value::from(self.iat));
        if let Some(attest) = self.attest {
            map.insert("attest".into(), Value::String(attest.as_str().into()));
        }
        if let Some(origid) = &self.origid {
            map.insert("origid".into(), Value::String(origid.clone()));
        }
        if let Some(div) = &self.div {
            map.insert("div".into(), div.to_json());
        }
        Value::Object(map)
    }

    fn from_json(map: &Map<String, Value>) -> Result<Claims, TokenError> {
        let orig = Party::from_json(
            map.get("orig")
                .ok_or(TokenError::InvalidClaims("no orig"))?,
        )?;
        let dest = Destinations::from_json(
            map.get("dest")
                .ok_or(TokenError::InvalidClaims("no dest"))?,
        )?;
        let iat = match map.get("iat") {
            Some(Value::Number(number)) => number
                .as_u64()
                .ok_or(TokenError::InvalidClaims("iat is not a whole number"))?,
            Some(_) => return Err(TokenError::InvalidClaims("iat is not a number")),
            None => return Err(TokenError::InvalidClaims("no iat")),
        };
        let attest = match map.get("attest") {
            None => None,
            Some(Value::String(text)) => Some(
                Attestation::parse(text)
                    .ok_or(TokenError::InvalidClaims("attest is not A, B or C"))?,
            ),
            Some(_) => return Err(TokenError::InvalidClaims("attest is not a string")),
        };
        let origid = match map.get("origid") {
            None => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => return Err(TokenError::InvalidClaims("origid is not a string")),
        };
        let div = map.get("div").map(Party::from_json).transpose()?;
        Ok(Claims {
            orig,
            dest,
            iat,
            attest,
            origid,
            div,
        })
    }
}

/// A header and claims, not yet signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passport {
    pub header: PassportHeader,
    pub claims: Claims,
}

impl Passport {
    /// The JWS signing input: base64url of the canonical header, `.`, base64url of the
    /// canonical claims.
    pub fn signing_input(&self) -> String {
        let header = json::canonical(&self.header.to_json());
        let claims = json::canonical(&self.claims.to_json());
        let mut input = URL_SAFE_NO_PAD.encode(header);
        input.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut input);
        input
    }

    /// Checks what RFC 8588 asks of a SHAKEN PASSporT beyond the base claims.
    pub fn check_shaken(&self) -> Result<(), TokenError> {
        if self.claims.attest.is_none() {
            return Err(TokenError::InvalidClaims("SHAKEN PASSporT without attest"));
        }
        if self.claims.origid.as_deref().is_none_or(str::is_empty) {
            return Err(TokenError::InvalidClaims("SHAKEN PASSporT without origid"));
        }
        Ok(())
    }
}

/// A PASSporT with its signature, as received (or as we signed it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedPassport {
    pub passport: Passport,
    /// What the signature covers: the first two JWS parts exactly as received.
    pub signing_input: String,
    /// The raw JWS signature (for ES256, `r || s`, 64 bytes).
    pub signature: Vec<u8>,
}

impl SignedPassport {
    /// Parses a full-form token `header.claims.signature` (RFC 8225 §7).
    pub fn parse(token: &str) -> Result<SignedPassport, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed("token too long"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("not three dot-separated parts"));
        };
        if header.is_empty() || claims.is_empty() {
            return Err(TokenError::Malformed("compact form (no header or claims)"));
        }
        let header_map = decode_part(header)?;
        let claims_map = decode_part(claims)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
        let passport = Passport {
            header: PassportHeader::from_json(&header_map)?,
            claims: Claims::from_json(&claims_map)?,
        };
        let signing_input = token
            .get(..header.len() + 1 + claims.len())
            .unwrap_or_default()
            .to_owned();
        Ok(SignedPassport {
            passport,
            signing_input,
            signature,
        })
    }

    /// A compact-form token (`..signature`, RFC 8225 §7) with the header and claims the
    /// verifier rebuilt from the SIP request (RFC 8224 §5.3).
    pub fn from_compact(token: &str, rebuilt: Passport) -> Result<SignedPassport, TokenError> {
        let signature = token
            .strip_prefix("..")
            .ok_or(TokenError::Malformed("not a compact-form token"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
        Ok(SignedPassport {
            signing_input: rebuilt.signing_input(),
            passport: rebuilt,
            signature,
        })
    }

    /// The full-form token.
    pub fn token(&self) -> String {
        let mut token = self.signing_input.clone();
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&self.signature, &mut token);
        token
    }

    /// The compact-form token (`..signature`).
    pub fn compact_token(&self) -> String {
        format!("..{}", URL_SAFE_NO_PAD.encode(&self.signature))
    }
}

fn decode_part(part: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed("part is not base64url"))?;
    json::parse_object(&bytes).ok_or(TokenError::Malformed("part is not a JSON object"))
}

/// Why a token is not a usable PASSporT.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWS of JSON objects.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The JOSE header lacks or mistypes a member.
    #[error("malformed PASSporT header: {0}")]
    MalformedHeader(&'static str),
    /// The claims are not what RFC 8225/8588 require.
    #[error("invalid PASSporT claims: {0}")]
    InvalidClaims(&'static str),
}

impl TokenError {
    pub fn name(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) | TokenError::MalformedHeader(_) => "malformed_token",
            TokenError::InvalidClaims(_) => "invalid_claims",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn example() -> Passport {
        Passport {
            header: PassportHeader::with_ppt("https://cert.example.org/passport.cer", None),
            claims: Claims {
                orig: Party::Tn("12155551212".into()),
                dest: Destinations {
                    tn: Vec::new(),
                    uri: vec!["sip:alice@example.com".into()],
                },
                iat: 1_471_375_418,
                attest: None,
                origid: None,
                div: None,
            },
        }
    }

    #[test]
    fn rfc8225_appendix_a_serialisation() {
        // The header and claims strings of RFC 8225 Appendix A (correct as published).
        assert_eq!(
            example().signing_input(),
            "eyJhbGciOiJFUzI1NiIsInR5cCI6InBhc3Nwb3J0IiwieDV1IjoiaHR0cHM6Ly9jZXJ0LmV4YW1wbGUub3JnL3Bhc3Nwb3J0LmNlciJ9.eyJkZXN0Ijp7InVyaSI6WyJzaXA6YWxpY2VAZXhhbXBsZS5jb20iXX0sImlhdCI6MTQ3MTM3NTQxOCwib3JpZyI6eyJ0biI6IjEyMTU1NTUxMjEyIn19"
        );
    }

    #[test]
    fn tokens_round_trip() {
        let mut passport = example();
        passport.header = PassportHeader::shaken("https://cert.example.org/sp.pem");
        passport.claims.attest = Some(Attestation::B);
        passport.claims.origid = Some("de305d54-75b4-431b-adb2-eb6b9e546014".into());
        passport.claims.div = Some(Party::Tn("12155550000".into()));
        let signed = SignedPassport {
            signing_input: passport.signing_input(),
            passport: passport.clone(),
            signature: vec![7; 64],
        };
        let parsed = SignedPassport::parse(&signed.token()).unwrap();
        assert_eq!(parsed, signed);
        let compact = SignedPassport::from_compact(&signed.compact_token(), passport).unwrap();
        assert_eq!(compact, signed);
    }

    #[test]
    fn malformed_tokens_are_told_apart_from_bad_claims() {
        assert_eq!(
            SignedPassport::parse("a.b").unwrap_err().name(),
            "malformed_token"
        );
        assert_eq!(
            SignedPassport::parse("!!.e30.AA").unwrap_err().name(),
            "malformed_token"
        );
        // {"alg":"ES256","x5u":"x"} . {"iat":"1"} — a string iat.
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","x5u":"x"}"#);
        let claims = URL_SAFE_NO_PAD.encode(r#"{"dest":{"tn":["1"]},"iat":"1","orig":{"tn":"2"}}"#);
        let error = SignedPassport::parse(&format!("{header}.{claims}.AA")).unwrap_err();
        assert_eq!(error, TokenError::InvalidClaims("iat is not a number"));
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(SignedPassport::parse(&long).is_err());
    }

    #[test]
    fn attestation_levels_order_by_strength() {
        assert_eq!(Attestation::A.weakest(Attestation::C), Attestation::C);
        assert_eq!(Attestation::B.weakest(Attestation::A), Attestation::B);
        assert_eq!(Attestation::parse("W"), None);
    }
}
