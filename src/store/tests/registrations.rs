use super::{admin, memory_store};
use crate::store::registrations::normalise_ban_source;
use crate::store::{NewBan, PageRequest, Registration, RegistrationWrite, StoreError, StoreResult};

fn binding(aor: &str, contact: &str, expires_at: i64) -> Registration {
    Registration {
        aor: aor.into(),
        contact: contact.into(),
        source: "192.0.2.10:5060".into(),
        transport: "udp".into(),
        flow: None,
        path: vec!["<sip:edge.example;lr>".into()],
        user_agent: Some("phone/1.0".into()),
        call_id: "reg-1".into(),
        cseq: 1,
        instance_id: None,
        reg_id: None,
        expires_at,
        updated_at: 0,
    }
}

#[test]
fn registrations_upsert_list_and_expire() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    store.upsert_registration(&binding("sip:a@x", "sip:a@192.0.2.10", 2_000))?;
    store.upsert_registration(&binding("sip:a@x", "sip:a@192.0.2.11", 9_000))?;
    store.upsert_registration(&binding("sip:b@x", "sip:b@192.0.2.12", 9_000))?;
    let mut refreshed = binding("sip:a@x", "sip:a@192.0.2.10", 3_000);
    refreshed.cseq = 2;
    let stored = store.upsert_registration(&refreshed)?;
    assert_eq!(stored.updated_at, 1_000_000);
    let bindings = store.registrations_for("sip:a@x")?;
    assert_eq!(bindings.len(), 2);
    assert_eq!((bindings[0].cseq, bindings[0].expires_at), (2, 3_000));
    assert_eq!(bindings[0].path, vec!["<sip:edge.example;lr>".to_owned()]);
    assert_eq!(store.count_registrations()?, 3);

    let first = store.list_registrations(&PageRequest::first(2))?;
    assert_eq!(first.items.len(), 2);
    let rest = store.list_registrations(&PageRequest::after(
        first.next_cursor.unwrap_or_default(),
        2,
    ))?;
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].aor, "sip:b@x");

    assert_eq!(store.expire_registrations(3_000)?, 1);
    assert!(store.remove_registration("sip:b@x", "sip:b@192.0.2.12")?);
    assert!(!store.remove_registration("sip:b@x", "sip:b@192.0.2.12")?);
    assert_eq!(store.count_registrations()?, 1);
    Ok(())
}

#[test]
fn a_batch_of_changes_is_applied_in_order_and_a_bad_one_is_skipped() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    store.upsert_registration(&binding("sip:gone@x", "sip:gone@192.0.2.9", 9_000))?;
    let mut refreshed = binding("sip:a@x", "sip:a@192.0.2.10", 8_000);
    refreshed.cseq = 2;
    let mut too_long = binding("sip:c@x", "sip:c@192.0.2.13", 9_000);
    too_long.contact = format!("sip:{}@192.0.2.13", "c".repeat(5_000));
    let skipped = store.apply_registration_writes(&[
        RegistrationWrite::Upsert(binding("sip:a@x", "sip:a@192.0.2.10", 5_000)),
        RegistrationWrite::Upsert(binding("sip:b@x", "sip:b@192.0.2.12", 9_000)),
        RegistrationWrite::Upsert(too_long),
        // A later change of the same binding wins: the batch keeps the registrar's order.
        RegistrationWrite::Upsert(refreshed),
        RegistrationWrite::Remove {
            aor: "sip:gone@x".into(),
            contact: "sip:gone@192.0.2.9".into(),
        },
    ])?;
    assert_eq!(skipped.len(), 1);
    assert_eq!(store.count_registrations()?, 2);
    let a = store.registrations_for("sip:a@x")?;
    assert_eq!((a[0].cseq, a[0].expires_at), (2, 8_000));
    assert!(store.registrations_for("sip:gone@x")?.is_empty());
    assert!(store.apply_registration_writes(&[])?.is_empty());
    Ok(())
}

#[test]
fn a_resync_replaces_every_stored_binding() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    store.upsert_registration(&binding("sip:stale@x", "sip:stale@192.0.2.9", 9_000))?;
    store.upsert_registration(&binding("sip:a@x", "sip:a@192.0.2.10", 2_000))?;
    let skipped = store.replace_registrations(&[
        binding("sip:a@x", "sip:a@192.0.2.10", 7_000),
        binding("sip:b@x", "sip:b@192.0.2.12", 7_000),
    ])?;
    assert!(skipped.is_empty());
    assert_eq!(store.count_registrations()?, 2);
    assert!(store.registrations_for("sip:stale@x")?.is_empty());
    assert_eq!(store.registrations_for("sip:a@x")?[0].expires_at, 7_000);
    Ok(())
}

#[test]
fn ban_sources_are_normalised() -> StoreResult<()> {
    assert_eq!(normalise_ban_source("192.0.2.7")?, "192.0.2.7");
    assert_eq!(normalise_ban_source("192.0.2.7/32")?, "192.0.2.7");
    assert_eq!(normalise_ban_source("192.0.2.7/24")?, "192.0.2.0/24");
    assert_eq!(normalise_ban_source("10.1.2.3/0")?, "0.0.0.0/0");
    assert_eq!(normalise_ban_source("2001:db8::1/32")?, "2001:db8::/32");
    for bad in ["", "host.example", "192.0.2.1/33", "::1/129", "1.2.3.4/x"] {
        assert!(normalise_ban_source(bad).is_err(), "{bad}");
    }
    Ok(())
}

#[test]
fn bans_add_renew_count_hits_lift_and_expire() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    let ban = store.add_ban(
        &NewBan {
            source: "198.51.100.9".into(),
            reason: "scanner".into(),
            expires_at: Some(5_000_000),
        },
        None,
    )?;
    store.record_ban_hits(&ban.source, 3)?;
    let renewed = store.add_ban(
        &NewBan {
            source: "198.51.100.9".into(),
            reason: "auth_failures".into(),
            expires_at: Some(9_000_000),
        },
        None,
    )?;
    assert_eq!((renewed.id, renewed.hits), (ban.id, 3));
    assert_eq!(renewed.reason, "auth_failures");
    store.add_ban(
        &NewBan {
            source: "203.0.113.0/24".into(),
            reason: "operator".into(),
            expires_at: None,
        },
        Some(&admin()),
    )?;
    // Only the operator's ban is audited.
    assert_eq!(store.verify_audit()?.records, 1);
    assert_eq!(store.list_bans(&PageRequest::first(10))?.items.len(), 2);

    assert_eq!(store.expire_bans(9_000_000)?, 1);
    assert!(store.get_ban("198.51.100.9")?.is_none());
    let lifted = store.lift_ban("203.0.113.5/24", Some(&admin()))?;
    assert_eq!(lifted.source, "203.0.113.0/24");
    let audit = store.list_audit(&PageRequest::first(1))?;
    assert_eq!(audit.items[0].action, "lift_ban");
    let missing = store.lift_ban("203.0.113.0/24", Some(&admin()));
    assert!(matches!(
        missing,
        Err(StoreError::NotFound { kind: "ban", .. })
    ));
    Ok(())
}
