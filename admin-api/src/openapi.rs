//! The OpenAPI 3.1 document, generated from the handlers' and types' annotations and
//! served at `/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::handlers::{objects, operations, status, stir, users};

/// Adds the bearer token scheme every protected operation refers to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An admin token (sbc_…). The first start writes a read-write one to \
                         data_dir/admin-token; POST /tokens makes more, read_only or read_write.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sbc admin API",
        description = "Manage the session border controller: trunks, routes, ACLs, users, \
                       calls in progress, registrations, bans, CDRs, the audit log, TLS, \
                       drain and STIR/SHAKEN material. Every change is persisted before it is acknowledged, applies to \
                       new calls at once, and is recorded in the hash-chained audit log.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    paths(
        status::health, status::ready, status::metrics, status::openapi,
        objects::list_trunks, objects::create_trunk, objects::get_trunk,
        objects::replace_trunk, objects::delete_trunk,
        objects::list_routes, objects::create_route, objects::get_route,
        objects::replace_route, objects::delete_route,
        objects::list_acls, objects::create_acl, objects::get_acl,
        objects::replace_acl, objects::delete_acl,
        users::list_users, users::create_user, users::get_user, users::update_user,
        users::delete_user,
        users::list_tokens, users::create_token, users::revoke_token,
        operations::list_calls, operations::get_call, operations::terminate_call,
        operations::list_registrations,
        operations::list_bans, operations::add_ban, operations::lift_ban,
        operations::list_cdrs, operations::export_cdrs,
        operations::list_audit, operations::verify_audit,
        operations::reload_tls, operations::drain_state, operations::set_draining,
        stir::get_credential, stir::set_credential, stir::delete_credential,
        stir::list_trust_anchors, stir::add_trust_anchor, stir::remove_trust_anchor,
    ),
    tags(
        (name = "status", description = "Liveness, readiness, metrics, this document (no token needed)"),
        (name = "trunks", description = "SIP peers"),
        (name = "routes", description = "Where calls go"),
        (name = "acls", description = "Who may send traffic"),
        (name = "users", description = "SIP digest users (HA1 values only)"),
        (name = "tokens", description = "Admin API tokens"),
        (name = "calls", description = "Calls in progress"),
        (name = "registrations", description = "SIP registrations"),
        (name = "bans", description = "Blocked sources"),
        (name = "cdrs", description = "Call detail records"),
        (name = "audit", description = "The audit log"),
        (name = "operations", description = "TLS reload and drain"),
        (name = "identity", description = "STIR/SHAKEN signing credential (write-only key) and STI-CA roots"),
    )
)]
struct ApiDoc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
