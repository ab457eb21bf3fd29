//! Stream framing for SIP over TCP/TLS (RFC 3261 §18.3) with RFC 5626 §3.5.1 keep-alives.
//!
//! A byte stream carries no message boundaries, so each message's length comes from its
//! `Content-Length` header (long or compact form `l`, any case, possibly folded), which is
//! mandatory on streams. The framer is sans-IO: the driver hands it whatever it read with
//! [`StreamFramer::handle_data`] and drains complete frames with
//! [`StreamFramer::poll_frame`] until it returns `None`, then reads again.
//!
//! ```
//! use sbc_core::sip::framing::{Frame, FramingLimits, StreamFramer};
//!
//! let mut framer = StreamFramer::new(FramingLimits::default());
//! framer.handle_data(b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nl: 2\r\n\r\nhi");
//! let mut to_send_back = Vec::new();
//! let mut messages = Vec::new();
//! while let Some(frame) = framer.poll_frame() {
//!     match frame {
//!         Ok(Frame::Message(bytes)) => messages.push(bytes),
//!         Ok(Frame::KeepAlivePing) => to_send_back.push(&b"\r\n"[..]),
//!         Ok(Frame::KeepAlivePong) => {}
//!         Err(error) => panic!("close the connection: {}", error.name()),
//!     }
//! }
//! assert_eq!(to_send_back, [b"\r\n"]);
//! assert_eq!(messages.len(), 1);
//! assert!(messages[0].ends_with(b"\r\n\r\nhi"));
//! ```
//!
//! On a [`FramingError`] there is no way to find the next message boundary: the caller
//! closes the connection. The framer then returns `None` forever and ignores further data.
//!
//! Memory stays bounded by the configured maximum message size (plus whatever one
//! `handle_data` call adds while the caller drains frames between reads), and a message
//! arriving a byte at a time is scanned once, not once per byte.

use bytes::{Bytes, BytesMut};
use memchr::memmem;

/// Size limits applied to each message of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramingLimits {
    /// The largest start line plus header section, including the blank line that ends it.
    pub max_header_bytes: usize,
    /// The largest whole message: header section plus body.
    pub max_message_bytes: usize,
}

impl Default for FramingLimits {
    /// 16 KiB of headers, 64 KiB per message.
    fn default() -> Self {
        FramingLimits {
            max_header_bytes: 16 * 1024,
            max_message_bytes: 64 * 1024,
        }
    }
}

/// One unit cut out of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete SIP message: start line, headers, blank line and exactly
    /// `Content-Length` bytes of body. Not parsed beyond that.
    Message(Bytes),
    /// A double CRLF between messages (RFC 5626 §3.5.1 "ping"): answer with a single CRLF.
    KeepAlivePing,
    /// A single CRLF between messages: the "pong" answering our ping, or a stray CRLF
    /// before a start line (RFC 3261 §7.5), which is to be ignored.
    ///
    /// When a ping's two CRLFs arrive in separate reads the framer cannot wait to see
    /// whether the first is a pong, so it reports `KeepAlivePong` for the first and then
    /// `KeepAlivePing` once the second arrives: a ping is always reported as a ping.
    KeepAlivePong,
}

/// Why the stream cannot be framed. The connection must be closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The header section has not ended within `max_header_bytes`.
    #[error("header section larger than {limit} bytes")]
    HeaderTooLarge { limit: usize },
    /// Header section plus declared body exceed `max_message_bytes`.
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    MessageTooLarge { size: u64, limit: usize },
    /// No `Content-Length` header: mandatory on streams (RFC 3261 §18.3, §20.14).
    #[error("no Content-Length header on a stream transport")]
    MissingContentLength,
    /// A `Content-Length` value starting with a minus sign (RFC 4475 §3.1.2.7 `ncl`).
    #[error("negative Content-Length")]
    NegativeContentLength,
    /// A `Content-Length` value that is not a decimal number.
    #[error("Content-Length is not a decimal number")]
    InvalidContentLength,
    /// Several `Content-Length` headers with different values (RFC 4475 §3.1.2.12
    /// `mcl01`).
    #[error("several Content-Length headers with different values")]
    ConflictingContentLength,
}

impl FramingError {
    /// A stable name for metric labels and logs.
    pub fn name(&self) -> &'static str {
        match self {
            FramingError::HeaderTooLarge { .. } => "header_too_large",
            FramingError::MessageTooLarge { .. } => "message_too_large",
            FramingError::MissingContentLength => "missing_content_length",
            FramingError::NegativeContentLength => "negative_content_length",
            FramingError::InvalidContentLength => "invalid_content_length",
            FramingError::ConflictingContentLength => "conflicting_content_length",
        }
    }

    /// Every name [`FramingError::name`] can return, for pre-registering metrics.
    pub const NAMES: [&'static str; 6] = [
        "header_too_large",
        "message_too_large",
        "missing_content_length",
        "negative_content_length",
        "invalid_content_length",
        "conflicting_content_length",
    ];
}

/// Where the framer is in the stream. Offsets are relative to the start of the buffer,
/// which always begins at the current message (or between messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between messages: CRLF keep-alives may come, or the first byte of a start line.
    /// `after_lone_crlf` is set when the previous frame was a CRLF reported as a pong
    /// because the buffer ended right after it.
    BetweenMessages { after_lone_crlf: bool },
    /// Inside a header section; the first `scanned` bytes hold no `CRLFCRLF` that ends
    /// before `scanned`.
    Headers { scanned: usize },
    /// Header section parsed; the message is complete when `total` bytes are buffered.
    Body { total: usize },
    /// A framing error was reported; the stream is dead.
    Failed,
}

const CRLF: &[u8] = b"\r\n";
const BLANK_LINE: &[u8] = b"\r\n\r\n";

/// Splits a SIP byte stream into messages and keep-alives. See the [module docs](self).
#[derive(Debug)]
pub struct StreamFramer {
    limits: FramingLimits,
    buffer: BytesMut,
    state: State,
}

impl StreamFramer {
    /// A framer at the start of a stream.
    pub fn new(limits: FramingLimits) -> StreamFramer {
        StreamFramer {
            limits,
            buffer: BytesMut::new(),
            state: State::BetweenMessages {
                after_lone_crlf: false,
            },
        }
    }

    /// Appends bytes read from the stream. Ignored once the stream has failed.
    pub fn handle_data(&mut self, data: &[u8]) {
        if self.state != State::Failed {
            self.buffer.extend_from_slice(data);
        }
    }

    /// The next complete frame, an error (after which the stream is dead), or `None` when
    /// more data is needed.
    pub fn poll_frame(&mut self) -> Option<Result<Frame, FramingError>> {
        loop {
            match self.state {
                State::Failed => return None,
                State::BetweenMessages { after_lone_crlf } => {
                    match self.poll_between_messages(after_lone_crlf) {
                        Step::Emit(frame) => return Some(Ok(frame)),
                        Step::NeedData => return None,
                        Step::Continue => {}
                    }
                }
                State::Headers { scanned } => match self.poll_headers(scanned) {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(error) => return Some(Err(self.fail(error))),
                },
                State::Body { total } => {
                    if self.buffer.len() < total {
                        return None;
                    }
                    let message = self.buffer.split_to(total).freeze();
                    self.state = State::BetweenMessages {
                        after_lone_crlf: false,
                    };
                    return Some(Ok(Frame::Message(message)));
                }
            }
        }
    }

    /// True when part of a message (or of a keep-alive) is buffered: the driver uses it to
    /// time out a peer that starts a message and never finishes it.
    pub fn is_mid_message(&self) -> bool {
        match self.state {
            State::BetweenMessages { .. } => !self.buffer.is_empty(),
            State::Headers { .. } | State::Body { .. } => true,
            State::Failed => false,
        }
    }

    /// Bytes currently buffered.
    pub fn buffered_len(&self) -> usize {
        self.buffer.len()
    }

    fn fail(&mut self, error: FramingError) -> FramingError {
        self.state = State::Failed;
        self.buffer = BytesMut::new();
        error
    }

    fn poll_between_messages(&mut self, after_lone_crlf: bool) -> Step {
        let buffered = &self.buffer[..];
        let (consumed, frame, after_lone_crlf) = if after_lone_crlf && buffered.starts_with(CRLF) {
            // The second half of a ping whose first half was already reported as a pong.
            (CRLF.len(), Frame::KeepAlivePing, false)
        } else if buffered.starts_with(BLANK_LINE) {
            (BLANK_LINE.len(), Frame::KeepAlivePing, false)
        } else if buffered == b"\r\n\r" {
            return Step::NeedData;
        } else if buffered.starts_with(CRLF) {
            let ends_buffer = buffered.len() == CRLF.len();
            (CRLF.len(), Frame::KeepAlivePong, ends_buffer)
        } else if buffered.is_empty() || buffered == b"\r" {
            return Step::NeedData;
        } else {
            self.state = State::Headers { scanned: 0 };
            return Step::Continue;
        };
        let _ = self.buffer.split_to(consumed);
        self.state = State::BetweenMessages { after_lone_crlf };
        Step::Emit(frame)
    }

    /// Looks for the end of the header section. `Ok(true)`: moved to `Body`; `Ok(false)`:
    /// need more data.
    fn poll_headers(&mut self, scanned: usize) -> Result<bool, FramingError> {
        // A blank line straddling the old end starts at most three bytes before it.
        let from = scanned.saturating_sub(BLANK_LINE.len() - 1);
        let Some(found) = self
            .buffer
            .get(from..)
            .and_then(|rest| memmem::find(rest, BLANK_LINE))
        else {
            if self.buffer.len() > self.limits.max_header_bytes {
                return Err(FramingError::HeaderTooLarge {
                    limit: self.limits.max_header_bytes,
                });
            }
            self.state = State::Headers {
                scanned: self.buffer.len(),
            };
            return Ok(false);
        };
        let header_len = from + found + BLANK_LINE.len();
        if header_len > self.limits.max_header_bytes {
            return Err(FramingError::HeaderTooLarge {
                limit: self.limits.max_header_bytes,
            });
        }
        let body_len = content_length(&self.buffer[..header_len])?;
        let total = body_len.saturating_add(header_len as u64);
        if total > self.limits.max_message_bytes as u64 {
            return Err(FramingError::MessageTooLarge {
                size: total,
                limit: self.limits.max_message_bytes,
            });
        }
        // `total` ≤ max_message_bytes, a usize.
        let total = usize::try_from(total).unwrap_or(usize::MAX);
        self.buffer.reserve(total.saturating_sub(self.buffer.len()));
        self.state = State::Body { total };
        Ok(true)
    }
}

enum Step {
    Emit(Frame),
    NeedData,
    Continue,
}

/// The value of the `Content-Length` header(s) of a header section ending in CRLFCRLF.
fn content_length(header_section: &[u8]) -> Result<u64, FramingError> {
    let mut found: Option<u64> = None;
    for field in HeaderFields::new(header_section) {
        let Some((name, value)) = split_field(field) else {
            continue;
        };
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let length = parse_length(value)?;
        match found {
            Some(previous) if previous != length => {
                return Err(FramingError::ConflictingContentLength);
            }
            _ => found = Some(length),
        }
    }
    found.ok_or(FramingError::MissingContentLength)
}

/// Splits `name HCOLON value` (RFC 3261 §25.1: `HCOLON = *( SP / HTAB ) ":" SWS`).
fn split_field(field: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = memchr::memchr(b':', field)?;
    let name = trim_lws(&field[..colon]);
    Some((name, &field[colon + 1..]))
}

/// Parses a Content-Length value, surrounded by linear white space (folding included).
fn parse_length(value: &[u8]) -> Result<u64, FramingError> {
    let value = trim_lws(value);
    if value.first() == Some(&b'-') {
        return Err(FramingError::NegativeContentLength);
    }
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(FramingError::InvalidContentLength);
    }
    // Saturate: any value that does not fit is far over any message limit anyway.
    Ok(value.iter().fold(0u64, |length, digit| {
        length
            .saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    }))
}

fn is_lws(byte: &u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_lws(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !is_lws(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_lws(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Iterates over the header fields of a header section (skipping the start line), each
/// with its folded continuation lines (RFC 3261 §7.3.1) still attached.
struct HeaderFields<'a> {
    rest: &'a [u8],
}

impl<'a> HeaderFields<'a> {
    fn new(header_section: &'a [u8]) -> HeaderFields<'a> {
        let rest = match memmem::find(header_section, CRLF) {
            Some(end) => &header_section[end + CRLF.len()..],
            None => &[],
        };
        HeaderFields { rest }
    }
}

impl<'a> Iterator for HeaderFields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let mut end = 0;
        loop {
            let line_end = end + memmem::find(&self.rest[end..], CRLF)?;
            end = line_end + CRLF.len();
            // A line starting with SP/HT continues the field.
            if !matches!(self.rest.get(end), Some(b' ' | b'\t')) {
                break;
            }
        }
        let (field, rest) = self.rest.split_at(end);
        self.rest = rest;
        // The blank line that ends the section is not a field.
        let field = &field[..field.len() - CRLF.len()];
        if field.is_empty() { None } else { Some(field) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framer: &mut StreamFramer) -> Vec<Result<Frame, FramingError>> {
        std::iter::from_fn(|| framer.poll_frame()).collect()
    }

    #[test]
    fn content_length_is_found_in_folded_and_compact_forms() {
        let section = b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nCONTENT-length \t:\r\n  12\r\n\r\n";
        assert_eq!(content_length(section), Ok(12));
        assert_eq!(content_length(b"X\r\nL:3\r\n\r\n"), Ok(3));
        assert_eq!(
            content_length(b"X\r\nl: 3\r\nContent-Length: 03\r\n\r\n"),
            Ok(3)
        );
    }

    #[test]
    fn trailing_lone_cr_waits_for_more() {
        let mut framer = StreamFramer::new(FramingLimits::default());
        framer.handle_data(b"\r\n\r");
        assert_eq!(frames(&mut framer), vec![]);
        framer.handle_data(b"\n");
        assert_eq!(frames(&mut framer), vec![Ok(Frame::KeepAlivePing)]);
    }
}
