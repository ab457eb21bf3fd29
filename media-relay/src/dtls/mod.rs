//! DTLS-SRTP (RFC 5763, RFC 5764) on the relay: a DTLS 1.2 handshake per leg (and port)
//! with OpenSSL, the peer's certificate checked against the `a=fingerprint` its SDP gave,
//! the `use_srtp` extension agreeing on a profile, and the SRTP master keys exported from
//! the handshake (RFC 5764 §4.2).
//!
//! [`DtlsEndpoint`] is sans-IO: datagrams go in with [`DtlsEndpoint::handle_datagram`],
//! records to send come out of [`DtlsEndpoint::poll_transmit`], and the outcome out of
//! [`DtlsEndpoint::poll_event`]. OpenSSL runs over an in-memory pipe; its retransmission
//! timer advances when [`DtlsEndpoint::handle_timeout`] is called (the driver calls it a few
//! times a second while a handshake is in progress).

mod guard;
mod identity;

pub use guard::{
    BURST, CLIENT_HELLO_COST, DtlsBudget, DtlsDrop, DtlsDrops, PER_SECOND, is_client_hello,
};
pub use identity::{DtlsIdentity, Fingerprint, HashFunction};

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::Arc;

use openssl::srtp::SrtpProfileId;
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslStream, SslVerifyMode,
    SslVersion,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::srtp::{MasterKey, Suite};

/// The DTLS role of the relay on a leg (from `a=setup`, RFC 4145/5763): the client
/// (`active`) sends the ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DtlsRole {
    Client,
    Server,
}

/// Why DTLS could not give keys, each with a stable name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error, Serialize, Deserialize)]
pub enum DtlsError {
    /// The relay's certificate or context could not be made.
    #[error("cannot set up the DTLS identity")]
    Identity,
    /// The handshake failed (alert, protocol error, no common profile …).
    #[error("DTLS handshake failed")]
    Handshake,
    /// The peer's certificate does not have the fingerprint its SDP announced.
    #[error("peer certificate does not match the SDP fingerprint")]
    FingerprintMismatch,
    /// The handshake agreed on no SRTP profile the relay supports.
    #[error("no common DTLS-SRTP profile")]
    NoSrtpProfile,
}

impl DtlsError {
    pub fn name(self) -> &'static str {
        match self {
            DtlsError::Identity => "identity",
            DtlsError::Handshake => "handshake_failed",
            DtlsError::FingerprintMismatch => "fingerprint_mismatch",
            DtlsError::NoSrtpProfile => "no_srtp_profile",
        }
    }
}

/// The SRTP keys a completed handshake exported: what the relay sends with and what it
/// receives with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsSrtpKeys {
    pub suite: Suite,
    pub send: MasterKey,
    pub receive: MasterKey,
}

/// What a handshake ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsEvent {
    Connected(DtlsSrtpKeys),
    Failed(DtlsError),
}

/// The SRTP profiles offered in `use_srtp`, preferred first.
const SRTP_PROFILES: &str =
    "SRTP_AEAD_AES_256_GCM:SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32";
/// The largest datagram the relay's handshake records fill (RFC 8827-style safe size).
const MTU: u32 = 1200;
/// Handshake datagrams buffered per endpoint in each direction.
const QUEUE: usize = 32;

/// The relay's DTLS configuration, shared by every endpoint.
#[derive(Clone)]
pub struct DtlsContext {
    context: SslContext,
    identity: Arc<DtlsIdentity>,
}

impl std::fmt::Debug for DtlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsContext")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl DtlsContext {
    pub fn new(identity: DtlsIdentity) -> Result<DtlsContext, DtlsError> {
        let fail = |_| DtlsError::Identity;
        let mut builder = SslContextBuilder::new(SslMethod::dtls()).map_err(fail)?;
        builder
            .set_min_proto_version(Some(SslVersion::DTLS1_2))
            .map_err(fail)?;
        // No renegotiation: a ClientHello on an established association would otherwise
        // make the relay run a whole new handshake (a key agreement and a signature).
        builder.set_options(SslOptions::NO_QUERY_MTU | SslOptions::NO_RENEGOTIATION);
        builder
            .set_certificate(&identity.certificate)
            .map_err(fail)?;
        builder.set_private_key(&identity.key).map_err(fail)?;
        builder.check_private_key().map_err(fail)?;
        builder
            .set_cipher_list("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")
            .map_err(fail)?;
        builder.set_tlsext_use_srtp(SRTP_PROFILES).map_err(fail)?;
        Ok(DtlsContext {
            context: builder.build(),
            identity: Arc::new(identity),
        })
    }

    pub fn identity(&self) -> &DtlsIdentity {
        &self.identity
    }
}

/// The memory "socket" OpenSSL reads records from and writes records to: one datagram per
/// read and per write.
#[derive(Debug, Default)]
struct Pipe {
    incoming: VecDeque<Vec<u8>>,
    outgoing: VecDeque<Vec<u8>>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.incoming.pop_front() {
            Some(datagram) => {
                let len = datagram.len().min(buf.len());
                buf[..len].copy_from_slice(&datagram[..len]);
                Ok(len)
            }
            None => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.outgoing.len() < QUEUE {
            self.outgoing.push_back(buf.to_vec());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum State {
    Handshaking(SslStream<Pipe>),
    Connected(SslStream<Pipe>),
    Failed,
}

/// One DTLS association with one peer.
pub struct DtlsEndpoint {
    state: State,
    role: DtlsRole,
    expected: Fingerprint,
    events: VecDeque<DtlsEvent>,
    /// Records to send, kept after a failure so that the alert still leaves.
    outbox: VecDeque<Vec<u8>>,
    /// A client's first flight, sent again on [`DtlsEndpoint::handle_timeout`] until the
    /// peer answers: OpenSSL waits a whole second before retransmitting, and a ClientHello
    /// that reaches a peer still reading our SDP answer is lost.
    first_flight: Vec<Vec<u8>>,
    early_resends: u8,
}

/// How often the first flight is sent again before OpenSSL's own timer takes over.
const EARLY_RESENDS: u8 = 3;

impl std::fmt::Debug for DtlsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Handshaking(_) => "handshaking",
            State::Connected(_) => "connected",
            State::Failed => "failed",
        };
        f.debug_struct("DtlsEndpoint")
            .field("state", &state)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl DtlsEndpoint {
    /// An association in `role` that accepts only a peer certificate with `expected`
    /// fingerprint. A client sends its ClientHello at once (see [`Self::poll_transmit`]).
    pub fn new(
        context: &DtlsContext,
        role: DtlsRole,
        expected: Fingerprint,
    ) -> Result<DtlsEndpoint, DtlsError> {
        let fail = |_| DtlsError::Identity;
        let mut ssl = Ssl::new(&context.context).map_err(fail)?;
        ssl.set_mtu(MTU).map_err(fail)?;
        // Both sides present certificates (RFC 5763 §5); they are self-signed, so the chain
        // is not verified: the fingerprint from the signalling is the trust anchor.
        let pinned = expected.clone();
        ssl.set_verify_callback(
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            move |_, store| {
                store.error_depth() > 0
                    || store
                        .current_cert()
                        .is_some_and(|c| pinned.matches(&c.to_owned()))
            },
        );
        match role {
            DtlsRole::Client => ssl.set_connect_state(),
            DtlsRole::Server => ssl.set_accept_state(),
        }
        let stream = SslStream::new(ssl, Pipe::default()).map_err(fail)?;
        let mut endpoint = DtlsEndpoint {
            state: State::Handshaking(stream),
            role,
            expected,
            events: VecDeque::new(),
            outbox: VecDeque::new(),
            first_flight: Vec::new(),
            early_resends: 0,
        };
        if role == DtlsRole::Client {
            endpoint.drive();
            endpoint.first_flight = endpoint.outbox.iter().cloned().collect();
        }
        Ok(endpoint)
    }

    pub fn role(&self) -> DtlsRole {
        self.role
    }

    pub fn is_handshaking(&self) -> bool {
        matches!(self.state, State::Handshaking(_))
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected(_))
    }

    /// A DTLS record from the peer.
    pub fn handle_datagram(&mut self, datagram: &[u8]) {
        self.first_flight.clear();
        match &mut self.state {
            State::Handshaking(stream) | State::Connected(stream) => {
                let pipe = stream.get_mut();
                if pipe.incoming.len() < QUEUE {
                    pipe.incoming.push_back(datagram.to_vec());
                }
            }
            State::Failed => return,
        }
        self.drive();
    }

    /// Lets OpenSSL retransmit a flight whose timer expired; a client that has heard
    /// nothing yet sends its first flight again (the driver calls this every 100 ms or so).
    pub fn handle_timeout(&mut self) {
        if !self.is_handshaking() {
            return;
        }
        if !self.first_flight.is_empty() && self.early_resends < EARLY_RESENDS {
            self.early_resends += 1;
            self.outbox.extend(self.first_flight.iter().cloned());
        }
        self.drive();
    }

    /// The next datagram to send to the peer.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    /// The outcome of the handshake, once.
    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    fn drive(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Failed);
        self.state = match state {
            State::Handshaking(mut stream) => {
                let result = stream.do_handshake();
                self.outbox.extend(stream.get_mut().outgoing.drain(..));
                match result {
                    Ok(()) => match self.connected(&stream) {
                        Ok(keys) => {
                            self.events.push_back(DtlsEvent::Connected(keys));
                            State::Connected(stream)
                        }
                        Err(error) => {
                            self.events.push_back(DtlsEvent::Failed(error));
                            State::Failed
                        }
                    },
                    Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => {
                        State::Handshaking(stream)
                    }
                    Err(_) => {
                        // The verify callback refused the certificate, or the handshake
                        // broke; the alert OpenSSL wrote is in the outbox.
                        let error = if stream.ssl().verify_result().as_raw() != 0 {
                            DtlsError::FingerprintMismatch
                        } else {
                            DtlsError::Handshake
                        };
                        self.events.push_back(DtlsEvent::Failed(error));
                        State::Failed
                    }
                }
            }
            State::Connected(mut stream) => {
                // After the handshake only alerts or a retransmitted final flight arrive (no
                // application data is used); reading lets OpenSSL answer them.
                let mut scratch = [0u8; 2048];
                let _ = stream.ssl_read(&mut scratch);
                self.outbox.extend(stream.get_mut().outgoing.drain(..));
                State::Connected(stream)
            }
            State::Failed => State::Failed,
        };
        while self.outbox.len() > QUEUE {
            self.outbox.pop_front();
        }
    }

    fn connected(&self, stream: &SslStream<Pipe>) -> Result<DtlsSrtpKeys, DtlsError> {
        let ssl = stream.ssl();
        let certificate = ssl
            .peer_certificate()
            .ok_or(DtlsError::FingerprintMismatch)?;
        if !self.expected.matches(&certificate) {
            return Err(DtlsError::FingerprintMismatch);
        }
        let profile = ssl
            .selected_srtp_profile()
            .ok_or(DtlsError::NoSrtpProfile)?
            .id();
        let suite = if profile == SrtpProfileId::SRTP_AES128_CM_SHA1_80 {
            Suite::AesCm128HmacSha1_80
        } else if profile == SrtpProfileId::SRTP_AES128_CM_SHA1_32 {
            Suite::AesCm128HmacSha1_32
        } else if profile == SrtpProfileId::SRTP_AEAD_AES_128_GCM {
            Suite::AeadAes128Gcm
        } else if profile == SrtpProfileId::SRTP_AEAD_AES_256_GCM {
            Suite::AeadAes256Gcm
        } else {
            return Err(DtlsError::NoSrtpProfile);
        };
        let (key_len, salt_len) = (suite.master_key_len(), suite.master_salt_len());
        // RFC 5764 §4.2: client key, server key, client salt, server salt.
        let mut material = [0u8; 2 * (32 + 14)];
        let material = material
            .get_mut(..2 * (key_len + salt_len))
            .ok_or(DtlsError::NoSrtpProfile)?;
        ssl.export_keying_material(material, "EXTRACTOR-dtls_srtp", None)
            .map_err(|_| DtlsError::Handshake)?;
        let (client_key, rest) = material.split_at(key_len);
        let (server_key, rest) = rest.split_at(key_len);
        let (client_salt, server_salt) = rest.split_at(salt_len);
        let client =
            MasterKey::new(client_key, client_salt).map_err(|_| DtlsError::NoSrtpProfile)?;
        let server =
            MasterKey::new(server_key, server_salt).map_err(|_| DtlsError::NoSrtpProfile)?;
        zeroize::Zeroize::zeroize(material);
        let (send, receive) = match self.role {
            DtlsRole::Client => (client, server),
            DtlsRole::Server => (server, client),
        };
        Ok(DtlsSrtpKeys {
            suite,
            send,
            receive,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn pair(server_expects: Option<Fingerprint>) -> (DtlsEndpoint, DtlsEndpoint) {
        let client_context = DtlsContext::new(DtlsIdentity::generate().unwrap()).unwrap();
        let server_context = DtlsContext::new(DtlsIdentity::generate().unwrap()).unwrap();
        let client = DtlsEndpoint::new(
            &client_context,
            DtlsRole::Client,
            server_context.identity().fingerprint().clone(),
        )
        .unwrap();
        let server = DtlsEndpoint::new(
            &server_context,
            DtlsRole::Server,
            server_expects.unwrap_or_else(|| client_context.identity().fingerprint().clone()),
        )
        .unwrap();
        (client, server)
    }

    /// Moves records both ways until nothing moves.
    fn exchange(a: &mut DtlsEndpoint, b: &mut DtlsEndpoint) {
        for _ in 0..20 {
            let mut moved = false;
            while let Some(d) = a.poll_transmit() {
                assert!(d.len() <= MTU as usize);
                b.handle_datagram(&d);
                moved = true;
            }
            while let Some(d) = b.poll_transmit() {
                a.handle_datagram(&d);
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    #[test]
    fn a_handshake_exports_the_same_keys_crosswise() {
        let (mut client, mut server) = pair(None);
        assert!(client.is_handshaking());
        exchange(&mut client, &mut server);
        let (Some(DtlsEvent::Connected(c)), Some(DtlsEvent::Connected(s))) =
            (client.poll_event(), server.poll_event())
        else {
            panic!("both sides connect");
        };
        assert_eq!(c.suite, Suite::AeadAes256Gcm, "the first profile offered");
        assert_eq!(c.send, s.receive);
        assert_eq!(c.receive, s.send);
        assert_ne!(c.send, c.receive);
        assert!(client.is_connected() && server.is_connected());
        assert_eq!(client.poll_event(), None);
    }

    #[test]
    fn a_certificate_without_the_announced_fingerprint_is_refused() {
        let wrong = Fingerprint {
            hash: HashFunction::Sha256,
            digest: vec![0xAB; 32],
        };
        let (mut client, mut server) = pair(Some(wrong));
        exchange(&mut client, &mut server);
        assert_eq!(
            server.poll_event(),
            Some(DtlsEvent::Failed(DtlsError::FingerprintMismatch))
        );
        assert!(matches!(client.poll_event(), Some(DtlsEvent::Failed(_))));
    }

    #[test]
    fn garbage_and_retransmission_timers_do_not_panic() {
        let (mut client, mut server) = pair(None);
        for len in 0..64 {
            server.handle_datagram(&vec![22u8; len]);
        }
        client.handle_timeout();
        server.handle_timeout();
        let _ = server.poll_event();
        assert!(HashFunction::from_name("SHA-256") == Some(HashFunction::Sha256));
        assert!(client.poll_transmit().is_some() || !client.is_handshaking());
    }
}
