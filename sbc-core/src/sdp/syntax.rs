//! Small lexical helpers shared by the line parser and the typed attribute views.

use bytes::Bytes;

/// `token-char` of RFC 8866 §9.
pub(crate) fn is_token_char(b: u8) -> bool {
    matches!(b,
        b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'0'..=b'9' | b'A'..=b'Z'
        | b'^'..=b'~')
}

/// A non-empty run of `token-char`.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token_char(b))
}

/// A non-empty run of ASCII digits.
pub(crate) fn is_digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

/// The fields of `s` separated by runs of spaces (leading and trailing spaces ignored).
/// RFC 8866 asks for exactly one space; runs are accepted so that a sloppy peer is not
/// refused, and the printer writes one space.
pub(crate) fn fields(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&b| b == b' ').filter(|f| !f.is_empty())
}

/// Parses a decimal number made only of digits (no sign, no spaces), without overflow.
pub(crate) fn parse_decimal<T: TryFrom<u64>>(s: &[u8]) -> Option<T> {
    if !is_digits(s) || s.len() > 20 {
        return None;
    }
    let mut value: u64 = 0;
    for &b in s {
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    T::try_from(value).ok()
}

/// A token as an owned string (tokens are ASCII, so nothing is lost).
pub(crate) fn token_string(s: &[u8]) -> Box<str> {
    String::from_utf8_lossy(s).into()
}

/// A copy of `part` sharing `whole`'s buffer when `part` lies inside it.
pub(crate) fn sub_bytes(whole: &Bytes, part: &[u8]) -> Bytes {
    let start = whole.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    if at >= start && at + part.len() <= start + whole.len() && !part.is_empty() {
        whole.slice_ref(part)
    } else {
        Bytes::copy_from_slice(part)
    }
}
