//! The SIP message model (RFC 3261 §7, §20, §25).
//!
//! A [`Message`] keeps every header as raw bytes in the order received; typed views
//! ([`Via`], [`NameAddr`], [`CSeq`] …) are decoded on demand by the accessors on
//! [`Headers`] (`top_via()`, `cseq()`, `from()` …). Bodies are bytes.
//!
//! [`parse_message`] turns one datagram or framed stream message into a [`Message`]
//! (see [`parse`] for what it checks); `Message::to_bytes`/`write_to` print it back, and
//! typed values print with `Display`/`to_bytes`. [`Request::make_response`] builds the
//! RFC 3261 §8.2.6 response to a request.

pub mod framing;
mod header;
pub(crate) mod message;
mod method;
pub mod parse;
mod print;
mod typed;
mod uri;

pub use header::{Header, HeaderName, Headers};
pub use message::{Message, Request, Response, StartLine, StatusCode, Version};
pub use method::Method;
pub use parse::{Field, ParseError, Salvage, parse_message, salvage_for_response};
pub use typed::{CSeq, Contact, MediaType, NameAddr, Transport, Via};
pub use uri::{Host, HostPort, Param, Params, SipUri, Uri};
pub use uri::{TelUri, unescape};
