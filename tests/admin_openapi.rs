//! schemathesis (PyPI; installed by tests/install-deps.sh into target/tools) against the
//! real binary's `/openapi.json`: it generates valid and invalid requests for every
//! operation and checks that none gets a server error and that every response conforms
//! to the document (status codes, content types, headers, bodies), that invalid input is
//! refused, and that authentication is enforced.
//!
//! Left out (see [`CONFIG`]): `DELETE /tokens/{id}` (revoking the test's own token would leave the rest
//! unauthenticated) and the `positive_data_acceptance` check (the API refuses, with a 422
//! naming the field, schema-valid values that are wrong for reasons a schema cannot say:
//! a route to a trunk that does not exist, an unparsable host name …).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Sbc, SbcConfig, run_bounded};

/// How long the whole schemathesis run may take.
const BUDGET: Duration = Duration::from_secs(60);

/// Every check but `positive_data_acceptance`; `DELETE /tokens/{id}` left out; the 503 of
/// `GET /ready` while draining (schemathesis drains the appliance through `PUT /drain`)
/// is the documented answer, not a server error.
const CONFIG: &str = r#"
[checks]
positive_data_acceptance.enabled = false

[[operations]]
include-name = "DELETE /tokens/{id}"
enabled = false

[[operations]]
include-name = "GET /ready"
checks.not_a_server_error.enabled = false
"#;

fn schemathesis() -> PathBuf {
    let venv = common::repo_root().join("target/tools/schemathesis/bin/schemathesis");
    if venv.is_file() {
        return venv;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|directory| directory.join("schemathesis"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "schemathesis is not installed. Run the README's test command \
                 (./tests/run.sh), which installs it into target/tools/schemathesis."
            )
        })
}

#[test]
fn schemathesis_finds_no_server_error_nor_schema_violation() {
    let sbc = Sbc::start(SbcConfig::new());
    let token = sbc.admin_token();
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let url = format!("http://{}/openapi.json", sbc.config.admin_address());
    let mut command = Command::new(schemathesis());
    command
        .current_dir(work.path())
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("NO_COLOR", "1")
        .arg("--config-file")
        .arg(&config)
        .args(["run", &url])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--max-examples", "5", "--request-timeout", "10"])
        .args(["--max-time", &BUDGET.as_secs().to_string()]);
    let finished = run_bounded(&mut command, BUDGET + Duration::from_secs(60));
    let mut sbc = sbc;
    sbc.assert_alive("the schemathesis run");
    assert!(
        finished.succeeded(),
        "schemathesis found problems:\n{}\n{}",
        finished.describe(),
        sbc.log_tail()
    );
    assert!(
        finished.stdout.contains("passed"),
        "schemathesis tested nothing?\n{}",
        finished.describe()
    );
}
