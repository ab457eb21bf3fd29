//! Calls to registered users: a [`CallRouter`] that looks the Request-URI up in the
//! registrar before the configured routes.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{SharedRegistrar, aor};
use crate::b2bua::{CallRouter, HeaderFilter, NoRoute, RouteChoice, Target, TargetOutcome};
use crate::sip::{Host, Request, Uri};

/// Routes a call whose Request-URI names a registered user to that user's registered
/// contacts (most recent registration first, each on its own flow), and every other call
/// with `inner`.
pub struct LocatingRouter {
    registrar: SharedRegistrar,
    inner: Box<dyn CallRouter>,
    /// The realm of users whose domain is not listed in `domains`.
    realm: String,
    domains: Vec<String>,
    /// Which headers reach a registered user (an untrusted peer).
    toward_users: Arc<dyn HeaderFilter>,
    clock: Box<dyn FnMut() -> std::time::Instant + Send>,
}

impl std::fmt::Debug for LocatingRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocatingRouter")
            .field("realm", &self.realm)
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

impl LocatingRouter {
    /// `clock` gives `now` for expiry (the router is called without one).
    pub fn new(
        registrar: SharedRegistrar,
        inner: Box<dyn CallRouter>,
        realm: String,
        domains: Vec<String>,
        toward_users: Arc<dyn HeaderFilter>,
        clock: impl FnMut() -> std::time::Instant + Send + 'static,
    ) -> LocatingRouter {
        LocatingRouter {
            registrar,
            inner,
            realm,
            domains,
            toward_users,
            clock: Box::new(clock),
        }
    }

    /// The address of record a Request-URI names: its user in its domain when that is a
    /// configured domain, else in the default realm (a call to `sip:alice@<SBC address>`
    /// reaches alice).
    pub fn aor_of(&self, uri: &Uri) -> Option<String> {
        let Uri::Sip(sip) = uri else {
            return None;
        };
        let user = sip.user.as_ref()?;
        let user = String::from_utf8_lossy(&crate::sip::unescape(user)).into_owned();
        let domain = match &sip.host.host {
            Host::Name(name) if self.domains.iter().any(|d| d.eq_ignore_ascii_case(name)) => {
                name.to_string()
            }
            _ => self.realm.clone(),
        };
        Some(aor(&user, &domain))
    }
}

impl CallRouter for LocatingRouter {
    fn route(
        &mut self,
        source: SocketAddr,
        request: &Request,
        random: &mut dyn FnMut() -> u64,
    ) -> Result<RouteChoice, NoRoute> {
        let now = (self.clock)();
        let bindings = match self.aor_of(&request.uri) {
            Some(aor) => self.registrar.lookup(now, &aor),
            None => Vec::new(),
        };
        if bindings.is_empty() {
            return self.inner.route(source, request, random);
        }
        let (toward_caller, source_trunk) = self.inner.route(source, request, random).map_or_else(
            |_| (Arc::clone(&self.toward_users), None),
            |route| (route.toward_caller, route.source_trunk),
        );
        let targets = bindings
            .iter()
            .map(|binding| Target {
                addr: binding.source,
                protocol: binding.protocol,
                server_name: None,
                registered: Some(Arc::new(binding.registered_contact())),
            })
            .collect();
        Ok(RouteChoice {
            trunk: "registered".into(),
            source_trunk,
            targets,
            toward_callee: Arc::clone(&self.toward_users),
            toward_caller,
        })
    }

    fn report(&mut self, target: &Target, outcome: TargetOutcome) {
        if target.registered.is_none() {
            self.inner.report(target, outcome);
        }
    }
}
