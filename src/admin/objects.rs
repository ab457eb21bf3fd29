//! Trunks, routes and ACLs through the API: listed together with the configuration
//! file's (which are read-only here), checked with the configuration's own validation,
//! written with their audit record, then applied (a new routing table, or a new access
//! snapshot).

use std::sync::Arc;

use admin_api::model::{AclSpec, ObjectKind, Origin, StoredObject, StoredObjectPage};
use admin_api::{Actor, ApiError, ApiResult, ObjectSpec, PageRequest};
use serde_json::Value;

use super::convert::{self, kind as store_kind};
use super::{AdminService, change_of};
use crate::config::{RouteConfig, TrunkConfig};
use crate::objects::{self, FieldProblem, RoutingObjects};

fn invalid(problem: FieldProblem) -> ApiError {
    ApiError::invalid(problem.field, problem.problem)
}

fn read_only(kind: ObjectKind, name: &str) -> ApiError {
    ApiError::conflict(format!(
        "{} {name:?} is defined in the configuration file; change it there",
        kind.as_str()
    ))
}

fn spec_json(spec: &ObjectSpec) -> ApiResult<Value> {
    let value = match spec {
        ObjectSpec::Trunk(spec) => serde_json::to_value(spec),
        ObjectSpec::Route(spec) => serde_json::to_value(spec),
        ObjectSpec::Acl(spec) => serde_json::to_value(spec),
    };
    value.map_err(|error| ApiError::internal(format!("spec to JSON: {error}")))
}

impl AdminService {
    /// The configuration file's objects of `kind`, in the API's shape.
    fn file_objects(&self, kind: ObjectKind) -> Vec<StoredObject> {
        let config = &self.setup.config;
        let file_object = |name: &str, spec: Result<Value, serde_json::Error>| StoredObject {
            kind,
            name: name.to_owned(),
            spec: spec.unwrap_or_default(),
            version: 0,
            origin: Origin::ConfigFile,
            created_at: None,
            updated_at: None,
        };
        match kind {
            ObjectKind::Trunk => config
                .trunks
                .iter()
                .map(|trunk| {
                    file_object(
                        &trunk.name,
                        serde_json::to_value(objects::trunk_spec(trunk)),
                    )
                })
                .collect(),
            ObjectKind::Route => config
                .routes
                .iter()
                .map(|route| {
                    file_object(
                        &route.name,
                        serde_json::to_value(objects::route_spec(route)),
                    )
                })
                .collect(),
            ObjectKind::Acl => Vec::new(),
        }
    }

    pub(super) async fn list_config_objects(
        &self,
        kind: ObjectKind,
        page: PageRequest,
    ) -> ApiResult<StoredObjectPage> {
        let stored = self
            .store(move |store| objects::stored(store, store_kind(kind)))
            .await?;
        let mut all: Vec<StoredObject> = stored
            .into_iter()
            .map(|object| convert::object(kind, object))
            .collect();
        all.extend(self.file_objects(kind));
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let limit = page.limit as usize;
        let mut items: Vec<StoredObject> = all
            .into_iter()
            .filter(|object| {
                page.cursor
                    .as_ref()
                    .is_none_or(|after| &object.name > after)
            })
            .take(limit + 1)
            .collect();
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|object| object.name.clone())
        } else {
            None
        };
        Ok(StoredObjectPage { items, next_cursor })
    }

    pub(super) async fn get_config_object(
        &self,
        kind: ObjectKind,
        name: &str,
    ) -> ApiResult<StoredObject> {
        let key = name.to_owned();
        let stored = self
            .store(move |store| store.get_object(store_kind(kind), &key))
            .await?;
        if let Some(object) = stored {
            return Ok(convert::object(kind, object));
        }
        self.file_objects(kind)
            .into_iter()
            .find(|object| object.name == name)
            .ok_or_else(|| ApiError::not_found(format!("{} {name:?}", kind.as_str())))
    }

    fn is_file_object(&self, kind: ObjectKind, name: &str) -> bool {
        let config = &self.setup.config;
        match kind {
            ObjectKind::Trunk => config.trunks.iter().any(|trunk| trunk.name == name),
            ObjectKind::Route => config.routes.iter().any(|route| route.name == name),
            ObjectKind::Acl => false,
        }
    }

    /// Creates (`create`) or replaces an object.
    pub(super) async fn put_config_object(
        &self,
        spec: ObjectSpec,
        if_version: Option<i64>,
        actor: Actor,
        create: bool,
    ) -> ApiResult<StoredObject> {
        let kind = spec.kind();
        let name = spec.name().to_owned();
        let _changing = self.changes.lock().await;
        if self.is_file_object(kind, &name) {
            return Err(read_only(kind, &name));
        }
        let json = spec_json(&spec)?;
        // Checked before anything is written.
        let table = match &spec {
            ObjectSpec::Trunk(_) | ObjectSpec::Route(_) => {
                let signalling = self.signalling()?;
                let objects = self.routing_with(kind, &name, Some(&json)).await?;
                let table = objects::table(&objects)
                    .map_err(|error| ApiError::invalid("spec", format!("{error:#}")))?;
                Some((Arc::clone(signalling), table, objects))
            }
            ObjectSpec::Acl(acl) => {
                self.check_acl(acl).await?;
                None
            }
        };
        let change = change_of(&actor);
        let stored = self
            .store(move |store| {
                if create {
                    store.create_object(store_kind(kind), &name, json, &change)
                } else {
                    store.update_object(store_kind(kind), &name, json, if_version, &change)
                }
            })
            .await?;
        match table {
            Some((signalling, table, objects)) => {
                self.apply_routing(&signalling, table, &objects).await?;
            }
            None => self.publish_access().await?,
        }
        Ok(convert::object(kind, stored))
    }

    pub(super) async fn delete_config_object(
        &self,
        kind: ObjectKind,
        name: String,
        actor: Actor,
    ) -> ApiResult<StoredObject> {
        let _changing = self.changes.lock().await;
        if self.is_file_object(kind, &name) {
            return Err(read_only(kind, &name));
        }
        let key = name.clone();
        let exists = self
            .store(move |store| store.get_object(store_kind(kind), &key))
            .await?
            .is_some();
        if !exists {
            return Err(ApiError::not_found(format!("{} {name:?}", kind.as_str())));
        }
        let table = match kind {
            ObjectKind::Trunk | ObjectKind::Route => {
                if kind == ObjectKind::Trunk {
                    self.check_unreferenced(&name).await?;
                }
                let signalling = self.signalling()?;
                let objects = self.routing_with(kind, &name, None).await?;
                let table = objects::table(&objects)
                    .map_err(|error| ApiError::conflict(format!("{error:#}")))?;
                Some((Arc::clone(signalling), table, objects))
            }
            ObjectKind::Acl => None,
        };
        let change = change_of(&actor);
        let deleted = self
            .store(move |store| store.delete_object(store_kind(kind), &name, &change))
            .await?;
        match table {
            Some((signalling, table, objects)) => {
                self.apply_routing(&signalling, table, &objects).await?;
            }
            None => self.publish_access().await?,
        }
        Ok(convert::object(kind, deleted))
    }

    /// Puts changed trunks and routes in force for new calls: the trunks' media
    /// policies, their sources, requirements and call limits (the ingress policy and the
    /// admission gate), their identity policies, and last the routing table — so that a
    /// new trunk's calls meet its whole policy from the first.
    async fn apply_routing(
        &self,
        signalling: &Arc<crate::control::Signalling>,
        table: sbc_core::routing::RoutingTable,
        objects: &RoutingObjects,
    ) -> ApiResult<()> {
        let unavailable = |error: &dyn std::fmt::Display| ApiError::unavailable(error.to_string());
        signalling.replace_media_policies(&objects.trunks);
        if let Some(security) = self.setup.status.security() {
            security
                .replace_trunks(&objects.trunks)
                .await
                .map_err(|error| unavailable(&error))?;
        }
        signalling
            .replace_identity_policies(&objects.trunks)
            .await
            .map_err(|error| unavailable(&error))?;
        signalling
            .replace_routing(table)
            .await
            .map_err(|error| unavailable(&error))?;
        Ok(())
    }

    /// The routing objects with the stored `kind` object `name` replaced by `spec` (or
    /// added, or removed when `spec` is `None`), checked field by field.
    async fn routing_with(
        &self,
        kind: ObjectKind,
        name: &str,
        spec: Option<&Value>,
    ) -> ApiResult<RoutingObjects> {
        let (mut trunks, mut routes) = self.store(|store| objects::stored_routing(store)).await?;
        let config = &self.setup.config;
        match kind {
            ObjectKind::Trunk => {
                trunks.retain(|trunk| trunk.name != name);
                let candidate: Option<TrunkConfig> = spec
                    .map(objects::trunk_config)
                    .transpose()
                    .map_err(invalid)?;
                let added = candidate.is_some();
                trunks.extend(candidate);
                let combined = objects::combine(config, trunks, routes);
                let index = added.then(|| combined.trunks.len() - 1);
                objects::check(config, &combined, index, None).map_err(invalid)?;
                Ok(combined)
            }
            ObjectKind::Route => {
                routes.retain(|(_, route)| route.name != name);
                let candidate: Option<(u16, RouteConfig)> = spec
                    .map(objects::route_config)
                    .transpose()
                    .map_err(invalid)?;
                routes.extend(candidate);
                let combined = objects::combine(config, trunks, routes);
                let index =
                    spec.and_then(|_| combined.routes.iter().position(|route| route.name == name));
                objects::check(config, &combined, None, index).map_err(invalid)?;
                Ok(combined)
            }
            ObjectKind::Acl => Err(ApiError::internal("ACLs are not routing objects")),
        }
    }

    /// A trunk that routes or ACLs still name cannot be deleted.
    async fn check_unreferenced(&self, trunk: &str) -> ApiResult<()> {
        let (_, routes) = self.store(|store| objects::stored_routing(store)).await?;
        let mut users: Vec<String> = routes
            .iter()
            .filter(|(_, route)| {
                route.to_trunk == trunk || route.from_trunk.as_deref() == Some(trunk)
            })
            .map(|(_, route)| format!("route {:?}", route.name))
            .collect();
        let acls = self
            .store(|store| objects::stored(store, crate::store::ObjectKind::Acl))
            .await?;
        for acl in acls {
            let names = serde_json::from_value::<AclSpec>(acl.spec)
                .map(|spec| spec.trunks)
                .unwrap_or_default();
            if names.iter().any(|name| name == trunk) {
                users.push(format!("ACL {:?}", acl.name));
            }
        }
        if users.is_empty() {
            Ok(())
        } else {
            Err(ApiError::conflict(format!(
                "trunk {trunk:?} is still used by {}",
                users.join(", ")
            )))
        }
    }

    /// An ACL may name only listeners and trunks that exist, and its rules must be
    /// networks signalling can enforce.
    async fn check_acl(&self, acl: &AclSpec) -> ApiResult<()> {
        let config = &self.setup.config;
        for (index, rule) in acl.rules.iter().enumerate() {
            if let Err(error) = rule.source.parse::<sbc_core::policy::Cidr>() {
                return Err(ApiError::invalid(
                    format!("rules[{index}].source"),
                    error.to_string(),
                ));
            }
        }
        for (index, reference) in acl.listeners.iter().enumerate() {
            let known = admin_api::model::parse_listener_ref(reference).is_some_and(
                |(transport, address)| {
                    config.sip.listen.iter().any(|listener| {
                        listener.address == address
                            && listener.transport.as_str() == transport_name(transport)
                    })
                },
            );
            if !known {
                return Err(ApiError::invalid(
                    format!("listeners[{index}]"),
                    format!("{reference:?} is not a configured SIP listener"),
                ));
            }
        }
        let (trunks, _) = self.store(|store| objects::stored_routing(store)).await?;
        for (index, name) in acl.trunks.iter().enumerate() {
            let known = config.trunks.iter().any(|trunk| &trunk.name == name)
                || trunks.iter().any(|trunk| &trunk.name == name);
            if !known {
                return Err(ApiError::invalid(
                    format!("trunks[{index}]"),
                    format!("no trunk is named {name:?}"),
                ));
            }
        }
        Ok(())
    }
}

fn transport_name(transport: admin_api::model::Transport) -> &'static str {
    match transport {
        admin_api::model::Transport::Udp => "udp",
        admin_api::model::Transport::Tcp => "tcp",
        admin_api::model::Transport::Tls => "tls",
    }
}
