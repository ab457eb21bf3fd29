//! Semantic validation: rules that span several keys or bound a value's range.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use super::error::{Problem, ProblemKind};
use super::{
    ClientAuth, Config, HeaderPolicyConfig, ListenerConfig, MediaConfig, SipLimits,
    TransactionTimers,
};

/// Most targets a trunk may list.
pub const MAX_TRUNK_TARGETS: usize = 16;

/// Every semantic problem in `config`, in file order; empty when it is valid.
pub fn validate(config: &Config) -> Vec<Problem> {
    let mut problems = Problems::default();
    check_listeners(config, &mut problems);
    check_limits(&config.sip.limits, &mut problems);
    check_timers(&config.sip.timers, &mut problems);
    problems.check_range("sip.shards", config.sip.shards as u64, 0..=256);
    check_admin(config, &mut problems);
    check_media(config, &mut problems);
    check_trunks(config, &mut problems);
    check_routes(config, &mut problems);
    check_identity(config, &mut problems);
    check_security(config, &mut problems);
    problems.0
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, key: impl Into<String>, kind: ProblemKind) {
        self.0.push(Problem {
            key: key.into(),
            kind,
        });
    }

    fn check_range(&mut self, key: &str, value: u64, range: RangeInclusive<u64>) {
        if !range.contains(&value) {
            let (min, max) = range.into_inner();
            self.push(key, ProblemKind::OutOfRange { value, min, max });
        }
    }
}

/// Whether two sockets of the same protocol cannot both be bound: same port, and the same
/// IP or one of them a wildcard (conservatively also across IPv4/IPv6, as a dual-stack
/// wildcard takes both).
fn addresses_collide(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn check_listeners(config: &Config, problems: &mut Problems) {
    if config.sip.listen.is_empty() {
        problems.push("sip.listen", ProblemKind::NoListeners);
    }
    for (index, listener) in config.sip.listen.iter().enumerate() {
        let key = format!("sip.listen[{index}]");
        if listener.address.port() == 0 {
            problems.push(format!("{key}.address"), ProblemKind::ZeroPort);
        }
        let earlier = config.sip.listen.iter().enumerate().take(index);
        for (other_index, other_listener) in earlier {
            if listener.transport.is_stream() != other_listener.transport.is_stream()
                || !addresses_collide(listener.address, other_listener.address)
            {
                continue;
            }
            let other = format!(
                "sip.listen[{other_index}], {} {}",
                other_listener.transport, other_listener.address
            );
            let kind = if listener.address == other_listener.address
                && listener.transport == other_listener.transport
            {
                ProblemKind::DuplicateListener {
                    transport: listener.transport,
                    address: listener.address,
                    other,
                }
            } else {
                ProblemKind::AddressConflict {
                    what: "listener",
                    address: listener.address,
                    other,
                }
            };
            problems.push(format!("{key}.address"), kind);
        }
        check_listener_tls(&key, listener, config.tls.generate_self_signed, problems);
        check_advertised(
            &format!("{key}.advertise"),
            listener.address.ip(),
            listener.advertise.map(|advertised| advertised.ip),
            problems,
        );
    }
}

/// What the SBC writes in its messages must be an address a peer can send to: a wildcard
/// bind needs an explicit one, and an explicit one must be concrete unicast.
fn check_advertised(key: &str, bound: IpAddr, advertised: Option<IpAddr>, problems: &mut Problems) {
    match advertised {
        None if bound.is_unspecified() => {
            problems.push(key.to_owned(), ProblemKind::AdvertiseRequired(bound));
        }
        Some(ip) if ip.is_unspecified() || ip.is_multicast() || is_broadcast(ip) => {
            problems.push(key.to_owned(), ProblemKind::NotAdvertisable(ip));
        }
        _ => {}
    }
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

fn check_listener_tls(
    key: &str,
    listener: &ListenerConfig,
    generate_self_signed: bool,
    problems: &mut Problems,
) {
    if !matches!(listener.transport, super::TransportKind::Tls) {
        let options = [
            ("certificate", listener.certificate.is_some()),
            ("private_key", listener.private_key.is_some()),
            ("client_ca", listener.client_ca.is_some()),
            ("client_auth", listener.client_auth != ClientAuth::None),
        ];
        for (option, present) in options {
            if present {
                problems.push(
                    format!("{key}.{option}"),
                    ProblemKind::TlsOptionOnPlainListener {
                        option,
                        transport: listener.transport,
                    },
                );
            }
        }
        return;
    }
    match (&listener.certificate, &listener.private_key) {
        (Some(_), None) => problems.push(
            format!("{key}.private_key"),
            ProblemKind::IncompleteKeyPair {
                present: "certificate",
                missing: "private_key",
            },
        ),
        (None, Some(_)) => problems.push(
            format!("{key}.certificate"),
            ProblemKind::IncompleteKeyPair {
                present: "private_key",
                missing: "certificate",
            },
        ),
        (None, None) if !generate_self_signed => {
            problems.push(
                format!("{key}.certificate"),
                ProblemKind::MissingCertificate,
            );
        }
        _ => {}
    }
    match (listener.client_auth, &listener.client_ca) {
        (ClientAuth::Optional, None) => {
            problems.push(
                format!("{key}.client_ca"),
                ProblemKind::ClientCaMissing("optional"),
            );
        }
        (ClientAuth::Require, None) => {
            problems.push(
                format!("{key}.client_ca"),
                ProblemKind::ClientCaMissing("require"),
            );
        }
        (ClientAuth::None, Some(_)) => {
            problems.push(format!("{key}.client_ca"), ProblemKind::ClientCaUnused);
        }
        _ => {}
    }
}

fn check_limits(limits: &SipLimits, problems: &mut Problems) {
    let as_u64 = |value: usize| u64::try_from(value).unwrap_or(u64::MAX);
    problems.check_range(
        "sip.limits.max_message_size",
        as_u64(limits.max_message_size),
        1_024..=4_194_304,
    );
    problems.check_range(
        "sip.limits.max_connections",
        as_u64(limits.max_connections),
        1..=1_000_000,
    );
    problems.check_range(
        "sip.limits.max_connections_per_ip",
        as_u64(limits.max_connections_per_ip),
        1..=as_u64(limits.max_connections.max(1)),
    );
    problems.check_range(
        "sip.limits.max_transactions",
        as_u64(limits.max_transactions),
        1_000..=10_000_000,
    );
    problems.check_range(
        "sip.limits.max_calls",
        as_u64(limits.max_calls),
        1..=10_000_000,
    );
    problems.check_range(
        "sip.limits.idle_timeout_secs",
        limits.idle_timeout_secs,
        1..=86_400,
    );
    problems.check_range(
        "sip.limits.tls_handshake_timeout_ms",
        limits.tls_handshake_timeout_ms,
        100..=60_000,
    );
}

fn check_timers(timers: &TransactionTimers, problems: &mut Problems) {
    problems.check_range("sip.timers.t1_ms", timers.t1_ms, 1..=60_000);
    problems.check_range("sip.timers.t2_ms", timers.t2_ms, 1..=60_000);
    problems.check_range("sip.timers.t4_ms", timers.t4_ms, 1..=60_000);
    if timers.t1_ms > timers.t2_ms {
        problems.push(
            "sip.timers.t1_ms",
            ProblemKind::TimerOrder {
                t1_ms: timers.t1_ms,
                t2_ms: timers.t2_ms,
            },
        );
    }
}

fn check_admin(config: &Config, problems: &mut Problems) {
    problems.check_range("cdr.queue", config.cdr.queue as u64, 64..=1_048_576);
    problems.check_range("cdr.retention_days", config.cdr.retention_days, 0..=36_500);
    let Some(admin) = &config.admin else { return };
    if admin.listen.port() == 0 {
        problems.push("admin.listen", ProblemKind::ZeroPort);
    }
    if let Some(tls) = &admin.tls {
        match (tls.client_auth, &tls.client_ca) {
            (ClientAuth::Optional, None) => problems.push(
                "admin.tls.client_ca",
                ProblemKind::ClientCaMissing("optional"),
            ),
            (ClientAuth::Require, None) => problems.push(
                "admin.tls.client_ca",
                ProblemKind::ClientCaMissing("require"),
            ),
            (ClientAuth::None, Some(_)) => {
                problems.push("admin.tls.client_ca", ProblemKind::ClientCaUnused);
            }
            _ => {}
        }
    }
    for (index, listener) in config.sip.listen.iter().enumerate() {
        if listener.transport.is_stream() && addresses_collide(admin.listen, listener.address) {
            problems.push(
                "admin.listen",
                ProblemKind::AddressConflict {
                    what: "admin listener",
                    address: admin.listen,
                    other: format!(
                        "sip.listen[{index}], {} {}",
                        listener.transport, listener.address
                    ),
                },
            );
        }
    }
}

fn check_media(config: &Config, problems: &mut Problems) {
    let MediaConfig {
        address,
        advertise,
        port_min,
        port_max,
        inactivity_timeout_secs,
        workers,
        ..
    } = config.media;
    for (key, kind) in config.media.srtp.problems("media.srtp") {
        problems.push(key, kind);
    }
    for (index, trunk) in config.trunks.iter().enumerate() {
        if let Some(srtp) = &trunk.srtp {
            for (key, kind) in srtp.problems(&format!("trunk[{index}].srtp")) {
                problems.push(key, kind);
            }
        }
    }
    if inactivity_timeout_secs != 0 {
        problems.check_range(
            "media.inactivity_timeout_secs",
            inactivity_timeout_secs,
            5..=86_400,
        );
    }
    problems.check_range("media.workers", workers as u64, 0..=256);
    check_advertised("media.advertise", address, advertise, problems);
    if port_min < 1024 {
        problems.push("media.port_min", ProblemKind::PrivilegedPort(port_min));
    }
    if port_min % 2 != 0 {
        problems.push("media.port_min", ProblemKind::OddPortMin(port_min));
    }
    if port_max % 2 == 0 {
        problems.push("media.port_max", ProblemKind::EvenPortMax(port_max));
    }
    if port_min >= port_max {
        problems.push(
            "media.port_max",
            ProblemKind::EmptyPortRange {
                min: port_min,
                max: port_max,
            },
        );
        return;
    }
    for (index, listener) in config.sip.listen.iter().enumerate() {
        let port = listener.address.port();
        let same_host = listener.address.ip() == address
            || listener.address.ip().is_unspecified()
            || address.is_unspecified();
        if !listener.transport.is_stream() && same_host && (port_min..=port_max).contains(&port) {
            problems.push(
                "media.port_min",
                ProblemKind::AddressConflict {
                    what: "media port range on",
                    address: SocketAddr::new(address, port),
                    other: format!("sip.listen[{index}], udp {}", listener.address),
                },
            );
        }
    }
}

fn check_trunks(config: &Config, problems: &mut Problems) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (index, trunk) in config.trunks.iter().enumerate() {
        let key = format!("trunk[{index}]");
        if !is_simple_name(&trunk.name) {
            problems.push(
                format!("{key}.name"),
                ProblemKind::InvalidTrunkName(trunk.name.clone()),
            );
        } else if let Some(other) = names.insert(&trunk.name, index) {
            problems.push(
                format!("{key}.name"),
                ProblemKind::DuplicateTrunkName {
                    name: trunk.name.clone(),
                    other: format!("trunk[{other}]"),
                },
            );
        }
        if trunk.keepalive_secs != 0 {
            problems.check_range(
                &format!("{key}.keepalive_secs"),
                trunk.keepalive_secs,
                5..=3_600,
            );
        }
        if let Some(policy) = &trunk.headers {
            let (which, names) = match policy {
                HeaderPolicyConfig::Allow(names) => ("allow", names),
                HeaderPolicyConfig::Deny(names) => ("deny", names),
            };
            for (position, name) in names.iter().enumerate() {
                if !is_header_name(name) {
                    problems.push(
                        format!("{key}.headers.{which}[{position}]"),
                        ProblemKind::InvalidHeaderName(name.clone()),
                    );
                }
            }
        }
        for (position, target) in trunk.targets.iter().enumerate() {
            if target.weight == 0 {
                problems.push(
                    format!("{key}.targets[{position}].weight"),
                    ProblemKind::OutOfRange {
                        value: 0,
                        min: 1,
                        max: u64::from(u16::MAX),
                    },
                );
            }
        }
        if trunk.targets.is_empty() {
            problems.push(format!("{key}.targets"), ProblemKind::NoTargets);
        } else if trunk.targets.len() > MAX_TRUNK_TARGETS {
            problems.push(
                format!("{key}.targets"),
                ProblemKind::TooManyTargets {
                    count: trunk.targets.len(),
                    max: MAX_TRUNK_TARGETS,
                },
            );
        }
    }
}

fn check_routes(config: &Config, problems: &mut Problems) {
    let trunks: HashMap<&str, ()> = config
        .trunks
        .iter()
        .map(|t| (t.name.as_str(), ()))
        .collect();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (index, route) in config.routes.iter().enumerate() {
        let key = format!("route[{index}]");
        if !is_simple_name(&route.name) {
            problems.push(
                format!("{key}.name"),
                ProblemKind::InvalidRouteName(route.name.clone()),
            );
        } else if let Some(other) = names.insert(&route.name, index) {
            problems.push(
                format!("{key}.name"),
                ProblemKind::DuplicateRouteName {
                    name: route.name.clone(),
                    other: format!("route[{other}]"),
                },
            );
        }
        let mut check_trunk = |field: &str, name: &str| {
            if !trunks.contains_key(name) {
                problems.push(
                    format!("{key}.{field}"),
                    ProblemKind::UnknownTrunk(name.to_owned()),
                );
            }
        };
        check_trunk("to_trunk", &route.to_trunk);
        if let Some(from) = &route.from_trunk {
            check_trunk("from_trunk", from);
        }
        if route.user_prefix.as_deref() == Some("") {
            problems.push(format!("{key}.user_prefix"), ProblemKind::EmptyCriterion);
        }
        if route.domain.as_deref() == Some("") {
            problems.push(format!("{key}.domain"), ProblemKind::EmptyCriterion);
        }
    }
}

/// 1 to 64 letters, digits, `-`, `_` or `.`: trunk and route names.
fn is_simple_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

/// A SIP header name: a non-empty RFC 3261 token.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|byte| {
            byte.is_ascii_alphanumeric()
                || matches!(
                    byte,
                    b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
                )
        })
}

fn check_identity(config: &Config, problems: &mut Problems) {
    let identity = &config.identity;
    // Reported at the trunk that needs the setting (so the admin API names the field).
    for (index, trunk) in config.trunks.iter().enumerate() {
        if trunk.identity.verify != super::VerifyMode::Off && identity.trust_anchors.is_none() {
            problems.push(
                format!("trunk[{index}].identity.verify"),
                ProblemKind::IdentitySettingMissing {
                    key: "identity.trust_anchors",
                    needed_by: format!("trunk \"{}\" verifies caller identity", trunk.name),
                },
            );
        }
        if trunk.identity.sign {
            for (key, present) in signer_keys(identity) {
                if !present {
                    problems.push(
                        format!("trunk[{index}].identity.sign"),
                        ProblemKind::IdentitySettingMissing {
                            key,
                            needed_by: format!("trunk \"{}\" has calls signed", trunk.name),
                        },
                    );
                }
            }
        }
    }
    // The publisher may start without a credential (one set through the admin API is
    // served once set), but a half-configured one in the file is an error.
    let partial = signer_keys(identity).iter().any(|(_, present)| *present);
    if identity.publish.is_some() && partial {
        for (key, present) in signer_keys(identity) {
            if !present {
                problems.push(
                    "identity.publish",
                    ProblemKind::IdentitySettingMissing {
                        key,
                        needed_by: "identity.publish serves the certificate".to_owned(),
                    },
                );
            }
        }
    }
    if let Some(x5u) = &identity.x5u {
        let any_port: Vec<u16> = (1..=u16::MAX).collect();
        if let Err(problem) = sbc_core::identity::url::check(x5u, &any_port) {
            problems.push(
                "identity.x5u",
                ProblemKind::InvalidIdentitySetting(format!("{x5u:?}: {problem}")),
            );
        }
    }
    for (index, range) in identity.fetch.allow_ranges.iter().enumerate() {
        if let Err(error) = range.parse::<sbc_core::net::x5u::AddressRange>() {
            problems.push(
                format!("identity.fetch.allow_ranges[{index}]"),
                ProblemKind::InvalidIdentitySetting(error.to_string()),
            );
        }
    }
    if identity.fetch.ports.is_empty() || identity.fetch.ports.contains(&0) {
        problems.push(
            "identity.fetch.ports",
            ProblemKind::InvalidIdentitySetting("list one or more ports, none of them 0".into()),
        );
    }
    problems.check_range(
        "identity.max_iat_age_secs",
        identity.max_iat_age_secs,
        1..=3_600,
    );
    problems.check_range("identity.max_wait_ms", identity.max_wait_ms, 10..=30_000);
    problems.check_range(
        "identity.max_waiting_calls",
        identity.max_waiting_calls as u64,
        1..=1_000_000,
    );
    problems.check_range(
        "identity.fetch.timeout_ms",
        identity.fetch.timeout_ms,
        10..=30_000,
    );
    problems.check_range(
        "identity.fetch.max_bytes",
        identity.fetch.max_bytes as u64,
        1_024..=1_048_576,
    );
    problems.check_range(
        "identity.fetch.cache_entries",
        identity.fetch.cache_entries as u64,
        1..=1_000_000,
    );
    if let Some(publish) = &identity.publish {
        if publish.listen.port() == 0 {
            problems.push("identity.publish.listen", ProblemKind::ZeroPort);
        }
        let taken = config
            .sip
            .listen
            .iter()
            .filter(|listener| listener.transport.is_stream())
            .map(|listener| listener.address)
            .chain(config.admin.as_ref().map(|admin| admin.listen));
        for address in taken {
            if addresses_collide(publish.listen, address) {
                problems.push(
                    "identity.publish.listen",
                    ProblemKind::AddressConflict {
                        what: "certificate publisher",
                        address: publish.listen,
                        other: address.to_string(),
                    },
                );
            }
        }
    }
}

/// The settings signing needs, and whether each is set.
fn signer_keys(identity: &super::IdentityConfig) -> [(&'static str, bool); 3] {
    [
        ("identity.certificate", identity.certificate.is_some()),
        ("identity.private_key", identity.private_key.is_some()),
        ("identity.x5u", identity.x5u.is_some()),
    ]
}

fn check_security(config: &Config, problems: &mut Problems) {
    for (index, listener) in config.sip.listen.iter().enumerate() {
        for (key, kind) in listener.acl.problems(&format!("sip.listen[{index}].acl")) {
            problems.push(key, kind);
        }
    }
    for (index, trunk) in config.trunks.iter().enumerate() {
        for (key, kind) in trunk.acl.problems(&format!("trunk[{index}].acl")) {
            problems.push(key, kind);
        }
    }
    for (key, kind) in super::security::problems(&config.auth, &config.registrar, &config.security)
    {
        problems.push(key, kind);
    }
}
