use serde_json::json;

use super::{admin, memory_store};
use crate::store::{AuditEntry, ObjectKind, PageRequest, Store, StoreError, StoreResult};

fn store_with_five_records() -> StoreResult<Store> {
    let (mut store, _) = memory_store()?;
    for name in ["a", "b", "c"] {
        store.create_object(ObjectKind::Trunk, name, json!({"n": name}), &admin())?;
    }
    store.update_object(ObjectKind::Trunk, "b", json!({"n": "B"}), None, &admin())?;
    store.append_audit(&AuditEntry {
        actor: "token:1".into(),
        source: None,
        action: "terminate_call".into(),
        object_kind: Some("call".into()),
        object_name: Some("abc@host".into()),
        before: None,
        after: None,
    })?;
    Ok(store)
}

#[test]
fn an_untouched_chain_verifies() -> StoreResult<()> {
    let store = store_with_five_records()?;
    let verdict = store.verify_audit()?;
    assert!(verdict.ok, "{verdict:?}");
    assert_eq!(verdict.records, 5);
    let newest = store.list_audit(&PageRequest::first(1))?;
    assert_eq!(
        verdict.head_hash.as_deref(),
        newest.items.first().map(|r| r.hash.as_str())
    );
    let (empty, _) = memory_store()?;
    let verdict = empty.verify_audit()?;
    assert!(verdict.ok && verdict.records == 0 && verdict.head_hash.is_none());
    Ok(())
}

#[test]
fn records_chain_from_the_genesis_hash() -> StoreResult<()> {
    let store = store_with_five_records()?;
    let mut page = store.list_audit(&PageRequest::first(10))?;
    page.items.reverse();
    assert_eq!(page.items[0].seq, 1);
    assert_eq!(page.items[0].prev_hash, "0".repeat(64));
    for pair in page.items.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
    Ok(())
}

#[test]
fn editing_a_past_record_is_detected() -> StoreResult<()> {
    let store = store_with_five_records()?;
    store.conn().execute(
        "UPDATE audit_log SET actor = 'someone else' WHERE seq = 2",
        [],
    )?;
    let verdict = store.verify_audit()?;
    assert!(!verdict.ok);
    assert_eq!(verdict.first_bad, Some(2));
    Ok(())
}

#[test]
fn editing_a_document_or_time_is_detected() -> StoreResult<()> {
    let store = store_with_five_records()?;
    store.conn().execute(
        "UPDATE audit_log SET after = '{\"spec\":{\"n\":\"X\"},\"version\":2}' WHERE seq = 4",
        [],
    )?;
    assert_eq!(store.verify_audit()?.first_bad, Some(4));
    let store = store_with_five_records()?;
    store.conn().execute(
        "UPDATE audit_log SET time_ms = time_ms + 1 WHERE seq = 1",
        [],
    )?;
    assert_eq!(store.verify_audit()?.first_bad, Some(1));
    Ok(())
}

#[test]
fn deleting_a_middle_record_is_detected() -> StoreResult<()> {
    let store = store_with_five_records()?;
    store
        .conn()
        .execute("DELETE FROM audit_log WHERE seq = 3", [])?;
    let verdict = store.verify_audit()?;
    assert!(!verdict.ok);
    assert_eq!(verdict.first_bad, Some(4));
    Ok(())
}

#[test]
fn replacing_a_stored_hash_is_detected() -> StoreResult<()> {
    let store = store_with_five_records()?;
    store
        .conn()
        .execute("UPDATE audit_log SET hash = zeroblob(32) WHERE seq = 2", [])?;
    assert_eq!(store.verify_audit()?.first_bad, Some(2));
    Ok(())
}

#[test]
fn a_wrongly_typed_column_is_a_bad_record_not_an_error() -> StoreResult<()> {
    let store = store_with_five_records()?;
    store
        .conn()
        .execute("UPDATE audit_log SET actor = x'00ff' WHERE seq = 5", [])?;
    let verdict = store.verify_audit()?;
    assert_eq!(verdict.first_bad, Some(5));
    Ok(())
}

#[test]
fn append_audit_checks_its_input() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    let bad_action = AuditEntry {
        actor: "x".into(),
        action: "Drop Table".into(),
        ..AuditEntry::default()
    };
    assert!(matches!(
        store.append_audit(&bad_action),
        Err(StoreError::Invalid {
            field: "action",
            ..
        })
    ));
    let no_actor = AuditEntry {
        action: "drain".into(),
        ..AuditEntry::default()
    };
    assert!(matches!(
        store.append_audit(&no_actor),
        Err(StoreError::Invalid { field: "actor", .. })
    ));
    assert_eq!(store.verify_audit()?.records, 0);
    Ok(())
}

#[test]
fn audit_pages_newest_first() -> StoreResult<()> {
    let store = store_with_five_records()?;
    let first = store.list_audit(&PageRequest::first(2))?;
    let seqs: Vec<u64> = first.items.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [5, 4]);
    let next = store.list_audit(&PageRequest::after(
        first.next_cursor.unwrap_or_default(),
        10,
    ))?;
    let seqs: Vec<u64> = next.items.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [3, 2, 1]);
    assert_eq!(next.next_cursor, None);
    Ok(())
}

/// The documented layout, computed by hand for the first record, matches.
#[test]
fn the_documented_hash_layout_is_the_one_used() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    let record = store.append_audit(&AuditEntry {
        actor: "ops".into(),
        source: Some("192.0.2.1:5000".into()),
        action: "drain".into(),
        ..AuditEntry::default()
    })?;
    let mut layout = vec![0u8; 32];
    layout.extend_from_slice(&1i64.to_be_bytes());
    layout.extend_from_slice(&1_000_000i64.to_be_bytes());
    for field in [
        Some("ops"),
        Some("192.0.2.1:5000"),
        Some("drain"),
        None,
        None,
        None,
        None,
    ] {
        match field {
            None => layout.push(0),
            Some(text) => {
                layout.push(1);
                layout.extend_from_slice(&u32::try_from(text.len()).unwrap_or(0).to_be_bytes());
                layout.extend_from_slice(text.as_bytes());
            }
        }
    }
    let expected = crate::store::page::hex(&openssl::sha::sha256(&layout));
    assert_eq!(record.hash, expected);
    Ok(())
}
