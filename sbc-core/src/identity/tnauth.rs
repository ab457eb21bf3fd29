//! The TNAuthList certificate extension (RFC 8226 §9): which telephone numbers, number
//! ranges or service provider codes a STIR certificate speaks for.
//!
//! ```text
//! id-pe-TNAuthList OBJECT IDENTIFIER ::= { id-pe 26 }      -- 1.3.6.1.5.5.7.1.26
//! TNAuthorizationList ::= SEQUENCE SIZE (1..MAX) OF TNEntry
//! TNEntry ::= CHOICE {
//!   spc   [0] ServiceProviderCode,                        -- IA5String
//!   range [1] TelephoneNumberRange,                       -- SEQUENCE { start, count }
//!   one   [2] TelephoneNumber }                           -- IA5String, digits # *
//! ```
//!
//! The module is `DEFINITIONS EXPLICIT TAGS`, so each choice wraps its value.

use super::der::{self, Malformed, Reader};

/// DER contents of the OID 1.3.6.1.5.5.7.1.26.
pub const TN_AUTH_LIST_OID: [u8; 8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1a];

/// Most entries read from one certificate.
pub const MAX_ENTRIES: usize = 1_024;

/// One TNEntry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TnEntry {
    /// A service provider code (SHAKEN certificates name their SPC).
    Spc(String),
    /// `count` consecutive numbers from `start` (all of `start`'s length).
    Range { start: String, count: u64 },
    /// One number.
    One(String),
}

/// The parsed extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TnAuthList(pub Vec<TnEntry>);

/// What a TNAuthList says about a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// A number or range entry holds it.
    Number,
    /// The list names only service provider codes: it authorises a provider, not
    /// numbers, so it can neither cover nor exclude one (SHAKEN, ATIS-1000080).
    ServiceProvider,
    /// The list names numbers, and not this one.
    NotCovered,
}

/// Why a TNAuthList extension is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed TNAuthList extension")]
pub struct MalformedTnAuthList;

impl From<Malformed> for MalformedTnAuthList {
    fn from(_: Malformed) -> Self {
        MalformedTnAuthList
    }
}

impl TnAuthList {
    /// Parses the extension value (the contents of `extnValue`).
    pub fn from_der(value: &[u8]) -> Result<TnAuthList, MalformedTnAuthList> {
        let mut outer = Reader::new(value);
        let mut entries = Reader::new(outer.expect(der::SEQUENCE)?);
        if !outer.is_empty() {
            return Err(MalformedTnAuthList);
        }
        let mut list = Vec::new();
        while !entries.is_empty() {
            if list.len() == MAX_ENTRIES {
                return Err(MalformedTnAuthList);
            }
            let entry = entries.read()?;
            let mut inner = Reader::new(entry.content);
            let parsed = match entry.tag {
                tag if tag == der::context(0) => TnEntry::Spc(ia5(&mut inner, false)?),
                tag if tag == der::context(1) => {
                    let mut range = Reader::new(inner.expect(der::SEQUENCE)?);
                    let start = ia5(&mut range, true)?;
                    let count = integer(range.expect(der::INTEGER)?)?;
                    // Extensions of the range SEQUENCE (the `...`) are ignored.
                    if count < 2 {
                        return Err(MalformedTnAuthList);
                    }
                    TnEntry::Range { start, count }
                }
                tag if tag == der::context(2) => TnEntry::One(ia5(&mut inner, true)?),
                _ => return Err(MalformedTnAuthList),
            };
            if !inner.is_empty() {
                return Err(MalformedTnAuthList);
            }
            list.push(parsed);
        }
        if list.is_empty() {
            return Err(MalformedTnAuthList);
        }
        Ok(TnAuthList(list))
    }

    /// The extension value in DER.
    pub fn to_der(&self) -> Vec<u8> {
        let mut entries = Vec::new();
        for entry in &self.0 {
            let mut inner = Vec::new();
            let tag = match entry {
                TnEntry::Spc(code) => {
                    der::write(der::IA5_STRING, code.as_bytes(), &mut inner);
                    der::context(0)
                }
                TnEntry::Range { start, count } => {
                    let mut range = Vec::new();
                    der::write(der::IA5_STRING, start.as_bytes(), &mut range);
                    der::write(der::INTEGER, &integer_bytes(*count), &mut range);
                    der::write(der::SEQUENCE, &range, &mut inner);
                    der::context(1)
                }
                TnEntry::One(number) => {
                    der::write(der::IA5_STRING, number.as_bytes(), &mut inner);
                    der::context(2)
                }
            };
            der::write(tag, &inner, &mut entries);
        }
        let mut out = Vec::new();
        der::write(der::SEQUENCE, &entries, &mut out);
        out
    }

    /// Whether the list authorises `tn` (a canonical number: digits, `#`, `*`).
    pub fn covers(&self, tn: &str) -> Coverage {
        let mut names_numbers = false;
        for entry in &self.0 {
            match entry {
                TnEntry::Spc(_) => {}
                TnEntry::One(number) => {
                    names_numbers = true;
                    if number == tn {
                        return Coverage::Number;
                    }
                }
                TnEntry::Range { start, count } => {
                    names_numbers = true;
                    if in_range(tn, start, *count) {
                        return Coverage::Number;
                    }
                }
            }
        }
        if names_numbers {
            Coverage::NotCovered
        } else {
            Coverage::ServiceProvider
        }
    }
}

/// Whether `tn` is one of the `count` numbers from `start`, all of `start`'s length.
fn in_range(tn: &str, start: &str, count: u64) -> bool {
    if tn.len() != start.len() || !tn.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    // Numbers are at most 15 digits, so they fit in a u64.
    match (tn.parse::<u64>(), start.parse::<u64>()) {
        (Ok(tn), Ok(start)) => tn >= start && tn - start < count,
        _ => false,
    }
}

/// An IA5String; a TelephoneNumber (`number`) is 1–15 of `0-9 # *`.
fn ia5(reader: &mut Reader<'_>, number: bool) -> Result<String, MalformedTnAuthList> {
    let bytes = reader.expect(der::IA5_STRING)?;
    let valid = if number {
        (1..=15).contains(&bytes.len())
            && bytes
                .iter()
                .all(|&b| b.is_ascii_digit() || b == b'#' || b == b'*')
    } else {
        !bytes.is_empty() && bytes.len() <= 256 && bytes.iter().all(|&b| b.is_ascii_graphic())
    };
    if !valid {
        return Err(MalformedTnAuthList);
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// A non-negative DER INTEGER that fits in a u64.
fn integer(bytes: &[u8]) -> Result<u64, MalformedTnAuthList> {
    let (&first, _) = bytes.split_first().ok_or(MalformedTnAuthList)?;
    if first & 0x80 != 0 {
        return Err(MalformedTnAuthList);
    }
    let digits = if first == 0 && bytes.len() > 1 {
        &bytes[1..]
    } else {
        bytes
    };
    if digits.len() > 8 {
        return Err(MalformedTnAuthList);
    }
    Ok(digits
        .iter()
        .fold(0u64, |value, &byte| (value << 8) | u64::from(byte)))
}

fn integer_bytes(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes
        .iter()
        .take_while(|&&b| b == 0)
        .count()
        .min(bytes.len() - 1);
    let mut out = bytes[skip..].to_vec();
    if out.first().is_some_and(|b| b & 0x80 != 0) {
        out.insert(0, 0);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn entries_round_trip_and_cover() {
        let list = TnAuthList(vec![
            TnEntry::Spc("1234".into()),
            TnEntry::Range {
                start: "12155550100".into(),
                count: 200,
            },
            TnEntry::One("33123456789".into()),
        ]);
        let der = list.to_der();
        assert_eq!(TnAuthList::from_der(&der).unwrap(), list);
        assert_eq!(list.covers("12155550100"), Coverage::Number);
        assert_eq!(list.covers("12155550299"), Coverage::Number);
        assert_eq!(list.covers("12155550300"), Coverage::NotCovered);
        assert_eq!(list.covers("1215555010"), Coverage::NotCovered);
        assert_eq!(list.covers("33123456789"), Coverage::Number);
        let spc = TnAuthList(vec![TnEntry::Spc("1234".into())]);
        assert_eq!(spc.covers("1"), Coverage::ServiceProvider);
    }

    #[test]
    fn integers_with_the_sign_bit_set() {
        assert_eq!(integer(&integer_bytes(200)).unwrap(), 200);
        assert_eq!(integer_bytes(200), vec![0, 200]);
        assert_eq!(integer(&[0x80]), Err(MalformedTnAuthList));
    }

    #[test]
    fn malformed_lists_are_refused() {
        // libstirshaken's test certificate puts a bare IA5String URL in the extension.
        let mut url = Vec::new();
        der::write(der::IA5_STRING, b"http://example.com/api", &mut url);
        assert!(TnAuthList::from_der(&url).is_err());
        let mut empty = Vec::new();
        der::write(der::SEQUENCE, &[], &mut empty);
        assert!(TnAuthList::from_der(&empty).is_err());
        let bad_number = TnAuthList(vec![TnEntry::One("12a".into())]).to_der();
        assert!(TnAuthList::from_der(&bad_number).is_err());
        let one_range = TnAuthList(vec![TnEntry::Range {
            start: "1".into(),
            count: 1,
        }])
        .to_der();
        assert!(TnAuthList::from_der(&one_range).is_err());
    }
}
