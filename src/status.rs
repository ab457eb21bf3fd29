//! The appliance's readiness and its handle on the running signalling, shared by the
//! signalling runtime (which sets them) and the admin service (which reports and uses
//! them).

use std::sync::{Arc, OnceLock, RwLock};

use admin_api::Readiness;

/// The appliance's readiness, shared between the signalling runtime (which sets it) and the
/// admin API (which reports it on `GET /ready`).
#[derive(Debug)]
pub struct ApplianceStatus {
    readiness: RwLock<Readiness>,
    /// The signalling runtime, once it has started.
    signalling: OnceLock<crate::control::SignallingHandle>,
    /// The edge security (ban lifts, credential reloads, gate counters), once started.
    security: OnceLock<crate::security::SecurityHandle>,
}

impl ApplianceStatus {
    /// Not ready yet: listeners are still being bound.
    pub fn starting() -> Self {
        ApplianceStatus {
            readiness: RwLock::new(Readiness::NotReady("starting".to_owned())),
            signalling: OnceLock::new(),
            security: OnceLock::new(),
        }
    }

    /// Signalling has started: the admin side may reach it through `handle`.
    pub fn set_signalling(&self, handle: crate::control::SignallingHandle) {
        let _ = self.signalling.set(handle);
    }

    /// Edge security has started: bans can be lifted and credentials reloaded through
    /// `handle`.
    pub fn set_security(&self, handle: crate::security::SecurityHandle) {
        let _ = self.security.set(handle);
    }

    /// The edge security (`None` while starting).
    pub fn security(&self) -> Option<&crate::security::SecurityHandle> {
        self.security.get()
    }

    /// The running signalling runtime (`None` while starting).
    pub fn signalling(&self) -> Option<&Arc<crate::control::Signalling>> {
        self.signalling.get()
    }

    /// Every listener is bound and traffic is handled.
    pub fn mark_ready(&self) {
        self.set(Readiness::Ready);
    }

    /// Traffic should go elsewhere (draining, overloaded …).
    pub fn mark_not_ready(&self, reason: &str) {
        self.set(Readiness::NotReady(reason.to_owned()));
    }

    fn set(&self, readiness: Readiness) {
        // A poisoned lock only means a writer panicked mid-assignment of a plain value.
        let mut guard = self
            .readiness
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard = readiness;
    }

    /// Whether the appliance takes traffic now.
    pub fn readiness(&self) -> Readiness {
        self.readiness
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_not_ready_then_follows_marks() {
        let status = ApplianceStatus::starting();
        assert_eq!(
            status.readiness(),
            Readiness::NotReady("starting".to_owned())
        );
        status.mark_ready();
        assert_eq!(status.readiness(), Readiness::Ready);
        status.mark_not_ready("draining");
        assert_eq!(
            status.readiness(),
            Readiness::NotReady("draining".to_owned())
        );
    }
}
