//! SIP digest users and admin tokens.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::Scope;
use crate::appliance::ApiError;

const MAX_PASSWORD_BYTES: usize = 1024;

/// A new SIP digest user. Give either `password` (the appliance stores only its HA1
/// values for MD5, SHA-256 and SHA-512-256, never the password) or `ha1` (precomputed
/// values, e.g. imported from another system).
#[derive(Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(min_length = 1, max_length = 128, example = "alice")]
    pub username: String,
    #[schema(min_length = 1, max_length = 256, example = "sbc.example.net")]
    pub realm: String,
    /// Write-only: never returned, logged or audited.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1024, write_only)]
    pub password: Option<String>,
    /// HA1 = H(username:realm:password) in hex, by algorithm (`MD5`, `SHA-256`,
    /// `SHA-512-256`). Write-only.
    #[serde(default)]
    #[schema(write_only)]
    pub ha1: Option<BTreeMap<String, String>>,
    /// Free-form attributes (display name, allowed numbers …).
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub attributes: Value,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// `Debug` that keeps credentials out of logs.
impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ha1", &self.ha1.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

fn check_identity(username: &str, realm: &str) -> Result<(), ApiError> {
    let text_ok = |value: &str, max: usize| {
        (1..=max).contains(&value.chars().count()) && !value.chars().any(char::is_control)
    };
    if !text_ok(username, 128) || username.contains(':') {
        return Err(ApiError::invalid(
            "username",
            "must be 1 to 128 characters, without ':' or control characters",
        ));
    }
    if !text_ok(realm, 256) {
        return Err(ApiError::invalid(
            "realm",
            "must be 1 to 256 characters without control characters",
        ));
    }
    Ok(())
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid(
            "password",
            format!("must be 1 to {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn check_attributes(attributes: &Value) -> Result<(), ApiError> {
    if attributes.is_object() {
        Ok(())
    } else {
        Err(ApiError::invalid("attributes", "must be a JSON object"))
    }
}

impl NewUser {
    /// Checks every field on its own.
    pub fn check(&self) -> Result<(), ApiError> {
        check_identity(&self.username, &self.realm)?;
        match (&self.password, &self.ha1) {
            (Some(password), None) => check_password(password)?,
            (None, Some(ha1)) if !ha1.is_empty() => {}
            (None, Some(_)) => {
                return Err(ApiError::invalid("ha1", "at least one algorithm is needed"));
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "ha1",
                    "give either password or ha1, not both",
                ));
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    "password",
                    "a password (or ha1) is required",
                ));
            }
        }
        check_attributes(&self.attributes)
    }
}

/// A change to a user: new attributes, a new password, or both.
#[derive(Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// Write-only.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1024, write_only)]
    pub password: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Value>,
}

impl std::fmt::Debug for UserUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserUpdate")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("attributes", &self.attributes)
            .finish()
    }
}

impl UserUpdate {
    /// Checks every field on its own.
    pub fn check(&self) -> Result<(), ApiError> {
        if self.password.is_none() && self.attributes.is_none() {
            return Err(ApiError::invalid(
                "password",
                "nothing to change: give password, attributes or both",
            ));
        }
        if let Some(password) = &self.password {
            check_password(password)?;
        }
        if let Some(attributes) = &self.attributes {
            check_attributes(attributes)?;
        }
        Ok(())
    }
}

/// A user as listed: which algorithms have an HA1, never the credentials.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct User {
    pub username: String,
    pub realm: String,
    #[schema(value_type = Object)]
    pub attributes: Value,
    /// `MD5`, `SHA-256`, `SHA-512-256`.
    pub algorithms: Vec<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A token to create.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Who or what holds it.
    #[schema(min_length = 1, max_length = 128, example = "prometheus")]
    pub label: String,
    pub scope: Scope,
}

impl NewToken {
    /// Checks every field on its own.
    pub fn check(&self) -> Result<(), ApiError> {
        let ok = (1..=128).contains(&self.label.chars().count())
            && !self.label.chars().any(char::is_control);
        if ok {
            Ok(())
        } else {
            Err(ApiError::invalid(
                "label",
                "must be 1 to 128 characters without control characters",
            ))
        }
    }
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TokenInfo {
    pub id: i64,
    pub label: String,
    pub scope: Scope,
    pub created_at: i64,
    /// To the minute.
    pub last_used: Option<i64>,
}

/// A new token: the secret is shown this once.
#[derive(Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Use as `Authorization: Bearer <token>`. Only its SHA-256 is stored.
    pub token: String,
    pub info: TokenInfo,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("token", &"<redacted>")
            .field("info", &self.info)
            .finish()
    }
}
