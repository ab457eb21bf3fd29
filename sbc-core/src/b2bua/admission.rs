//! Call admission control for new calls: the places a call takes in the shared
//! [`CallLimits`], and the answer when a limit is reached.

use std::time::Instant;

use bytes::Bytes;

use super::router::RouteChoice;
use super::{B2bua, add_product, count};
use crate::net::Protocol;
use crate::policy::call_limits::{CallParties, CallSlot, LimitReached};
use crate::sip::{HeaderName, Request, StatusCode, Uri};
use crate::transaction::TransactionLayer;

/// The registered calls of [`RouteChoice::trunk`] (no trunk of ours).
const REGISTERED: &str = "registered";

/// Seconds in the Retry-After of a `503` for a full trunk or appliance.
const RETRY_AFTER_SECS: u32 = 5;

/// Who is calling, as the trust boundary established it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallerIdentity {
    /// The address of record of the user who authenticated (or called on its registered
    /// flow).
    pub user: Option<String>,
    /// The trunk the call came from.
    pub trunk: Option<String>,
    /// The caller's TLS client certificate verified against the listener's CA (it
    /// arrived over TLS with one): the call's security summary says so for its A-leg.
    pub client_certificate: bool,
}

impl B2bua {
    /// Takes the places of a call from `caller` going where `route` says, when limits are
    /// configured.
    pub(super) fn admit_call(
        &self,
        caller: &CallerIdentity,
        route: &RouteChoice,
    ) -> Result<Option<CallSlot>, LimitReached> {
        let Some(limits) = &self.config.call_limits else {
            return Ok(None);
        };
        let mut parties = CallParties {
            caller: caller.user.clone(),
            callee: None,
            trunks: caller.trunk.iter().cloned().collect(),
        };
        match route
            .targets
            .first()
            .and_then(|target| target.registered.as_ref())
        {
            Some(registered) => parties.callee = Some(registered.aor.clone()),
            None if route.trunk != REGISTERED => parties.trunks.push(route.trunk.clone()),
            None => {}
        }
        limits.admit(&parties).map(Some)
    }

    /// Refuses a new call over `limit` (403, 486, or 503 with Retry-After).
    pub(super) fn refuse_over_limit(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        request: &Request,
        limit: LimitReached,
    ) {
        count(&mut self.stats.rejected, limit.name());
        let status = StatusCode::new(limit.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let tag = self.ids().tag();
        let mut response = request.make_response(status, None, Some(&tag));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers.push(
                HeaderName::RetryAfter,
                Bytes::from(RETRY_AFTER_SECS.to_string()),
            );
        }
        add_product(&self.config, &mut response.headers, HeaderName::Server);
        self.respond(now, layer, response);
    }
}

/// RFC 5630 §3.1.3: a `sips:` Request-URI is only ever sent on over TLS. For such a
/// request the route keeps its TLS targets only; `false` when none is left (the request
/// is refused rather than downgraded to `sip:`).
pub(super) fn keep_secure_targets(request: &Request, route: &mut RouteChoice) -> bool {
    if !matches!(&request.uri, Uri::Sip(sip) if sip.secure) {
        return true;
    }
    route
        .targets
        .retain(|target| target.protocol == Protocol::Tls);
    !route.targets.is_empty()
}

/// The answer when a `sips:` request has no TLS target: `480` (no secure path now).
pub(super) const NO_SECURE_TARGET: &str = "sips_without_tls_target";
