//! Prometheus metrics, built at scrape time from what each component counts on its own:
//! the shards' statistics (asked through [`crate::control`]), the transports' atomic
//! counters, and the relay workers' statistics. Nothing on a hot path touches a shared
//! counter for the sake of metrics; sums happen here, once per scrape.
//!
//! Names follow the Prometheus conventions: `sbc_` prefix, `_total` for counters, base
//! units (seconds, bytes), label values from fixed sets (reason names defined by the
//! code, trunk names from the configuration). `docs/metrics.md` lists them all.

pub mod counting;
mod edge;

use std::collections::BTreeMap;

use prometheus::core::Collector;
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};

use crate::control::ShardSnapshot;

/// Everything one scrape reports, gathered by the caller.
#[derive(Debug, Default)]
pub struct Scrape {
    pub shards: Vec<ShardSnapshot>,
    pub transport: TransportFigures,
    pub relay: RelayFigures,
    pub uptime_seconds: f64,
    pub draining: bool,
    /// Registration bindings stored.
    pub registrations: u64,
    /// The admission gate's counters (`None` when it did not answer).
    pub gate: Option<sbc_core::policy::GateStats>,
    pub cdr: CdrFigures,
    /// The edge security's own figures (registrar events, users, call limits).
    pub security: crate::metrics_security::SecurityFigures,
    /// The STIR certificate (x5u) fetcher's counters.
    pub x5u: sbc_core::net::x5u::FetcherStats,
    /// Requests for the SBC's own certificate its publisher served.
    pub x5u_published: u64,
}

/// The CDR writer's counters.
#[derive(Debug, Default)]
pub struct CdrFigures {
    pub written: u64,
    pub dropped: u64,
    pub write_errors: u64,
    pub without_media: u64,
}

/// The SIP transports' counters.
#[derive(Debug, Default)]
pub struct TransportFigures {
    pub messages_received: u64,
    pub messages_sent: u64,
    pub drops: Vec<(&'static str, u64)>,
    pub connections_open: u64,
    pub connections_accepted: u64,
    pub connections_opened: u64,
    pub tls_handshakes_accepted: u64,
    pub tls_handshakes_connected: u64,
    pub keepalive_pings_answered: u64,
}

/// The media relay's figures: per worker, and the port pool.
#[derive(Debug, Default)]
pub struct RelayFigures {
    pub workers: Vec<media_relay::WorkerStats>,
    pub port_pairs_total: u64,
    pub port_pairs_free: u64,
    pub sessions: u64,
}

/// The text exposition (format 0.0.4) of `scrape` plus the process's own metrics.
pub fn encode(scrape: &Scrape) -> Result<String, prometheus::Error> {
    let mut families = Families::default();
    sip(&mut families, scrape);
    edge::traffic(&mut families, scrape);
    calls(&mut families, scrape);
    edge::outcomes(&mut families, scrape);
    identity(&mut families, scrape);
    relay(&mut families, &scrape.relay);
    edge::admission(&mut families, scrape);
    edge::store(&mut families, scrape);
    families.gauge(
        "sbc_uptime_seconds",
        "Seconds since signalling started.",
        &[],
        scrape.uptime_seconds,
    );
    families.gauge(
        "sbc_draining",
        "1 while the appliance refuses new calls (drain), else 0.",
        &[],
        f64::from(u8::from(scrape.draining)),
    );
    families.gauge(
        "sbc_build_info",
        "Always 1; the version is in the label.",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    let mut all = families.finish();
    all.extend(crate::metrics_security::families(
        &scrape.security,
        &scrape.shards,
    ));
    all.extend(prometheus::process_collector::ProcessCollector::for_self().collect());
    let mut text = Vec::new();
    TextEncoder::new().encode(&all, &mut text)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

fn sip(families: &mut Families, scrape: &Scrape) {
    let transport = &scrape.transport;
    families.counter(
        "sbc_sip_messages_received_total",
        "SIP messages received and handed to signalling.",
        &[],
        transport.messages_received,
    );
    families.counter(
        "sbc_sip_messages_sent_total",
        "SIP messages sent.",
        &[],
        transport.messages_sent,
    );
    for &(reason, count) in &transport.drops {
        families.counter(
            "sbc_sip_transport_dropped_total",
            "Datagrams, connections or messages the transports dropped, by reason.",
            &[("reason", reason)],
            count,
        );
    }
    families.gauge(
        "sbc_sip_connections",
        "Open TCP and TLS connections.",
        &[],
        transport.connections_open as f64,
    );
    for (direction, count) in [
        ("inbound", transport.connections_accepted),
        ("outbound", transport.connections_opened),
    ] {
        families.counter(
            "sbc_sip_connections_total",
            "TCP and TLS connections established, by who opened them.",
            &[("direction", direction)],
            count,
        );
    }
    for (direction, count) in [
        ("inbound", transport.tls_handshakes_accepted),
        ("outbound", transport.tls_handshakes_connected),
    ] {
        families.counter(
            "sbc_tls_handshakes_total",
            "TLS handshakes completed (failures: sbc_tls_handshake_failures_total).",
            &[("direction", direction)],
            count,
        );
    }
    families.counter(
        "sbc_sip_keepalive_pings_total",
        "RFC 5626 CRLF keep-alive pings answered on connections.",
        &[],
        transport.keepalive_pings_answered,
    );
    let sum = |pick: fn(&ShardSnapshot) -> &BTreeMap<&'static str, u64>| {
        sum_maps(scrape.shards.iter().map(pick))
    };
    for (reason, count) in sum(|shard| &shard.endpoint.rejected) {
        families.counter(
            "sbc_sip_requests_rejected_total",
            "Requests answered with an error before reaching a transaction (malformed, \
             unsupported …), by reason.",
            &[("reason", reason)],
            count,
        );
    }
    for (reason, count) in sum(|shard| &shard.endpoint.dropped) {
        families.counter(
            "sbc_sip_messages_dropped_total",
            "Messages signalling dropped without an answer, by reason.",
            &[("reason", reason)],
            count,
        );
    }
    for (class, count) in sum(|shard| &shard.endpoint.answered) {
        families.counter(
            "sbc_sip_requests_answered_total",
            "Requests answered by a server transaction, by the class of the final status.",
            &[("status_class", class)],
            count,
        );
    }
    families.gauge(
        "sbc_sip_transactions",
        "SIP transactions in progress (including those kept to absorb retransmissions).",
        &[],
        scrape
            .shards
            .iter()
            .map(|shard| shard.transactions)
            .sum::<usize>() as f64,
    );
}

fn calls(families: &mut Families, scrape: &Scrape) {
    let b2bua = |pick: fn(&ShardSnapshot) -> u64| scrape.shards.iter().map(pick).sum::<u64>();
    families.gauge(
        "sbc_calls_active",
        "Calls in progress.",
        &[],
        scrape.shards.iter().map(|shard| shard.calls).sum::<usize>() as f64,
    );
    families.counter(
        "sbc_calls_started_total",
        "Dialog-creating INVITEs accepted and sent on.",
        &[],
        b2bua(|shard| shard.b2bua.calls_started),
    );
    families.counter(
        "sbc_calls_answered_total",
        "Calls that reached a 2xx.",
        &[],
        b2bua(|shard| shard.b2bua.calls_answered),
    );
    families.counter(
        "sbc_call_failovers_total",
        "Call attempts moved on to the next target (timeout, transport error, 408, 5xx).",
        &[],
        b2bua(|shard| shard.b2bua.failovers),
    );
    let sum = |pick: fn(&ShardSnapshot) -> &BTreeMap<&'static str, u64>| {
        sum_maps(scrape.shards.iter().map(pick))
    };
    for (reason, count) in sum(|shard| &shard.b2bua.rejected) {
        families.counter(
            "sbc_calls_rejected_total",
            "New calls and in-dialog requests the B2BUA refused, by reason.",
            &[("reason", reason)],
            count,
        );
    }
    for (reason, count) in sum(|shard| &shard.b2bua.ended) {
        families.counter(
            "sbc_calls_ended_total",
            "Calls ended, by how they ended.",
            &[("reason", reason)],
            count,
        );
    }
    for (reason, count) in sum(|shard| &shard.b2bua.dropped) {
        families.counter(
            "sbc_call_messages_dropped_total",
            "Messages the B2BUA dropped, by reason.",
            &[("reason", reason)],
            count,
        );
    }
    for (reason, count) in sum(|shard| &shard.b2bua.media_errors) {
        families.counter(
            "sbc_media_errors_total",
            "Media relay requests that failed for the B2BUA, by reason.",
            &[("reason", reason)],
            count,
        );
    }
    for (step, count) in sum(|shard| &shard.b2bua.media_fallbacks) {
        families.counter(
            "sbc_media_fallbacks_total",
            "Offers made again one media profile down after the callee refused the first.",
            &[("step", step)],
            count,
        );
    }
}

/// STIR/SHAKEN: verdicts, rejections and signatures, by stable name (docs/identity.md).
fn identity(families: &mut Families, scrape: &Scrape) {
    let sum = |pick: fn(&ShardSnapshot) -> &BTreeMap<&'static str, u64>| {
        sum_maps(scrape.shards.iter().map(pick))
    };
    for (result, count) in sum(|shard| &shard.b2bua.identity.verdicts) {
        families.counter(
            "sbc_identity_verifications_total",
            "Calls whose caller identity was verified, by result (passed, absent, or the failure).",
            &[("result", result)],
            count,
        );
    }
    for (reason, count) in sum(|shard| &shard.b2bua.identity.rejected) {
        families.counter(
            "sbc_identity_rejected_total",
            "Calls rejected because their identity did not verify, by reason.",
            &[("reason", reason)],
            count,
        );
    }
    for (attestation, count) in sum(|shard| &shard.b2bua.identity.signed) {
        families.counter(
            "sbc_identity_signed_total",
            "Calls the SBC signed, by attestation level.",
            &[("attestation", attestation)],
            count,
        );
    }
    for (reason, count) in sum(|shard| &shard.b2bua.identity.sign_failures) {
        families.counter(
            "sbc_identity_sign_failures_total",
            "Calls the SBC could not sign, by reason.",
            &[("reason", reason)],
            count,
        );
    }
    let total = |pick: fn(&ShardSnapshot) -> u64| scrape.shards.iter().map(pick).sum::<u64>();
    families.counter(
        "sbc_identity_certificate_fetches_total",
        "STIR certificates the shards asked the fetcher for.",
        &[],
        total(|shard| shard.b2bua.identity.fetches),
    );
    families.counter(
        "sbc_identity_calls_waited_total",
        "Calls that waited for the certificate their verification needed.",
        &[],
        total(|shard| shard.b2bua.identity.waited),
    );
    let x5u = &scrape.x5u;
    families.counter(
        "sbc_identity_x5u_cache_hits_total",
        "Certificate requests the x5u fetcher answered from its cache.",
        &[],
        x5u.cache_hits,
    );
    families.counter(
        "sbc_identity_x5u_cache_misses_total",
        "Certificate requests the x5u fetcher's cache could not answer (joined to a fetch or fetched).",
        &[],
        x5u.cache_misses,
    );
    families.counter(
        "sbc_identity_x5u_fetches_total",
        "Certificate documents the x5u fetcher fetched successfully over HTTPS.",
        &[],
        x5u.fetched,
    );
    for (reason, count) in &x5u.failed {
        families.counter(
            "sbc_identity_x5u_fetch_failures_total",
            "Certificate fetches that failed, by reason.",
            &[("reason", reason)],
            *count,
        );
    }
    families.gauge(
        "sbc_identity_x5u_cache_entries",
        "URLs in the x5u fetcher's cache (certificates and remembered failures).",
        &[],
        x5u.cached as f64,
    );
    families.counter(
        "sbc_identity_x5u_published_total",
        "Requests for the SBC's own certificate that its publisher answered.",
        &[],
        scrape.x5u_published,
    );
}

fn relay(families: &mut Families, relay: &RelayFigures) {
    for (index, worker) in relay.workers.iter().enumerate() {
        let worker_label = index.to_string();
        let labels = [("worker", worker_label.as_str())];
        families.counter(
            "sbc_relay_packets_received_total",
            "RTP and RTCP packets the relay received, per worker.",
            &labels,
            worker.packets_received,
        );
        families.counter(
            "sbc_relay_bytes_received_total",
            "Bytes of RTP and RTCP the relay received, per worker.",
            &labels,
            worker.bytes_received,
        );
        families.counter(
            "sbc_relay_packets_forwarded_total",
            "Packets the relay forwarded, per worker.",
            &labels,
            worker.packets_forwarded,
        );
        families.counter(
            "sbc_relay_bytes_forwarded_total",
            "Bytes the relay forwarded, per worker.",
            &labels,
            worker.bytes_forwarded,
        );
        for reason in media_relay::DropReason::ALL {
            families.counter(
                "sbc_relay_dropped_total",
                "Packets the relay dropped, per worker and reason.",
                &[("worker", worker_label.as_str()), ("reason", reason.name())],
                worker.drops.get(reason),
            );
        }
        for error in media_relay::srtp::SrtpError::PACKET_ERRORS {
            families.counter(
                "sbc_relay_srtp_dropped_total",
                "SRTP/SRTCP packets the relay refused, per worker and reason.",
                &[("worker", worker_label.as_str()), ("reason", error.name())],
                worker.srtp_drops.get(error),
            );
        }
        for reason in media_relay::dtls::DtlsDrop::ALL {
            families.counter(
                "sbc_relay_dtls_dropped_total",
                "DTLS records the relay kept from its handshake thread, per worker and reason.",
                &[("worker", worker_label.as_str()), ("reason", reason.name())],
                worker.dtls_drops.get(reason),
            );
        }
        families.counter(
            "sbc_relay_stun_answered_total",
            "ICE connectivity checks (STUN binding requests) the relay answered, per worker.",
            &labels,
            worker.stun_answered,
        );
        for (outcome, count) in [
            ("completed", worker.dtls_handshakes),
            ("failed", worker.dtls_failures),
        ] {
            families.counter(
                "sbc_relay_dtls_handshakes_total",
                "DTLS-SRTP handshakes of the relay's legs, per worker and outcome.",
                &[("worker", worker_label.as_str()), ("outcome", outcome)],
                count,
            );
        }
        families.gauge(
            "sbc_relay_worker_sessions",
            "Media sessions owned by each relay worker.",
            &labels,
            worker.sessions as f64,
        );
        families.counter_f64(
            "sbc_relay_cpu_seconds_total",
            "CPU time spent by each relay worker thread.",
            &labels,
            worker.cpu_time_ns as f64 / 1e9,
        );
    }
    families.gauge(
        "sbc_relay_sessions",
        "Media sessions allocated (one per anchored call).",
        &[],
        relay.sessions as f64,
    );
    for (state, pairs) in [
        ("free", relay.port_pairs_free),
        (
            "in_use",
            relay.port_pairs_total.saturating_sub(relay.port_pairs_free),
        ),
    ] {
        families.gauge(
            "sbc_relay_port_pairs",
            "RTP/RTCP port pairs of the configured range, by state.",
            &[("state", state)],
            pairs as f64,
        );
    }
}

/// Adds up per-shard maps keyed by reason name.
pub(crate) fn sum_maps<'a>(
    maps: impl Iterator<Item = &'a BTreeMap<&'static str, u64>>,
) -> BTreeMap<&'static str, u64> {
    let mut total = BTreeMap::new();
    for map in maps {
        for (&name, &count) in map {
            *total.entry(name).or_insert(0) += count;
        }
    }
    total
}

/// Metric families under construction, by name, in the order they were first added.
#[derive(Default)]
pub(crate) struct Families {
    families: Vec<MetricFamily>,
}

impl Families {
    pub(crate) fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.counter_f64(name, help, labels, value as f64);
    }

    fn counter_f64(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let mut counter = Counter::default();
        counter.set_value(value);
        let mut metric = Metric::from_label(label_pairs(labels));
        metric.set_counter(counter);
        self.family(name, help, MetricType::COUNTER).push(metric);
    }

    pub(crate) fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let mut gauge = Gauge::default();
        gauge.set_value(value);
        let mut metric = Metric::from_label(label_pairs(labels));
        metric.set_gauge(gauge);
        self.family(name, help, MetricType::GAUGE).push(metric);
    }

    /// A histogram from per-bucket counts (not cumulative; `bounds` ascending, in
    /// seconds; the count past the last bound goes to `+Inf`).
    pub(crate) fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        counts: &[u64],
        sum_seconds: f64,
    ) {
        let mut cumulative = 0;
        let buckets = bounds
            .iter()
            .zip(counts)
            .map(|(&bound, &count)| {
                cumulative += count;
                let mut bucket = Bucket::default();
                bucket.set_upper_bound(bound);
                bucket.set_cumulative_count(cumulative);
                bucket
            })
            .collect();
        let total = counts.iter().sum();
        let mut histogram = Histogram::default();
        histogram.set_bucket(buckets);
        histogram.set_sample_count(total);
        histogram.set_sample_sum(sum_seconds);
        let mut metric = Metric::from_label(label_pairs(labels));
        metric.set_histogram(histogram);
        self.family(name, help, MetricType::HISTOGRAM).push(metric);
    }

    fn family(&mut self, name: &str, help: &str, kind: MetricType) -> &mut Vec<Metric> {
        let position = match self
            .families
            .iter()
            .position(|family| family.name() == name)
        {
            Some(position) => position,
            None => {
                let mut family = MetricFamily::default();
                family.set_name(name.to_owned());
                family.set_help(help.to_owned());
                family.set_field_type(kind);
                self.families.push(family);
                self.families.len() - 1
            }
        };
        self.families[position].mut_metric()
    }

    pub(crate) fn finish(self) -> Vec<MetricFamily> {
        self.families
    }
}

fn label_pairs(labels: &[(&str, &str)]) -> Vec<LabelPair> {
    labels
        .iter()
        .map(|&(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name(name.to_owned());
            pair.set_value(value.to_owned());
            pair
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn scrape() -> Scrape {
        let mut first = ShardSnapshot {
            calls: 2,
            ..ShardSnapshot::default()
        };
        first.b2bua.calls_started = 5;
        first.b2bua.ended.insert("bye_from_a", 3);
        let mut second = ShardSnapshot {
            calls: 1,
            ..ShardSnapshot::default()
        };
        second.b2bua.calls_started = 7;
        second.b2bua.ended.insert("bye_from_a", 4);
        second.b2bua.ended.insert("cancelled", 1);
        Scrape {
            shards: vec![first, second],
            transport: TransportFigures {
                messages_received: 10,
                drops: vec![("tls_handshake_failed", 2)],
                ..TransportFigures::default()
            },
            relay: RelayFigures {
                workers: vec![media_relay::WorkerStats::default(); 2],
                port_pairs_total: 100,
                port_pairs_free: 97,
                sessions: 3,
            },
            uptime_seconds: 12.5,
            draining: false,
            registrations: 4,
            gate: None,
            cdr: CdrFigures::default(),
            security: Default::default(),
            x5u: sbc_core::net::x5u::FetcherStats {
                cache_hits: 5,
                cache_misses: 2,
                fetched: 1,
                failed: [("timeout", 1)].into_iter().collect(),
                cached: 2,
            },
            x5u_published: 0,
        }
    }

    #[test]
    fn the_x5u_fetcher_counts_are_exported() {
        let text = encode(&scrape()).unwrap();
        for line in [
            "sbc_identity_x5u_cache_hits_total 5\n",
            "sbc_identity_x5u_cache_misses_total 2\n",
            "sbc_identity_x5u_fetches_total 1\n",
            "sbc_identity_x5u_fetch_failures_total{reason=\"timeout\"} 1\n",
            "sbc_identity_x5u_cache_entries 2\n",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
    }

    #[test]
    fn shards_are_summed_and_named_by_convention() {
        let text = encode(&scrape()).unwrap();
        assert!(text.contains("sbc_calls_active 3\n"), "{text}");
        assert!(text.contains("sbc_calls_started_total 12\n"), "{text}");
        assert!(
            text.contains("sbc_calls_ended_total{reason=\"bye_from_a\"} 7\n"),
            "{text}"
        );
        assert!(
            text.contains("sbc_calls_ended_total{reason=\"cancelled\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("sbc_sip_transport_dropped_total{reason=\"tls_handshake_failed\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("sbc_relay_port_pairs{state=\"in_use\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("sbc_relay_dropped_total{worker=\"1\",reason=\"unexpected_source\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE sbc_calls_started_total counter"),
            "{text}"
        );
        assert!(text.contains("# TYPE sbc_calls_active gauge"), "{text}");
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
    }

    #[test]
    fn every_family_is_named_by_convention() {
        let text = encode(&scrape()).unwrap();
        for line in text.lines().filter(|line| line.starts_with("# TYPE ")) {
            let mut words = line.split(' ').skip(2);
            let (name, kind) = (words.next().unwrap(), words.next().unwrap());
            assert!(
                name.starts_with("sbc_") || name.starts_with("process_"),
                "{line}"
            );
            assert_eq!(name.ends_with("_total"), kind == "counter", "{line}");
        }
    }

    #[test]
    fn histograms_are_cumulative() {
        let mut families = Families::default();
        families.histogram(
            "sbc_test_seconds",
            "test",
            &[],
            &[0.1, 1.0],
            &[2, 3, 1],
            4.5,
        );
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&families.finish(), &mut text)
            .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("sbc_test_seconds_bucket{le=\"0.1\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("sbc_test_seconds_bucket{le=\"1\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("sbc_test_seconds_bucket{le=\"+Inf\"} 6\n"),
            "{text}"
        );
        assert!(text.contains("sbc_test_seconds_count 6\n"), "{text}");
    }
}
