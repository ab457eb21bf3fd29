//! Codec operations on a media section: the `m=` formats and the `a=rtpmap`, `a=fmtp` and
//! `a=rtcp-fb` attributes that refer to them.

use super::attributes::{Fmtp, Rtpmap, TypedAttribute};
use super::error::AttributeError;
use super::model::{Attribute, Line, MediaDescription};

/// Attributes whose value starts with the format they describe.
const PER_FORMAT_ATTRIBUTES: [&str; 3] = ["rtpmap", "fmtp", "rtcp-fb"];

/// The format an `rtpmap`/`fmtp`/`rtcp-fb` value refers to (its first word).
fn format_of(attribute: &Attribute) -> Option<&[u8]> {
    let value = attribute.value.as_deref()?;
    value.split(|&b| b == b' ').next()
}

impl MediaDescription {
    /// The `a=rtpmap` of a payload type, decoded.
    pub fn rtpmap(&self, payload_type: u8) -> Option<Result<Rtpmap, AttributeError>> {
        let format = payload_type.to_string();
        self.format_attribute("rtpmap", &format)
            .map(Rtpmap::from_attribute)
    }

    /// The `a=fmtp` of a format, decoded.
    pub fn fmtp(&self, format: &str) -> Option<Result<Fmtp, AttributeError>> {
        self.format_attribute("fmtp", format)
            .map(Fmtp::from_attribute)
    }

    fn format_attribute(&self, name: &str, format: &str) -> Option<&Attribute> {
        self.lines
            .attributes()
            .find(|a| a.is(name) && format_of(a) == Some(format.as_bytes()))
    }

    /// The formats with their `a=rtpmap`, in `m=` order (`None` for a static payload type
    /// without one, or a non-RTP format).
    pub fn codecs(&self) -> impl Iterator<Item = (&str, Option<Result<Rtpmap, AttributeError>>)> {
        self.media.formats.iter().map(|format| {
            let rtpmap = self
                .format_attribute("rtpmap", format)
                .map(Rtpmap::from_attribute);
            (&**format, rtpmap)
        })
    }

    /// Keeps only the formats for which `keep` returns true, and removes the `rtpmap`,
    /// `fmtp` and `rtcp-fb` attributes of the others (`rtcp-fb:*` stays).
    pub fn retain_formats(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let mut removed: Vec<Box<str>> = Vec::new();
        self.media.formats.retain(|format| {
            let kept = keep(format);
            if !kept {
                removed.push(format.clone());
            }
            kept
        });
        let formats = &self.media.formats;
        self.lines.retain(|line| match line {
            Line::Attribute(a) if PER_FORMAT_ATTRIBUTES.contains(&&*a.name) => match format_of(a) {
                Some(b"*") | None => true,
                Some(format) => {
                    formats.iter().any(|f| f.as_bytes() == format)
                        || !removed.iter().any(|f| f.as_bytes() == format)
                }
            },
            _ => true,
        });
    }

    /// Appends a format to `m=`, with its `a=rtpmap` and `a=fmtp` after the section's
    /// last line.
    pub fn push_format(&mut self, format: &str, rtpmap: Option<&Rtpmap>, fmtp: Option<&Fmtp>) {
        self.media.formats.push(format.into());
        if let Some(rtpmap) = rtpmap {
            self.lines.push_attribute(rtpmap.to_attribute());
        }
        if let Some(fmtp) = fmtp {
            self.lines.push_attribute(fmtp.to_attribute());
        }
    }
}
