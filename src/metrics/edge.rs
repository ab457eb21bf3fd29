//! Families beyond the transports, calls and relay: SIP traffic by method, status class
//! and transport; call outcomes by trunk with the post-dial-delay histogram; the
//! admission gate and the ingress policy (bans, drops, authentication challenges); the
//! store and the CDR writer.

use super::counting::{CLASSES, CallOutcomes, METHODS, SETUP_BUCKETS, SipTraffic, TRANSPORTS};
use super::{Families, Scrape, sum_maps};
use crate::control::ShardSnapshot;

pub(super) fn traffic(families: &mut Families, scrape: &Scrape) {
    let mut total = SipTraffic::default();
    for shard in &scrape.shards {
        total.add(&shard.counters.traffic);
    }
    for (method, by_transport) in METHODS.iter().zip(&total.requests_received) {
        for (transport, count) in TRANSPORTS.iter().zip(by_transport) {
            families.counter(
                "sbc_sip_requests_received_total",
                "SIP requests received by signalling, by method and transport (retransmissions \
                 included).",
                &[("method", method), ("transport", transport)],
                *count,
            );
        }
    }
    for (class, by_transport) in CLASSES.iter().zip(&total.responses_received) {
        for (transport, count) in TRANSPORTS.iter().zip(by_transport) {
            families.counter(
                "sbc_sip_responses_received_total",
                "SIP responses received by signalling, by status class and transport.",
                &[("status_class", class), ("transport", transport)],
                *count,
            );
        }
    }
    for (method, count) in METHODS.iter().zip(&total.requests_sent) {
        families.counter(
            "sbc_sip_requests_sent_total",
            "SIP requests signalling sent, by method (retransmissions included).",
            &[("method", method)],
            *count,
        );
    }
    for (class, count) in CLASSES.iter().zip(&total.responses_sent) {
        families.counter(
            "sbc_sip_responses_sent_total",
            "SIP responses signalling sent, by status class (retransmissions included).",
            &[("status_class", class)],
            *count,
        );
    }
    let tls_failures = [
        "tls_handshake_failed",
        "tls_handshake_timeout",
        "tls_peer_identity_mismatch",
    ];
    for &(reason, count) in &scrape.transport.drops {
        if tls_failures.contains(&reason) {
            families.counter(
                "sbc_tls_handshake_failures_total",
                "TLS handshakes that failed, by reason.",
                &[("reason", reason)],
                count,
            );
        }
    }
}

pub(super) fn outcomes(families: &mut Families, scrape: &Scrape) {
    let mut total = CallOutcomes::default();
    for shard in &scrape.shards {
        total.add(&shard.counters.calls);
    }
    for (trunk, calls) in &total.by_trunk {
        for disposition in crate::store::Disposition::ALL {
            families.counter(
                "sbc_trunk_calls_total",
                "Call attempts ended, by trunk (none: refused before routing) and result \
                 (answered, busy, no_answer, cancelled, rejected, failed).",
                &[("trunk", trunk), ("result", disposition.as_str())],
                calls
                    .results
                    .get(disposition.as_str())
                    .copied()
                    .unwrap_or(0),
            );
        }
        for (status, count) in &calls.failures {
            let status = status.to_string();
            families.counter(
                "sbc_trunk_call_failures_total",
                "Unanswered call attempts by trunk and the SIP status the caller got.",
                &[("trunk", trunk), ("status", &status)],
                *count,
            );
        }
    }
    families.histogram(
        "sbc_call_setup_seconds",
        "Post-dial delay of calls sent on: the INVITE to the callee's first provisional \
         response (or final answer when none came first).",
        &[],
        &SETUP_BUCKETS,
        &total.setup.counts,
        total.setup.sum_seconds,
    );
}

pub(super) fn store(families: &mut Families, scrape: &Scrape) {
    families.gauge(
        "sbc_registrations",
        "Registration bindings stored.",
        &[],
        scrape.registrations as f64,
    );
    let cdr = &scrape.cdr;
    families.counter(
        "sbc_cdr_written_total",
        "Call detail records written to the store.",
        &[],
        cdr.written,
    );
    families.counter(
        "sbc_cdr_dropped_total",
        "Call detail records lost (the writer's queue was full, or the store refused a \
         batch every time).",
        &[],
        cdr.dropped,
    );
    families.counter(
        "sbc_cdr_write_errors_total",
        "Failed attempts to write a batch of call detail records.",
        &[],
        cdr.write_errors,
    );
    families.counter(
        "sbc_cdr_without_media_total",
        "Call detail records written without media statistics (they did not come in time).",
        &[],
        cdr.without_media,
    );
}

pub(super) fn admission(families: &mut Families, scrape: &Scrape) {
    let sum = |pick: fn(&ShardSnapshot) -> &std::collections::BTreeMap<&'static str, u64>| {
        sum_maps(scrape.shards.iter().map(pick))
    };
    for (origin, count) in sum(|shard| &shard.policy.admitted) {
        families.counter(
            "sbc_policy_admitted_total",
            "Requests the ingress policy admitted, by origin (trunk, user, registered_flow, \
             unauthenticated).",
            &[("origin", origin)],
            count,
        );
    }
    for (cause, count) in sum(|shard| &shard.policy.challenged) {
        families.counter(
            "sbc_auth_challenges_total",
            "Digest challenges sent (401/407), by cause: missing credentials, a stale nonce, \
             or the authentication failure that made the answer unacceptable.",
            &[("cause", cause)],
            count,
        );
    }
    for (reason, count) in sum(|shard| &shard.policy.rejected) {
        families.counter(
            "sbc_policy_rejected_total",
            "Requests the ingress policy refused, by reason.",
            &[("reason", reason)],
            count,
        );
    }
    let Some(gate) = &scrape.gate else {
        return;
    };
    families.counter(
        "sbc_admission_passed_total",
        "Messages the admission gate passed on to signalling.",
        &[],
        gate.passed,
    );
    for (reason, count) in &gate.dropped {
        families.counter(
            "sbc_admission_dropped_total",
            "Messages the admission gate dropped, by reason (banned, acl_denied, not_a_trunk, \
             scanner, rate_limited).",
            &[("reason", reason)],
            *count,
        );
    }
    for (reason, count) in &gate.bans_added {
        families.counter(
            "sbc_bans_added_total",
            "Bans added, by reason (scanner, auth_failures, operator).",
            &[("reason", reason)],
            *count,
        );
    }
    families.counter(
        "sbc_auth_failures_total",
        "Authentication failures the shards reported to the admission gate.",
        &[],
        gate.auth_failures,
    );
    families.gauge(
        "sbc_bans_active",
        "Bans in force in the admission gate.",
        &[],
        gate.active_bans as f64,
    );
}
