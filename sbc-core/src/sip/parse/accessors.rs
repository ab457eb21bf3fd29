//! Typed accessors on [`Headers`]: each decodes the raw lines on demand.
//!
//! Lists (Via, Contact, Route …) gather every line of that name in order and split each at
//! the commas that are outside quoted strings and `<…>`.

use bytes::Bytes;

use super::scan::{Invalid, Scan};
use super::typed;
use super::{Field, ParseError};
use crate::sip::{CSeq, Contact, HeaderName, Headers, MediaType, NameAddr, Via};

impl Headers {
    /// The only line of `field`'s header: missing and repeated are errors.
    fn single(&self, field: Field) -> Result<&Bytes, ParseError> {
        self.optional(field)?.ok_or(ParseError::Missing(field))
    }

    /// The line of `field`'s header if present; repeated is an error.
    fn optional(&self, field: Field) -> Result<Option<&Bytes>, ParseError> {
        let name = field.header_name();
        let mut lines = self.iter().filter(|h| h.name == name).map(|h| &h.value);
        let first = lines.next();
        if lines.next().is_some() {
            return Err(ParseError::Multiple(field));
        }
        Ok(first)
    }

    /// Decodes every element of every line of a list header; `element` returns the
    /// decoded element and where it stopped.
    fn decode_list<T>(
        &self,
        field: Field,
        mut element: impl FnMut(&Bytes, usize) -> Scan<(T, usize)>,
    ) -> Result<Vec<T>, ParseError> {
        let mut out = Vec::new();
        for value in self.get_all(&field.header_name()) {
            typed::list(value, |start| {
                let (decoded, end) = element(value, start)?;
                out.push(decoded);
                Ok(end)
            })
            .map_err(malformed(field))?;
        }
        Ok(out)
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        let vias = self.decode_list(Field::Via, via)?;
        if vias.is_empty() {
            return Err(ParseError::Missing(Field::Via));
        }
        Ok(vias)
    }

    /// The topmost Via value (the first one of the first Via line).
    pub fn top_via(&self) -> Result<Via, ParseError> {
        let value = self
            .get(&HeaderName::Via)
            .ok_or(ParseError::Missing(Field::Via))?;
        let (top, end) = via(value, 0).map_err(malformed(Field::Via))?;
        match super::scan::at(value, super::scan::skip_ws(value, end)) {
            None | Some(b',') => Ok(top),
            Some(_) => Err(ParseError::Malformed(Field::Via)),
        }
    }

    /// The From header.
    pub fn from(&self) -> Result<NameAddr, ParseError> {
        whole_name_addr(self.single(Field::From)?).map_err(malformed(Field::From))
    }

    /// The To header.
    pub fn to(&self) -> Result<NameAddr, ParseError> {
        whole_name_addr(self.single(Field::To)?).map_err(malformed(Field::To))
    }

    /// The Call-ID, checked against `word [ "@" word ]`.
    pub fn call_id(&self) -> Result<&Bytes, ParseError> {
        let value = self.single(Field::CallId)?;
        typed::call_id(value).map_err(malformed(Field::CallId))?;
        Ok(value)
    }

    /// The CSeq header.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        typed::cseq(self.single(Field::CSeq)?).map_err(malformed(Field::CSeq))
    }

    /// Max-Forwards, `0..=255`, if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        let Some(value) = self.optional(Field::MaxForwards)? else {
            return Ok(None);
        };
        typed::whole_number(value, 255)
            .ok()
            .and_then(|hops| u8::try_from(hops).ok())
            .map(Some)
            .ok_or(ParseError::Malformed(Field::MaxForwards))
    }

    /// Content-Length, if present.
    pub fn content_length(&self) -> Result<Option<usize>, ParseError> {
        let Some(value) = self.optional(Field::ContentLength)? else {
            return Ok(None);
        };
        typed::whole_number(value, u64::from(u32::MAX))
            .ok()
            .and_then(|length| usize::try_from(length).ok())
            .map(Some)
            .ok_or(ParseError::Malformed(Field::ContentLength))
    }

    /// Contact (all lines together), if present.
    pub fn contact(&self) -> Result<Option<Contact>, ParseError> {
        typed::contact(self.get_all(&HeaderName::Contact), true).map_err(malformed(Field::Contact))
    }

    /// Every Route value, in order.
    pub fn routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.decode_list(Field::Route, route)
    }

    /// Every Record-Route value, in order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.decode_list(Field::RecordRoute, route)
    }

    /// Content-Type, if present.
    pub fn content_type(&self) -> Result<Option<MediaType>, ParseError> {
        let Some(value) = self.optional(Field::ContentType)? else {
            return Ok(None);
        };
        typed::media_type(value)
            .map(Some)
            .map_err(malformed(Field::ContentType))
    }

    /// The option tags of every Require line (empty when absent).
    pub fn require(&self) -> Result<Vec<Bytes>, ParseError> {
        self.decode_list(Field::Require, option_tag)
    }

    /// The option tags of every Supported line (empty when absent or empty).
    pub fn supported(&self) -> Result<Vec<Bytes>, ParseError> {
        let mut tags = Vec::new();
        for value in self
            .get_all(&HeaderName::Supported)
            .filter(|v| !v.is_empty())
        {
            typed::list(value, |start| {
                let (tag, end) = option_tag(value, start)?;
                tags.push(tag);
                Ok(end)
            })
            .map_err(malformed(Field::Supported))?;
        }
        Ok(tags)
    }

    /// The option tags of every Proxy-Require line (empty when absent).
    pub fn proxy_require(&self) -> Result<Vec<Bytes>, ParseError> {
        self.decode_list(Field::ProxyRequire, option_tag)
    }
}

fn via(value: &Bytes, start: usize) -> Scan<(Via, usize)> {
    let span = typed::scan_via(value, start)?;
    Ok((typed::via(value, &span)?, span.end()))
}

fn route(value: &Bytes, start: usize) -> Scan<(NameAddr, usize)> {
    let span = typed::scan_route(value, start)?;
    Ok((typed::name_addr(value, &span)?, span.end()))
}

fn option_tag(value: &Bytes, start: usize) -> Scan<(Bytes, usize)> {
    let end = typed::scan_option_tag(value, start)?;
    Ok((value.slice(start..end), end))
}

fn whole_name_addr(value: &Bytes) -> Scan<NameAddr> {
    typed::whole(value, |start| {
        let span = typed::scan_name_addr(value, start)?;
        Ok((typed::name_addr(value, &span)?, span.end()))
    })
}

fn malformed(field: Field) -> impl Fn(Invalid) -> ParseError {
    move |Invalid| ParseError::Malformed(field)
}

macro_rules! standalone {
    ($( $ty:ty => $decode:expr, $field:expr; )*) => {
        $(
            impl $ty {
                /// Decodes one value (zero copy: the result holds slices of `input`).
                pub fn decode(input: &Bytes) -> Result<$ty, ParseError> {
                    $decode(input).map_err(malformed($field))
                }

                /// Decodes one value from bytes (copied once).
                pub fn parse(input: &[u8]) -> Result<$ty, ParseError> {
                    Self::decode(&Bytes::copy_from_slice(input))
                }
            }
        )*
    };
}

standalone! {
    Via => |v: &Bytes| typed::whole(v, |s| via(v, s)), Field::Via;
    NameAddr => whole_name_addr, Field::From;
    CSeq => |v: &Bytes| typed::cseq(v), Field::CSeq;
    MediaType => |v: &Bytes| typed::media_type(v), Field::ContentType;
    Contact => |v: &Bytes| typed::contact(std::iter::once(v), true).and_then(|c| c.ok_or(Invalid)), Field::Contact;
}

impl crate::sip::Uri {
    /// Decodes a URI as found inside `<…>` (zero copy). The error is `bad_request_uri`.
    pub fn decode(input: &Bytes) -> Result<crate::sip::Uri, ParseError> {
        super::uri::uri(input, 0, input.len(), super::uri::UriContext::Bracketed)
            .map_err(|Invalid| ParseError::BadRequestUri)
    }

    /// Decodes a URI from bytes (copied once).
    pub fn parse(input: &[u8]) -> Result<crate::sip::Uri, ParseError> {
        Self::decode(&Bytes::copy_from_slice(input))
    }
}
