//! Who a request says is calling and being called, in the form PASSporT claims compare
//! with: telephone numbers canonicalised as RFC 8224 §8.3 says (visual separators and the
//! leading `+` removed, only digits, `#` and `*` left), or URIs.

use bytes::Bytes;

use crate::sip::{HeaderName, Headers, NameAddr, Request, Uri};

use super::passport::Party;

/// Most digits of a canonical number (E.164 allows 15; a few more tolerate prefixes).
const MAX_TN_DIGITS: usize = 20;

/// The canonical form of a telephone number, or `None` when `raw` is not one.
pub fn canonical_tn(raw: &[u8]) -> Option<String> {
    let raw = raw.strip_prefix(b"+").unwrap_or(raw);
    let mut out = String::with_capacity(raw.len());
    for &byte in raw {
        match byte {
            b'0'..=b'9' | b'#' | b'*' => out.push(char::from(byte)),
            // RFC 3966 visual separators.
            b'-' | b'.' | b'(' | b')' => {}
            _ => return None,
        }
    }
    (!out.is_empty() && out.len() <= MAX_TN_DIGITS).then_some(out)
}

/// The party a URI names: the number of a `tel:` URI, or of a SIP URI whose user part is
/// a number (with or without `user=phone`); else the URI as `sip:user@host` (lower-case
/// host, no parameters).
pub fn party_of_uri(uri: &Uri) -> Option<Party> {
    match uri {
        Uri::Tel(tel) => canonical_tn(number_part(&tel.number)).map(Party::Tn),
        Uri::Sip(sip) => {
            let user = sip.user.as_ref()?;
            let unescaped = crate::sip::unescape(user);
            if let Some(tn) = canonical_tn(number_part(&unescaped)) {
                return Some(Party::Tn(tn));
            }
            let host = sip.host.host.to_string().to_ascii_lowercase();
            let user = String::from_utf8_lossy(user);
            Some(Party::Uri(format!("sip:{user}@{host}")))
        }
        Uri::Other { .. } => None,
    }
}

/// A user part up to its first `;` (RFC 3966 parameters written in a SIP user part, such
/// as `;npdi` or `;rn=`).
fn number_part(user: &[u8]) -> &[u8] {
    user.split(|&b| b == b';').next().unwrap_or(user)
}

/// The URI form of a claim, normalised like [`party_of_uri`], for comparison.
pub fn normalise_claimed_uri(claimed: &str) -> Option<Party> {
    let uri = Uri::parse(claimed.as_bytes()).ok()?;
    party_of_uri(&uri)
}

/// The caller as the network asserts it: the first P-Asserted-Identity value that names a
/// number (RFC 3325; a `tel:` one is preferred), else the first one, else From. The
/// B2BUA only keeps PAI from peers it trusts, and verification runs on what it kept.
pub fn caller(headers: &Headers) -> Option<Party> {
    let asserted: Vec<Party> = asserted_identities(headers)
        .iter()
        .filter_map(|name_addr| party_of_uri(&name_addr.uri))
        .collect();
    if let Some(tn) = asserted.iter().find(|party| matches!(party, Party::Tn(_))) {
        return Some(tn.clone());
    }
    if let Some(first) = asserted.into_iter().next() {
        return Some(first);
    }
    headers.from().ok().and_then(|from| party_of_uri(&from.uri))
}

/// The called party: To, then the Request-URI (either may match `dest`).
pub fn callees(request: &Request) -> Vec<Party> {
    let mut parties = Vec::with_capacity(2);
    if let Some(party) = request
        .headers
        .to()
        .ok()
        .and_then(|to| party_of_uri(&to.uri))
    {
        parties.push(party);
    }
    if let Some(party) = party_of_uri(&request.uri)
        && !parties.contains(&party)
    {
        parties.push(party);
    }
    parties
}

/// Every P-Asserted-Identity value (lines and comma-separated values), at most four;
/// values that do not parse are skipped.
pub fn asserted_identities(headers: &Headers) -> Vec<NameAddr> {
    let mut out = Vec::new();
    for line in headers.get_all(&HeaderName::PAssertedIdentity) {
        for value in split_list(line) {
            if out.len() == 4 {
                return out;
            }
            if let Ok(name_addr) = NameAddr::decode(&value) {
                out.push(name_addr);
            }
        }
    }
    out
}

/// The values of a name-addr list header line, split at commas outside quotes and `<…>`.
pub(crate) fn split_list(line: &Bytes) -> Vec<Bytes> {
    let mut values = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_brackets = false;
    let mut escaped = false;
    for (index, &byte) in line.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match byte {
            b'\\' if in_quotes => escaped = true,
            b'"' if !in_brackets => in_quotes = !in_quotes,
            b'<' if !in_quotes => in_brackets = true,
            b'>' if !in_quotes => in_brackets = false,
            b',' if !in_quotes && !in_brackets => {
                values.push(trim(line.slice(start..index)));
                start = index + 1;
            }
            _ => {}
        }
    }
    values.push(trim(line.slice(start..)));
    values.retain(|value| !value.is_empty());
    values
}

fn trim(value: Bytes) -> Bytes {
    let start = value
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |end| end + 1);
    value.slice(start..end.max(start))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn uri(text: &str) -> Uri {
        Uri::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn numbers_are_canonicalised() {
        assert_eq!(canonical_tn(b"+1 (215)"), None);
        assert_eq!(
            canonical_tn(b"+1-215-555-1212").as_deref(),
            Some("12155551212")
        );
        assert_eq!(canonical_tn(b"(215).555"), Some("215555".into()));
        assert_eq!(canonical_tn(b"*67#"), Some("*67#".into()));
        assert_eq!(canonical_tn(b"Bob"), None);
        assert_eq!(canonical_tn(b"+"), None);
        assert_eq!(canonical_tn(b"++4"), None);
    }

    #[test]
    fn uris_name_numbers_or_themselves() {
        let tn = |s: &str| Some(Party::Tn(s.into()));
        assert_eq!(party_of_uri(&uri("tel:+1-215-555-1212")), tn("12155551212"));
        assert_eq!(
            party_of_uri(&uri("sip:+12155551212@EX.com;user=phone")),
            tn("12155551212")
        );
        assert_eq!(
            party_of_uri(&uri("sip:12155551212;npdi@ex.com")),
            tn("12155551212")
        );
        assert_eq!(
            party_of_uri(&uri("sip:alice@Example.COM;transport=tcp")),
            Some(Party::Uri("sip:alice@example.com".into()))
        );
        assert_eq!(
            normalise_claimed_uri("sip:alice@example.com"),
            Some(Party::Uri("sip:alice@example.com".into()))
        );
    }

    #[test]
    fn the_caller_is_pai_first_then_from() {
        let mut headers = Headers::new();
        headers.push(HeaderName::From, "<sip:anonymous@anonymous.invalid>;tag=1");
        assert_eq!(
            caller(&headers),
            Some(Party::Uri("sip:anonymous@anonymous.invalid".into()))
        );
        headers.push(
            HeaderName::PAssertedIdentity,
            "\"A, B\" <sip:alice@ex.com>, <tel:+33123456789>",
        );
        assert_eq!(caller(&headers), Some(Party::Tn("33123456789".into())));
        assert_eq!(asserted_identities(&headers).len(), 2);
    }
}
