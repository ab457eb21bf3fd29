use std::os::unix::fs::PermissionsExt;

use super::{admin, memory_store};
use crate::store::tokens::{TOKEN_PREFIX, token_hash};
use crate::store::{PageRequest, Scope, StoreError, StoreResult};

#[test]
fn tokens_are_random_prefixed_and_stored_only_as_sha256() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    let (token, info) = store.create_token("ci", Scope::ReadOnly, &admin())?;
    let (other, _) = store.create_token("ops", Scope::ReadWrite, &admin())?;
    assert_ne!(token, other);
    assert!(token.starts_with(TOKEN_PREFIX));
    assert_eq!(token.len(), TOKEN_PREFIX.len() + 43);
    assert!(
        token[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let stored: Vec<u8> = store.conn().query_row(
        "SELECT token_sha256 FROM admin_tokens WHERE id = ?1",
        [info.id],
        |row| row.get(0),
    )?;
    assert_eq!(stored, token_hash(&token).to_vec());
    let plaintext_stored: i64 = store.conn().query_row(
        "SELECT COUNT(*) FROM admin_tokens WHERE CAST(token_sha256 AS TEXT) = ?1 OR label = ?1",
        [&token],
        |row| row.get(0),
    )?;
    assert_eq!(plaintext_stored, 0);
    // The audit record names the token, never its secret.
    let audit = store.list_audit(&PageRequest::first(10))?;
    let text = format!("{:?}", audit.items);
    assert!(!text.contains(&token[TOKEN_PREFIX.len()..]));
    Ok(())
}

#[test]
fn authenticate_finds_live_tokens_and_notes_their_use() -> StoreResult<()> {
    let (mut store, clock) = memory_store()?;
    let (token, info) = store.create_token("ci", Scope::ReadOnly, &admin())?;
    clock.set(5_000_000);
    let found = store.authenticate(&token)?;
    assert_eq!(
        found.as_ref().map(|t| (t.id, t.scope)),
        Some((info.id, Scope::ReadOnly))
    );
    assert_eq!(found.and_then(|t| t.last_used), Some(5_000_000));
    // Within the granularity the stored value is not rewritten.
    clock.set(5_030_000);
    assert_eq!(
        store.authenticate(&token)?.and_then(|t| t.last_used),
        Some(5_000_000)
    );
    assert_eq!(store.authenticate("sbc_wrong")?, None);
    assert_eq!(store.authenticate("")?, None);
    assert_eq!(store.authenticate(&token[TOKEN_PREFIX.len()..])?, None);

    let revoked = store.revoke_token(info.id, &admin())?;
    assert_eq!(revoked.label, "ci");
    assert_eq!(store.authenticate(&token)?, None);
    let again = store.revoke_token(info.id, &admin());
    assert!(matches!(
        again,
        Err(StoreError::NotFound { kind: "token", .. })
    ));
    Ok(())
}

#[test]
fn tokens_list_in_pages() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    for label in ["a", "b", "c"] {
        store.create_token(label, Scope::ReadOnly, &admin())?;
    }
    let first = store.list_tokens(&PageRequest::first(2))?;
    assert_eq!(first.items.len(), 2);
    let rest = store.list_tokens(&PageRequest::after(
        first.next_cursor.unwrap_or_default(),
        2,
    ))?;
    let labels: Vec<&str> = rest.items.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["c"]);
    assert_eq!(rest.next_cursor, None);
    Ok(())
}

#[test]
fn bootstrap_writes_one_token_file_once() -> StoreResult<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("admin-token");
    let (mut store, _) = memory_store()?;
    assert_eq!(store.bootstrap_token(&path)?, Some(path.clone()));
    let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let token = std::fs::read_to_string(&path)?;
    let info = store.authenticate(token.trim_end())?;
    assert_eq!(
        info.map(|t| (t.label, t.scope)),
        Some(("bootstrap".to_owned(), Scope::ReadWrite))
    );
    // Tokens exist: nothing happens, the file is untouched.
    assert_eq!(store.bootstrap_token(&path)?, None);
    assert_eq!(std::fs::read_to_string(&path)?, token);
    assert_eq!(store.count_tokens()?, 1);
    Ok(())
}

#[test]
fn bootstrap_never_overwrites_an_existing_file() -> StoreResult<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("admin-token");
    std::fs::write(&path, "keep me")?;
    let (mut store, _) = memory_store()?;
    let result = store.bootstrap_token(&path);
    assert!(matches!(
        result,
        Err(StoreError::Invalid {
            field: "bootstrap_token_path",
            ..
        })
    ));
    assert_eq!(std::fs::read_to_string(&path)?, "keep me");
    assert_eq!(store.count_tokens()?, 0);
    Ok(())
}
