//! Reads for the signalling side: every HA1 at once (the in-memory credential snapshot
//! is built from it) and every live registration (restored at start).

use rusqlite::params;

use super::Store;
use super::error::StoreResult;
use super::registrations::Registration;
use super::users::DigestAlgorithm;

/// One stored HA1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub realm: String,
    pub algorithm: DigestAlgorithm,
    pub ha1: String,
}

impl Store {
    /// Every HA1 of every user (unknown algorithm names are skipped).
    pub fn all_credentials(&self) -> StoreResult<Vec<Credential>> {
        let mut statement = self
            .conn()
            .prepare_cached("SELECT username, realm, algorithm, ha1 FROM user_credentials")?;
        let mut rows = statement.query([])?;
        let mut all = Vec::new();
        while let Some(row) = rows.next()? {
            let name: String = row.get(2)?;
            let Ok(algorithm) = name.parse() else {
                continue;
            };
            all.push(Credential {
                username: row.get(0)?,
                realm: row.get(1)?,
                algorithm,
                ha1: row.get(3)?,
            });
        }
        Ok(all)
    }

    /// Every registration that has not lapsed at `now` (unix ms), at most `limit`.
    pub fn live_registrations(&self, now: i64, limit: usize) -> StoreResult<Vec<Registration>> {
        let mut all = Vec::new();
        let mut statement = self.conn().prepare_cached(
            "SELECT aor FROM registrations WHERE expires_at > ?1 GROUP BY aor ORDER BY aor LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = statement.query(params![now, limit])?;
        let mut aors = Vec::new();
        while let Some(row) = rows.next()? {
            aors.push(row.get::<_, String>(0)?);
        }
        for aor in aors {
            all.extend(
                self.registrations_for(&aor)?
                    .into_iter()
                    .filter(|registration| registration.expires_at > now),
            );
        }
        Ok(all)
    }
}
