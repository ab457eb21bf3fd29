use serde_json::json;

use super::{admin, memory_store};
use crate::store::{ObjectKind, PageRequest, StoreError, StoreResult};

#[test]
fn create_get_update_delete_with_versions() -> StoreResult<()> {
    let (mut store, clock) = memory_store()?;
    let created = store.create_object(ObjectKind::Trunk, "c1", json!({"a": 1}), &admin())?;
    assert_eq!((created.version, created.created_at), (1, 1_000_000));
    clock.set(2_000_000);
    let updated =
        store.update_object(ObjectKind::Trunk, "c1", json!({"a": 2}), Some(1), &admin())?;
    assert_eq!(
        (updated.version, updated.created_at, updated.updated_at),
        (2, 1_000_000, 2_000_000)
    );
    let unconditional =
        store.update_object(ObjectKind::Trunk, "c1", json!({"a": 3}), None, &admin())?;
    assert_eq!(unconditional.version, 3);
    let fetched = store.get_object(ObjectKind::Trunk, "c1")?;
    assert_eq!(fetched.as_ref().map(|o| &o.spec), Some(&json!({"a": 3})));
    let deleted = store.delete_object(ObjectKind::Trunk, "c1", &admin())?;
    assert_eq!(deleted.version, 3);
    assert!(store.get_object(ObjectKind::Trunk, "c1")?.is_none());
    Ok(())
}

#[test]
fn conflict_version_mismatch_and_not_found() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    store.create_object(ObjectKind::Route, "r", json!({}), &admin())?;
    let again = store.create_object(ObjectKind::Route, "r", json!({}), &admin());
    assert!(matches!(
        again,
        Err(StoreError::Conflict { kind: "route", .. })
    ));
    // Same name, other kind: no conflict.
    store.create_object(ObjectKind::Acl, "r", json!({}), &admin())?;
    let stale = store.update_object(ObjectKind::Route, "r", json!({"x": 1}), Some(7), &admin());
    assert!(matches!(
        stale,
        Err(StoreError::VersionMismatch { current: 1 })
    ));
    let missing = store.update_object(ObjectKind::Route, "nope", json!({}), None, &admin());
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    let missing = store.delete_object(ObjectKind::Route, "nope", &admin());
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    // Failed operations leave no audit record: 2 creates only.
    assert_eq!(store.verify_audit()?.records, 2);
    Ok(())
}

#[test]
fn invalid_names_and_specs_are_refused() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    for (name, spec) in [
        ("", json!({})),
        ("a\nb", json!({})),
        (&*"x".repeat(129), json!({})),
        ("ok", json!([1, 2])),
        ("ok", json!("text")),
    ] {
        let result = store.create_object(ObjectKind::Trunk, name, spec, &admin());
        assert!(
            matches!(result, Err(StoreError::Invalid { .. })),
            "{name:?}"
        );
    }
    assert_eq!(store.count_objects(ObjectKind::Trunk)?, 0);
    Ok(())
}

#[test]
fn every_change_is_audited_with_before_and_after() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    store.create_object(
        ObjectKind::TlsMaterial,
        "sip",
        json!({"cert": "/a"}),
        &admin(),
    )?;
    store.update_object(
        ObjectKind::TlsMaterial,
        "sip",
        json!({"cert": "/b"}),
        None,
        &admin(),
    )?;
    store.delete_object(ObjectKind::TlsMaterial, "sip", &admin())?;
    let page = store.list_audit(&PageRequest::first(10))?;
    let actions: Vec<&str> = page.items.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["delete", "update", "create"]);
    let update = &page.items[1];
    assert_eq!(update.object_kind.as_deref(), Some("tls_material"));
    assert_eq!(update.actor, "token:1");
    assert_eq!(update.source.as_deref(), Some("127.0.0.1:40000"));
    assert_eq!(
        update.before,
        Some(json!({"spec": {"cert": "/a"}, "version": 1}))
    );
    assert_eq!(
        update.after,
        Some(json!({"spec": {"cert": "/b"}, "version": 2}))
    );
    Ok(())
}

#[test]
fn listing_pages_by_name_with_cursor_and_offset() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    for name in ["delta", "alpha", "charlie", "bravo", "echo"] {
        store.create_object(ObjectKind::Trunk, name, json!({}), &admin())?;
    }
    store.create_object(ObjectKind::Route, "aaa", json!({}), &admin())?;
    let first = store.list_objects(ObjectKind::Trunk, &PageRequest::first(2))?;
    let names: Vec<&str> = first.items.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["alpha", "bravo"]);
    let cursor = first.next_cursor.clone().unwrap_or_default();
    let second = store.list_objects(ObjectKind::Trunk, &PageRequest::after(cursor, 2))?;
    let names: Vec<&str> = second.items.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["charlie", "delta"]);
    let cursor = second.next_cursor.clone().unwrap_or_default();
    let last = store.list_objects(ObjectKind::Trunk, &PageRequest::after(cursor, 2))?;
    assert_eq!(last.items.len(), 1);
    assert_eq!(last.next_cursor, None);
    let by_offset = store.list_objects(ObjectKind::Trunk, &PageRequest::offset(3, 10))?;
    let names: Vec<&str> = by_offset.items.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["delta", "echo"]);
    let bad = store.list_objects(ObjectKind::Trunk, &PageRequest::after("zz", 2));
    assert!(matches!(
        bad,
        Err(StoreError::Invalid {
            field: "cursor",
            ..
        })
    ));
    Ok(())
}

#[test]
fn kinds_round_trip_through_their_names() {
    for kind in ObjectKind::ALL {
        assert_eq!(kind.as_str().parse::<ObjectKind>().ok(), Some(kind));
    }
    assert!("bogus".parse::<ObjectKind>().is_err());
}
