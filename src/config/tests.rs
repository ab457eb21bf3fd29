#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::error::Location;
use super::*;

const MINIMAL: &str = r#"
data_dir = "data"
[sip]
[[sip.listen]]
transport = "udp"
address = "127.0.0.1:5060"
"#;

fn load_str(text: &str) -> Result<Config, ConfigError> {
    from_toml(text, Path::new("conf/test.toml"), Path::new("/base"))
}

/// The semantic problems of `text`, as (key, stable name) pairs.
fn problems(text: &str) -> Vec<(String, &'static str)> {
    match load_str(text) {
        Err(ConfigError::Invalid { problems, .. }) => problems
            .into_iter()
            .map(|problem| (problem.key, problem.kind.name()))
            .collect(),
        Ok(_) => Vec::new(),
        Err(other) => panic!("expected semantic problems, got {other}"),
    }
}

fn assert_problem(text: &str, key: &str, name: &str) {
    let found = problems(text);
    assert!(
        found.iter().any(|(k, n)| k == key && *n == name),
        "expected {name} at {key}, got {found:?}"
    );
}

fn with_minimal(extra: &str) -> String {
    format!("{MINIMAL}{extra}")
}

// ── whole files ────────────────────────────────────────────────────────────────────────

#[test]
fn loopback_example_is_valid_and_matches_the_quickstart() {
    let text = include_str!("../../deploy/examples/loopback.toml");
    let config = load_str(text).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/base/data"));
    let listeners: Vec<_> = config
        .sip
        .listen
        .iter()
        .map(|listener| (listener.transport, listener.address.to_string()))
        .collect();
    assert_eq!(
        listeners,
        vec![
            (TransportKind::Udp, "127.0.0.1:5060".to_owned()),
            (TransportKind::Tcp, "127.0.0.1:5060".to_owned()),
            (TransportKind::Tls, "127.0.0.1:5061".to_owned()),
        ]
    );
    assert_eq!(config.admin.unwrap().listen.to_string(), "127.0.0.1:8080");
    assert_eq!(
        (config.media.port_min, config.media.port_max),
        (20_000, 29_999)
    );
    assert_eq!(config.trunks.len(), 1);
    assert_eq!(config.trunks[0].targets[0].to_string(), "127.0.0.1:5080");
    assert_eq!(config.trunks[0].transport, TransportKind::Udp);
}

#[test]
fn server_example_is_valid() {
    let config = load_str(include_str!("../../deploy/examples/server.toml")).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/sbc"));
    assert_eq!(config.sip.listen.len(), 3);
}

#[test]
fn minimal_config_takes_documented_defaults() {
    let config = load_str(MINIMAL).unwrap();
    assert_eq!(config.sip.limits, SipLimits::default());
    assert_eq!(config.sip.limits.max_message_size, 65_535);
    assert_eq!(
        config.sip.timers,
        TransactionTimers {
            t1_ms: 500,
            t2_ms: 4_000,
            t4_ms: 5_000
        }
    );
    assert!(config.tls.generate_self_signed);
    assert_eq!(config.admin, None);
    assert_eq!(config.media.address, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert!(config.trunks.is_empty());
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let text = r#"
data_dir = "/var/lib/sbc"
[sip]
[[sip.listen]]
transport = "tls"
address = "127.0.0.1:5061"
certificate = "tls/cert.pem"
private_key = "/etc/sbc/key.pem"
client_ca = "ca.pem"
client_auth = "require"
"#;
    let config = load_str(text).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/sbc"));
    let listener = &config.sip.listen[0];
    assert_eq!(
        listener.certificate,
        Some(PathBuf::from("/base/tls/cert.pem"))
    );
    assert_eq!(
        listener.private_key,
        Some(PathBuf::from("/etc/sbc/key.pem"))
    );
    assert_eq!(listener.client_ca, Some(PathBuf::from("/base/ca.pem")));
    assert_eq!(listener.client_auth, ClientAuth::Require);
}

#[test]
fn load_resolves_against_the_file_directory() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("sbc.toml");
    std::fs::write(&file, MINIMAL).unwrap();
    let config = load(&file).unwrap();
    assert_eq!(config.data_dir, directory.path().join("data"));
}

// ── error classes: read, syntax, value ────────────────────────────────────────────────

#[test]
fn missing_file_is_a_read_error_naming_the_file() {
    let error = load(Path::new("/nonexistent/sbc.toml")).unwrap_err();
    assert_eq!(error.name(), "read");
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/sbc.toml: cannot read"),
        "{error}"
    );
}

#[test]
fn syntax_error_has_line_and_column() {
    let error = load_str("data_dir = \"x\"\n[sip\n").unwrap_err();
    assert_eq!(error.name(), "syntax");
    let message = error.to_string();
    assert!(message.starts_with("conf/test.toml:2:"), "{message}");
    assert!(message.contains("TOML syntax error"), "{message}");
}

#[test]
fn invalid_socket_address_names_key_value_and_position() {
    let text = with_minimal("[[sip.listen]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:99999\"\n");
    let error = load_str(&text).unwrap_err();
    assert_eq!(error.name(), "value");
    let message = error.to_string();
    assert!(
        message.starts_with(
            "conf/test.toml:9:11: sip.listen[1].address: invalid socket address \"127.0.0.1:99999\""
        ),
        "{message}"
    );
}

#[test]
fn unknown_key_is_rejected_with_its_path() {
    let text = with_minimal("[sip.limits]\nmax_mesage_size = 10\n");
    let message = load_str(&text).unwrap_err().to_string();
    assert!(
        message.contains("sip.limits.max_mesage_size: unknown field `max_mesage_size`"),
        "{message}"
    );
    assert!(message.starts_with("conf/test.toml:8:1:"), "{message}");

    let message = load_str(&format!("{MINIMAL}colour = \"red\"\n"))
        .unwrap_err()
        .to_string();
    assert!(message.contains("unknown field `colour`"), "{message}");
}

#[test]
fn unknown_top_level_table_is_rejected() {
    let message = load_str(&with_minimal("[telemetry]\nx = 1\n"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("telemetry: unknown field `telemetry`"),
        "{message}"
    );
}

#[test]
fn wrong_type_names_the_key() {
    let message = load_str(&with_minimal("[media]\nport_min = \"low\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("media.port_min: invalid type: string \"low\""),
        "{message}"
    );
    let message = load_str(&with_minimal("[media]\nport_max = 70000\n"))
        .unwrap_err()
        .to_string();
    assert!(message.contains("media.port_max:"), "{message}");
}

#[test]
fn missing_required_key_is_named() {
    let message = load_str("[sip]\nlisten = []\n").unwrap_err().to_string();
    assert!(message.contains("missing field `data_dir`"), "{message}");
    let message = load_str("data_dir = \"d\"\n[sip]\n[[sip.listen]]\ntransport = \"udp\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("sip.listen[0]: missing field `address`"),
        "{message}"
    );
}

#[test]
fn unknown_enum_values_are_listed() {
    let text = MINIMAL.replace("\"udp\"", "\"sctp\"");
    let message = load_str(&text).unwrap_err().to_string();
    assert!(
        message.contains("sip.listen[0].transport: unknown variant `sctp`"),
        "{message}"
    );
    let text = with_minimal(
        "[[sip.listen]]\ntransport = \"tls\"\naddress = \"127.0.0.1:5061\"\nclient_auth = \"maybe\"\n",
    );
    let message = load_str(&text).unwrap_err().to_string();
    assert!(
        message.contains("sip.listen[1].client_auth: unknown variant `maybe`"),
        "{message}"
    );
}

#[test]
fn invalid_ip_and_trunk_target_quote_the_value() {
    let message = load_str(&with_minimal("[media]\naddress = \"localhost\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("media.address: invalid IP address \"localhost\""),
        "{message}"
    );
    let trunk = "[[trunk]]\nname = \"t\"\ntransport = \"udp\"\ntargets = [\"ok.example\", \"bad host:5060\"]\n";
    let message = load_str(&with_minimal(trunk)).unwrap_err().to_string();
    assert!(
        message.contains("trunk[0].targets[1]: invalid trunk target \"bad host:5060\""),
        "{message}"
    );
    let trunk = "[[trunk]]\nname = \"t\"\ntransport = \"udp\"\ntargets = [\"carrier.example:0\"]\n";
    let message = load_str(&with_minimal(trunk)).unwrap_err().to_string();
    assert!(
        message.contains("invalid trunk target \"carrier.example:0\""),
        "{message}"
    );
}

#[test]
fn trunk_targets_parse_ips_names_and_ports() {
    let parse = |text: &str| TrunkTarget::try_from(text.to_owned());
    let target = parse("127.0.0.1:5080").unwrap();
    assert_eq!(
        (target.host, target.port),
        (TargetHost::Ip(Ipv4Addr::LOCALHOST.into()), Some(5080))
    );
    assert_eq!(parse("[::1]:5061").unwrap().to_string(), "[::1]:5061");
    assert_eq!(parse("::1").unwrap().port, None);
    let target = parse("Carrier.Example.NET:5061").unwrap();
    assert_eq!(
        target.host,
        TargetHost::Domain("carrier.example.net".into())
    );
    assert_eq!(target.port, Some(5061));
    assert_eq!(parse("pbx").unwrap().to_string(), "pbx");
    for bad in [
        "",
        ":5060",
        "-a.example",
        "a..b",
        "host:port",
        "host:65536",
        "a_b.example",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn location_counts_lines_and_characters() {
    assert_eq!(
        Location::of_offset("abc", 0),
        Location { line: 1, column: 1 }
    );
    assert_eq!(
        Location::of_offset("a\nbé\nc", 6),
        Location { line: 3, column: 1 }
    );
    assert_eq!(
        Location::of_offset("a\nbéc", 5),
        Location { line: 2, column: 3 }
    );
    assert_eq!(
        Location::of_offset("ab", 99),
        Location { line: 1, column: 3 }
    );
}

// ── semantic problems ──────────────────────────────────────────────────────────────────

#[test]
fn semantic_errors_name_file_and_key_and_list_them_all() {
    let text = with_minimal("[sip.timers]\nt1_ms = 5000\n[media]\nport_min = 20001\n");
    let message = load_str(&text).unwrap_err().to_string();
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines.len(), 2, "{message}");
    assert!(
        lines[0].starts_with("conf/test.toml: sip.timers.t1_ms: "),
        "{message}"
    );
    assert!(
        lines[1].starts_with("conf/test.toml: media.port_min: "),
        "{message}"
    );
}

#[test]
fn no_listeners() {
    assert_problem(
        "data_dir = \"d\"\n[sip]\nlisten = []\n",
        "sip.listen",
        "no_listeners",
    );
}

#[test]
fn zero_ports() {
    assert_problem(
        &MINIMAL.replace(":5060", ":0"),
        "sip.listen[0].address",
        "zero_port",
    );
    assert_problem(
        &with_minimal("[admin]\nlisten = \"127.0.0.1:0\"\n"),
        "admin.listen",
        "zero_port",
    );
}

#[test]
fn duplicate_and_colliding_listeners() {
    let duplicate =
        with_minimal("[[sip.listen]]\ntransport = \"udp\"\naddress = \"127.0.0.1:5060\"\n");
    assert_problem(&duplicate, "sip.listen[1].address", "duplicate_listener");

    let wildcard =
        with_minimal("[[sip.listen]]\ntransport = \"udp\"\naddress = \"0.0.0.0:5060\"\n");
    assert_problem(&wildcard, "sip.listen[1].address", "address_conflict");

    let tcp_and_tls = "data_dir = \"d\"\n[sip]\nlisten = [\
        { transport = \"tcp\", address = \"127.0.0.1:5060\" },\
        { transport = \"tls\", address = \"127.0.0.1:5060\" }]\n";
    assert_problem(tcp_and_tls, "sip.listen[1].address", "address_conflict");
}

#[test]
fn udp_and_tcp_may_share_an_address() {
    let text = with_minimal("[[sip.listen]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:5060\"\n");
    assert!(load_str(&text).is_ok());
    let other_ip =
        with_minimal("[[sip.listen]]\ntransport = \"udp\"\naddress = \"127.0.0.2:5060\"\n");
    assert!(load_str(&other_ip).is_ok());
}

#[test]
fn tls_options_on_plain_listeners() {
    let text = MINIMAL.replace(
        "address = \"127.0.0.1:5060\"",
        "address = \"127.0.0.1:5060\"\ncertificate = \"c.pem\"\nclient_auth = \"optional\"",
    );
    assert_problem(
        &text,
        "sip.listen[0].certificate",
        "tls_option_on_plain_listener",
    );
    assert_problem(
        &text,
        "sip.listen[0].client_auth",
        "tls_option_on_plain_listener",
    );
}

fn tls_listener(options: &str) -> String {
    with_minimal(&format!(
        "[[sip.listen]]\ntransport = \"tls\"\naddress = \"127.0.0.1:5061\"\n{options}\n"
    ))
}

#[test]
fn incomplete_key_pairs() {
    assert_problem(
        &tls_listener("certificate = \"c.pem\""),
        "sip.listen[1].private_key",
        "incomplete_key_pair",
    );
    assert_problem(
        &tls_listener("private_key = \"k.pem\""),
        "sip.listen[1].certificate",
        "incomplete_key_pair",
    );
}

#[test]
fn tls_without_certificate_needs_generation() {
    assert!(load_str(&tls_listener("")).is_ok());
    let disabled = format!("{}[tls]\ngenerate_self_signed = false\n", tls_listener(""));
    assert_problem(
        &disabled,
        "sip.listen[1].certificate",
        "missing_certificate",
    );
    let configured = format!(
        "{}[tls]\ngenerate_self_signed = false\n",
        tls_listener("certificate = \"c.pem\"\nprivate_key = \"k.pem\"")
    );
    assert!(load_str(&configured).is_ok());
}

#[test]
fn client_auth_and_client_ca_go_together() {
    assert_problem(
        &tls_listener("client_auth = \"require\""),
        "sip.listen[1].client_ca",
        "client_ca_missing",
    );
    assert_problem(
        &tls_listener("client_auth = \"optional\""),
        "sip.listen[1].client_ca",
        "client_ca_missing",
    );
    assert_problem(
        &tls_listener("client_ca = \"ca.pem\""),
        "sip.listen[1].client_ca",
        "client_ca_unused",
    );
    assert!(
        load_str(&tls_listener(
            "client_ca = \"ca.pem\"\nclient_auth = \"optional\""
        ))
        .is_ok()
    );
}

#[test]
fn limits_out_of_range() {
    for (key, value) in [
        ("max_message_size", "100"),
        ("max_message_size", "100000000"),
        ("max_connections", "0"),
        ("max_connections_per_ip", "0"),
        ("idle_timeout_secs", "0"),
        ("tls_handshake_timeout_ms", "10"),
    ] {
        let text = with_minimal(&format!("[sip.limits]\n{key} = {value}\n"));
        assert_problem(&text, &format!("sip.limits.{key}"), "out_of_range");
    }
    let per_ip_above_total =
        with_minimal("[sip.limits]\nmax_connections = 10\nmax_connections_per_ip = 11\n");
    assert_problem(
        &per_ip_above_total,
        "sip.limits.max_connections_per_ip",
        "out_of_range",
    );
}

#[test]
fn timers() {
    assert_problem(
        &with_minimal("[sip.timers]\nt1_ms = 5000\n"),
        "sip.timers.t1_ms",
        "timer_order",
    );
    assert_problem(
        &with_minimal("[sip.timers]\nt1_ms = 0\n"),
        "sip.timers.t1_ms",
        "out_of_range",
    );
    assert_problem(
        &with_minimal("[sip.timers]\nt4_ms = 600000\n"),
        "sip.timers.t4_ms",
        "out_of_range",
    );
    assert!(load_str(&with_minimal("[sip.timers]\nt1_ms = 4000\nt2_ms = 4000\n")).is_ok());
}

#[test]
fn media_port_range() {
    let media = |min: u16, max: u16| {
        with_minimal(&format!("[media]\nport_min = {min}\nport_max = {max}\n"))
    };
    assert_problem(&media(20_001, 29_999), "media.port_min", "odd_port_min");
    assert_problem(&media(20_000, 29_998), "media.port_max", "even_port_max");
    assert_problem(&media(30_000, 29_999), "media.port_max", "empty_port_range");
    assert_problem(&media(1_000, 29_999), "media.port_min", "privileged_port");
    assert!(load_str(&media(20_000, 20_001)).is_ok());
}

#[test]
fn a_wildcard_media_address_needs_an_advertised_one() {
    let text = with_minimal("[media]\naddress = \"0.0.0.0\"\n");
    assert_problem(&text, "media.advertise", "advertise_required");

    let text = with_minimal("[media]\naddress = \"0.0.0.0\"\nadvertise = \"192.0.2.7\"\n");
    let config = load_str(&text).unwrap();
    assert_eq!(
        config.media.advertised(),
        "192.0.2.7".parse::<IpAddr>().unwrap()
    );

    let text = with_minimal("[media]\naddress = \"0.0.0.0\"\nadvertise = \"::\"\n");
    assert_problem(&text, "media.advertise", "not_advertisable");
}

#[test]
fn a_wildcard_listener_needs_an_advertised_address() {
    let wildcard =
        "data_dir = \"d\"\n[[sip.listen]]\ntransport = \"udp\"\naddress = \"0.0.0.0:5060\"\n";
    assert_problem(wildcard, "sip.listen[0].advertise", "advertise_required");

    let with_ip = format!("{wildcard}advertise = \"192.0.2.7\"\n");
    let config = load_str(&with_ip).unwrap();
    assert_eq!(
        config.sip.listen[0].advertised(),
        "192.0.2.7:5060".parse().unwrap()
    );

    let with_port = format!("{wildcard}advertise = \"[2001:db8::7]:15060\"\n");
    let config = load_str(&with_port).unwrap();
    assert_eq!(
        config.sip.listen[0].advertised(),
        "[2001:db8::7]:15060".parse().unwrap()
    );

    let multicast = format!("{wildcard}advertise = \"224.0.0.1\"\n");
    assert_problem(&multicast, "sip.listen[0].advertise", "not_advertisable");

    let garbage = format!("{wildcard}advertise = \"sbc.example.com\"\n");
    let Err(ConfigError::Value { key, message, .. }) = load_str(&garbage) else {
        panic!("expected a value error");
    };
    assert_eq!(key.as_deref(), Some("sip.listen[0].advertise"));
    assert!(message.contains("invalid advertised address"), "{message}");

    // A concrete bind advertises itself.
    let config = load_str(MINIMAL).unwrap();
    assert_eq!(
        config.sip.listen[0].advertised(),
        config.sip.listen[0].address
    );
}

#[test]
fn media_range_must_not_cover_a_udp_listener() {
    let text = MINIMAL.replace(":5060", ":20002");
    assert_problem(&text, "media.port_min", "address_conflict");
    let other_ip = format!(
        "{}[media]\naddress = \"127.0.0.2\"\n",
        MINIMAL.replace(":5060", ":20002")
    );
    assert!(load_str(&other_ip).is_ok());
}

#[test]
fn admin_must_not_take_a_sip_stream_port() {
    let text = with_minimal(
        "[[sip.listen]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:8080\"\n[admin]\nlisten = \"0.0.0.0:8080\"\n",
    );
    assert_problem(&text, "admin.listen", "address_conflict");
    // A UDP listener on the same port does not collide with the admin TCP socket.
    let udp = with_minimal("[admin]\nlisten = \"127.0.0.1:5060\"\n");
    assert!(load_str(&udp).is_ok());
}

fn trunk(name: &str, targets: &str) -> String {
    format!("[[trunk]]\nname = \"{name}\"\ntransport = \"udp\"\ntargets = [{targets}]\n")
}

#[test]
fn trunk_names() {
    assert_problem(
        &with_minimal(&trunk("", "\"127.0.0.1\"")),
        "trunk[0].name",
        "invalid_trunk_name",
    );
    assert_problem(
        &with_minimal(&trunk("a b", "\"127.0.0.1\"")),
        "trunk[0].name",
        "invalid_trunk_name",
    );
    let twice = with_minimal(&format!(
        "{}{}",
        trunk("peer", "\"127.0.0.1\""),
        trunk("peer", "\"127.0.0.2\"")
    ));
    assert_problem(&twice, "trunk[1].name", "duplicate_trunk_name");
}

#[test]
fn trunk_targets_count() {
    assert_problem(
        &with_minimal(&trunk("peer", "")),
        "trunk[0].targets",
        "no_targets",
    );
    let many = vec!["\"127.0.0.1\""; 17].join(", ");
    assert_problem(
        &with_minimal(&trunk("peer", &many)),
        "trunk[0].targets",
        "too_many_targets",
    );
}

#[test]
fn trunk_is_untrusted_unless_said_otherwise() {
    let config = load_str(&with_minimal(&trunk("peer", "\"127.0.0.1:5080\""))).unwrap();
    assert!(!config.trunks[0].trusted);
}

#[test]
fn trunk_targets_take_priority_and_weight_in_a_table() {
    let text = with_minimal(&trunk(
        "peer",
        "\"127.0.0.1:5080\", { address = \"carrier.example\", priority = 10, weight = 60 }",
    ));
    let config = load_str(&text).unwrap();
    let targets = &config.trunks[0].targets;
    assert_eq!((targets[0].priority, targets[0].weight), (0, 1));
    assert_eq!(
        targets[1].host,
        TargetHost::Domain("carrier.example".into())
    );
    assert_eq!(
        (targets[1].port, targets[1].priority, targets[1].weight),
        (None, 10, 60)
    );
    let zero = with_minimal(&trunk("peer", "{ address = \"127.0.0.1\", weight = 0 }"));
    assert_problem(&zero, "trunk[0].targets[0].weight", "out_of_range");
}

#[test]
fn trunk_keepalive_and_header_policy() {
    let config = load_str(&with_minimal(&trunk("peer", "\"127.0.0.1:5080\""))).unwrap();
    assert_eq!(config.trunks[0].keepalive_secs, 30);
    assert_eq!(config.trunks[0].headers, None);

    let text = with_minimal(&format!(
        "{}keepalive_secs = 0\nheaders = {{ deny = [\"P-Asserted-Identity\", \"X-Internal\"] }}\n",
        trunk("peer", "\"127.0.0.1:5080\"")
    ));
    let config = load_str(&text).unwrap();
    assert_eq!(config.trunks[0].keepalive_secs, 0);
    assert_eq!(
        config.trunks[0].headers,
        Some(HeaderPolicyConfig::Deny(vec![
            "P-Asserted-Identity".into(),
            "X-Internal".into()
        ]))
    );

    let bad = with_minimal(&format!(
        "{}keepalive_secs = 1\nheaders = {{ allow = [\"Good\", \"bad header\"] }}\n",
        trunk("peer", "\"127.0.0.1:5080\"")
    ));
    assert_problem(&bad, "trunk[0].keepalive_secs", "out_of_range");
    assert_problem(&bad, "trunk[0].headers.allow[1]", "invalid_header_name");
}

fn route(name: &str, body: &str) -> String {
    format!("[[route]]\nname = \"{name}\"\n{body}\n")
}

#[test]
fn routes_name_existing_trunks() {
    let trunks = format!(
        "{}{}",
        trunk("carrier", "\"127.0.0.1:5080\""),
        trunk("pbx", "\"127.0.0.2:5060\"")
    );
    let good = with_minimal(&format!(
        "{trunks}{}{}",
        route(
            "from-pbx",
            "from_trunk = \"pbx\"\nuser_prefix = \"+1\"\nto_trunk = \"carrier\""
        ),
        route("default", "to_trunk = \"pbx\"\ndomain = \"example.com\"")
    ));
    let config = load_str(&good).unwrap();
    assert_eq!(config.routes.len(), 2);
    assert_eq!(config.routes[0].from_trunk.as_deref(), Some("pbx"));
    assert_eq!(config.routes[0].user_prefix.as_deref(), Some("+1"));
    assert_eq!(config.routes[1].domain.as_deref(), Some("example.com"));

    let bad = with_minimal(&format!(
        "{trunks}{}{}{}",
        route("r", "to_trunk = \"nowhere\"\nfrom_trunk = \"elsewhere\""),
        route("r", "to_trunk = \"pbx\"\nuser_prefix = \"\""),
        route("bad name", "to_trunk = \"pbx\"")
    ));
    assert_problem(&bad, "route[0].to_trunk", "unknown_trunk");
    assert_problem(&bad, "route[0].from_trunk", "unknown_trunk");
    assert_problem(&bad, "route[1].name", "duplicate_route_name");
    assert_problem(&bad, "route[1].user_prefix", "empty_criterion");
    assert_problem(&bad, "route[2].name", "invalid_route_name");
}

#[test]
fn media_inactivity_and_workers() {
    let config = load_str(MINIMAL).unwrap();
    assert_eq!(
        config.media.inactivity_timeout(),
        Some(std::time::Duration::from_secs(60))
    );
    assert_eq!(config.media.workers, 0);
    let off = load_str(&with_minimal("[media]\ninactivity_timeout_secs = 0\n")).unwrap();
    assert_eq!(off.media.inactivity_timeout(), None);
    assert_problem(
        &with_minimal("[media]\ninactivity_timeout_secs = 2\n"),
        "media.inactivity_timeout_secs",
        "out_of_range",
    );
}

// ── [admin.tls] and [cdr] ──────────────────────────────────────────────────────────────

#[test]
fn admin_tls_paths_resolve_and_client_auth_needs_a_ca() {
    let config = load_str(&with_minimal(
        r#"
[admin]
listen = "127.0.0.1:8080"
[admin.tls]
certificate = "tls/admin.crt"
private_key = "/etc/sbc/admin.key"
"#,
    ))
    .unwrap();
    let tls = config.admin.unwrap().tls.unwrap();
    assert_eq!(tls.certificate, PathBuf::from("/base/tls/admin.crt"));
    assert_eq!(tls.private_key, PathBuf::from("/etc/sbc/admin.key"));
    assert_eq!(tls.client_auth, ClientAuth::None);

    assert_problem(
        &with_minimal(
            r#"
[admin]
listen = "127.0.0.1:8080"
[admin.tls]
certificate = "a.crt"
private_key = "a.key"
client_auth = "require"
"#,
        ),
        "admin.tls.client_ca",
        "client_ca_missing",
    );
    assert_problem(
        &with_minimal(
            r#"
[admin]
listen = "127.0.0.1:8080"
[admin.tls]
certificate = "a.crt"
private_key = "a.key"
client_ca = "ca.crt"
"#,
        ),
        "admin.tls.client_ca",
        "client_ca_unused",
    );
}

#[test]
fn cdr_settings_default_and_are_bounded() {
    let config = load_str(MINIMAL).unwrap();
    assert_eq!(config.cdr, CdrConfig::default());
    assert_eq!(config.cdr.retention_days, 90);
    assert_problem(
        &with_minimal("[cdr]\nqueue = 1\n"),
        "cdr.queue",
        "out_of_range",
    );
    assert_problem(
        &with_minimal("[cdr]\nretention_days = 100000\n"),
        "cdr.retention_days",
        "out_of_range",
    );
    assert!(problems(&with_minimal("[cdr]\nretention_days = 0\n")).is_empty());
}
// ── media security ─────────────────────────────────────────────────────────────────────

#[test]
fn srtp_policies_default_to_allow_and_take_per_trunk_values() {
    use sbc_core::media::security::{Requirement, SrtpSuite};
    let config = load_str(MINIMAL).unwrap();
    let policy = config.media.srtp.policy();
    assert_eq!(
        (policy.sdes, policy.dtls),
        (Requirement::Allow, Requirement::Allow)
    );
    assert_eq!(policy.suites, SrtpSuite::DEFAULT_OFFER.to_vec());
    assert!(!policy.sdes_over_insecure_signalling);

    let text = with_minimal(
        r#"
[media.srtp]
sdes = "require"
suites = ["AES_CM_128_HMAC_SHA1_80"]

[[trunk]]
name = "carrier"
targets = ["192.0.2.1"]
transport = "udp"
srtp = { sdes = "forbid", dtls = "forbid" }
"#,
    );
    let config = load_str(&text).unwrap();
    let media = config.media.srtp.policy();
    assert_eq!(media.sdes, Requirement::Require);
    assert_eq!(media.suites, vec![SrtpSuite::AesCm128HmacSha1_80]);
    let trunk = config.trunks[0].srtp.as_ref().unwrap().policy();
    assert_eq!(
        (trunk.sdes, trunk.dtls),
        (Requirement::Forbid, Requirement::Forbid)
    );
}

#[test]
fn srtp_policies_that_cannot_work_are_refused() {
    assert_problem(
        &with_minimal("[media.srtp]\nsuites = [\"AES_CM_128_HMAC_SHA1_81\"]\n"),
        "media.srtp.suites[0]",
        "unknown_srtp_suite",
    );
    assert_problem(
        &with_minimal("[media.srtp]\nsuites = []\n"),
        "media.srtp.suites",
        "no_srtp_suites",
    );
    assert_problem(
        &with_minimal(
            "[[trunk]]\nname = \"t\"\ntargets = [\"192.0.2.1\"]\ntransport = \"tls\"\n\
             srtp = { sdes = \"require\", dtls = \"require\" }\n",
        ),
        "trunk[0].srtp.dtls",
        "conflicting_srtp_requirements",
    );
    assert!(
        load_str(&with_minimal("[media.srtp]\nsdes = \"sometimes\"\n")).is_err(),
        "only require, prefer, allow and forbid"
    );
}

// ── identity (STIR/SHAKEN) ─────────────────────────────────────────────────────────────

const IDENTITY_TRUNKS: &str = r#"
[identity]
trust_anchors = "stir/roots.pem"
certificate = "stir/sbc.pem"
private_key = "stir/sbc.key"
x5u = "https://sbc.example.net:8443/sbc.pem"
max_iat_age_secs = 30

[identity.fetch]
allow_ranges = ["127.0.0.0/8", "::1"]
timeout_ms = 500

[identity.publish]
listen = "127.0.0.1:8443"
tls_certificate = "web.pem"
tls_private_key = "web.key"

[[trunk]]
name = "partner"
targets = ["192.0.2.10"]
transport = "udp"
[trunk.identity]
verify = "enforce"
require = true
domain = "partners"

[[trunk]]
name = "core"
targets = ["192.0.2.20"]
transport = "udp"
trusted = true
[trunk.identity]
sign = true
incoming_identity = "remove"
"#;

#[test]
fn identity_settings_parse_with_their_defaults() {
    let config = load_str(&with_minimal(IDENTITY_TRUNKS)).unwrap();
    let identity = &config.identity;
    assert_eq!(
        identity.trust_anchors,
        Some(PathBuf::from("/base/stir/roots.pem"))
    );
    assert_eq!(identity.max_iat_age_secs, 30);
    assert!(identity.require_tn_auth_list);
    assert_eq!(identity.fetch.ports, vec![443, 8443]);
    assert_eq!(identity.fetch.timeout_ms, 500);
    let publish = identity.publish.as_ref().unwrap();
    assert_eq!(publish.tls_certificate, PathBuf::from("/base/web.pem"));
    assert_eq!(publish.max_age_secs, 3_600);
    assert_eq!(config.trunks[0].identity.verify, VerifyMode::Enforce);
    assert!(config.trunks[0].identity.require);
    assert_eq!(
        config.trunks[1].identity.incoming_identity,
        IncomingIdentity::Remove
    );
    assert_eq!(config.trunks[1].identity.verstat, None);
    // A trunk without [trunk.identity] neither verifies nor signs.
    assert_eq!(
        load_str(MINIMAL).unwrap().identity,
        IdentityConfig::default()
    );
}

#[test]
fn identity_problems_name_their_keys() {
    let verifying_without_roots =
        IDENTITY_TRUNKS.replace("trust_anchors = \"stir/roots.pem\"\n", "");
    assert_problem(
        &with_minimal(&verifying_without_roots),
        "trunk[0].identity.verify",
        "identity_setting_missing",
    );
    let signing_without_key = IDENTITY_TRUNKS.replace("private_key = \"stir/sbc.key\"\n", "");
    assert_problem(
        &with_minimal(&signing_without_key),
        "trunk[1].identity.sign",
        "identity_setting_missing",
    );
    assert_problem(
        &with_minimal(&signing_without_key),
        "identity.publish",
        "identity_setting_missing",
    );
    let http = IDENTITY_TRUNKS.replace("https://sbc", "http://sbc");
    assert_problem(
        &with_minimal(&http),
        "identity.x5u",
        "invalid_identity_setting",
    );
    let range = IDENTITY_TRUNKS.replace("\"::1\"", "\"10.0.0.0/40\"");
    assert_problem(
        &with_minimal(&range),
        "identity.fetch.allow_ranges[1]",
        "invalid_identity_setting",
    );
    let wait = with_minimal(&format!("{IDENTITY_TRUNKS}\n[sip.limits]\n")).replace(
        "max_iat_age_secs = 30",
        "max_iat_age_secs = 30\nmax_wait_ms = 0",
    );
    assert_problem(&wait, "identity.max_wait_ms", "out_of_range");
    let unknown = with_minimal("[identity]\nverify = true\n");
    assert!(matches!(load_str(&unknown), Err(ConfigError::Value { .. })));
}
