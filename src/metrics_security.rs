//! The edge security's Prometheus families that the rest of [`crate::metrics`] does not
//! carry: the registrar's events, the users known, and the call limits (calls in
//! progress in all, per trunk, users with calls). The admission gate's and the trust
//! boundary's counters are in `metrics/edge.rs`.
//!
//! Built at scrape time: the registrar and the call limits are read under their own locks
//! for a moment ([`crate::security::SecurityHandle::figures`]). `docs/metrics.md` lists
//! the families.

use prometheus::proto::MetricFamily;
use sbc_core::policy::call_limits::CallCounts;
use sbc_core::registrar::RegistrarStats;

use crate::control::ShardSnapshot;
use crate::metrics::Families;

/// What the edge security reports at one scrape (besides the shards' and the gate's
/// counters).
#[derive(Debug, Default, Clone)]
pub struct SecurityFigures {
    pub registrar: RegistrarStats,
    /// Users with credentials.
    pub users: usize,
    pub calls: CallCounts,
}

/// The families of `figures` (`shards` for what is counted per shard).
pub fn families(figures: &SecurityFigures, _shards: &[ShardSnapshot]) -> Vec<MetricFamily> {
    let mut out = Families::default();
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
            "sbc_trunk_calls_active",
            "Calls in progress per trunk, both directions (what trunk.max_calls limits).",
            &[("trunk", trunk)],
            f64::from(*calls),
        );
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use prometheus::{Encoder, TextEncoder};

    use super::*;

    #[test]
    fn every_family_is_named_by_convention() {
        let figures = SecurityFigures {
            registrar: RegistrarStats {
                registered: 2,
                refused: 1,
                ..RegistrarStats::default()
            },
            users: 3,
            calls: CallCounts {
                total: 4,
                users: 1,
                trunks: vec![("carrier".into(), 3)],
            },
        };
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&families(&figures, &[]), &mut text)
            .unwrap();
        let text = String::from_utf8(text).unwrap();
        for line in [
            "sbc_registrar_events_total{event=\"registered\"} 2\n",
            "sbc_registrar_events_total{event=\"refused\"} 1\n",
            "sbc_trunk_calls_active{trunk=\"carrier\"} 3\n",
            "sbc_call_limit_calls 4\n",
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
    }
}
