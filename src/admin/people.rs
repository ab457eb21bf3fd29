//! Digest users (HA1 values only: a password in a request is hashed on the spot and
//! never stored, logged or audited) and admin tokens (SHA-256 only).

use admin_api::model::{
    CreatedToken, NewToken, NewUser, Principal, TokenInfo, TokenPage, User, UserPage, UserUpdate,
};
use admin_api::{Actor, ApiError, ApiResult, PageRequest};

use super::convert;
use super::{AdminService, change_of};
use crate::store::{DigestAlgorithm, PageRequest as StorePage, StoreError};

/// The store's page request for an API page request.
pub(super) fn store_page(page: &PageRequest) -> StorePage {
    match &page.cursor {
        Some(cursor) => StorePage::after(cursor.clone(), page.limit),
        None => StorePage::first(page.limit),
    }
}

impl AdminService {
    pub(super) async fn authenticate_token(&self, token: &str) -> ApiResult<Option<Principal>> {
        let token = token.to_owned();
        let info = self.store(move |store| store.authenticate(&token)).await?;
        Ok(info.map(|info| Principal {
            token_id: info.id,
            label: info.label,
            scope: convert::scope(info.scope),
        }))
    }

    pub(super) async fn users_page(&self, page: PageRequest) -> ApiResult<UserPage> {
        let request = store_page(&page);
        let users = self.store(move |store| store.list_users(&request)).await?;
        Ok(UserPage {
            items: users.items.into_iter().map(convert::user).collect(),
            next_cursor: users.next_cursor,
        })
    }

    pub(super) async fn user(&self, realm: &str, username: &str) -> ApiResult<User> {
        let (realm, username) = (realm.to_owned(), username.to_owned());
        let key = format!("{username}@{realm}");
        self.store(move |store| store.get_user(&username, &realm))
            .await?
            .map(convert::user)
            .ok_or_else(|| ApiError::not_found(format!("user {key:?}")))
    }

    pub(super) async fn add_user(&self, user: NewUser, actor: Actor) -> ApiResult<User> {
        let _changing = self.changes.lock().await;
        let change = change_of(&actor);
        let NewUser {
            username,
            realm,
            password,
            ha1,
            attributes,
        } = user;
        let created = match (password, ha1) {
            (Some(password), _) => {
                self.store(move |store| {
                    store.create_user(&username, &realm, &password, attributes, &change)
                })
                .await?
            }
            (None, Some(values)) => {
                let mut ha1s = Vec::with_capacity(values.len());
                for (name, value) in values {
                    let algorithm: DigestAlgorithm = name.parse().map_err(|_| {
                        ApiError::invalid(
                            format!("ha1.{name}"),
                            "unknown algorithm (MD5, SHA-256 or SHA-512-256)",
                        )
                    })?;
                    ha1s.push((algorithm, value));
                }
                self.store(move |store| {
                    store
                        .create_user_with_ha1(&username, &realm, &ha1s, attributes, &change)
                        .map_err(|error| match error {
                            StoreError::Invalid { reason, .. } => StoreError::Invalid {
                                field: "ha1",
                                reason,
                            },
                            other => other,
                        })
                })
                .await?
            }
            (None, None) => return Err(ApiError::invalid("password", "a password is required")),
        };
        self.reload_credentials().await;
        Ok(convert::user(created))
    }

    pub(super) async fn change_user(
        &self,
        realm: String,
        username: String,
        update: UserUpdate,
        if_version: Option<i64>,
        actor: Actor,
    ) -> ApiResult<User> {
        let _changing = self.changes.lock().await;
        let change = change_of(&actor);
        let changed = self
            .store(move |store| {
                let mut user = match update.attributes {
                    Some(attributes) => Some(
                        store.update_user(&username, &realm, attributes, if_version, &change)?,
                    ),
                    None => {
                        let current =
                            store
                                .get_user(&username, &realm)?
                                .ok_or(StoreError::NotFound {
                                    kind: "user",
                                    name: format!("{username}@{realm}"),
                                })?;
                        if let Some(expected) = if_version
                            && expected != current.version
                        {
                            return Err(StoreError::VersionMismatch {
                                current: current.version,
                            });
                        }
                        None
                    }
                };
                if let Some(password) = update.password {
                    user = Some(store.set_password(&username, &realm, &password, &change)?);
                }
                user.ok_or(StoreError::Corrupt("nothing changed".into()))
            })
            .await?;
        self.reload_credentials().await;
        Ok(convert::user(changed))
    }

    pub(super) async fn remove_user(
        &self,
        realm: String,
        username: String,
        actor: Actor,
    ) -> ApiResult<User> {
        let _changing = self.changes.lock().await;
        let change = change_of(&actor);
        let deleted = self
            .store(move |store| store.delete_user(&username, &realm, &change))
            .await?;
        self.reload_credentials().await;
        Ok(convert::user(deleted))
    }

    pub(super) async fn tokens_page(&self, page: PageRequest) -> ApiResult<TokenPage> {
        let request = store_page(&page);
        let tokens = self.store(move |store| store.list_tokens(&request)).await?;
        Ok(TokenPage {
            items: tokens.items.into_iter().map(convert::token).collect(),
            next_cursor: tokens.next_cursor,
        })
    }

    pub(super) async fn add_token(&self, token: NewToken, actor: Actor) -> ApiResult<CreatedToken> {
        let _changing = self.changes.lock().await;
        let change = change_of(&actor);
        let scope = convert::store_scope(token.scope);
        let (secret, info) = self
            .store(move |store| store.create_token(&token.label, scope, &change))
            .await?;
        Ok(CreatedToken {
            token: secret,
            info: convert::token(info),
        })
    }

    pub(super) async fn remove_token(&self, id: i64, actor: Actor) -> ApiResult<TokenInfo> {
        let _changing = self.changes.lock().await;
        let change = change_of(&actor);
        let revoked = self
            .store(move |store| store.revoke_token(id, &change))
            .await?;
        Ok(convert::token(revoked))
    }
}
