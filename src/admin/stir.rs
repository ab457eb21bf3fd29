//! STIR/SHAKEN material through the API: the signing credential (its private key is
//! checked, stored and used, never shown: answers and audit records carry the
//! certificate's summary and fingerprint) and the STI-CA roots. A change is persisted
//! with its audit record, then put in effect in every shard and the publisher before
//! the API answers.

use std::path::PathBuf;

use admin_api::model::{
    CertificateInfo, CredentialInfo, NewCredential, NewTrustAnchor, Origin, TrustAnchorInfo,
    TrustAnchorPage,
};
use admin_api::{Actor, ApiError, ApiResult, PageRequest};
use openssl::x509::X509;

use super::{AdminService, change_of};
use crate::config::{Config, VerifyMode};
use crate::identity_material::{
    CertificateSummary, MaterialProblem, StoredMaterial, check_credential, check_root, fingerprint,
    summary,
};

fn invalid(problem: MaterialProblem) -> ApiError {
    ApiError::invalid(problem.field, problem.problem)
}

fn info(summary: CertificateSummary) -> CertificateInfo {
    CertificateInfo {
        subject: summary.subject,
        issuer: summary.issuer,
        serial: summary.serial,
        not_before: summary.not_before,
        not_after: summary.not_after,
        fingerprint_sha256: summary.fingerprint_sha256,
        tn_auth_list: summary.tn_auth_list,
    }
}

fn credential_info(
    origin: Origin,
    x5u: &str,
    chain: &[X509],
    updated_at: Option<i64>,
) -> ApiResult<CredentialInfo> {
    let leaf = chain
        .first()
        .ok_or_else(|| ApiError::internal("a STIR credential without a certificate"))?;
    Ok(CredentialInfo {
        origin,
        x5u: x5u.to_owned(),
        certificate: info(summary(leaf)),
        chain_length: chain.len(),
        updated_at,
    })
}

/// What the audit log and listings keep of a credential: its certificate's summary,
/// the chain's length and `x5u` (no key).
fn credential_summary(x5u: &str, chain: &[X509]) -> serde_json::Value {
    serde_json::json!({
        "x5u": x5u,
        "chain_length": chain.len(),
        "certificate": chain.first().map(summary),
    })
}

impl AdminService {
    async fn stir_material(&self) -> ApiResult<StoredMaterial> {
        self.store(|store| StoredMaterial::load(store)).await
    }

    /// Puts the store's material in effect (when signalling runs; else it is read at
    /// start).
    async fn apply_stir_material(&self) -> ApiResult<()> {
        let stored = self.stir_material().await?;
        if let Some(signalling) = self.setup.status.signalling() {
            signalling
                .replace_identity_material(&stored)
                .await
                .map_err(|error| ApiError::unavailable(error.to_string()))?;
        }
        Ok(())
    }

    /// The configuration as the trunk checks see it: material set through the API
    /// counts as configured (a trunk may verify with the store's roots and sign with
    /// its credential).
    pub(super) async fn config_with_stir_material(&self) -> ApiResult<Config> {
        let stored = self.stir_material().await?;
        let mut config = (*self.setup.config).clone();
        let identity = &mut config.identity;
        if !stored.anchors.is_empty() && identity.trust_anchors.is_none() {
            identity.trust_anchors = Some(PathBuf::from("(trust anchors of the admin API)"));
        }
        if let Some(credential) = &stored.credential {
            identity.certificate = Some(PathBuf::from("(certificate of the admin API)"));
            identity.private_key = Some(PathBuf::from("(private key of the admin API)"));
            identity.x5u = Some(credential.x5u.clone());
        }
        Ok(config)
    }

    /// The trunks in effect (the file's and the store's).
    async fn trunks_in_effect(&self) -> ApiResult<Vec<crate::config::TrunkConfig>> {
        let config = std::sync::Arc::clone(&self.setup.config);
        self.store(move |store| {
            crate::objects::initial_objects(&config, store)
                .map(|objects| objects.trunks)
                .map_err(|error| crate::store::StoreError::Corrupt(error.to_string()))
        })
        .await
    }

    fn file_material(&self) -> (Vec<X509>, Option<(String, Vec<X509>)>) {
        match self.setup.status.signalling() {
            Some(signalling) => (
                signalling.identity.file_roots().to_vec(),
                signalling
                    .identity
                    .file_credential()
                    .map(|credential| (credential.x5u.clone(), credential.chain.clone())),
            ),
            None => (Vec::new(), None),
        }
    }

    pub(super) async fn stir_credential(&self) -> ApiResult<CredentialInfo> {
        let stored = self.stir_material().await?;
        if let Some(credential) = &stored.credential {
            let chain = X509::stack_from_pem(credential.chain_pem.as_bytes())
                .map_err(|error| ApiError::internal(format!("stored STIR chain: {error}")))?;
            return credential_info(
                Origin::Api,
                &credential.x5u,
                &chain,
                Some(credential.updated_at),
            );
        }
        match self.file_material().1 {
            Some((x5u, chain)) => credential_info(Origin::ConfigFile, &x5u, &chain, None),
            None => Err(ApiError::not_found("signing credential")),
        }
    }

    pub(super) async fn set_stir_credential(
        &self,
        credential: NewCredential,
        actor: Actor,
    ) -> ApiResult<CredentialInfo> {
        let _changing = self.changes.lock().await;
        let checked = check_credential(
            credential.private_key.as_bytes(),
            credential.certificate_chain.as_bytes(),
            &credential.x5u,
        )
        .map_err(invalid)?;
        let audit = credential_summary(&checked.x5u, &checked.chain);
        let change = change_of(&actor);
        let NewCredential {
            private_key,
            certificate_chain,
            x5u,
        } = credential;
        let stored = self
            .store(move |store| {
                store.set_stir_credential(&private_key, &certificate_chain, &x5u, audit, &change)
            })
            .await?;
        self.apply_stir_material().await?;
        credential_info(
            Origin::Api,
            &checked.x5u,
            &checked.chain,
            Some(stored.updated_at),
        )
    }

    pub(super) async fn delete_stir_credential(&self, actor: Actor) -> ApiResult<CredentialInfo> {
        let _changing = self.changes.lock().await;
        let file_has_one =
            self.file_material().1.is_some() || self.setup.config.identity.private_key.is_some();
        if !file_has_one {
            let signing: Vec<String> = self
                .trunks_in_effect()
                .await?
                .into_iter()
                .filter(|trunk| trunk.identity.sign)
                .map(|trunk| trunk.name)
                .collect();
            if !signing.is_empty() {
                return Err(ApiError::conflict(format!(
                    "trunks {signing:?} sign calls and the configuration file has no credential"
                )));
            }
        }
        let change = change_of(&actor);
        let removed = self
            .store(move |store| store.delete_stir_credential(&change))
            .await?;
        self.apply_stir_material().await?;
        let chain = X509::stack_from_pem(removed.chain_pem.as_bytes())
            .map_err(|error| ApiError::internal(format!("stored STIR chain: {error}")))?;
        credential_info(Origin::Api, &removed.x5u, &chain, Some(removed.updated_at))
    }

    /// Every root in effect, by fingerprint.
    async fn trust_anchors(&self) -> ApiResult<Vec<TrustAnchorInfo>> {
        let stored = self.stir_material().await?;
        let mut all: Vec<TrustAnchorInfo> = self
            .file_material()
            .0
            .iter()
            .map(|root| TrustAnchorInfo {
                id: fingerprint(root),
                origin: Origin::ConfigFile,
                certificate: info(summary(root)),
                created_at: None,
            })
            .collect();
        for anchor in &stored.anchors {
            if all.iter().any(|known| known.id == anchor.fingerprint) {
                continue;
            }
            let Ok(root) = check_root(anchor.certificate_pem.as_bytes()) else {
                continue;
            };
            all.push(TrustAnchorInfo {
                id: anchor.fingerprint.clone(),
                origin: Origin::Api,
                certificate: info(summary(&root)),
                created_at: Some(anchor.created_at),
            });
        }
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    pub(super) async fn trust_anchor_page(&self, page: PageRequest) -> ApiResult<TrustAnchorPage> {
        if let Some(cursor) = &page.cursor
            && (cursor.len() != 64 || !cursor.bytes().all(|byte| byte.is_ascii_hexdigit()))
        {
            return Err(ApiError::bad_request("cursor: not a cursor of this list"));
        }
        let all = self.trust_anchors().await?;
        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let mut items: Vec<TrustAnchorInfo> = all
            .into_iter()
            .filter(|anchor| page.cursor.as_ref().is_none_or(|after| &anchor.id > after))
            .take(limit.saturating_add(1))
            .collect();
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| last.id.clone())
        } else {
            None
        };
        Ok(TrustAnchorPage { items, next_cursor })
    }

    pub(super) async fn add_stir_trust_anchor(
        &self,
        anchor: NewTrustAnchor,
        actor: Actor,
    ) -> ApiResult<TrustAnchorInfo> {
        let _changing = self.changes.lock().await;
        let root = check_root(anchor.certificate.as_bytes()).map_err(invalid)?;
        let id = fingerprint(&root);
        if self
            .file_material()
            .0
            .iter()
            .any(|known| fingerprint(known) == id)
        {
            return Err(ApiError::conflict(format!(
                "trust anchor {id} is already trusted by the configuration file"
            )));
        }
        let described = summary(&root);
        let audit = serde_json::to_value(&described)
            .map_err(|error| ApiError::internal(error.to_string()))?;
        let change = change_of(&actor);
        let pem = anchor.certificate;
        let key = id.clone();
        let stored = self
            .store(move |store| store.add_stir_trust_anchor(&key, &pem, audit, &change))
            .await?;
        self.apply_stir_material().await?;
        Ok(TrustAnchorInfo {
            id,
            origin: Origin::Api,
            certificate: info(described),
            created_at: Some(stored.created_at),
        })
    }

    pub(super) async fn remove_stir_trust_anchor(
        &self,
        id: String,
        actor: Actor,
    ) -> ApiResult<TrustAnchorInfo> {
        let _changing = self.changes.lock().await;
        let id = id.to_ascii_lowercase();
        let file_roots = self.file_material().0;
        if file_roots.iter().any(|root| fingerprint(root) == id) {
            return Err(ApiError::conflict(format!(
                "trust anchor {id} is defined in the configuration file (identity.trust_anchors)"
            )));
        }
        let stored = self.stir_material().await?;
        let last = file_roots.is_empty() && stored.anchors.len() == 1;
        if last && stored.anchors.iter().any(|anchor| anchor.fingerprint == id) {
            let verifying: Vec<String> = self
                .trunks_in_effect()
                .await?
                .into_iter()
                .filter(|trunk| trunk.identity.verify != VerifyMode::Off)
                .map(|trunk| trunk.name)
                .collect();
            if !verifying.is_empty() {
                return Err(ApiError::conflict(format!(
                    "trust anchor {id} is the last one and trunks {verifying:?} verify calls"
                )));
            }
        }
        let change = change_of(&actor);
        let key = id.clone();
        let removed = self
            .store(move |store| store.remove_stir_trust_anchor(&key, &change))
            .await?;
        self.apply_stir_material().await?;
        let root = check_root(removed.certificate_pem.as_bytes()).map_err(invalid)?;
        Ok(TrustAnchorInfo {
            id,
            origin: Origin::Api,
            certificate: info(summary(&root)),
            created_at: Some(removed.created_at),
        })
    }
}
