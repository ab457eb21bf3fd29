//! JSON as PASSporTs need it: parsed from bounded input, printed in the canonical form of
//! RFC 8225 §9 (members in lexicographic order of their keys, no whitespace, no line
//! breaks).
//!
//! The printer sorts keys itself rather than relying on how `serde_json` orders a map (a
//! cargo feature elsewhere in a build could switch that to insertion order), so the
//! signing input of a PASSporT is the same whatever else is linked in.

use std::fmt::Write as _;

use serde_json::Value;

/// Most bytes of one decoded JWS part (header or claims) accepted.
pub const MAX_JSON_BYTES: usize = 4_096;

/// Parses one JSON object. `None` when `bytes` is too long, not JSON, or not an object.
pub(crate) fn parse_object(bytes: &[u8]) -> Option<serde_json::Map<String, Value>> {
    if bytes.len() > MAX_JSON_BYTES {
        return None;
    }
    match serde_json::from_slice::<Value>(bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// `value` in canonical form (RFC 8225 §9).
pub fn canonical(value: &Value) -> String {
    let mut out = String::with_capacity(128);
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                if let Some(member) = map.get(key) {
                    write_canonical(member, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(text) => write_string(text, out),
        Value::Number(number) => {
            let _ = write!(out, "{number}");
        }
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Null => out.push_str("null"),
    }
}

/// A JSON string with the minimal escaping of RFC 8259 §7 (`"`, `\` and control
/// characters; `/` and non-ASCII characters as they are).
fn write_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn keys_are_sorted_and_nothing_is_spaced() {
        let value: Value = serde_json::from_str(
            r#"{ "orig": {"tn": "1"}, "dest": {"uri": ["sip:a@b/c"]}, "iat": 5 }"#,
        )
        .unwrap();
        assert_eq!(
            canonical(&value),
            r#"{"dest":{"uri":["sip:a@b/c"]},"iat":5,"orig":{"tn":"1"}}"#
        );
    }

    #[test]
    fn strings_are_escaped_minimally() {
        let value = Value::String("a\"b\\c\u{1}é/".into());
        assert_eq!(canonical(&value), "\"a\\\"b\\\\c\\u0001é/\"");
    }

    #[test]
    fn only_objects_of_bounded_size_parse() {
        assert!(parse_object(b"[1]").is_none());
        assert!(parse_object(b"{\"a\":").is_none());
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_JSON_BYTES));
        assert!(parse_object(long.as_bytes()).is_none());
        assert!(parse_object(b"{\"a\":1}").is_some());
    }
}
