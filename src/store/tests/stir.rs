//! The STIR material tables: one credential, roots by fingerprint, audit records that
//! never hold the key.

use serde_json::json;

use super::admin;
use crate::store::{Store, StoreError, StoreResult};

const KEY: &str = "-----BEGIN PRIVATE KEY-----\nSECRETSECRETSECRET\n-----END PRIVATE KEY-----\n";
const CHAIN: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

#[test]
fn the_credential_is_kept_replaced_and_removed_and_its_key_never_audited() -> StoreResult<()> {
    let mut store = Store::open_in_memory()?;
    assert!(store.stir_credential()?.is_none());
    let summary = json!({"x5u": "https://a.example/sp.pem", "fingerprint": "01"});
    store.set_stir_credential(KEY, CHAIN, "https://a.example/sp.pem", summary, &admin())?;
    let summary = json!({"x5u": "https://b.example/sp.pem", "fingerprint": "02"});
    store.set_stir_credential(KEY, CHAIN, "https://b.example/sp.pem", summary, &admin())?;
    let kept = store
        .stir_credential()?
        .ok_or_else(|| StoreError::Corrupt("the credential vanished".into()))?;
    assert_eq!(
        (kept.private_key_pem.as_str(), kept.x5u.as_str()),
        (KEY, "https://b.example/sp.pem")
    );
    assert!(!format!("{kept:?}").contains("SECRET"));
    store.delete_stir_credential(&admin())?;
    assert!(store.stir_credential()?.is_none());
    assert!(matches!(
        store.delete_stir_credential(&admin()),
        Err(StoreError::NotFound { .. })
    ));
    let audit = store.list_audit(&crate::store::PageRequest::first(100))?;
    let actions: Vec<&str> = audit
        .items
        .iter()
        .map(|record| record.action.as_str())
        .collect();
    assert_eq!(actions, ["delete", "update", "create"]);
    let text = serde_json::to_string(
        &audit
            .items
            .iter()
            .map(|r| (&r.before, &r.after))
            .collect::<Vec<_>>(),
    )?;
    assert!(!text.contains("SECRET"), "{text}");
    assert!(text.contains("\"02\""), "{text}");
    Ok(())
}

#[test]
fn roots_are_added_once_and_removed_by_fingerprint() -> StoreResult<()> {
    let mut store = Store::open_in_memory()?;
    store.add_stir_trust_anchor("aa", CHAIN, json!({"subject": "CN=Root"}), &admin())?;
    assert!(matches!(
        store.add_stir_trust_anchor("aa", CHAIN, json!({}), &admin()),
        Err(StoreError::Conflict { .. })
    ));
    store.add_stir_trust_anchor("bb", CHAIN, json!({}), &admin())?;
    let ids: Vec<String> = store
        .stir_trust_anchors()?
        .into_iter()
        .map(|anchor| anchor.fingerprint)
        .collect();
    assert_eq!(ids, ["aa", "bb"]);
    store.remove_stir_trust_anchor("aa", &admin())?;
    assert!(matches!(
        store.remove_stir_trust_anchor("aa", &admin()),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.stir_trust_anchors()?.len(), 1);
    Ok(())
}
