//! SIGKILL in the middle of writes loses no acknowledged change: a child process (this
//! test binary, running `crash_writer`) writes config objects and CDR batches and prints
//! each one after the store call returned; the parent kills it mid-stream and reopens.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::admin;
use crate::store::{CdrFilter, ObjectKind, PageRequest, Store, StoreResult};

const DB_ENV: &str = "SBC_STORE_CRASH_DB";
const ACKS_BEFORE_KILL: usize = 60;

#[test]
fn sigkill_loses_no_acknowledged_write() -> StoreResult<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("sbc.db");
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "store::tests::crash::crash_writer",
            "--nocapture",
            "--ignored",
        ])
        .args(["--test-threads", "1"])
        .env(DB_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    let mut acknowledged = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in BufReader::new(stdout).lines() {
        if let Some(name) = line?.strip_prefix("ack ") {
            acknowledged.push(name.to_owned());
        }
        if acknowledged.len() >= ACKS_BEFORE_KILL || Instant::now() > deadline {
            break;
        }
    }
    child.kill()?; // SIGKILL
    child.wait()?;
    assert!(
        acknowledged.len() >= ACKS_BEFORE_KILL,
        "child wrote too little"
    );

    let store = Store::open(&path)?;
    let integrity: String = store
        .conn()
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    assert_eq!(integrity, "ok");
    for name in &acknowledged {
        assert!(
            store.get_object(ObjectKind::Trunk, name)?.is_some(),
            "lost {name}"
        );
        let filter = CdrFilter {
            caller: Some(format!("caller-{name};")),
            ..CdrFilter::default()
        };
        let cdrs = store.query_cdrs(&filter, &PageRequest::first(10))?;
        assert_eq!(cdrs.items.len(), 2, "lost CDRs of {name}");
    }
    assert!(store.verify_audit()?.ok);
    Ok(())
}

/// The child half of the test above; does nothing unless started by it.
#[test]
#[ignore = "started by sigkill_loses_no_acknowledged_write"]
fn crash_writer() -> StoreResult<()> {
    let Some(path) = std::env::var_os(DB_ENV) else {
        return Ok(());
    };
    let mut store = Store::open(std::path::Path::new(&path))?;
    let mut stdout = std::io::stdout();
    for n in 0..100_000u32 {
        let name = format!("t{n}");
        store.create_object(ObjectKind::Trunk, &name, json!({"n": n}), &admin())?;
        let batch: Vec<_> = (0..2)
            .map(|leg| super::cdr::sample(&format!("{name}-{leg}"), i64::from(n), &name))
            .collect();
        store.insert_cdrs(&batch)?;
        writeln!(stdout, "ack {name}")?;
        stdout.flush()?;
    }
    Ok(())
}
