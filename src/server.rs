//! ════════════════════════════════════════════════════════════════════════════════════════
//!  SIGNALLING PLUG POINT (for the lead)
//! ════════════════════════════════════════════════════════════════════════════════════════
//!
//! [`run`] is the one function `main` calls to run signalling. Everything around it is
//! ready: the configuration is loaded and validated, TLS material exists (every TLS
//! listener in `config.sip.listen` has `certificate` and `private_key` set), logging is
//! on, the admin API serves `/health` and `/ready`, and SIGINT/SIGTERM resolve
//! `context.shutdown`.
//!
//! What `run` must do:
//! 1. bind the `sbc_core::net` listeners from `config.sip.listen` (limits in
//!    `config.sip.limits`, timers in `config.sip.timers`) and return an error naming the
//!    address if one cannot be bound (main exits non-zero);
//! 2. call `context.status.mark_ready()` once every listener is bound (the black-box tests
//!    wait for `GET /ready` = 200 before sending traffic);
//! 3. run transport → parser → transactions → responder until `context.shutdown` resolves,
//!    then drain and return `Ok(())` (main allows [`crate::appliance::DRAIN_TIMEOUT`]).

use std::sync::Arc;

use tracing::info;

use crate::config::Config;
use crate::shutdown::Shutdown;
use crate::status::ApplianceStatus;

/// What `main` hands the signalling runtime besides the configuration.
#[derive(Debug)]
pub struct ServerContext {
    /// Readiness reported on the admin API's `GET /ready`.
    pub status: Arc<ApplianceStatus>,
    /// Resolves when SIGINT/SIGTERM asks the appliance to stop.
    pub shutdown: Shutdown,
}

/// Run signalling until a stop is requested.
pub async fn run(config: Config, context: ServerContext) -> anyhow::Result<()> {
    // TODO(lead): bind sbc_core::net listeners from `config.sip` and wire
    // transport → parser → transactions → "OPTIONS → 200 OK, anything else → final response".
    info!(
        listeners = config.sip.listen.len(),
        "signalling not wired yet: no SIP listener is bound (see src/server.rs)"
    );
    context.status.mark_ready();
    context.shutdown.requested().await;
    Ok(())
}
