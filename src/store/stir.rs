//! STIR/SHAKEN material set through the admin API: the signing credential (the SBC's
//! P-256 private key, its certificate chain and the `x5u` URL it advertises) and extra
//! STI-CA trust anchors.
//!
//! The store does not interpret the PEM documents (the caller checks them before
//! storing); it keeps, next to each, a JSON summary (subject, issuer, dates,
//! fingerprint …) that is what listings and the audit log show. The private key is
//! only ever read back to build the signer: it is not in any summary nor in the audit
//! log, and at rest it is protected by the database file's mode (0600, see
//! [`Store::open`]) and the data directory's.

use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::audit::{self, AuditEntry};
use super::error::{StoreError, StoreResult};
use super::{Change, Store};

/// Trust anchors kept at most.
pub const MAX_TRUST_ANCHORS: usize = 256;
/// Largest PEM document accepted (a key, a chain or a root).
pub const MAX_PEM_BYTES: usize = 64 * 1024;

/// The signing credential as stored.
#[derive(Clone, PartialEq)]
pub struct StirCredential {
    /// PEM. A secret: never listed, logged or audited.
    pub private_key_pem: String,
    /// PEM, leaf first.
    pub chain_pem: String,
    pub x5u: String,
    /// What may be shown: the certificate's summary (no key material).
    pub summary: Value,
    /// Unix ms.
    pub updated_at: i64,
}

impl std::fmt::Debug for StirCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StirCredential")
            .field("private_key_pem", &"<redacted>")
            .field("x5u", &self.x5u)
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

/// A trust anchor as stored, named by its certificate's SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub struct StirTrustAnchor {
    /// Lower-case hex SHA-256 of the DER certificate.
    pub fingerprint: String,
    pub certificate_pem: String,
    pub summary: Value,
    /// Unix ms.
    pub created_at: i64,
}

const CREDENTIAL_NAME: &str = "signing";

fn check_pem(field: &'static str, pem: &str) -> StoreResult<()> {
    if pem.is_empty() || pem.len() > MAX_PEM_BYTES {
        return Err(StoreError::invalid(
            field,
            format!("must be 1 to {MAX_PEM_BYTES} bytes of PEM"),
        ));
    }
    Ok(())
}

fn credential_of(tx: &rusqlite::Connection) -> StoreResult<Option<StirCredential>> {
    let row = tx
        .prepare_cached(
            "SELECT private_key, chain, x5u, summary, updated_at FROM stir_credential WHERE id = 1",
        )?
        .query_row([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    row.map(|(private_key_pem, chain_pem, x5u, summary, updated_at)| {
        Ok(StirCredential {
            private_key_pem,
            chain_pem,
            x5u,
            summary: serde_json::from_str(&summary)?,
            updated_at,
        })
    })
    .transpose()
}

impl Store {
    /// The signing credential set through the API, if any.
    pub fn stir_credential(&self) -> StoreResult<Option<StirCredential>> {
        credential_of(self.conn())
    }

    /// Sets (or replaces) the signing credential. The audit record holds the summaries
    /// before and after, never the key.
    pub fn set_stir_credential(
        &mut self,
        private_key_pem: &str,
        chain_pem: &str,
        x5u: &str,
        summary: Value,
        change: &Change,
    ) -> StoreResult<StirCredential> {
        check_pem("private_key", private_key_pem)?;
        check_pem("certificate_chain", chain_pem)?;
        let summary_text = super::json_text("summary", &summary, MAX_PEM_BYTES)?;
        let now = self.now_ms();
        let tx = self.write()?;
        let before = credential_of(&tx)?;
        tx.prepare_cached(
            "INSERT INTO stir_credential (id, private_key, chain, x5u, summary, updated_at) \
             VALUES (1, ?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (id) DO UPDATE SET private_key = ?1, chain = ?2, x5u = ?3, \
             summary = ?4, updated_at = ?5",
        )?
        .execute(params![private_key_pem, chain_pem, x5u, summary_text, now])?;
        let action = if before.is_some() { "update" } else { "create" };
        let entry = AuditEntry::new(change, action, "stir_credential", CREDENTIAL_NAME)
            .with_states(before.map(|before| before.summary), Some(summary.clone()));
        audit::append(&tx, now, &entry)?;
        tx.commit()?;
        Ok(StirCredential {
            private_key_pem: private_key_pem.to_owned(),
            chain_pem: chain_pem.to_owned(),
            x5u: x5u.to_owned(),
            summary,
            updated_at: now,
        })
    }

    /// Removes the signing credential set through the API (the file's applies again).
    pub fn delete_stir_credential(&mut self, change: &Change) -> StoreResult<StirCredential> {
        let now = self.now_ms();
        let tx = self.write()?;
        let before = credential_of(&tx)?
            .ok_or_else(|| StoreError::not_found("stir_credential", CREDENTIAL_NAME))?;
        tx.execute("DELETE FROM stir_credential WHERE id = 1", [])?;
        let entry = AuditEntry::new(change, "delete", "stir_credential", CREDENTIAL_NAME)
            .with_states(Some(before.summary.clone()), None);
        audit::append(&tx, now, &entry)?;
        tx.commit()?;
        Ok(before)
    }

    /// Every trust anchor set through the API, by fingerprint.
    pub fn stir_trust_anchors(&self) -> StoreResult<Vec<StirTrustAnchor>> {
        let mut statement = self.conn().prepare_cached(
            "SELECT fingerprint, certificate, summary, created_at FROM stir_trust_anchors \
             ORDER BY fingerprint",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?;
        let mut anchors = Vec::new();
        for row in rows {
            let (fingerprint, certificate_pem, summary, created_at) = row?;
            anchors.push(StirTrustAnchor {
                fingerprint,
                certificate_pem,
                summary: serde_json::from_str(&summary)?,
                created_at,
            });
        }
        Ok(anchors)
    }

    /// Adds a trust anchor; [`StoreError::Conflict`] if it is there already.
    pub fn add_stir_trust_anchor(
        &mut self,
        fingerprint: &str,
        certificate_pem: &str,
        summary: Value,
        change: &Change,
    ) -> StoreResult<StirTrustAnchor> {
        check_pem("certificate", certificate_pem)?;
        let summary_text = super::json_text("summary", &summary, MAX_PEM_BYTES)?;
        let now = self.now_ms();
        let tx = self.write()?;
        let (exists, count): (bool, i64) = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM stir_trust_anchors WHERE fingerprint = ?1), \
             (SELECT count(*) FROM stir_trust_anchors)",
            [fingerprint],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        if exists {
            return Err(StoreError::Conflict {
                kind: "trust anchor",
                name: fingerprint.to_owned(),
            });
        }
        if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_TRUST_ANCHORS {
            return Err(StoreError::invalid(
                "certificate",
                format!("at most {MAX_TRUST_ANCHORS} trust anchors are kept"),
            ));
        }
        tx.prepare_cached(
            "INSERT INTO stir_trust_anchors (fingerprint, certificate, summary, created_at) \
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![fingerprint, certificate_pem, summary_text, now])?;
        let entry = AuditEntry::new(change, "create", "stir_trust_anchor", fingerprint)
            .with_states(None, Some(summary.clone()));
        audit::append(&tx, now, &entry)?;
        tx.commit()?;
        Ok(StirTrustAnchor {
            fingerprint: fingerprint.to_owned(),
            certificate_pem: certificate_pem.to_owned(),
            summary,
            created_at: now,
        })
    }

    /// Removes a trust anchor set through the API.
    pub fn remove_stir_trust_anchor(
        &mut self,
        fingerprint: &str,
        change: &Change,
    ) -> StoreResult<StirTrustAnchor> {
        let now = self.now_ms();
        let tx = self.write()?;
        let found = tx
            .prepare_cached(
                "SELECT certificate, summary, created_at FROM stir_trust_anchors \
                 WHERE fingerprint = ?1",
            )?
            .query_row([fingerprint], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .optional()?;
        let (certificate_pem, summary, created_at) =
            found.ok_or_else(|| StoreError::not_found("trust anchor", fingerprint))?;
        let summary: Value = serde_json::from_str(&summary)?;
        tx.execute(
            "DELETE FROM stir_trust_anchors WHERE fingerprint = ?1",
            [fingerprint],
        )?;
        let entry = AuditEntry::new(change, "delete", "stir_trust_anchor", fingerprint)
            .with_states(Some(summary.clone()), None);
        audit::append(&tx, now, &entry)?;
        tx.commit()?;
        Ok(StirTrustAnchor {
            fingerprint: fingerprint.to_owned(),
            certificate_pem,
            summary,
            created_at,
        })
    }
}
