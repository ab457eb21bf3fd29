//! The SDP parser (RFC 8866 §5, §9): strict about the lines the model is built on, lenient
//! and lossless about everything else, bounded in size and line count.

use bytes::Bytes;

use super::address::NetAddress;
use super::error::SdpError;
use super::lines::Lines;
use super::model::SessionDescription;
use super::model::{Attribute, Connection, Line, Media, MediaDescription, Origin};
use super::syntax::{fields, is_digits, is_token, parse_decimal, sub_bytes, token_string};

/// Bounds on the work and memory one description may cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes in the whole description.
    pub max_size: usize,
    /// Lines in the whole description.
    pub max_lines: usize,
    /// `m=` sections.
    pub max_media: usize,
    /// Bytes in one line, without its line end.
    pub max_line_length: usize,
}

impl Limits {
    /// 64 KiB, 2048 lines, 128 media sections, 4 KiB per line: several times what a
    /// large WebRTC offer (many candidates, simulcast, BUNDLE) needs.
    pub const DEFAULT: Limits = Limits {
        max_size: 64 * 1024,
        max_lines: 2048,
        max_media: 128,
        max_line_length: 4096,
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

impl SessionDescription {
    /// Parses a description with [`Limits::DEFAULT`]. The input is copied once; every
    /// raw value then shares that copy.
    pub fn parse(input: &[u8]) -> Result<SessionDescription, SdpError> {
        if input.len() > Limits::DEFAULT.max_size {
            return Err(SdpError::TooLarge {
                size: input.len(),
                max: Limits::DEFAULT.max_size,
            });
        }
        SessionDescription::parse_bytes(Bytes::copy_from_slice(input), &Limits::DEFAULT)
    }

    /// Parses a description without copying it (raw values are slices of `input`).
    ///
    /// Lines may end in CRLF or a bare LF (RFC 8866 §5); the printer always writes CRLF.
    pub fn parse_bytes(input: Bytes, limits: &Limits) -> Result<SessionDescription, SdpError> {
        if input.len() > limits.max_size {
            return Err(SdpError::TooLarge {
                size: input.len(),
                max: limits.max_size,
            });
        }
        let mut lines = SplitLines::new(input, limits);
        let (number, version) = lines
            .next_line()?
            .ok_or(SdpError::MissingVersion { line: 1 })?;
        match version.strip_prefix(b"v=") {
            Some(b"0") => {}
            Some(_) => return Err(SdpError::BadVersion { line: number }),
            None => return Err(SdpError::MissingVersion { line: number }),
        }
        let (number, origin) = lines
            .next_line()?
            .ok_or(SdpError::MissingOrigin { line: 2 })?;
        if !origin.starts_with(b"o=") {
            return Err(SdpError::MissingOrigin { line: number });
        }
        let origin = parse_origin(&origin.slice(2..)).map_err(|reason| SdpError::BadOrigin {
            line: number,
            reason,
        })?;
        let (number, name) = lines
            .next_line()?
            .ok_or(SdpError::MissingSessionName { line: 3 })?;
        if !name.starts_with(b"s=") {
            return Err(SdpError::MissingSessionName { line: number });
        }
        let mut description = SessionDescription {
            origin,
            session_name: name.slice(2..),
            lines: Lines::new(),
            media: Vec::new(),
        };
        while let Some((number, line)) = lines.next_line()? {
            match line.get(..2) {
                Some(b"v=" | b"o=" | b"s=") => {
                    return Err(SdpError::MisplacedLine { line: number });
                }
                Some(b"m=") => {
                    if description.media.len() >= limits.max_media {
                        return Err(SdpError::TooManyMedia {
                            line: number,
                            max: limits.max_media,
                        });
                    }
                    let media = parse_media(&line.slice(2..), number)?;
                    description.media.push(MediaDescription::new(media));
                }
                _ => {
                    let line = parse_line(line, number)?;
                    match description.media.last_mut() {
                        Some(media) => media.lines.push(line),
                        None => description.lines.push(line),
                    }
                }
            }
        }
        Ok(description)
    }
}

/// Splits the input into lines ending in LF (an optional CR before it is dropped),
/// counting them and enforcing the per-line limits.
struct SplitLines<'l> {
    rest: Bytes,
    number: usize,
    limits: &'l Limits,
}

impl<'l> SplitLines<'l> {
    fn new(input: Bytes, limits: &'l Limits) -> SplitLines<'l> {
        SplitLines {
            rest: input,
            number: 0,
            limits,
        }
    }

    fn next_line(&mut self) -> Result<Option<(usize, Bytes)>, SdpError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        self.number += 1;
        if self.number > self.limits.max_lines {
            return Err(SdpError::TooManyLines {
                max: self.limits.max_lines,
            });
        }
        let mut line = match memchr::memchr(b'\n', &self.rest) {
            Some(lf) => {
                let line = self.rest.split_to(lf + 1);
                line.slice(..lf)
            }
            None => std::mem::take(&mut self.rest),
        };
        if line.ends_with(b"\r") {
            line.truncate(line.len() - 1);
        }
        if line.len() > self.limits.max_line_length {
            return Err(SdpError::LineTooLong {
                line: self.number,
                max: self.limits.max_line_length,
            });
        }
        Ok(Some((self.number, line)))
    }
}

/// `<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
fn parse_origin(value: &Bytes) -> Result<Origin, &'static str> {
    let mut parts = fields(value);
    let (Some(username), Some(id), Some(version), Some(net), Some(addr), Some(address), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err("expected six fields");
    };
    if !is_digits(id) {
        return Err("session id is not digits");
    }
    if !is_digits(version) {
        return Err("session version is not digits");
    }
    Ok(Origin {
        username: sub_bytes(value, username),
        session_id: sub_bytes(value, id),
        session_version: sub_bytes(value, version),
        address: NetAddress::parse(net, addr, sub_bytes(value, address))?,
    })
}

/// `<nettype> <addrtype> <connection-address>`, where the address may carry a multicast
/// `/ttl[/count]` suffix.
fn parse_connection(value: &Bytes) -> Result<Connection, &'static str> {
    let mut parts = fields(value);
    let (Some(net), Some(addr), Some(address), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("expected three fields");
    };
    let (address, multicast) = match address.iter().position(|&b| b == b'/') {
        Some(slash) => (&address[..slash], Some(&address[slash + 1..])),
        None => (address, None),
    };
    if let Some(suffix) = multicast {
        let mut numbers = suffix.split(|&b| b == b'/');
        let valid = numbers.next().is_some_and(is_digits)
            && numbers.next().is_none_or(is_digits)
            && numbers.next().is_none();
        if !valid {
            return Err("multicast suffix is not /ttl[/count]");
        }
    }
    Ok(Connection {
        address: NetAddress::parse(net, addr, sub_bytes(value, address))?,
        multicast: multicast.map(|suffix| sub_bytes(value, suffix)),
    })
}

/// `<media> <port>[/<number of ports>] <proto> *(<fmt>)`. A line without formats is
/// accepted (some peers reject a stream that way).
fn parse_media(value: &Bytes, line: usize) -> Result<Media, SdpError> {
    let bad = |reason| SdpError::BadMediaLine { line, reason };
    let mut parts = fields(value);
    let (Some(kind), Some(port), Some(protocol)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected <media> <port> <proto> <fmt> ..."));
    };
    if !is_token(kind) {
        return Err(bad("media type is not a token"));
    }
    let (port, port_count) = match port.iter().position(|&b| b == b'/') {
        Some(slash) => (&port[..slash], Some(&port[slash + 1..])),
        None => (port, None),
    };
    let number = |digits: &[u8]| -> Result<u64, SdpError> {
        if !is_digits(digits) {
            return Err(bad("port is not a number"));
        }
        parse_decimal::<u64>(digits).ok_or(SdpError::BadPort { line })
    };
    let port = u16::try_from(number(port)?).map_err(|_| SdpError::BadPort { line })?;
    let port_count = match port_count {
        Some(count) => Some(
            u16::try_from(number(count)?)
                .ok()
                .filter(|count| *count >= 1)
                .ok_or(SdpError::BadPort { line })?,
        ),
        None => None,
    };
    if !protocol.split(|&b| b == b'/').all(is_token) {
        return Err(bad("protocol is not token/token..."));
    }
    let formats = parts
        .map(|fmt| {
            if is_token(fmt) {
                Ok(token_string(fmt))
            } else {
                Err(bad("format is not a token"))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Media {
        kind: token_string(kind),
        port,
        port_count,
        protocol: token_string(protocol),
        formats,
    })
}

/// A line after `s=` that is not `m=`: `c=` is decoded (and must be well-formed), `a=` is
/// split into name and value, anything else is kept whole.
fn parse_line(line: Bytes, number: usize) -> Result<Line, SdpError> {
    match line.get(..2) {
        Some(b"c=") => parse_connection(&line.slice(2..))
            .map(Line::Connection)
            .map_err(|reason| SdpError::BadConnection {
                line: number,
                reason,
            }),
        Some(b"a=") => {
            let rest = line.slice(2..);
            let (name, value) = match rest.iter().position(|&b| b == b':') {
                Some(colon) => (rest.slice(..colon), Some(rest.slice(colon + 1..))),
                None => (rest.clone(), None),
            };
            if is_token(&name) {
                Ok(Line::Attribute(Attribute {
                    name: token_string(&name),
                    value,
                }))
            } else {
                Ok(Line::Other(line))
            }
        }
        _ => Ok(Line::Other(line)),
    }
}
