//! A bad configuration stops the binary at once with a non-zero exit and a message naming
//! the file, the key and what is wrong; `--check-config` accepts the shipped example.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Finished, repo_root, run_bounded, sbc_binary};

fn run_sbc(args: &[&str], config: &Path) -> Finished {
    run_bounded(
        Command::new(sbc_binary())
            .arg("--config")
            .arg(config)
            .args(args),
        Duration::from_secs(15),
    )
}

/// Start the binary on `text`; it must exit non-zero and say all of `expected` on stderr.
fn assert_rejected(text: &str, expected: &[&str]) {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    for args in [&[][..], &["--check-config"][..]] {
        let finished = run_sbc(args, &path);
        let status = finished.status.unwrap_or_else(|| {
            panic!(
                "sbc {args:?} did not exit on a bad config: {}",
                finished.describe()
            )
        });
        assert!(
            !status.success(),
            "sbc {args:?} accepted a bad config: {}",
            finished.describe()
        );
        let path = path.display().to_string();
        for needle in std::iter::once(path.as_str()).chain(expected.iter().copied()) {
            assert!(
                finished.stderr.contains(needle),
                "sbc {args:?}: stderr must mention {needle:?}: {}",
                finished.describe()
            );
        }
    }
}

const VALID_HEAD: &str = "data_dir = \"data\"\n[sip]\n[[sip.listen]]\ntransport = \"udp\"\naddress = \"127.0.0.1:5060\"\n";

#[test]
fn invalid_socket_address_names_file_key_and_value() {
    let text =
        format!("{VALID_HEAD}[[sip.listen]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:99999\"\n");
    assert_rejected(
        &text,
        &[
            ":8:11:",
            "sip.listen[1].address",
            "invalid socket address \"127.0.0.1:99999\"",
        ],
    );
}

#[test]
fn unknown_key_is_named() {
    let text = format!("{VALID_HEAD}[admin]\nlisten = \"127.0.0.1:8080\"\npassword = \"admin\"\n");
    assert_rejected(&text, &["admin.password", "unknown field `password`"]);
}

#[test]
fn toml_syntax_error_has_line_and_column() {
    assert_rejected("data_dir = \"data\"\n[sip\n", &[":2:", "TOML syntax error"]);
}

#[test]
fn semantic_error_names_the_key() {
    let text = format!("{VALID_HEAD}[media]\nport_min = 30000\nport_max = 20001\n");
    assert_rejected(
        &text,
        &[
            "media.port_max",
            "port_min (30000) must be below port_max (20001)",
        ],
    );
}

#[test]
fn duplicate_listener_is_rejected() {
    let text =
        format!("{VALID_HEAD}[[sip.listen]]\ntransport = \"udp\"\naddress = \"127.0.0.1:5060\"\n");
    assert_rejected(&text, &["sip.listen[1].address", "configured twice"]);
}

#[test]
fn missing_configured_certificate_is_named() {
    let text = format!(
        "{VALID_HEAD}[[sip.listen]]\ntransport = \"tls\"\naddress = \"127.0.0.1:5061\"\n\
         certificate = \"missing.crt\"\nprivate_key = \"missing.key\"\n"
    );
    assert_rejected(&text, &["missing.crt"]);
}

#[test]
fn missing_file_is_named() {
    let finished = run_sbc(&[], Path::new("/nonexistent/sbc.toml"));
    assert!(
        finished.status.is_some_and(|status| !status.success()),
        "{}",
        finished.describe()
    );
    assert!(
        finished.stderr.contains("/nonexistent/sbc.toml"),
        "{}",
        finished.describe()
    );
}

#[test]
fn check_config_accepts_the_loopback_example() {
    let example = repo_root().join("deploy/examples/loopback.toml");
    let finished = run_sbc(&["--check-config"], &example);
    assert!(finished.succeeded(), "{}", finished.describe());
    assert!(
        finished.stdout.contains("configuration OK"),
        "{}",
        finished.describe()
    );
}

#[test]
fn check_config_loads_the_identity_files() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("stir.toml");
    let text = format!(
        "{VALID_HEAD}[identity]\ntrust_anchors = \"missing-roots.pem\"\n\
         [[trunk]]\nname = \"partner\"\ntargets = [\"192.0.2.10\"]\ntransport = \"udp\"\n\
         [trunk.identity]\nverify = \"enforce\"\n"
    );
    std::fs::write(&path, text).unwrap();
    let finished = run_sbc(&["--check-config"], &path);
    assert_eq!(
        finished.status.and_then(|s| s.code()),
        Some(2),
        "{}",
        finished.describe()
    );
    assert!(
        finished.stderr.contains("identity.trust_anchors")
            && finished.stderr.contains("missing-roots.pem"),
        "{}",
        finished.describe()
    );
    // Without any verifying trunk the roots are not needed; with them present, OK.
    std::fs::write(
        directory.path().join("missing-roots.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let finished = run_sbc(&["--check-config"], &path);
    assert_eq!(
        finished.status.and_then(|s| s.code()),
        Some(2),
        "{}",
        finished.describe()
    );
    assert!(
        finished.stderr.contains("no certificate"),
        "{}",
        finished.describe()
    );
}
