//! Why a message could not be parsed, and what to answer.

use thiserror::Error;

use crate::sip::{HeaderName, StatusCode};

macro_rules! fields {
    ($( $variant:ident => $header:ident, $wire:literal, $snake:literal; )*) => {
        /// A header the parser checks on every message.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Field {
            $( $variant, )*
        }

        impl Field {
            /// How many fields there are.
            pub(crate) const COUNT: usize = [$( Field::$variant, )*].len();

            /// The field a header name stands for, if the parser checks it.
            pub(crate) fn of(name: &HeaderName) -> Option<Field> {
                match name {
                    $( HeaderName::$header => Some(Field::$variant), )*
                    _ => None,
                }
            }

            /// The header's name.
            pub fn header_name(self) -> HeaderName {
                match self {
                    $( Field::$variant => HeaderName::$header, )*
                }
            }

            /// The canonical spelling of the header name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Field::$variant => $wire, )*
                }
            }

            fn malformed_name(self) -> &'static str {
                match self {
                    $( Field::$variant => concat!("bad_", $snake), )*
                }
            }

            fn missing_name(self) -> &'static str {
                match self {
                    $( Field::$variant => concat!("missing_", $snake), )*
                }
            }

            fn multiple_name(self) -> &'static str {
                match self {
                    $( Field::$variant => concat!("multiple_", $snake), )*
                }
            }

            fn malformed_reason(self) -> &'static str {
                match self {
                    $( Field::$variant => concat!("Bad Request - Malformed ", $wire), )*
                }
            }

            fn missing_reason(self) -> &'static str {
                match self {
                    $( Field::$variant => concat!("Bad Request - Missing ", $wire), )*
                }
            }

            fn multiple_reason(self) -> &'static str {
                match self {
                    $( Field::$variant => concat!("Bad Request - Multiple ", $wire, " Headers"), )*
                }
            }
        }
    };
}

fields! {
    Via => Via, "Via", "via";
    From => From, "From", "from";
    To => To, "To", "to";
    CallId => CallId, "Call-ID", "call_id";
    CSeq => CSeq, "CSeq", "cseq";
    MaxForwards => MaxForwards, "Max-Forwards", "max_forwards";
    ContentLength => ContentLength, "Content-Length", "content_length";
    Contact => Contact, "Contact", "contact";
    Route => Route, "Route", "route";
    RecordRoute => RecordRoute, "Record-Route", "record_route";
    ContentType => ContentType, "Content-Type", "content_type";
    Require => Require, "Require", "require";
    Supported => Supported, "Supported", "supported";
    ProxyRequire => ProxyRequire, "Proxy-Require", "proxy_require";
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message that is not well-formed SIP, typed by fault. A request that fails gets
/// [`ParseError::status`] with [`ParseError::reason`] as its reason phrase (build it with
/// [`super::salvage_for_response`]); a response that fails is dropped. Either way the
/// drop is counted under [`ParseError::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The first line is neither `Method SP Request-URI SP SIP-Version` nor
    /// `SIP-Version SP Status-Code SP Reason-Phrase` (extra or trailing spaces included).
    #[error("malformed start line")]
    BadStartLine,
    /// The Request-URI is not a URI, or holds whitespace, brackets or `?headers`.
    #[error("malformed Request-URI")]
    BadRequestUri,
    /// A version other than `SIP/2.0`.
    #[error("unsupported SIP version")]
    BadVersion,
    /// A status code that is not three digits in `100..=699`.
    #[error("malformed status code")]
    BadStatusCode,
    /// A reason phrase that is not UTF-8 text.
    #[error("malformed reason phrase")]
    BadReasonPhrase,
    /// A header line with no name or no colon.
    #[error("malformed header line")]
    BadHeaderLine,
    /// A CR or LF that is not part of a CRLF line end in the start line or headers.
    #[error("bare CR or LF in the header section")]
    BadLineEnding,
    /// No empty line ends the header section.
    #[error("header section not terminated by an empty line")]
    UnterminatedHeaders,
    /// A header every message needs is absent.
    #[error("missing {0} header")]
    Missing(Field),
    /// A header that must appear once appears more than once.
    #[error("more than one {0} header")]
    Multiple(Field),
    /// A header the parser checks is malformed.
    #[error("malformed {0} header")]
    Malformed(Field),
    /// The CSeq method differs from the request method (RFC 3261 §8.1.1.5).
    #[error("CSeq method differs from the request method")]
    CSeqMethodMismatch,
    /// The body is shorter than Content-Length says (RFC 3261 §18.3).
    #[error("body shorter than Content-Length")]
    ContentLengthMismatch,
}

impl ParseError {
    /// A stable name for metric labels and logs.
    pub fn name(&self) -> &'static str {
        match self {
            ParseError::BadStartLine => "bad_start_line",
            ParseError::BadRequestUri => "bad_request_uri",
            ParseError::BadVersion => "bad_version",
            ParseError::BadStatusCode => "bad_status_code",
            ParseError::BadReasonPhrase => "bad_reason_phrase",
            ParseError::BadHeaderLine => "bad_header_line",
            ParseError::BadLineEnding => "bad_line_ending",
            ParseError::UnterminatedHeaders => "unterminated_headers",
            ParseError::Missing(field) => field.missing_name(),
            ParseError::Multiple(field) => field.multiple_name(),
            ParseError::Malformed(field) => field.malformed_name(),
            ParseError::CSeqMethodMismatch => "cseq_method_mismatch",
            ParseError::ContentLengthMismatch => "content_length_mismatch",
        }
    }

    /// The status to answer a request with: `505` for a version we do not speak, `400`
    /// for everything else.
    pub fn status(&self) -> StatusCode {
        match self {
            ParseError::BadVersion => StatusCode::VERSION_NOT_SUPPORTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A reason phrase for that response, e.g. `Bad Request - Malformed Via`.
    pub fn reason(&self) -> &'static str {
        match self {
            ParseError::BadStartLine => "Bad Request - Malformed Request-Line",
            ParseError::BadRequestUri => "Bad Request - Malformed Request-URI",
            ParseError::BadVersion => "Version Not Supported",
            ParseError::BadStatusCode => "Bad Request - Malformed Status-Code",
            ParseError::BadReasonPhrase => "Bad Request - Malformed Reason-Phrase",
            ParseError::BadHeaderLine => "Bad Request - Malformed Header Line",
            ParseError::BadLineEnding => "Bad Request - Bare CR or LF",
            ParseError::UnterminatedHeaders => "Bad Request - Unterminated Header Section",
            ParseError::Missing(field) => field.missing_reason(),
            ParseError::Multiple(field) => field.multiple_reason(),
            ParseError::Malformed(field) => field.malformed_reason(),
            ParseError::CSeqMethodMismatch => "Bad Request - CSeq Method Mismatch",
            ParseError::ContentLengthMismatch => "Bad Request - Content-Length Mismatch",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_reasons() {
        assert_eq!(ParseError::Malformed(Field::Via).name(), "bad_via");
        assert_eq!(ParseError::Missing(Field::CallId).name(), "missing_call_id");
        assert_eq!(ParseError::Multiple(Field::From).name(), "multiple_from");
        assert_eq!(
            ParseError::Malformed(Field::Via).reason(),
            "Bad Request - Malformed Via"
        );
        assert_eq!(ParseError::BadVersion.status().as_u16(), 505);
        assert_eq!(ParseError::Malformed(Field::CSeq).status().as_u16(), 400);
        assert_eq!(
            ParseError::Missing(Field::To).to_string(),
            "missing To header"
        );
    }
}
