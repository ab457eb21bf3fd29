//! A fake appliance for the router tests: two tokens, trunks in memory, everything else
//! empty.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::model::*;
use crate::*;

/// An appliance with two tokens and trunks in memory; everything else is empty.
#[derive(Debug)]
pub(crate) struct FakeAppliance {
    pub(crate) readiness: Mutex<Readiness>,
    pub(crate) objects: Mutex<BTreeMap<String, StoredObject>>,
    pub(crate) changes: Mutex<Vec<String>>,
}

pub(crate) const READ_WRITE: &str = "sbc_rw";
pub(crate) const READ_ONLY: &str = "sbc_ro";

impl FakeAppliance {
    pub(crate) fn new(readiness: Readiness) -> FakeAppliance {
        FakeAppliance {
            readiness: Mutex::new(readiness),
            objects: Mutex::new(BTreeMap::new()),
            changes: Mutex::new(Vec::new()),
        }
    }

    fn record(&self, what: &str, actor: &Actor) {
        self.changes.lock().unwrap().push(format!(
            "{what} by {} from {}",
            actor.audit_name(),
            actor.audit_source().unwrap_or_default()
        ));
    }
}

pub(crate) fn ready<'a, T: Send + 'a>(value: ApiResult<T>) -> BoxFuture<'a, ApiResult<T>> {
    Box::pin(async move { value })
}

fn stored(spec: &ObjectSpec, version: i64) -> StoredObject {
    let value = match spec {
        ObjectSpec::Trunk(spec) => serde_json::to_value(spec),
        ObjectSpec::Route(spec) => serde_json::to_value(spec),
        ObjectSpec::Acl(spec) => serde_json::to_value(spec),
    }
    .unwrap();
    StoredObject {
        kind: spec.kind(),
        name: spec.name().to_owned(),
        spec: value,
        version,
        origin: Origin::Api,
        created_at: Some(1),
        updated_at: Some(version),
    }
}

impl Appliance for FakeAppliance {
    fn readiness(&self) -> Readiness {
        self.readiness.lock().unwrap().clone()
    }

    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, ApiResult<Option<Principal>>> {
        let scope = match token {
            READ_WRITE => Some(Scope::ReadWrite),
            READ_ONLY => Some(Scope::ReadOnly),
            _ => None,
        };
        ready(Ok(scope.map(|scope| Principal {
            token_id: 1,
            label: token.to_owned(),
            scope,
        })))
    }

    fn metrics(&self) -> BoxFuture<'_, ApiResult<String>> {
        ready(Ok("# TYPE sbc_up gauge\nsbc_up 1\n".to_owned()))
    }

    fn list_objects(
        &self,
        kind: ObjectKind,
        page: PageRequest,
    ) -> BoxFuture<'_, ApiResult<StoredObjectPage>> {
        let objects = self.objects.lock().unwrap();
        let items: Vec<StoredObject> = objects
            .values()
            .filter(|object| object.kind == kind)
            .filter(|object| {
                page.cursor
                    .as_ref()
                    .is_none_or(|after| &object.name > after)
            })
            .take(page.limit as usize)
            .cloned()
            .collect();
        ready(Ok(StoredObjectPage {
            next_cursor: (items.len() == page.limit as usize)
                .then(|| items.last().map(|o| o.name.clone()))
                .flatten(),
            items,
        }))
    }

    fn get_object<'a>(
        &'a self,
        _kind: ObjectKind,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<StoredObject>> {
        let found = self.objects.lock().unwrap().get(name).cloned();
        ready(found.ok_or_else(|| ApiError::not_found(format!("object {name:?}"))))
    }

    fn create_object(
        &self,
        spec: ObjectSpec,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<StoredObject>> {
        let mut objects = self.objects.lock().unwrap();
        if objects.contains_key(spec.name()) {
            return ready(Err(ApiError::conflict("taken")));
        }
        let object = stored(&spec, 1);
        objects.insert(spec.name().to_owned(), object.clone());
        self.record("create", &actor);
        ready(Ok(object))
    }

    fn replace_object(
        &self,
        spec: ObjectSpec,
        if_version: Option<i64>,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<StoredObject>> {
        let mut objects = self.objects.lock().unwrap();
        let Some(current) = objects.get(spec.name()) else {
            return ready(Err(ApiError::not_found("object")));
        };
        if let Some(expected) = if_version
            && expected != current.version
        {
            return ready(Err(ApiError::VersionMismatch {
                current: current.version,
            }));
        }
        let object = stored(&spec, current.version + 1);
        objects.insert(spec.name().to_owned(), object.clone());
        self.record("replace", &actor);
        ready(Ok(object))
    }

    fn delete_object(
        &self,
        _kind: ObjectKind,
        name: String,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<StoredObject>> {
        let removed = self.objects.lock().unwrap().remove(&name);
        if removed.is_some() {
            self.record("delete", &actor);
        }
        ready(removed.ok_or_else(|| ApiError::not_found("object")))
    }

    fn list_users(&self, _: PageRequest) -> BoxFuture<'_, ApiResult<UserPage>> {
        ready(Ok(UserPage {
            items: Vec::new(),
            next_cursor: None,
        }))
    }

    fn get_user<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, ApiResult<User>> {
        ready(Err(ApiError::not_found("user")))
    }

    fn create_user(&self, user: NewUser, actor: Actor) -> BoxFuture<'_, ApiResult<User>> {
        self.record("create_user", &actor);
        ready(Ok(User {
            username: user.username,
            realm: user.realm,
            attributes: user.attributes,
            algorithms: vec!["MD5".into(), "SHA-256".into()],
            version: 1,
            created_at: 1,
            updated_at: 1,
        }))
    }

    fn update_user(
        &self,
        _: String,
        _: String,
        _: UserUpdate,
        _: Option<i64>,
        _: Actor,
    ) -> BoxFuture<'_, ApiResult<User>> {
        ready(Err(ApiError::not_found("user")))
    }

    fn delete_user(&self, _: String, _: String, _: Actor) -> BoxFuture<'_, ApiResult<User>> {
        ready(Err(ApiError::not_found("user")))
    }

    fn list_tokens(&self, _: PageRequest) -> BoxFuture<'_, ApiResult<TokenPage>> {
        ready(Ok(TokenPage {
            items: Vec::new(),
            next_cursor: None,
        }))
    }

    fn create_token(&self, token: NewToken, _: Actor) -> BoxFuture<'_, ApiResult<CreatedToken>> {
        ready(Ok(CreatedToken {
            token: "sbc_new".into(),
            info: TokenInfo {
                id: 2,
                label: token.label,
                scope: token.scope,
                created_at: 1,
                last_used: None,
            },
        }))
    }

    fn revoke_token(&self, _: i64, _: Actor) -> BoxFuture<'_, ApiResult<TokenInfo>> {
        ready(Err(ApiError::not_found("token")))
    }

    fn list_calls(&self, _: PageRequest) -> BoxFuture<'_, ApiResult<CallPage>> {
        ready(Ok(CallPage {
            items: Vec::new(),
            next_cursor: None,
        }))
    }

    fn get_call<'a>(&'a self, _: &'a str) -> BoxFuture<'a, ApiResult<CallInfo>> {
        ready(Err(ApiError::not_found("call")))
    }

    fn terminate_call(&self, _: String, _: Actor) -> BoxFuture<'_, ApiResult<CallInfo>> {
        ready(Err(ApiError::not_found("call")))
    }

    fn list_registrations(&self, _: PageRequest) -> BoxFuture<'_, ApiResult<RegistrationPage>> {
        ready(Ok(RegistrationPage {
            items: Vec::new(),
            next_cursor: None,
        }))
    }

    fn list_bans(&self, _: PageRequest) -> BoxFuture<'_, ApiResult<BanPage>> {
        ready(Ok(BanPage {
            items: Vec::new(),
            next_cursor: None,
        }))
    }

    fn add_ban(&self, _: NewBan, _: Actor) -> BoxFuture<'_, ApiResult<Ban>> {
        ready(Err(ApiError::unavailable("not in this test")))
    }

    fn lift_ban(&self, _: i64, _: Actor) -> BoxFuture<'_, ApiResult<Ban>> {
        ready(Err(ApiError::not_found("ban")))
    }

    fn list_cdrs(&self, _: CdrFilter, _: PageRequest) -> BoxFuture<'_, ApiResult<CdrPage>> {
        ready(Ok(CdrPage {
            items: Vec::new(),
            next_cursor: None,
        }))
    }

    fn export_cdrs(&self, _: CdrFilter, _: ExportFormat) -> BoxFuture<'_, ApiResult<ByteStream>> {
        let (mut sink, stream) = byte_channel();
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = sink.write_all(b"id,caller\r\n1,alice\r\n");
            let _ = sink.flush();
        });
        ready(Ok(stream))
    }

    fn list_audit(&self, _: PageRequest) -> BoxFuture<'_, ApiResult<AuditPage>> {
        ready(Ok(AuditPage {
            items: Vec::new(),
            next_cursor: None,
        }))
    }

    fn verify_audit(&self) -> BoxFuture<'_, ApiResult<AuditVerdict>> {
        ready(Ok(AuditVerdict {
            records: 0,
            ok: true,
            first_bad: None,
            reason: None,
            head_hash: None,
        }))
    }

    fn reload_tls(&self, _: Actor) -> BoxFuture<'_, ApiResult<TlsReloaded>> {
        ready(Err(ApiError::invalid("certificate", "no such file")))
    }

    fn drain_state(&self) -> BoxFuture<'_, ApiResult<DrainState>> {
        ready(Ok(DrainState {
            draining: false,
            active_calls: 0,
        }))
    }

    fn set_draining(&self, draining: bool, _: Actor) -> BoxFuture<'_, ApiResult<DrainState>> {
        ready(Ok(DrainState {
            draining,
            active_calls: 0,
        }))
    }

    fn credential(&self) -> BoxFuture<'_, ApiResult<crate::model::CredentialInfo>> {
        ready(Err(ApiError::not_found("signing credential")))
    }

    fn set_credential(
        &self,
        _: crate::model::NewCredential,
        _: Actor,
    ) -> BoxFuture<'_, ApiResult<crate::model::CredentialInfo>> {
        ready(Err(ApiError::invalid(
            "private_key",
            "the fake appliance checks no keys",
        )))
    }

    fn delete_credential(
        &self,
        _: Actor,
    ) -> BoxFuture<'_, ApiResult<crate::model::CredentialInfo>> {
        ready(Err(ApiError::not_found("signing credential")))
    }

    fn list_trust_anchors(
        &self,
        _: PageRequest,
    ) -> BoxFuture<'_, ApiResult<crate::model::TrustAnchorPage>> {
        ready(Ok(crate::model::TrustAnchorPage {
            items: Vec::new(),
            next_cursor: None,
        }))
    }

    fn add_trust_anchor(
        &self,
        _: crate::model::NewTrustAnchor,
        _: Actor,
    ) -> BoxFuture<'_, ApiResult<crate::model::TrustAnchorInfo>> {
        ready(Err(ApiError::invalid(
            "certificate",
            "the fake appliance checks no certificates",
        )))
    }

    fn remove_trust_anchor(
        &self,
        id: String,
        _: Actor,
    ) -> BoxFuture<'_, ApiResult<crate::model::TrustAnchorInfo>> {
        ready(Err(ApiError::not_found(format!("trust anchor {id:?}"))))
    }
}
