//! Requests, responses and their start lines.

use bytes::Bytes;

use super::{HeaderName, Headers, Method, NameAddr, Uri};

/// The protocol version. Only `SIP/2.0` exists; anything else is refused with `505`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Version {
    #[default]
    Sip2,
}

/// A response status code, always in `100..=699` (RFC 3261 §7.2, §25.1 `Status-Code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(u16);

impl StatusCode {
    pub const TRYING: StatusCode = StatusCode(100);
    pub const OK: StatusCode = StatusCode(200);
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    pub const METHOD_NOT_ALLOWED: StatusCode = StatusCode(405);
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    pub const REQUEST_ENTITY_TOO_LARGE: StatusCode = StatusCode(413);
    pub const UNSUPPORTED_MEDIA_TYPE: StatusCode = StatusCode(415);
    pub const UNSUPPORTED_URI_SCHEME: StatusCode = StatusCode(416);
    pub const BAD_EXTENSION: StatusCode = StatusCode(420);
    pub const TEMPORARILY_UNAVAILABLE: StatusCode = StatusCode(480);
    pub const CALL_DOES_NOT_EXIST: StatusCode = StatusCode(481);
    pub const LOOP_DETECTED: StatusCode = StatusCode(482);
    pub const TOO_MANY_HOPS: StatusCode = StatusCode(483);
    pub const REQUEST_TERMINATED: StatusCode = StatusCode(487);
    pub const SERVER_INTERNAL_ERROR: StatusCode = StatusCode(500);
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    pub const VERSION_NOT_SUPPORTED: StatusCode = StatusCode(505);

    /// Returns the code when it is in `100..=699`.
    pub const fn new(code: u16) -> Option<StatusCode> {
        if code >= 100 && code <= 699 {
            Some(StatusCode(code))
        } else {
            None
        }
    }

    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// `1xx`.
    pub const fn is_provisional(self) -> bool {
        self.0 < 200
    }

    /// `2xx`.
    pub const fn is_success(self) -> bool {
        self.0 >= 200 && self.0 < 300
    }

    /// `200..=699`.
    pub const fn is_final(self) -> bool {
        self.0 >= 200
    }

    /// The class digit, `1` to `6`.
    pub const fn class(self) -> u8 {
        (self.0 / 100) as u8
    }

    /// The RFC 3261 §21 reason phrase for codes it defines, else a generic one per class.
    pub fn canonical_reason(self) -> &'static str {
        match self.0 {
            100 => "Trying",
            180 => "Ringing",
            181 => "Call Is Being Forwarded",
            182 => "Queued",
            183 => "Session Progress",
            200 => "OK",
            202 => "Accepted",
            300 => "Multiple Choices",
            301 => "Moved Permanently",
            302 => "Moved Temporarily",
            305 => "Use Proxy",
            380 => "Alternative Service",
            400 => "Bad Request",
            401 => "Unauthorized",
            402 => "Payment Required",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            407 => "Proxy Authentication Required",
            408 => "Request Timeout",
            410 => "Gone",
            413 => "Request Entity Too Large",
            414 => "Request-URI Too Long",
            415 => "Unsupported Media Type",
            416 => "Unsupported URI Scheme",
            420 => "Bad Extension",
            421 => "Extension Required",
            423 => "Interval Too Brief",
            480 => "Temporarily Unavailable",
            481 => "Call/Transaction Does Not Exist",
            482 => "Loop Detected",
            483 => "Too Many Hops",
            484 => "Address Incomplete",
            485 => "Ambiguous",
            486 => "Busy Here",
            487 => "Request Terminated",
            488 => "Not Acceptable Here",
            491 => "Request Pending",
            493 => "Undecipherable",
            500 => "Server Internal Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Server Time-out",
            505 => "Version Not Supported",
            513 => "Message Too Large",
            600 => "Busy Everywhere",
            603 => "Decline",
            604 => "Does Not Exist Anywhere",
            606 => "Not Acceptable",
            _ => match self.class() {
                1 => "Provisional",
                2 => "Success",
                3 => "Redirection",
                4 => "Client Error",
                5 => "Server Error",
                _ => "Global Failure",
            },
        }
    }
}

/// A SIP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: Headers,
    pub body: Bytes,
}

/// A SIP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub version: Version,
    pub status: StatusCode,
    /// The reason phrase as received: UTF-8 is allowed and it may be empty.
    pub reason: Bytes,
    pub headers: Headers,
    pub body: Bytes,
}

/// Either start line, for code that only needs to tell them apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartLine {
    Request { method: Method, uri: Uri },
    Response { status: StatusCode, reason: Bytes },
}

/// A SIP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }
}

impl Request {
    /// A request with no headers and no body; add headers with [`Headers::push`].
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            version: Version::Sip2,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// A response to this request per RFC 3261 §8.2.6: every Via line in order, From, To
    /// (with `to_tag` added when given and To has none), Call-ID and CSeq copied as
    /// received; no body. `reason` defaults to the status's canonical phrase.
    pub fn make_response(
        &self,
        status: StatusCode,
        reason: Option<&str>,
        to_tag: Option<&str>,
    ) -> Response {
        let mut headers = Headers::with_capacity(8);
        for header in &self.headers {
            match header.name {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    headers.push(header.name.clone(), header.value.clone());
                }
                HeaderName::To => {
                    headers.push(HeaderName::To, to_with_tag(&header.value, to_tag));
                }
                _ => {}
            }
        }
        let reason = reason.unwrap_or(status.canonical_reason());
        Response {
            version: Version::Sip2,
            status,
            reason: Bytes::copy_from_slice(reason.as_bytes()),
            headers,
            body: Bytes::new(),
        }
    }
}

impl Response {
    /// A response with the canonical reason phrase, no headers and no body.
    pub fn new(status: StatusCode) -> Response {
        Response {
            version: Version::Sip2,
            status,
            reason: Bytes::from_static(status.canonical_reason().as_bytes()),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }
}

/// The To value with `;tag=<tag>` appended when a tag is given and the value has none.
/// Header parameters come last in both the name-addr and addr-spec forms, so appending
/// keeps the rest of the value byte for byte. A To that does not decode is left alone.
pub(crate) fn to_with_tag(to: &Bytes, tag: Option<&str>) -> Bytes {
    let Some(tag) = tag else {
        return to.clone();
    };
    match NameAddr::decode(to) {
        Ok(address) if !address.params.contains("tag") => {
            let mut value = Vec::with_capacity(to.len() + 5 + tag.len());
            value.extend_from_slice(to);
            value.extend_from_slice(b";tag=");
            value.extend_from_slice(tag.as_bytes());
            Bytes::from(value)
        }
        _ => to.clone(),
    }
}
