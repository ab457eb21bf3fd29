//! The config objects the appliance runs with: the trunks and routes of the
//! configuration file (read-only at run time) and those created through the admin API
//! (in the store), checked with the configuration's own validation and turned into one
//! routing table.
//!
//! Routes created through the API are tried first, by ascending priority then name;
//! the configuration file's routes follow in file order (so a catch-all route in the file
//! stays the default).

use admin_api::model::{
    HeaderPolicy, IncomingIdentity as ApiIncomingIdentity, KeyExchange, RouteSpec, SrtpPolicySpec,
    Transport, TrunkAclSpec, TrunkIdentitySpec, TrunkSpec, TrunkTarget,
    VerifyMode as IdentityVerifyMode,
};
use sbc_core::routing::RoutingTable;
use serde_json::Value;

use crate::config::{self, Config, HeaderPolicyConfig, RouteConfig, TransportKind, TrunkConfig};
use crate::store::{ObjectKind, PageRequest, Store, StoreResult, StoredObject};

/// The priority shown for the configuration file's routes (which come after every route
/// created through the API whatever its priority).
pub const FILE_ROUTE_PRIORITY: u16 = u16::MAX;

/// A field that is not acceptable: its path in the spec, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
}

impl FieldProblem {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> FieldProblem {
        FieldProblem {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Every stored object of `kind`, by name.
pub fn stored(store: &Store, kind: ObjectKind) -> StoreResult<Vec<StoredObject>> {
    let mut all = Vec::new();
    let mut page = PageRequest::first(1_000);
    loop {
        let objects = store.list_objects(kind, &page)?;
        all.extend(objects.items);
        match objects.next_cursor {
            Some(cursor) => page = PageRequest::after(cursor, 1_000),
            None => return Ok(all),
        }
    }
}

fn from_json<T: serde::de::DeserializeOwned>(spec: &Value) -> Result<T, FieldProblem> {
    serde_path_to_error::deserialize(spec).map_err(|error| {
        let field = error.path().to_string();
        let message = error.into_inner().to_string();
        FieldProblem::new(if field == "." { "spec".into() } else { field }, message)
    })
}

/// A trunk spec (as the API stores it) as the configuration's trunk.
pub fn trunk_config(spec: &Value) -> Result<TrunkConfig, FieldProblem> {
    from_json(spec)
}

/// A route spec (as the API stores it) as its priority and the configuration's route.
pub fn route_config(spec: &Value) -> Result<(u16, RouteConfig), FieldProblem> {
    let mut spec = spec.clone();
    let priority = spec
        .as_object_mut()
        .and_then(|object| object.remove("priority"))
        .and_then(|priority| priority.as_u64())
        .and_then(|priority| u16::try_from(priority).ok())
        .unwrap_or(100);
    Ok((priority, from_json(&spec)?))
}

fn transport(kind: TransportKind) -> Transport {
    match kind {
        TransportKind::Udp => Transport::Udp,
        TransportKind::Tcp => Transport::Tcp,
        TransportKind::Tls => Transport::Tls,
    }
}

/// A configuration-file trunk in the API's shape.
pub fn trunk_spec(trunk: &TrunkConfig) -> TrunkSpec {
    TrunkSpec {
        name: trunk.name.clone(),
        targets: trunk
            .targets
            .iter()
            .map(|target| TrunkTarget {
                address: target.to_string(),
                priority: target.priority,
                weight: target.weight,
            })
            .collect(),
        transport: transport(trunk.transport),
        trusted: trunk.trusted,
        keepalive_secs: trunk.keepalive_secs,
        headers: trunk.headers.as_ref().map(|policy| match policy {
            HeaderPolicyConfig::Allow(names) => HeaderPolicy::Allow(names.clone()),
            HeaderPolicyConfig::Deny(names) => HeaderPolicy::Deny(names.clone()),
        }),
        identity: identity_spec(&trunk.identity),
        acl: TrunkAclSpec {
            allow: trunk.acl.allow.clone(),
            deny: trunk.acl.deny.clone(),
        },
        require_tls: trunk.require_tls,
        require_client_cert: trunk.require_client_cert,
        max_calls: trunk.max_calls,
        store_and_forward: trunk.store_and_forward,
        srtp: trunk.srtp.as_ref().map(srtp_spec),
    }
}

/// A media security policy in the API's shape (every key written out).
fn srtp_spec(policy: &config::SrtpPolicyConfig) -> SrtpPolicySpec {
    let requirement = |value: config::RequirementConfig| match value {
        config::RequirementConfig::Require => KeyExchange::Require,
        config::RequirementConfig::Prefer => KeyExchange::Prefer,
        config::RequirementConfig::Allow => KeyExchange::Allow,
        config::RequirementConfig::Forbid => KeyExchange::Forbid,
    };
    SrtpPolicySpec {
        sdes: Some(requirement(policy.sdes)),
        dtls: Some(requirement(policy.dtls)),
        suites: Some(policy.suites.clone()),
        sdes_over_insecure_signalling: policy.sdes_over_insecure_signalling,
    }
}

/// A trunk's identity policy in the API's shape (`None` when it is all defaults).
fn identity_spec(policy: &config::TrunkIdentityConfig) -> Option<TrunkIdentitySpec> {
    if *policy == config::TrunkIdentityConfig::default() {
        return None;
    }
    Some(TrunkIdentitySpec {
        verify: match policy.verify {
            config::VerifyMode::Off => IdentityVerifyMode::Off,
            config::VerifyMode::Mark => IdentityVerifyMode::Mark,
            config::VerifyMode::Enforce => IdentityVerifyMode::Enforce,
        },
        require: policy.require,
        stir_reason: policy.stir_reason,
        customer: policy.customer,
        trust_attestation: policy.trust_attestation,
        domain: policy.domain.clone(),
        sign: policy.sign,
        incoming_identity: match policy.incoming_identity {
            config::IncomingIdentity::Auto => ApiIncomingIdentity::Auto,
            config::IncomingIdentity::Keep => ApiIncomingIdentity::Keep,
            config::IncomingIdentity::Remove => ApiIncomingIdentity::Remove,
        },
        verstat: policy.verstat,
    })
}

/// A configuration-file route in the API's shape.
pub fn route_spec(route: &RouteConfig) -> RouteSpec {
    RouteSpec {
        name: route.name.clone(),
        priority: FILE_ROUTE_PRIORITY,
        from_trunk: route.from_trunk.clone(),
        user_prefix: route.user_prefix.clone(),
        domain: route.domain.clone(),
        to_trunk: route.to_trunk.clone(),
    }
}

/// The trunks and routes in effect: the file's and the store's.
#[derive(Debug, Clone, Default)]
pub struct RoutingObjects {
    pub trunks: Vec<TrunkConfig>,
    /// In the order they are tried.
    pub routes: Vec<RouteConfig>,
}

/// Routes created through the API, with their priorities.
pub type PrioritisedRoutes = Vec<(u16, RouteConfig)>;

/// Store trunks and routes, each parsed; those that do not parse are left out (logged).
pub fn stored_routing(store: &Store) -> StoreResult<(Vec<TrunkConfig>, PrioritisedRoutes)> {
    let trunks = stored(store, ObjectKind::Trunk)?
        .iter()
        .filter_map(|object| match trunk_config(&object.spec) {
            Ok(trunk) => Some(trunk),
            Err(problem) => {
                tracing::error!(trunk = %object.name, ?problem, "stored trunk does not parse; left out");
                None
            }
        })
        .collect();
    let routes = stored(store, ObjectKind::Route)?
        .iter()
        .filter_map(|object| match route_config(&object.spec) {
            Ok(route) => Some(route),
            Err(problem) => {
                tracing::error!(route = %object.name, ?problem, "stored route does not parse; left out");
                None
            }
        })
        .collect();
    Ok((trunks, routes))
}

/// The file's objects with `api_trunks` and `api_routes` (sorted here).
pub fn combine(
    config: &Config,
    api_trunks: Vec<TrunkConfig>,
    mut api_routes: Vec<(u16, RouteConfig)>,
) -> RoutingObjects {
    api_routes.sort_by(|(p1, r1), (p2, r2)| p1.cmp(p2).then_with(|| r1.name.cmp(&r2.name)));
    let mut trunks = config.trunks.clone();
    trunks.extend(api_trunks);
    let mut routes: Vec<RouteConfig> = api_routes.into_iter().map(|(_, route)| route).collect();
    routes.extend(config.routes.iter().cloned());
    RoutingObjects { trunks, routes }
}

/// Checks `objects` with the configuration's validation and reports the problems of
/// trunk `trunk` or route `route` (indexes into `objects`) by field; problems elsewhere
/// (a stored object that the file now contradicts) are not the caller's.
pub fn check(
    config: &Config,
    objects: &RoutingObjects,
    trunk: Option<usize>,
    route: Option<usize>,
) -> Result<(), FieldProblem> {
    let mut candidate = config.clone();
    candidate.trunks = objects.trunks.clone();
    candidate.routes = objects.routes.clone();
    let prefixes = [
        trunk.map(|index| format!("trunk[{index}]")),
        route.map(|index| format!("route[{index}]")),
    ];
    for problem in config::validate(&candidate) {
        for prefix in prefixes.iter().flatten() {
            if let Some(rest) = problem.key.strip_prefix(prefix.as_str()) {
                let field = rest.trim_start_matches('.');
                return Err(FieldProblem::new(
                    if field.is_empty() { "spec" } else { field },
                    problem.kind.to_string(),
                ));
            }
        }
    }
    Ok(())
}

/// The routing table of `objects`.
pub fn table(objects: &RoutingObjects) -> anyhow::Result<RoutingTable> {
    crate::routing::table_of(&objects.trunks, &objects.routes)
}

/// The routing table at start: the file's objects and the store's (see
/// [`initial_objects`]).
pub fn initial_table(config: &Config, store: &Store) -> anyhow::Result<RoutingTable> {
    table(&initial_objects(config, store)?)
}

/// The trunks and routes at start: the file's and the store's. A stored object that no
/// longer fits (the file now defines its name, or a route's trunk is gone) is left out
/// with an error in the log, rather than keeping the appliance from starting.
pub fn initial_objects(config: &Config, store: &Store) -> anyhow::Result<RoutingObjects> {
    let (api_trunks, api_routes) = stored_routing(store)?;
    let file_trunk = |name: &str| config.trunks.iter().any(|trunk| trunk.name == name);
    let file_route = |name: &str| config.routes.iter().any(|route| route.name == name);
    let mut trunks: Vec<TrunkConfig> = Vec::new();
    for trunk in api_trunks {
        if file_trunk(&trunk.name) {
            tracing::error!(trunk = %trunk.name, "stored trunk has the name of a configuration-file trunk; left out");
        } else {
            trunks.push(trunk);
        }
    }
    let known = |name: &str| file_trunk(name) || trunks.iter().any(|trunk| trunk.name == name);
    let routes: Vec<(u16, RouteConfig)> = api_routes
        .into_iter()
        .filter(|(_, route)| {
            let fits = !file_route(&route.name)
                && known(&route.to_trunk)
                && route.from_trunk.as_deref().is_none_or(known);
            if !fits {
                tracing::error!(route = %route.name, "stored route clashes with the configuration file or names an unknown trunk; left out");
            }
            fits
        })
        .collect();
    let objects = combine(config, trunks, routes);
    if let Err(problem) = check(config, &objects, None, None) {
        tracing::error!(?problem, "stored routing objects do not validate");
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::store::Change;

    fn loopback() -> Config {
        let text = include_str!("../deploy/examples/loopback.toml");
        config::from_toml(text, Path::new("loopback.toml"), Path::new("/base")).unwrap()
    }

    #[test]
    fn an_api_trunk_spec_is_a_configuration_trunk() {
        let spec = json!({
            "name": "carrier",
            "targets": [{"address": "carrier.example.net", "priority": 1, "weight": 5}],
            "transport": "tls",
            "keepalive_secs": 0,
            "headers": {"deny": ["X-Internal"]},
            "acl": {"allow": ["10.0.0.0/8"], "deny": ["10.9.0.0/16", "2001:db8::/32"]},
            "require_tls": true,
            "require_client_cert": true,
            "max_calls": 30,
            "store_and_forward": true,
            "srtp": {"sdes": "require", "dtls": "forbid", "suites": ["AEAD_AES_128_GCM"]}
        });
        let trunk = trunk_config(&spec).unwrap();
        assert_eq!(trunk.acl.deny.len(), 2);
        assert!(trunk.require_tls && trunk.require_client_cert && trunk.store_and_forward);
        assert_eq!(trunk.max_calls, 30);
        let srtp = trunk.srtp.clone().unwrap();
        assert_eq!(srtp.sdes, config::RequirementConfig::Require);
        assert_eq!(srtp.suites, ["AEAD_AES_128_GCM"]);
        assert!(!srtp.sdes_over_insecure_signalling);
        // The API's spec type takes the same document.
        let typed: TrunkSpec = serde_json::from_value(spec.clone()).unwrap();
        typed.check().unwrap();
        assert_eq!(trunk.transport, TransportKind::Tls);
        assert_eq!(trunk.targets[0].weight, 5);
        assert_eq!(
            trunk.headers,
            Some(HeaderPolicyConfig::Deny(vec!["X-Internal".into()]))
        );
        let back = serde_json::to_value(trunk_spec(&trunk)).unwrap();
        assert_eq!(trunk_config(&back).unwrap(), trunk);

        let bad =
            json!({"name": "x", "targets": [{"address": "no such host!"}], "transport": "udp"});
        let problem = trunk_config(&bad).unwrap_err();
        assert_eq!(problem.field, "targets[0]");
        assert!(
            problem.problem.contains("invalid trunk target"),
            "{problem:?}"
        );
    }

    #[test]
    fn api_routes_come_first_by_priority_then_name() {
        let config = loopback();
        let route = |name: &str, priority: u16| {
            route_config(&json!({"name": name, "priority": priority, "to_trunk": "loopback-peer"}))
                .unwrap()
        };
        let objects = combine(
            &config,
            Vec::new(),
            vec![route("b", 5), route("a", 5), route("c", 1)],
        );
        let names: Vec<&str> = objects.routes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["c", "a", "b", "to-peer"]);
        assert!(table(&objects).is_ok());
    }

    #[test]
    fn validation_names_the_field_of_the_object_being_checked() {
        let config = loopback();
        let (_, route) = route_config(&json!({"name": "r", "to_trunk": "nowhere"})).unwrap();
        let objects = combine(&config, Vec::new(), vec![(100, route)]);
        let problem = check(&config, &objects, None, Some(0)).unwrap_err();
        assert_eq!(problem.field, "to_trunk");
    }

    #[test]
    fn the_start_table_has_the_stored_objects_and_skips_clashing_ones() {
        let config = loopback();
        let mut store = Store::open_in_memory().unwrap();
        let change = Change::system();
        let trunk = json!({"name": "api-trunk", "targets": [{"address": "127.0.0.1:5090"}], "transport": "udp"});
        store
            .create_object(ObjectKind::Trunk, "api-trunk", trunk, &change)
            .unwrap();
        let clash = json!({"name": "loopback-peer", "targets": [{"address": "127.0.0.1:5091"}], "transport": "udp"});
        store
            .create_object(ObjectKind::Trunk, "loopback-peer", clash, &change)
            .unwrap();
        let route = json!({"name": "api-route", "priority": 1, "user_prefix": "9", "to_trunk": "api-trunk"});
        store
            .create_object(ObjectKind::Route, "api-route", route, &change)
            .unwrap();
        let table = initial_table(&config, &store).unwrap();
        assert_eq!(table.trunks().count(), 2);
        let names: Vec<&str> = table.routes().map(|route| route.name.as_str()).collect();
        assert_eq!(names, ["api-route", "to-peer"]);
    }
}
