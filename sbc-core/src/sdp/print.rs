//! The SDP printer: every line ends in CRLF (RFC 8866 §5). Raw lines are written as
//! received, typed lines (`o=`, `c=`, `m=`) with one space between fields.

use bytes::Bytes;

use super::attributes::write_net_address;
use super::model::{Connection, Line, Media, Origin, SessionDescription};

impl SessionDescription {
    /// The description on the wire.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.estimated_len());
        self.write_to(&mut out);
        Bytes::from(out)
    }

    /// Appends the description to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"v=0\r\n");
        write_origin(&self.origin, out);
        out.extend_from_slice(b"s=");
        out.extend_from_slice(&self.session_name);
        out.extend_from_slice(b"\r\n");
        for line in &self.lines {
            write_line(line, out);
        }
        for media in &self.media {
            write_media(&media.media, out);
            for line in &media.lines {
                write_line(line, out);
            }
        }
    }

    fn estimated_len(&self) -> usize {
        let lines = self.lines.len() + self.media.iter().map(|m| m.lines.len() + 1).sum::<usize>();
        64 + self.session_name.len() + 48 * lines
    }
}

fn write_origin(origin: &Origin, out: &mut Vec<u8>) {
    out.extend_from_slice(b"o=");
    for field in [
        &origin.username,
        &origin.session_id,
        &origin.session_version,
    ] {
        out.extend_from_slice(field);
        out.push(b' ');
    }
    write_net_address(&origin.address, out);
    out.extend_from_slice(b"\r\n");
}

fn write_connection(connection: &Connection, out: &mut Vec<u8>) {
    out.extend_from_slice(b"c=");
    write_net_address(&connection.address, out);
    if let Some(suffix) = &connection.multicast {
        out.push(b'/');
        out.extend_from_slice(suffix);
    }
    out.extend_from_slice(b"\r\n");
}

fn write_media(media: &Media, out: &mut Vec<u8>) {
    out.extend_from_slice(b"m=");
    out.extend_from_slice(media.kind.as_bytes());
    out.push(b' ');
    out.extend_from_slice(media.port.to_string().as_bytes());
    if let Some(count) = media.port_count {
        out.push(b'/');
        out.extend_from_slice(count.to_string().as_bytes());
    }
    out.push(b' ');
    out.extend_from_slice(media.protocol.as_bytes());
    for format in &media.formats {
        out.push(b' ');
        out.extend_from_slice(format.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

fn write_line(line: &Line, out: &mut Vec<u8>) {
    match line {
        Line::Connection(connection) => return write_connection(connection, out),
        Line::Attribute(attribute) => {
            out.extend_from_slice(b"a=");
            out.extend_from_slice(attribute.name.as_bytes());
            if let Some(value) = &attribute.value {
                out.push(b':');
                out.extend_from_slice(value);
            }
        }
        Line::Other(raw) => out.extend_from_slice(raw),
    }
    out.extend_from_slice(b"\r\n");
}
