//! Signalling core of the SBC.
//!
//! Protocol logic here is sans-IO: it takes bytes and `now` and returns what to send and
//! when to be woken. Only [`net`] touches sockets, clocks and tokio.
//!
//! * [`sip`]: SIP message model, parser, printer and stream framing (RFC 3261 §7, §20, §25).
//! * [`shard`]: which signalling shard owns a message (by Call-ID).
//! * [`sdp`]: SDP parser and printer (RFC 8866) that keeps what it does not understand.
//! * [`transaction`]: the RFC 3261 §17 / RFC 6026 transaction state machines.
//! * [`b2bua`]: the back-to-back user agent that terminates and re-originates every call.
//! * [`media`]: the trait through which the B2BUA anchors media on the relay.
//! * [`identity`]: STIR/SHAKEN — PASSporTs, the Identity header, verification and signing.
//! * [`endpoint`]: the SBC's own SIP endpoint (parse, transactions, RFC 3261 §8.2 answers).
//! * [`net`]: the tokio driver: UDP, TCP and TLS transports.

pub mod auth;
pub mod b2bua;
pub mod endpoint;
pub mod identity;
pub mod media;
pub mod net;
pub mod policy;
pub mod probes;
pub mod registrar;
pub mod routing;
pub mod sdp;
pub mod shard;
pub mod sip;
pub mod transaction;
