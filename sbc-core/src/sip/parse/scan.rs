//! Byte classes and small scanning helpers shared by the decoders (RFC 3261 §25.1).
//!
//! Every helper works on a byte slice and positions into it and never indexes past the
//! end: positions are checked with `get`, so no input can make them panic.

/// The marker error of the grammar helpers: the caller knows which header it was decoding
/// and turns this into the right [`super::ParseError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Invalid;

pub(crate) type Scan<T> = Result<T, Invalid>;

/// `(start, end)` positions of a checked part of the input.
pub(crate) type Span = (usize, usize);

const fn class(extra: &[u8], alphanumeric: bool) -> [bool; 256] {
    let mut table = [false; 256];
    if alphanumeric {
        let mut b = 0usize;
        while b < 256 {
            let c = b as u8;
            table[b] = c.is_ascii_alphanumeric();
            b += 1;
        }
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

/// `token` (RFC 3261 §25.1).
pub(crate) static TOKEN: [bool; 256] = class(b"-.!%*_+`'~", true);
/// `user` of a SIP URI: unreserved and user-unreserved (escapes: [`span_escaped`]).
pub(crate) static USER: [bool; 256] = class(b"-_.!~*'()&=+$,;?/", true);
/// `password` of a SIP URI.
pub(crate) static PASSWORD: [bool; 256] = class(b"-_.!~*'()&=+$,", true);
/// `paramchar` of a URI parameter name or value.
pub(crate) static PARAM: [bool; 256] = class(b"-_.!~*'()[]/:&+$", true);
/// `hname` / `hvalue` characters of URI headers, plus their `=` and `&` separators.
pub(crate) static URI_HEADERS: [bool; 256] = class(b"-_.!~*'()[]/?:+$=&", true);
/// `uric` of an absolute URI of another scheme.
pub(crate) static URIC: [bool; 256] = class(b"-_.!~*'();/?:@&=+$,%#[]", true);
/// `scheme` of a URI (the first character, a letter, is checked apart).
pub(crate) static SCHEME: [bool; 256] = class(b"+-.", true);
/// `word` of a Call-ID.
pub(crate) static WORD: [bool; 256] = class(b"-.!%*_+`'~()<>:\\\"/[]?{}", true);
/// Host names: labels of alphanumerics, `-` and `_` separated by dots.
pub(crate) static HOST_NAME: [bool; 256] = class(b"-._", true);
/// `gen-value` when it is not a quoted string: a token or a host (IPv6 references with or
/// without brackets, RFC 5118 §4.5).
pub(crate) static GEN_VALUE: [bool; 256] = class(b"-.!%*_+`'~:[]", true);
/// Token characters and whitespace: a display name that is not quoted.
pub(crate) static TOKEN_OR_SPACE: [bool; 256] = class(b"-.!%*_+`'~ \t", true);
/// Anything an addr-spec URI may hold before its header parameters: not `;`, `,`, `?`
/// (a URI holding one of those must be in `<>`, RFC 3261 §20.10), whitespace or
/// controls.
pub(crate) static ADDR_SPEC: [bool; 256] = class(b"-_.!~*'()&=+$/:@[]%#", true);
/// Characters of a `tel:` number: digits, hex digits, `*#+` and visual separators.
pub(crate) static TEL_NUMBER: [bool; 256] = class(b"*#+-.()", true);

pub(crate) fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The first position at or after `pos` whose byte is not in `set`.
pub(crate) fn span(input: &[u8], mut pos: usize, set: &[bool; 256]) -> usize {
    let inside = |b: u8| set[usize::from(b)];
    // Four bytes per bounds check: this loop is most of the parser's time.
    while let Some(&[a, b, c, d]) = input.get(pos..pos + 4) {
        if !inside(a) {
            return pos;
        }
        if !inside(b) {
            return pos + 1;
        }
        if !inside(c) {
            return pos + 2;
        }
        if !inside(d) {
            return pos + 3;
        }
        pos += 4;
    }
    while let Some(&b) = input.get(pos) {
        if !inside(b) {
            break;
        }
        pos += 1;
    }
    pos
}

/// Like [`span`] over `set` plus `%HH` escapes: a `%` not followed by two hex digits is
/// an error. (`set` itself must not contain `%`.)
pub(crate) fn span_escaped(input: &[u8], mut pos: usize, set: &[bool; 256]) -> Scan<usize> {
    loop {
        pos = span(input, pos, set);
        if at(input, pos) != Some(b'%') {
            return Ok(pos);
        }
        let hex = |i: usize| input.get(i).is_some_and(u8::is_ascii_hexdigit);
        if !(hex(pos + 1) && hex(pos + 2)) {
            return Err(Invalid);
        }
        pos += 3;
    }
}

/// Skips spaces and tabs. Header values have their folding already replaced by a space,
/// so this is `LWS`/`SWS` of the grammar.
pub(crate) fn skip_ws(input: &[u8], mut pos: usize) -> usize {
    while input.get(pos).copied().is_some_and(is_wsp) {
        pos += 1;
    }
    pos
}

/// The end of a run of whitespace that ends at `end`, walking back.
pub(crate) fn trim_end(input: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && input.get(end - 1).copied().is_some_and(is_wsp) {
        end -= 1;
    }
    end
}

/// The byte at `pos`, if any.
pub(crate) fn at(input: &[u8], pos: usize) -> Option<u8> {
    input.get(pos).copied()
}

/// Expects `byte` at `pos` and returns the position after it.
pub(crate) fn expect(input: &[u8], pos: usize, byte: u8) -> Scan<usize> {
    if at(input, pos) == Some(byte) {
        Ok(pos + 1)
    } else {
        Err(Invalid)
    }
}

/// A non-empty run of `set` bytes at `pos`: returns its end.
pub(crate) fn span1(input: &[u8], pos: usize, set: &[bool; 256]) -> Scan<usize> {
    let end = span(input, pos, set);
    if end == pos { Err(Invalid) } else { Ok(end) }
}

/// A `quoted-string` starting at `pos` (which must hold `"`): returns the position after
/// the closing quote. `quoted-pair` may escape any ASCII byte but CR and LF; `qdtext` is
/// whitespace, printable ASCII but `"` and `\`, and bytes from 0x80 up (RFC 3261 §25.1;
/// UTF-8 is not re-validated here). Other control bytes, NUL among them, must be escaped.
pub(crate) fn quoted_string(input: &[u8], pos: usize) -> Scan<usize> {
    let mut i = expect(input, pos, b'"')?;
    loop {
        match at(input, i) {
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => match at(input, i + 1) {
                Some(b) if b.is_ascii() && b != b'\r' && b != b'\n' => i += 2,
                _ => return Err(Invalid),
            },
            Some(b) if b == b'\t' || (b >= 0x20 && b != 0x7f) => i += 1,
            _ => return Err(Invalid),
        }
    }
}

/// A decimal number of one or more digits at `pos` that is at most `max`. Leading zeros
/// are allowed (RFC 4475 §3.1.1.1). Returns the value and the position after it.
pub(crate) fn number(input: &[u8], pos: usize, max: u64) -> Scan<(u64, usize)> {
    let end = span(input, pos, &DIGIT);
    if end == pos {
        return Err(Invalid);
    }
    let mut value: u64 = 0;
    for &d in input.get(pos..end).unwrap_or_default() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .filter(|v| *v <= max)
            .ok_or(Invalid)?;
    }
    Ok((value, end))
}

static DIGIT: [bool; 256] = class(b"0123456789", false);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_bounded() {
        assert_eq!(number(b"0009 x", 0, 10), Ok((9, 4)));
        assert_eq!(number(b"4294967296", 0, u64::from(u32::MAX)), Err(Invalid));
        assert_eq!(
            number(b"99999999999999999999999", 0, u64::MAX),
            Err(Invalid)
        );
        assert_eq!(number(b"x", 0, 10), Err(Invalid));
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(quoted_string(br#""a\"b" x"#, 0), Ok(6));
        assert_eq!(quoted_string(br#""abc"#, 0), Err(Invalid));
        assert_eq!(quoted_string(b"\"a\\", 0), Err(Invalid));
        assert_eq!(quoted_string(b"\"\\\0\t\xc3\xa9\\\x7f\"", 0), Ok(9));
        for bad in [
            &b"\"\0\""[..],
            b"\"\x01\"",
            b"\"\x7f\"",
            b"\"\\\xc3\"",
            b"\"\\\r\"",
        ] {
            assert_eq!(quoted_string(bad, 0), Err(Invalid), "{bad:?}");
        }
    }
}
