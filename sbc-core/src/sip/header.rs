//! Header names and the ordered, raw header list.

use std::fmt;
use std::hash::{Hash, Hasher};

use bytes::Bytes;

macro_rules! header_names {
    ($( $variant:ident => $canonical:literal $(, compact $compact:literal)? ;)*) => {
        /// A header field name. Known names are decoded case-insensitively, including their
        /// compact forms (RFC 3261 §7.3.3); any other name is kept as received and compared
        /// case-insensitively.
        #[derive(Clone, Debug)]
        pub enum HeaderName {
            $( $variant, )*
            Other(Box<str>),
        }

        impl HeaderName {
            /// The canonical (long) spelling, used when printing.
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$variant => $canonical, )*
                    HeaderName::Other(name) => name,
                }
            }

            /// The canonical spelling of a known name: of the variant, or of the known
            /// name an `Other` spells (long or compact form, any case).
            fn known_str(&self) -> Option<&'static str> {
                match self {
                    $( HeaderName::$variant => Some($canonical), )*
                    HeaderName::Other(name) => match HeaderName::decode_known(name.as_bytes()) {
                        $( Some(HeaderName::$variant) => Some($canonical), )*
                        _ => None,
                    },
                }
            }

            /// The compact form, if the name has one.
            pub fn compact(&self) -> Option<char> {
                match self {
                    $( $( HeaderName::$variant => Some($compact), )? )*
                    _ => None,
                }
            }

            /// Decodes a header name (long or compact form, any case). The caller has
            /// checked that `name` is a non-empty token.
            pub fn from_bytes(name: &[u8]) -> HeaderName {
                HeaderName::decode_known(name)
                    .unwrap_or_else(|| HeaderName::Other(String::from_utf8_lossy(name).into()))
            }

            /// The known name spelled `name` (long or compact form, any case), if any.
            fn decode_known(name: &[u8]) -> Option<HeaderName> {
                if let [single] = name {
                    match char::from(single.to_ascii_lowercase()) {
                        $( $( $compact => return Some(HeaderName::$variant), )? )*
                        _ => {}
                    }
                }
                known_by_length(name)
            }

            /// Every known name (for tests).
            #[cfg(test)]
            fn all() -> Vec<HeaderName> {
                vec![$( HeaderName::$variant, )*]
            }
        }
    };
}

header_names! {
    Via => "Via", compact 'v';
    From => "From", compact 'f';
    To => "To", compact 't';
    CallId => "Call-ID", compact 'i';
    CSeq => "CSeq";
    MaxForwards => "Max-Forwards";
    Contact => "Contact", compact 'm';
    Route => "Route";
    RecordRoute => "Record-Route";
    ContentLength => "Content-Length", compact 'l';
    ContentType => "Content-Type", compact 'c';
    ContentEncoding => "Content-Encoding", compact 'e';
    Require => "Require";
    Supported => "Supported", compact 'k';
    ProxyRequire => "Proxy-Require";
    Unsupported => "Unsupported";
    Allow => "Allow";
    Accept => "Accept";
    Subject => "Subject", compact 's';
    Event => "Event", compact 'o';
    AllowEvents => "Allow-Events", compact 'u';
    ReferTo => "Refer-To", compact 'r';
    ReferredBy => "Referred-By", compact 'b';
    AcceptContact => "Accept-Contact", compact 'a';
    RejectContact => "Reject-Contact", compact 'j';
    RequestDisposition => "Request-Disposition", compact 'd';
    SessionExpires => "Session-Expires", compact 'x';
    Identity => "Identity", compact 'y';
    Expires => "Expires";
    UserAgent => "User-Agent";
    Server => "Server";
    Date => "Date";
    Authorization => "Authorization";
    ProxyAuthorization => "Proxy-Authorization";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthenticate => "Proxy-Authenticate";
    Path => "Path";
    ServiceRoute => "Service-Route";
    PAssertedIdentity => "P-Asserted-Identity";
    PPreferredIdentity => "P-Preferred-Identity";
    Privacy => "Privacy";
    Reason => "Reason";
    RSeq => "RSeq";
    RAck => "RAck";
    MinSe => "Min-SE";
    MinExpires => "Min-Expires";
    RetryAfter => "Retry-After";
    Warning => "Warning";
}

/// The known header name spelled `name` (any case), looked up among the names of the
/// same length. Must list every name of the table above (a unit test checks it).
fn known_by_length(name: &[u8]) -> Option<HeaderName> {
    // `name` holds token characters only, and for those (and the letters, digits and `-`
    // of the canonical names) setting bit 0x20 folds case without false matches.
    fn same(name: &[u8], canonical: &[u8]) -> bool {
        const FOLD: u64 = 0x2020_2020_2020_2020;
        if name.len() != canonical.len() {
            return false;
        }
        let mut a = name.chunks_exact(8);
        let mut b = canonical.chunks_exact(8);
        for (x, y) in a.by_ref().zip(b.by_ref()) {
            let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or_default());
            if word(x) | FOLD != word(y) | FOLD {
                return false;
            }
        }
        a.remainder()
            .iter()
            .zip(b.remainder())
            .all(|(x, y)| (x | 0x20) == (y | 0x20))
    }
    macro_rules! among {
        ($( $spelling:literal => $variant:ident ),*) => {{
            $( if same(name, $spelling) { return Some(HeaderName::$variant); } )*
            None
        }};
    }
    match name.len() {
        2 => among!(b"To" => To),
        3 => among!(b"Via" => Via),
        4 => among!(b"From" => From, b"CSeq" => CSeq, b"Date" => Date, b"Path" => Path,
            b"RSeq" => RSeq, b"RAck" => RAck),
        5 => among!(b"Route" => Route, b"Allow" => Allow, b"Event" => Event),
        6 => among!(b"Accept" => Accept, b"Server" => Server, b"Reason" => Reason,
            b"Min-SE" => MinSe),
        7 => among!(b"Call-ID" => CallId, b"Contact" => Contact, b"Require" => Require,
            b"Subject" => Subject, b"Expires" => Expires, b"Privacy" => Privacy,
            b"Warning" => Warning),
        8 => among!(b"Refer-To" => ReferTo, b"Identity" => Identity),
        9 => among!(b"Supported" => Supported),
        10 => among!(b"User-Agent" => UserAgent),
        11 => among!(b"Unsupported" => Unsupported, b"Referred-By" => ReferredBy,
            b"Min-Expires" => MinExpires, b"Retry-After" => RetryAfter),
        12 => among!(b"Max-Forwards" => MaxForwards, b"Record-Route" => RecordRoute,
            b"Content-Type" => ContentType, b"Allow-Events" => AllowEvents),
        13 => among!(b"Proxy-Require" => ProxyRequire, b"Authorization" => Authorization,
            b"Service-Route" => ServiceRoute),
        14 => among!(b"Content-Length" => ContentLength, b"Accept-Contact" => AcceptContact,
            b"Reject-Contact" => RejectContact),
        15 => among!(b"Session-Expires" => SessionExpires),
        16 => among!(b"Content-Encoding" => ContentEncoding,
            b"WWW-Authenticate" => WwwAuthenticate),
        18 => among!(b"Proxy-Authenticate" => ProxyAuthenticate),
        19 => among!(b"Request-Disposition" => RequestDisposition,
            b"Proxy-Authorization" => ProxyAuthorization,
            b"P-Asserted-Identity" => PAssertedIdentity),
        20 => among!(b"P-Preferred-Identity" => PPreferredIdentity),
        _ => None,
    }
}

/// Names compare case-insensitively, and an `Other` that spells a known name (as code
/// may build one: `Other("p-asserted-identity")`, `Other("l")`) equals that name, so that
/// looking up, removing or printing it cannot miss the header the parser decoded.
impl PartialEq for HeaderName {
    #[inline]
    fn eq(&self, other: &HeaderName) -> bool {
        match (self, other) {
            (HeaderName::Other(_), _) | (_, HeaderName::Other(_)) => self.eq_other(other),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl HeaderName {
    /// `eq` when at least one side is `Other` (kept out of line: the common comparison of
    /// two known names is one discriminant compare).
    fn eq_other(&self, other: &HeaderName) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => {
                a.eq_ignore_ascii_case(b)
                    || self
                        .known_str()
                        .is_some_and(|k| Some(k) == other.known_str())
            }
            (HeaderName::Other(name), known) | (known, HeaderName::Other(name)) => {
                name.eq_ignore_ascii_case(known.as_str())
                    || match (name.as_bytes(), known.compact()) {
                        ([single], Some(compact)) => {
                            char::from(single.to_ascii_lowercase()) == compact
                        }
                        _ => false,
                    }
            }
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl Eq for HeaderName {}

impl Hash for HeaderName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let key = self.known_str().unwrap_or(self.as_str());
        for b in key.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header field line: its name and its raw value. The value has surrounding
/// whitespace removed and any line folding (CRLF followed by whitespace) replaced by a
/// single space; otherwise it is the bytes as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub value: Bytes,
}

/// The header fields of a message, in the order received. Several lines may have the same
/// name; a line may carry several comma-separated values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    lines: Vec<Header>,
}

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    pub fn with_capacity(capacity: usize) -> Headers {
        Headers {
            lines: Vec::with_capacity(capacity),
        }
    }

    /// Every line, in order, as a slice.
    pub fn as_slice(&self) -> &[Header] {
        &self.lines
    }

    /// Every line, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.lines.iter()
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The raw value of the first line named `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&Bytes> {
        self.lines
            .iter()
            .find(|h| h.name == *name)
            .map(|h| &h.value)
    }

    /// The raw values of every line named `name`, in order (not split at commas).
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.lines
            .iter()
            .filter(move |h| h.name == *name)
            .map(|h| &h.value)
    }

    /// Whether at least one line is named `name`.
    pub fn contains(&self, name: &HeaderName) -> bool {
        self.lines.iter().any(|h| h.name == *name)
    }

    /// Appends a line.
    pub fn push(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.lines.push(Header {
            name,
            value: value.into(),
        });
    }

    /// Inserts a line before every other line (as a proxy does with its Via).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.lines.insert(
            0,
            Header {
                name,
                value: value.into(),
            },
        );
    }

    /// Removes every line named `name` and returns how many there were.
    pub fn remove_all(&mut self, name: &HeaderName) -> usize {
        let before = self.lines.len();
        self.lines.retain(|h| h.name != *name);
        before - self.lines.len()
    }

    /// Replaces every line named `name` by a single line with `value`, at the position of
    /// the first one (or at the end when there was none).
    pub fn set(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        let value = value.into();
        match self.lines.iter().position(|h| h.name == name) {
            Some(first) => {
                self.lines[first].value = value;
                let mut index = 0;
                self.lines.retain(|h| {
                    let keep = index <= first || h.name != name;
                    index += 1;
                    keep
                });
            }
            None => self.lines.push(Header { name, value }),
        }
    }

    /// Replaces the value of the first line named `name`; returns false (and changes
    /// nothing) when there is none.
    pub fn replace_first(&mut self, name: &HeaderName, value: impl Into<Bytes>) -> bool {
        match self.lines.iter_mut().find(|h| h.name == *name) {
            Some(line) => {
                line.value = value.into();
                true
            }
            None => false,
        }
    }

    /// Keeps only the lines for which `keep` returns true.
    pub fn retain(&mut self, keep: impl FnMut(&Header) -> bool) {
        self.lines.retain(keep);
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;

    fn into_iter(self) -> Self::IntoIter {
        self.lines.iter()
    }
}

impl FromIterator<Header> for Headers {
    fn from_iter<I: IntoIterator<Item = Header>>(iter: I) -> Headers {
        Headers {
            lines: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_name_decodes_in_any_case_and_compact_form() {
        for name in HeaderName::all() {
            let canonical = name.as_str();
            assert_eq!(
                HeaderName::from_bytes(canonical.as_bytes()),
                name,
                "{canonical}"
            );
            let upper = canonical.to_ascii_uppercase();
            assert_eq!(HeaderName::from_bytes(upper.as_bytes()), name, "{upper}");
            assert!(!matches!(
                HeaderName::from_bytes(canonical.as_bytes()),
                HeaderName::Other(_)
            ));
            if let Some(compact) = name.compact() {
                let upper = compact.to_ascii_uppercase().to_string();
                assert_eq!(HeaderName::from_bytes(upper.as_bytes()), name);
            }
        }
        assert_eq!(
            HeaderName::from_bytes(b"X-Custom"),
            HeaderName::Other("x-custom".into())
        );
    }

    #[test]
    fn an_unknown_name_spelling_a_known_one_equals_it() {
        use std::hash::BuildHasher;
        let hasher = std::collections::hash_map::RandomState::new();
        let pairs = [
            (
                HeaderName::Other("p-asserted-IDENTITY".into()),
                HeaderName::PAssertedIdentity,
            ),
            (HeaderName::Other("L".into()), HeaderName::ContentLength),
            (
                HeaderName::Other("l".into()),
                HeaderName::Other("Content-length".into()),
            ),
            (
                HeaderName::Other("x-a".into()),
                HeaderName::Other("X-A".into()),
            ),
        ];
        for (a, b) in pairs {
            assert_eq!(a, b);
            assert_eq!(b, a);
            assert_eq!(hasher.hash_one(&a), hasher.hash_one(&b), "{a:?}");
        }
        assert_ne!(HeaderName::Other("Via-X".into()), HeaderName::Via);
        assert_ne!(HeaderName::Other("v".into()), HeaderName::From);
        assert_ne!(HeaderName::Other("x".into()), HeaderName::Other("y".into()));

        let mut headers = Headers::new();
        headers.push(HeaderName::from_bytes(b"P-Asserted-Identity"), "<sip:a@b>");
        headers.push(HeaderName::from_bytes(b"X-A"), "1");
        assert!(headers.contains(&HeaderName::Other("P-ASSERTED-IDENTITY".into())));
        assert_eq!(
            headers.remove_all(&HeaderName::Other("p-asserted-identity".into())),
            1
        );
        assert_eq!(headers.len(), 1);
    }
}
