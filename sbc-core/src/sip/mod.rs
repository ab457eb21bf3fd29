//! The SIP message model (RFC 3261 §7, §20, §25).
//!
//! A [`Message`] keeps every header as raw bytes in the order received; typed views
//! ([`Via`], [`NameAddr`], [`CSeq`] …) are decoded on demand. Bodies are bytes.

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
