//! One leg's dialog (RFC 3261 §12) as the B2BUA holds it, and the requests it builds on
//! it.
//!
//! On leg A the B2BUA is the UAS: the Call-ID and remote tag are the caller's, the local
//! tag ours. On leg B it is the UAC: Call-ID and local tag are ours, the remote tag is the
//! callee's (learned from its first response with a tag). In both, requests go to the
//! leg's signalling peer — the caller's source (on its connection, when it has one) or the
//! target the call was sent to — with the remote target (Contact) as Request-URI and the
//! route set as Route: an SBC does not resolve the other side's Contact, which would also
//! break peers behind NAT.

use std::net::SocketAddr;

use bytes::Bytes;

use super::headers;
use crate::net::Protocol;
use crate::sip::{HeaderName, Method, NameAddr, Request, Uri};
use crate::transaction::Peer;

/// A leg's dialog state.
#[derive(Clone, Debug)]
pub(crate) struct Dialog {
    pub call_id: Bytes,
    /// Our address on this leg (From on leg B, To on leg A), with our tag.
    pub local: NameAddr,
    /// The peer's address, with its tag once known.
    pub remote: NameAddr,
    pub local_tag: Bytes,
    /// Our CSeq counter for requests we send on this leg.
    pub local_cseq: u32,
    /// The highest CSeq number received from the peer.
    pub remote_cseq: Option<u32>,
    /// Where in-dialog requests go (the peer's Contact).
    pub remote_target: Uri,
    /// Route header values for requests on this leg, in order.
    pub route_set: Vec<Bytes>,
    /// Where messages for this leg are sent.
    pub peer: Peer,
    pub protocol: Protocol,
    /// A `sips:` dialog.
    pub secure: bool,
}

impl Dialog {
    /// The peer's tag, when known.
    pub(crate) fn remote_tag(&self) -> Option<&Bytes> {
        self.remote.tag()
    }

    /// Records the peer's tag (leg B, from a response).
    pub(crate) fn set_remote_tag(&mut self, tag: Bytes) {
        self.remote.params.set("tag", Some(tag));
    }

    /// Takes the peer's Contact as remote target, when it has a usable one.
    pub(crate) fn refresh_target(&mut self, headers: &crate::sip::Headers) {
        if let Ok(Some(crate::sip::Contact::Addresses(contacts))) = headers.contact()
            && let Some(first) = contacts.into_iter().next()
            && !matches!(first.uri, Uri::Other { .. })
        {
            self.remote_target = first.uri;
        }
    }

    /// The next CSeq number for a request of ours on this leg.
    pub(crate) fn next_cseq(&mut self) -> u32 {
        self.local_cseq = self.local_cseq.wrapping_add(1) & 0x7fff_ffff;
        self.local_cseq
    }

    /// Checks a request's CSeq against the last one from the peer (RFC 3261 §12.2.2:
    /// lower means out of order, answered 500) and records it.
    pub(crate) fn accept_remote_cseq(&mut self, seq: u32) -> bool {
        if self.remote_cseq.is_some_and(|last| seq <= last) {
            return false;
        }
        self.remote_cseq = Some(seq);
        true
    }

    /// A request on this dialog with CSeq `seq`: Request-URI the remote target, our Via,
    /// Route set, From/To/Call-ID of the dialog, our Contact for target-refresh methods.
    /// The caller adds the body and any passing headers.
    pub(crate) fn request(
        &self,
        method: Method,
        seq: u32,
        local: SocketAddr,
        branch: &str,
        max_forwards: u8,
    ) -> Request {
        let mut request = Request::new(method.clone(), self.remote_target.clone());
        let headers = &mut request.headers;
        headers.push(HeaderName::Via, headers::via(self.protocol, local, branch));
        headers.push(HeaderName::MaxForwards, max_forwards.to_string());
        for route in &self.route_set {
            headers.push(HeaderName::Route, route.clone());
        }
        let (from, to) = (&self.local, &self.remote);
        headers.push(HeaderName::From, from.to_bytes());
        headers.push(HeaderName::To, to.to_bytes());
        headers.push(HeaderName::CallId, self.call_id.clone());
        headers.push(HeaderName::CSeq, format!("{seq} {}", method.as_str()));
        if matches!(method, Method::Invite | Method::Update) {
            headers.push(
                HeaderName::Contact,
                headers::contact(self.protocol, local, self.secure),
            );
        }
        request
    }
}

/// The CANCEL for `invite` (RFC 3261 §9.1): its Request-URI, top Via, Route, From, To,
/// Call-ID and CSeq number.
pub(crate) fn cancel_for(invite: &Request) -> Request {
    let mut cancel = Request::new(Method::Cancel, invite.uri.clone());
    let copy = [
        HeaderName::Via,
        HeaderName::MaxForwards,
        HeaderName::Route,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
    ];
    for header in &invite.headers {
        if copy.contains(&header.name) {
            cancel
                .headers
                .push(header.name.clone(), header.value.clone());
        }
    }
    let seq = invite.headers.cseq().map_or(1, |cseq| cseq.seq);
    cancel
        .headers
        .push(HeaderName::CSeq, format!("{seq} CANCEL"));
    cancel
}
