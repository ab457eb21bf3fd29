use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use super::admin;
use crate::store::schema::{self, migrate};
use crate::store::{ObjectKind, Store, StoreError, StoreResult};

#[test]
fn file_store_survives_a_restart_in_wal_mode_with_mode_0600() -> StoreResult<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("sbc.db");
    {
        let mut store = Store::open(&path)?;
        assert_eq!(store.journal_mode()?, "wal");
        store.create_object(ObjectKind::Trunk, "carrier", json!({"host": "x"}), &admin())?;
    }
    let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let store = Store::open(&path)?;
    assert_eq!(store.journal_mode()?, "wal");
    let trunk = store.get_object(ObjectKind::Trunk, "carrier")?;
    assert_eq!(trunk.map(|t| t.spec), Some(json!({"host": "x"})));
    assert!(store.verify_audit()?.ok);
    Ok(())
}

#[test]
fn reopening_is_idempotent() -> StoreResult<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("sbc.db");
    for _ in 0..3 {
        let store = Store::open(&path)?;
        assert_eq!(store.schema_version()?, schema::latest_version());
    }
    Ok(())
}

#[test]
fn a_v1_database_is_migrated_and_keeps_its_data() -> StoreResult<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("sbc.db");
    {
        let mut store = Store::open_with_migrations(&path, &schema::MIGRATIONS[..1])?;
        assert_eq!(store.schema_version()?, 1);
        store.create_object(
            ObjectKind::Route,
            "default",
            json!({"to": "carrier"}),
            &admin(),
        )?;
    }
    let v2 = "CREATE TABLE test_added (x INTEGER); \
              INSERT INTO test_added SELECT version FROM config_objects;";
    let mut steps = schema::MIGRATIONS.to_vec();
    steps.push(v2);
    let store = Store::open_with_migrations(&path, &steps)?;
    let newer = schema::latest_version() + 1;
    assert_eq!(store.schema_version()?, newer);
    assert!(store.get_object(ObjectKind::Route, "default")?.is_some());
    let copied: i64 = store
        .conn()
        .query_row("SELECT COUNT(*) FROM test_added", [], |row| row.get(0))?;
    assert_eq!(copied, 1);
    drop(store);
    // The latest code refuses the newer file and names both versions.
    match Store::open(&path) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (newer, schema::latest_version()));
        }
        other => panic!("expected schema_too_new, got {other:?}"),
    }
    Ok(())
}

#[test]
fn a_failing_migration_leaves_the_previous_version() -> StoreResult<()> {
    let mut conn = rusqlite::Connection::open_in_memory()?;
    let steps = [
        "CREATE TABLE a (x INTEGER);",
        "CREATE TABLE b (x); NOT SQL;",
    ];
    assert!(migrate(&mut conn, &steps).is_err());
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    assert_eq!(version, 1);
    let b_exists: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'b'",
        [],
        |row| row.get(0),
    )?;
    assert_eq!(b_exists, 0);
    Ok(())
}

#[test]
fn backup_copies_a_consistent_database() -> StoreResult<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("sbc.db");
    let mut store = Store::open(&path)?;
    store.create_object(
        ObjectKind::Acl,
        "office",
        json!({"allow": ["10.0.0.0/8"]}),
        &admin(),
    )?;
    let copy = dir.path().join("backup.db");
    store.backup_to(&copy)?;
    let restored = Store::open(&copy)?;
    assert!(restored.get_object(ObjectKind::Acl, "office")?.is_some());
    assert!(restored.verify_audit()?.ok);
    Ok(())
}

#[test]
fn error_names_are_stable() {
    assert_eq!(
        StoreError::VersionMismatch { current: 2 }.name(),
        "version_mismatch"
    );
    assert_eq!(
        StoreError::SchemaTooNew {
            found: 3,
            supported: 1
        }
        .name(),
        "schema_too_new"
    );
    assert_eq!(StoreError::invalid("x", "y").name(), "invalid");
    assert_eq!(StoreError::not_found("trunk", "a").name(), "not_found");
}

#[test]
fn a_reader_sees_committed_writes_and_cannot_write() -> StoreResult<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("sbc.db");
    let mut writer = Store::open(&path)?;
    let reader = Store::open_reader(&path)?;
    writer.create_object(ObjectKind::Trunk, "t", json!({}), &admin())?;
    assert!(reader.get_object(ObjectKind::Trunk, "t")?.is_some());
    let mut reader = reader;
    let write = reader.create_object(ObjectKind::Trunk, "u", json!({}), &admin());
    assert!(matches!(write, Err(StoreError::Sqlite(_))));
    let missing = Store::open_reader(&dir.path().join("absent.db"));
    assert!(missing.is_err());
    Ok(())
}

#[test]
fn a_store_can_move_to_a_blocking_thread_behind_a_mutex() {
    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}
    assert_send::<Store>();
    assert_sync::<std::sync::Mutex<Store>>();
}
