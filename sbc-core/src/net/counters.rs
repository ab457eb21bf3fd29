//! Drop and error counters by reason, for the metrics layer to read.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::sip::framing::FramingError;

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// Why the driver dropped a datagram or message, refused or closed a connection, or
        /// failed to send. Each has a stable name for metric labels.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum DropReason {
            $( $(#[$doc])* $variant, )*
        }

        impl DropReason {
            /// Every reason, in a fixed order.
            pub const ALL: &'static [DropReason] = &[ $( DropReason::$variant, )* ];

            /// A stable snake_case name.
            pub fn name(self) -> &'static str {
                match self {
                    $( DropReason::$variant => $name, )*
                }
            }
        }
    };
}

drop_reasons! {
    /// A UDP datagram larger than `max_datagram_bytes`.
    UdpDatagramTooLarge => "udp_datagram_too_large",
    /// `recv_from` failed on a UDP socket.
    UdpReceiveError => "udp_receive_error",
    /// The upward queue was full; the message was dropped.
    InboundQueueFull => "inbound_queue_full",
    /// The upward queue's receiver is gone; the message was dropped.
    InboundQueueClosed => "inbound_queue_closed",
    /// An accepted connection over `max_connections`, closed at once.
    ConnectionLimitTotal => "connection_limit_total",
    /// An accepted connection over `max_connections_per_ip`, closed at once.
    ConnectionLimitPerIp => "connection_limit_per_ip",
    /// An outbound connection over `max_outbound_connections`, not made.
    OutboundConnectionLimit => "outbound_connection_limit",
    /// `accept` failed (typically out of file descriptors).
    AcceptError => "accept_error",
    /// A TLS handshake did not finish within `tls_handshake_timeout`.
    TlsHandshakeTimeout => "tls_handshake_timeout",
    /// A TLS handshake failed (bad certificate, no common version, garbage …).
    TlsHandshakeFailed => "tls_handshake_failed",
    /// An outbound TLS peer's certificate did not match the destination (RFC 5922 §7).
    TlsPeerIdentityMismatch => "tls_peer_identity_mismatch",
    /// A connection idle for `idle_timeout`, closed.
    IdleTimeout => "idle_timeout",
    /// A stream message not completed within `incomplete_message_timeout`.
    IncompleteMessageTimeout => "incomplete_message_timeout",
    /// Stream framing errors, one per [`FramingError`] kind; the connection was closed.
    FramingHeaderTooLarge => "framing_header_too_large",
    FramingMessageTooLarge => "framing_message_too_large",
    FramingMissingContentLength => "framing_missing_content_length",
    FramingNegativeContentLength => "framing_negative_content_length",
    FramingInvalidContentLength => "framing_invalid_content_length",
    FramingConflictingContentLength => "framing_conflicting_content_length",
    /// Reading from a connection failed.
    ReadError => "read_error",
    /// Writing to a connection failed; the connection was closed.
    WriteError => "write_error",
    /// Writing to a connection took longer than `write_timeout`; it was closed.
    WriteTimeout => "write_timeout",
    /// A connection's write queue was full; the send failed.
    WriteQueueFull => "write_queue_full",
    /// An outbound connection could not be set up.
    ConnectError => "connect_error",
    /// An outbound connection was not set up within `connect_timeout`.
    ConnectTimeout => "connect_timeout",
    /// `send_to` failed on a UDP socket.
    UdpSendError => "udp_send_error",
}

impl DropReason {
    /// The reason counted when a stream fails to frame.
    pub fn from_framing(error: &FramingError) -> DropReason {
        match error {
            FramingError::HeaderTooLarge { .. } => DropReason::FramingHeaderTooLarge,
            FramingError::MessageTooLarge { .. } => DropReason::FramingMessageTooLarge,
            FramingError::MissingContentLength => DropReason::FramingMissingContentLength,
            FramingError::NegativeContentLength => DropReason::FramingNegativeContentLength,
            FramingError::InvalidContentLength => DropReason::FramingInvalidContentLength,
            FramingError::ConflictingContentLength => DropReason::FramingConflictingContentLength,
        }
    }
}

const REASON_COUNT: usize = DropReason::ALL.len();

/// Counters the driver updates with relaxed atomics; read them at any time.
#[derive(Debug)]
pub struct TransportCounters {
    drops: [AtomicU64; REASON_COUNT],
    messages_received: AtomicU64,
    messages_sent: AtomicU64,
    keepalive_pings_answered: AtomicU64,
    connections_accepted: AtomicU64,
    connections_opened: AtomicU64,
    tls_handshakes_accepted: AtomicU64,
    tls_handshakes_connected: AtomicU64,
}

impl Default for TransportCounters {
    fn default() -> Self {
        TransportCounters {
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
            messages_received: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            keepalive_pings_answered: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_opened: AtomicU64::new(0),
            tls_handshakes_accepted: AtomicU64::new(0),
            tls_handshakes_connected: AtomicU64::new(0),
        }
    }
}

impl TransportCounters {
    /// How many times `reason` happened.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops
            .get(reason as usize)
            .map_or(0, |count| count.load(Ordering::Relaxed))
    }

    /// Every reason with its count, in [`DropReason::ALL`] order.
    pub fn all_drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|&reason| (reason, self.drops(reason)))
    }

    /// Messages delivered upward (datagrams and framed stream messages).
    pub fn messages_received(&self) -> u64 {
        self.messages_received.load(Ordering::Relaxed)
    }

    /// Messages handed to a socket or a connection's write queue.
    pub fn messages_sent(&self) -> u64 {
        self.messages_sent.load(Ordering::Relaxed)
    }

    /// RFC 5626 double-CRLF pings answered with a CRLF.
    pub fn keepalive_pings_answered(&self) -> u64 {
        self.keepalive_pings_answered.load(Ordering::Relaxed)
    }

    /// Inbound connections accepted within the limits (TLS: before the handshake).
    pub fn connections_accepted(&self) -> u64 {
        self.connections_accepted.load(Ordering::Relaxed)
    }

    /// Outbound connections set up.
    pub fn connections_opened(&self) -> u64 {
        self.connections_opened.load(Ordering::Relaxed)
    }

    /// TLS handshakes completed as the server (inbound connections). Failures are drops
    /// (`tls_handshake_failed`, `tls_handshake_timeout`).
    pub fn tls_handshakes_accepted(&self) -> u64 {
        self.tls_handshakes_accepted.load(Ordering::Relaxed)
    }

    /// TLS handshakes completed as the client (connections the SBC opened).
    pub fn tls_handshakes_connected(&self) -> u64 {
        self.tls_handshakes_connected.load(Ordering::Relaxed)
    }

    pub(crate) fn count_tls_accepted(&self) {
        self.tls_handshakes_accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_tls_connected(&self) {
        self.tls_handshakes_connected
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_drop(&self, reason: DropReason) {
        if let Some(count) = self.drops.get(reason as usize) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn count_received(&self) {
        self.messages_received.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_sent(&self) {
        self.messages_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_pings_answered(&self, pings: usize) {
        self.keepalive_pings_answered
            .fetch_add(u64::try_from(pings).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn count_accepted(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_opened(&self) {
        self.connections_opened.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indices_match_order() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        for (index, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, index);
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
    }
}
