#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::config;

fn config_in(directory: &Path, listeners: &str) -> Config {
    let text = format!("data_dir = \"data\"\n[sip]\n{listeners}");
    config::from_toml(&text, Path::new("test.toml"), directory).unwrap()
}

const TLS_LISTENER: &str = "[[sip.listen]]\ntransport = \"tls\"\naddress = \"127.0.0.1:5061\"\n";

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn generates_on_first_start_and_reuses_afterwards() {
    let directory = tempfile::tempdir().unwrap();
    let mut config = config_in(directory.path(), TLS_LISTENER);
    let sources = prepare(&mut config).unwrap();
    assert_eq!(
        sources,
        vec![("127.0.0.1:5061".parse().unwrap(), MaterialSource::Generated)]
    );

    let (certificate, private_key) =
        generated_paths(&config.data_dir, "127.0.0.1:5061".parse().unwrap());
    assert_eq!(
        config.sip.listen[0].certificate.as_deref(),
        Some(certificate.as_path())
    );
    assert_eq!(
        config.sip.listen[0].private_key.as_deref(),
        Some(private_key.as_path())
    );
    assert_eq!(mode(&private_key), 0o600);
    assert_eq!(mode(&config.data_dir), 0o700);
    let first = fs::read(&certificate).unwrap();

    let mut again = config_in(directory.path(), TLS_LISTENER);
    let sources = prepare(&mut again).unwrap();
    assert_eq!(sources[0].1, MaterialSource::Reused);
    assert_eq!(
        fs::read(&certificate).unwrap(),
        first,
        "the certificate must be reused"
    );
}

#[test]
fn generated_certificate_names_the_listener_ip_and_localhost() {
    let (cert, key) = self_signed("127.0.0.9".parse().unwrap()).unwrap();
    assert!(cert.public_key().unwrap().public_eq(&key));
    assert_eq!(key.bits(), 256);
    let names = cert.subject_alt_names().unwrap();
    let dns: Vec<_> = names.iter().filter_map(|name| name.dnsname()).collect();
    let ips: Vec<_> = names.iter().filter_map(|name| name.ipaddress()).collect();
    assert_eq!(dns, vec!["localhost"]);
    assert_eq!(ips, vec![&[127, 0, 0, 9][..]]);
    // Self-signed: verifies against its own public key.
    assert!(cert.verify(&key).unwrap());
}

#[test]
fn wildcard_listener_gets_loopback_sans() {
    let (cert, _) = self_signed("0.0.0.0".parse().unwrap()).unwrap();
    let names = cert.subject_alt_names().unwrap();
    assert_eq!(names.iter().filter_map(|name| name.ipaddress()).count(), 2);
}

#[test]
fn generated_paths_are_per_listener() {
    let (cert, key) = generated_paths(Path::new("/d"), "[::1]:5061".parse().unwrap());
    assert_eq!(cert, PathBuf::from("/d/tls/sip-tls-__1-5061.crt"));
    assert_eq!(key, PathBuf::from("/d/tls/sip-tls-__1-5061.key"));
}

#[test]
fn half_written_material_is_regenerated() {
    let directory = tempfile::tempdir().unwrap();
    let mut config = config_in(directory.path(), TLS_LISTENER);
    prepare(&mut config).unwrap();
    let (certificate, _) = generated_paths(&config.data_dir, "127.0.0.1:5061".parse().unwrap());
    fs::remove_file(&certificate).unwrap();
    let mut again = config_in(directory.path(), TLS_LISTENER);
    assert_eq!(prepare(&mut again).unwrap()[0].1, MaterialSource::Generated);
}

#[test]
fn corrupt_generated_material_is_an_error_not_overwritten() {
    let directory = tempfile::tempdir().unwrap();
    let mut config = config_in(directory.path(), TLS_LISTENER);
    prepare(&mut config).unwrap();
    let (certificate, _) = generated_paths(&config.data_dir, "127.0.0.1:5061".parse().unwrap());
    fs::write(&certificate, "garbage").unwrap();
    let mut again = config_in(directory.path(), TLS_LISTENER);
    let error = format!("{:#}", prepare(&mut again).unwrap_err());
    assert!(error.contains("remove it to regenerate"), "{error}");
    assert_eq!(fs::read(&certificate).unwrap(), b"garbage");
}

#[test]
fn loose_key_permissions_are_tightened() {
    let directory = tempfile::tempdir().unwrap();
    let mut config = config_in(directory.path(), TLS_LISTENER);
    prepare(&mut config).unwrap();
    let (_, private_key) = generated_paths(&config.data_dir, "127.0.0.1:5061".parse().unwrap());
    fs::set_permissions(&private_key, fs::Permissions::from_mode(0o644)).unwrap();
    let mut again = config_in(directory.path(), TLS_LISTENER);
    prepare(&mut again).unwrap();
    assert_eq!(mode(&private_key), 0o600);
}

fn write_pair(directory: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = self_signed("127.0.0.1".parse().unwrap()).unwrap();
    let cert_path = directory.join(format!("{name}.crt"));
    let key_path = directory.join(format!("{name}.key"));
    fs::write(&cert_path, cert.to_pem().unwrap()).unwrap();
    fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (cert_path, key_path)
}

#[test]
fn configured_material_is_checked_and_used() {
    let directory = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(directory.path(), "mine");
    let listener = format!(
        "{TLS_LISTENER}certificate = \"{}\"\nprivate_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let mut config = config_in(directory.path(), &listener);
    check_configured(&config).unwrap();
    assert_eq!(
        prepare(&mut config).unwrap()[0].1,
        MaterialSource::Configured
    );
    assert!(
        !config.data_dir.exists(),
        "nothing generated for a configured listener"
    );
}

#[test]
fn mismatched_key_is_rejected() {
    let directory = tempfile::tempdir().unwrap();
    let (cert, _) = write_pair(directory.path(), "one");
    let (_, other_key) = write_pair(directory.path(), "two");
    let listener = format!(
        "{TLS_LISTENER}certificate = \"{}\"\nprivate_key = \"{}\"\n",
        cert.display(),
        other_key.display()
    );
    let config = config_in(directory.path(), &listener);
    let error = format!("{:#}", check_configured(&config).unwrap_err());
    assert!(error.contains("does not match certificate"), "{error}");
}

#[test]
fn missing_and_bad_files_are_named() {
    let directory = tempfile::tempdir().unwrap();
    let listener =
        format!("{TLS_LISTENER}certificate = \"nope.crt\"\nprivate_key = \"nope.key\"\n");
    let config = config_in(directory.path(), &listener);
    let error = format!("{:#}", check_configured(&config).unwrap_err());
    assert!(
        error.contains("cannot read certificate") && error.contains("nope.crt"),
        "{error}"
    );

    let (cert, key) = write_pair(directory.path(), "ok");
    fs::write(directory.path().join("ca.pem"), "not pem").unwrap();
    let listener = format!(
        "{TLS_LISTENER}certificate = \"{}\"\nprivate_key = \"{}\"\nclient_ca = \"ca.pem\"\nclient_auth = \"require\"\n",
        cert.display(),
        key.display()
    );
    let config = config_in(directory.path(), &listener);
    let error = format!("{:#}", check_configured(&config).unwrap_err());
    assert!(error.contains("client_ca"), "{error}");
}

#[test]
fn check_configured_writes_nothing_for_generated_listeners() {
    let directory = tempfile::tempdir().unwrap();
    let config = config_in(directory.path(), TLS_LISTENER);
    check_configured(&config).unwrap();
    assert!(!config.data_dir.exists());
}
