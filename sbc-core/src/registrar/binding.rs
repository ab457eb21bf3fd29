//! One binding, and what routing needs of it.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::net::Protocol;
use crate::sip::{NameAddr, Uri};
use crate::transaction::{Peer, Reliability};

/// One binding of an address of record to a contact, on the flow it was registered on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub aor: String,
    /// The Contact as registered (header parameters other than `expires` kept).
    pub contact: NameAddr,
    /// The Contact URI as text (the binding's key with the AOR).
    pub contact_text: String,
    /// Where the REGISTER came from.
    pub source: SocketAddr,
    pub protocol: Protocol,
    /// The connection (or UDP socket) it came on, as `transaction::Peer::flow`.
    pub flow: Option<u64>,
    /// `Path` values (RFC 3327), in order.
    pub path: Vec<Bytes>,
    pub user_agent: Option<Bytes>,
    pub call_id: Bytes,
    pub cseq: u32,
    /// `+sip.instance` (RFC 5626).
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626).
    pub reg_id: Option<u32>,
    pub expires_at: Instant,
}

impl Binding {
    /// A binding of `aor` to `contact` (its `expires` parameter dropped) on `source`'s
    /// flow.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        aor: &str,
        contact: &NameAddr,
        source: Peer,
        protocol: Protocol,
        path: Vec<Bytes>,
        user_agent: Option<Bytes>,
        call_id: Bytes,
        cseq: u32,
        expires_at: Instant,
    ) -> Binding {
        let mut contact = contact.clone();
        contact.params.remove("expires");
        let text = |name: &str| {
            contact
                .params
                .get(name)
                .flatten()
                .map(|value| String::from_utf8_lossy(value).trim_matches('"').to_owned())
        };
        let instance = text("+sip.instance");
        let reg_id = text("reg-id").and_then(|value| value.parse().ok());
        Binding {
            aor: aor.to_owned(),
            contact_text: contact.uri.to_string(),
            contact,
            source: source.remote,
            protocol,
            flow: source.flow,
            path,
            user_agent,
            call_id,
            cseq,
            instance,
            reg_id,
            expires_at,
        }
    }

    /// Whether `other` updates this binding: the same contact URI, or the same instance
    /// and reg-id (RFC 5626 §6: a new flow replaces the old one).
    pub(crate) fn same_as(&self, other: &Binding) -> bool {
        self.aor == other.aor
            && (self.contact_text == other.contact_text
                || (self.instance.is_some()
                    && self.reg_id.is_some()
                    && self.instance == other.instance
                    && self.reg_id == other.reg_id))
    }

    /// Where requests to this contact go: the registered flow.
    pub fn peer(&self) -> Peer {
        Peer {
            remote: self.source,
            reliability: if self.protocol.is_stream() {
                Reliability::Reliable
            } else {
                Reliability::Unreliable
            },
            flow: self.flow,
        }
    }

    /// What the B2BUA needs to call this contact.
    pub fn registered_contact(&self) -> RegisteredContact {
        RegisteredContact {
            aor: self.aor.clone(),
            uri: self.contact.uri.clone(),
            path: self.path.clone(),
            flow: self.flow,
        }
    }
}

/// A call target that is a registered contact: the B-leg goes to `uri` as Request-URI,
/// with `path` as its route set, on the registered `flow` only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredContact {
    /// The address of record it is a contact of.
    pub aor: String,
    pub uri: Uri,
    pub path: Vec<Bytes>,
    pub flow: Option<u64>,
}

/// A change to persist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindingChange {
    Bound(Box<Binding>),
    /// `contact` is the Contact as stored (a printed name-addr).
    Removed {
        aor: String,
        contact: String,
    },
}

impl std::hash::Hash for RegisteredContact {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.aor.hash(state);
        self.uri.to_bytes().hash(state);
        self.path.hash(state);
        self.flow.hash(state);
    }
}
