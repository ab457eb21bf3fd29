//! Typed accessors on [`Headers`]: each decodes the raw lines on demand.
//!
//! Lists (Via, Contact, Route …) gather every line of that name in order and split each at
//! the commas that are outside quoted strings and `<…>`.

use bytes::Bytes;

use super::scan::Invalid;
use super::typed;
use super::{Field, ParseError};
use crate::sip::{CSeq, Contact, HeaderName, Headers, MediaType, NameAddr, Via};

impl Headers {
    /// The only line named `field`'s header: missing and repeated are errors.
    fn single(&self, field: Field) -> Result<&Bytes, ParseError> {
        let name = field.header_name();
        let mut lines = self.iter().filter(|h| h.name == name).map(|h| &h.value);
        let first = lines.next().ok_or(ParseError::Missing(field))?;
        if lines.next().is_some() {
            return Err(ParseError::Multiple(field));
        }
        Ok(first)
    }

    /// The line named `field`'s header if present; repeated is an error.
    fn optional(&self, field: Field) -> Result<Option<&Bytes>, ParseError> {
        match self.single(field) {
            Ok(value) => Ok(Some(value)),
            Err(ParseError::Missing(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        let mut vias = Vec::new();
        for value in self.get_all(&HeaderName::Via) {
            typed::list(value, typed::via, |v| vias.push(v)).map_err(malformed(Field::Via))?;
        }
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
        let (start, end) = super::scan::split_list(value)
            .next()
            .ok_or(ParseError::Malformed(Field::Via))?
            .map_err(malformed(Field::Via))?;
        typed::via(value, start, end).map_err(malformed(Field::Via))
    }

    /// The From header.
    pub fn from(&self) -> Result<NameAddr, ParseError> {
        let value = self.single(Field::From)?;
        typed::name_addr(value, 0, value.len()).map_err(malformed(Field::From))
    }

    /// The To header.
    pub fn to(&self) -> Result<NameAddr, ParseError> {
        let value = self.single(Field::To)?;
        typed::name_addr(value, 0, value.len()).map_err(malformed(Field::To))
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
        let hops = typed::whole_number(value, 255).map_err(malformed(Field::MaxForwards))?;
        u8::try_from(hops)
            .map(Some)
            .map_err(|_| ParseError::Malformed(Field::MaxForwards))
    }

    /// Content-Length, if present.
    pub fn content_length(&self) -> Result<Option<usize>, ParseError> {
        let Some(value) = self.optional(Field::ContentLength)? else {
            return Ok(None);
        };
        let length = typed::whole_number(value, u64::from(u32::MAX))
            .map_err(malformed(Field::ContentLength))?;
        usize::try_from(length)
            .map(Some)
            .map_err(|_| ParseError::Malformed(Field::ContentLength))
    }

    /// Contact (all lines together), if present.
    pub fn contact(&self) -> Result<Option<Contact>, ParseError> {
        typed::contact(self.get_all(&HeaderName::Contact)).map_err(malformed(Field::Contact))
    }

    /// Every Route value, in order.
    pub fn routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.route_list(&HeaderName::Route, Field::Route)
    }

    /// Every Record-Route value, in order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.route_list(&HeaderName::RecordRoute, Field::RecordRoute)
    }

    /// Content-Type, if present.
    pub fn content_type(&self) -> Result<Option<MediaType>, ParseError> {
        let Some(value) = self.optional(Field::ContentType)? else {
            return Ok(None);
        };
        typed::media_type(value, 0, value.len())
            .map(Some)
            .map_err(malformed(Field::ContentType))
    }

    /// The option tags of every Require line (empty when absent).
    pub fn require(&self) -> Result<Vec<Bytes>, ParseError> {
        self.option_tags(&HeaderName::Require, Field::Require)
    }

    /// The option tags of every Supported line (empty when absent or empty).
    pub fn supported(&self) -> Result<Vec<Bytes>, ParseError> {
        self.option_tags(&HeaderName::Supported, Field::Supported)
    }

    /// The option tags of every Proxy-Require line (empty when absent).
    pub fn proxy_require(&self) -> Result<Vec<Bytes>, ParseError> {
        self.option_tags(&HeaderName::ProxyRequire, Field::ProxyRequire)
    }

    fn route_list(&self, name: &HeaderName, field: Field) -> Result<Vec<NameAddr>, ParseError> {
        let mut routes = Vec::new();
        for value in self.get_all(name) {
            typed::list(value, typed::route, |r| routes.push(r)).map_err(malformed(field))?;
        }
        Ok(routes)
    }

    fn option_tags(&self, name: &HeaderName, field: Field) -> Result<Vec<Bytes>, ParseError> {
        let mut tags = Vec::new();
        for value in self.get_all(name) {
            if value.is_empty() && field == Field::Supported {
                continue;
            }
            typed::list(value, typed::option_tag, |t| tags.push(t)).map_err(malformed(field))?;
        }
        Ok(tags)
    }

    /// Checks Contact without building it.
    pub(super) fn check_contact(&self) -> Result<(), ParseError> {
        self.contact().map(drop)
    }

    /// Checks a Route or Record-Route list without keeping it.
    pub(super) fn check_routes(&self, name: &HeaderName, field: Field) -> Result<(), ParseError> {
        for value in self.get_all(name) {
            typed::list(value, typed::route, drop).map_err(malformed(field))?;
        }
        Ok(())
    }

    /// Checks an option-tag list without keeping it.
    pub(super) fn check_option_tags(
        &self,
        name: &HeaderName,
        field: Field,
    ) -> Result<(), ParseError> {
        for value in self.get_all(name) {
            if value.is_empty() && field == Field::Supported {
                continue;
            }
            typed::list(value, typed::option_tag, drop).map_err(malformed(field))?;
        }
        Ok(())
    }
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
    Via => |v: &Bytes| typed::via(v, 0, v.len()), Field::Via;
    NameAddr => |v: &Bytes| typed::name_addr(v, 0, v.len()), Field::From;
    CSeq => |v: &Bytes| typed::cseq(v), Field::CSeq;
    MediaType => |v: &Bytes| typed::media_type(v, 0, v.len()), Field::ContentType;
    Contact => |v: &Bytes| typed::contact(std::iter::once(v)).and_then(|c| c.ok_or(Invalid)), Field::Contact;
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
