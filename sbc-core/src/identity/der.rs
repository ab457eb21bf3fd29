//! A small, bounded DER reader (X.690 §10) for the two things openssl does not hand us:
//! an X.509 extension by OID, and the TNAuthList inside it (RFC 8226).
//!
//! Written here rather than taken from a general ASN.1 crate: it needs single-byte tags,
//! definite lengths and five universal types, never allocates, never recurses (callers
//! walk one level at a time), and rejects everything else. openssl has already parsed
//! and checked the certificate as a whole before this reads a byte of it.

/// A DER element: its tag byte and its contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
}

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const OID: u8 = 0x06;
pub(crate) const BOOLEAN: u8 = 0x01;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const IA5_STRING: u8 = 0x16;

/// Context-specific constructed tag `[n]`.
pub(crate) const fn context(n: u8) -> u8 {
    0xa0 | n
}

/// Not DER this reader accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

/// Reads consecutive elements out of a byte slice.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Reader<'a> {
        Reader { rest: input }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element.
    pub(crate) fn read(&mut self) -> Result<Tlv<'a>, Malformed> {
        let (&tag, after_tag) = self.rest.split_first().ok_or(Malformed)?;
        if tag & 0x1f == 0x1f {
            // High tag numbers are not used by anything read here.
            return Err(Malformed);
        }
        let (&first, mut after_len) = after_tag.split_first().ok_or(Malformed)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                // 0x80 is the indefinite form (BER, not DER); > 4 bytes is absurd here.
                return Err(Malformed);
            }
            let bytes = after_len.get(..count).ok_or(Malformed)?;
            if bytes.first() == Some(&0) {
                return Err(Malformed);
            }
            after_len = &after_len[count..];
            let len = bytes
                .iter()
                .fold(0usize, |len, &byte| (len << 8) | usize::from(byte));
            if len < 0x80 {
                return Err(Malformed);
            }
            len
        };
        let content = after_len.get(..len).ok_or(Malformed)?;
        self.rest = &after_len[len..];
        Ok(Tlv { tag, content })
    }

    /// The next element, which must have tag `tag`.
    pub(crate) fn expect(&mut self, tag: u8) -> Result<&'a [u8], Malformed> {
        let tlv = self.read()?;
        if tlv.tag == tag {
            Ok(tlv.content)
        } else {
            Err(Malformed)
        }
    }

    /// The next element if it has tag `tag`; nothing is consumed otherwise.
    pub(crate) fn optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, Malformed> {
        if self.rest.first() == Some(&tag) {
            self.expect(tag).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The contents (`extnValue`) of the extension `oid` (DER-encoded OID contents) of a
/// DER certificate, if it has one.
pub(crate) fn extension<'a>(
    certificate: &'a [u8],
    oid: &[u8],
) -> Result<Option<&'a [u8]>, Malformed> {
    let certificate = Reader::new(certificate).expect(SEQUENCE)?;
    let mut tbs = Reader::new(Reader::new(certificate).expect(SEQUENCE)?);
    tbs.optional(context(0))?; // version
    for _ in 0..6 {
        // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
        tbs.read()?;
    }
    tbs.optional(0x81)?; // issuerUniqueID [1] IMPLICIT
    tbs.optional(0x82)?; // subjectUniqueID [2] IMPLICIT
    let Some(wrapped) = tbs.optional(context(3))? else {
        return Ok(None);
    };
    let mut extensions = Reader::new(Reader::new(wrapped).expect(SEQUENCE)?);
    while !extensions.is_empty() {
        let mut extension = Reader::new(extensions.expect(SEQUENCE)?);
        let id = extension.expect(OID)?;
        extension.optional(BOOLEAN)?;
        let value = extension.expect(OCTET_STRING)?;
        if id == oid {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// A DER writer for what the SBC and its tests build (a TNAuthList extension).
pub(crate) fn write(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn lengths_short_and_long() {
        let mut out = Vec::new();
        write(OCTET_STRING, &[1, 2, 3], &mut out);
        write(OCTET_STRING, &[9; 300], &mut out);
        let mut reader = Reader::new(&out);
        assert_eq!(reader.expect(OCTET_STRING).unwrap(), &[1, 2, 3]);
        assert_eq!(reader.expect(OCTET_STRING).unwrap().len(), 300);
        assert!(reader.is_empty());
    }

    #[test]
    fn non_der_is_refused() {
        for bad in [
            &[0x30, 0x80, 0, 0][..],    // indefinite length
            &[0x30, 0x81, 0x05, 0][..], // long form for a short length
            &[0x30, 0x05, 1][..],       // truncated
            &[0x1f, 0x01, 0][..],       // high tag number
            &[0x30, 0x85, 1, 1, 1, 1, 1][..],
            &[0x30][..],
        ] {
            assert_eq!(Reader::new(bad).read(), Err(Malformed), "{bad:?}");
        }
    }
}
