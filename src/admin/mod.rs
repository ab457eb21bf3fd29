//! The appliance behind the admin API: [`AdminService`] implements `admin_api::Appliance`
//! on top of the store (every write a SQLite transaction with its audit record, on a
//! blocking thread) and the running signalling (questions to the shards, routing-table
//! replacement, the relay, TLS reload).
//!
//! Changes are serialised by one lock, checked completely before anything is written
//! (so a refused request changes nothing), persisted, then applied: trunk and route
//! changes replace the routing table for new calls, user changes reload signalling's
//! credentials, bans go to (or leave) the admission gate, and ACL changes publish a new
//! [`AccessSnapshot`](crate::access::AccessSnapshot).
//!
//! * [`objects`]: trunks, routes, ACLs.
//! * [`people`]: digest users and admin tokens.
//! * [`operations`]: calls, registrations, bans, CDRs, audit, TLS, drain, metrics.
//! * [`convert`]: store values as API values.

mod convert;
mod objects;
mod operations;
mod people;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, PoisonError};

use admin_api::model::{
    AuditPage, AuditVerdict, Ban, BanPage, CallInfo, CallPage, CdrFilter, CdrPage, CreatedToken,
    DrainState, ExportFormat, NewBan, NewToken, NewUser, ObjectKind, Principal, RegistrationPage,
    StoredObject, StoredObjectPage, TlsReloaded, TokenInfo, TokenPage, User, UserPage, UserUpdate,
};
use admin_api::tls::AdminTls;
use admin_api::{
    Actor, ApiError, ApiResult, Appliance, BoxFuture, ByteStream, ObjectSpec, PageRequest,
    Readiness,
};

use crate::access::AccessPublisher;
use crate::appliance::SharedStore;
use crate::cdr::CdrStats;
use crate::config::Config;
use crate::control::Signalling;
use crate::status::ApplianceStatus;
use crate::store::{Change, Store, StoreResult};
use crate::views::WallClock;

pub use convert::api_error;

/// What the admin service is built from.
#[derive(Debug)]
pub struct AdminSetup {
    pub config: Arc<Config>,
    pub status: Arc<ApplianceStatus>,
    pub store: SharedStore,
    /// The database file, for read-only connections (exports, audit verification).
    pub store_path: PathBuf,
    pub access: AccessPublisher,
    pub admin_tls: Option<Arc<AdminTls>>,
    pub clock: WallClock,
    pub cdr: Arc<CdrStats>,
}

/// The appliance as the admin API sees it.
#[derive(Debug)]
pub struct AdminService {
    setup: AdminSetup,
    /// Serialises changes: each is checked against, and applied on top of, the last.
    changes: tokio::sync::Mutex<()>,
    /// An operator asked to drain through the API.
    draining: AtomicBool,
}

impl AdminService {
    pub fn new(setup: AdminSetup) -> AdminService {
        AdminService {
            setup,
            changes: tokio::sync::Mutex::new(()),
            draining: AtomicBool::new(false),
        }
    }

    /// The admin listener's TLS context, which a TLS reload reloads too.
    pub fn set_admin_tls(&mut self, tls: Arc<AdminTls>) {
        self.setup.admin_tls = Some(tls);
    }

    /// Runs `f` on the store on a blocking thread.
    async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> StoreResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let store = Arc::clone(&self.setup.store);
        tokio::task::spawn_blocking(move || {
            let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut store)
        })
        .await
        .map_err(|error| ApiError::internal(format!("store task: {error}")))?
        .map_err(api_error)
    }

    /// Runs `f` on a read-only connection of its own (long reads that must not hold up
    /// the writers).
    async fn reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> StoreResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let path = self.setup.store_path.clone();
        tokio::task::spawn_blocking(move || f(&Store::open_reader(&path)?))
            .await
            .map_err(|error| ApiError::internal(format!("store task: {error}")))?
            .map_err(api_error)
    }

    /// The running signalling, or 503 while it starts.
    fn signalling(&self) -> ApiResult<&Arc<Signalling>> {
        self.setup
            .status
            .signalling()
            .ok_or_else(|| ApiError::unavailable("signalling is starting; try again shortly"))
    }

    /// Reads the ACLs again, publishes them, and puts them in force in signalling
    /// (the admission gate and the trunk directory); returns once they are. Published
    /// first, so that a signalling runtime starting meanwhile reads them itself.
    async fn publish_access(&self) -> ApiResult<()> {
        let snapshot = Arc::new(self.store(|store| crate::access::load(store)).await?);
        self.setup.access.send_replace(Arc::clone(&snapshot));
        if let Some(security) = self.setup.status.security() {
            security
                .replace_access(snapshot)
                .await
                .map_err(|error| ApiError::unavailable(error.to_string()))?;
        }
        Ok(())
    }

    /// Users changed: signalling's credential table is read again at once (a lost
    /// reload is made up by its periodic one).
    async fn reload_credentials(&self) {
        if let Some(security) = self.setup.status.security()
            && let Err(error) = security.reload_credentials().await
        {
            tracing::warn!(%error, "cannot reload credentials after a user change");
        }
    }
}

/// The store's record of who made a change.
fn change_of(actor: &Actor) -> Change {
    Change::new(actor.audit_name(), actor.audit_source())
}

fn boxed<'a, T: Send + 'a>(
    future: impl std::future::Future<Output = ApiResult<T>> + Send + 'a,
) -> BoxFuture<'a, ApiResult<T>> {
    Box::pin(future)
}

impl Appliance for AdminService {
    fn readiness(&self) -> Readiness {
        self.setup.status.readiness()
    }

    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, ApiResult<Option<Principal>>> {
        boxed(self.authenticate_token(token))
    }

    fn metrics(&self) -> BoxFuture<'_, ApiResult<String>> {
        boxed(self.metrics_text())
    }

    fn list_objects(
        &self,
        kind: ObjectKind,
        page: PageRequest,
    ) -> BoxFuture<'_, ApiResult<StoredObjectPage>> {
        boxed(self.list_config_objects(kind, page))
    }

    fn get_object<'a>(
        &'a self,
        kind: ObjectKind,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<StoredObject>> {
        boxed(self.get_config_object(kind, name))
    }

    fn create_object(
        &self,
        spec: ObjectSpec,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<StoredObject>> {
        boxed(self.put_config_object(spec, None, actor, true))
    }

    fn replace_object(
        &self,
        spec: ObjectSpec,
        if_version: Option<i64>,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<StoredObject>> {
        boxed(self.put_config_object(spec, if_version, actor, false))
    }

    fn delete_object(
        &self,
        kind: ObjectKind,
        name: String,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<StoredObject>> {
        boxed(self.delete_config_object(kind, name, actor))
    }

    fn list_users(&self, page: PageRequest) -> BoxFuture<'_, ApiResult<UserPage>> {
        boxed(self.users_page(page))
    }

    fn get_user<'a>(&'a self, realm: &'a str, username: &'a str) -> BoxFuture<'a, ApiResult<User>> {
        boxed(self.user(realm, username))
    }

    fn create_user(&self, user: NewUser, actor: Actor) -> BoxFuture<'_, ApiResult<User>> {
        boxed(self.add_user(user, actor))
    }

    fn update_user(
        &self,
        realm: String,
        username: String,
        update: UserUpdate,
        if_version: Option<i64>,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<User>> {
        boxed(self.change_user(realm, username, update, if_version, actor))
    }

    fn delete_user(
        &self,
        realm: String,
        username: String,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<User>> {
        boxed(self.remove_user(realm, username, actor))
    }

    fn list_tokens(&self, page: PageRequest) -> BoxFuture<'_, ApiResult<TokenPage>> {
        boxed(self.tokens_page(page))
    }

    fn create_token(
        &self,
        token: NewToken,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<CreatedToken>> {
        boxed(self.add_token(token, actor))
    }

    fn revoke_token(&self, id: i64, actor: Actor) -> BoxFuture<'_, ApiResult<TokenInfo>> {
        boxed(self.remove_token(id, actor))
    }

    fn list_calls(&self, page: PageRequest) -> BoxFuture<'_, ApiResult<CallPage>> {
        boxed(self.calls_page(page))
    }

    fn get_call<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ApiResult<CallInfo>> {
        boxed(self.call(id))
    }

    fn terminate_call(&self, id: String, actor: Actor) -> BoxFuture<'_, ApiResult<CallInfo>> {
        boxed(self.end_call(id, actor))
    }

    fn list_registrations(&self, page: PageRequest) -> BoxFuture<'_, ApiResult<RegistrationPage>> {
        boxed(self.registrations_page(page))
    }

    fn list_bans(&self, page: PageRequest) -> BoxFuture<'_, ApiResult<BanPage>> {
        boxed(self.bans_page(page))
    }

    fn add_ban(&self, ban: NewBan, actor: Actor) -> BoxFuture<'_, ApiResult<Ban>> {
        boxed(self.ban(ban, actor))
    }

    fn lift_ban(&self, id: i64, actor: Actor) -> BoxFuture<'_, ApiResult<Ban>> {
        boxed(self.unban(id, actor))
    }

    fn list_cdrs(&self, filter: CdrFilter, page: PageRequest) -> BoxFuture<'_, ApiResult<CdrPage>> {
        boxed(self.cdrs_page(filter, page))
    }

    fn export_cdrs(
        &self,
        filter: CdrFilter,
        format: ExportFormat,
    ) -> BoxFuture<'_, ApiResult<ByteStream>> {
        boxed(self.cdr_export(filter, format))
    }

    fn list_audit(&self, page: PageRequest) -> BoxFuture<'_, ApiResult<AuditPage>> {
        boxed(self.audit_page(page))
    }

    fn verify_audit(&self) -> BoxFuture<'_, ApiResult<AuditVerdict>> {
        boxed(self.audit_verdict())
    }

    fn reload_tls(&self, actor: Actor) -> BoxFuture<'_, ApiResult<TlsReloaded>> {
        boxed(self.tls_reload(actor))
    }

    fn drain_state(&self) -> BoxFuture<'_, ApiResult<DrainState>> {
        boxed(self.drain())
    }

    fn set_draining(&self, draining: bool, actor: Actor) -> BoxFuture<'_, ApiResult<DrainState>> {
        boxed(self.change_drain(draining, actor))
    }
}
