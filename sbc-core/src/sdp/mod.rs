//! The SDP model, parser and printer (RFC 8866) that the B2BUA rewrites.
//!
//! A [`SessionDescription`] types the lines an SBC changes when it anchors media: `o=`
//! ([`Origin`]), `c=` ([`Connection`]) at both levels, and each `m=` ([`Media`]: port,
//! port count, protocol, formats). Every other line is kept as received, in order — an
//! attribute as its name and raw value ([`Attribute`]), anything else whole
//! ([`Line::Other`]) — so `print(parse(x)) == x` byte for byte for any well-formed input
//! with CRLF line ends. Values are bytes, never lossy strings (`s=` and `i=` may carry
//! non-UTF-8).
//!
//! Attributes are decoded on demand by typed views on [`Lines`]: direction, `rtcp`
//! (RFC 3605), `rtcp-mux`, `crypto` (RFC 4568), `fingerprint`/`setup` (RFC 8122 /
//! RFC 4145), ICE (`candidate`, `ice-ufrag`, `ice-pwd`, `ice-lite`, RFC 8839), `rtpmap` and
//! `fmtp`. Decoding on demand means an attribute the SBC never looks at costs nothing and
//! cannot fail a call; a malformed one fails only its typed view ([`AttributeError`]).
//! Setters replace the attribute lines in place.
//!
//! Input lines may end in CRLF or bare LF; the printer always writes CRLF. Numbers in
//! typed lines are printed without leading zeros, and runs of spaces between `o=`, `c=`
//! and `m=` fields are accepted and printed as one space.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use sbc_core::sdp::{Connection, Direction, SessionDescription};
//!
//! let offer = b"v=0\r\no=alice 2890844526 2890844526 IN IP4 198.51.100.1\r\ns= \r\n\
//!     c=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
//! let mut sdp = SessionDescription::parse(offer)?;
//! assert_eq!(&sdp.to_bytes()[..], &offer[..]);
//!
//! let relay = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
//! sdp.origin.address.set_ip(relay);
//! sdp.origin.bump_version();
//! sdp.lines.set_connection(Some(Connection::from_ip(relay)));
//! sdp.media[0].media.port = 20000;
//! sdp.media[0].lines.set_direction(Some(Direction::SendOnly));
//!
//! let rewritten = sdp.to_bytes();
//! assert!(rewritten.starts_with(b"v=0\r\no=alice 2890844526 2890844527 IN IP4 203.0.113.7\r\n"));
//! assert_eq!(SessionDescription::parse(&rewritten)?, sdp);
//! # Ok::<(), sbc_core::sdp::SdpError>(())
//! ```

mod address;
mod attributes;
mod candidate;
mod codec;
mod crypto;
mod error;
mod lines;
mod model;
mod parse;
mod print;
mod syntax;

pub use address::{AddrType, Host, NetAddress, NetType};
pub use attributes::{Direction, Fingerprint, Fmtp, Rtcp, Rtpmap, Setup, TypedAttribute};
pub use candidate::{Candidate, CandidateType};
pub use crypto::{Crypto, InlineKey, KeyParam, Lifetime, Mki};
pub use error::{AttributeError, SdpError};
pub use lines::Lines;
pub use model::SessionDescription;
pub use model::{Attribute, Connection, Line, Media, MediaDescription, Origin};
pub use parse::Limits;
