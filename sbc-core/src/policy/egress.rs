//! What a call's B-leg carries toward a peer, by the peer's trust: the one place where
//! identity and privacy are applied on the way out.
//!
//! Toward a **trusted** peer (inside the trust domain) nothing is removed: it sees the
//! `P-Asserted-Identity` the SBC asserted or believed, and the caller's `Privacy` header,
//! which it is trusted to honour (RFC 3325 §5, RFC 3323 §4).
//!
//! Toward an **untrusted** peer the SBC is the privacy service (RFC 3323 §5):
//! * identity headers (`P-Asserted-Identity`, `P-Preferred-Identity`, `Remote-Party-ID`)
//!   never leave the trust domain;
//! * `Privacy: user` or `id` makes the From anonymous (`"Anonymous"
//!   <sip:anonymous@anonymous.invalid>`);
//! * `Privacy: header` or `user` removes the headers that can name the caller or its
//!   equipment: Call-Info, Organization, Reply-To, In-Reply-To, Subject, User-Agent,
//!   Server;
//! * once applied, the `Privacy` header itself is removed.

use bytes::Bytes;

use crate::sip::{HeaderName, Headers, NameAddr, Params, SipUri, Uri};

/// The privacy a request asks for (RFC 3323 §4.2 priv-values).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Privacy {
    pub id: bool,
    pub header: bool,
    pub user: bool,
    pub none: bool,
}

impl Privacy {
    /// The values of every `Privacy` header (`;`-separated, case-insensitive; unknown
    /// values are ignored).
    pub fn of(headers: &Headers) -> Privacy {
        let mut privacy = Privacy::default();
        for value in headers.get_all(&HeaderName::Privacy) {
            for item in value.split(|&b| b == b';' || b == b',') {
                match item.trim_ascii().to_ascii_lowercase().as_slice() {
                    b"id" => privacy.id = true,
                    b"header" => privacy.header = true,
                    b"user" => privacy.user = true,
                    b"critical" => {}
                    b"none" => privacy.none = true,
                    _ => {}
                }
            }
        }
        if privacy.none {
            return Privacy {
                none: true,
                ..Privacy::default()
            };
        }
        privacy
    }

    /// Whether the From must be anonymous toward an untrusted peer.
    pub fn anonymous_from(self) -> bool {
        self.user || self.id
    }

    fn any(self) -> bool {
        self.id || self.header || self.user
    }
}

const IDENTITY_HEADERS: [&str; 3] = [
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Remote-Party-ID",
];
const PERSONAL_HEADERS: [&str; 7] = [
    "Call-Info",
    "Organization",
    "Reply-To",
    "In-Reply-To",
    "Subject",
    "User-Agent",
    "Server",
];

/// Applies the policy to `out`, the headers of a request being sent toward a peer, for
/// a caller whose request carried `privacy`.
pub fn apply(out: &mut Headers, privacy: Privacy, trusted: bool) {
    if trusted {
        return;
    }
    for name in IDENTITY_HEADERS {
        out.remove_all(&HeaderName::from_bytes(name.as_bytes()));
    }
    if privacy.header || privacy.user {
        for name in PERSONAL_HEADERS {
            out.remove_all(&HeaderName::from_bytes(name.as_bytes()));
        }
    }
    if privacy.any() {
        out.remove_all(&HeaderName::Privacy);
    }
}

/// The anonymous From of RFC 3323 §4.1.1 (the tag is added by the caller).
pub fn anonymous_from(secure: bool) -> NameAddr {
    NameAddr {
        display_name: Some(Bytes::from_static(b"\"Anonymous\"")),
        uri: Uri::Sip(SipUri {
            secure,
            user: Some(Bytes::from_static(b"anonymous")),
            password: None,
            host: crate::sip::HostPort {
                host: crate::sip::Host::Name("anonymous.invalid".into()),
                port: None,
            },
            params: Params::default(),
            headers: None,
        }),
        params: Params::default(),
        angle_brackets: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[(&str, &str)]) -> Headers {
        let mut headers = Headers::new();
        for (name, value) in lines {
            headers.push(HeaderName::from_bytes(name.as_bytes()), value.to_string());
        }
        headers
    }

    fn names(headers: &Headers) -> Vec<String> {
        headers.iter().map(|h| h.name.as_str().to_owned()).collect()
    }

    /// (Privacy header, toward a trusted peer, headers left, From anonymous)
    #[test]
    fn privacy_and_identity_by_trust() {
        let base = [
            ("P-Asserted-Identity", "<sip:alice@sbc>"),
            ("Subject", "hello"),
            ("Call-Info", "<http://x>"),
            ("X-Keep", "1"),
        ];
        let cases: [(&str, bool, &[&str], bool); 6] = [
            (
                "none",
                false,
                &["Subject", "Call-Info", "X-Keep", "Privacy"],
                false,
            ),
            ("id", false, &["Subject", "Call-Info", "X-Keep"], true),
            ("header", false, &["X-Keep"], false),
            ("user", false, &["X-Keep"], true),
            (
                "id;header;user",
                true,
                &[
                    "P-Asserted-Identity",
                    "Subject",
                    "Call-Info",
                    "X-Keep",
                    "Privacy",
                ],
                false,
            ),
            ("", false, &["Subject", "Call-Info", "X-Keep"], false),
        ];
        for (privacy_value, trusted, left, anonymous) in cases {
            let mut lines = base.to_vec();
            if !privacy_value.is_empty() {
                lines.push(("Privacy", privacy_value));
            }
            let mut out = headers(&lines);
            let privacy = Privacy::of(&out);
            apply(&mut out, privacy, trusted);
            assert_eq!(
                names(&out),
                left.to_vec(),
                "Privacy: {privacy_value}, trusted {trusted}"
            );
            assert_eq!(
                !trusted && privacy.anonymous_from(),
                anonymous,
                "Privacy: {privacy_value}, trusted {trusted}"
            );
        }
    }
}
