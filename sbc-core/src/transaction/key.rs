//! Transaction matching keys (RFC 3261 §17.1.3, §17.2.3) and branch generation.
//!
//! * A response matches a client transaction by the branch of its top Via and its CSeq
//!   method (so a CANCEL and the INVITE it cancels, which share a branch, stay apart).
//! * A request matches a server transaction by top-Via branch, sent-by and method, ACK
//!   counting as INVITE — when the branch starts with the magic cookie `z9hG4bK`.
//! * Otherwise (an RFC 2543 peer) by Call-ID, From tag, CSeq number, method and the whole
//!   top Via, and then the Request-URI and To tag are checked against the transaction
//!   ([`LegacyCheck`]): an ACK's To tag must be the one of the final response the
//!   transaction sent.

use bytes::Bytes;

use crate::sip::{Headers, Host, HostPort, Method, Request, Uri};

/// The RFC 3261 branch prefix (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Returns a fresh RFC 3261 branch: the magic cookie followed by `random` in lower-case
/// hex. The caller supplies the randomness (at least 64 unpredictable bits, so that
/// branches are unique in space and time).
pub fn branch_from_random(random: [u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut branch = String::with_capacity(MAGIC_COOKIE.len() + 32);
    branch.push_str(MAGIC_COOKIE);
    for byte in random {
        branch.push(char::from(HEX[usize::from(byte >> 4)]));
        branch.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    branch
}

/// Whether `branch` is an RFC 3261 branch (starts with the magic cookie).
pub fn is_rfc3261_branch(branch: &[u8]) -> bool {
    branch.starts_with(MAGIC_COOKIE.as_bytes())
}

/// The method a request is matched under: an ACK belongs to its INVITE's transaction.
fn matching_method(method: &Method) -> Method {
    match method {
        Method::Ack => Method::Invite,
        other => other.clone(),
    }
}

/// Identifies a client transaction (§17.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    branch: Bytes,
    method: Method,
}

impl ClientKey {
    /// The key of a message by its top-Via branch and CSeq method, if it has both.
    pub(crate) fn of(headers: &Headers) -> Option<ClientKey> {
        let via = headers.top_via().ok()?;
        let branch = via.branch()?.clone();
        let method = headers.cseq().ok()?.method;
        Some(ClientKey { branch, method })
    }
}

/// A sent-by with the host name folded to lower case (host names compare
/// case-insensitively, RFC 3261 §19.1.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SentBy {
    host: Host,
    port: Option<u16>,
}

impl SentBy {
    fn of(sent_by: &HostPort) -> SentBy {
        let host = match &sent_by.host {
            Host::Name(name) => Host::Name(name.to_ascii_lowercase().into()),
            other => other.clone(),
        };
        SentBy {
            host,
            port: sent_by.port,
        }
    }
}

/// Identifies a server transaction (§17.2.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ServerKey {
    Rfc3261 {
        branch: Bytes,
        sent_by: SentBy,
        method: Method,
    },
    /// The RFC 2543 fallback; the Request-URI and To tag are checked afterwards.
    Rfc2543 {
        call_id: Bytes,
        from_tag: Option<Bytes>,
        seq: u32,
        method: Method,
        top_via: Box<str>,
    },
}

/// The field that is missing or malformed when a server key cannot be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyField {
    Via,
    CSeq,
    /// Call-ID or From, needed only for the RFC 2543 key.
    LegacyIdentifiers,
}

impl ServerKey {
    /// The key of a request, or of the TU's response to one (which carries the request's
    /// Via, From, Call-ID and CSeq). `method` is the CSeq method; ACK counts as INVITE.
    pub(crate) fn of(headers: &Headers) -> Result<ServerKey, KeyField> {
        let via = headers.top_via().map_err(|_| KeyField::Via)?;
        let cseq = headers.cseq().map_err(|_| KeyField::CSeq)?;
        let method = matching_method(&cseq.method);
        if let Some(branch) = via.branch().filter(|b| is_rfc3261_branch(b)) {
            return Ok(ServerKey::Rfc3261 {
                branch: branch.clone(),
                sent_by: SentBy::of(&via.sent_by),
                method,
            });
        }
        let call_id = headers.call_id().map_err(|_| KeyField::LegacyIdentifiers)?;
        let from = headers.from().map_err(|_| KeyField::LegacyIdentifiers)?;
        Ok(ServerKey::Rfc2543 {
            call_id: call_id.clone(),
            from_tag: from.tag().cloned(),
            seq: cseq.seq,
            method,
            top_via: via.to_string().into(),
        })
    }

    /// The key of the INVITE transaction a CANCEL cancels (§9.2): the CANCEL's own key
    /// with the method INVITE.
    pub(crate) fn cancelled_invite(cancel: &Headers) -> Result<ServerKey, KeyField> {
        Ok(match ServerKey::of(cancel)? {
            ServerKey::Rfc3261 {
                branch, sent_by, ..
            } => ServerKey::Rfc3261 {
                branch,
                sent_by,
                method: Method::Invite,
            },
            ServerKey::Rfc2543 {
                call_id,
                from_tag,
                seq,
                top_via,
                ..
            } => ServerKey::Rfc2543 {
                call_id,
                from_tag,
                seq,
                method: Method::Invite,
                top_via,
            },
        })
    }

    pub(crate) fn is_legacy(&self) -> bool {
        matches!(self, ServerKey::Rfc2543 { .. })
    }
}

/// What an RFC 2543 request must also match, beyond its [`ServerKey`] (§17.2.3).
#[derive(Clone, Debug)]
pub(crate) struct LegacyCheck {
    request_uri: Uri,
    to_tag: Option<Bytes>,
    /// The To tag of the final response the transaction sent, which its ACK carries.
    response_to_tag: Option<Bytes>,
}

impl LegacyCheck {
    /// Records what the request that created the transaction carried.
    pub(crate) fn of(request: &Request) -> LegacyCheck {
        LegacyCheck {
            request_uri: request.uri.clone(),
            to_tag: to_tag(&request.headers),
            response_to_tag: None,
        }
    }

    /// Records the To tag of a final response sent by the transaction.
    pub(crate) fn final_response_sent(&mut self, response_headers: &Headers) {
        self.response_to_tag = to_tag(response_headers);
    }

    /// Whether `request` (already matched by key) belongs to the transaction.
    pub(crate) fn matches(&self, request: &Request) -> bool {
        if request.uri != self.request_uri {
            return false;
        }
        let tag = to_tag(&request.headers);
        match request.method {
            Method::Ack => tag == self.response_to_tag,
            _ => tag == self.to_tag,
        }
    }

    /// Whether a CANCEL (already matched to an INVITE by key) cancels this INVITE: same
    /// Request-URI and To tag (§9.2).
    pub(crate) fn matches_cancel(&self, cancel: &Request) -> bool {
        cancel.uri == self.request_uri && to_tag(&cancel.headers) == self.to_tag
    }
}

fn to_tag(headers: &Headers) -> Option<Bytes> {
    headers.to().ok().and_then(|to| to.tag().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_has_cookie_and_hex() {
        let branch = branch_from_random([0xab; 16]);
        assert!(branch.starts_with("z9hG4bK"));
        assert_eq!(branch.len(), 7 + 32);
        assert!(branch[7..].chars().all(|c| c == 'a' || c == 'b'));
        assert!(is_rfc3261_branch(branch.as_bytes()));
        assert!(!is_rfc3261_branch(b"1234"));
    }
}
