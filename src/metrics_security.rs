//! The edge security's Prometheus families: the admission gate (drops by reason, bans),
//! the trust boundary of every shard (admissions by origin, challenges by cause,
//! refusals by reason), the registrar, the users known, and the call limits.
//!
//! Built at scrape time like the rest of [`crate::metrics`]: the gate answers through
//! its dispatch task ([`crate::security::SecurityHandle::figures`]), the registrar and
//! the call limits are read under their own locks for a moment, the shards' boundary
//! counters come with their snapshots. `docs/metrics.md` lists the families.

use std::collections::BTreeMap;

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use sbc_core::policy::GateStats;
use sbc_core::policy::call_limits::CallCounts;
use sbc_core::registrar::RegistrarStats;

use crate::control::ShardSnapshot;

/// What the edge security reports at one scrape (besides the shards' own counters).
#[derive(Debug, Default, Clone)]
pub struct SecurityFigures {
    /// `None` when the gate did not answer (signalling stopping).
    pub gate: Option<GateStats>,
    pub registrar: RegistrarStats,
    /// Bindings held now.
    pub bindings: usize,
    /// Users with credentials.
    pub users: usize,
    pub calls: CallCounts,
}

/// The families of `figures` and of the boundary counters in `shards`.
pub fn families(figures: &SecurityFigures, shards: &[ShardSnapshot]) -> Vec<MetricFamily> {
    let mut out = Builder::default();
    if let Some(gate) = &figures.gate {
        out.counter(
            "sbc_gate_passed_total",
            "Messages the admission gate passed on to signalling.",
            &[],
            gate.passed,
        );
        for (reason, count) in &gate.dropped {
            out.counter(
                "sbc_gate_dropped_total",
                "Messages the admission gate dropped before parsing, by reason (banned, \
                 acl_denied, not_a_trunk, scanner, rate_limited, overload).",
                &[("reason", reason)],
                *count,
            );
        }
        for (reason, count) in &gate.bans_added {
            out.counter(
                "sbc_bans_added_total",
                "Bans added, by reason (scanner, auth_failures, operator).",
                &[("reason", reason)],
                *count,
            );
        }
        out.gauge(
            "sbc_bans_active",
            "Bans in force (addresses and networks).",
            &[],
            gate.active_bans as f64,
        );
        out.counter(
            "sbc_auth_failures_total",
            "Failed authentications that count toward a ban (wrong password, replayed \
             answer).",
            &[],
            gate.auth_failures,
        );
    }
    let sum = |pick: fn(&ShardSnapshot) -> &BTreeMap<&'static str, u64>| {
        let mut total: BTreeMap<&'static str, u64> = BTreeMap::new();
        for shard in shards {
            for (&name, &count) in pick(shard) {
                *total.entry(name).or_default() += count;
            }
        }
        total
    };
    for (origin, count) in sum(|shard| &shard.policy.admitted) {
        out.counter(
            "sbc_policy_admitted_total",
            "Requests the trust boundary admitted, by origin (trunk, user, \
             registered_flow, unauthenticated).",
            &[("origin", origin)],
            count,
        );
    }
    for (cause, count) in sum(|shard| &shard.policy.challenged) {
        out.counter(
            "sbc_auth_challenges_total",
            "Digest challenges sent (401/407), by cause (missing, stale, and why an \
             answer failed).",
            &[("cause", cause)],
            count,
        );
    }
    for (reason, count) in sum(|shard| &shard.policy.rejected) {
        out.counter(
            "sbc_policy_rejected_total",
            "Requests the trust boundary refused, by reason.",
            &[("reason", reason)],
            count,
        );
    }
    let registrar = &figures.registrar;
    for (event, count) in [
        ("registered", registrar.registered),
        ("refreshed", registrar.refreshed),
        ("unregistered", registrar.unregistered),
        ("expired", registrar.expired),
        ("refused", registrar.refused),
    ] {
        out.counter(
            "sbc_registrar_events_total",
            "Registrar events: bindings added, refreshed, removed by the user, lapsed, \
             and REGISTERs refused.",
            &[("event", event)],
            count,
        );
    }
    out.gauge(
        "sbc_registrar_bindings",
        "Bindings of registered users held.",
        &[],
        figures.bindings as f64,
    );
    out.gauge(
        "sbc_auth_users",
        "Users with digest credentials.",
        &[],
        figures.users as f64,
    );
    out.gauge(
        "sbc_call_limit_calls",
        "Calls holding a place in the call limits (appliance-wide count).",
        &[],
        f64::from(figures.calls.total),
    );
    out.gauge(
        "sbc_call_limit_users",
        "Users with at least one call in progress.",
        &[],
        figures.calls.users as f64,
    );
    for (trunk, calls) in &figures.calls.trunks {
        out.gauge(
            "sbc_trunk_calls",
            "Calls in progress per trunk, both directions.",
            &[("trunk", trunk)],
            f64::from(*calls),
        );
    }
    out.families
}

/// Families under construction, in the order first added.
#[derive(Default)]
struct Builder {
    families: Vec<MetricFamily>,
}

impl Builder {
    fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        let mut counter = Counter::default();
        counter.set_value(value as f64);
        let mut metric = Metric::from_label(label_pairs(labels));
        metric.set_counter(counter);
        self.family(name, help, MetricType::COUNTER).push(metric);
    }

    fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let mut gauge = Gauge::default();
        gauge.set_value(value);
        let mut metric = Metric::from_label(label_pairs(labels));
        metric.set_gauge(gauge);
        self.family(name, help, MetricType::GAUGE).push(metric);
    }

    fn family(&mut self, name: &str, help: &str, kind: MetricType) -> &mut Vec<Metric> {
        let position = match self.families.iter().position(|f| f.name() == name) {
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

    use prometheus::{Encoder, TextEncoder};

    use super::*;

    #[test]
    fn shards_are_summed_and_every_family_is_named_by_convention() {
        let mut gate = GateStats {
            passed: 10,
            active_bans: 2,
            auth_failures: 5,
            ..GateStats::default()
        };
        gate.dropped.insert("rate_limited", 7);
        gate.bans_added.insert("auth_failures", 1);
        let mut first = ShardSnapshot::default();
        first.policy.challenged.insert("missing", 3);
        first.policy.admitted.insert("user", 1);
        let mut second = ShardSnapshot::default();
        second.policy.challenged.insert("missing", 4);
        second.policy.rejected.insert("overload", 9);
        let figures = SecurityFigures {
            gate: Some(gate),
            registrar: RegistrarStats {
                registered: 2,
                ..RegistrarStats::default()
            },
            bindings: 2,
            users: 3,
            calls: CallCounts {
                total: 4,
                users: 1,
                trunks: vec![("carrier".into(), 3)],
            },
        };
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&families(&figures, &[first, second]), &mut text)
            .unwrap();
        let text = String::from_utf8(text).unwrap();
        for line in [
            "sbc_gate_dropped_total{reason=\"rate_limited\"} 7\n",
            "sbc_bans_active 2\n",
            "sbc_auth_challenges_total{cause=\"missing\"} 7\n",
            "sbc_policy_rejected_total{reason=\"overload\"} 9\n",
            "sbc_registrar_events_total{event=\"registered\"} 2\n",
            "sbc_trunk_calls{trunk=\"carrier\"} 3\n",
            "sbc_auth_users 3\n",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        for line in text.lines().filter(|line| line.starts_with("# TYPE ")) {
            let mut words = line.split(' ').skip(2);
            let (name, kind) = (words.next().unwrap(), words.next().unwrap());
            assert!(name.starts_with("sbc_"), "{line}");
            assert_eq!(name.ends_with("_total"), kind == "counter", "{line}");
        }
        // Without the gate's answer, its families are left out, the rest stays.
        let quiet = families(&SecurityFigures::default(), &[]);
        assert!(
            quiet
                .iter()
                .all(|family| !family.name().starts_with("sbc_gate"))
        );
        assert!(quiet.iter().any(|family| family.name() == "sbc_auth_users"));
    }
}
