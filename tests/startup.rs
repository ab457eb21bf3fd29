//! Start-up and stop of the binary: admin endpoints, generated TLS material, graceful stop
//! on SIGTERM, JSON logs, and a start that must fail when a port is taken.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Sbc, SbcConfig, http_get, run_bounded, sbc_binary};

#[test]
fn admin_api_answers_health_and_ready() {
    let sbc = Sbc::start(SbcConfig::new());
    let admin = sbc.config.admin_address();
    let (status, body) = http_get(admin, "/health", Duration::from_secs(5)).unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"status":"alive"}"#));
    let (status, body) = http_get(admin, "/ready", Duration::from_secs(5)).unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));
    let (status, _) = http_get(admin, "/nope", Duration::from_secs(5)).unwrap();
    assert_eq!(status, 404);
}

#[test]
fn tls_material_is_generated_private_and_reused_across_restarts() {
    let sbc = Sbc::start(SbcConfig::new());
    let address = sbc.config.tls_address();
    let stem = format!("sip-tls-{}-{}", address.ip(), address.port());
    let certificate = sbc.data_dir().join("tls").join(format!("{stem}.crt"));
    let private_key = sbc.data_dir().join("tls").join(format!("{stem}.key"));
    let first = std::fs::read(&certificate)
        .unwrap_or_else(|error| panic!("{}: {error}\n{}", certificate.display(), sbc.log_tail()));
    let mode = std::fs::metadata(&private_key)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "private key mode");
    assert!(
        sbc.log().contains(&certificate.display().to_string()),
        "the log must name the paths"
    );

    let x509 = openssl::x509::X509::from_pem(&first).unwrap();
    let names = x509.subject_alt_names().unwrap();
    assert!(names.iter().any(|name| name.dnsname() == Some("localhost")));
    let ip = match address.ip() {
        std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
        std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    assert!(
        names
            .iter()
            .any(|name| name.ipaddress() == Some(ip.as_slice())),
        "SAN for {address}"
    );

    let sbc = sbc.restart();
    assert_eq!(
        std::fs::read(&certificate).unwrap(),
        first,
        "the certificate must be reused"
    );
    assert!(
        sbc.log().contains("reusing self-signed TLS certificate"),
        "{}",
        sbc.log_tail()
    );
}

#[test]
fn sigterm_stops_gracefully_with_exit_0() {
    let sbc = Sbc::start(SbcConfig::new());
    let admin = sbc.config.admin_address();
    let started = Instant::now();
    let status = sbc.stop();
    assert!(status.success(), "exit status on SIGTERM: {status}");
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "stop took {:?}",
        started.elapsed()
    );
    assert!(
        http_get(admin, "/health", Duration::from_millis(500)).is_err(),
        "admin still up"
    );
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    let sbc = Sbc::start(SbcConfig::new().with_args(&["--log-format", "json"]));
    let log = sbc.log();
    let lines: Vec<&str> = log.lines().filter(|line| !line.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "not a JSON line: {line}"
        );
    }
}

#[test]
fn start_fails_when_the_admin_port_is_taken() {
    let config = SbcConfig::new();
    let _occupied = std::net::TcpListener::bind(config.admin_address()).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("sbc.toml");
    std::fs::write(&path, config.toml()).unwrap();
    let finished = run_bounded(
        Command::new(sbc_binary()).arg("--config").arg(&path),
        Duration::from_secs(15),
    );
    assert!(
        finished.status.is_some_and(|status| !status.success()),
        "must exit non-zero: {}",
        finished.describe()
    );
    let address = config.admin_address().to_string();
    assert!(
        finished.stderr.contains("admin.listen") && finished.stderr.contains(&address),
        "the error must name admin.listen and {address}: {}",
        finished.describe()
    );
}
