use super::{admin, memory_store};
use crate::store::registrations::normalise_ban_source;
use crate::store::{NewBan, PageRequest, Registration, StoreError, StoreResult};

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
