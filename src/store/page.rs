//! Paging for every list: a bounded `limit`, then either an offset or an opaque cursor
//! handed out by the previous page (stable under concurrent inserts, unlike offsets).

use super::error::{StoreError, StoreResult};

/// The most rows one page may hold, whatever the caller asks for.
pub const MAX_PAGE_LIMIT: u32 = 1_000;
/// The page size when the caller asks for 0.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PageStart {
    /// From the first row.
    #[default]
    First,
    /// Skip this many rows.
    Offset(u64),
    /// After the row the cursor names (from [`Page::next_cursor`]).
    After(String),
}

/// Which page of a list to return.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageRequest {
    /// Rows wanted; 0 means [`DEFAULT_PAGE_LIMIT`], more than [`MAX_PAGE_LIMIT`] is capped.
    pub limit: u32,
    /// Where to start.
    pub start: PageStart,
}

impl PageRequest {
    /// The first `limit` rows.
    pub fn first(limit: u32) -> Self {
        PageRequest {
            limit,
            start: PageStart::First,
        }
    }

    /// `limit` rows after skipping `offset`.
    pub fn offset(offset: u64, limit: u32) -> Self {
        PageRequest {
            limit,
            start: PageStart::Offset(offset),
        }
    }

    /// `limit` rows after the row `cursor` names.
    pub fn after(cursor: impl Into<String>, limit: u32) -> Self {
        PageRequest {
            limit,
            start: PageStart::After(cursor.into()),
        }
    }

    /// The limit actually applied: within 1..=[`MAX_PAGE_LIMIT`].
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => DEFAULT_PAGE_LIMIT,
            n => n.min(MAX_PAGE_LIMIT),
        }
    }

    pub(crate) fn sql_offset(&self) -> i64 {
        match self.start {
            PageStart::Offset(n) => i64::try_from(n).unwrap_or(i64::MAX),
            _ => 0,
        }
    }

    pub(crate) fn cursor(&self) -> Option<&str> {
        match &self.start {
            PageStart::After(cursor) => Some(cursor),
            _ => None,
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The rows, in the list's stable order.
    pub items: Vec<T>,
    /// Pass this as [`PageStart::After`] for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` fetched rows: the extra row only tells that
    /// there is a next page.
    pub(crate) fn from_rows(
        mut rows: Vec<T>,
        limit: u32,
        cursor_of: impl Fn(&T) -> String,
    ) -> Self {
        let limit = limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(cursor_of)
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

/// Encodes key parts as a cursor: each part hex-encoded, joined by `.` (URL-safe).
pub(crate) fn encode_cursor(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|part| hex(part.as_bytes()))
        .collect::<Vec<_>>()
        .join(".")
}

/// Decodes a cursor made by [`encode_cursor`] with exactly `n` parts.
pub(crate) fn decode_cursor(cursor: &str, n: usize) -> StoreResult<Vec<String>> {
    let bad = || StoreError::invalid("cursor", "not a cursor this list handed out");
    if cursor.len() > 4096 {
        return Err(bad());
    }
    let parts = cursor
        .split('.')
        .map(|part| {
            let bytes = unhex(part).ok_or_else(bad)?;
            String::from_utf8(bytes).map_err(|_| bad())
        })
        .collect::<StoreResult<Vec<_>>>()?;
    if parts.len() == n {
        Ok(parts)
    } else {
        Err(bad())
    }
}

/// Decodes an integer cursor (sequence numbers, row ids).
pub(crate) fn decode_int_cursor(cursor: &str) -> StoreResult<i64> {
    cursor
        .parse()
        .map_err(|_| StoreError::invalid("cursor", "not a cursor this list handed out"))
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Decodes hex (either case); `None` if malformed.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_capped_and_defaulted() {
        assert_eq!(PageRequest::first(0).effective_limit(), DEFAULT_PAGE_LIMIT);
        assert_eq!(PageRequest::first(5).effective_limit(), 5);
        assert_eq!(
            PageRequest::first(1_000_000).effective_limit(),
            MAX_PAGE_LIMIT
        );
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = encode_cursor(&["a.b", "ü"]);
        assert_eq!(
            decode_cursor(&cursor, 2).ok(),
            Some(vec!["a.b".into(), "ü".into()])
        );
        assert!(decode_cursor(&cursor, 1).is_err());
        assert!(decode_cursor("zz", 1).is_err());
        assert!(decode_cursor("abc", 1).is_err());
        assert!(decode_int_cursor("x").is_err());
    }

    #[test]
    fn page_reports_a_next_cursor_only_when_more_rows_exist() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let last = Page::from_rows(vec![1, 2], 2, |n| n.to_string());
        assert_eq!(last.next_cursor, None);
    }
}
