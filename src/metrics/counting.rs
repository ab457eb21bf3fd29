//! What each signalling shard counts on its own, in plain integers owned by its run loop
//! (no atomics, no locks): SIP messages by method or status class and transport, and
//! call outcomes by trunk with the post-dial-delay histogram. The metrics scrape asks
//! every shard for a copy and adds them up.

use std::collections::BTreeMap;
use std::time::Duration;

use sbc_core::b2bua::CallRecord;
use sbc_core::net::Protocol;

use crate::store::Disposition;

/// Request methods with their own label; the rest count as `other`.
pub const METHODS: [&str; 15] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "UPDATE",
    "INFO",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "MESSAGE",
    "PUBLISH",
    "other",
];
/// Status classes.
pub const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];
/// Transports of received messages.
pub const TRANSPORTS: [&str; 3] = ["udp", "tcp", "tls"];

/// Upper bounds (seconds) of the post-dial-delay histogram.
pub const SETUP_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0];

/// What a message's first line says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Request(usize),
    Response(usize),
}

/// Classifies a message by its start line (without parsing it): a request's method, or a
/// response's status class. `None` for what is neither (keep-alives, garbage).
fn classify(bytes: &[u8]) -> Option<Kind> {
    if let Some(rest) = bytes.strip_prefix(b"SIP/2.0 ") {
        let digit = *rest.first()?;
        if (b'1'..=b'6').contains(&digit) && rest.get(1..3)?.iter().all(u8::is_ascii_digit) {
            return Some(Kind::Response(usize::from(digit - b'1')));
        }
        return None;
    }
    let end = bytes.iter().take(32).position(|&b| b == b' ')?;
    let method = &bytes[..end];
    let index = METHODS
        .iter()
        .position(|known| known.as_bytes() == method)
        .unwrap_or(METHODS.len() - 1);
    Some(Kind::Request(index))
}

fn transport_index(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Udp => 0,
        Protocol::Tcp => 1,
        Protocol::Tls => 2,
    }
}

/// SIP messages by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SipTraffic {
    /// Requests received, by method and transport.
    pub requests_received: [[u64; TRANSPORTS.len()]; METHODS.len()],
    /// Responses received, by status class and transport.
    pub responses_received: [[u64; TRANSPORTS.len()]; CLASSES.len()],
    /// Requests sent, by method.
    pub requests_sent: [u64; METHODS.len()],
    /// Responses sent, by status class.
    pub responses_sent: [u64; CLASSES.len()],
}

impl SipTraffic {
    /// A message received over `protocol`.
    pub fn received(&mut self, bytes: &[u8], protocol: Protocol) {
        let transport = transport_index(protocol);
        match classify(bytes) {
            Some(Kind::Request(method)) => self.requests_received[method][transport] += 1,
            Some(Kind::Response(class)) => self.responses_received[class][transport] += 1,
            None => {}
        }
    }

    /// A message sent.
    pub fn sent(&mut self, bytes: &[u8]) {
        match classify(bytes) {
            Some(Kind::Request(method)) => self.requests_sent[method] += 1,
            Some(Kind::Response(class)) => self.responses_sent[class] += 1,
            None => {}
        }
    }

    /// Adds `other` to these.
    pub fn add(&mut self, other: &SipTraffic) {
        for (mine, theirs) in self
            .requests_received
            .iter_mut()
            .flatten()
            .zip(other.requests_received.iter().flatten())
        {
            *mine += theirs;
        }
        for (mine, theirs) in self
            .responses_received
            .iter_mut()
            .flatten()
            .zip(other.responses_received.iter().flatten())
        {
            *mine += theirs;
        }
        for (mine, theirs) in self.requests_sent.iter_mut().zip(&other.requests_sent) {
            *mine += theirs;
        }
        for (mine, theirs) in self.responses_sent.iter_mut().zip(&other.responses_sent) {
            *mine += theirs;
        }
    }
}

/// The calls of one trunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrunkCalls {
    /// By disposition (`answered`, `busy` …).
    pub results: BTreeMap<&'static str, u64>,
    /// Unanswered attempts by the SIP status the caller got.
    pub failures: BTreeMap<u16, u64>,
}

/// A histogram with the fixed [`SETUP_BUCKETS`] (per-bucket counts, not cumulative; the
/// last entry counts what is past the last bound).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub counts: [u64; SETUP_BUCKETS.len() + 1],
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&mut self, value: Duration) {
        let seconds = value.as_secs_f64();
        let bucket = SETUP_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(SETUP_BUCKETS.len());
        self.counts[bucket] += 1;
        self.sum_seconds += seconds;
    }

    pub fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.sum_seconds += other.sum_seconds;
    }
}

/// Call outcomes, from the records of ended calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallOutcomes {
    /// By trunk name (`none` when the call was refused before routing).
    pub by_trunk: BTreeMap<String, TrunkCalls>,
    /// Post-dial delay: the INVITE to the first provisional response from the callee (or
    /// its answer, or failure, when none came first).
    pub setup: Histogram,
    /// Records the B2BUA could not queue, or the CDR writer could not take.
    pub records_dropped: u64,
}

impl CallOutcomes {
    /// Counts the record of an ended call.
    pub fn observe(&mut self, record: &CallRecord) {
        let trunk = match record.trunk.as_deref() {
            Some(name) if !name.is_empty() => name,
            _ => "none",
        };
        let disposition = disposition(record);
        let calls = match self.by_trunk.get_mut(trunk) {
            Some(calls) => calls,
            None => self.by_trunk.entry(trunk.to_owned()).or_default(),
        };
        *calls.results.entry(disposition.as_str()).or_default() += 1;
        if disposition != Disposition::Answered {
            *calls.failures.entry(record.status).or_default() += 1;
        }
        // Only calls that were sent on have a setup delay.
        if record.destination.is_some() {
            let first_answer = record.progress.or(record.answered).unwrap_or(record.ended);
            self.setup
                .observe(first_answer.saturating_duration_since(record.started));
        }
    }

    /// Adds `other` to these.
    pub fn add(&mut self, other: &CallOutcomes) {
        for (trunk, theirs) in &other.by_trunk {
            let mine = self.by_trunk.entry(trunk.clone()).or_default();
            for (result, count) in &theirs.results {
                *mine.results.entry(result).or_default() += count;
            }
            for (status, count) in &theirs.failures {
                *mine.failures.entry(*status).or_default() += count;
            }
        }
        self.setup.add(&other.setup);
        self.records_dropped += other.records_dropped;
    }
}

/// How a call attempt ended, for CDRs and metrics.
pub fn disposition(record: &CallRecord) -> Disposition {
    if record.answered.is_some() {
        Disposition::Answered
    } else if record.end_reason == "cancelled" {
        Disposition::Cancelled
    } else if matches!(record.status, 486 | 600) {
        Disposition::Busy
    } else if matches!(record.status, 408 | 480) {
        Disposition::NoAnswer
    } else if (500..=599).contains(&record.status) || record.end_reason == "caller_unreachable" {
        Disposition::Failed
    } else {
        Disposition::Rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_lines_are_classified_without_parsing() {
        assert_eq!(
            classify(b"INVITE sip:a@b SIP/2.0\r\n"),
            Some(Kind::Request(0))
        );
        assert_eq!(
            classify(b"FOO sip:a@b SIP/2.0\r\n"),
            Some(Kind::Request(14))
        );
        assert_eq!(
            classify(b"SIP/2.0 180 Ringing\r\n"),
            Some(Kind::Response(0))
        );
        assert_eq!(
            classify(b"SIP/2.0 603 Decline\r\n"),
            Some(Kind::Response(5))
        );
        assert_eq!(classify(b"SIP/2.0 99 x\r\n"), None);
        assert_eq!(classify(b"\r\n\r\n"), None);
        assert_eq!(classify(b""), None);
    }

    #[test]
    fn traffic_is_counted_by_method_class_and_transport() {
        let mut traffic = SipTraffic::default();
        traffic.received(b"OPTIONS sip:x SIP/2.0\r\n", Protocol::Tls);
        traffic.received(b"SIP/2.0 200 OK\r\n", Protocol::Udp);
        traffic.sent(b"SIP/2.0 404 Not Found\r\n");
        let mut total = SipTraffic::default();
        total.add(&traffic);
        total.add(&traffic);
        assert_eq!(total.requests_received[4][2], 2);
        assert_eq!(total.responses_received[1][0], 2);
        assert_eq!(total.responses_sent[3], 2);
    }

    #[test]
    fn the_histogram_puts_each_delay_in_its_bucket() {
        let mut histogram = Histogram::default();
        histogram.observe(Duration::from_millis(40));
        histogram.observe(Duration::from_millis(300));
        histogram.observe(Duration::from_secs(60));
        assert_eq!(histogram.counts[0], 1);
        assert_eq!(histogram.counts[3], 1);
        assert_eq!(histogram.counts[SETUP_BUCKETS.len()], 1);
        assert!((histogram.sum_seconds - 60.34).abs() < 1e-9);
    }
}
